#!/usr/bin/env bash
# issue 14: --out writes only to a regular file or a new path. A device node,
# FIFO, socket, directory or symlink is refused with exit 2 before anything is
# built, and is left as it was. The device node is our own, made with mknod
# on a tmpfs in a private mount namespace, never in /dev.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
command -v unshare >/dev/null || { echo "SKIP: no unshare"; exit 77; }
fail=0
ARGS=(run --scenario path_walk --containers 1 --workers 1 --warmup 0 --window 0.05 --windows 1)
refused() {  # refused NEEDLE OUT: exit 2, NEEDLE in the message, before a container is built
  local needle=$1 out=$2 msg rc
  msg=$(timeout 60 "$BIN" "${ARGS[@]}" --out "$out" 2>&1); rc=$?
  if [ $rc -ne 2 ]; then echo "FAIL ($rc != 2): --out '$out': $msg"; fail=1; fi
  grep -qF -- "$needle" <<<"$msg" || { echo "FAIL (no '$needle'): --out '$out': $msg"; fail=1; }
  if grep -q "building containers" <<<"$msg"; then echo "FAIL (refused only after building): $out"; fail=1; fi
}
# A character device like /dev/null (1,3), on our own tmpfs.
unshare -m --propagation private bash -c '
  set -u
  mount -t tmpfs none "$1" && mknod "$1/null" c 1 3 || exit 77
  msg=$(timeout 60 "$2" "${@:4}" --out "$1/null" 2>&1); rc=$?
  [ "$rc" -eq 2 ] || { echo "FAIL ($rc != 2): device node: $msg"; exit 1; }
  grep -qF "character device" <<<"$msg" || { echo "FAIL: device message: $msg"; exit 1; }
  ! grep -q "building containers" <<<"$msg" || { echo "FAIL: refused only after building"; exit 1; }
  [ -c "$1/null" ] || { echo "FAIL: the device node was replaced"; exit 1; }
  ! ls "$1"/null.tmp.* >/dev/null 2>&1 || { echo "FAIL: temp file left"; exit 1; }
' _ "$TMP" "$BIN" x "${ARGS[@]}"
rc=$?; [ $rc -eq 0 ] || { [ $rc -eq 77 ] && echo "SKIP part: tmpfs/mknod" || fail=1; }
mkfifo "$TMP/fifo"
refused "a FIFO" "$TMP/fifo"
[ -p "$TMP/fifo" ] || { echo "FAIL: FIFO replaced"; fail=1; }
$PY -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$TMP/sock"
refused "a socket" "$TMP/sock"
[ -S "$TMP/sock" ] || { echo "FAIL: socket replaced"; fail=1; }
mkdir "$TMP/dir"
refused "a directory" "$TMP/dir"
refused "names a directory" "$TMP/dir/"
echo keep > "$TMP/target"
ln -s "$TMP/target" "$TMP/link"
refused "a symbolic link" "$TMP/link"
[ -L "$TMP/link" ] && [ "$(cat "$TMP/target")" = keep ] || { echo "FAIL: symlink or its target changed"; fail=1; }
# Root passes access() for anything: the pre-check makes a real file.
refused "/proc/x.json" /proc/x.json
refused "--out has an empty value" ""
# A run without --out writes to results/ under the working directory and says where.
mkdir "$TMP/cwd"
msg=$(cd "$TMP/cwd" && timeout 120 "$BIN" "${ARGS[@]}" 2>&1); rc=$?
f=$(ls "$TMP"/cwd/results/mntscale-*.json 2>/dev/null | head -1)
if [ $rc -ne 0 ] || [ -z "$f" ] || ! grep -qF "results/$(basename "$f")" <<<"$msg"; then
  echo "FAIL: default output ($rc, '$f'): $msg"; fail=1
fi
# An existing regular file is still replaced (atomically).
echo old > "$TMP/r.json"
timeout 120 "$BIN" "${ARGS[@]}" --quiet --out "$TMP/r.json" || { echo "FAIL: regular file refused"; fail=1; }
check_result "$TMP/r.json" <<<'assert len(it) == 1' || fail=1
# argv that is not UTF-8 lands in the result's context: replaced, not a crash
# of the JSON writer after the run (found by fuzz_cli_lists).
timeout 120 "$BIN" "${ARGS[@]}" --quiet --out "$TMP/"$'\xff'".json" \
  || { echo "FAIL: a non-UTF-8 --out path"; fail=1; }
check_result "$TMP/"$'\xff'".json" <<<'assert len(it) == 1' || fail=1
[ $fail -eq 0 ] && echo "output safety: non-regular outputs refused and left alone"
exit $fail
