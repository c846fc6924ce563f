#!/usr/bin/env bash
# A tiny mount_crossing run: both layouts, two K, no background; JSON checked.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
# K is the old name of the crossings axis, still accepted.
"$BIN" run --scenario mount_crossing --set background=0,50 --set layout=nested,stacked \
  --set K=1,4 --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r.json"
check_result "$TMP/r.json" <<'PY'
assert len(it) == 2 * 2 * 2, len(it)
for b in it:
    assert "error_occurred" not in b, b.get("error_message")
    p, x = b["params"], b["extra"]
    assert b["name"] == f"mount_crossing/background:{p['background']}/layout:{p['layout']}/crossings:{p['crossings']}"
    assert b["items_per_second"] > 0 and b["iterations"] > 0 and len(b["windows"]) == 2
    # The walked namespace: root tmpfs + K tmpfs on the path (nested or stacked);
    # the background, when there is one, is another namespace: root + binds.
    assert in_ns(b) == [p["crossings"] + 1], (in_ns(b), p)
    bg = (1, 1 + p["background"]) if p["background"] else (0, 0)
    assert added(b) == (1 + bg[0], p["crossings"] + 1 + bg[1]), (added(b), p)
    assert x["bare_ns_per_op"] > 0 and x["control_ns_per_op"] > 0 and "ns_per_crossing" in x
    want = "/s/target" if p["layout"] == "stacked" else "/m" * p["crossings"] + "/target"
    assert x["path"] == want, x["path"]
print("mount_crossing JSON ok:", len(it), "points")
PY
