#!/usr/bin/env bash
# container_start_storm with runtime=runc|crun (issue 16): every start is a
# real `create`+`start` of the runtime (as many of each as starts), its
# latency recorded, and mount_ops_per_start holds the started containers'
# own mount tables; crun, where it cannot run, says why. A SIGKILL during a
# runc storm leaves no container process, cgroup or mount behind.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
command -v runc >/dev/null || { echo "FAIL: runc is not installed (scripts/setup.sh installs it)"; exit 1; }
"$BIN" run --wait --scenario container_start_storm --set runtime=runc,crun,model \
  --set strategy=none,per-layer-idmap --set layers=2 --set starts=4 --set parallel=2 \
  --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r.json" || exit 1
check_result "$TMP/r.json" <<'PY' || exit 1
assert (base["before"], base["namespaces_before"]) == (base["after"], base["namespaces_after"]), base
pts = {(b["params"]["runtime"], b["params"]["strategy"]): b for b in it}
assert len(pts) == 6, sorted(pts)
model = {s: pts[("model", s)]["extra"] for s in ("none", "per-layer-idmap") if "skipped" not in pts[("model", s)]}
for (rt, strategy), b in sorted(pts.items()):
    if rt == "model":
        continue
    if "skipped" in b:  # a runtime this host cannot run, or idmapped tmpfs before 6.3
        assert b["skipped"].startswith("unsupported: "), b["skipped"]
        assert rt == "crun" or strategy != "none", (rt, strategy, b["skipped"])
        if rt == "crun":
            assert b["skipped"].startswith("unsupported: crun: "), b["skipped"]
            print("crun here:", b["skipped"])
        continue
    assert "error_occurred" not in b, b.get("error_message")
    check_event_run(b)
    x = b["extra"]
    assert b["iterations"] == 4 and b["latency_ns"]["count"] == 4, b["latency_ns"]
    # one create and one start of the runtime per start event
    assert x["runtime_creates"] == 4 and x["runtime_starts"] == 4, x
    assert x["runtime_running"] == 4, x  # `state` says each container's process runs
    assert 0 < x["start_p50_ns"] <= x["start_p99_ns"] <= x["start_max_ns"], x
    # the runtime's own table (25 mounts on a v1 hybrid host, 16 on v2), far
    # above the model's few mounts; on top, the overlay and the layer writes
    assert x["container_mounts"] >= 10, x
    layer_ops = x["mount_ops_per_start"] - x["container_mounts"]
    if strategy in model:
        assert layer_ops == model[strategy]["mount_ops_per_start"] - 7, (strategy, layer_ops, model[strategy])
    assert x["teardown_s"] > 0 and x["mountinfo_p50_ns"] > 0 and x["health_p50_ns"] > 0, x
    print(rt, strategy, "starts/s %.1f" % b["items_per_second"], "mounts/container", x["container_mounts"],
          "ops/start", x["mount_ops_per_start"])
PY

# SIGKILL while a runc storm is starting containers.
"$BIN" run --wait --scenario container_start_storm --set runtime=runc --set strategy=none \
  --set layers=2 --set starts=400 --set parallel=2 --warmup 0.05 --window 0.1 --windows 1 \
  --quiet --out "$TMP/k.json" 2>/dev/null &
pid=$!
kill_runtime_run_and_check_nothing_left $pid s "a runc storm" 120 || exit 1
