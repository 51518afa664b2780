//! With the flush timer at an hour, committed events sit in a partial
//! buffer; stopping must write them.

use ferret_testkit as util;

use util::{Env, decode};

#[test]
fn stop_flushes_everything_unsent() {
    let env = Env::new();
    let log = env.path("hour.ferret");
    env.start("hour", "E2E.Hour", &log, &["--flush-timer", "3600"]);
    env.ok(&["emit", "--provider", "E2E.Hour", "--count", "1000"]);
    // The daemon has the events (they fit one buffer), but nothing has
    // flushed them: the file holds none yet.
    util::wait_until(
        std::time::Duration::from_secs(10),
        "the daemon to count the events",
        || env.session("hour").counters.events == 1000,
    );
    assert_eq!(decode(&log).events.len(), 0, "no timed flush happened yet");
    assert_eq!(env.session("hour").files_synced, 0, "nothing synced yet");

    let stopped = env.json(&["stop", "hour"]);
    assert_eq!(stopped["events"], 1000);
    assert_eq!(stopped["events_lost"], 0);
    // What stop reports as written was fsynced before STOPPED was reported.
    assert_eq!(stopped["state"], "STOPPED");
    assert_eq!(stopped["files_synced"], 1, "{stopped}");
    let d = decode(&log);
    assert_eq!(d.events.len(), 1000);
    assert!(d.trailer.is_some());
}

#[test]
fn flush_writes_events_without_stopping() {
    let env = Env::new();
    let log = env.path("flush.ferret");
    env.start("flushme", "E2E.Flush", &log, &["--flush-timer", "3600"]);
    env.ok(&["emit", "--provider", "E2E.Flush", "--count", "500"]);
    // flush takes everything committed before it, so no waiting is needed.
    let flushed = env.json(&["flush", "flushme"]);
    assert_eq!(flushed["state"], "RUNNING");
    assert_eq!(flushed["events"], 500);
    assert_eq!(decode(&log).events.len(), 500);
    env.ok(&["emit", "--provider", "E2E.Flush", "--count", "250"]);
    env.ok(&["stop", "flushme"]);
    assert_eq!(decode(&log).events.len(), 750);
}
