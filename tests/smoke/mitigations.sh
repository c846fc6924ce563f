#!/usr/bin/env bash
# A tiny mitigations run: every variant at 2 containers; JSON checked.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
"$BIN" run --scenario mitigations --containers 2 --workers 1 \
  --warmup 0.05 --window 0.1 --windows 2 --quiet --out "$TMP/r.json"
check_result "$TMP/r.json" <<'PY'
# Read from the kernel, per variant: the worker's container namespace, and the
# namespaces and mounts the farm held. A container: overlay root, /proc, /dev,
# /dev/shm, /dev/mqueue, 3 /etc binds = 8 (no-binds: 5; chroot: the work tmpfs
# stays, 9, but the chrooted worker sees the 8 under its root). shared-ns: one
# namespace holding its copy of the work tmpfs and both containers, 17; its
# worker is chrooted into its container and sees that one's 8. Layer count
# is not visible in a mount count (the overlay's layer clones are in no namespace).
want = {"baseline": ([8], (2, 2 * 8)), "shared-ns": ([8], (1, 1 + 2 * 8)),
        "3-layers": ([8], (2, 2 * 8)), "no-binds": ([5], (2, 2 * 5)),
        "chroot": ([8], (2, 2 * 9))}
assert [b["params"]["variant"] for b in it] == list(want), [b["name"] for b in it]
for b in it:
    assert "error_occurred" not in b, b.get("error_message")
    v, x = b["params"]["variant"], b["extra"]
    assert b["name"] == f"mitigations/containers:2/workers:1/variant:{v}"
    assert b["items_per_second"] > 0 and len(b["windows"]) == 2
    got = (in_ns(b), added(b))
    assert got == want[v], (v, got)
    assert x["ratio_to_baseline"] > 0
    if v == "baseline":
        assert x["ratio_to_baseline"] == 1.0
print("mitigations JSON ok:", len(it), "points")
PY
