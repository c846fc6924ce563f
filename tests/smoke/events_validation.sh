#!/usr/bin/env bash
# issue 14: --events names are resolved through libpfm4 before anything is
# built. An unknown name is exit 2 (input_limits.sh); a known event this
# machine cannot count still runs and is "unsupported" in the result, never 0.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
timeout 300 "$BIN" run --scenario path_walk --containers 1 --workers 1 --warmup 0 --window 0.1 \
  --windows 1 --events cycles,task-clock --quiet --out "$TMP/r.json" || { echo "FAIL: exit $?"; exit 1; }
check_result "$TMP/r.json" <<'PY'
c = it[0]["counters"]
assert "value" in c["task-clock"] and c["task-clock"]["value"] > 0, c["task-clock"]
assert ("unsupported" in c["cycles"]) != ("value" in c["cycles"]), c["cycles"]
if "value" in c["cycles"]:
    assert c["cycles"]["value"] > 0, c["cycles"]
print("events: task-clock counted; cycles:", c["cycles"])
PY
