#!/usr/bin/env bash
# Builds tests/packaging/subproject, an application that adds dtask with add_subdirectory or
# FetchContent, installs it, and checks that dtask kept to itself: nothing of dtask's in the
# application's install tree, no program of dtask's (dtaskd, tests, examples) built; then
# runs the application.
#
# Usage: subproject.sh add_subdirectory|FetchContent DTASK_SOURCE BUILD PREFIX [cmake args...]
# add_subdirectory starts from an empty build tree; FetchContent reuses it, which rebuilds
# nothing as dtask's build directory is the same (so run it second).
set -euo pipefail

if (($# < 4)); then
    echo "usage: $0 add_subdirectory|FetchContent DTASK_SOURCE BUILD PREFIX [cmake args...]" >&2
    exit 2
fi
how="$1" source="$2" build="$3" prefix="$4"
shift 4
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

[[ "$how" == add_subdirectory ]] && rm -rf "$build"
rm -rf "$prefix"
generator=()
[[ -f "$build/CMakeCache.txt" ]] || generator=(-G Ninja)
cmake -S "$here/subproject" -B "$build" "${generator[@]}" -DDTASK_HOW="$how" \
    -DDTASK_SOURCE_DIR="$source" "$@"
cmake --build "$build" --parallel 2
cmake --install "$build" --prefix "$prefix"

installed="$(cd "$prefix" && find . -type f -o -type l | sort)"
if [[ "$installed" != "./bin/app" ]]; then
    echo "subproject.sh: the application's install tree holds more than bin/app:" >&2
    echo "$installed" >&2
    exit 1
fi
programs="$(find "$build/_deps/dtask-build" -type f -perm -u+x)"
if [[ -n "$programs" ]]; then
    echo "subproject.sh: dtask built programs of its own in the application's build:" >&2
    echo "$programs" >&2
    exit 1
fi
echo "subproject.sh ($how): the install tree holds bin/app alone, and dtask built no program"
"$prefix/bin/app"
