#!/usr/bin/env bash
# Systemd.units_pass_systemd_analyze_verify: the unit files of deploy/systemd/, with the
# built programs in place of the installed paths, pass `systemd-analyze verify` without a
# single warning; and a copy with a mistake planted in it does not (so the check can fail).
#
#   tests/systemd_units_test.sh SOURCE_DIR DTASKD WORKER_PROGRAM
set -euo pipefail

source_dir="$1" dtaskd="$2" program="$3"
command -v systemd-analyze >/dev/null 2>&1 ||
    { echo "dtask-test skipped: no systemd-analyze (Debian package systemd; scripts/setup.sh)"; exit 0; }

units="$(mktemp -d "${TMPDIR:-/tmp}/units-XXXXXX")"
trap 'rm -rf "$units"' EXIT
sed "s|/usr/local/bin/dtaskd|$dtaskd|g" "$source_dir/deploy/systemd/dtaskd.service" \
    >"$units/dtaskd.service"
sed "s|/usr/local/bin/dtask-worker-program|$program|g" \
    "$source_dir/deploy/systemd/dtask-worker@.service" >"$units/dtask-worker@.service"
for unit in dtaskd.service dtask-worker@.service; do
    grep -q "^ExecStart=/.*" "$units/$unit" || { echo "FAILED: $unit has no ExecStart" >&2; exit 1; }
done

# verify: prints what systemd-analyze says about the units; fails on any word from it.
verify() {
    local said status=0
    said="$(systemd-analyze verify "$@" 2>&1)" || status=$?
    if ((status != 0)) || [[ -n "$said" ]]; then
        echo "$said"
        return 1
    fi
}

if ! verify "$units/dtaskd.service" "$units/dtask-worker@.service"; then
    echo "FAILED: systemd-analyze verify has something to say about deploy/systemd/" >&2
    exit 1
fi
sed 's/^Restart=always/Restart=sometimes/' "$units/dtask-worker@.service" >"$units/planted.service"
if verify "$units/planted.service" >/dev/null; then
    echo "FAILED: a unit with Restart=sometimes passed: the check cannot fail" >&2
    exit 1
fi
echo "deploy/systemd/dtaskd.service and dtask-worker@.service: systemd-analyze verify says nothing"
