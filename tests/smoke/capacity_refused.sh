#!/usr/bin/env bash
# mntscale capacity refuses bad input with exit 2 and a message naming the
# value, before anything is built (no unshare(CLONE_NEWNS), no mount(2) under
# strace) and without writing the output file.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
command -v strace >/dev/null || { echo "SKIP: strace not installed (scripts/setup.sh installs it)"; exit 77; }
fail=0; n=0
refused() {  # expected-text args...
  local want=$1; shift
  case " $* " in *" --profile "*) ;; *) set -- --profile minimal "$@" ;; esac
  n=$((n + 1)); rm -f "$TMP/r.json"
  out=$(timeout 20 strace -f -qq -e trace=unshare,mount -o "$TMP/trace" \
        "$BIN" capacity --out "$TMP/r.json" "$@" 2>&1 >/dev/null </dev/null)
  rc=$?
  if [ $rc -ne 2 ]; then echo "FAIL [$*]: exit $rc: $out"; fail=1; return; fi
  grep -qF -- "$want" <<<"$out" || { echo "FAIL [$*]: message does not name '$want': $out"; fail=1; }
  if grep -E 'unshare\(.*CLONE_NEWNS|mount\(' "$TMP/trace" >/dev/null; then
    echo "FAIL [$*]: built something before refusing:"; grep -E 'unshare|mount' "$TMP/trace"; fail=1
  fi
  [ -e "$TMP/r.json" ] && { echo "FAIL [$*]: wrote a result"; fail=1; rm -f "$TMP/r.json"; }
}
refused "start_p98_s" --slo 'start_p98_s<=5'
refused "'five'" --slo 'start_p99_s<=five'
refused "start_p99_s<5" --slo 'start_p99_s<5'
refused "mountinfo_read_s" --slo 'start_p99_s<=5' --slo 'mountinfo_read_s<=1,mountinfo_read_s<=2'
refused "--budget 1 s is too small" --slo 'start_p99_s<=5' --budget 1
refused "--budget" --slo 'start_p99_s<=5' --budget -3
refused "--start" --slo 'start_p99_s<=5' --start 0
refused "--max-containers (4)" --slo 'start_p99_s<=5' --start 10 --max-containers 4
refused "--invocations" --slo 'start_p99_s<=5' --invocations 1
refused "--max-invocations" --slo 'start_p99_s<=5' --invocations 4 --max-invocations 3
refused "--growth" --slo 'start_p99_s<=5' --growth 1
refused "--precision" --slo 'start_p99_s<=5' --precision 1.5
refused "'sideways'" --slo 'start_p99_s<=5' --idmap sideways
refused "--churn-rate" --slo 'start_p99_s<=5' --churn-rate -1
refused "no-such-profile" --slo 'start_p99_s<=5' --profile no-such-profile
refused "slo" --budget 100
refused "--machine 'a b'" --slo 'start_p99_s<=5' --machine 'a b'
refused "--profile has an empty value" --slo 'start_p99_s<=5' --profile ''
# issue 28: objectives that can never hold, or never be measured here.
refused "'start_p99_s<=-1' can never" --slo 'start_p99_s<=-1'
refused "'start_p99_s>=5' and 'start_p99_s<=1' can never both hold" --slo 'start_p99_s>=5,start_p99_s<=1'
refused "'start_p50_s>=5' and 'start_p99_s<=1'" --slo 'start_p50_s>=5' --slo 'start_p99_s<=1'
refused "'mountinfo_read_s<=0' can never hold" --slo 'mountinfo_read_s<=0'
refused "'start_p99_s<=5' can never be measured: --churn-rate 0" --slo 'start_p99_s<=5' --churn-rate 0
host_mounts_unchanged || { echo "FAIL: host mount table changed"; fail=1; }
[ $fail -eq 0 ] && echo "capacity_refused: $n bad inputs refused before anything was built"
exit $fail
