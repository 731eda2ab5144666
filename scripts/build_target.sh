# Sourced by the scripts that build one target of a Release tree and run it.
# dtask_build_target SCRIPT TARGET [TREE]: installs what is missing (setup.sh), configures
# TREE (default build/; Ninja for a new tree), builds TARGET quietly into
# TREE/SCRIPT-build.log, and on failure shows the log's tail and exits 1.

dtask_build_target() {
    local script="$1" target="$2" tree="${3:-build}"
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    local build="$root/$tree"

    "$root/scripts/setup.sh" >&2

    # Pick the generator only for a new build tree: re-passing a different one to an
    # existing tree is an error.
    local generator=()
    [[ -f "$build/CMakeCache.txt" ]] || generator=(-G Ninja)

    local log="$build/$script-build.log"
    mkdir -p "$build"
    echo "$script.sh: building $target (log: ${log#"$root"/})" >&2
    if ! { cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release &&
           cmake --build "$build" --target "$target" -j2; } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "$script.sh: build failed; full log in $log" >&2
        exit 1
    fi
}
