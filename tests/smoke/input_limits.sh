#!/usr/bin/env bash
# issue 14: inputs that hung, wrapped or were ignored are refused with exit 2
# before anything is built. `timeout` is the failure mode for the hangs (they
# spun for minutes); the test asserts behaviour, not speed.
set -uo pipefail
BIN=$1; SRC=$2
. "$(dirname "$0")/common.inc"
fail=0
check() {  # check NEEDLE ARGS...: exit 2 within the timeout, NEEDLE in the message
  local needle=$1; shift
  local out rc
  out=$(timeout 60 "$BIN" "$@" 2>&1); rc=$?
  if [ $rc -ne 2 ]; then echo "FAIL ($rc != 2): $*: ${out:0:300}"; fail=1; fi
  grep -qF -- "$needle" <<<"$out" || { echo "FAIL (no '$needle'): $*: ${out:0:300}"; fail=1; }
  if grep -qF -- "-727379968" <<<"$out"; then echo "FAIL (wrapped value): $*"; fail=1; fi
}
R=(run --scenario path_walk --out "$TMP/out.json")
# Topologies past the PU cap, refused before hwloc builds them.
check "more than 4096 PUs" plan --topology "pack:99999 core:99999 pu:99999"
check "more than 4096 PUs" plan --placement spread --topology "pack:99999 core:99999 pu:99999"
echo "pack:1 core:100000 pu:2" > "$TMP/big.synthetic"
check "more than 4096 PUs" plan --topology "$TMP/big.synthetic"
{ echo '<?xml version="1.0"?><topology><object type="Machine">'
  for i in $(seq 0 4100); do echo "<object type=\"PU\" os_index=\"$i\"/>"; done
  echo '</object></topology>'; } > "$TMP/big.xml"
check "more than 4096 PUs" plan --topology "$TMP/big.xml"
check "is not TYPE:COUNT" plan --topology "pack:x pu:2"
# hwloc 2.9's XML loader crashed (SIGSEGV) on this file, found by fuzz_topology_xml.
check "hwloc rejected it or crashed" plan --topology "$SRC/fuzz/regressions/topology_xml/hwloc-xml-null-deref.xml"
# run refuses a non-host topology before building it.
check "must be 'host'" "${R[@]}" --topology "pack:99999 core:99999 pu:99999"
check "must be 'host'" "${R[@]}" --topology "pack:1 core:2 pu:2"
# Data files are regular files under a size cap: /dev/zero is not read forever.
check "a character device" "${R[@]}" --profile /dev/zero
check "a character device" "${R[@]}" --preset /dev/zero
check "a character device" plan --topology /dev/zero
mkfifo "$TMP/fifo"
check "a FIFO" "${R[@]}" --profile "$TMP/fifo"
check "a directory" "${R[@]}" --profile "$TMP"
head -c $((5 << 20)) /dev/zero | tr '\0' ' ' > "$TMP/huge.json"
check "capped at" "${R[@]}" --profile "$TMP/huge.json"
# 64-bit values in JSON are refused as written, never wrapped to 32 bits.
printf '{"name": "w", "layers": 4294967306}\n' > "$TMP/p.json"
check "4294967306" "${R[@]}" --profile "$TMP/p.json"
printf '{"name": "w", "binds": -4294967296}\n' > "$TMP/p2.json"
check "-4294967296" "${R[@]}" --profile "$TMP/p2.json"
printf '{"name":"w","version":1,"windows":4294967297,"scenarios":[{"scenario":"path_walk"}]}\n' > "$TMP/s.json"
check "4294967297" run --preset "$TMP/s.json" --out "$TMP/out.json"
printf '{"name":"w","version":1,"scenarios":[{"scenario":"path_walk","set":{"containers":4294967297}}]}\n' > "$TMP/s2.json"
check "4294967297" run --preset "$TMP/s2.json" --out "$TMP/out.json"
check "4294967297" "${R[@]}" --set containers=4294967297
# Events resolve through libpfm4 now: an unknown name is a usage error.
check "bogus_event" "${R[@]}" --events bogus_event
check "--events: empty value" "${R[@]}" --events cycles,,task-clock
# Empty values are errors, not the default.
check "--containers has an empty value" "${R[@]}" --containers ""
check "--events has an empty value" "${R[@]}" --events ""
check "workers: empty value" "${R[@]}" --set workers=
# Refused before the farm is built (and so leave no work directory).
check "workers = 0" "${R[@]}" --set workers=0
check "op must be one of" "${R[@]}" --set op=$'\xff'  # fuzz_cli_lists: not UTF-8
check "binds = 5000" run --scenario farm_build --set binds=5000 --out "$TMP/out.json"
check "has the axis 'binds'" "${R[@]}" --binds 5
[ -e "$TMP/out.json" ] && { echo "FAIL: a refused run wrote its output"; fail=1; }
host_mounts_unchanged || { echo "FAIL: host mount table changed"; fail=1; }
[ $fail -eq 0 ] && echo "input limits: all refused with exit 2"
exit $fail
