#!/usr/bin/env bash
# SIGINT during a sweep keeps the finished points, marked incomplete. What
# tells a handled interrupt from the default action (the process killed, which
# bash also reports as 130): the reason the handler's path writes, the
# finishing step's context fields (mounts after teardown), and its message.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
# A background job of a non-interactive shell starts with SIGINT ignored;
# restore the default, as at a terminal, so that without a handler SIGINT kills
# the run (bash: exit 130) and only the checks below tell the two apart.
/usr/bin/python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
  "$BIN" run --containers 1,2,3,4,5,6,7,8 --workers 1 --layers 2 --warmup 0.05 --window 0.2 \
  --windows 2 --quiet --out "$TMP/r.json" 2> "$TMP/err" &
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
/usr/bin/python3 - "$TMP/r.json" "$TMP/err" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
err = open(sys.argv[2]).read()
assert d["complete"] is False, "not marked incomplete"
# "running" is what every point writes before the run ends; only the handled
# interrupt's Finish writes this reason.
assert d["incomplete_reason"] == "interrupted by signal", d.get("incomplete_reason")
m = d["context"]["mounts"]
for k in ("before", "after", "slab_before", "slab_after"):
    assert k in m, ("finishing step did not run: context.mounts lacks", k, m)
assert m["after"] == m["before"], ("farm mounts left after the interrupt", m)
it = [b for b in d["benchmarks"] if b["run_type"] == "iteration"]
assert 1 <= len(it) < 8, len(it)
assert all(b["items_per_second"] > 0 for b in it)
want = f"mntscale: interrupted; {len(d['benchmarks'])} finished points written to {sys.argv[1]}, marked incomplete"
assert want in err, ("handler message missing", want, err)
print("interrupted run kept", len(it), "finished points, marked incomplete")
PY
