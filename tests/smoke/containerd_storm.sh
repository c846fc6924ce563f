#!/usr/bin/env bash
# containerd as a real runtime (issue 24): bad input exits 2 before anything
# starts; a short start storm with runtime=containerd,runc,model (strategy
# none) where every containerd start is a `ctr run` of a daemon the run owns
# (the task RUNNING, one shim each, the snapshot's overlay in the daemon's
# namespace), idmapped strategies refused with the reason; --farm containerd
# and `profile capture --runtime containerd`; then a SIGKILL during a long
# containerd storm leaves no daemon, shim, container process, cgroup or mount.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
for b in containerd ctr containerd-shim-runc-v2 runc; do
  command -v $b >/dev/null || { echo "SKIP: '$b' is not installed (scripts/setup.sh installs containerd)"; exit 77; }
done
fail=0
bad() {  # bad NEEDLE ARGS... : exit 2 naming NEEDLE, nothing written, nothing started
  local needle=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  [ $rc -eq 2 ] || { echo "FAIL ($rc != 2): $*: $out"; fail=1; }
  grep -qF -- "$needle" <<<"$out" || { echo "FAIL (no '$needle'): $*: $out"; fail=1; }
  ls "$TMP"/*.json >/dev/null 2>&1 && { echo "FAIL (file written): $*"; fail=1; rm -f "$TMP"/*.json; }
}
bad "'containerd2'" "$BIN" run --farm containerd2 --out "$TMP/x.json"
bad "'containerd' is not installed" env PATH=/nonexistent "$BIN" run --farm containerd --out "$TMP/x.json"
bad "containerd2" "$BIN" run --scenario container_start_storm --set runtime=containerd2 --out "$TMP/x.json"
bad "unknown runtime 'containerd2'" "$BIN" profile capture --runtime containerd2 --out "$TMP/p.json"
bad "'containerd' is not installed" env PATH=/nonexistent "$BIN" profile capture --runtime containerd --out "$TMP/p.json"
echo '{"ociVersion": "1.0.2", "linux": {}}' > "$TMP/spec.oci"
bad "--spec is not used with --runtime containerd" "$BIN" profile capture --runtime containerd --spec "$TMP/spec.oci" --out "$TMP/p.json"
echo garbage > "$TMP/bad.tar"
bad "is not an OCI image archive that can be imported" "$BIN" profile capture --runtime containerd --image "$TMP/bad.tar" --out "$TMP/p.json"
bad "is not a regular file" "$BIN" profile capture --runtime containerd --image "$TMP" --out "$TMP/p.json"
bad "--image is only used with --runtime containerd" "$BIN" profile capture --runtime runc --image "$TMP/bad.tar" --out "$TMP/p.json"
[ $fail -eq 0 ] || exit 1
[ -z "$(pgrep -f 'containerd.* /tmp/\.mntscale-')" ] || echo "note: another run's containerd is up"

"$BIN" run --wait --scenario container_start_storm --set runtime=containerd,runc,model \
  --set strategy=none,per-layer-idmap --set layers=2 --set starts=4 --set parallel=2 \
  --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r.json" || exit 1
check_result "$TMP/r.json" <<'PY' || exit 1
assert (base["before"], base["namespaces_before"]) == (base["after"], base["namespaces_after"]), base
pts = {(b["params"]["runtime"], b["params"]["strategy"]): b for b in it}
assert len(pts) == 6, sorted(pts)
s = pts[("containerd", "per-layer-idmap")]
assert s.get("skipped") == "unsupported: containerd 1.6 does not idmap layers (2.x does)", s.get("skipped")
x = {rt: pts[(rt, "none")]["extra"] for rt in ("containerd", "runc", "model")}
for rt in ("containerd", "runc"):
    b = pts[(rt, "none")]
    assert "skipped" not in b and "error_occurred" not in b, (rt, b.get("skipped"), b.get("error_message"))
    check_event_run(b)
    assert b["iterations"] == 4 and b["latency_ns"]["count"] == 4, b["latency_ns"]
    e = x[rt]
    assert e["runtime_creates"] == 4 and e["runtime_starts"] == 4 and e["runtime_running"] == 4, (rt, e)
    assert 0 < e["start_p50_ns"] <= e["start_p99_ns"] <= e["start_max_ns"], e
    assert e["container_mounts"] >= 10, (rt, e)
    # one rootfs overlay per start in the runtime's namespace: containerd's
    # snapshot mounted by its shim, runc's bundle overlay mounted by us
    assert e["runtime_ns_mounts_per_start"] == 1, (rt, e)
    assert e["mount_ops_per_start"] == e["container_mounts"] + 1, (rt, e)
c = x["containerd"]
assert c["containerd_shims"] == 4, c  # one shim per running task
assert "containerd_shims" not in x["runc"], x["runc"]
assert "container_mounts" not in x["model"], x["model"]
print("containerd: mounts/container", c["container_mounts"], "ops/start", c["mount_ops_per_start"],
      "shims", c["containerd_shims"], "| runc: mounts/container", x["runc"]["container_mounts"])
PY

"$BIN" run --farm containerd --scenario path_walk --containers 1,3 --workers 1 --op stat \
  --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/f.json" || exit 1
check_result "$TMP/f.json" <<'PY' || exit 1
assert d["context"]["farm"] == "containerd", d["context"].get("farm")
for b in it:
    assert "error_occurred" not in b and b["items_per_second"] > 0, b
    held, n = b["extra"]["mounts_held"], b["params"]["containers"]
    assert held % n == 0 and held // n >= 10, b["extra"]  # ctr's default table: 16 here
print("path_walk ran in containerd's containers:", [b["extra"]["mounts_held"] for b in it])
PY

"$BIN" profile capture --runtime containerd --layers 3 --out "$TMP/ctrd.json" || { echo "FAIL: containerd capture"; exit 1; }
$PY - "$TMP/ctrd.json" <<'PY' || exit 1
import json, sys
d = json.load(open(sys.argv[1]))
c = d["captured"]
assert c["runtime"].startswith("containerd 1."), c["runtime"]
assert c["mount_count"] == len(c["mounts"]) == d["mounts_per_container"] >= 10, (c["mount_count"], d["mounts_per_container"])
assert c["mounts"][0]["mount_point"] == "/" and c["mounts"][0]["fstype"] == "overlay", c["mounts"][0]
print("containerd capture:", c["mount_count"], "mounts")
PY
# --image: an OCI archive written here (one layer, no holder: it is bound in
# and left out of the table) gives the same table as the generated image.
mkdir -p "$TMP/layer/etc" && echo mntscale > "$TMP/layer/etc/hostname"
$PY - "$TMP/layer" "$TMP/img.tar" <<'PY' || exit 1
import hashlib, io, json, os, sys, tarfile
src, out = sys.argv[1], sys.argv[2]
def blob(b): return "sha256:" + hashlib.sha256(b).hexdigest()
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    for name in sorted(os.listdir(src)):
        t.add(os.path.join(src, name), arcname=name)
layer = buf.getvalue()
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": [blob(layer)]}}).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(cfg), "size": len(cfg)},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob(layer), "size": len(layer)}]}).encode()
idx = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "digest": blob(man), "size": len(man)}]}).encode()
with tarfile.open(out, "w") as t:
    for name, data in [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", idx)] + \
            [("blobs/sha256/" + blob(b)[7:], b) for b in (layer, cfg, man)]:
        ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
PY
"$BIN" profile capture --runtime containerd --image "$TMP/img.tar" --out "$TMP/img.json" || { echo "FAIL: containerd capture --image"; exit 1; }
$PY - "$TMP/ctrd.json" "$TMP/img.json" <<'PY' || exit 1
import json, sys
keys = lambda f: sorted((m["mount_point"], m["fstype"], m["ro"]) for m in json.load(open(f))["captured"]["mounts"])
gen, img = keys(sys.argv[1]), keys(sys.argv[2])
assert gen == img, (gen, img)
assert not [k for k in img if k[0] == "/.mntscale-holder"], img
print("containerd capture --image:", len(img), "mounts, as the generated image's")
PY
host_mounts_unchanged || { echo "FAIL: host mount table changed"; exit 1; }

# A daemon that cannot start: the point says why, in the daemon's last words.
mkdir -p "$TMP/bin"
printf '#!/bin/sh\necho "level=fatal msg=\\"mntscale smoke: no daemon\\"" >&2\nexit 1\n' > "$TMP/bin/containerd"
chmod +x "$TMP/bin/containerd"
PATH="$TMP/bin:$PATH" "$BIN" run --farm containerd --scenario path_walk --containers 1 --workers 1 \
  --op stat --warmup 0.05 --window 0.1 --windows 1 --quiet --out "$TMP/d.json" 2>/dev/null
$PY - "$TMP/d.json" <<'PY' || exit 1
import json, sys
it = [b for b in json.load(open(sys.argv[1]))["benchmarks"] if b["run_type"] == "iteration"]
assert it and all(b.get("skipped", "").startswith("unsupported: containerd: the daemon exited: ") and
                  "mntscale smoke: no daemon" in b["skipped"] for b in it), [b.get("skipped") for b in it]
print("a daemon that cannot start:", it[0]["skipped"])
PY

# SIGKILL while a containerd storm is starting containers.
"$BIN" run --wait --scenario container_start_storm --set runtime=containerd --set strategy=none \
  --set layers=2 --set starts=400 --set parallel=2 --warmup 0.05 --window 0.1 --windows 1 \
  --quiet --out "$TMP/k.json" 2>/dev/null &
pid=$!
kill_runtime_run_and_check_nothing_left $pid c "a containerd storm" 120 containerd || exit 1
