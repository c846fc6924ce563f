#!/usr/bin/env bash
# issue 14: a point measured beside a busy loop on its worker's CPU carries a
# "noisy" flag with the figures (other tasks' share of the worker CPUs).
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
command -v taskset >/dev/null || { echo "SKIP: no taskset"; exit 77; }
pids=()
for cpu in $(seq 0 $(($(nproc) - 1))); do
  taskset -c "$cpu" bash -c 'while :; do :; done' & pids+=($!)
done
trap 'kill ${pids[*]} 2>/dev/null; rm -rf "$TMP"' EXIT
timeout 300 "$BIN" run --scenario path_walk --containers 1 --workers 1 --warmup 0.05 \
  --window 0.3 --windows 2 --repetitions 2 --quiet --out "$TMP/r.json" || exit 1
kill "${pids[@]}"
check_result "$TMP/r.json" <<'PY'
assert len(it) == 2, len(it)
for b in it:
    q, n = b["quietness"], b.get("noisy")
    assert n is not None, ("not flagged noisy beside a busy loop", q)
    assert n["other_share"] > 0.10 and n["worker_cpus"] >= 1 and n["seconds"] > 0, n  # + SMT siblings
    assert "other tasks ran" in n["reason"], n
    for k in ["cpu_busy_s", "own_run_s", "steal_s", "steal_share", "load_1m", "cpus_online"]:
        assert k in q, k
print("noisy: both points flagged, other_share", [b["noisy"]["other_share"] for b in it])
PY
