#!/usr/bin/env bash
# Slow integration test of issue 29's guest pieces: one TCG boot of Debian's
# 6.1 cloud kernel with `--append` and `--attribute`. The marker given to
# --append reaches the guest's /proc/cmdline (the result's
# context.platform.cmdline holds it), and attribution in the guest finds its
# bucket file (never "attribution buckets file not found"): it attributes, or
# says unsupported for a reason of the guest kernel's own.
# Usage: bash boot_append_attribute.sh /path/to/mntscale /path/to/source
# Exit 0 pass, 77 skip (no qemu / busybox / package), anything else fail.
set -uo pipefail
bin=$1 src=$2
. "$(dirname "$0")/common.inc" append
marker="mntscale.kmatrix_test=append-$$"
/usr/bin/python3 "$src/scripts/kernel-matrix" --binary "$bin" --accel tcg --timeout 200 \
  --append "$marker" --out "$out" --run-args "--scenario path_walk --containers 1 --workers 1 \
  --op stat --window 0.3 --windows 1 --warmup 0.05 --repetitions 1 --attribute" "$pkg" \
  > "$out/stdout" 2> "$out/stderr"
rc=$?
if grep -q "FAILED: kernel: apt-get download" "$out/summary.md" 2>/dev/null; then
  skip "could not download $pkg: $(grep -o 'apt-get download.*' "$out/summary.md" | head -c 300)"
fi
[ $rc -eq 0 ] || { cat "$out/stdout" "$out/stderr" | tail -40; fail "kernel-matrix exited $rc"; }
/usr/bin/python3 - "$out" "$marker" <<'PY' || fail "result check"
import glob, json, sys
out, marker = sys.argv[1], sys.argv[2]
files = glob.glob(out + "/results/*.json")
assert len(files) == 1, files
doc = json.load(open(files[0]))
cmdline = doc["context"]["platform"]["cmdline"]
assert marker in cmdline.split(), (marker, cmdline)
its = [b for b in doc["benchmarks"] if b.get("run_type") == "iteration" and b["scenario"] == "path_walk"]
assert its, doc["benchmarks"]
text = json.dumps(its)
assert "buckets file not found" not in text, text[:2000]
att = [b.get("attribution") for b in its]
assert all(a is not None for a in att), its
print(f"ok: {marker} in the guest's cmdline; attribution: {json.dumps(att[0])[:300]}")
PY
