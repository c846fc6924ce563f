#!/usr/bin/env bash
# Every axis of every scenario (from `list --json`) refuses a bad value with
# exit 2 and a message naming the axis, before anything is built: strace shows
# no unshare(CLONE_NEWNS) and no mount(2), and no result file appears.
set -uo pipefail
# (pipefail: a failing list/python step fails the test)
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
command -v strace >/dev/null || { echo "SKIP: strace not installed (scripts/setup.sh installs it)"; exit 77; }
"$BIN" list --json > "$TMP/list.json" || { echo "FAIL: list --json"; exit 1; }
# One line per case: scenario axis bad-value, from each axis's type.
$PY - "$TMP/list.json" > "$TMP/cases" <<'PY'
import json, sys
for s in json.load(open(sys.argv[1]))["scenarios"]:
    for a in s["axes"]:
        t = a["type"]
        if t == "int":
            bad = [str(a["max"] + 1), str(a["min"] - 1), "x1"]
        else:
            bad = {"enum": ["no-such-value"], "bool": ["2"], "duration": ["5"]}[t]
        for v in bad:
            print(s["name"], a["name"], v)
PY
n=0; fail=0
while read -r scenario axis value; do
  n=$((n + 1))
  out=$(timeout 20 strace -f -qq -e trace=unshare,mount -o "$TMP/trace" \
        "$BIN" run --scenario "$scenario" --set "$axis=$value" --out "$TMP/r.json" 2>&1 >/dev/null </dev/null)
  rc=$?
  # 124: still running after 20 s, i.e. it started measuring instead of refusing.
  if [ $rc -ne 2 ]; then echo "FAIL $scenario $axis=$value: exit $rc: $out"; fail=1; continue; fi
  grep -qF "$axis" <<<"$out" || { echo "FAIL $scenario $axis=$value: message does not name the axis: $out"; fail=1; }
  if grep -E 'unshare\(.*CLONE_NEWNS|mount\(' "$TMP/trace" >/dev/null; then
    echo "FAIL $scenario $axis=$value: built something before refusing:"; grep -E 'unshare|mount' "$TMP/trace"; fail=1
  fi
  [ -e "$TMP/r.json" ] && { echo "FAIL $scenario $axis=$value: wrote a result"; fail=1; rm -f "$TMP/r.json"; }
done < "$TMP/cases"
host_mounts_unchanged || { echo "FAIL: host mount table changed"; fail=1; }
[ "$n" -gt 40 ] || { echo "FAIL: only $n cases from list --json"; fail=1; }
[ $fail -eq 0 ] && echo "axes_refused: $n bad values refused before anything was built"
exit $fail
