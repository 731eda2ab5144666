#!/usr/bin/env bash
# Builds and runs a program against an installed dtask with pkg-config alone: one compiler
# command, its flags from `pkg-config --cflags --libs dtask` (with --static for a static
# libdtask), no CMake.
#
# Usage: pkg_config_consumer.sh PREFIX BUILD_DIR SOURCE VERSION shared|static
# Environment: CXX (default c++); CXXFLAGS, the program's own flags (e.g. sanitizers).
set -euo pipefail

if (($# != 5)); then
    echo "usage: $0 PREFIX BUILD_DIR SOURCE VERSION shared|static" >&2
    exit 2
fi
prefix="$1" build="$2" source="$3" version="$4" kind="$5"

pc="$(find "$prefix" -name dtask.pc -path '*/pkgconfig/*' | head -n 1)"
if [[ -z "$pc" ]]; then
    echo "pkg_config_consumer.sh: no dtask.pc under $prefix" >&2
    exit 1
fi
export PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

found="$(pkg-config --modversion dtask)"
if [[ "$found" != "$version" ]]; then
    echo "pkg_config_consumer.sh: dtask.pc says version $found, the project $version" >&2
    exit 1
fi

static=()
[[ "$kind" == static ]] && static=(--static)
flags="$(pkg-config "${static[@]}" --cflags --libs dtask)"
echo "pkg-config ${static[*]} --cflags --libs dtask: $flags"
# libzmq and SQLite are private: a program linked with a shared libdtask must not be told to
# link them, one linked with a static libdtask must.
for lib in -lzmq -lsqlite3; do
    if [[ "$kind" == shared && " $flags " == *" $lib "* ]]; then
        echo "pkg_config_consumer.sh: a shared libdtask's flags name $lib" >&2
        exit 1
    fi
    if [[ "$kind" == static && " $flags " != *" $lib "* ]]; then
        echo "pkg_config_consumer.sh: a static libdtask's flags lack $lib" >&2
        exit 1
    fi
done

rm -rf "$build"
mkdir -p "$build"
# shellcheck disable=SC2086 # the flags are words
"${CXX:-c++}" -std=c++20 ${CXXFLAGS:-} -o "$build/app" "$source" $flags
echo "built $build/app"

libdir="$(pkg-config --variable=libdir dtask)"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$build/app"
