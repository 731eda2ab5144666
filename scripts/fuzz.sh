#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang 14 in build-fuzz/ and runs each for a while.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/fuzz.sh [seconds] [--seeds] [--help]

Builds fuzz_archive, fuzz_broker, fuzz_worker, fuzz_client and fuzz_repro_bundle
(-fsanitize=fuzzer,address,undefined) in build-fuzz/ and runs each for `seconds` (default 60), starting from its seeds
in fuzz/corpus/<target>/ and what earlier runs found (build-fuzz/corpus/<target>/, not
checked in). Prints the executions and coverage (cov: edges, ft: features) of each target,
and exits non-zero if any crashed, leaked, hit a sanitizer or allocated more than
64 MiB at once (a reproducer is left in build-fuzz/crashes/).

  --seeds  rewrite the checked-in seeds (fuzz/corpus/) from real messages, then stop
  --help   show this help

Set FUZZ_NICE=19 (say) to run the fuzzers at a lower priority.
USAGE
}

seconds=60
seeds=0
for arg in "$@"; do
    case "$arg" in
        --seeds) seeds=1 ;;
        -h | --help) usage; exit 0 ;;
        '' | *[!0-9]*) echo "fuzz.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
        *) seconds="$arg" ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build=build-fuzz
targets=(fuzz_archive fuzz_broker fuzz_worker fuzz_client fuzz_repro_bundle)

generator=()
[[ -f "$build/CMakeCache.txt" ]] || generator=(-G Ninja)
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_COMPILER=clang++-14 -DDTASK_BUILD_FUZZERS=ON -DDTASK_BUILD_TESTS=OFF \
    -DDTASK_BUILD_EXAMPLES=OFF -DDTASK_BUILD_BENCHMARKS=OFF -DDTASK_BUILD_DTASKD=OFF \
    -DDTASK_INSTALL=OFF >/dev/null
cmake --build "$build" -j2 --target "${targets[@]}" make_corpus

if ((seeds)); then
    rm -rf fuzz/corpus
    "$build/fuzz/make_corpus" fuzz/corpus
    echo "fuzz.sh: seeds written to fuzz/corpus/"
    exit 0
fi

export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
mkdir -p "$build/crashes"
failed=()
summary=()
for target in "${targets[@]}"; do
    corpus="$build/corpus/$target"
    mkdir -p "$corpus"
    log="$build/$target.log"
    echo "fuzz.sh: $target for $seconds s"
    status=0
    # A decoder must allocate in proportion to its input (at most 16 KiB here): one
    # allocation over 64 MiB is a finding.
    nice -n "${FUZZ_NICE:-0}" "$build/fuzz/$target" -max_total_time="$seconds" -max_len=16384 \
        -malloc_limit_mb=64 -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$build/crashes/$target-" "$corpus" "fuzz/corpus/$target" \
        >"$log" 2>&1 || status=$?
    # The last status line: "#<executions> DONE cov: <edges> ft: <features> corp: ...".
    line="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
    execs="$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$line")"
    cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$line")"
    ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$line")"
    if ((status != 0)); then
        failed+=("$target")
        summary+=("$(printf '%-13s FAILED (exit %s): see %s' "$target" "$status" "$log")")
        grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -5 >&2 || true
    else
        summary+=("$(printf '%-13s %10s executions  cov: %-6s ft: %s' "$target" "${execs:-?}" \
            "${cov:-?}" "${ft:-?}")")
    fi
done
echo
printf '%s\n' "${summary[@]}"
if ((${#failed[@]} != 0)); then
    echo "fuzz.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: no crash in ${#targets[@]} targets, $seconds s each"
