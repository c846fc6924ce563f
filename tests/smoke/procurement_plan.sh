#!/usr/bin/env bash
# `plan --preset procurement` on every machine in topologies/ prints its
# points and its time against the budget (issue 13); unhostable points are
# dropped with a note, never an error.
set -euo pipefail
BIN=$1; SRC=$2
n=0
for topo in "$SRC"/topologies/*.synthetic "$SRC"/topologies/*.xml; do
  [ -e "$topo" ] || continue
  out=$("$BIN" plan --preset procurement --topology "$topo")
  grep -q "^preset procurement-v" <<<"$out" || { echo "$topo: no preset line"; exit 1; }
  grep -q "^path_walk/.*/placement:socket:0" <<<"$out" || { echo "$topo: no socket:0 point"; exit 1; }
  grep -q "^expected run time: about [0-9]* s" <<<"$out" || { echo "$topo: no estimate"; exit 1; }
  grep -q "^budget 3600 s" <<<"$out" || { echo "$topo: no budget line"; exit 1; }
  n=$((n + 1))
done
[ "$n" -ge 5 ] || { echo "only $n topologies"; exit 1; }
out=$("$BIN" plan --preset procurement --topology "$SRC/topologies/epyc-9654-2s.synthetic")
grep -q "^note: path_walk: dropped the points with 216,.*,384 workers under socket:0: it has 192 PUs" <<<"$out" \
  || { echo "EPYC: no drop note for socket:0"; exit 1; }
! grep -q "workers:384/op:stat/placement:socket:0" <<<"$out" || { echo "EPYC: 384 workers planned on socket:0"; exit 1; }
echo "procurement plan ok on $n topologies"
