#!/usr/bin/env bash
# A tiny exec_in_overlay run: static and dynamic, both methods, churn on and
# off, warm and cold, in 2 containers of 3 layers; JSON checked. Again with
# workers, the cold exec and the churn writer as processes (--mode process),
# static binary only.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
execs() {  # mode binaries
  "$BIN" run --scenario exec_in_overlay --layers 3 --set containers=2 --set binary=$2 \
    --mode $1 --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r-$1.json"
  check_result "$TMP/r-$1.json" <<'PY'
B = {b["params"]["binary"] for b in it}
assert len(it) == len(B) * 2 * 2 * 2, len(it)
for b in it:
    p = b["params"]
    assert b["name"] == (f"exec_in_overlay/layers:3/binary:{p['binary']}/method:{p['method']}"
                         f"/churn:{p['churn']}/cache:{p['cache']}/containers:2")
    if "skipped" in b:  # no dynamic /bin/true on this host
        assert p["binary"] == "dynamic" and b["skipped"].startswith("unsupported:"), b
        continue
    assert "error_occurred" not in b, b.get("error_message")
    assert b["items_per_second"] > 0 and b["latency_ns"]["count"] > 0
    assert b["extra"]["exe"] == ("/bin/true-static" if p["binary"] == "static" else "/bin/true-dyn")
    if p["cache"] == "cold":
        assert b["iterations"] == 2          # the first exec in each container
        check_event_run(b)
    else:
        assert len(b["windows"]) == 2
        roles = [w["role"] for w in b["workers"]]
        assert roles.count("churn") == p["churn"], roles
    if p["churn"]:
        assert b["extra"]["churn_ops_per_sec"] >= 0   # present; its rate is timing
print("exec_in_overlay JSON ok:", d["context"]["worker_mode"], len(it), "points")
PY
}
execs thread static,dynamic
execs process static
