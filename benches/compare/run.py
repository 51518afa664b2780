#!/usr/bin/env python3
"""Runs the comparison of benches/compare.sh once everything is built.

usage: run.py COUNT RUNS WORKDIR FERRET LTTNG_BENCH TRACING_BENCH [CRITERION_OUT]

Ferret, LTTng-UST and `tracing` run the same workload (COUNT events of an
integer and a 5-byte string, on 1 and then 2 threads), alternating the
systems run by run so that the machine's other load falls on all three
alike. Prints each run as it goes, then the medians as a markdown table
with the ratio Ferret/LTTng for each figure.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time

COUNT, RUNS = int(sys.argv[1]), int(sys.argv[2])
WORK, FERRET, LTTNG_BENCH, TRACING_BENCH = sys.argv[3:7]
CRITERION_OUT = sys.argv[7] if len(sys.argv) > 7 else None
SOCK = os.path.join(WORK, "ferret.sock")
PROVIDER = "Bench.Compare"

# figure name -> system -> list of values, one per run
results = {}


def record(figure, system, value):
    results.setdefault(figure, {}).setdefault(system, []).append(value)


def sh(args, **kw):
    """Runs a command, returns (seconds, stdout); fails loudly on error."""
    began = time.perf_counter()
    p = subprocess.run(args, capture_output=True, text=True, **kw)
    took = time.perf_counter() - began
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(args)}\n{p.stdout}\n{p.stderr}")
    return took, p.stdout


def timed_to(args, out):
    """Runs a command with its output to a file, returns seconds."""
    with open(out, "w") as f:
        began = time.perf_counter()
        subprocess.run(args, stdout=f, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - began


def count_lines(args):
    """Runs a command through `wc -l`, returns (seconds, lines)."""
    began = time.perf_counter()
    p1 = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p2 = subprocess.run(["wc", "-l"], stdin=p1.stdout, capture_output=True, text=True)
    p1.stdout.close()
    err = p1.stderr.read().decode(errors="replace")
    p1.wait()
    took = time.perf_counter() - began
    return took, int(p2.stdout.split()[0]), err


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)


def vmrss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def ferret(*args):
    return [FERRET, "--socket", SOCK, *args]


# ---- Ferret -----------------------------------------------------------------

def ferret_run(run, daemon_pid):
    for threads in (1, 2):
        name = f"f{run}t{threads}"
        log = os.path.join(WORK, name + ".ferret")
        took, _ = sh(ferret("start", name, "-p", PROVIDER, "-f", log))
        if threads == 1:
            record("control: start, ms", "ferret", took * 1e3)
            took, _ = sh(ferret("query", name))
            record("control: query, ms", "ferret", took * 1e3)
            took, _ = sh(ferret("list"))
            record("control: list, ms", "ferret", took * 1e3)
        _, out = sh(ferret("emit", "--provider", PROVIDER, "--count", str(COUNT),
                           "--threads", str(threads), "--json"))
        emit = json.loads(out)
        if threads == 1:
            record("daemon VmRSS, one session, KiB", "ferret", vmrss_kib(daemon_pid))
        took, out = sh(ferret("stop", name, "--json"))
        stop = json.loads(out)
        lost = stop["events_lost"] + (COUNT - emit.get("enabled_events", COUNT))
        if threads == 1:
            record("1 thread, ns/event", "ferret", emit["ns_per_event"])
            record("1 thread, events lost", "ferret", lost)
            record("stop until on disk, ms", "ferret", took * 1e3)
            record("bytes/event in the log", "ferret", os.path.getsize(log) / max(stop["events"], 1))
            took, lines, _ = count_lines([FERRET, "fmt", log])
            record("text decode, M events/s", "ferret", stop["events"] / took / 1e6)
            took = timed_to([FERRET, "fmt", log, "--summary"], os.devnull)
            record("decode only, M events/s", "ferret", stop["events"] / took / 1e6)
        else:
            record("2 threads, wall ns/event", "ferret", emit["wall_ns_per_event"])
            record("2 threads, ns/event/thread", "ferret", emit["ns_per_event"])
            record("2 threads, events lost", "ferret", lost)
        sh(ferret("remove", name))
        os.remove(log)
        print(f"ferret  run {run} {threads}T: {emit['ns_per_event']:.1f} ns/event/thread, "
              f"{emit['wall_ns_per_event']:.1f} wall, lost {lost}", flush=True)


# ---- LTTng ------------------------------------------------------------------

def lttng(*args):
    return ["lttng", *args]


def lttng_run(run):
    for threads in (1, 2):
        name = f"l{run}t{threads}"
        out_dir = os.path.join(WORK, name)
        t1, _ = sh(lttng("create", name, "--output", out_dir))
        t2, _ = sh(lttng("enable-event", "-u", "ferret_bench:*", "-s", name))
        if threads == 1:
            record("control: start, ms", "lttng", (t1 + t2) * 1e3)
            took, _ = sh(lttng("list", name))
            record("control: query, ms", "lttng", took * 1e3)
            took, _ = sh(lttng("list"))
            record("control: list, ms", "lttng", took * 1e3)
        sh(lttng("start", name))
        _, out = sh([LTTNG_BENCH, "enabled", str(COUNT), str(threads)])
        emit = json.loads(out)
        if threads == 1:
            record("daemon VmRSS, one session, KiB", "lttng", lttng_rss_kib())
        began = time.perf_counter()
        p = subprocess.run(lttng("stop", name), capture_output=True, text=True, check=True)
        took = time.perf_counter() - began
        m = re.search(r"(\d+) events were discarded", p.stdout + p.stderr)
        discarded = int(m.group(1)) if m else 0
        sh(lttng("destroy", name))
        took_text, lines, err = count_lines(["babeltrace2", out_dir])
        lost = COUNT - lines
        if threads == 1:
            record("1 thread, ns/event", "lttng", emit["ns_per_event"])
            record("1 thread, events lost", "lttng", lost)
            record("stop until on disk, ms", "lttng", took * 1e3)
            record("bytes/event in the log", "lttng", dir_bytes(out_dir) / max(lines, 1))
            record("text decode, M events/s", "lttng", lines / took_text / 1e6)
            took = timed_to(["babeltrace2", out_dir, "-o", "dummy"], os.devnull)
            record("decode only, M events/s", "lttng", lines / took / 1e6)
        else:
            record("2 threads, wall ns/event", "lttng", emit["wall_ns_per_event"])
            record("2 threads, ns/event/thread", "lttng", emit["ns_per_event"])
            record("2 threads, events lost", "lttng", lost)
        subprocess.run(["rm", "-rf", out_dir], check=True)
        print(f"lttng   run {run} {threads}T: {emit['ns_per_event']:.1f} ns/event/thread, "
              f"{emit['wall_ns_per_event']:.1f} wall, lost {lost} (stop said {discarded} discarded)",
              flush=True)


# ---- tracing ------------------------------------------------------------------

def tracing_run(run):
    for threads in (1, 2):
        path = os.path.join(WORK, f"t{run}t{threads}.log")
        _, out = sh([TRACING_BENCH, str(COUNT), str(threads), path])
        r = json.loads(out)
        if threads == 1:
            record("1 thread, ns/event", "tracing", r["ns_per_event"])
            record("1 thread, events lost", "tracing", r["lost"])
            record("stop until on disk, ms", "tracing", r["guard_drop_ms"])
            record("bytes/event in the log", "tracing", r["bytes"] / max(r["events_in_file"], 1))
        else:
            record("2 threads, wall ns/event", "tracing", r["wall_ns_per_event"])
            record("2 threads, ns/event/thread", "tracing", r["ns_per_event"])
            record("2 threads, events lost", "tracing", r["lost"])
        os.remove(path)
        print(f"tracing run {run} {threads}T: {r['ns_per_event']:.1f} ns/event/thread, "
              f"{r['wall_ns_per_event']:.1f} wall, lost {r['lost']}", flush=True)


# ---- disabled events ----------------------------------------------------------

def disabled_runs():
    # LTTng: the same binary with no session enabling its tracepoint, and its
    # empty loop; 100 x COUNT iterations so that the loop lasts long enough
    # to time. The registration wait is skipped: nothing enables it anyway.
    env = dict(os.environ, LTTNG_UST_REGISTER_TIMEOUT="0")
    n = str(max(COUNT * 10, 100_000_000))
    for _ in range(RUNS):
        for mode, figure in (("empty", "empty loop, ns"), ("disabled", "disabled event, ns")):
            _, out = sh([LTTNG_BENCH, mode, n, "1"], env=env)
            record(figure, "lttng", json.loads(out)["ns_per_event"])
    if CRITERION_OUT and os.path.exists(CRITERION_OUT):
        # Ferret: criterion's estimates from `cargo bench -p ferret-provider
        # --bench emit -- disabled`, the middle of its interval.
        text = open(CRITERION_OUT).read()
        for bench, figure in (("disabled/empty_loop", "empty loop, ns"),
                              ("disabled/write_event", "disabled event, ns")):
            m = re.search(re.escape(bench) + r"\s+time:\s+\[\S+ \S+ (\S+) (\S+)", text)
            if m:
                v = float(m.group(1)) * {"ps": 1e-3, "ns": 1, "µs": 1e3, "us": 1e3}[m.group(2)]
                record(figure, "ferret", v)


# ---- scaling ----------------------------------------------------------------------

def scaling_runs():
    rows = {}
    for run in range(RUNS):
        for threads in (1, 2, 4, 8, 16):
            name = f"s{run}t{threads}"
            log = os.path.join(WORK, name + ".ferret")
            sh(ferret("start", name, "-p", PROVIDER, "-f", log))
            _, out = sh(ferret("emit", "--provider", PROVIDER, "--count", str(COUNT),
                               "--threads", str(threads), "--json"))
            emit = json.loads(out)
            _, out = sh(ferret("stop", name, "--json"))
            stop = json.loads(out)
            sh(ferret("remove", name))
            os.remove(log)
            rows.setdefault(threads, []).append(
                (1e3 / emit["wall_ns_per_event"], emit["ns_per_event"], stop["events_lost"]))
    return rows


# ---- main -------------------------------------------------------------------------

def main():
    daemon = subprocess.Popen([FERRET, "--socket", SOCK, "daemon"],
                              stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(WORK, "ferret-daemon.log"), "w"))
    try:
        for _ in range(200):
            if subprocess.run(ferret("list"), capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        time.sleep(0.2)
        record("daemon VmRSS, idle, KiB", "ferret", vmrss_kib(daemon.pid))
        order = [ferret_run, lttng_run, tracing_run]
        for run in range(1, RUNS + 1):
            # Rotate who goes first so that no system always runs on a
            # machine just warmed (or just loaded) by another.
            k = (run - 1) % 3
            for f in order[k:] + order[:k]:
                if f is ferret_run:
                    f(run, daemon.pid)
                else:
                    f(run)
        disabled_runs()
        scaling = scaling_runs()
        lttng_rss = lttng_rss_kib()
    finally:
        daemon.terminate()
        daemon.wait()
    report(scaling, lttng_rss)


def lttng_rss_kib():
    """Resident memory of the LTTng daemons: the session daemons and consumer daemons together."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            comm = open(f"/proc/{pid}/comm").read().strip()
            if comm.startswith("lttng-sessiond") or comm.startswith("lttng-consumerd"):
                total += vmrss_kib(pid)
        except OSError:
            pass
    return total


GOALS = [
    ("empty loop, ns", "the floor for the disabled figure"),
    ("disabled event, ns", "no more than an empty loop"),
    ("1 thread, ns/event", "<= 20 ns and <= 0.3 x LTTng"),
    ("1 thread, events lost", "0"),
    ("2 threads, wall ns/event", "<= 0.3 x LTTng"),
    ("2 threads, ns/event/thread", "reported"),
    ("2 threads, events lost", "0 with default settings"),
    ("stop until on disk, ms", "<= 20 ms and <= 0.1 x LTTng"),
    ("text decode, M events/s", ">= 10 x babeltrace2 (text)"),
    ("decode only, M events/s", ">= 10 x babeltrace2 -o dummy"),
    ("bytes/event in the log", "<= LTTng"),
    ("control: start, ms", "<= LTTng (create + enable-event)"),
    ("control: query, ms", "<= LTTng (list SESSION)"),
    ("control: list, ms", "<= LTTng (list)"),
    ("daemon VmRSS, idle, KiB", "reported (LTTng: sessiond + consumerds)"),
    ("daemon VmRSS, one session, KiB", "reported (after the 1-thread burst)"),
]


def fmt(vals):
    if not vals:
        return "-"
    if all(float(v).is_integer() for v in vals) and statistics.median(vals) >= 100 or \
            all(v == 0 for v in vals):
        med = statistics.median(vals)
        s = f"{med:,.0f}"
        if min(vals) != max(vals):
            s += f" ({min(vals):,.0f} to {max(vals):,.0f})"
        return s
    one = lambda v: f"{v:,.2f}" if v < 100 else f"{v:,.0f}"
    s = one(statistics.median(vals))
    if len(vals) > 1 and min(vals) != max(vals):
        s += f" ({one(min(vals))} to {one(max(vals))})"
    return s


def report(scaling, lttng_rss):
    if lttng_rss:
        record("daemon VmRSS, idle, KiB", "lttng", lttng_rss)
    print()
    print(f"COUNT={COUNT} RUNS={RUNS}; medians (min to max)")
    print()
    print("| figure | Ferret | LTTng-UST | tracing + appender | Ferret / LTTng | goal |")
    print("| --- | --- | --- | --- | --- | --- |")
    for figure, goal in GOALS:
        r = results.get(figure, {})
        f, l, t = r.get("ferret", []), r.get("lttng", []), r.get("tracing", [])
        ratio = "-"
        if f and l and statistics.median(l) != 0:
            ratio = f"{statistics.median(f) / statistics.median(l):.2f}"
        print(f"| {figure} | {fmt(f)} | {fmt(l)} | {fmt(t)} | {ratio} | {goal} |")
    print()
    print("Ferret scaling (`ferret emit`, COUNT events over T threads, one file-backed session):")
    print()
    print("| threads | M events/s (wall) | ns/event/thread | runs with loss | median lost |")
    print("| --- | --- | --- | --- | --- |")
    for threads, rows in scaling.items():
        print(f"| {threads} | {fmt([r[0] for r in rows])} | {fmt([r[1] for r in rows])} | "
              f"{sum(1 for r in rows if r[2] > 0)} of {len(rows)} | "
              f"{statistics.median(r[2] for r in rows):,.0f} |")


main()
