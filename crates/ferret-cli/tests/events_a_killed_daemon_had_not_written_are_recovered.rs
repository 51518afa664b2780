//! A daemon takes events from the rings into session buffers at once, but
//! writes a buffer only when it is full or the flush timer fires. Events
//! in buffers it had not written when it was killed are still in the
//! rings: the daemon publishes where its oldest unwritten record starts,
//! and `ferret recover` reads from there. Events it had written are not
//! recovered again once their buffers are back from the writer.

use ferret_testkit as util;

use std::time::Duration;

use ferret_provider::{Level, provider, write_event};
use util::{Env, wait_until};

provider!(static APP = "E2E.Unwritten");

const LIMIT: Duration = Duration::from_secs(30);

fn write(seqs: std::ops::Range<u64>) {
    for seq in seqs {
        write_event!(APP, "Sample", level: Information, seq = seq);
    }
}

#[test]
fn events_in_buffers_a_killed_daemon_had_not_written_are_recovered() {
    let mut env = Env::new();
    assert!(ferret_provider::configure(ferret_provider::Options {
        socket: env.socket.clone(),
        ..ferret_provider::Options::default()
    }));
    let log = env.path("session.ferret");
    // An hour's flush timer: nothing reaches the file until a buffer fills.
    env.start(
        "unwritten",
        "E2E.Unwritten",
        &log,
        &["--flush-timer", "3600", "--buffer-size", "16"],
    );
    wait_until(LIMIT, "the session to enable the provider", || {
        APP.enabled(Level::Information, 0)
    });
    // Enough to fill some buffers, which the daemon writes, and leave the
    // rest in its current buffer.
    const N: u64 = 5000;
    write(0..N);
    env.wait_events("unwritten", N);
    // The full buffers reach the file; the last one stays in memory.
    wait_until(LIMIT, "the full buffers to be written", || {
        env.session("unwritten").counters.buffers_written > 0
    });
    let on_disk: Vec<u64> = util::decode(&log)
        .events
        .iter()
        .map(|e| e.seq.unwrap())
        .collect();
    assert!(!on_disk.is_empty() && (on_disk.len() as u64) < N);
    env.kill_daemon();

    wait_until(LIMIT, "the keeper to offer the rings", || {
        ferret_daemon::kept_daemons(&env.socket).len() == 1
    });
    let out = env.path("recovered.ferret");
    let report = env.json(&["recover", "-o", out.to_str().unwrap()]);
    assert_eq!(report["unusable"], 0, "{report}");
    let recovered: Vec<u64> = env
        .fmt_json(&[&out])
        .iter()
        .filter(|e| e.get("event").is_some())
        .map(|e| e["fields"]["seq"].as_u64().unwrap())
        .collect();
    // The log file and the recovered log together hold every event, in
    // order: the recovery starts at most where the file ends (it may
    // repeat the events of a buffer the writer had written but not yet
    // handed back).
    let first = *recovered.first().expect("events recovered");
    assert_eq!(recovered, (first..N).collect::<Vec<_>>());
    let file_end = on_disk.len() as u64;
    assert_eq!(on_disk, (0..file_end).collect::<Vec<_>>());
    assert!(
        first <= file_end,
        "recovered from {first}, the file ends at {file_end}"
    );
    assert_eq!(report["events"], N - first, "{report}");
}
