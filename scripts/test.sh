#!/usr/bin/env bash
# Sets up, builds and runs every test through ctest (unit, privileged, smoke,
# reports). Labels: `scripts/test.sh -L unit` runs only those. The slow
# kernel-matrix VM test runs only when asked: `scripts/test.sh -L slow`.
# It ends with the list of skipped tests and why each was skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-browser  # the report tests screenshot index.html in Chromium
bash scripts/build.sh
cd build
if [ $# -eq 0 ]; then set -- -LE slow; fi
rm -f Testing/junit.xml
rc=0
ctest --output-on-failure --timeout 900 --output-junit "$PWD/Testing/junit.xml" "$@" || rc=$?
[ -f Testing/junit.xml ] && /usr/bin/python3 ../scripts/skip_report.py Testing/junit.xml
exit $rc
