//! Providers and filtering: enable and disable change what a running
//! session receives; several sessions with different levels and keywords
//! on one provider each get exactly the events their own filter accepts;
//! `ferret providers` lists each provider with its processes and sessions.

use ferret_testkit as util;

use std::collections::BTreeMap;
use std::time::Duration;

use util::{Env, wait_until};

const LIMIT: Duration = Duration::from_secs(30);

/// Events per (level, keywords) in a log, as `ferret fmt --format json` reports them.
fn by_level_and_keywords(env: &Env, log: &std::path::Path) -> BTreeMap<(u64, String), u64> {
    let mut counts = BTreeMap::new();
    for e in env.fmt_json(&[log]) {
        assert!(e.get("lost").is_none(), "no losses expected: {e}");
        if e.get("process_end").is_some() {
            continue;
        }
        let key = (
            e["level"].as_u64().unwrap(),
            e["keywords"].as_str().unwrap().to_string(),
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
}

#[test]
fn enable_and_disable_change_what_a_running_session_receives() {
    let env = Env::new();
    let log = env.path("toggle.ferret");
    env.start("toggle", "E2E.Unrelated", &log, &[]);

    // Not enabled yet: the provider writes nothing.
    let v = env.json(&["emit", "--provider", "E2E.Toggle", "--count", "1000"]);
    assert_eq!(v["enabled_events"], 0);

    let s = env.json(&["enable", "toggle", "E2E.Toggle"]);
    assert_eq!(s["providers"].as_array().unwrap().len(), 2, "{s}");
    env.emit("E2E.Toggle", 1000, &["--level", "information"]);
    env.wait_events("toggle", 1000);

    // Enabling again changes the filter: warning and more severe only.
    let s = env.json(&["enable", "toggle", "E2E.Toggle:warning"]);
    let p = s["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "E2E.Toggle")
        .cloned()
        .unwrap();
    assert_eq!(p["level"], 3);
    let v = env.json(&[
        "emit",
        "--provider",
        "E2E.Toggle",
        "--count",
        "500",
        "--level",
        "information",
    ]);
    assert_eq!(v["enabled_events"], 0, "information is above warning");
    env.emit("E2E.Toggle", 500, &["--level", "error"]);
    env.wait_events("toggle", 1500);

    let text = env.ok(&["disable", "toggle", "E2E.Toggle"]);
    assert!(text.contains("no longer enables E2E.Toggle"), "{text}");
    let v = env.json(&[
        "emit",
        "--provider",
        "E2E.Toggle",
        "--count",
        "1000",
        "--level",
        "error",
    ]);
    assert_eq!(v["enabled_events"], 0, "disabled");

    let stopped = env.json(&["stop", "toggle"]);
    assert_eq!(stopped["events"], 1500);
    let counts = by_level_and_keywords(&env, &log);
    assert_eq!(counts[&(4, "0x1".to_string())], 1000);
    assert_eq!(counts[&(2, "0x1".to_string())], 500);
    assert_eq!(counts.len(), 2, "{counts:?}");
}

#[test]
fn a_provider_enabled_while_its_process_runs_starts_writing() {
    let env = Env::new();
    let log = env.path("late.ferret");
    env.start("late", "E2E.Unrelated", &log, &[]);
    let mut emitter = env.spawn(&[
        "emit",
        "--provider",
        "E2E.LateEnable",
        "--count",
        "10000000",
        "--rate",
        "20000",
    ]);
    wait_until(LIMIT, "the provider to register", || {
        env.client()
            .providers()
            .unwrap()
            .iter()
            .any(|p| p.name == "E2E.LateEnable")
    });
    assert_eq!(env.session("late").counters.events, 0);
    env.ok(&["enable", "late", "E2E.LateEnable"]);
    wait_until(LIMIT, "events after enable", || {
        env.session("late").counters.events > 100
    });
    env.ok(&["disable", "late", "E2E.LateEnable"]);
    // Flush takes everything committed before it, and nothing the process
    // writes after the disable reaches the session, so this count is final
    // although the process keeps running.
    let after_disable = env.json(&["flush", "late"])["events"].as_u64().unwrap();
    assert!(emitter.child.try_wait().unwrap().is_none(), "still writing");
    let stopped = env.json(&["stop", "late"]);
    assert_eq!(stopped["events"], after_disable);
    util::terminate(&mut emitter.child);
    assert_eq!(util::decode(&log).events.len() as u64, after_disable);
}

#[test]
fn sessions_with_different_filters_on_one_provider_get_exactly_their_own_events() {
    let env = Env::new();
    let a = env.path("a.ferret");
    let b = env.path("b.ferret");
    let c = env.path("c.ferret");
    // A: warning and more severe, any keyword.
    env.start("a", "E2E.Filter:warning", &a, &[]);
    // B: every level, events with keyword bit 0x2.
    env.start("b", "E2E.Filter:verbose:0x2", &b, &[]);
    // C: every level, a bit of 0x6 and also bit 0x4 (ETW's match-all).
    env.start("c", "E2E.Filter:verbose:0x6:0x4", &c, &[]);

    // (level, keywords, count): who takes them.
    let batches: [(&str, &str, u64); 6] = [
        ("error", "0x1", 100),       // A
        ("verbose", "0x2", 200),     // B
        ("warning", "0x6", 300),     // A, B, C
        ("information", "0x4", 400), // C
        ("critical", "0x0", 50),     // keyword 0 passes every keyword filter: A, B, C
        ("verbose", "0x8", 70),      // nobody
    ];
    for (level, keywords, count) in batches {
        let count_text = count.to_string();
        let v = env.json(&[
            "emit",
            "--provider",
            "E2E.Filter",
            "--count",
            &count_text,
            "--level",
            level,
            "--keywords",
            keywords,
        ]);
        let wanted = if keywords == "0x8" { 0 } else { count };
        assert_eq!(v["enabled_events"], wanted, "{level} {keywords}: {v}");
    }
    for name in ["a", "b", "c"] {
        env.ok(&["stop", name]);
    }
    let k = |level: u64, kw: &str, n: u64| ((level, kw.to_string()), n);
    let expect_a: BTreeMap<_, _> = [k(2, "0x1", 100), k(3, "0x6", 300), k(1, "0x0", 50)].into();
    let expect_b: BTreeMap<_, _> = [k(5, "0x2", 200), k(3, "0x6", 300), k(1, "0x0", 50)].into();
    let expect_c: BTreeMap<_, _> = [k(3, "0x6", 300), k(4, "0x4", 400), k(1, "0x0", 50)].into();
    assert_eq!(by_level_and_keywords(&env, &a), expect_a);
    assert_eq!(by_level_and_keywords(&env, &b), expect_b);
    assert_eq!(by_level_and_keywords(&env, &c), expect_c);
    for (name, n) in [("a", 450), ("b", 550), ("c", 750)] {
        let s = env.json(&["query", name]);
        assert_eq!(s["events"], n, "{name}");
        assert_eq!(s["events_lost"], 0, "{name}");
    }
}

#[test]
fn providers_lists_each_provider_with_its_processes_and_sessions() {
    let env = Env::new();
    let one = env.start("one", "E2E.Listed", &env.path("1.ferret"), &[]);
    env.start("other", "E2E.Elsewhere", &env.path("2.ferret"), &[]);
    let two = env.start("two", "E2E.Listed:error", &env.path("3.ferret"), &[]);
    let args = [
        "emit",
        "--provider",
        "E2E.Listed",
        "--count",
        "100000000",
        "--rate",
        "1000",
    ];
    let mut first = env.spawn(&args);
    let mut second = env.spawn(&args);
    wait_until(LIMIT, "both processes to register", || {
        env.client()
            .providers()
            .unwrap()
            .iter()
            .filter(|p| p.name == "E2E.Listed")
            .count()
            == 2
    });
    let providers = env.json(&["providers"]);
    let rows = providers.as_array().unwrap();
    assert_eq!(rows.len(), 1, "one row per provider name: {providers}");
    let p = &rows[0];
    assert_eq!(p["name"], "E2E.Listed");
    assert_eq!(
        p["guid"],
        ferret_abi::Guid::from_name("E2E.Listed").to_string()
    );
    let mut pids = vec![first.child.id(), second.child.id()];
    pids.sort_unstable();
    assert_eq!(p["pids"], serde_json::json!(pids));
    assert_eq!(p["sessions"], serde_json::json!([one, two]));
    assert_eq!(p["level"], 5, "the most verbose level any session asks for");

    let text = env.ok(&["providers"]);
    let row = text
        .lines()
        .find(|l| l.starts_with("E2E.Listed "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains(&format!("{},{}", pids[0], pids[1])), "{row}");
    assert!(row.ends_with(&format!("{one},{two}")), "{row}");

    // After the processes exit, the provider is forgotten.
    util::terminate(&mut first.child);
    util::terminate(&mut second.child);
    wait_until(LIMIT, "the provider to be forgotten", || {
        env.client().providers().unwrap().is_empty()
    });
}
