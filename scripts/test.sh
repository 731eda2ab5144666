#!/usr/bin/env bash
# Builds dtask and runs its whole test suite three times: g++ Release, clang++ with
# ASan+UBSan, g++ with TSan; then runs each fuzzer for a few seconds.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/test.sh [--no-sanitizers] [--with-slurm] [--help]

Stages, stopping at the first failure:
  1. install missing Debian packages (scripts/setup.sh)
  2. Release build with g++ in build/, then ctest (the only stage that builds and
     smoke-runs the benchmarks: the others check a compiler and sanitizers on the library).
     Its libdtask is shared (BUILD_SHARED_LIBS=ON), the others' static: the examples run
     against libdtask.so here, and the packaging tests build the other kind themselves
  3. clang++ build with ASan+UBSan (Debug: -O0 compiles four times faster) in build-asan/,
     then ctest
  4. g++ build with TSan (Debug) in build-tsan/, then ctest (without the tests that only
     compile code, install the package or check the docs: stage 2 ran them with g++)
  5. fuzz: each libFuzzer target of fuzz/ for 10 s (scripts/fuzz.sh 10, in build-fuzz/)

Stages 2 to 4 are unity builds (six sources per compiler run), which halves their compile
time. The packaging tests of stage 2 build the library as users do, one source at a time,
which shows a source that misses an include.

Each stage's tests run while the next stage builds, at a lower priority (nice 10): the
tests mostly wait on processes and sockets, and they must pass on a busy machine anyway.
A stage's test output is shown when they end.

  --no-sanitizers  skip stages 3 to 5 (quick local runs)
  --with-slurm     also install Debian's slurm-wlm and munge (scripts/slurm_local.sh
                   install), so that Slurm.sbatch_sum_squares_exit_status_is_0 runs: it
                   starts a single-node Slurm of its own as root, submits
                   examples/slurm/sum_squares.sbatch and removes that Slurm again. Without
                   Slurm installed, the test is not registered
  --help           show this help

Every test runs through tests/run_checked.sh: a sanitizer report from any process of a
test, a process it leaves running, or a wrong exit status fails it. A test that cannot run
here (no network namespaces, say) is reported by ctest as skipped, with its reason, and the
skipped tests of all stages are listed at the end. With DTASK_NO_SKIPS=1 in the environment
(CI sets it), a skipped test fails the run.
USAGE
}

sanitizers=1
with_slurm=0
for arg in "$@"; do
    case "$arg" in
        --no-sanitizers) sanitizers=0 ;;
        --with-slurm) with_slurm=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "test.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Runs one stage; on failure names it and exits with its status.
stage() {
    local name="$1"
    shift
    echo
    echo "=== test.sh: $name"
    local start=$SECONDS status=0
    "$@" || status=$?
    if ((status != 0)); then
        echo
        echo "test.sh: FAILED at stage '$name' (exit $status)" >&2
        exit "$status"
    fi
    echo "=== test.sh: $name: ok ($((SECONDS - start)) s)"
}

# configure <build dir> <cmake args...>: the generator is chosen only for a new build tree.
configure() {
    local dir="$1"
    shift
    local generator=()
    [[ -f "$dir/CMakeCache.txt" ]] || generator=(-G Ninja)
    cmake -S "$root" -B "$dir" "${generator[@]}" \
        -DDTASK_BUILD_TESTS=ON -DDTASK_BUILD_EXAMPLES=ON "$@"
}

skipped_list="$(mktemp)"

# run_ctest <build dir> <stage> [ctest args...]: runs the suite, then notes its skipped tests
# and why.
run_ctest() {
    local dir="$1" name="$2"
    shift 2
    ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2 --timeout 300 "$@" || return
    # The reason is the line tests/support.cpp's skip_test printed, in ctest's full log.
    awk -v stage="$name" '
        /^[0-9]+\/[0-9]+ Testing: / { sub(/^[0-9]+\/[0-9]+ Testing: /, ""); name = $0 }
        /dtask-test skipped: / { sub(/.*dtask-test skipped: /, ""); print "  " stage ": " name ": " $0 }
    ' "$dir/Testing/Temporary/LastTest.log" >>"$skipped_list"
}

# Tests running in the background while the next stage builds: their stage name, pid, log.
background_name=""
background_pid=""
background_log="$(mktemp)"
trap 'rm -f "$skipped_list" "$background_log"; [[ -z "$background_pid" ]] || kill -- -"$background_pid" 2>/dev/null || true' EXIT

# start_ctest <build dir> <stage> [ctest args...]: runs the suite in the background (in a
# process group of its own, so that an early exit stops all of it).
start_ctest() {
    background_name="$2: ctest"
    echo
    echo "=== test.sh: $background_name (in the background)"
    set -m
    run_ctest "$@" >"$background_log" 2>&1 &
    background_pid=$!
    set +m
    background_start=$SECONDS
}

# wait_ctest: waits for the tests started last, shows their output, and stops on failure.
wait_ctest() {
    [[ -n "$background_pid" ]] || return 0
    local status=0
    wait "$background_pid" || status=$?
    background_pid=""
    echo
    echo "=== test.sh: $background_name (output)"
    cat "$background_log"
    if ((status != 0)); then
        echo
        echo "test.sh: FAILED at stage '$background_name' (exit $status)" >&2
        exit "$status"
    fi
    echo "=== test.sh: $background_name: ok ($((SECONDS - background_start)) s)"
}

# The skipped tests of every stage; with DTASK_NO_SKIPS=1, any of them fails the run.
report_skipped() {
    if [[ ! -s "$skipped_list" ]]; then
        echo "test.sh: no test was skipped"
        return 0
    fi
    echo "test.sh: $(wc -l <"$skipped_list") test run(s) skipped:"
    cat "$skipped_list"
    if [[ "${DTASK_NO_SKIPS:-0}" == 1 ]]; then
        echo "test.sh: FAILED: DTASK_NO_SKIPS=1 and tests were skipped" >&2
        return 1
    fi
}

stage "setup" scripts/setup.sh
if ((with_slurm)); then
    stage "setup: slurm" scripts/slurm_local.sh install
fi

# Six sources per compiler run (see --help).
unity=(-DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=6)

stage "release: configure" configure build -DCMAKE_BUILD_TYPE=Release -DDTASK_SANITIZE= \
    -DBUILD_SHARED_LIBS=ON "${unity[@]}"
stage "release: build" cmake --build build -j2
if ((!sanitizers)); then
    stage "release: ctest" run_ctest build release
else
    start_ctest build release

    # Ours first so that options already in the environment (verbosity=1, ...) can add to them.
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
    stage "clang asan+ubsan: configure" configure build-asan -DCMAKE_BUILD_TYPE=Debug \
        -DCMAKE_CXX_COMPILER=clang++ -DDTASK_SANITIZE=address,undefined -DDTASK_BUILD_BENCHMARKS=OFF \
        "${unity[@]}"
    stage "clang asan+ubsan: build" nice -n 10 cmake --build build-asan -j2
    wait_ctest
    start_ctest build-asan "clang asan+ubsan"

    # Debian's libzmq is not built with TSan, so its I/O thread's hand-offs are invisible to
    # it: scripts/tsan.supp silences reports from inside libzmq, and only those.
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/scripts/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
    stage "tsan: configure" configure build-tsan -DCMAKE_BUILD_TYPE=Debug \
        -DDTASK_SANITIZE=thread -DDTASK_BUILD_BENCHMARKS=OFF "${unity[@]}"
    stage "tsan: build" nice -n 10 cmake --build build-tsan -j2
    wait_ctest
    start_ctest build-tsan tsan -E '^(CompileFail|CompileClean|Packaging|Docs)[.]'

    stage "fuzz" env FUZZ_NICE=10 scripts/fuzz.sh 10
    wait_ctest
fi
echo
report_skipped || exit 1
if ((sanitizers)); then
    echo "test.sh: all stages passed"
else
    echo "test.sh: all stages passed (clang with ASan+UBSan, TSan and fuzzing skipped: --no-sanitizers)"
fi
