#!/usr/bin/env bash
# The main job on its default configuration: set up, build, run path_walk at
# 1, 10, 100 and 300 containers with 1 and 2 workers, then make the report.
# Extra arguments go to `mntscale run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
stamp=$(date +%Y%m%d-%H%M%S)
out=results/$(hostname)-$(uname -r)-$stamp.json
mkdir -p results
./build/mntscale run --scenario path_walk --repetitions 3 --out "$out" "$@"
/usr/bin/python3 reports/mntscale_report.py report "results/report-$stamp" "$out" --mntscale ./build/mntscale
echo "result: $out"
echo "report: results/report-$stamp/index.html"
