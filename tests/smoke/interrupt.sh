#!/usr/bin/env bash
# SIGINT during a sweep keeps the finished points, marked incomplete.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
"$BIN" run --containers 1,2,3,4,5,6,7,8 --workers 1 --layers 2 --warmup 0.05 --window 0.2 \
  --windows 2 --quiet --out "$TMP/r.json" &
pid=$!
# Wait for the first finished point to be on disk, then interrupt.
for _ in $(seq 200); do
  [ -s "$TMP/r.json" ] && break
  sleep 0.05
done
kill -INT $pid
rc=0; wait $pid || rc=$?
[ $rc -eq 130 ] || { echo "exit $rc, want 130"; exit 1; }
host_mounts_unchanged || { echo "host mount table changed"; exit 1; }
check_schema "$TMP/r.json"
/usr/bin/python3 - "$TMP/r.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["complete"] is False, "not marked incomplete"
assert d["incomplete_reason"], d
it = [b for b in d["benchmarks"] if b["run_type"] == "iteration"]
assert 1 <= len(it) < 8, len(it)
assert all(b["items_per_second"] > 0 for b in it)
print("interrupted run kept", len(it), "finished points, marked incomplete")
PY
