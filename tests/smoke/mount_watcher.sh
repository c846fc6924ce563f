#!/usr/bin/env bash
# mount_watcher briefly: both watchers see the churn's mounts, each point has
# the watcher's CPU and delay, the fanotify points are "unsupported: ..." on
# a kernel before 6.15 and see every paced mount on a newer one.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
"$BIN" run --scenario mount_watcher --set containers=10,50 --set rate=0,100 \
  --warmup 0 --window 0.4 --windows 1 --repetitions 1 --quiet --out "$TMP/r.json"
check_result "$TMP/r.json" <<'PY'
assert len(it) == 3 * 2 * 2, len(it)
rel = tuple(int(x) for x in d["context"]["kernel"]["release"].split("-")[0].split(".")[:2])
for b in it:
    p, x = b["params"], b.get("extra", {})
    if p["watcher"] == "fanotify" and rel < (6, 15):
        assert b["skipped"].startswith("unsupported: fanotify mount events need Linux >= 6.15"), b
        continue
    assert "error_occurred" not in b and not b.get("skipped"), b
    assert x["churn_writes_per_sec"] > 0, x
    assert x["mounts_in_watched_ns"] == p["containers"] + 3, x
    if p["watcher"] == "none":
        assert "watcher_cpu_ns" not in x
        continue
    assert x["watcher_cpu_per_event_ns"] > 0 and 0 < x["watcher_cpu_share"] <= 1.05, x
    assert x["watcher_wakeups"] > 0 and x["mounts_made"] > 0, x
    assert 0 < x["noticed_share"] <= 1, x
    if p["rate"]:
        assert x["notice_delay_p50_ns"] > 0 and x["notice_delay_p99_ns"] >= x["notice_delay_p50_ns"], x
    else:
        assert "notice_delay_p50_ns" not in x, x
    if p["watcher"] == "fanotify":
        assert x["watcher_overflows"] == 0, x
        if p["rate"]:  # paced: every mount is an event with its id
            assert x["noticed_share"] == 1, x
PY
