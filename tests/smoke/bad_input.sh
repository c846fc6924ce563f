#!/usr/bin/env bash
# Bad input: a message naming the value, exit 2, no mounts built, no file.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
fail=0
check() {  # check NEEDLE ARGS...  (an --out of the test's own unless ARGS give one)
  local needle=$1; shift
  local out rc
  case " $* " in *" --out "*) ;; *) set -- "$@" --out "$TMP/out.json" ;; esac
  out=$("$BIN" "$@" 2>&1); rc=$?
  if [ $rc -ne 2 ]; then echo "FAIL ($rc != 2): $*: $out"; fail=1; fi
  if ! grep -qF -- "$needle" <<<"$out"; then echo "FAIL (no '$needle'): $*: $out"; fail=1; fi
  if [ -e "$TMP/out.json" ]; then echo "FAIL (file written): $*"; fail=1; rm -f "$TMP/out.json"; fi
  if ls "$TMP"/out.json.tmp.* >/dev/null 2>&1; then echo "FAIL (temp file left): $*"; fail=1; fi
}
check "containers = 0"  run --containers 0
check "= -5"            run --containers -5
check "layers = 501"    run --layers 501
check "'sideways'"      run --placement sideways
check "'chmod'"         run --op chmod
check "socket 3"        run --placement socket:3 --workers 1
check "4096 workers"    run --placement compact --workers 4096
check "'nosuch'"        run --scenario nosuch
check "no axis 'bogus'" run --set bogus=1
check "--frobnicate"    run --frobnicate
check "'/nonexistent-dir" run --containers 1 --out /nonexistent-dir/r.json
# plan with an unreadable topology
out=$("$BIN" plan --topology /nonexistent/topo.xml 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF "/nonexistent/topo.xml" <<<"$out" || { echo "FAIL plan topology: $rc $out"; fail=1; }
host_mounts_unchanged || { echo "FAIL: host mount table changed"; fail=1; }
[ $fail -eq 0 ] && echo "bad input: all rejected with exit 2"
exit $fail
