//! A provider process that breaks every rule of the shared-memory ABI (the
//! `ferret-hostile-provider` helper: registration floods, thousands of
//! event types, records with lying lengths, a producer that rewrites
//! records under the daemon, random bytes over its whole region, and more
//! connections than one user may hold) cannot crash the daemon, touch
//! another process's events or make the daemon's memory grow without
//! bound; it loses its own events, and the losses are counted.

use ferret_testkit as util;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use util::programs::{self, Program};
use util::{Env, one_line};

/// The daemon's resident memory, in KiB.
fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

const GOOD_EVENTS: u64 = 20_000;
/// How far above its starting size the daemon's memory may grow while it
/// is attacked. What it needs is about 25 MiB: the hostile region it reads
/// (5 MiB of rings and metadata), the event types parsed from it (some
/// 20,000), and a thread and a region header for each of 256 connections.
const RSS_GROWTH_LIMIT_KIB: u64 = 96 * 1024;

#[test]
fn a_hostile_provider_cannot_crash_the_daemon_or_touch_another_process_events() {
    let env = Env::with_daemon_args(&["--rings", "4", "--ring-kib", "1024"]);
    let log = env.path("victim.ferret");
    // The hostile process registers the well-behaved one's provider name
    // too, so its records land in the same session buffers. No-loss mode
    // makes the well-behaved writer wait rather than drop while the daemon
    // is busy, so that every one of its events is owed.
    env.start(
        "victim",
        "E2E.Good",
        &log,
        &[
            "-p",
            "Hostile.Own",
            "--no-loss",
            "--no-loss-wait-ms",
            "20000",
        ],
    );
    let daemon = env.daemon_pid();
    let rss_start = vm_rss_kib(daemon);

    let socket = env.socket.to_str().expect("socket path");
    let mut hostile = Program::HostileProvider
        .command(&[
            "--socket",
            socket,
            "--provider",
            "E2E.Good",
            "--seconds",
            "3",
            "--connections",
            "300",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the hostile provider");
    let good = env
        .command(&[
            "emit",
            "--provider",
            "E2E.Good",
            "--count",
            &GOOD_EVENTS.to_string(),
            "--rate",
            "8000",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn emit");

    // While both run: the daemon answers, and its memory is sampled.
    let mut rss_max = rss_start;
    let mut listed_during = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    while hostile.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "the hostile provider never ended"
        );
        rss_max = rss_max.max(vm_rss_kib(daemon));
        if !listed_during {
            let list = env.json(&["list"]);
            assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
            listed_during = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let hostile_out = hostile.wait_with_output().expect("hostile output");
    let good_out = good.wait_with_output().expect("emit output");
    rss_max = rss_max.max(vm_rss_kib(daemon));
    assert!(
        hostile_out.status.success(),
        "hostile provider failed: {}\ndaemon log:\n{}",
        String::from_utf8_lossy(&hostile_out.stderr),
        env.daemon_log()
    );
    assert!(good_out.status.success(), "emit failed");
    let report = programs::report(&hostile_out.stdout);
    let emitted: serde_json::Value = serde_json::from_slice(&good_out.stdout).expect("emit report");
    assert_eq!(emitted["enabled_events"], GOOD_EVENTS, "{emitted}");
    assert_eq!(emitted["dropped"], 0, "{emitted}");
    let good_pid = emitted["pid"].as_u64().expect("pid") as u32;
    let hostile_pid = report["pid"].as_u64().expect("pid") as u32;

    // Registrations past the 1024 slots, into a taken slot, with a GUID
    // that is not the name's or a name with a control character: refused.
    assert_eq!(report["registered"], 1024, "{report}");
    assert_eq!(report["registrations_refused"], 64 + 3, "{report}");
    assert!(report["event_types"].as_u64().unwrap() > 10_000, "{report}");
    assert_eq!(report["lying_writes"], 64, "{report}");
    assert!(report["race_events"].as_u64().unwrap() > 0, "{report}");
    assert!(report["scribbles"].as_u64().unwrap() > 0, "{report}");
    // Connections past the per-user cap are refused, with the reason.
    let accepted = report["connections"].as_u64().unwrap();
    let refused = report["connections_refused"].as_u64().unwrap();
    assert_eq!(accepted + refused, 300, "{report}");
    assert!(accepted < 256 && refused > 44, "{report}");
    let refusal = report["refusal"].as_str().unwrap();
    assert!(
        refusal.contains("connections to this daemon, the most one user may"),
        "{refusal}"
    );
    assert!(
        env.daemon_log().contains("refused so far"),
        "the daemon counts refused connections in its log"
    );

    // The daemon is alive and serving, and its memory stayed bounded.
    let list = env.json(&["list"]);
    assert_eq!(list[0]["state"], "RUNNING", "{list}");
    let growth = rss_max.saturating_sub(rss_start);
    eprintln!("daemon VmRSS: {rss_start} KiB at start, {rss_max} KiB at most (+{growth} KiB)");
    assert!(
        growth < RSS_GROWTH_LIMIT_KIB,
        "daemon memory grew by {growth} KiB under attack"
    );

    env.wait_no_providers();
    // A stop that never completes (a drain thread that died, say) fails
    // here rather than hanging the test.
    env.ok(&["stop", "victim", "--no-wait"]);
    util::wait_until(Duration::from_secs(60), "the session to stop", || {
        env.session("victim").state == ferret_abi::proto::SessionState::Stopped
    });
    let log_text = env.daemon_log();
    assert!(
        !log_text.contains("panicked"),
        "the daemon panicked:\n{log_text}"
    );
    let stopped = env.json(&["query", "victim"]);
    // The hostile process's losses are counted: corrupt records (lost for
    // "other" reasons) and its absurd ring-full counters.
    assert!(stopped["lost_other"].as_u64().unwrap() > 0, "{stopped}");
    assert!(stopped["events_lost"].as_u64().unwrap() > 0, "{stopped}");
    let summary = env.ok(&["fmt", "--summary", log.to_str().unwrap()]);
    let lost = summary
        .lines()
        .find(|l| l.starts_with("Lost:"))
        .unwrap_or_else(|| panic!("no Lost line: {summary}"));
    assert!(
        lost.contains("(corrupt ") && !lost.contains("(corrupt 0,"),
        "{summary}"
    );
    assert!(summary.contains(", 0 damaged"), "{summary}");

    // Every event of the well-behaved process is in the log, intact, and
    // no buffer is damaged; what could not be decoded is the hostile
    // process's own.
    let mut d = ferret_decode::FileDecoder::open(&log).expect("open log");
    let mut seqs = Vec::new();
    let mut hostile_lost = 0u64;
    let mut problems = Vec::new();
    d.for_each(|e| {
        match e {
            ferret_decode::Entry::Event(ev) if ev.pid == good_pid => {
                let mut seq = None;
                for (f, v) in ev.ty.fields.iter().zip(ev.values) {
                    match (f.name.as_str(), v) {
                        ("seq", ferret_abi::Value::U64(n)) => seq = Some(*n),
                        ("msg", ferret_abi::Value::Str(s)) => assert_eq!(*s, "hello"),
                        _ => {}
                    }
                }
                assert_eq!(ev.ty.name, "Sample");
                assert_eq!(ev.ty.provider.name, "E2E.Good");
                seqs.push(seq.expect("seq field"));
            }
            ferret_decode::Entry::Event(ev) => {
                assert_eq!(ev.pid, hostile_pid, "an event of an unknown process");
                assert!(ev.ty.name.starts_with("HostileType"), "{}", ev.ty.name);
            }
            ferret_decode::Entry::Lost { pid, count, .. } => {
                assert_ne!(
                    pid, good_pid,
                    "the well-behaved process lost {count} events"
                );
                hostile_lost = hostile_lost.saturating_add(count);
            }
            ferret_decode::Entry::Corrupt(c) => problems.push(c.to_string()),
            ferret_decode::Entry::BadRecord { error, .. } => {
                // Decodable framing, undecodable content: only the hostile
                // process's types, or types it never described.
                assert!(
                    error.contains("HostileType") || error.contains("undescribed type"),
                    "{error}"
                );
            }
            _ => {}
        }
        Ok(())
    })
    .expect("decode");
    assert!(problems.is_empty(), "damaged buffers: {problems:?}");
    assert!(
        hostile_lost > 0,
        "the log records the hostile process's losses"
    );
    assert_eq!(
        seqs.len() as u64,
        GOOD_EVENTS,
        "well-behaved events in the log; the session: {stopped}"
    );
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique, (0..GOOD_EVENTS).collect::<BTreeSet<u64>>());

    // And the daemon still takes new work.
    env.start("after", "E2E.After", &env.path("after.ferret"), &[]);
    let err = env.fails(&["start", "after", "-p", "X", "--mode", "in-memory"]);
    assert!(one_line(&err).contains("already exists"), "{err}");
    env.ok(&["stop", "after"]);
}

/// Not a test: the entry through which this test binary runs itself as the
/// hostile provider (see `ferret_testkit::programs`); it returns at once in
/// a test run.
#[test]
fn test_program() {
    programs::serve();
}
