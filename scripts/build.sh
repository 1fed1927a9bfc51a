#!/usr/bin/env bash
# Configures and builds the project with CMake into ./build.
#
#   scripts/build.sh [extra cmake configure args...]
#
# Environment:
#   BUILD_DIR   build folder (default: build)
#   BUILD_TYPE  CMAKE_BUILD_TYPE (default: RelWithDebInfo)
#   BUILD_JOBS  parallel jobs (default: nproc)
#   CCACHE_DIR  ccache's cache (default: ~/.cache/ccache); ccache is used when installed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

build_dir=${BUILD_DIR:-build}
build_type=${BUILD_TYPE:-RelWithDebInfo}
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

# Developers and CI build with warnings as errors (BIDDING_WARNINGS_AS_ERRORS=OFF to turn off).
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" \
    -DBIDDING_WARNINGS_AS_ERRORS="${BIDDING_WARNINGS_AS_ERRORS:-ON}" "${launcher[@]}" "$@"
cmake --build "$build_dir" --parallel "$jobs"

if [[ -n ${launcher[*]} ]]; then
    ccache --show-stats 2>/dev/null | grep -Ei '^\s*(hits|misses|cache hit|cache miss)' || true
fi
