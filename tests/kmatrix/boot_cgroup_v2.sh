#!/usr/bin/env bash
# Slow integration test of issue 24's cgroup v2 guest: one TCG boot of Debian's
# 6.1 cloud kernel with `--cgroup v2 --runtime-fidelity runc,crun`, running a
# container_start_storm with runtime=model,runc,crun. Checks that the guest
# mounted cgroup2 alone; that the runtime fidelity tests ran there and crun's
# passed (never skipped: crun runs on cgroup v2); that each real runtime's storm
# made one create and one start per start, every container running, and holds
# as many mounts per container as that runtime's capture in the same guest.
# Usage: bash boot_cgroup_v2.sh /path/to/mntscale /path/to/source
# Exit 0 pass, 77 skip (no qemu / busybox / package / runtime / helper / gtest),
# anything else fail.
set -uo pipefail
bin=$1 src=$2
. "$(dirname "$0")/common.inc" cgroup2
for r in runc crun; do
  PATH=$PATH:/usr/sbin:/sbin command -v $r >/dev/null || skip "$r not installed (scripts/setup.sh installs it)"
done
dir=$(dirname "$bin")
[ -x "$dir/mntscale-mountinfo" ] || skip "no $dir/mntscale-mountinfo (the static helper needs libc6-dev)"
[ -x "$dir/tests/privileged_runtime_gtest" ] || skip "no $dir/tests/privileged_runtime_gtest (build the test targets)"
starts=20
/usr/bin/python3 "$src/scripts/kernel-matrix" --binary "$bin" --accel tcg --timeout 1500 \
  --cgroup v2 --runtime-fidelity runc,crun --out "$out" --run-args "--scenario container_start_storm \
  --set runtime=model,runc,crun --set strategy=none --set layers=5 --set parallel=2 \
  --set starts=$starts" "$pkg" > "$out/stdout" 2> "$out/stderr"
rc=$?
if grep -q "FAILED: kernel: apt-get download" "$out/summary.md" 2>/dev/null; then
  skip "could not download $pkg: $(grep -o 'apt-get download.*' "$out/summary.md" | head -c 300)"
fi
[ $rc -eq 0 ] || { cat "$out/stdout" "$out/stderr" | tail -60; fail "kernel-matrix exited $rc"; }

/usr/bin/python3 - "$out" "$starts" <<'PY' || { tail -60 "$out"/console/*.log; fail "result check"; }
import glob, json, sys
out, starts = sys.argv[1], int(sys.argv[2])
summary = json.load(open(out + "/summary.json"))
[run] = summary["kernels"]
assert run["ok"], run
# Only the unified hierarchy: the guest fails its boot otherwise, and says so here.
assert run["cgroups"]["mounts"] == ["cgroup2:/sys/fs/cgroup"], run["cgroups"]
assert run["cgroups"]["no_v1"] == ["all"], run["cgroups"]
assert {"cpu", "memory", "pids"} <= set(run["cgroups"]["subtree_control"]), run["cgroups"]
fid = run["fidelity"]
assert not fid["problems"], fid["problems"]
assert "RuntimeTest.FarmMatchesCrunDefaultOrSaysWhyNot" in fid["passed"], fid
assert "RuntimeTest.FarmMatchesRuncDefaultMountForMount" in fid["passed"], fid
captured = {r: c["mount_count"] for r, c in fid["captures"].items()}
assert set(captured) == {"runc", "crun"}, fid["captures"]

[res] = glob.glob(out + "/results/*.json")
doc = json.load(open(res))
k = doc["context"]["kernel"]
assert k["accelerator"] == "tcg" and k["emulated"] is True, k  # timings are emulated
its = {b["params"]["runtime"]: b for b in doc["benchmarks"]
       if b.get("run_type") == "iteration" and b["scenario"] == "container_start_storm"}
assert set(its) == {"model", "runc", "crun"}, sorted(its)
for rt in ("runc", "crun"):
    b = its[rt]
    assert "skipped" not in b, (rt, b["skipped"])
    assert "error_occurred" not in b, (rt, b.get("error_message"))
    x = b["extra"]
    assert x["runtime_creates"] == x["runtime_starts"] == starts, (rt, x)
    assert x["runtime_running"] == starts, (rt, x)
    assert x["container_mounts"] == captured[rt], (rt, x["container_mounts"], captured[rt])
    print(f"ok: {rt} on cgroup v2 ({k['release']}, tcg): {captured[rt]} mounts per container, "
          f"{b['items_per_second']:.2f} starts/s (emulated)")
print("ok: cgroup2 only; fidelity passed:", ", ".join(fid["passed"]))
PY
