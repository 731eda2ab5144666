#!/usr/bin/env bash
# Builds the API reference: Doxygen over include/dtask/ with docs/guide.md as its main page,
# as HTML in OUTPUT_DIR/html (default build-docs/). Exits non-zero on any Doxygen warning
# (an undocumented public class, function or option, a broken \ref), printing the warnings.
#
# Usage: scripts/docs.sh [OUTPUT_DIR]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
output="${1:-$root/build-docs}"

if ! command -v doxygen >/dev/null 2>&1; then
    echo "docs.sh: doxygen not installed: run scripts/setup.sh" >&2
    exit 1
fi

mkdir -p "$output"
output="$(cd "$output" && pwd)"
version="$(sed -n 's/^#define DTASK_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' \
    "$root/include/dtask/version.hpp" | paste -sd.)"
warnings="$output/warnings.log"
rm -f "$warnings"

# Doxygen reads the Doxyfile from stdin, with the settings that depend on this run last;
# its paths are relative to the source root.
cd "$root"
status=0
{
    cat docs/Doxyfile
    echo "OUTPUT_DIRECTORY = \"$output\""
    echo "PROJECT_NUMBER = $version"
    echo "WARN_LOGFILE = \"$warnings\""
} | doxygen - || status=$?

if [[ -s "$warnings" ]]; then
    cat "$warnings" >&2
    echo "docs.sh: $(grep -c . "$warnings") Doxygen warning(s): document what they name" >&2
    exit 1
fi
if ((status != 0)); then
    echo "docs.sh: doxygen failed with status $status" >&2
    exit 1
fi
echo "docs.sh: the API reference is $output/html/index.html"
