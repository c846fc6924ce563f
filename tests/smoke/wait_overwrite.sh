#!/usr/bin/env bash
# issue 28: no silent overwrite. A run that waits for the run lock (--wait)
# and finds that its --out file was written meanwhile (by the run it waited
# for) exits 2 naming the file, and leaves that file as it was. The lock is
# held by flock(1), and the file written by the test, as the first run would.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
command -v flock >/dev/null || { echo "SKIP: flock(1) not installed (util-linux)"; exit 77; }
command -v strace >/dev/null || { echo "SKIP: strace not installed (scripts/setup.sh installs it)"; exit 77; }
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export MNTSCALE_LOCK=$TMP/run.lock
fail=0
waiting() {  # waiting ERRFILE: true once the run said it waits
  for _ in $(seq 200); do grep -q "waiting for the run" "$1" && return 0; sleep 0.05; done
  return 1
}
for cmd in run capacity; do
  case $cmd in
    run) args=(run --scenario path_walk --containers 1 --workers 1 --warmup 0 --window 0.05 --windows 1) ;;
    capacity) args=(capacity --profile minimal --slo 'start_p99_s<=5' --start 1 --max-containers 1 --invocations 2 --max-invocations 2 --window 0.1 --budget 60) ;;
  esac
  out=$TMP/$cmd.json
  echo '{"first": "run"}' > "$out"  # an older file there is fine: it is replaced
  touch -d '1 hour ago' "$out"
  exec 9> "$MNTSCALE_LOCK"; flock 9
  timeout 120 strace -f -qq -e trace=execve,mount,unshare -o "$TMP/$cmd.trace" \
    "$BIN" "${args[@]}" --wait --out "$out" 2> "$TMP/$cmd.err" & W=$!
  waiting "$TMP/$cmd.err" || { echo "FAIL: $cmd --wait never waited: $(cat "$TMP/$cmd.err")"; fail=1; }
  echo '{"written": "while it waited"}' > "$out.new" && mv "$out.new" "$out"  # as WriteFileAtomic does
  flock -u 9; exec 9>&-
  wait $W; rc=$?
  msg=$(grep -v "waiting for the run" "$TMP/$cmd.err")
  [ $rc -eq 2 ] || { echo "FAIL: $cmd: exit $rc (want 2): $msg"; fail=1; }
  grep -qF "'$out' was written while this run waited" <<<"$msg" || { echo "FAIL: $cmd: file not named: $msg"; fail=1; }
  [ "$(wc -l <<<"$msg")" -eq 1 ] || { echo "FAIL: $cmd: not one line: $msg"; fail=1; }
  # Refused before anything was built: no namespace, no mount, nothing executed.
  if grep -E '(^| )mount\(|unshare\(' "$TMP/$cmd.trace" >/dev/null ||
     grep -E 'execve\(' "$TMP/$cmd.trace" | grep -v -F "\"$BIN\"" | grep -q .; then
    echo "FAIL: $cmd built or ran something before refusing:"; grep -E 'mount|unshare|execve' "$TMP/$cmd.trace"; fail=1
  fi
  grep -q "while it waited" "$out" || { echo "FAIL: $cmd replaced the file written while it waited"; fail=1; }
done
host_mounts_unchanged || { echo "FAIL: host mount table changed"; fail=1; }
[ $fail -eq 0 ] && echo "wait_overwrite: run and capacity refused an --out written while they waited"
exit $fail
