//! In a no-loss session a writer whose ring is full waits for the daemon to
//! make room instead of dropping the event, up to the session's bound; a
//! stalled daemon holds a writer no longer than that, and what it could not
//! take is counted.

use ferret_testkit as util;

use std::collections::BTreeMap;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use util::{Env, decode, wait_until};

const LIMIT: Duration = Duration::from_secs(30);

/// `ferret emit ... --json` with the counts every test here checks.
fn flood(env: &Env, provider: &str) -> serde_json::Value {
    let v = env.json(&[
        "emit",
        "--provider",
        provider,
        "--count",
        "200000",
        "--threads",
        "2",
    ]);
    assert_eq!(v["enabled_events"], 200_000, "{v}");
    v
}

#[test]
fn a_flood_into_tiny_rings_loses_nothing_in_a_no_loss_session() {
    // 16 KiB rings hold about 680 events: two threads writing as fast as
    // they can fill them long before the drain comes round.
    let env = Env::with_daemon_args(&["--ring-kib", "16"]);

    // A normal session may lose events; each one is counted.
    env.start("lossy", "E2E.Flood", &env.path("lossy.ferret"), &[]);
    let lossy_emit = flood(&env, "E2E.Flood");
    env.wait_no_providers();
    let lossy = env.json(&["stop", "lossy"]);
    let lost = lossy["events_lost"].as_u64().unwrap();
    assert_eq!(lossy["events"].as_u64().unwrap() + lost, 200_000);
    assert_eq!(lossy["lost_ring_full"], lossy_emit["dropped"], "{lossy}");

    // A no-loss session loses none: writers wait for room instead. The
    // bound is generous, as a busy test machine may starve the drain.
    let log = env.path("lossless.ferret");
    env.start(
        "lossless",
        "E2E.Flood",
        &log,
        &["--no-loss", "--no-loss-wait-ms", "10000"],
    );
    let q = env.json(&["query", "lossless"]);
    assert_eq!(q["no_loss"], true, "{q}");
    assert_eq!(q["no_loss_wait_ms"], 10_000, "{q}");
    let text = env.ok(&["query", "lossless"]);
    assert!(
        text.contains("No Loss               : yes, writers wait up to 10000 ms for ring space"),
        "{text}"
    );
    let emitted = flood(&env, "E2E.Flood");
    assert_eq!(emitted["dropped"], 0, "{emitted}");
    env.wait_no_providers();
    let stopped = env.json(&["stop", "lossless"]);
    assert_eq!(stopped["events"], 200_000, "{stopped}");
    assert_eq!(stopped["events_lost"], 0, "{stopped}");

    let d = decode(&log);
    assert!(d.damage.is_empty(), "{:?}", d.damage);
    let mut per_thread: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for e in &d.events {
        per_thread.entry(e.tid).or_default().push(e.seq.unwrap());
    }
    assert_eq!(per_thread.len(), 2);
    for seqs in per_thread.values() {
        assert_eq!(*seqs, (0..100_000).collect::<Vec<_>>());
    }
}

/// Sends SIGCONT to the daemon when dropped, so that a failing assertion
/// does not leave it stopped.
struct Stopped(Pid);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = kill_process(self.0, Signal::CONT);
    }
}

#[test]
fn a_stalled_daemon_holds_writers_no_longer_than_the_bound() {
    let env = Env::with_daemon_args(&["--ring-kib", "16"]);
    let log = env.path("stall.ferret");
    env.start(
        "stall",
        "E2E.Stall",
        &log,
        &["--no-loss", "--no-loss-wait-ms", "300"],
    );
    // Two seconds of events from two threads, each of whose rings fills in
    // well under a tenth of a second once nobody drains it.
    let mut emit = env.spawn(&[
        "emit",
        "--provider",
        "E2E.Stall",
        "--count",
        "40000",
        "--threads",
        "2",
        "--rate",
        "20000",
        "--json",
    ]);
    wait_until(LIMIT, "events in the session", || {
        env.session("stall").counters.events > 0
    });
    let daemon = Pid::from_raw(env.daemon_pid() as i32).unwrap();
    kill_process(daemon, Signal::STOP).unwrap();
    let stopped = Stopped(daemon);

    // With the daemon stopped the program still finishes: each thread
    // waits once, for the bound, then drops and counts.
    let out = emit.read_to_end(LIMIT);
    assert!(emit.wait(LIMIT).success(), "{}", emit.stderr());
    let report: serde_json::Value = serde_json::from_str(&out.join("\n")).expect("emit JSON");
    let longest = report["max_write_us"].as_u64().unwrap();
    assert!(longest >= 300_000, "a writer waited for room: {report}");
    assert!(
        longest < 300_000 + 2_000_000,
        "no write outlasted the bound by much: {report}"
    );
    let dropped = report["dropped"].as_u64().unwrap();
    assert!(dropped > 0, "{report}");
    assert_eq!(report["enabled_events"], 40_000, "{report}");

    drop(stopped);
    env.wait_no_providers();
    let s = env.json(&["stop", "stall"]);
    let events = s["events"].as_u64().unwrap();
    assert_eq!(events + s["events_lost"].as_u64().unwrap(), 40_000, "{s}");
    assert_eq!(s["lost_ring_full"], dropped, "{s}");
    assert_eq!(decode(&log).events.len() as u64, events);
}
