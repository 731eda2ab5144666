#!/usr/bin/env bash
# Measures failure detection and recovery times with the default settings (Release build in
# build/) and prints the table of docs/reliability.md; every measurement also goes to
# build/reliability.json. Usage: scripts/reliability.sh [--repeat N]
# Run as root for the network-partition scenario (it uses ip netns); otherwise it is skipped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"

"$root/scripts/setup.sh" >&2

generator=()
[[ -f "$build/CMakeCache.txt" ]] || generator=(-G Ninja)

log="$build/reliability-build.log"
mkdir -p "$build"
echo "reliability.sh: building dtask_faults (log: ${log#"$root"/})" >&2
if ! { cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$build" --target dtask_faults -j2; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "reliability.sh: build failed; full log in $log" >&2
    exit 1
fi

exec "$build/bench/dtask_faults" --json "$build/reliability.json" "$@"
