#!/usr/bin/env bash
# Issue 27: `run` and `capacity` refuse a density past user.max_mnt_namespaces
# with the same message, from the one limits function (model/limits.h), with
# exit 2 and before anything is built. The count asked for is this machine's
# limit, read here, so the test holds on any machine.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
ns_max=$(cat /proc/sys/user/max_mnt_namespaces 2>/dev/null) || { echo "SKIP: no user.max_mnt_namespaces"; exit 77; }
[ "$ns_max" -lt 1000000 ] || { echo "SKIP: user.max_mnt_namespaces ($ns_max) is above the containers axis"; exit 77; }
n=$ns_max

fail=0
expect="past user.max_mnt_namespaces = $ns_max"
out=$(timeout 60 "$BIN" run --scenario path_walk --containers "$n" --out "$TMP/r.json" 2>&1); rc=$?
[ $rc -eq 2 ] || { echo "FAIL: run rc=$rc: ${out:0:300}"; fail=1; }
grep -qF -- "$n containers need $((n + 64)) mount namespaces (with 64 spare), $expect" <<<"$out" ||
  { echo "FAIL: run message: ${out:0:300}"; fail=1; }
out=$(timeout 60 "$BIN" capacity --slo 'start_p99_s<=5' --start "$n" --max-containers "$((n + 1))" --out "$TMP/c.json" 2>&1); rc=$?
[ $rc -eq 2 ] || { echo "FAIL: capacity rc=$rc: ${out:0:300}"; fail=1; }
grep -qF -- "--start: $n containers need" <<<"$out" && grep -qF -- "$expect" <<<"$out" ||
  { echo "FAIL: capacity message: ${out:0:300}"; fail=1; }
[ ! -e "$TMP/r.json" ] && [ ! -e "$TMP/c.json" ] || { echo "FAIL: a refused run wrote a result"; fail=1; }
host_mounts_unchanged || { echo "FAIL: host mount table changed"; fail=1; }
[ $fail -eq 0 ] && echo PASS
exit $fail
