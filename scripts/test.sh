#!/usr/bin/env bash
# Sets up, builds and runs the tests through ctest, in tiers:
#   scripts/test.sh            the default tier: everything that checks behaviour
#                              (labels unit, privileged, smoke; the reports
#                              tests are label unit) but the end-to-end commands
#   scripts/test.sh --all      adds the end-to-end commands (label e2e: ci/nightly,
#                              qualify on real runs) and the sanitizer and fuzz
#                              tier (label sanitize, scripts/sanitize-test.sh);
#                              this is what .ci/run runs
#   scripts/test.sh -L slow    the kernel-matrix VM tests, only when asked
# Any other arguments go to ctest as they are (`scripts/test.sh -L unit`).
# Every tier ends with the list of skipped tests and why each was skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--all" ]; then
  shift
  set -- -LE slow "$@"
elif [ $# -eq 0 ]; then
  set -- -LE 'slow|sanitize|e2e'
fi
bash scripts/setup.sh --with-browser  # the report tests screenshot index.html in Chromium
bash scripts/build.sh
cd build
rm -f Testing/junit.xml
rc=0
ctest --output-on-failure --timeout 900 --output-junit "$PWD/Testing/junit.xml" "$@" || rc=$?
[ -f Testing/junit.xml ] && /usr/bin/python3 ../scripts/skip_report.py Testing/junit.xml
exit $rc
