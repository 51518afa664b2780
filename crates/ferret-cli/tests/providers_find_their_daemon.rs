//! Providers attach to the daemon on their own: a program started after its
//! session writes its very first event into it, and a program started
//! before any daemon begins writing once one appears.

use ferret_testkit as util;

use std::time::Duration;

use util::{Env, decode, terminate, wait_until};

#[test]
fn a_program_started_after_its_session_writes_its_first_event() {
    let env = Env::new();
    let log = env.path("first.ferret");
    env.start("first", "E2E.First", &log, &[]);
    // One event, written right after the process starts.
    env.ok(&["emit", "--provider", "E2E.First", "--count", "1"]);
    env.ok(&["stop", "first"]);
    let d = decode(&log);
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].seq, Some(0));
}

#[test]
fn a_program_running_without_a_daemon_is_unharmed_and_attaches_later() {
    let mut env = Env::without_daemon();
    // With no daemon the provider is a no-op and the program runs normally.
    let alone = env.run(&[
        "emit",
        "--provider",
        "E2E.Alone",
        "--count",
        "100000",
        "--json",
    ]);
    assert!(alone.status.success());
    let v: serde_json::Value = serde_json::from_slice(&alone.stdout).unwrap();
    assert_eq!(v["enabled_events"], 0);
    assert_eq!(v["connected"], false);

    // A long-running provider, started before the daemon.
    let mut emitter = env
        .command(&[
            "emit",
            "--provider",
            "E2E.Later",
            "--count",
            "600000",
            "--rate",
            "10000",
        ])
        .env("FERRET_RECONNECT_MS", "20")
        .spawn()
        .unwrap();
    env.start_daemon();
    let log = env.path("later.ferret");
    env.start("later", "E2E.Later", &log, &[]);
    wait_until(
        Duration::from_secs(20),
        "events from the provider started earlier",
        || env.session("later").counters.events > 0,
    );
    terminate(&mut emitter);
    let stopped = env.json(&["stop", "later"]);
    assert!(stopped["events"].as_u64().unwrap() > 0);
    let d = decode(&log);
    assert_eq!(d.events.len() as u64, stopped["events"].as_u64().unwrap());
}

#[test]
fn providers_are_listed_with_the_sessions_that_enable_them() {
    let env = Env::new();
    env.start("prov", "E2E.Listed:warning", &env.path("p.ferret"), &[]);
    let mut emitter = env
        .command(&[
            "emit",
            "--provider",
            "E2E.Listed",
            "--count",
            "600000",
            "--rate",
            "10000",
        ])
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "the provider to register", || {
        !env.client().providers().unwrap().is_empty()
    });
    let providers = env.json(&["providers"]);
    let p = &providers[0];
    assert_eq!(p["name"], "E2E.Listed");
    assert_eq!(
        p["guid"],
        ferret_abi::Guid::from_name("E2E.Listed").to_string()
    );
    assert_eq!(p["pids"], serde_json::json!([emitter.id()]));
    assert_eq!(p["sessions"], serde_json::json!([1]));
    assert_eq!(p["level"], 3);
    terminate(&mut emitter);
    // Information events are above the session's warning level: none arrive.
    let stopped = env.json(&["stop", "prov"]);
    assert_eq!(stopped["events"], 0);
}
