#!/usr/bin/env bash
# Configures and builds into build/ (the binary is build/mntscale).
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache (scripts/setup.sh installs it) makes rebuilds and fresh worktrees cheap;
# CCACHE_BASEDIR lets two checkouts of the tree share objects.
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(dirname "$PWD")}" CCACHE_NOHASHDIR=1
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build build -j"$(nproc)"
