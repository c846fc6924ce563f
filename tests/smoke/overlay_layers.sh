#!/usr/bin/env bash
# A tiny overlay_layers run: 1 and 3 layers, both APIs, all lookups; JSON checked.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
"$BIN" run --scenario overlay_layers --set layers=1,3 \
  --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r.json"
check_result "$TMP/r.json" <<'PY'
assert len(it) == 2 * 2 * 3, len(it)
for b in it:
    p = b["params"]
    assert b["name"] == f"overlay_layers/layers:{p['layers']}/overlay_api:{p['overlay_api']}/lookup:{p['lookup']}"
    if "skipped" in b:  # lowerdir+ before 6.7
        assert p["overlay_api"] == "fsmount" and "lowerdir+" in b["skipped"], b["skipped"]
        continue
    assert "error_occurred" not in b, b.get("error_message")
    x = b["extra"]
    assert b["items_per_second"] > 0 and b["iterations"] > 0
    # The overlay's private layer clones are in no namespace, so no mountinfo
    # shows them; what is checked is the measured namespace: root tmpfs + overlay.
    assert x["samples"] >= 5
    for k in ["mount_ns", "umount_ns", "first_lookup_ns"]:
        assert x[k]["count"] == x["samples"] and x[k]["p50"] > 0, k
    if p["lookup"] == "warm":
        assert len(b["windows"]) == 2 and b["latency_ns"]["count"] > 0
        assert in_ns(b) == [2] and added(b) == (1, 2), (in_ns(b), added(b), p)
    else:
        assert b["latency_ns"]["count"] == x["samples"]
print("overlay_layers JSON ok:", len(it), "points")
PY
