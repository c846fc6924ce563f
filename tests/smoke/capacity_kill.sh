#!/usr/bin/env bash
# SIGKILL of `mntscale capacity` while the churn starts and stops containers
# leaves the host's mount table unchanged (everything lived in the sandbox's
# private namespace), and so does an interrupted (SIGINT) search, which keeps
# what it finished, marked incomplete.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
args=(--profile minimal --idmap per-layer --churn-rate 20 --start 20 --growth 2
      --max-containers 200 --window 3 --invocations 2 --max-invocations 2 --budget 600
      --slo 'mountinfo_read_s<=1000' --wait)
for sig in KILL INT; do
  "$BIN" capacity "${args[@]}" --out "$TMP/$sig.json" 2>"$TMP/$sig.err" &
  pid=$!
  # The churn runs from the first invocation line on; the second one means a
  # density was written.
  want=1; [ $sig = INT ] && want=3
  # (--wait: queued behind another run's lock, it has not started yet)
  for _ in $(seq 6000); do
    [ "$(grep -c 'invocation' "$TMP/$sig.err")" -ge "$want" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
  done
  sleep 1
  grep -q invocation "$TMP/$sig.err" || { echo "FAIL: never started: $(cat "$TMP/$sig.err")"; kill -9 $pid; exit 1; }
  kill -$sig $pid; wait $pid; rc=$?
  host_mounts_unchanged || { echo "FAIL: host mount table changed after SIG$sig"; exit 1; }
  [ -d /tmp/.mntscale-$pid ] && [ $sig = INT ] && { echo "FAIL: work dir left after SIGINT"; exit 1; }
  if [ $sig = INT ]; then
    [ $rc -eq 130 ] || { echo "FAIL: SIGINT exit $rc: $(cat "$TMP/$sig.err")"; exit 1; }
    $PY - "$TMP/$sig.json" <<'PY' || exit 1
import json, sys
c = json.load(open(sys.argv[1]))["capacity"]
assert c["complete"] is False and c["result"]["ended_by"] == "interrupted", c["result"]
assert len(c["densities"]) >= 1, c
PY
  fi
  echo "SIG$sig during the churn: host mount table unchanged (exit $rc)"
done
