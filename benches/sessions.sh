#!/usr/bin/env bash
# Measures how the number of sessions enabling one provider changes what a
# burst from `ferret emit` costs and loses: the provider writes each event
# once, and the daemon's drain copies it into every session that accepts it.
# Alternates 1, 2 and 4 file-backed sessions run by run; prints each run and
# the medians.
#
# usage: benches/sessions.sh [COUNT] [RUNS]      (defaults: 1000000 5)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
runs=${2:-5}
cargo build --release -q -p ferret-cli
ferret=target/release/ferret
dir=$(mktemp -d /tmp/ferret-bench.XXXXXX)
sock=$dir/control.sock
"$ferret" --socket "$sock" daemon 2>"$dir/daemon.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do "$ferret" --socket "$sock" list >/dev/null 2>&1 && break; sleep 0.05; done

printf '%-9s %-4s %14s %12s\n' sessions run ns/event lost
results=$dir/results
for run in $(seq "$runs"); do
  for sessions in 1 2 4; do
    names=()
    for i in $(seq "$sessions"); do
      name=s$run-$sessions-$i
      names+=("$name")
      "$ferret" --socket "$sock" start "$name" -p Bench.Sessions -f "$dir/$name.ferret" >/dev/null 2>&1
    done
    emit=$("$ferret" --socket "$sock" emit --provider Bench.Sessions --count "$count" --json)
    lost=0
    for name in "${names[@]}"; do
      stop=$("$ferret" --socket "$sock" stop "$name" --json)
      lost=$(python3 -c 'import json,sys; print(max(int(sys.argv[1]), json.loads(sys.argv[2])["events_lost"]))' "$lost" "$stop")
      "$ferret" --socket "$sock" remove "$name" >/dev/null
      rm -f "$dir/$name.ferret"
    done
    ns=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ns_per_event"])' "$emit")
    echo "$sessions $run $ns $lost" >>"$results"
    printf '%-9s %-4s %14.1f %12d\n' "$sessions" "$run" "$ns" "$lost"
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for n in ("1", "2", "4"):
    r = [x for x in rows if x[0] == n]
    lossy = sum(1 for x in r if int(x[3]) > 0)
    print(f"median, {n} session(s): {statistics.median(float(x[2]) for x in r):.1f} ns/event, "
          f"lost in {lossy} of {len(r)} runs (median {statistics.median(int(x[3]) for x in r):.0f})")
PY
