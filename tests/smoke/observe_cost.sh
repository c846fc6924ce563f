#!/usr/bin/env bash
# observe_cost briefly: each pair ran the walker and churn without and with
# observe's reading cycle; the observed runs took censuses, the fanotify
# points counted the churn's mount events (or are unsupported before 6.15).
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
"$BIN" run --scenario observe_cost --set containers=20 --set interval=1 --set rounds=1 \
  --warmup 0.05 --quiet --out "$TMP/r.json"
check_result "$TMP/r.json" <<'PY'
assert len(it) == 2, len(it)
rel = tuple(int(x) for x in d["context"]["kernel"]["release"].split("-")[0].split(".")[:2])
for b in it:
    p, x = b["params"], b.get("extra", {})
    if p["ops"] == "fanotify" and rel < (6, 15):
        assert b["skipped"].startswith("unsupported: fanotify mount events need Linux >= 6.15"), b
        continue
    assert "error_occurred" not in b and not b.get("skipped"), b
    for k in ("path_walk_ratios", "churn_ratios", "path_walk_per_sec_with", "churn_writes_per_sec_without"):
        assert len(x[k]) == 1 and x[k][0] > 0, (k, x)
    # A 2 s window at a 1 s interval holds two censuses (one at the window's end may fall out).
    assert x["observe_censuses"] >= 1 and x["observe_cpu_s"] > 0, x
    # fanotify sees every one of the churn's mounts; the census diff only
    # those standing at a census (often none at this rate)
    if p["ops"] == "fanotify":
        assert x["observe_mount_events"] > 0, x
PY
