#!/usr/bin/env bash
# A tiny mitigations run: every variant at 2 containers; JSON checked.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
"$BIN" run --scenario mitigations --containers 2 --workers 1 \
  --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r.json"
check_result "$TMP/r.json" <<'PY'
want = {"baseline": (10, 3, "private", "pivot_root"), "shared-ns": (10, 3, "shared", "pivot_root"),
        "3-layers": (3, 3, "private", "pivot_root"), "no-binds": (10, 0, "private", "pivot_root"),
        "chroot": (10, 3, "private", "chroot")}
assert [b["params"]["variant"] for b in it] == list(want), [b["name"] for b in it]
for b in it:
    assert "error_occurred" not in b, b.get("error_message")
    v, x = b["params"]["variant"], b["extra"]
    assert b["name"] == f"mitigations/containers:2/workers:1/variant:{v}"
    assert b["items_per_second"] > 0 and len(b["windows"]) == 2
    got = (x["variant_layers"], x["variant_binds"], x["variant_ns_mode"], x["variant_root_switch"])
    assert got == want[v], (v, got)
    assert x["ratio_to_baseline"] > 0
    if v == "baseline":
        assert x["ratio_to_baseline"] == 1.0
print("mitigations JSON ok:", len(it), "points")
PY
