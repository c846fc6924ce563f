#!/usr/bin/env bash
# unshare_copy_tree on small tables: per-unshare latency and per-mount cost,
# private/shared, with and without a user namespace, readers' latency split
# into idle and during the unshares.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
"$BIN" run --scenario unshare_copy_tree --set mounts=10,100 --set readers=0,1 --profile minimal \
  --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r.json"
check_result "$TMP/r.json" <<'PY'
assert len(it) == 2 * 2 * 2 * 2, len(it)
for b in it:
    p = b["params"]
    assert "error_occurred" not in b, b.get("error_message")
    x = b["extra"]
    assert x["mounts_in_ns"] == p["mounts"] + 2, (x, p)  # binds, their source, root
    assert b["iterations"] >= 5 and b["latency_ns"]["count"] == b["iterations"]
    assert x["per_unshare_ns"] > 0
    assert abs(x["per_mount_ns"] * x["mounts_in_ns"] - x["per_unshare_ns"]) < 1e-6 * x["per_unshare_ns"]
    if p["readers"]:
        for ph in ("idle", "unshare"):
            assert x[f"reader_latency_ns_{ph}"]["count"] > 0, ph
            assert x[f"reader_ops_per_sec_{ph}"] > 0, ph
    else:
        assert "reader_latency_ns_idle" not in x
print("unshare_copy_tree JSON ok:", len(it), "points")
PY
