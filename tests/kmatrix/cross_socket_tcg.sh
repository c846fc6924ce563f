#!/usr/bin/env bash
# Slow: the cross-socket paths a one-socket machine never runs. Boots Debian's
# 6.1 cloud kernel under TCG as an emulated 2-socket, 2-node guest (4 vCPUs)
# and runs churn_interference with the reader on the writer's socket and on
# the other one; the JSON must show both points measured, not skipped, with
# the other-socket reader on a different package from the writer.
# Usage: bash cross_socket_tcg.sh /path/to/mntscale /path/to/source
# Exit 0 pass, 77 skip (no qemu / busybox / package), anything else fail.
set -uo pipefail
bin=$1 src=$2
. "$(dirname "$0")/common.inc" xsocket
/usr/bin/python3 "$src/scripts/kernel-matrix" --binary "$bin" --accel tcg --timeout 300 \
  --cpus 4 --sockets 2 --numa 2 --out "$out" --run-args "--scenario churn_interference \
  --set writer_op=mount --set reader_placement=same-socket,other-socket --set rounds=1 \
  --window 0.1 --windows 2 --warmup 0.05 --repetitions 1" "$pkg" \
  > "$out/stdout" 2> "$out/stderr"
rc=$?
if grep -q "FAILED: kernel: apt-get download" "$out/summary.md" 2>/dev/null; then
  skip "could not download $pkg: $(grep -o 'apt-get download.*' "$out/summary.md" | head -c 300)"
fi
[ $rc -eq 0 ] || { cat "$out/stdout" "$out/stderr" | tail -40; fail "kernel-matrix exited $rc"; }

/usr/bin/python3 - "$out" <<'PY' || fail "result check"
import glob, json, sys
files = glob.glob(sys.argv[1] + "/results/*.json")
assert len(files) == 1, files
doc = json.load(open(files[0]))
assert doc["context"]["kernel"]["emulated"] is True, doc["context"]["kernel"]
assert doc["context"]["topology"]["packages"] == 2, doc["context"]["topology"]
its = {b["params"]["reader_placement"]: b for b in doc["benchmarks"] if b.get("run_type") == "iteration"}
assert set(its) == {"same-socket", "other-socket"}, list(its)
for placement, b in its.items():
    assert "skipped" not in b and "error_occurred" not in b, (placement, b.get("skipped"), b.get("error_message"))
    pkg = {w["role"]: w["package"] for w in b["workers"]}
    assert set(pkg) == {"reader", "writer"}, b["workers"]
    same = pkg["reader"] == pkg["writer"]
    assert same == (placement == "same-socket"), (placement, b["workers"])
print("ok: cross-socket churn ran in an emulated 2-socket guest (synthetic, TCG):",
      {p: b["items_per_second"] for p, b in its.items()})
PY
