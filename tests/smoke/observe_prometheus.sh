#!/usr/bin/env bash
# observe's metrics as production reads them (issue 25): Debian's
# prometheus-node-exporter, started here on loopback with only its textfile
# collector, serves the file observe wrote; the scrape parses, and promtool
# accepts both the file and the scrape. The JSON carries the same figures,
# and a capacity result of another kernel is said not to match.
set -euo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
require_root
for tool in prometheus-node-exporter promtool; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (scripts/setup.sh installs it)"; exit 77; }
done
mkdir -p "$TMP/textfile"
cat > "$TMP/cap.json" <<'JSON'
{"capacity": {"profile": "k8s-containerd", "mounts_per_container": 30,
  "churn": {"strategy": "per-layer-idmap"},
  "result": {"n_star": 1800, "n_lo": 1650, "n_hi": 1900, "n_hi_open": false}},
 "context": {"kernel": {"release": "2.6.32-old"}, "cpu": {"model": "Some CPU"}}}
JSON
"$BIN" observe --interval 0.3 --count 2 --quiet --prom "$TMP/textfile/mntscale.prom" \
  --json "$TMP/o.json" --capacity "$TMP/cap.json"
host_mounts_unchanged || { echo "host mount table changed"; exit 1; }
promtool check metrics < "$TMP/textfile/mntscale.prom"

# A port the kernel just gave out free, not a random guess that may be taken.
port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prometheus-node-exporter --web.listen-address="127.0.0.1:$port" --collector.disable-defaults \
  --collector.textfile --collector.textfile.directory="$TMP/textfile" > "$TMP/ne.log" 2>&1 &
ne=$!
trap 'kill $ne 2>/dev/null || true; wait $ne 2>/dev/null || true; rm -rf "$TMP"' EXIT
$PY - "$port" "$TMP/scrape.txt" <<'PY'
import sys, time, urllib.request
port, out = sys.argv[1], sys.argv[2]
for _ in range(100):
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("node_exporter did not answer on 127.0.0.1:%s" % port)
open(out, "w").write(body)
PY
kill $ne; wait $ne 2>/dev/null || true
# The textfile collector reports a parse error as node_textfile_scrape_error 1.
grep -q '^node_textfile_scrape_error 0$' "$TMP/scrape.txt" || { grep textfile "$TMP/scrape.txt"; cat "$TMP/ne.log"; exit 1; }
promtool check metrics < "$TMP/scrape.txt"
$PY - "$TMP/scrape.txt" "$TMP/o.json" <<'PY'
import json, sys
scrape = {}
for line in open(sys.argv[1]):
    if line.startswith("mntscale_observe_") and "{" not in line:
        name, value = line.split()
        scrape[name] = float(value)
j = json.load(open(sys.argv[2]))
c = j["census"]
assert scrape["mntscale_observe_mount_namespaces"] == c["namespaces"], (scrape, c)
assert scrape["mntscale_observe_mounts"] == c["mounts_total"], (scrape, c)
assert c["namespaces"] >= 1 and c["mounts_total"] >= 1, c
assert j["mount_ops"]["source"] in ("fanotify", "diff"), j["mount_ops"]
assert "mntscale_observe_mount_attach_rate" in scrape
assert set(j["cpu"]) == {"user", "system", "steal", "idle"}, j["cpu"]
assert abs(sum(j["cpu"].values()) - 1) < 0.01, j["cpu"]
cap = j["capacity"]
assert cap["matched"] is False and "no capacity result matches" in cap["line"] and "kernel 2.6.32-old" in cap["line"], cap
PY
echo "observe: node_exporter served $(grep -c '^mntscale_observe_' "$TMP/scrape.txt") mntscale_observe samples; promtool accepted them"
