#!/usr/bin/env bash
# Builds the sum_squares example (Release, into build/) and runs it.
# Usage: scripts/demo.sh [arguments for sum_squares...]; the exit code is the example's.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"

"$root/scripts/setup.sh" >&2

# Pick the generator only for a new build tree: re-passing a different one to an existing tree
# is an error.
generator=()
[[ -f "$build/CMakeCache.txt" ]] || generator=(-G Ninja)

log="$build/demo-build.log"
mkdir -p "$build"
echo "demo.sh: building sum_squares (log: ${log#"$root"/})" >&2
if ! { cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$build" --target sum_squares -j2; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "demo.sh: build failed; full log in $log" >&2
    exit 1
fi

exec "$build/examples/sum_squares" "$@"
