#!/usr/bin/env bash
# Measures `ferret forward` into a real OpenTelemetry collector on loopback
# (rotel-agent from PyPI's rotel, blackhole exporter): a real-time session,
# the forwarder attached, COUNT events from `ferret emit` at full speed,
# then stop. Prints, per run, the records delivered, the events the
# forwarder missed or lost, the wall time from the first event to the
# forwarder's exit; and the providers' ns per event with the forwarder
# attached and without one.
#
# usage: [BATCH=N] benches/forward.sh [COUNT] [RUNS]      (defaults: 200000 3; BATCH 4096)
# needs: rotel-agent (python3 -m pip install rotel), found through python3
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-200000}
runs=${2:-3}
cargo build --release -q -p ferret-cli
ferret=$PWD/target/release/ferret
rotel=$(python3 -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')
dir=$(mktemp -d /tmp/ferret-bench.XXXXXX)
sock=$dir/control.sock
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
grpc=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$rotel" start --otlp-grpc-endpoint "127.0.0.1:$grpc" --otlp-http-endpoint "127.0.0.1:$port" --exporter blackhole >"$dir/rotel.log" 2>&1 &
collector=$!
"$ferret" --socket "$sock" daemon 2>"$dir/daemon.log" &
daemon=$!
trap 'kill $daemon $collector 2>/dev/null; wait $daemon $collector 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do "$ferret" --socket "$sock" list >/dev/null 2>&1 && break; sleep 0.05; done
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

printf '%-4s %-10s %10s %8s %8s %10s %10s %14s\n' run mode delivered missed lost wall_ms bytes/rec emit_ns/event
for run in $(seq "$runs"); do
  for mode in forward none; do
    name=f$run$mode
    "$ferret" --socket "$sock" start "$name" -p Bench.Forward --mode real-time >/dev/null 2>&1
    if [ "$mode" = forward ]; then
      "$ferret" --socket "$sock" forward "$name" --to "http://127.0.0.1:$port" --batch "${BATCH:-4096}" --json >"$dir/fwd.json" 2>/dev/null &
      fwd=$!
      for _ in $(seq 400); do
        [ "$("$ferret" --socket "$sock" query "$name" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["consumers"])')" = 1 ] && break
        sleep 0.025
      done
    fi
    t0=$(date +%s%N)
    emit=$("$ferret" --socket "$sock" emit --provider Bench.Forward --count "$count" --json)
    "$ferret" --socket "$sock" stop "$name" >/dev/null
    ns=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ns_per_event"])' "$emit")
    if [ "$mode" = forward ]; then
      wait "$fwd" || true
      t1=$(date +%s%N)
      read -r delivered missed lost per < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["delivered"], r["missed_events"], sum(r["lost"].values()), "%.1f" % (r["bytes"] / max(r["delivered"], 1)))' "$dir/fwd.json")
      printf '%-4s %-10s %10s %8s %8s %10s %10s %14s\n' "$run" "$mode" "$delivered" "$missed" "$lost" "$(( (t1 - t0) / 1000000 ))" "$per" "$ns"
    else
      printf '%-4s %-10s %10s %8s %8s %10s %10s %14s\n' "$run" "$mode" - - - - - "$ns"
    fi
    "$ferret" --socket "$sock" remove "$name" >/dev/null
  done
done
