#!/usr/bin/env bash
# Runs one test command the way ctest should judge it: every test goes through here.
#
# - Sanitizer reports from any process the test starts (workers, dtaskd, examples) are written
#   to a directory of this run's own (log_path), and any report fails the test, even when the
#   test itself passed: a worker killed by a report is replaced and its batch rerun, so the
#   job alone would never show it.
# - The test gets a scratch TMPDIR, removed afterwards whatever happened.
# - The test is stopped after --timeout seconds (before ctest's own limit, so that this
#   script can still clean up): SIGTERM, then SIGKILL 5 s later.
# - Processes the test started and left running fail the test and are killed; so are network
#   namespaces it left (the fault tests' "remote machines").
# - --expect-exit and --expect-output check the exit status and the output (the examples'
#   tests), --expect-sanitizer-report inverts the report check (the test that shows a report
#   in a worker fails its test).
set -uo pipefail

usage() {
    cat <<'USAGE'
Usage: tests/run_checked.sh [options] [--] COMMAND [ARG...]

  --timeout SECONDS            stop the command after this long (default 170)
  --expect-exit N              fail unless the command exits with status N (default: pass
                               its status through)
  --expect-output REGEX        fail unless the output (stdout and stderr) matches the
                               extended regular expression
  --expect-sanitizer-report REGEX
                               pass only if the command exits 0 and a sanitizer report
                               matching REGEX was written (the planted-bug tests)
  --help                       show this help
USAGE
}

timeout_s=170
expect_exit=""
expect_output=""
expect_report=""
while (($# > 0)); do
    case "$1" in
        --timeout) timeout_s="$2"; shift 2 ;;
        --expect-exit) expect_exit="$2"; shift 2 ;;
        --expect-output) expect_output="$2"; shift 2 ;;
        --expect-sanitizer-report) expect_report="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        --) shift; break ;;
        -*) echo "run_checked.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
        *) break ;;
    esac
done
if (($# == 0)); then
    usage >&2
    exit 2
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/dtask-run-XXXXXX")" || exit 2
mkdir "$scratch/tmp" "$scratch/sanitizer"
export TMPDIR="$scratch/tmp"
# Sanitizer options are read by each process at start, so every process the test starts
# writes its reports here: report.<program>.<pid>.
report_options="log_path=$scratch/sanitizer/report:log_exe_name=1"
for variable in ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS LSAN_OPTIONS; do
    export "$variable=${!variable:+${!variable}:}$report_options"
done
# Every process started from here inherits this: what is still running afterwards was left.
export DTASK_TEST_RUN="$scratch"

# The processes whose environment holds this run's marker. This shell's own environment (as
# /proc shows it, the one it was started with) does not; grep's pid is not in the list yet.
processes_of_this_run() {
    grep -lzxF "DTASK_TEST_RUN=$scratch" /proc/[0-9]*/environ 2>/dev/null |
        sed -e 's|^/proc/||' -e 's|/environ$||'
}

# Network namespaces named for a test process that is gone: dtask-test-PID (RemoteNetwork,
# with its link dtvPIDh here) and dtask-hosts-PID-NAME (ManyHosts, with its link dtmPIDr).
remove_abandoned_namespaces() {
    command -v ip >/dev/null 2>&1 || return 0
    local name id link
    while read -r name _; do
        case "$name" in
            dtask-test-*) id="${name#dtask-test-}" link="dtv${id}h" ;;
            dtask-hosts-*) id="${name#dtask-hosts-}" id="${id%%-*}" link="dtm${id}r" ;;
            *) continue ;;
        esac
        [[ "$id" =~ ^[0-9]+$ && ! -d "/proc/$id" ]] || continue
        echo "run_checked.sh: removing network namespace $name, left by a test process" >&2
        ip netns del "$name" >/dev/null 2>&1
        ip link del "$link" >/dev/null 2>&1
    done < <(ip netns list 2>/dev/null)
}

cleanup() {
    rm -rf "$scratch"
}
trap cleanup EXIT

output="$scratch/output"
# timeout(1) runs the command in a process group of its own and signals the whole group. The
# output goes to a file, not a pipe, so that a process left running cannot hold this up.
timeout --kill-after=5 "$timeout_s" "$@" >"$output" 2>&1
status=$?
cat "$output"
failed=0
if ((status == 124 || status == 137)) && [[ "$expect_exit" != 124 && "$expect_exit" != 137 ]]; then
    echo "run_checked.sh: FAILED: stopped after its limit of $timeout_s s: $*" >&2
    failed=1
fi

# What the test left running. A process killed with its parent (PR_SET_PDEATHSIG) may still
# be on its way out: give each a bounded wait before it counts as left behind.
left=()
for pid in $(processes_of_this_run); do
    if ! timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null; then
        left+=("$pid")
    fi
done
if ((${#left[@]} > 0)); then
    for pid in "${left[@]}"; do
        echo "run_checked.sh: FAILED: process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)) is still running after the test; killed" >&2
        kill -KILL "$pid" 2>/dev/null
    done
    failed=1
fi
remove_abandoned_namespaces

reports=("$scratch"/sanitizer/report*)
[[ -e "${reports[0]}" ]] || reports=()
if [[ -n "$expect_report" ]]; then
    if ((status != 0)); then
        echo "run_checked.sh: FAILED: the command exited with status $status; the planted bug" \
             "must be seen by its sanitizer report alone" >&2
        failed=1
    elif ! cat "${reports[@]}" /dev/null | grep -qE -e "$expect_report"; then
        echo "run_checked.sh: FAILED: no sanitizer report matching '$expect_report'" \
             "(${#reports[@]} report file(s))" >&2
        failed=1
    else
        echo "run_checked.sh: the planted bug was reported, as expected:"
        for report in "${reports[@]}"; do
            echo "  $(basename "$report"): $(grep -m1 -E 'ERROR|WARNING|runtime error' "$report")"
        done
    fi
    ((failed)) && exit 1
    exit 0
fi

if ((${#reports[@]} > 0)); then
    for report in "${reports[@]}"; do
        echo "===== sanitizer report: $(basename "$report") ====="
        cat "$report"
    done
    echo "run_checked.sh: FAILED: ${#reports[@]} sanitizer report(s) from the processes of this test" >&2
    failed=1
fi
if [[ -n "$expect_exit" ]] && ((status != expect_exit)); then
    echo "run_checked.sh: FAILED: exit status $status, expected $expect_exit" >&2
    failed=1
fi
if [[ -n "$expect_output" ]] && ! grep -qE -e "$expect_output" "$output"; then
    echo "run_checked.sh: FAILED: the output does not match '$expect_output'" >&2
    failed=1
fi
if ((failed)); then
    # A skipped test that then failed must not read as skipped.
    ((status == 0)) && status=1
    exit "$status"
fi
if [[ -n "$expect_exit" ]]; then
    exit 0
fi
exit "$status"
