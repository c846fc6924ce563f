#!/usr/bin/env bash
# `profile capture` with real runtimes (issue 16): bad input exits 2 before
# anything is built; runc writes a profile whose mount count is its
# container's; crun writes one or says "unsupported: why" (exit 3); a SIGKILL
# while the runtime's container runs leaves no process, cgroup or mount.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
fail=0
bad() {  # bad NEEDLE ARGS...
  local needle=$1; shift
  local out rc
  out=$("$BIN" profile capture "$@" 2>&1); rc=$?
  [ $rc -eq 2 ] || { echo "FAIL ($rc != 2): $*: $out"; fail=1; }
  grep -qF -- "$needle" <<<"$out" || { echo "FAIL (no '$needle'): $*: $out"; fail=1; }
  ls "$TMP"/*.json >/dev/null 2>&1 && { echo "FAIL (file written): $*"; fail=1; rm -f "$TMP"/*.json; }
}
echo '{"ociVersion": ' > "$TMP/broken.spec"
echo '{"hello": "world"}' > "$TMP/notoci.spec"
bad "unknown runtime 'docker'" --runtime docker --out "$TMP/p.json"
out=$(PATH=/nonexistent "$BIN" profile capture --runtime runc --out "$TMP/p.json" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF "'runc' is not installed" <<<"$out" || { echo "FAIL missing binary: $rc $out"; fail=1; }
bad "is not valid JSON" --runtime runc --spec "$TMP/broken.spec" --out "$TMP/p.json"
bad "not an OCI runtime spec" --runtime runc --spec "$TMP/notoci.spec" --out "$TMP/p.json"
bad "--layers 0" --runtime runc --layers 0 --out "$TMP/p.json"
bad "/nonexistent-dir" --runtime runc --out /nonexistent-dir/p.json
[ $fail -eq 0 ] || exit 1

command -v runc >/dev/null || { echo "FAIL: runc is not installed (scripts/setup.sh installs it)"; exit 1; }
"$BIN" profile capture --runtime runc --out "$TMP/runc.json" || { echo "FAIL: runc capture"; exit 1; }
$PY - "$TMP/runc.json" <<'PY' || exit 1
import json, sys
d = json.load(open(sys.argv[1]))
c = d["captured"]
assert c["runtime"].startswith("runc "), c["runtime"]
assert c["mount_count"] == len(c["mounts"]) == d["mounts_per_container"], (c["mount_count"], d["mounts_per_container"])
assert c["mount_count"] >= 10, c["mount_count"]
assert d["proc"] and d["sys"] and d["dev"] and d["devpts"] and d["masked_paths"] and d["readonly_paths"]
print("runc:", c["mount_count"], "mounts")
PY
out=$("$BIN" profile capture --runtime crun --out "$TMP/crun.json" 2>&1); rc=$?
case $rc in
  0) echo "crun: $out" ;;
  3) grep -q "unsupported: crun" <<<"$out" || { echo "FAIL crun exit 3 without a reason: $out"; exit 1; }
     echo "crun: $out" ;;
  *) echo "FAIL crun exit $rc: $out"; exit 1 ;;
esac

# SIGKILL while the container is alive: its helper holds after printing.
MNTSCALE_CAPTURE_HOLD=1 "$BIN" profile capture --runtime runc --out "$TMP/held.json" 2>/dev/null &
pid=$!
up=0
for _ in $(seq 100); do
  if pgrep -x mntscale-mounti >/dev/null && \
     [ -n "$(find /sys/fs/cgroup -maxdepth 2 -name "mntscale-$pid-*" 2>/dev/null)" ]; then up=1; break; fi
  sleep 0.05
done
[ $up -eq 1 ] || { echo "FAIL: the held container never came up"; kill -9 $pid; exit 1; }
kill -9 $pid; wait $pid 2>/dev/null
left=1
for _ in $(seq 100); do
  procs=$(pgrep -x mntscale-mounti; pgrep -f "runc .*mntscale-$pid-")
  cgs=$(find /sys/fs/cgroup -maxdepth 2 -name "mntscale-$pid-*" 2>/dev/null)
  [ -z "$procs$cgs" ] && { left=0; break; }
  sleep 0.05
done
[ $left -eq 0 ] || { echo "FAIL after SIGKILL: processes [$procs] cgroups [$cgs]"; exit 1; }
host_mounts_unchanged || { echo "FAIL: host mount table changed"; exit 1; }
echo "SIGKILL with a runc container up: no process, cgroup or mount left"
