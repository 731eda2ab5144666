#!/usr/bin/env python3
"""Checks what a shared libdtask exports (nm -D --defined-only -C): dtask's public API and
nothing else.

- Every exported symbol is in namespace dtask, and the class or function it belongs to
  (dtask::X or dtask::detail::X, X its first name there) is declared in a public header
  (--include, recursively) or in one of the --bridge headers (internal functions that an
  installed part of dtask, dtask::http, calls).
- Every name those headers mark DTASK_EXPORT is exported, so that nothing a public
  template calls is missing.

Usage: exported_symbols.py LIBRARY --include DIR [--include DIR...] [--bridge HEADER...]
"""

import argparse
import os
import re
import subprocess
import sys

# nm -C spells type_info and vtables as "<what> for <class>".
SPECIAL = re.compile(r"^(typeinfo name for|typeinfo for|vtable for|VTT for) ")


def exported(library):
    """(entity, symbol) for each defined dynamic symbol: entity is dtask::X or
    dtask::detail::X, or None for a symbol outside namespace dtask."""
    output = subprocess.run(["nm", "-D", "--defined-only", "-C", library], check=True,
                            capture_output=True, text=True).stdout
    symbols = []
    for line in output.splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 3:
            continue
        symbol = parts[2]
        name = SPECIAL.sub("", symbol)
        match = re.match(r"dtask::(detail::)?(\w+)", name)
        symbols.append((f"dtask::{match.group(1) or ''}{match.group(2)}" if match else None,
                        symbol))
    return symbols


def declared(headers):
    """Names declared in the headers (classes, structs, enums, functions) and the subset
    marked DTASK_EXPORT, each as dtask::X or dtask::detail::X."""
    names, marked = set(), set()
    for path in headers:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        # Declarations inside namespace dtask::detail (or a nested `namespace detail`) are
        # qualified with detail::; a header holds one or the other, or detail after dtask.
        for block, body in split_namespaces(text):
            for kind in re.finditer(r"\b(?:class|struct|enum class)\s+(DTASK_EXPORT\s+)?(\w+)", body):
                names.add(block + kind.group(2))
                if kind.group(1):
                    marked.add(block + kind.group(2))
            for function in re.finditer(r"^\s*(DTASK_EXPORT\s+)?[\w:<>,\s\*&]+?\b(\w+)\s*\(",
                                        body, re.M):
                names.add(block + function.group(2))
                if function.group(1):
                    marked.add(block + function.group(2))
    return names, marked


def split_namespaces(text):
    """(qualifier, text) pairs: the text of namespace dtask::detail (or `namespace detail`
    inside dtask) with "dtask::detail::", the rest with "dtask::"."""
    detail = re.compile(r"namespace (?:dtask::)?detail \{(.*?)\}  // namespace (?:dtask::)?detail",
                        re.S)
    pieces = [("dtask::detail::", m.group(1)) for m in detail.finditer(text)]
    pieces.append(("dtask::", detail.sub("", text)))
    return pieces


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("library")
    parser.add_argument("--include", action="append", required=True)
    parser.add_argument("--bridge", action="append", default=[])
    args = parser.parse_args()

    headers = [os.path.join(folder, name) for root in args.include
               for folder, _, files in os.walk(root) for name in files if name.endswith(".hpp")]
    public, marked = declared(headers)
    bridge, bridge_marked = declared(args.bridge)

    symbols = exported(args.library)
    problems = []
    for entity, symbol in symbols:
        if entity is None:
            problems.append(f"exported, but not dtask's: {symbol}")
        elif entity not in public and entity not in bridge:
            problems.append(f"exported, but {entity} is in no public header: {symbol}")
    entities = {entity for entity, _ in symbols}
    for name in sorted((marked | bridge_marked) - entities):
        problems.append(f"marked DTASK_EXPORT but not exported: {name}")

    detail = sum(1 for entity, _ in symbols if entity and entity.startswith("dtask::detail::"))
    print(f"{args.library}: {len(symbols)} exported symbols, {detail} of them in dtask::detail")
    for problem in problems:
        print(problem)
    if problems:
        print(f"exported_symbols.py: FAILED: {len(problems)} problems")
        return 1
    print("only the public API is exported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
