//! A session is named by its LoggerID or its LoggerName in every verb;
//! LoggerIDs are the lowest free positive integers and come back after
//! remove; the daemon refuses more active sessions than its limit.

use ferret_testkit as util;

use util::{Env, one_line};

#[test]
fn logger_ids_are_reused_after_remove_and_stop_takes_an_id_or_a_name() {
    let env = Env::new();
    let a = env.start("alpha", "E2E.Ids", &env.path("a.ferret"), &[]);
    let b = env.start("beta", "E2E.Ids", &env.path("b.ferret"), &[]);
    let c = env.start("gamma", "E2E.Ids", &env.path("c.ferret"), &[]);
    assert_eq!((a, b, c), (1, 2, 3));

    // Stop by LoggerID, remove by LoggerName: ID 2 is free again.
    let stopped = env.json(&["stop", "2"]);
    assert_eq!(stopped["name"], "beta");
    assert_eq!(stopped["state"], "STOPPED");
    env.ok(&["remove", "beta"]);
    let d = env.start("delta", "E2E.Ids", &env.path("d.ferret"), &[]);
    assert_eq!(d, 2, "the lowest free LoggerID is reused");

    // Stop by LoggerName (in any ASCII case), remove by LoggerID.
    let stopped = env.json(&["stop", "ALPHA"]);
    assert_eq!(stopped["logger_id"], 1);
    assert_eq!(stopped["state"], "STOPPED");
    env.ok(&["remove", "1"]);
    let e = env.start("epsilon", "E2E.Ids", &env.path("e.ferret"), &[]);
    assert_eq!(e, 1);

    // A fresh LoggerID is the next one above every listed session.
    let f = env.start("zeta", "E2E.Ids", &env.path("f.ferret"), &[]);
    assert_eq!(f, 4);
    let ids: Vec<u64> = env
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["logger_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4], "list is in LoggerID order");
}

#[test]
fn every_verb_takes_a_logger_id_or_a_logger_name() {
    let env = Env::new();
    env.start("named", "E2E.Verbs", &env.path("v.ferret"), &["--realtime"]);
    for target in ["1", "named"] {
        assert_eq!(env.json(&["query", target])["name"], "named");
        assert_eq!(env.json(&["flush", target])["logger_id"], 1);
        let u = env.json(&["update", target, "--flush-timer", "2"]);
        assert_eq!(u["flush_timer_ms"], 2000);
        let en = env.json(&["enable", target, "E2E.Other:warning"]);
        assert!(
            en["providers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "E2E.Other" && p["level"] == 3),
            "{en}"
        );
        let dis = env.json(&["disable", target, "E2E.Other"]);
        assert!(
            dis["providers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["name"] != "E2E.Other"),
            "{dis}"
        );
    }
    // tail attaches by either name too; the stop below ends both tails.
    let mut by_id = env.spawn(&["tail", "1"]);
    let mut by_name = env.spawn(&["tail", "named"]);
    util::wait_until(
        std::time::Duration::from_secs(20),
        "two consumers to attach",
        || env.session("named").consumers == 2,
    );
    env.ok(&["stop", "1"]);
    for t in [&mut by_id, &mut by_name] {
        t.read_to_end(std::time::Duration::from_secs(20));
        assert!(t.wait(std::time::Duration::from_secs(20)).success());
        assert!(
            t.stderr().contains("session 'named' STOPPED"),
            "{}",
            t.stderr()
        );
    }
    let removed = env.json(&["remove", "named"]);
    assert_eq!(removed["logger_id"], 1);
}

#[test]
fn remove_refuses_a_running_session_with_a_one_line_hint() {
    let env = Env::new();
    env.start("busy", "E2E.Busy", &env.path("busy.ferret"), &[]);
    for target in ["busy", "1"] {
        let err = env.fails(&["remove", target]);
        let line = one_line(&err);
        assert!(
            line.contains("session 'busy' is RUNNING") && line.contains("ferret stop busy"),
            "{line}"
        );
    }
    assert_eq!(env.json(&["query", "busy"])["state"], "RUNNING");
}

#[test]
fn the_start_beyond_the_session_limit_fails_naming_the_limit() {
    let env = Env::with_daemon_args(&["--session-limit", "2"]);
    env.start("one", "E2E.Limit", &env.path("1.ferret"), &[]);
    env.start("two", "E2E.Limit", &env.path("2.ferret"), &[]);
    let third = env.path("3.ferret");
    let err = env.fails(&[
        "start",
        "three",
        "-p",
        "E2E.Limit",
        "-f",
        third.to_str().unwrap(),
    ]);
    let line = one_line(&err);
    assert!(
        line.contains("limit of 2 active sessions") && line.contains("stop one"),
        "{line}"
    );
    assert!(!third.exists(), "a refused start leaves no file behind");
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 2);

    // STOPPED sessions stay listed but do not count against the limit.
    env.ok(&["stop", "one"]);
    let id = env.start("three", "E2E.Limit", &third, &[]);
    assert_eq!(id, 3, "'one' still holds LoggerID 1 until it is removed");
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 3);
}
