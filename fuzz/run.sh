#!/usr/bin/env bash
# run.sh FUZZER SRC_FUZZ_DIR TARGET SECONDS: replays the crash regressions,
# then fuzzes for SECONDS from the seed corpus. New corpus units go to a
# scratch dir (never the source tree); a crash leaves its input in ./crashes/.
set -euo pipefail
fuzzer=$1 dir=$2 target=$3 seconds=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/mntscale-fuzz-$target.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p crashes
regs=("$dir/regressions/$target"/*)
if [ -e "${regs[0]}" ]; then "$fuzzer" -runs=1 "${regs[@]}"; fi
start=$(date +%s)
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$PWD/crashes/$target-" \
  "$work" "$dir/corpus/$target" 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::|INFO: Seed|==[0-9]+==|SUMMARY)" || true
rc=${PIPESTATUS[0]}
echo "fuzz $target: $(( $(date +%s) - start )) s, exit $rc, corpus $(ls "$work" | wc -l) new units"
exit "$rc"
