#!/bin/bash
# Rootless use: a tiny path_walk as an unprivileged user. mntscale creates its
# own user namespace (uid 0 inside = the caller outside), builds overlay
# containers there and records context.rootless = true.
# Usage: rootless_path_walk.sh /path/to/mntscale /path/to/source
set -u
bin=$1 src=$2

max_userns=$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 1)
if [ "$max_userns" = 0 ]; then
  echo "SKIP: user.max_user_namespaces = 0: no user namespaces"; exit 77
fi
if [ "$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null || echo 1)" = 0 ]; then
  echo "SKIP: kernel.unprivileged_userns_clone = 0: unprivileged user namespaces are disabled"; exit 77
fi
if [ "$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null || echo 0)" = 1 ]; then
  echo "SKIP: kernel.apparmor_restrict_unprivileged_userns = 1"; exit 77
fi

# The unprivileged user must reach the binary and the profile: a private copy.
tmp=$(mktemp -d /tmp/mntscale-rootless.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
install -m 0755 "$bin" "$tmp/mntscale"
install -m 0644 "$src/profiles/minimal.json" "$tmp/minimal.json"
chmod 0777 "$tmp"

as_user=()
if [ "$(id -u)" = 0 ]; then
  if ! command -v setpriv >/dev/null; then echo "SKIP: no setpriv to drop root"; exit 77; fi
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
fi

# The minimal profile: proc and sysfs cannot be mounted in a rootless container.
"${as_user[@]}" "$tmp/mntscale" run --scenario path_walk --profile "$tmp/minimal.json" \
  --containers 2 --workers 1 --window 0.1 --windows 2 --warmup 0.05 --quiet \
  --out "$tmp/out.json" >"$tmp/log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  if grep -q "cannot create a user namespace" "$tmp/log"; then
    echo "SKIP: $(cat "$tmp/log")"; exit 77
  fi
  echo "FAIL: mntscale exited $rc"; cat "$tmp/log"; exit 1
fi

# A profile with /proc degrades to a skip that says why, never a crash or a zero;
# a run in which nothing could be measured exits 3 (issue 14), not 0.
"${as_user[@]}" "$tmp/mntscale" run --scenario path_walk --containers 1 --workers 1 \
  --layers 1 --window 0.1 --windows 1 --warmup 0 --quiet --out "$tmp/proc.json" >"$tmp/log2" 2>&1
rc=$?
[ $rc -eq 3 ] && grep -q "nothing could be measured" "$tmp/log2" \
  || { echo "FAIL: all-skipped run exited $rc, not 3"; cat "$tmp/log2"; exit 1; }

/usr/bin/python3 "$(dirname "$0")/check_schema.py" "$tmp/out.json" "$tmp/proc.json" || exit 1
/usr/bin/python3 - "$tmp/out.json" "$tmp/proc.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
ctx = doc["context"]
assert ctx["rootless"] is True, ctx.get("rootless")
assert ctx["user_namespace"]["created"] is True
assert ctx["user_namespace"]["outer_uid"] != 0 or ctx["user_namespace"]["forced"]
pts = [b for b in doc["benchmarks"] if b.get("scenario") == "path_walk" and b.get("run_type") == "iteration"]
assert pts, "no path_walk point"
good = [b for b in pts if not b.get("error_occurred") and b.get("items_per_second", 0) > 0]
assert good, [b.get("error_message") for b in pts]
proc = json.load(open(sys.argv[2]))
skipped = [b for b in proc["benchmarks"] if "skipped" in b]
assert skipped and "rootless" in skipped[0]["skipped"], proc["benchmarks"]
print("ok: rootless path_walk", good[0]["items_per_second"], "ops/s; with /proc:", skipped[0]["skipped"][:60])
PY
