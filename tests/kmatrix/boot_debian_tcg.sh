#!/usr/bin/env bash
# Slow integration test of scripts/kernel-matrix (issue 6): boot Debian's 6.1 cloud
# kernel under TCG, run a tiny path_walk in it, and check the JSON that comes back
# names that kernel's release and the emulated accelerator.
# Usage: bash boot_debian_tcg.sh /path/to/mntscale /path/to/source
# Exit 0 pass, 77 skip (no qemu / busybox / package), anything else fail.
set -uo pipefail
bin=$1 src=$2
. "$(dirname "$0")/common.inc" test
# --accel tcg: what this test checks is the guest path; the probe has unit tests.
/usr/bin/python3 "$src/scripts/kernel-matrix" --binary "$bin" --accel tcg --timeout 150 \
  --out "$out" --run-args "--scenario path_walk --containers 1 --workers 1 --op stat \
  --window 0.1 --windows 2 --warmup 0.05 --repetitions 1" "$pkg" > "$out/stdout" 2> "$out/stderr"
rc=$?
if grep -q "FAILED: kernel: apt-get download" "$out/summary.md" 2>/dev/null; then
  skip "could not download $pkg: $(grep -o 'apt-get download.*' "$out/summary.md" | head -c 300)"
fi
[ $rc -eq 0 ] || { cat "$out/stdout" "$out/stderr" | tail -40; fail "kernel-matrix exited $rc"; }

release=${pkg#linux-image-}
/usr/bin/python3 - "$out" "$release" <<'PY' || fail "result check"
import glob, json, sys
out, release = sys.argv[1], sys.argv[2]
files = glob.glob(out + "/results/*.json")
assert len(files) == 1, files
doc = json.load(open(files[0]))
k = doc["context"]["kernel"]
assert k["release"] == release, (k["release"], release)
assert k["accelerator"] == "tcg" and k["emulated"] is True, k
its = [b for b in doc["benchmarks"] if b.get("run_type") == "iteration" and b["scenario"] == "path_walk"]
assert its and all(b["items_per_second"] > 0 for b in its if "skipped" not in b), its
assert any("skipped" not in b for b in its), "every path_walk point skipped"
summary = json.load(open(out + "/summary.json"))
assert [r["ok"] for r in summary["kernels"]] == [True], summary["kernels"]
assert "(emulated)" in open(out + "/summary.md").read() or "tcg (emulated)" in open(out + "/summary.md").read()
print(f"ok: {release} under tcg, {len(its)} path_walk point(s)")
PY
