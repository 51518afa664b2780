//! Stop moves a session to STOPPED and leaves it listed with its counters;
//! remove takes it off the list and never deletes the log.

use ferret_testkit as util;

use util::Env;

#[test]
fn a_stopped_session_stays_listed_until_removed_and_its_log_stays() {
    let env = Env::new();
    let log = env.path("kept.ferret");
    let id = env.start("kept", "E2E.Kept", &log, &[]);
    env.ok(&["emit", "--provider", "E2E.Kept", "--count", "100"]);
    env.ok(&["stop", &id.to_string()]);

    let list = env.json(&["list"]);
    let sessions = list.as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(s["name"], "kept");
    assert_eq!(s["logger_id"], id);
    assert_eq!(s["state"], "STOPPED");
    assert_eq!(s["events"], 100);
    assert_eq!(s["events_lost"], 0);
    assert!(s["buffers_written"].as_u64().unwrap() >= 1);
    assert_eq!(s["log_file"], log.to_str().unwrap());
    assert!(log.exists());

    let text = env.ok(&["list"]);
    assert!(text.contains("STOPPED") && text.contains("kept"), "{text}");
    let q = env.ok(&["query", "kept"]);
    assert!(q.contains("\nEvents                : 100\n"), "{q}");

    let removed = env.json(&["remove", "kept"]);
    assert_eq!(removed["name"], "kept");
    assert!(log.exists(), "remove never deletes the log file");
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 0);
    // The LoggerID is free again.
    let again = env.start("next", "E2E.Kept", &env.path("next.ferret"), &[]);
    assert_eq!(again, id);
}

#[test]
fn a_running_session_cannot_be_removed() {
    let env = Env::new();
    env.start("busy", "E2E.Busy", &env.path("busy.ferret"), &[]);
    let err = env.fails(&["remove", "busy"]);
    assert!(
        err.contains("RUNNING") && err.contains("ferret stop busy"),
        "{err}"
    );
    assert_eq!(env.json(&["query", "busy"])["state"], "RUNNING");
}

#[test]
fn stop_without_waiting_returns_while_stopping_and_a_second_stop_is_refused() {
    let env = Env::new();
    env.start("nowait", "E2E.NoWait", &env.path("nowait.ferret"), &[]);
    let s = env.json(&["stop", "nowait", "--no-wait"]);
    let state = s["state"].as_str().unwrap().to_string();
    assert!(state == "STOPPING" || state == "STOPPED", "{state}");
    util::wait_until(std::time::Duration::from_secs(10), "STOPPED", || {
        env.session("nowait").state == ferret_abi::proto::SessionState::Stopped
    });
    let err = env.fails(&["stop", "nowait"]);
    assert!(err.contains("already STOPPED"), "{err}");
}
