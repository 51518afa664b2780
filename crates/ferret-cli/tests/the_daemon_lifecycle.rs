//! The daemon stops every session cleanly on SIGTERM, and the CLI starts a
//! daemon in the background when none answers.

use ferret_testkit as util;

use std::time::Duration;

use util::{Env, decode, wait_until};

#[test]
fn sigterm_stops_every_session_cleanly_before_the_daemon_exits() {
    let mut env = Env::new();
    let a = env.path("a.ferret");
    let b = env.path("b.ferret");
    env.start("a", "E2E.Term", &a, &["--flush-timer", "3600"]);
    env.start("b", "E2E.Term", &b, &["--flush-timer", "3600"]);
    env.ok(&[
        "emit",
        "--provider",
        "E2E.Term",
        "--count",
        "5000",
        "--threads",
        "2",
    ]);
    wait_until(
        Duration::from_secs(10),
        "both sessions to hold the events",
        || {
            env.client()
                .list()
                .unwrap()
                .iter()
                .all(|s| s.counters.events == 5000)
        },
    );
    let status = env.stop_daemon();
    assert!(
        status.success(),
        "daemon exit: {status}\n{}",
        env.daemon_log()
    );
    assert!(!env.socket.exists(), "the socket is removed on exit");
    for log in [&a, &b] {
        let d = decode(log);
        assert_eq!(d.events.len(), 5000);
        let t = d.trailer.expect("trailer written at shutdown");
        assert_eq!(t.events, 5000);
    }
    assert!(env.daemon_log().contains("STOPPED"));
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let env = Env::new();
    // With a deadline: a second daemon that wrongly serves never exits.
    let mut second = env.spawn(&["daemon"]);
    let status = second.wait(std::time::Duration::from_secs(20));
    assert_eq!(status.code(), Some(1));
    let err = second.stderr();
    assert!(err.contains("already serves"), "{err}");
    // The first one still answers.
    env.ok(&["list"]);
}

#[test]
fn the_cli_starts_a_daemon_when_none_answers() {
    let env = Env::without_daemon();
    let log = env.path("auto.ferret");
    let s = env.json(&[
        "start",
        "auto",
        "-p",
        "E2E.Auto",
        "-f",
        log.to_str().unwrap(),
    ]);
    assert_eq!(s["state"], "RUNNING");
    env.client(); // a daemon now answers
    env.ok(&["emit", "--provider", "E2E.Auto", "--count", "10"]);
    env.ok(&["stop", "auto"]);
    assert_eq!(decode(&log).events.len(), 10);
    // Shut the background daemon down; it removes its socket when done.
    assert!(env.stop_background_daemon(), "the daemon exits");
    let daemon_log = std::fs::read_to_string(env.path("ferretd.log")).unwrap();
    assert!(daemon_log.contains("listening on"), "{daemon_log}");
}
