#!/usr/bin/env bash
# Issue 27: when `capacity` fails after it entered the sandbox, the sandbox is
# still left (its work directory /tmp/.mntscale-<pid> removed) and the run
# lock released: MeasuredCommand does both in its destructor, on every path.
# The failure is the failpoint `capacity-after-sandbox` (MNTSCALE_FAILPOINT),
# thrown right after the sandbox is entered; without the destructor the work
# directory stays behind and this test fails.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
export MNTSCALE_LOCK="$TMP/run.lock"
fail=0
MNTSCALE_FAILPOINT=capacity-after-sandbox "$BIN" capacity --slo 'start_p99_s<=5' --start 2 \
  --max-containers 4 --budget 60 --window 0.1 --out "$TMP/c.json" >"$TMP/err" 2>&1 &
pid=$!
wait $pid; rc=$?
[ $rc -eq 1 ] || { echo "FAIL: rc=$rc, want 1: $(head -c 300 "$TMP/err")"; fail=1; }
grep -qF "failpoint capacity-after-sandbox" "$TMP/err" || { echo "FAIL: no failpoint message: $(head -c 300 "$TMP/err")"; fail=1; }
[ ! -e "/tmp/.mntscale-$pid" ] || { echo "FAIL: the sandbox's work directory /tmp/.mntscale-$pid was left"; fail=1; }
# (after exit the kernel drops the flock anyway; this guards a lock leaked to a child)
flock -n "$MNTSCALE_LOCK" true || { echo "FAIL: the run lock is still held"; fail=1; }
[ ! -e "$TMP/c.json" ] || { echo "FAIL: a result was written"; fail=1; }
host_mounts_unchanged || { echo "FAIL: host mount table changed"; fail=1; }
[ $fail -eq 0 ] && echo PASS
exit $fail
