#!/usr/bin/env bash
# Configures and builds the project with CMake, from a preset of CMakePresets.json.
#
#   scripts/build.sh [extra cmake configure args...]
#
# Environment:
#   BUILD_PRESET  configure preset (default: dev, the developer/CI one: warnings as errors,
#                 RelWithDebInfo, into ./build; asan and tsan build the sanitizer variants)
#   BUILD_DIR     build folder (default: the preset's)
#   BUILD_TYPE    CMAKE_BUILD_TYPE (default: the preset's)
#   BIDDING_WARNINGS_AS_ERRORS  ON/OFF over the preset's choice
#   BUILD_JOBS    parallel jobs (default: nproc)
#   BUILD_TARGETS targets to build, space-separated (default: all of the configuration's)
#   CCACHE_DIR    ccache's cache (default: ~/.cache/ccache); ccache is used when installed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

preset=${BUILD_PRESET:-dev}
jobs=${BUILD_JOBS:-$(nproc)}

launcher=()
if command -v ccache >/dev/null 2>&1; then
    export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
    # The project uses a precompiled header: without this sloppiness ccache caches nothing.
    export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
    # Hits across clones in different folders (CI clones afresh every run).
    export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}
    export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
    mkdir -p "$CCACHE_DIR"
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
else
    echo "build: ccache not found, building without it"
fi

overrides=()
targets=()
for target in ${BUILD_TARGETS:-}; do
    targets+=(--target "$target")
done
[[ -n ${BUILD_DIR:-} ]] && overrides+=(-B "$BUILD_DIR")
[[ -n ${BUILD_TYPE:-} ]] && overrides+=(-DCMAKE_BUILD_TYPE="$BUILD_TYPE")
[[ -n ${BIDDING_WARNINGS_AS_ERRORS:-} ]] && overrides+=(-DBIDDING_WARNINGS_AS_ERRORS="$BIDDING_WARNINGS_AS_ERRORS")
cmake --preset "$preset" "${overrides[@]}" "${launcher[@]}" "$@"
if [[ -n ${BUILD_DIR:-} ]]; then
    cmake --build "$BUILD_DIR" --parallel "$jobs" "${targets[@]}"
else
    cmake --build --preset "$preset" --parallel "$jobs" "${targets[@]}"
fi

if [[ -n ${launcher[*]} ]]; then
    ccache --show-stats 2>/dev/null | grep -Ei '^\s*(hits|misses|cache hit|cache miss)' || true
fi
