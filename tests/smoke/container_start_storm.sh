#!/usr/bin/env bash
# container_start_storm on a tiny storm: every strategy, start latency,
# mount operations (per-layer idmap issues 4 per layer more than none), and
# both health checks' latency during the storm; again with the starters and
# health checks as processes (--mode process) on one layer count.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
storm() {  # mode layers
  "$BIN" run --scenario container_start_storm --set layers=$2 --set starts=4 --set parallel=2 \
    --mode $1 --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r-$1.json"
  check_result "$TMP/r-$1.json" <<'PY'
# Counted in the run's own namespaces (the farm's fd-held ones included), so
# other processes' namespaces cannot move it: every one built is gone.
assert (base["before"], base["namespaces_before"]) == (base["after"], base["namespaces_after"]), base
L = sorted({b["params"]["layers"] for b in it})
assert len(it) == 3 * len(L), len(it)
ops = {}
for b in it:
    p = b["params"]
    if "skipped" in b:  # idmapped tmpfs needs 6.3
        assert p["strategy"] != "none" and b["skipped"].startswith("unsupported:"), b
        continue
    assert "error_occurred" not in b, b.get("error_message")
    check_event_run(b)
    assert len(b["event_run"]["actors"]) == 2
    x = b["extra"]
    assert b["iterations"] == 4 and b["latency_ns"]["count"] == 4
    assert 0 < x["start_p50_ns"] <= x["start_p99_ns"] and x["start_max_ns"] > 0
    assert x["mount_ops"] > 0 and x["mount_ops_per_start"] * 4 == x["mount_ops"]
    assert x["storm_s"] > 0 and x["teardown_s"] >= 0
    for role in ("health", "mountinfo"):
        for ph in ("idle", "storm"):
            assert x[f"{role}_latency_ns_{ph}"]["count"] > 0, (role, ph)
        assert x[f"{role}_p99_ns"] >= x[f"{role}_p50_ns"] > 0
    ops[(p["strategy"], p["layers"])] = x["mount_ops_per_start"]
for l in L:
    # overlay + 3 binds + proc + dev + pivot_root + old-root umount
    assert ops[("none", l)] == 8, ops
    if ("per-layer-idmap", l) in ops:
        assert ops[("per-layer-idmap", l)] == 8 + 4 * l, ops
        assert ops[("parent-idmap", l)] == 8 + 4, ops
print("container_start_storm JSON ok:", d["context"]["worker_mode"], ops)
PY
}
storm thread 2,4
storm process 2
