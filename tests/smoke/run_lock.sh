#!/usr/bin/env bash
# issue 14: one run at a time. While a run holds the lock a second one exits 2
# naming the holder's PID, or waits with --wait; a SIGKILLed holder leaves no
# lock behind. The lock file is the test's own (MNTSCALE_LOCK).
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
export MNTSCALE_LOCK=$TMP/run.lock
fail=0
ARGS=(run --scenario path_walk --containers 1 --workers 1 --warmup 0 --quiet)
held_by() {  # held_by PID: true once PID holds a flock on the lock file
  local ino; ino=$(stat -c %i "$MNTSCALE_LOCK" 2>/dev/null) || return 1
  grep -qE "FLOCK +ADVISORY +WRITE +$1 +[0-9a-f:]+:$ino " /proc/locks
}
start_holder() {  # a run long enough to be caught holding the lock
  "$BIN" "${ARGS[@]}" --window 1 --windows 20 --out "$TMP/a.json" & A=$!
  for _ in $(seq 300); do held_by $A && return 0; sleep 0.1; done
  echo "FAIL: the first run never took the lock"; kill $A; exit 1
}
start_holder
msg=$(timeout 60 "$BIN" "${ARGS[@]}" --window 0.05 --windows 1 --out "$TMP/b.json" 2>&1); rc=$?
[ $rc -eq 2 ] || { echo "FAIL ($rc != 2): second run: $msg"; fail=1; }
grep -qF "PID $A" <<<"$msg" || { echo "FAIL: holder PID $A not named: $msg"; fail=1; }
[ -e "$TMP/b.json" ] && { echo "FAIL: the refused run wrote results"; fail=1; }
# --wait queues behind the holder, then runs.
timeout 300 "$BIN" run --scenario path_walk --containers 1 --workers 1 --warmup 0 --window 0.05 --windows 1 --wait --out "$TMP/c.json" \
  2> "$TMP/c.err" & C=$!
for _ in $(seq 100); do grep -q "waiting for the run of PID $A" "$TMP/c.err" && break; sleep 0.1; done
grep -q "waiting for the run of PID $A" "$TMP/c.err" || { echo "FAIL: --wait did not say whom it waits for"; fail=1; }
kill -0 $C 2>/dev/null && [ ! -e "$TMP/c.json" ] || { echo "FAIL: --wait did not wait"; fail=1; }
# SIGKILL the holder: the kernel drops its flock, and the waiter goes on.
kill -9 $A; wait $A 2>/dev/null
wait $C; rc=$?
[ $rc -eq 0 ] && [ -s "$TMP/c.json" ] || { echo "FAIL: waiting run ($rc): $(cat "$TMP/c.err")"; fail=1; }
# And a run after a SIGKILLed holder is not refused.
start_holder; kill -9 $A; wait $A 2>/dev/null
timeout 120 "$BIN" "${ARGS[@]}" --window 0.05 --windows 1 --out "$TMP/d.json" || { echo "FAIL: lock outlived SIGKILL"; fail=1; }
host_mounts_unchanged || { echo "FAIL: host mount table changed"; fail=1; }
[ $fail -eq 0 ] && echo "run lock: second run refused with the holder's PID, --wait waited, SIGKILL freed it"
exit $fail
