#!/usr/bin/env bash
# run.sh FUZZER SRC_FUZZ_DIR TARGET SECONDS: replays the crash regressions,
# then fuzzes for SECONDS from the seed corpus. New corpus units go to a
# scratch dir (never the source tree); a crash leaves its input in ./crashes/.
# The seed is fixed (MNTSCALE_FUZZ_SEED, default 1) so that the test tier runs
# the same inputs every time: a test that fails at random is no test. Set
# MNTSCALE_FUZZ_SEED=0 for a fresh random seed when exploring (fuzz/README.md).
set -uo pipefail
fuzzer=$1 dir=$2 target=$3 seconds=$4
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$dir/lsan.supp:print_suppressions=0}
work=$(mktemp -d "${TMPDIR:-/tmp}/mntscale-fuzz-$target.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p crashes
regs=("$dir/regressions/$target"/*)
if [ -e "${regs[0]}" ]; then
  "$fuzzer" -runs=1 "${regs[@]}" > "$work.log" 2>&1 || { cat "$work.log"; rm -f "$work.log"; exit 1; }
  echo "fuzz $target: ${#regs[@]} regression input(s) replayed"
fi
start=$(date +%s)
"$fuzzer" -seed="${MNTSCALE_FUZZ_SEED:-1}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$PWD/crashes/$target-" \
  "$work" "$dir/corpus/$target" > "$work.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then tail -60 "$work.log"; else grep -E "^(#[0-9]+ +DONE|stat::(number_of_executed|new_units))" "$work.log"; fi
rm -f "$work.log"
echo "fuzz $target: $(( $(date +%s) - start )) s, exit $rc, $(ls "$work" | wc -l) new corpus units"
exit "$rc"
