#!/usr/bin/env bash
# run --machine names the machine in the context (over MNTSCALE_MACHINE, over
# the hostname); the context carries microcode, SMT, governor, mitigations and
# the kernel command line, each or its reason; absurd names and a preset 10x
# over its budget exit 2 before anything is built.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
tiny=(--scenario path_walk --containers 1 --workers 1 --layers 1 --warmup 0.02 --window 0.05
      --windows 1 --repetitions 1 --quiet --wait)
"$BIN" run --help | grep -q -- "--machine" || { echo "run --help lacks --machine"; exit 1; }
MNTSCALE_MACHINE=env-box "$BIN" run "${tiny[@]}" --machine opt-box.1 --out "$TMP/opt.json"
MNTSCALE_MACHINE=env-box "$BIN" run "${tiny[@]}" --out "$TMP/env.json"
env -u MNTSCALE_MACHINE "$BIN" run "${tiny[@]}" --out "$TMP/host.json"
check_result "$TMP/opt.json" <<'PY'
m = d["context"]["machine"]
assert (m["name"], m["name_from"]) == ("opt-box.1", "--machine"), m
pl = d["context"]["platform"]
for k in ["microcode", "governor", "mitigations", "cmdline"]:
    assert (k in pl) != (k + "_unsupported" in pl), (k, pl)
    if k + "_unsupported" in pl:
        assert pl[k + "_unsupported"].startswith("unsupported: "), pl
for k in ["control", "active"]:
    assert (k in pl["smt"]) != (k + "_unsupported" in pl["smt"]), pl["smt"]
if "governor" in pl:
    assert set(pl["governor"]) and all(v for v in pl["governor"].values()), pl["governor"]
if "mitigations" in pl:
    assert all(isinstance(v, str) and v for v in pl["mitigations"].values()), pl["mitigations"]
cmdline = open("/proc/cmdline").read().strip()
assert pl.get("cmdline") == cmdline, (pl.get("cmdline"), cmdline)
PY
check_result "$TMP/env.json" <<'PY'
m = d["context"]["machine"]
assert (m["name"], m["name_from"]) == ("env-box", "MNTSCALE_MACHINE"), m
PY
check_result "$TMP/host.json" <<'PY'
import socket
m = d["context"]["machine"]
assert (m["name"], m["name_from"]) == (socket.gethostname(), "hostname"), m
PY
refused() {  # refused WHAT-TO-FIND -- ARGS...: exit 2 naming it, nothing written
  local want=$1; shift
  local rc=0
  "$@" > "$TMP/out" 2> "$TMP/err" || rc=$?
  [ "$rc" = 2 ] || { echo "want exit 2, got $rc: $*"; cat "$TMP/err"; exit 1; }
  grep -q -- "$want" "$TMP/err" || { echo "message lacks '$want':"; cat "$TMP/err"; exit 1; }
}
refused "machine" "$BIN" run "${tiny[@]}" --machine "" --out "$TMP/x.json"
refused "a b" "$BIN" run "${tiny[@]}" --machine "a b" --out "$TMP/x.json"
refused "../x" env MNTSCALE_MACHINE=../x "$BIN" run "${tiny[@]}" --out "$TMP/x.json"
cat > "$TMP/over-v1.json" <<'JSON'
{"name": "over", "version": 1, "budget_s": 1, "warmup": 0, "window": 1, "windows": 20,
 "repetitions": 1, "scenarios": [{"scenario": "path_walk", "set": {"containers": "1", "workers": "1"}}]}
JSON
refused "more than 10x its budget_s" "$BIN" run --preset "$TMP/over-v1.json" --quiet --out "$TMP/x.json"
refused "more than 10x its budget_s" "$BIN" plan --preset "$TMP/over-v1.json"
[ ! -e "$TMP/x.json" ] || { echo "a refused run wrote its result"; exit 1; }
host_mounts_unchanged
echo "machine context ok"
