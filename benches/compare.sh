#!/usr/bin/env bash
# Compares Ferret with LTTng-UST and with Rust `tracing` + `tracing-appender`
# on this machine, side by side (issue 5): the same workload (events of an
# integer and a 5-byte string, 1 and 2 threads) through each system,
# alternating the systems run by run, then disabled events, stop time,
# decoding speed, bytes per event, control round trips, daemon memory and a
# Ferret thread-scaling run. Prints each run and a markdown table of medians
# with the ratio Ferret/LTTng.
#
# usage: benches/compare.sh [COUNT] [RUNS]      (defaults: 10000000 5)
#
# Installs lttng-tools, liblttng-ust-dev and babeltrace2 with apt-get when
# they are missing (needs root), builds the C tracepoint program of
# benches/compare/ with gcc into a temporary directory, and the `tracing`
# program of benches/compare/tracing-bench/ (its own package, outside the
# workspace) with cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-10000000}
runs=${2:-5}

need=()
command -v lttng >/dev/null || need+=(lttng-tools)
command -v babeltrace2 >/dev/null || need+=(babeltrace2)
echo '#include <lttng/tracepoint.h>' | gcc -E -x c - >/dev/null 2>&1 || need+=(liblttng-ust-dev)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "compare.sh: missing ${need[*]}; run as root, or install them first:" >&2
    echo "  apt-get update && apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "compare.sh: installing ${need[*]}" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi

echo "compare.sh: building" >&2
cargo build --release -q -p ferret-cli
cargo build --release -q --manifest-path benches/compare/tracing-bench/Cargo.toml
dir=$(mktemp -d /tmp/ferret-compare.XXXXXX)
gcc -O2 -Wall -I benches/compare -o "$dir/lttng_bench" \
  benches/compare/lttng_bench.c benches/compare/ferret_bench_tp.c -llttng-ust -ldl -lpthread

# Ferret's disabled-event figure comes from the provider's criterion bench,
# shortened: `ferret emit` has no disabled mode, and the bench already times
# a disabled `write_event!` against the same empty loop.
echo "compare.sh: Ferret's disabled events (cargo bench -p ferret-provider --bench emit -- disabled)" >&2
cargo bench -q -p ferret-provider --bench emit -- disabled \
  --warm-up-time 1 --measurement-time 3 --noplot >"$dir/criterion.txt" 2>&1 || true

# LTTng gets its own home, so that its session daemon, configuration and
# sessions are this run's alone; a session daemon already running for this
# user is used as it is (the tracepoint program registers with it).
export LTTNG_HOME=$dir/lttng-home
mkdir -p "$LTTNG_HOME"
sessiond=
if ! lttng --no-sessiond list >/dev/null 2>&1; then
  lttng-sessiond --daemonize
  sessiond=started
fi
cleanup() {
  lttng destroy --all >/dev/null 2>&1 || true
  if [ -n "$sessiond" ]; then
    # Only the session daemon this script started, found by its pid file.
    for pidfile in "$LTTNG_HOME"/.lttng/lttng-sessiond.pid /var/run/lttng/lttng-sessiond.pid; do
      [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null && break
    done
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

python3 benches/compare/run.py "$count" "$runs" "$dir" target/release/ferret "$dir/lttng_bench" \
  benches/compare/tracing-bench/target/release/tracing-bench "$dir/criterion.txt"
