#!/usr/bin/env bash
# A tiny path_walk run writes JSON that is checked field by field.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
"$BIN" run --scenario path_walk --containers 1,3 --workers 1,2 --layers 3 --op stat,open \
  --warmup 0.05 --window 0.1 --windows 2 --repetitions 2 --quiet --out "$TMP/r.json"
check_result "$TMP/r.json" <<'PY'
assert d["schema"] == "mntscale-result" and d["schema_version"] == 1, d.get("schema")
c = d["context"]
for k in ["date", "host_name", "executable", "num_cpus", "mntscale_version"]:
    assert k in c, k
assert c["kernel"]["release"] and c["kernel"]["uname"] and c["kernel"]["emulated"] is False
assert c["cpu"]["model"] != ""
for k in ["packages", "numa_nodes", "cores", "pus"]:
    assert c["topology"][k] >= 1, k
assert c["placement"] == "spread"
assert c["profile"]["layers"] == 10 and c["profile"]["mounts_per_container"] == 8
assert c["sysctl"]["fs.mount-max"] > 0 and "user.max_mnt_namespaces" in c["sysctl"]
assert c["mount_hash"]["entries"] > 0 and c["mount_hash"]["source"] in ("dmesg", "cmdline", "estimated")
# Counted in the run's own namespaces (the farm's fd-held ones included), so
# other processes' namespaces cannot move it: every one built is gone.
assert (base["before"], base["namespaces_before"]) == (base["after"], base["namespaces_after"]), base
assert isinstance(c["machine"]["virtualized"], bool)
assert c["config"]["argv"][1] == "run"
agg = [b for b in d["benchmarks"] if b["run_type"] == "aggregate"]
assert len(it) == 2 * 2 * 2 * 2, len(it)          # containers x workers x ops x reps
assert len(agg) == 2 * 2 * 2 * 4, len(agg)        # mean, median, stddev, cv per point
for b in it:
    assert "skipped" not in b and "error_occurred" not in b, b.get("error_message")
    p = b["params"]
    assert b["name"] == f"path_walk/layers:3/containers:{p['containers']}/workers:{p['workers']}/op:{p['op']}"
    assert b["time_unit"] == "ns" and b["iterations"] > 0
    assert b["real_time"] > 0 and b["cpu_time"] > 0
    assert b["items_per_second"] > 0 and abs(b["items_per_second"] - b["ops_per_sec"]) < 1e-6
    assert b["threads"] == p["workers"] == len(b["workers"])
    assert len(b["windows"]) == 2 and all(w > 0 for w in b["windows"])
    assert p["layers"] == 3 and p["binds"] == 3 and p["mode"] == "thread"
    assert b["extra"]["mounts_per_container"] == 8
    assert b["extra"]["mounts_held"] == 8 * p["containers"]
    # Read in the kernel: each worker's container holds 8 mounts (overlay root,
    # /proc, /dev, /dev/shm, /dev/mqueue, 3 /etc binds); the farm adds one
    # namespace per container.
    assert in_ns(b) == [8] * p["workers"], in_ns(b)
    assert added(b) == (p["containers"], 8 * p["containers"]), (added(b), p)
    assert b["sys_time_s"] >= 0 and b["user_time_s"] >= 0
    assert sum(w["ops"] for w in b["workers"]) == b["iterations"]
    pus = [w["pu"] for w in b["workers"]]
    assert len(set(pus)) == len(pus), "two workers on one PU"
print("path_walk JSON ok:", len(it), "points")
PY
