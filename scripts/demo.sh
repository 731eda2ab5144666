#!/usr/bin/env bash
# Builds the sum_squares example (Release, into build/) and runs it.
# Usage: scripts/demo.sh [arguments for sum_squares...]; the exit code is the example's.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/build_target.sh"
dtask_build_target demo sum_squares

exec "$root/build/examples/sum_squares" "$@"
