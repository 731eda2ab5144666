#!/usr/bin/env bash
# Slurm.sbatch_sum_squares_exit_status_is_0: examples/slurm/sum_squares.sbatch on a real
# single-node Slurm (scripts/slurm_local.sh), submitted with `sbatch --wait`. The job's exit
# status must be 0 with the right sum in its output, and not 0 when the expected sum is
# wrong. The local Slurm is stopped and removed whatever happens.
#
#   tests/slurm_test.sh SOURCE_DIR DTASKD SUM_SQUARES
set -euo pipefail

source_dir="$1" dtaskd="$2" program="$3"
skip() {
    echo "dtask-test skipped: $*"
    exit 0
}
for command in sbatch slurmctld slurmd munged mungekey; do
    command -v "$command" >/dev/null 2>&1 ||
        skip "no $command: install Slurm with scripts/test.sh --with-slurm"
done
((EUID == 0)) || skip "slurmd must run as root to start jobs"

work="$(mktemp -d "${TMPDIR:-/tmp}/slurm-test-XXXXXX")"
slurm="$work/slurm"
trap '"$source_dir/scripts/slurm_local.sh" down "$slurm"; rm -rf "$work"' EXIT
"$source_dir/scripts/slurm_local.sh" up "$slurm"
export SLURM_CONF="$slurm/slurm.conf"

# submit NAME [ARGS...]: runs the job to its end; its exit status is sbatch --wait's.
submit() {
    local name="$1"
    shift
    # Three tasks on a machine that may have fewer cores: dtaskd with the client, 2 workers.
    # The time limit bounds the job whatever happens to it (the test's own limit is 170 s).
    DTASKD="$dtaskd" DTASK_PROGRAM="$program" timeout 120 \
        sbatch --wait --quiet --ntasks=3 --overcommit --time=2 --chdir="$work" \
        --output="$work/$name.out" "$source_dir/examples/slurm/sum_squares.sbatch" "$@"
}

status=0
submit right 200000 || status=$?
echo "--- job output (right):"
cat "$work/right.out"
if ((status != 0)); then
    echo "FAILED: the job's exit status is $status, not 0" >&2
    exit 1
fi
# Not a whole line: the job's output holds stderr too, and a slow run (a sanitizer build)
# shows a progress line, ended by a carriage return, in front of the result.
grep -q 'sum of squares of 1\.\.200000 = 2666686666700000$' "$work/right.out" ||
    { echo "FAILED: the job's output lacks the right sum" >&2; exit 1; }
grep -q 'joined (remote, 2 worker(s) now)' "$work/right.out" ||
    { echo "FAILED: the job's 2 workers did not both join dtaskd" >&2; exit 1; }
if grep -q 'a worker ended with status' "$work/right.out"; then
    echo "FAILED: a worker did not exit 0 when dtaskd dismissed it" >&2
    exit 1
fi

status=0
submit wrong 200000 42 || status=$?
echo "--- job output (wrong expected sum):"
cat "$work/wrong.out"
if ((status == 0)); then
    echo "FAILED: a job whose result is not the expected one exited 0" >&2
    exit 1
fi
grep -q 'wrong result: expected 42' "$work/wrong.out" ||
    { echo "FAILED: the job did not say the result was wrong" >&2; exit 1; }
echo "the job exits 0 with the right sum, and $status when the sum is not the expected one"
