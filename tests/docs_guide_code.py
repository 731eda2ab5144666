#!/usr/bin/env python3
"""Checks the C++ of the user guide, so that it cannot go stale.

Every ```cpp block of the guide that begins with #include is a complete program: it must
compile without a warning (-Wall -Wextra -Werror) against include/. Every other ```cpp block
is an excerpt: it must appear, white space aside, in one of those programs or in a file of
examples/.

Usage: docs_guide_code.py --compiler CXX --source-dir DIR [--guide docs/guide.md]
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile


def flat(text):
    return " ".join(text.split())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--compiler", required=True)
    parser.add_argument("--source-dir", required=True, type=pathlib.Path)
    parser.add_argument("--guide", default="docs/guide.md")
    parser.add_argument("--include", action="append", default=[],
                        help="a further include directory (the generated headers)")
    args = parser.parse_args()

    guide = args.source_dir / args.guide
    text = guide.read_text(encoding="utf-8")
    blocks = []  # (line number, code)
    for match in re.finditer(r"^```cpp\n(.*?)^```", text, re.S | re.M):
        blocks.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    programs = [(line, code) for line, code in blocks if code.startswith("#include")]
    excerpts = [(line, code) for line, code in blocks if not code.startswith("#include")]
    if not programs:
        print(f"{guide}: no complete program (a ```cpp block that begins with #include)")
        return 1

    failures = []
    with tempfile.TemporaryDirectory() as scratch:
        for line, code in programs:
            source = pathlib.Path(scratch) / f"guide_line_{line}.cpp"
            source.write_text(code, encoding="utf-8")
            compiled = subprocess.run(
                [args.compiler, "-std=gnu++20", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                 f"-I{args.source_dir / 'include'}", *(f"-I{d}" for d in args.include),
                 str(source)],
                capture_output=True, text=True)
            if compiled.returncode != 0:
                failures.append(f"{args.guide}:{line}: the program does not compile:\n"
                                f"{compiled.stdout}{compiled.stderr}")

    known = [flat(code) for _, code in programs]
    for path in sorted((args.source_dir / "examples").iterdir()):
        if path.suffix in (".cpp", ".hpp"):
            known.append(flat(path.read_text(encoding="utf-8")))
    for line, code in excerpts:
        if not any(flat(code) in source for source in known):
            failures.append(f"{args.guide}:{line}: the excerpt is in none of the guide's "
                            f"programs nor in examples/:\n{code}")

    for failure in failures:
        print(failure)
    print(f"{args.guide}: {len(programs)} program(s) compiled, {len(excerpts)} excerpt(s) "
          f"found, {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
