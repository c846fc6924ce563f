#!/usr/bin/env bash
# ns_teardown on small namespaces: both methods, K in parallel, readers'
# latency idle and during teardown; again with the teardowns and the reader
# as processes (--mode process) on the small namespaces.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
teardown() {  # mode mounts
  "$BIN" run --scenario ns_teardown --set mounts=$2 --set parallel=1,2 --set rounds=2 \
    --profile minimal --mode $1 --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r-$1.json"
  check_result "$TMP/r-$1.json" <<'PY'
# Counted in the run's own namespaces (the farm's fd-held ones included), so
# other processes' namespaces cannot move it: every one built is gone.
assert (base["before"], base["namespaces_before"]) == (base["after"], base["namespaces_after"]), base
M = {b["params"]["mounts"] for b in it}
assert len(it) == len(M) * 2 * 2, len(it)
for b in it:
    p = b["params"]
    assert "error_occurred" not in b, b.get("error_message")
    check_event_run(b)
    assert b["event_run"]["runs"] == p["rounds"] and len(b["event_run"]["actors"]) == p["parallel"]
    x = b["extra"]
    assert b["iterations"] == p["parallel"] * p["rounds"], b["iterations"]
    assert b["latency_ns"]["count"] == b["iterations"] and b["latency_ns"]["max"] > 0
    assert len(x["teardown_wall_ns"]) == p["rounds"] and all(t > 0 for t in x["teardown_wall_ns"])
    assert x["per_mount_ns"] > 0
    for ph in ("idle", "teardown"):
        assert x[f"reader_latency_ns_{ph}"]["count"] > 0, ph
    assert x["reader_stall_max_ns"] == x["reader_latency_ns_teardown"]["max"]
print("ns_teardown JSON ok:", d["context"]["worker_mode"], len(it), "points")
PY
}
teardown thread 10,100
teardown process 10
