#!/usr/bin/env bash
# The sanitizer pass (issue 14): builds everything with clang, AddressSanitizer
# and UBSan into build-sanitize/ (MNTSCALE_SANITIZE + MNTSCALE_FUZZ), then runs
# the unit tests, each libFuzzer target for MNTSCALE_FUZZ_SECONDS (default 20)
# and the input, lock and event smoke tests against the sanitized binary; as
# root, the privileged GoogleTest suites too. scripts/test.sh runs it through
# ctest (label `sanitize`).
# Exit 77 (skip) without clang.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang++ >/dev/null || ! command -v clang >/dev/null; then
  echo "SKIP: clang is not installed (scripts/setup.sh installs it)"; exit 77
fi
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
CC=clang CXX=clang++ cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMNTSCALE_SANITIZE=ON -DMNTSCALE_FUZZ=ON \
  -DMNTSCALE_FUZZ_SECONDS="${MNTSCALE_FUZZ_SECONDS:-20}" "${launcher[@]}" >/dev/null
cmake --build build-sanitize -j"$(nproc)"
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd build-sanitize
# Unit tests (C++ only: the pytest suites are not built code) and the fuzzers,
# then the smoke tests that feed the binary bad input, take the lock, count events.
ctest --output-on-failure --timeout 600 -L unit -E 'pytest'
ctest --output-on-failure --timeout 600 -L fuzz
ctest --output-on-failure --timeout 600 -R 'smoke\.(bad_input|input_limits|output_safety|events_validation|run_lock)$'
# The privileged GoogleTest suites (real namespaces and mounts; about 5 s).
# ci.nightly is Python driving the binary, and the slow label is the VM boot.
if [ "$(id -u)" -eq 0 ]; then
  ctest --output-on-failure --timeout 900 -L privileged -LE slow -E 'ci\.nightly'
else
  echo "sanitize-test: not root, privileged suites not run"
fi
