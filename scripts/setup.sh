#!/usr/bin/env bash
# Installs the Debian packages that building, testing and measuring dtask use, and no others.
#
# Called by scripts/demo.sh and scripts/test.sh; sourcing it works too (it then also defines
# dtask_setup). It asks dpkg first, so a machine that has everything makes no apt call at all.
# Set DTASK_SKIP_SETUP=1 to skip it (for example on a non-Debian machine whose dependencies
# are installed another way). clang is there because scripts/test.sh builds with both compilers
# (libclang-rt-14-dev: libFuzzer, for scripts/fuzz.sh);
# iproute2 (the ip and tc commands) because tests cut a worker off with network namespaces
# and slow its link down with tc;
# python3 for the test scripts (tests/*.py, tests/http, tests/packaging) and
# bench/plot_performance.py, which draws the plots of scripts/bench.sh with python3-matplotlib;
# pkg-config because cpp-httplib is found through it and a test builds a program with
# dtask.pc alone;
# libsqlite3-dev because a job's checkpoint (RunOptions::checkpoint) is an SQLite file;
# libcli11-dev for dtaskd's command line;
# libcpp-httplib-dev and nlohmann-json3-dev for dtaskd's HTTP endpoint (--http) and
# python3-prometheus-client and python3-jsonschema for the tests that check what it serves;
# chromium, chromium-driver and python3-selenium because tests/dashboard_test.py opens the
# dashboard in a real (headless) browser.
# Slurm (slurm-wlm, munge) is not here: scripts/test.sh --with-slurm installs it.

dtask_setup() {
    local packages=(build-essential cmake ninja-build pkg-config libzmq3-dev cppzmq-dev
                    libcereal-dev libsqlite3-dev doctest-dev libcli11-dev clang libclang-rt-14-dev iproute2
                    python3 python3-matplotlib libcpp-httplib-dev nlohmann-json3-dev
                    python3-prometheus-client python3-jsonschema chromium chromium-driver
                    libpng-dev  # examples/mandelbrot.cpp alone writes PNG files
                    doxygen     # scripts/docs.sh: the API reference
                    systemd     # systemd-analyze verify checks deploy/systemd/ (a test)
                    python3-selenium)
    if [[ "${DTASK_SKIP_SETUP:-0}" == 1 ]]; then
        echo "setup.sh: skipped (DTASK_SKIP_SETUP=1)"
        return 0
    fi
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        echo "setup.sh: not a Debian-like system (no dpkg-query/apt-get); make sure these are" \
             "installed: ${packages[*]}" >&2
        return 0
    fi

    local missing=() package status
    for package in "${packages[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null || true)"
        [[ "$status" == ii* ]] || missing+=("$package")
    done
    if ((${#missing[@]} == 0)); then
        echo "setup.sh: all ${#packages[@]} packages already installed"
        return 0
    fi

    local sudo=()
    if ((EUID != 0)); then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "setup.sh: missing packages (${missing[*]}), not root and no sudo;" \
                 "install them as root: apt-get install ${missing[*]}" >&2
            return 1
        fi
        sudo=(sudo)
    fi
    echo "setup.sh: installing ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null || return 1
}

# Executed: strict mode, exit with its status. Sourced: the source command returns its status,
# without changing the caller's shell options.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
fi
dtask_setup
