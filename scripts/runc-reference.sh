#!/bin/bash
# An outside reference for the start storm's runc figure: a hand-written loop
# of `runc create` + `runc start` at parallelism 2 (pairs), N containers of a
# busybox rootfs from runc's default spec, state root on a tmpfs in a private
# mount namespace (nothing reaches the host's mount table), then deleted.
# Usage: scripts/runc-reference.sh [N=20] [BUSY=0]
#   BUSY: CPU-bound loops run alongside (the storm's two health readers spin
#   on their CPUs throughout; BUSY=2 reproduces that on a 2-vCPU machine).
set -euo pipefail
n=${1:-20} busy=${2:-0}
command -v runc >/dev/null || { echo "runc is not installed (scripts/setup.sh)"; exit 2; }
[ -x /bin/busybox ] || { echo "busybox-static is not installed (scripts/setup.sh)"; exit 2; }
for _ in $(seq "$busy"); do timeout 120 bash -c 'while :; do :; done' & done
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
unshare -m --propagation private bash -s "$n" <<'INNER'
set -euo pipefail
n=$1
mount -t tmpfs tmpfs /mnt
cd /mnt && mkdir -p b/rootfs/bin state
cp /bin/busybox b/rootfs/bin/busybox
ln -s busybox b/rootfs/bin/sleep
(cd b && runc spec)
/usr/bin/python3 - <<'PY'
import json
c = json.load(open("b/config.json"))
c["process"].update(terminal=False, args=["/bin/sleep", "1000"])
c["root"]["readonly"] = True
json.dump(c, open("b/config.json", "w"))
PY
one() { runc --root /mnt/state create --bundle /mnt/b "c$1" </dev/null >/dev/null && runc --root /mnt/state start "c$1"; }
t0=$(date +%s%N)
for i in $(seq 0 2 $((n - 1))); do one "$i" & one $((i + 1)) & wait; done
t1=$(date +%s%N)
running=$(runc --root /mnt/state list | grep -c running || true)
echo "$n create+start at parallelism 2: $(( (t1 - t0) / 1000000 )) ms, $(( n * 1000000000 / (t1 - t0) )) starts/s ($running running)"
for i in $(seq 0 $((n - 1))); do runc --root /mnt/state delete --force "c$i"; done
INNER
