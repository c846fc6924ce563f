#!/usr/bin/env bash
# Bad input: a message naming the value, exit 2, and nothing built: no file,
# and, read from the system calls the refusal made (strace), no namespace, no
# mount, no sandbox directory, no process or thread started.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
command -v strace >/dev/null || { echo "SKIP: strace not installed (scripts/setup.sh installs it)"; exit 77; }
# Under strace a sanitized binary's LeakSanitizer cannot ptrace itself at exit
# (it fails and exits 1): leak checking is the sanitizer pass's other tests' job.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fail=0
# What building anything would take: a namespace, a mount, the sandbox's
# /tmp/.mntscale-<pid>, a worker thread or process.
BUILD_CALLS=unshare,setns,mount,umount2,fsopen,fsmount,move_mount,open_tree,mkdir,mkdirat,clone,clone3,fork,vfork
built() {  # built TRACE: prints the calls in TRACE that built something
  grep -E '^[0-9]+ +(unshare|setns|mount|umount2|fsopen|fsmount|move_mount|open_tree|clone|clone3|fork|vfork)\(|mkdir(at)?\(.*\.mntscale-' "$1"
}
check() {  # check NEEDLE ARGS...  (run: an --out of the test's own unless ARGS give one)
  local needle=$1; shift
  local out rc
  case " $* " in *" --out "*|" plan "*) ;; *) set -- "$@" --out "$TMP/out.json" ;; esac
  out=$(strace -f -qq -e trace=$BUILD_CALLS -o "$TMP/trace" "$BIN" "$@" 2>&1); rc=$?
  if [ $rc -ne 2 ]; then echo "FAIL ($rc != 2): $*: $out"; fail=1; fi
  if built "$TMP/trace" >/dev/null; then echo "FAIL (built before refusing): $*: $(built "$TMP/trace" | head -3)"; fail=1; fi
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
# An unreadable topology, for plan and for run: missing, a directory, not XML.
printf 'not a topology\n' > "$TMP/garbage.xml"
for topo in /nonexistent/topo.xml "$TMP" "$TMP/garbage.xml"; do
  check "$topo" plan --topology "$topo"
  check "$topo" run --topology "$topo" --containers 1
done
# The check above must be able to see a build: a real run's trace shows one.
if [ "$(id -u)" -eq 0 ]; then
  strace -f -qq -e trace=$BUILD_CALLS -o "$TMP/trace" "$BIN" run --containers 1 --workers 1 \
    --layers 1 --warmup 0.01 --window 0.05 --windows 1 --quiet --out "$TMP/real.json" >/dev/null 2>&1
  built "$TMP/trace" >/dev/null || { echo "FAIL: a real run's trace shows no build calls"; fail=1; }
  rm -f "$TMP/real.json"
fi
host_mounts_unchanged || { echo "FAIL: host mount table changed"; fail=1; }
[ $fail -eq 0 ] && echo "bad input: all rejected with exit 2"
exit $fail
