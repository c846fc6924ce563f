#!/bin/bash
# An outside reference for the start storm's containerd figure: a hand-written
# loop of `ctr run -d` at parallelism 2 (pairs), N containers of a one-layer
# busybox image, against a containerd daemon of its own. Everything lives in a
# private mount and PID namespace on tmpfs: the daemon's root, state, sockets
# and /run/containerd (where the shims put theirs), so the host's mount table
# and any host containerd are untouched, and the daemon and shims die with
# the namespace's init. The image archive is written here by hand (tar,
# sha256sum), independently of mntscale's writer.
# Usage: scripts/containerd-reference.sh [N=20] [BUSY=0]
#   BUSY: CPU-bound loops alongside (BUSY=2: the storm's two spinning health
#   readers on a 2-vCPU machine).
set -euo pipefail
n=${1:-20} busy=${2:-0}
for c in containerd ctr containerd-shim-runc-v2 runc; do
  command -v $c >/dev/null || { echo "$c is not installed (scripts/setup.sh)"; exit 2; }
done
[ -x /bin/busybox ] || { echo "busybox-static is not installed (scripts/setup.sh)"; exit 2; }
for _ in $(seq "$busy"); do timeout 300 bash -c 'while :; do :; done' & done
# The containers' cgroups are named by the containerd namespace
# (/<namespace>/<id>); they are removed here, on every exit, after the
# PID namespace (daemon, shims, containers) is gone.
ns=mntscale-ref-$$
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  for d in /sys/fs/cgroup/$ns /sys/fs/cgroup/*/$ns; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  return 0
}
trap cleanup EXIT
unshare -m -p -f --mount-proc --propagation private bash -s "$n" "$ns" <<'INNER'
set -euo pipefail
n=$1 ns=$2
mount -t tmpfs tmpfs /mnt
# A tmpfs over all of /run, never a mkdir of /run/containerd (that would be
# the host's filesystem): the shims' sockets go to /run/containerd/s.
mount -t tmpfs tmpfs /run
cd /mnt
mkdir -p root state tmp img/blobs/sha256 layer/bin
cp /bin/busybox layer/bin/busybox
ln -s busybox layer/bin/sleep
tar --numeric-owner -C layer -cf layer.tar .
blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "img/blobs/sha256/$d"; echo "$d"; }
size() { stat -c %s "$1"; }
ld=$(blob layer.tar)
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$ld" > config.json
cd_=$(blob config.json)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$cd_" "$(size config.json)" "$ld" "$(size layer.tar)" > manifest.json
md=$(blob manifest.json)
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"ref.local/busybox:1","io.containerd.image.name":"ref.local/busybox:1"}}]}' \
  "$md" "$(size manifest.json)" > img/index.json
echo '{"imageLayoutVersion":"1.0.0"}' > img/oci-layout
tar -C img -cf image.tar oci-layout index.json blobs
cat > config.toml <<'TOML'
version = 2
root = "/mnt/root"
state = "/mnt/state"
# opt would create /opt/containerd on the host's filesystem.
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt"]
[grpc]
  address = "/mnt/containerd.sock"
[ttrpc]
  address = "/mnt/containerd.sock.ttrpc"
TOML
TMPDIR=/mnt/tmp containerd --config /mnt/config.toml >/mnt/containerd.log 2>&1 &
ctr() { command ctr --address /mnt/containerd.sock -n "$ns" "$@"; }
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
ctr images import image.tar >/dev/null
one() { ctr run -d --null-io --snapshotter overlayfs ref.local/busybox:1 "c$1" /bin/sleep 1000 >/dev/null; }
t0=$(date +%s%N)
for i in $(seq 0 2 $((n - 1))); do one "$i" & a=$!; one $((i + 1)) & b=$!; wait $a $b; done
t1=$(date +%s%N)
running=$(ctr task ls | grep -c RUNNING || true)
shims=$(pgrep -c containerd-shim || true)
echo "$n ctr run -d at parallelism 2: $(( (t1 - t0) / 1000000 )) ms, $(( n * 1000000000 / (t1 - t0) )) starts/s ($running running, $shims shims)"
for i in $(seq 0 $((n - 1))); do ctr task kill -s SIGKILL "c$i" >/dev/null 2>&1 || true; done
for i in $(seq 0 $((n - 1))); do
  ctr task delete "c$i" >/dev/null 2>&1 || ctr task delete -f "c$i" >/dev/null 2>&1 || true
  ctr containers delete "c$i" >/dev/null 2>&1 || true
done
INNER
