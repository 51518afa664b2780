//! Threads that exit hand their ring to the next thread of the process, so
//! a program that starts thousands of short-lived threads needs only as many
//! rings as it has threads alive at once; past that, events are counted as
//! lost, never silently dropped.

use ferret_testkit as util;

use std::collections::{BTreeMap, BTreeSet};

use util::{Env, decode};

#[test]
fn thousands_of_short_lived_threads_share_a_few_rings_without_loss() {
    // Eight rings for 2000 threads, four of them alive at a time.
    let env = Env::with_daemon_args(&["--rings", "8"]);
    let log = env.path("churn.ferret");
    env.start("churn", "E2E.Churn", &log, &[]);
    let emitted = env.emit(
        "E2E.Churn",
        20_000,
        &["--threads", "4", "--thread-events", "10"],
    );
    assert_eq!(emitted["threads_started"], 2000, "{emitted}");
    let stopped = env.json(&["stop", "churn"]);
    assert_eq!(stopped["events"], 20_000, "{stopped}");
    assert_eq!(stopped["events_lost"], 0, "{stopped}");

    let d = decode(&log);
    assert!(d.damage.is_empty(), "{:?}", d.damage);
    assert_eq!(d.events.len(), 20_000);
    // Every event once, and each thread's ten events under one thread id:
    // a ring that passes to another thread does not carry the old owner's
    // events over to the new one, or the reverse.
    let mut seqs = BTreeSet::new();
    let mut tids_of_thread: BTreeMap<u64, BTreeSet<u32>> = BTreeMap::new();
    for e in &d.events {
        let seq = e.seq.expect("seq");
        assert!(seqs.insert(seq), "seq {seq} twice");
        tids_of_thread.entry(seq / 10).or_default().insert(e.tid);
        assert_eq!(e.msg.as_deref(), Some("hello"));
    }
    assert_eq!(seqs.len(), 20_000);
    assert_eq!(*seqs.last().unwrap(), 19_999);
    for (thread, tids) in &tids_of_thread {
        assert_eq!(tids.len(), 1, "thread {thread} has events under {tids:?}");
    }
    let distinct: BTreeSet<u32> = d.events.iter().map(|e| e.tid).collect();
    assert!(
        distinct.len() > 8,
        "far more threads than rings wrote events: {}",
        distinct.len()
    );
}

#[test]
fn threads_beyond_the_ring_count_lose_events_counted_not_silently() {
    // Two rings, eight threads writing at once for about a second: the six
    // without a ring lose their events until a ring comes free, and every
    // one of those is counted.
    let env = Env::with_daemon_args(&["--rings", "2"]);
    let log = env.path("crowd.ferret");
    env.start("crowd", "E2E.Crowd", &log, &[]);
    let emitted = env.json(&[
        "emit",
        "--provider",
        "E2E.Crowd",
        "--count",
        "8000",
        "--threads",
        "8",
        "--rate",
        "8000",
    ]);
    assert_eq!(emitted["enabled_events"], 8000, "{emitted}");
    let dropped = emitted["dropped"].as_u64().unwrap();
    assert!(dropped > 0, "six threads had no ring: {emitted}");

    let stopped = env.json(&["stop", "crowd"]);
    let events = stopped["events"].as_u64().unwrap();
    assert_eq!(events + stopped["events_lost"].as_u64().unwrap(), 8000);
    assert_eq!(stopped["lost_other"], dropped, "{stopped}");

    let entries = env.fmt_json(&[&log]);
    let in_log = entries.iter().filter(|e| e.get("event").is_some()).count();
    assert_eq!(in_log as u64, events);
    let no_ring: u64 = entries
        .iter()
        .filter(|e| e["reason"] == "no-ring")
        .map(|e| e["lost"].as_u64().unwrap())
        .sum();
    assert_eq!(no_ring, dropped, "the log says why events are missing");
}
