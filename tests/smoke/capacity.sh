#!/usr/bin/env bash
# mntscale capacity (issue 18) on the real kernel, small and short:
#  1. an objective no density here fails ends the search at --max-containers,
#     with the contract's fields and mountinfo_read_s measured at both densities;
#  2. a mountinfo_read_s bound between the values measured at those two
#     densities puts N* between them and names mountinfo_read_s as failed.
# The host mount table is unchanged after each run.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
LO=2; HI=400
common=(--profile minimal --idmap parent --churn-rate 5 --start $LO --growth 200
        --max-containers $HI --window 0.2 --invocations 3 --max-invocations 5 --budget 240 --quiet --wait)

"$BIN" capacity "${common[@]}" --slo 'mountinfo_read_s<=1000,start_p99_s<=1000' \
  --machine cap-smoke --out "$TMP/a.json" 2>"$TMP/a.err" || { echo "FAIL: unreachable run: $(cat "$TMP/a.err")"; exit 1; }
host_mounts_unchanged || { echo "FAIL: host mount table changed"; exit 1; }
grep -q "This host sustains $HI containers of minimal" "$TMP/a.err" || { echo "FAIL: summary: $(cat "$TMP/a.err")"; exit 1; }
bound=$($PY - "$TMP/a.json" $LO $HI <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); lo, hi = int(sys.argv[2]), int(sys.argv[3])
assert "kernel" in json.dumps(d["context"]), d["context"].keys()
assert d["context"]["machine"]["name"] == "cap-smoke", d["context"]["machine"]  # --machine, as for run
assert d["context"]["machine"]["name_from"] == "--machine", d["context"]["machine"]
c = d["capacity"]
assert c["version"] == 1 and c["complete"] is True and c["profile"] == "minimal", c
assert c["churn"]["strategy"] == "parent-idmap" and c["churn"]["starts_per_s"] == 5, c["churn"]
assert [s["text"] for s in c["slo"]] == ["mountinfo_read_s<=1000", "start_p99_s<=1000"], c["slo"]
r = c["result"]
assert r["ended_by"] == "max-containers" and r["n_star"] == hi and r["bracket"] == [hi, None], r
assert r["failed_metric"] is None and r["limit"] is None, r
dens = {x["containers"]: x for x in c["densities"]}
assert sorted(dens) == [lo, hi], sorted(dens)
for x in dens.values():
    assert x["verdict"] == "pass" and x["phase"] == "grow" and x["seconds"] > 0, x
    assert len(x["invocations"]) >= 3
    for inv in x["invocations"]:
        for m in ("start_p50_s", "start_p99_s", "health_stat_p99_ms", "path_walk_per_worker",
                  "path_walk_ratio", "mountinfo_read_s"):
            assert m in inv and inv[m] > 0, (m, inv)
        assert inv["start_p50_s"] <= inv["start_p99_s"]
    assert x["metrics"]["mountinfo_read_s"]["n"] == len(x["invocations"])
a, b = dens[lo]["metrics"]["mountinfo_read_s"], dens[hi]["metrics"]["mountinfo_read_s"]
# The runtime's namespace holds one rootfs per container: reading it at HI
# takes longer than at LO; a bound between the two means.
assert b["mean"] > 2 * a["mean"], (a, b)
print((a["mean"] * b["mean"]) ** 0.5)
PY
) || { echo "FAIL: unreachable-objective result"; exit 1; }
echo "max-containers run ok; bound between the densities: mountinfo_read_s<=$bound"

"$BIN" capacity "${common[@]}" --precision 0.5 --slo "mountinfo_read_s<=$bound" \
  --out "$TMP/b.json" 2>"$TMP/b.err" || { echo "FAIL: bounded run: $(cat "$TMP/b.err")"; exit 1; }
host_mounts_unchanged || { echo "FAIL: host mount table changed"; exit 1; }
$PY - "$TMP/b.json" $LO $HI <<'PY' || { echo "FAIL: bounded result: $(cat "$TMP/b.err")"; exit 1; }
import json, sys
c = json.load(open(sys.argv[1]))["capacity"]; lo, hi = int(sys.argv[2]), int(sys.argv[3])
r = c["result"]
assert r["ended_by"] == "slo", r
assert r["failed_metric"] == "mountinfo_read_s", r
assert r["n_star"] is not None and lo <= r["n_star"] < hi, r
assert r["bracket"][0] == r["n_star"] and r["n_star"] < r["bracket"][1] <= hi, r
assert "mountinfo_read_s" in r["sentence"] and str(r["n_star"]) in r["sentence"], r["sentence"]
above = [d for d in c["densities"] if d["containers"] == r["bracket"][1]][0]
assert above["verdict"] != "pass" and above["verdicts"]["mountinfo_read_s"] != "pass", above
assert any(d["phase"] == "bisect" for d in c["densities"]), [d["phase"] for d in c["densities"]]
print("capacity: N* =", r["n_star"], "bracket", r["bracket"], "-", r["sentence"])
PY

# 3. A density past a limit (here RLIMIT_NOFILE, capped at 1500 without
# CAP_SYS_RESOURCE to raise it; fs.mount-max and user.max_mnt_namespaces are
# ~100,000 here, too many to build in a test) ends the search by kernel-limit
# before it is built, after the largest density under it was measured.
prlimit --nofile=1500:1500 setpriv --bounding-set -sys_resource -- "$BIN" capacity --profile minimal --idmap none --churn-rate 2 --start 10 --growth 1000000 \
  --max-containers 10000000 --window 0.2 --budget 240 --quiet --wait \
  --slo 'mountinfo_read_s<=1000' --out "$TMP/c.json" 2>"$TMP/c.err" || { echo "FAIL: limit run: $(cat "$TMP/c.err")"; exit 1; }
host_mounts_unchanged || { echo "FAIL: host mount table changed"; exit 1; }
$PY - "$TMP/c.json" <<'PY' || { echo "FAIL: limit result: $(cat "$TMP/c.err")"; exit 1; }
import json, sys
r = json.load(open(sys.argv[1]))["capacity"]["result"]
c = json.load(open(sys.argv[1]))["capacity"]
assert r["ended_by"] == "kernel-limit", r
assert r["limit"]["name"] == "RLIMIT_NOFILE" and r["limit"]["value"] == 1500, r
# 10, then the largest density under the limit (found without building):
# 2 descriptors per container (its namespace, and the mount census's copy) plus
# 2 per churn slot and slack: 2 * (n + 66) + 1024 <= 1500.
assert [d["containers"] for d in c["densities"]] == [10, 172], c["densities"]
assert r["n_star"] == 172 and r["limit"]["at"] == 173, r
assert r["limit"]["name"] in r["sentence"], r["sentence"]
print("kernel limit:", r["sentence"])
PY
