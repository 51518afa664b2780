//! The whole path: a provider process writes a million events from two
//! threads, the session is stopped, and the log file holds every one of them.

use ferret_testkit as util;

use std::collections::BTreeMap;

use util::{Env, decode};

#[test]
fn a_million_events_from_two_threads_all_reach_the_log_in_order() {
    let env = Env::new();
    let log = env.path("million.ferret");
    // No-loss: this test is about the path, not speed. On a loaded 2-core
    // machine the drain can be starved long enough for an unpaced burst to
    // fill a ring (counted as ring-full, never silent); BENCHMARKS.md
    // measures how often that happens with default settings.
    env.start("million", "E2E.Million", &log, &["--no-loss"]);
    let emitted: serde_json::Value = serde_json::from_str(&env.ok(&[
        "emit",
        "--provider",
        "E2E.Million",
        "--count",
        "1000000",
        "--threads",
        "2",
        "--json",
    ]))
    .expect("emit json");
    assert_eq!(emitted["enabled_events"], 1_000_000, "{emitted}");

    let stopped = env.json(&["stop", "million"]);
    assert_eq!(stopped["state"], "STOPPED");
    assert_eq!(stopped["events_lost"], 0, "{stopped}");
    assert_eq!(stopped["events"], 1_000_000, "{stopped}");

    let d = decode(&log);
    assert!(d.damage.is_empty(), "damage: {:?}", d.damage);
    assert_eq!(d.events.len(), 1_000_000);
    let mut per_thread: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for e in &d.events {
        assert_eq!(e.provider, "E2E.Million");
        assert_eq!(e.name, "Sample");
        assert_eq!(e.level, 4);
        assert_eq!(e.msg.as_deref(), Some("hello"));
        per_thread
            .entry(e.tid)
            .or_default()
            .push(e.seq.expect("seq field"));
    }
    assert_eq!(per_thread.len(), 2, "two writing threads");
    for (tid, seqs) in &per_thread {
        assert_eq!(seqs.len(), 500_000, "thread {tid}");
        assert!(
            seqs.iter().enumerate().all(|(i, s)| *s == i as u64),
            "thread {tid}'s sequence numbers are complete and in order"
        );
    }
    let trailer = d.trailer.expect("a clean stop writes a trailer");
    assert_eq!(trailer.events, 1_000_000);
    assert_eq!(trailer.events_lost, 0);
    assert_eq!(
        trailer.buffers_written,
        stopped["buffers_written"].as_u64().unwrap()
    );
}

#[test]
fn timestamps_are_wall_clock_and_ordered_within_a_thread() {
    let env = Env::new();
    let log = env.path("time.ferret");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    env.start("time", "E2E.Time", &log, &[]);
    env.ok(&[
        "emit",
        "--provider",
        "E2E.Time",
        "--count",
        "2000",
        "--threads",
        "2",
    ]);
    env.ok(&["stop", "time"]);
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let d = decode(&log);
    assert_eq!(d.events.len(), 2000);
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for e in &d.events {
        // The clock conversion may be a little off at the edges, never by seconds.
        assert!(e.timestamp_ns + 1_000_000_000 > before && e.timestamp_ns < after + 1_000_000_000);
        let prev = last.insert(e.tid, e.timestamp_ns).unwrap_or(0);
        assert!(e.timestamp_ns >= prev, "time runs forward within a thread");
    }
}
