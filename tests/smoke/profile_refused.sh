#!/usr/bin/env bash
# issue 28: `profile capture` refuses bad input as run and capacity do: exit
# 2, one line naming the value, before anything starts (strace: no execve of
# the runtime, no mount, no namespace), and nothing written. A device node of
# the test's own (the host's /dev/null is never risked: before this was fixed
# capture replaced it with a regular file) survives --out on it; a FIFO and
# /dev/zero as --spec are refused at once (timeout 1 s), never read.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
command -v strace >/dev/null || { echo "SKIP: strace not installed (scripts/setup.sh installs it)"; exit 77; }
command -v runc >/dev/null || { echo "SKIP: runc not installed (scripts/setup.sh installs it)"; exit 77; }
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fail=0; n=0
mknod "$TMP/null" c 1 3 || { echo "SKIP: cannot mknod a device node in $TMP"; exit 77; }
mkfifo "$TMP/fifo"
mkdir "$TMP/dir"
ln -s "$TMP/p.json" "$TMP/link.json"
# A spec whose 10,000 mounts make a profile beyond the limits (binds <= 1000).
$PY -c 'import json, sys; json.dump({"ociVersion": "1.0.2", "linux": {}, "mounts":
  [{"destination": "/m%d" % i, "type": "bind", "source": "/tmp", "options": ["bind"]}
   for i in range(10000)]}, open(sys.argv[1], "w"))' "$TMP/big.json"
refused() {  # expected-text [timeout-seconds] -- args...
  local want=$1 limit=20; shift
  [ "$1" != "--" ] && { limit=$1; shift; }; shift
  n=$((n + 1)); rm -f "$TMP/p.json"
  out=$(timeout "$limit" strace -f -qq -e trace=execve,mount,unshare,clone3 -o "$TMP/trace" \
        "$BIN" profile capture --runtime runc "$@" 2>&1 >/dev/null </dev/null)
  rc=$?
  if [ $rc -ne 2 ]; then echo "FAIL [$*]: exit $rc (want 2 within ${limit}s): $out"; fail=1; return; fi
  [ "$(wc -l <<<"$out")" -eq 1 ] || { echo "FAIL [$*]: not one line: $out"; fail=1; }
  grep -qF -- "$want" <<<"$out" || { echo "FAIL [$*]: message does not name '$want': $out"; fail=1; }
  # The only execve is the one strace made of mntscale itself.
  if grep -E 'execve\(' "$TMP/trace" | grep -v -F "\"$BIN\"" | grep -q .; then
    echo "FAIL [$*]: executed something before refusing:"; grep execve "$TMP/trace"; fail=1
  fi
  if grep -E '(^| )mount\(|unshare\(' "$TMP/trace" >/dev/null; then
    echo "FAIL [$*]: built something before refusing:"; grep -E 'mount|unshare' "$TMP/trace"; fail=1
  fi
  [ -e "$TMP/p.json" ] && { echo "FAIL [$*]: wrote a profile"; fail=1; rm -f "$TMP/p.json"; }
}
refused "character device" -- --out "$TMP/null"
refused "a FIFO" -- --out "$TMP/fifo"
refused "a directory" -- --out "$TMP/dir"
refused "names a directory" -- --out "$TMP/dir/"
refused "symbolic link" -- --out "$TMP/link.json"
refused "--out has an empty value" -- --out ''
refused "/nonexistent-dir" -- --out /nonexistent-dir/p.json
refused "--name has an empty value" -- --name '' --out "$TMP/p.json"
refused "no file name" -- --out "$TMP/.json"
refused "a FIFO" 1 -- --spec "$TMP/fifo" --out "$TMP/p.json"
refused "character device" 1 -- --spec /dev/zero --out "$TMP/p.json"
refused "--spec has an empty value" -- --spec '' --out "$TMP/p.json"
refused "'binds' = 10000" -- --spec "$TMP/big.json" --out "$TMP/p.json"
refused "--layers 0" -- --layers 0 --out "$TMP/p.json"
# The nodes are still what they were.
[ -c "$TMP/null" ] || { echo "FAIL: the test's device node was replaced"; fail=1; }
[ -p "$TMP/fifo" ] || { echo "FAIL: the FIFO was replaced"; fail=1; }
[ -L "$TMP/link.json" ] || { echo "FAIL: the symlink was replaced"; fail=1; }
host_mounts_unchanged || { echo "FAIL: host mount table changed"; fail=1; }
[ $fail -eq 0 ] && echo "profile_refused: $n bad inputs refused before the runtime ran"
exit $fail
