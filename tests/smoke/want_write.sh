#!/usr/bin/env bash
# A tiny want_write run: both filesystems, every op, with and without toggles;
# "different sockets" must be skipped with a reason on a one-socket machine.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
"$BIN" run --scenario want_write --warmup 0.05 --window 0.1 --windows 2 --quiet \
  --out "$TMP/r.json"
check_result "$TMP/r.json" <<'PY'
one_socket = d["context"]["topology"]["packages"] == 1
assert len(it) == 2 * 3 * 2 * 2, len(it)
for b in it:
    p = b["params"]
    assert b["name"] == (f"want_write/fs:{p['fs']}/write_op:{p['write_op']}/toggles:{p['toggles']}"
                         f"/sockets:{p['sockets']}/workers:{p['workers']}")
    if p["sockets"] == "different" and one_socket:
        assert b["skipped"].startswith("unsupported:") and "socket" in b["skipped"], b
        assert "items_per_second" not in b
        continue
    assert "error_occurred" not in b, b.get("error_message")
    assert b["items_per_second"] > 0 and len(b["windows"]) == 2
    roles = [w["role"] for w in b["workers"]]
    assert roles.count("toggler") == p["toggles"], roles
    assert sum(w["ops"] for w in b["workers"] if w["measured"]) == b["iterations"]
    if p["toggles"]:
        assert b["extra"]["toggles_per_sec"] > 0
print("want_write JSON ok:", len(it), "points")
PY
