#!/usr/bin/env bash
# churn_interference on a tiny configuration: without/with-writer runs in the
# same point, the ratio and writer rate under extra; other-socket skipped on a
# one-socket machine. Also in process mode.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
for mode in thread process; do
  "$BIN" run --scenario churn_interference --set writer_op=none,mount,setattr \
    --set reader_placement=same-socket,other-socket --set rounds=2 --profile minimal --mode $mode \
    --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r-$mode.json"
done
host_mounts_unchanged || { echo "host mount table changed"; exit 1; }
check_schema "$TMP/r-thread.json" "$TMP/r-process.json"
$PY - "$TMP/r-thread.json" "$TMP/r-process.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    d = json.load(open(path))
    assert d["complete"] is True
    sockets = d["context"]["topology"]["packages"]
    pus = d["context"]["topology"]["pus"]
    it = [b for b in d["benchmarks"] if b["run_type"] == "iteration"]
    assert len(it) == 3 * 2, len(it)
    ran = 0
    for b in it:
        p = b["params"]
        if p["reader_placement"] == "other-socket" and sockets < 2:
            assert b["skipped"] == "unsupported: one socket", b.get("skipped")
            assert "items_per_second" not in b
            continue
        if pus < 2:
            assert b["skipped"].startswith("unsupported: placement"), b
            continue
        assert "error_occurred" not in b, b.get("error_message")
        ran += 1
        x = b["extra"]
        assert len(x["reader_ops_per_sec_without"]) == 2 and len(x["reader_ops_per_sec_with"]) == 2
        assert all(v > 0 for v in x["reader_ops_per_sec_without"] + x["reader_ops_per_sec_with"])
        assert x["interference_ratio"] > 0 and len(x["interference_ratios"]) == 2
        assert abs(x["reader_slowdown_pct"] - (1 - x["interference_ratio"]) * 100) < 1e-6
        assert b["items_per_second"] > 0 and b["params"]["mode"] in ("thread", "process")
        roles = sorted(w["role"] for w in b["workers"])
        if p["writer_op"] == "none":
            assert x["writers"] == 0 and x["writer_ops_per_sec"] == 0 and roles == ["reader"], roles
        else:
            assert x["writers"] == 1 and x["writer_ops_per_sec"] > 0, x
            assert roles == ["reader", "writer"], roles
            wr = [w for w in b["workers"] if w["role"] == "writer"][0]
            rd = [w for w in b["workers"] if w["role"] == "reader"][0]
            assert wr["measured"] is False and wr["container"] != rd["container"]
            assert b["iterations"] == rd["ops"]
    if pus >= 2:
        assert ran == 3, ran
print("churn_interference JSON ok")
PY
