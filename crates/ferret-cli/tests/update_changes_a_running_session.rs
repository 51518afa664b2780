//! `ferret update` changes what ETW lets a running session change: the
//! flush timer, the maximum buffers, the log file (a switch to a new file,
//! each file complete) and the provider list.

use ferret_testkit as util;

use std::time::Duration;

use util::{Env, decode, one_line, wait_until};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_shorter_flush_timer_writes_waiting_events() {
    let env = Env::new();
    let log = env.path("timer.ferret");
    env.start("timer", "E2E.Timer", &log, &["--flush-timer", "3600"]);
    env.emit("E2E.Timer", 100, &[]);
    env.wait_events("timer", 100);
    assert_eq!(
        decode(&log).events.len(),
        0,
        "no timed flush within the hour"
    );

    let s = env.json(&["update", "timer", "--flush-timer", "0.05"]);
    assert_eq!(s["flush_timer_ms"], 50);
    assert_eq!(s["state"], "RUNNING");
    // The next timed flush comes with the new timer, not in an hour.
    wait_until(LIMIT, "a timed flush with the new timer", || {
        decode(&log).events.len() == 100
    });
    env.ok(&["stop", "timer"]);
}

#[test]
fn maximum_buffers_change_and_are_shown() {
    let env = Env::new();
    env.start(
        "bufs",
        "E2E.Bufs",
        &env.path("bufs.ferret"),
        &["--max-buffers", "16", "--min-buffers", "4"],
    );
    let q = env.json(&["query", "bufs"]);
    assert_eq!(
        (q["min_buffers"].as_u64(), q["max_buffers"].as_u64()),
        (Some(4), Some(16))
    );
    let s = env.json(&["update", "bufs", "--max-buffers", "128"]);
    assert_eq!(s["max_buffers"], 128);
    assert_eq!(env.json(&["query", "bufs"])["max_buffers"], 128);
    let text = env.ok(&["query", "bufs"]);
    assert!(text.contains("\nMaximum Buffers       : 128\n"), "{text}");
    // The session still works with its new limit.
    env.emit("E2E.Bufs", 50_000, &[]);
    let stopped = env.json(&["stop", "bufs"]);
    assert_eq!(stopped["events"], 50_000);
    assert_eq!(stopped["events_lost"], 0);
}

#[test]
fn switching_to_a_new_file_leaves_two_complete_logs() {
    let env = Env::new();
    let first = env.path("first.ferret");
    let second = env.path("second.ferret");
    env.start("switch", "E2E.Switch", &first, &[]);
    env.emit("E2E.Switch", 100, &[]);
    env.wait_events("switch", 100);

    let s = env.json(&["update", "switch", "-f", second.to_str().unwrap()]);
    assert_eq!(s["log_file"], second.to_str().unwrap());
    env.emit("E2E.Switch", 200, &[]);
    let stopped = env.json(&["stop", "switch"]);
    assert_eq!(stopped["events"], 300);
    assert_eq!(stopped["files"], 2);
    // Events before the switch are in the first file, which was finished
    // with a trailer as if the session had stopped there.
    let d1 = decode(&first);
    assert_eq!(d1.events.len(), 100);
    assert!(d1.damage.is_empty(), "{:?}", d1.damage);
    let t = d1.trailer.expect("the first file has a trailer");
    assert_eq!(t.events, 100);
    // Each file decodes alone through the command line.
    assert_eq!(
        util::seqs(&env.fmt_json(&[&first])),
        (0..100).collect::<Vec<u64>>()
    );
    assert_eq!(
        util::seqs(&env.fmt_json(&[&second])),
        (0..200).collect::<Vec<u64>>()
    );
    assert!(decode(&second).trailer.is_some());

    // The new file is created like any log: never over an existing one
    // unless asked, and a refused switch leaves the session as it was.
    env.start("again", "E2E.Switch", &env.path("third.ferret"), &[]);
    let err = env.fails(&["update", "again", "-f", first.to_str().unwrap()]);
    assert!(one_line(&err).contains("pass --overwrite"), "{err}");
    assert_eq!(decode(&first).events.len(), 100, "the old log is untouched");
    assert_eq!(
        env.json(&["query", "again"])["log_file"],
        env.path("third.ferret").to_str().unwrap()
    );
}

#[test]
fn a_new_provider_list_replaces_the_old_one() {
    let env = Env::new();
    let log = env.path("list.ferret");
    env.start("list", "E2E.Old", &log, &[]);
    let s = env.json(&[
        "update",
        "list",
        "-p",
        "E2E.New",
        "-p",
        "E2E.Also:warning:0x3",
    ]);
    let providers: Vec<(String, u64, String)> = s["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["level"].as_u64().unwrap(),
                p["match_any"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        providers,
        [
            ("E2E.New".to_string(), 5, "0x0".to_string()),
            ("E2E.Also".to_string(), 3, "0x3".to_string())
        ]
    );
    let old = env.json(&["emit", "--provider", "E2E.Old", "--count", "100"]);
    assert_eq!(
        old["enabled_events"], 0,
        "the old provider is no longer enabled"
    );
    env.emit("E2E.New", 100, &[]);
    env.emit("E2E.Also", 30, &["--level", "error", "--keywords", "0x2"]);
    let stopped = env.json(&["stop", "list"]);
    assert_eq!(stopped["events"], 130);
    let entries = env.fmt_json(&[&log]);
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["provider"] == "E2E.New")
            .count(),
        100
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["provider"] == "E2E.Also")
            .count(),
        30
    );
}

#[test]
fn update_needs_a_change_and_a_running_session() {
    let env = Env::new();
    env.start("idle", "E2E.Idle", &env.path("idle.ferret"), &[]);
    let err = env.fails(&["update", "idle"]);
    assert!(one_line(&err).contains("nothing to update"), "{err}");
    let err = env.fails(&["update", "idle", "--max-buffers", "1"]);
    assert!(one_line(&err).contains("use 2 to 65536"), "{err}");
    let err = env.fails(&["update", "idle", "--flush-timer", "100000"]);
    assert!(one_line(&err).contains("out of range"), "{err}");
    env.ok(&["stop", "idle"]);
    let err = env.fails(&["update", "idle", "--flush-timer", "2"]);
    assert!(one_line(&err).contains("STOPPED"), "{err}");
}
