#!/usr/bin/env bash
# A tiny bind_children_scan run: C=0 and C=20, both methods; JSON checked.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
"$BIN" run --scenario bind_children_scan --set C=0,20 \
  --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r.json"
check_result "$TMP/r.json" <<'PY'
assert len(it) == 4, len(it)
for b in it:
    p = b["params"]
    if "skipped" in b:
        assert p["method"] == "open_tree" and b["skipped"].startswith("unsupported:"), b
        continue
    assert "error_occurred" not in b, b.get("error_message")
    assert b["name"] == f"bind_children_scan/children:{p['children']}/method:{p['method']}"
    assert b["items_per_second"] > 0 and b["latency_ns"]["count"] > 0
    # The scratch namespace: its root tmpfs, the /src tmpfs and C binds under it.
    assert in_ns(b) == [p["children"] + 2], (in_ns(b), p)
    assert added(b) == (1, p["children"] + 2), (added(b), p)
print("bind_children_scan JSON ok:", len(it), "points")
PY
