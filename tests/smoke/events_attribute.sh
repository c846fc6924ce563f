#!/usr/bin/env bash
# `run --events` and `run --attribute` end to end: every counter is a value in
# range or says why it is unsupported (never 0 for unreadable), attribution's
# shares are fractions that add up, and the mount-machinery share of kernel
# time is higher with a writer churning mounts than without.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
"$BIN" run --scenario churn_interference --set writer_op=none,mount --set rounds=1 \
  --set reader_placement=same-socket --profile minimal --events default --attribute \
  --warmup 0.1 --window 0.4 --windows 3 --quiet --out "$TMP/r.json"
check_result "$TMP/r.json" <<'PY'
import math
assert [b["params"]["writer_op"] for b in it] == ["none", "mount"], [b["name"] for b in it]
share = {}
for b in it:
    assert "error_occurred" not in b, b.get("error_message")
    op, workers = b["params"]["writer_op"], len(b["workers"])
    c = b["counters"]
    assert c, "no counters with --events"
    for name, v in c.items():
        if "unsupported" in v:
            assert isinstance(v["unsupported"], str) and v["unsupported"] and "value" not in v, (name, v)
            continue
        assert math.isfinite(v["value"]) and v["value"] >= 0, (name, v)
        if "scaling" in v:  # perf counters; rusage is read from /proc
            assert 0 < v["scaling"] <= 1.0 + 1e-9, (name, v)
    # task-clock is software: always readable. The workers ran on at most their
    # CPUs for the measured time, and for a real part of it.
    tc = c["task-clock"]
    assert "value" in tc, tc
    wall_ns = b["measured_s"] * 1e9
    assert 0.05 * wall_ns < tc["value"] <= 1.05 * workers * wall_ns, (tc, wall_ns, workers)
    # The threads' utime+stime is CPU time in seconds: some, and no more than
    # the workers' CPUs had (plus a tick each). How closely it follows
    # task-clock depends on tick sampling and the machine's load, so that
    # agreement is not a pass/fail check.
    ru = c["rusage"]["value"]
    assert 0 < ru <= workers * b["measured_s"] * 1.05 + 0.01 * workers, (ru, tc, workers)
    a = b["attribution"]
    assert "unsupported" not in a, a
    assert a["samples"] > 20 and 0 < a["kernel_samples"] <= a["samples"], a
    assert all(0.0 <= f <= 1.0 for f in a["buckets"].values()), a["buckets"]
    assert abs(sum(a["buckets"].values()) - 1.0) < 1e-6, a["buckets"]
    assert sum(a["bucket_samples"].values()) == a["samples"], a
    s = a["mount_pressure_share"]
    assert 0.0 <= s <= 1.0, s
    share[op] = s
# The writer's mount+umount is all mount machinery, and the readers' walks
# fall back to ref-walk: the share must rise.
assert share["mount"] > share["none"] + 0.05, share
print("events/attribute JSON ok; mount-machinery share", share)
PY
