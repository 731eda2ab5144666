#!/usr/bin/env python3
"""Doxygen's input filter for docs/guide.md (docs/Doxyfile, FILTER_PATTERNS): makes the links
that work on a Markdown page work in the HTML reference too, line for line.

- A heading gets the id a Markdown renderer gives it ({#a-first-program}), which Doxygen
  1.9.4 does not make by itself, so that [text](#a-first-program) resolves.
- A link to another Markdown file of the tree (architecture.md, ../README.md#options) points
  to that file in the source tree as a file:// URL, since those pages are not part of the
  reference (and Doxygen takes a relative link to a .md file for a page of its own).
"""
import os
import re
import sys

source = os.path.abspath(sys.argv[1])
here = os.path.dirname(source)


def heading_id(text):
    text = re.sub(r"[^a-z0-9 _-]", "", text.lower())
    return text.strip().replace(" ", "-")


def to_source(match):
    target = os.path.normpath(os.path.join(here, match.group(2)))
    return f"{match.group(1)}file://{target}{match.group(3) or ''})"


in_code = False
with open(source, encoding="utf-8") as lines:
    for line in lines:
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code:
            heading = re.match(r"(#{2,6} )(.*?)\s*$", line)
            if heading:
                line = f"{heading.group(1)}{heading.group(2)} {{#{heading_id(heading.group(2))}}}\n"
            line = re.sub(r"(\]\()([^)#:]+\.md)(#[^)]*)?\)", to_source, line)
        sys.stdout.write(line)
