#!/usr/bin/env bash
# Measures dtask's throughput, latency, overhead, scaling and memory: builds dtask_perf
# (Release, in build-bench/), runs it, keeps every figure in build-bench/perf.json and draws
# the plots into docs/images/ (how long it takes: docs/performance.md).
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/bench.sh [--help] [dtask_perf options]

  1. installs missing Debian packages (scripts/setup.sh), python3-matplotlib included
  2. builds dtask_perf, Release, in build-bench/ (log: build-bench/bench-build.log)
  3. runs build-bench/bench/dtask_perf --json build-bench/perf.json [options]: a table of
     every figure next to its baseline, medians of the repetitions
  4. draws docs/images/efficiency.png and docs/images/broker_scaling.png from the JSON
     (bench/plot_performance.py); with --quick into build-bench/images/ instead, so that
     smoke-test sizes never replace the published plots

dtask_perf options, passed on as they are:
  --quick        tiny sizes, a few seconds: checks that every scenario works
  --repeat N     repetitions per figure (default 5)
  --only NAME    one scenario (repeatable); build-bench/bench/dtask_perf --help lists them

Exit status: dtask_perf's (1 if a job returned a wrong result or a scenario failed; targets
missed are reported in the table, not an error), or 1 if the build or a plot failed.
USAGE
}

quick=0
for arg in "$@"; do
    case "$arg" in
        -h | --help) usage; exit 0 ;;
        --quick) quick=1 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start=$SECONDS
source "$root/scripts/build_target.sh"
dtask_build_target bench dtask_perf build-bench

json="$root/build-bench/perf.json"
images="$root/docs/images"
((quick)) && images="$root/build-bench/images"
rm -f "$json"  # a failed run must not leave an older run's figures to plot

status=0
"$root/build-bench/bench/dtask_perf" --json "$json" "$@" || status=$?
if [[ -f "$json" ]]; then
    "$root/bench/plot_performance.py" "$json" "$images" || status=1
fi
echo "bench.sh: done in $((SECONDS - start)) s; figures in ${json#"$root"/}," \
     "plots in ${images#"$root"/}/" >&2
exit "$status"
