#!/usr/bin/env bash
# A tiny propagation_fanout run: N=1 and N=5 peers; JSON checked.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
"$BIN" run --scenario propagation_fanout --set N=1,5 \
  --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r.json"
check_result "$TMP/r.json" <<'PY'
assert [b["params"]["peers"] for b in it] == [1, 5], [b["name"] for b in it]
for b in it:
    assert "error_occurred" not in b, b.get("error_message")
    x = b["extra"]
    assert b["name"] == f"propagation_fanout/peers:{b['params']['peers']}"
    assert b["items_per_second"] > 0 and b["iterations"] > 0
    # N namespaces (the measured one and N-1 copies), each: root tmpfs + /shared.
    n = b["params"]["peers"]
    assert x["peer_group"] > 0 and in_ns(b) == [2] and added(b) == (n, 2 * n), (in_ns(b), added(b))
    for k in ["mount_ns_p50", "umount_ns_p50", "mount_ns_p99", "umount_ns_p99"]:
        assert x[k] > 0, k
    lat = b["latency_ns"]
    assert lat["count"] > 0 and lat["p50"] <= lat["p99"] <= lat["max"]
print("propagation_fanout JSON ok:", len(it), "points")
PY
