#!/usr/bin/env bash
# Measures `ferret emit` against a real daemon: ns per event and events lost,
# alternating 1 and 2 threads run by run, and prints each run and the medians.
#
# usage: benches/emit.sh [COUNT] [RUNS]      (defaults: 10000000 5)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-10000000}
runs=${2:-5}
cargo build --release -q -p ferret-cli
ferret=target/release/ferret
dir=$(mktemp -d /tmp/ferret-bench.XXXXXX)
sock=$dir/control.sock
"$ferret" --socket "$sock" daemon 2>"$dir/daemon.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do "$ferret" --socket "$sock" list >/dev/null 2>&1 && break; sleep 0.05; done

printf '%-8s %-4s %14s %14s %12s %14s\n' threads run ns/event/thread wall_ns/event lost bytes/event
results=$dir/results
for run in $(seq "$runs"); do
  for threads in 1 2; do
    name=b$run-$threads
    "$ferret" --socket "$sock" start "$name" -p Bench.Emit -f "$dir/$name.ferret" >/dev/null 2>&1
    emit=$("$ferret" --socket "$sock" emit --provider Bench.Emit --count "$count" --threads "$threads" --json)
    stop=$("$ferret" --socket "$sock" stop "$name" --json)
    python3 - "$threads" "$run" "$emit" "$stop" >>"$results" <<'PY'
import json, sys
threads, run, emit, stop = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
print(threads, run, emit["ns_per_event"], emit["wall_ns_per_event"], stop["events_lost"],
      stop["bytes_written"] / max(stop["events"], 1))
PY
    tail -1 "$results" | awk '{printf "%-8s %-4s %14.1f %14.1f %12d %14.1f\n", $1, $2, $3, $4, $5, $6}'
    rm -f "$dir/$name.ferret"
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for t in ("1", "2"):
    r = [x for x in rows if x[0] == t]
    med = lambda i: statistics.median(float(x[i]) for x in r)
    lossy = sum(1 for x in r if int(x[4]) > 0)
    print(f"median, {t} thread(s): {med(2):.1f} ns/event/thread, {med(3):.1f} wall ns/event, "
          f"lost in {lossy} of {len(r)} runs (median {med(4):.0f}), {med(5):.1f} bytes/event")
PY
