#!/usr/bin/env python3
"""inverted_index: the same index as a serial one built here, and queries answered from it.

Usage: example_inverted_index.py INVERTED_INDEX [--licenses DIRECTORY]

Without --licenses: over a directory of files written here (nested, empty, upper case,
digits, bytes beyond ASCII), the index the example prints with --dump, with 2 workers and
with --serial, must be the one this script builds in Python, and its queries must name the
files that hold every word, with their counts. With --licenses: the same over a directory of
real text files (Debian's /usr/share/common-licenses), skipped if it is not there.
"""
import os
import random
import re
import sys
import tempfile
from pathlib import Path

from example_checks import fail, run, same_for_all

SKIP = "dtask-test skipped: "


def serial_index(directory):
    """{word: [(relative path, count), ...]} over the regular files, in the example's order:
    paths compared by their components, words in byte order."""
    root = Path(directory)
    paths = sorted((path.relative_to(root) for path in root.rglob("*") if path.is_file()),
                   key=lambda path: path.parts)
    index = {}
    for path in paths:
        counts = {}
        for word in re.findall(rb"[A-Za-z0-9]+", (root / path).read_bytes()):
            word = word.lower().decode()
            counts[word] = counts.get(word, 0) + 1
        for word, count in counts.items():
            index.setdefault(word, []).append((str(path), count))
    return len(paths), dict(sorted(index.items()))


def dump_of(index):
    return "".join(word + "".join(f" {path}:{count}" for path, count in postings) + "\n"
                   for word, postings in index.items())


def query_answer(files, index, words):
    """What --query WORDS must print."""
    for word in words:
        if word not in index:
            return f"no file holds '{word}'\n"
    per_file = [dict(index[word]) for word in words]
    matches = [path for path, _ in index[words[0]] if all(path in counts for counts in per_file)]
    matches.sort(key=lambda path: -sum(counts[path] for counts in per_file))  # stable
    return (f"{len(matches)} of {files} files hold every word\n" +
            "".join(f"{path}:" + "".join(f" {word} {counts[path]}"
                                         for word, counts in zip(words, per_file)) + "\n"
                    for path in matches))


def check(program, directory, queries):
    files, index = serial_index(directory)
    dump = same_for_all([[program, directory, "--dump", "--workers", "2"],
                         [program, directory, "--dump", "--serial"]])
    if dump != dump_of(index):
        fail(f"the index of {directory} differs from the serial one:\n{dump}\n---\n"
             f"{dump_of(index)}")
    words = sum(count for postings in index.values() for _, count in postings)
    summary = run([program, directory, "--workers", "2"])
    if summary != f"{files} files, {words} words, {len(index)} distinct\n":
        fail(f"the summary says {summary!r}; there are {files} files, {words} words, "
             f"{len(index)} distinct")
    for query in queries:
        answer = run([program, directory, "--query", *query, "--workers", "2"])
        expected = query_answer(files, index, [word.lower() for word in query])
        if answer != expected:
            fail(f"--query {' '.join(query)} printed\n{answer}\nnot\n{expected}")
    print(f"{directory}: {files} files, {len(index)} distinct words, {len(queries)} queries: "
          f"the same as a serial index")


def write_files(directory):
    generator = random.Random(7)
    vocabulary = [f"w{i}" for i in range(300)] + ["alpha", "beta", "gamma"]
    texts = {
        "a.txt": b"The quick brown fox jumps over the lazy dog. THE END",
        "b.txt": b"Don't panic! 42 is the answer; the-question is unknown.",
        "empty.txt": b"",
        "nested/deeper/c.md": b"# Alpha\n\nalpha beta, ALPHA gamma 42 42\n",
        "nested/d.txt": "caf\u00e9 na\u00efve r\u00e9sum\u00e9 the fox".encode(),
        # "x-y.txt" sorts before "x/y.txt" as a string, after it as a path.
        "x-y.txt": b"dash before slash as a string",
        "x/y.txt": b"slash before dash as a path",
    }
    for i in range(12):
        texts[f"generated/{i:02}.txt"] = " ".join(
            generator.choice(vocabulary) for _ in range(2000)).encode()
    for name, text in texts.items():
        path = Path(directory) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text)


def main():
    program = sys.argv[1]
    if len(sys.argv) == 4 and sys.argv[2] == "--licenses":
        directory = sys.argv[3]
        if not os.path.isdir(directory):
            print(f"{SKIP}no {directory} on this machine (Debian's base-files ships it)")
            return
        check(program, directory, [["warranty"], ["patent", "license"], ["Software", "FREE"],
                                   ["nosuchwordanywhere"]])
        return
    with tempfile.TemporaryDirectory() as directory:
        write_files(directory)
        check(program, directory, [["the"], ["the", "fox"], ["42", "alpha"], ["w1", "w2", "w3"],
                                   ["absent"]])


if __name__ == "__main__":
    main()
