#!/usr/bin/env bash
# mount_table_read on small tables: per-read and per-mount cost for each
# method, idle and under churn; listmount/statmount skipped before 6.8.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
"$BIN" run --scenario mount_table_read --set mounts=10,50 --set churn=0,1 \
  --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r.json"
check_result "$TMP/r.json" <<'PY'
assert len(it) == 3 * 2 * 2, len(it)
rel = tuple(int(x) for x in d["context"]["kernel"]["release"].split("-")[0].split(".")[:2])
pus = d["context"]["topology"]["pus"]
for b in it:
    p = b["params"]
    if p["method"] != "mountinfo" and rel < (6, 8):
        assert b["skipped"].startswith("unsupported: listmount") or b["skipped"].startswith("unsupported: statmount"), b
        continue
    if p["churn"] and pus < 2:
        continue
    assert "error_occurred" not in b, b.get("error_message")
    x = b["extra"]
    # The table holds the bind mounts, their source tmpfs and the root.
    assert x["mounts_in_ns"] == p["mounts"] + 2, (x["mounts_in_ns"], p)
    assert x["per_read_ns"] > 0 and abs(x["per_mount_ns"] * x["mounts_in_ns"] - x["per_read_ns"]) < 1e-3 * x["per_read_ns"]
    assert b["latency_ns"]["count"] > 0 and b["latency_ns"]["p50"] > 0
    if p["churn"]:
        assert x["writer_ops_per_sec"] > 0
        assert sorted(w["role"] for w in b["workers"]) == ["reader", "writer"]
    else:
        assert "writer_ops_per_sec" not in x and len(b["workers"]) == 1
print("mount_table_read JSON ok:", len(it), "points")
PY
