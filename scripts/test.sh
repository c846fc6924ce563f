#!/usr/bin/env bash
# Sets up, builds and runs every test through ctest (unit, privileged, smoke,
# reports). Labels: `scripts/test.sh -L unit` runs only those. The slow
# kernel-matrix VM test runs only when asked: `scripts/test.sh -L slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-browser  # the report tests screenshot index.html in Chromium
bash scripts/build.sh
cd build
if [ $# -eq 0 ]; then set -- -LE slow; fi
ctest --output-on-failure --timeout 900 "$@"
