#!/usr/bin/env bash
# Measures what registering many providers costs: PROVIDERS providers
# (default 1024, the most one process may register) registered by 1 and by
# 8 processes at once (`ferret-many-providers`, each through
# `ferret-provider`), with no session and with 4 running sessions that
# together enable all PROVIDERS names (256 each, the most one session may
# enable). Each process times its own registrations; the script also takes
# the wall time until every process has exited. Prints each run, then the
# medians.
#
# The binaries are the workspace's dev build (optimized, see Cargo.toml's
# profile), or those in FERRET_BIN_DIR (`ferret` and `ferret-many-providers`)
# to measure another build without rebuilding.
#
# usage: benches/registration.sh [PROVIDERS] [RUNS]      (defaults: 1024 3)
set -euo pipefail
cd "$(dirname "$0")/.."
providers=${1:-1024}
runs=${2:-3}
if [ -n "${FERRET_BIN_DIR:-}" ]; then
  bin=$FERRET_BIN_DIR
else
  cargo build -q -p ferret-cli -p ferret-testkit --bins
  bin=target/debug
fi
ferret=$bin/ferret
dir=$(mktemp -d /tmp/ferret-bench.XXXXXX)
sock=$dir/control.sock
"$ferret" --socket "$sock" daemon 2>"$dir/daemon.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do "$ferret" --socket "$sock" list >/dev/null 2>&1 && break; sleep 0.05; done

wait_detached() {
  for _ in $(seq 600); do
    [ "$("$ferret" --socket "$sock" providers --json)" = "[]" ] && return
    sleep 0.05
  done
  echo "providers did not detach" >&2
  exit 1
}

printf '%-9s %-6s %-4s %12s %12s %12s %9s\n' sessions procs run "max reg ms" "mean reg ms" "wall ms" enabled
results=$dir/results
for run in $(seq "$runs"); do
  for sessions in 0 4; do
    names=()
    for i in $(seq 0 $((sessions - 1))); do
      name=s$run-$i
      names+=("$name")
      args=()
      for p in $(seq $((i * 256)) $((i * 256 + 255))); do
        [ "$p" -lt "$providers" ] && args+=(-p "Reg.P$p")
      done
      "$ferret" --socket "$sock" start "$name" "${args[@]}" -f "$dir/$name.ferret" >/dev/null
    done
    for procs in 1 8; do
      out=$dir/out-$run-$sessions-$procs
      rm -rf "$out"
      mkdir -p "$out"
      t0=$(date +%s%N)
      pids=()
      for p in $(seq "$procs"); do
        "$bin/ferret-many-providers" --socket "$sock" --prefix Reg.P --providers "$providers" >"$out/$p.json" &
        pids+=($!)
      done
      for pid in "${pids[@]}"; do wait "$pid"; done
      t1=$(date +%s%N)
      wait_detached
      line=$(python3 - "$out" "$sessions" "$procs" "$run" $(((t1 - t0) / 1000000)) <<'PY'
import json, os, sys
out, sessions, procs, run, wall = sys.argv[1:]
r = [json.load(open(os.path.join(out, f))) for f in sorted(os.listdir(out))]
ms = [x["register_ns"] / 1e6 for x in r]
enabled = sum(x["enabled"] for x in r)
print(sessions, procs, run, f"{max(ms):.1f}", f"{sum(ms) / len(ms):.1f}", wall, enabled)
PY
)
      echo "$line" >>"$results"
      # shellcheck disable=SC2086
      printf '%-9s %-6s %-4s %12s %12s %12s %9s\n' $line
    done
    for name in "${names[@]}"; do
      "$ferret" --socket "$sock" stop "$name" >/dev/null
      "$ferret" --socket "$sock" remove "$name" >/dev/null
      rm -f "$dir/$name.ferret"
    done
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for sessions in ("0", "4"):
    for procs in ("1", "8"):
        r = [x for x in rows if x[0] == sessions and x[1] == procs]
        print(f"median, {sessions} sessions, {procs} process(es): "
              f"slowest process {statistics.median(float(x[3]) for x in r):.1f} ms, "
              f"mean {statistics.median(float(x[4]) for x in r):.1f} ms, "
              f"wall {statistics.median(int(x[5]) for x in r)} ms, "
              f"enabled {statistics.median(int(x[6]) for x in r):.0f}")
PY
