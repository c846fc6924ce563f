#!/usr/bin/env bash
# --farm runc (issue 16): workers run in containers runc created, and a
# SIGKILL in the middle of a run leaves no container process, cgroup or mount.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
command -v runc >/dev/null || { echo "FAIL: runc is not installed (scripts/setup.sh installs it)"; exit 1; }
out=$("$BIN" run --farm podman --out "$TMP/x.json" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF "'podman'" <<<"$out" || { echo "FAIL bad --farm: $rc $out"; exit 1; }

"$BIN" run --farm runc --profile runc-default --scenario path_walk --containers 1,3 --workers 1 \
  --op stat --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r.json" || exit 1
check_result "$TMP/r.json" <<'PY' || exit 1
assert d["context"]["farm"] == "runc", d["context"].get("farm")
for b in it:
    assert "error_occurred" not in b and b["items_per_second"] > 0, b
    # runc's own containers: its default table (25 mounts on a v1 hybrid host, 16 on v2)
    held, n = b["extra"]["mounts_held"], b["params"]["containers"]
    assert held % n == 0 and held // n >= 10, b["extra"]
print("path_walk ran in runc's containers:", [b["extra"]["mounts_held"] for b in it])
PY

# SIGKILL while runc's containers are held.
"$BIN" run --farm runc --scenario path_walk --containers 40 --workers 1 --op stat \
  --warmup 5 --window 5 --windows 5 --quiet --out "$TMP/k.json" 2>/dev/null &
pid=$!
kill_runtime_run_and_check_nothing_left $pid f "a --farm runc run" 20 || exit 1
