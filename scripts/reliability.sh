#!/usr/bin/env bash
# Measures failure detection and recovery times with the default settings (Release build in
# build/) and prints the table of docs/reliability.md; every measurement also goes to
# build/reliability.json. Usage: scripts/reliability.sh [--repeat N] [--only TEXT]
# Run as root for the network-partition scenario (it uses ip netns); otherwise it is skipped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/build_target.sh"
dtask_build_target reliability dtask_faults

exec "$root/build/bench/dtask_faults" --json "$root/build/reliability.json" "$@"
