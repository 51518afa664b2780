//! Every loss a session counts is also in its log as a LOST record, even
//! when it happened while the session had no buffer free to hold the
//! record: the LOST records of a log add up to the session's loss counters.
//!
//! The daemon is stopped (SIGSTOP) while `ferret emit` writes into small
//! rings, so the rings overflow and the provider counts its drops; once the
//! daemon goes on, it finds full rings and a session with two small
//! buffers, which the rings' backlog fills before the losses are charged.

use ferret_testkit as util;

use std::time::Duration;

use util::{Env, lost_records, wait_until};

const LIMIT: Duration = Duration::from_secs(30);

fn signal(pid: u32, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    rustix::process::kill_process(pid, sig).expect("kill");
}

#[test]
fn ring_full_losses_while_no_buffer_is_free_are_lost_records_in_the_log() {
    let env = Env::with_daemon_args(&["--ring-kib", "64"]);
    let log = env.path("lossy.ferret");
    env.start(
        "lossy",
        "E2E.Lossy",
        &log,
        &[
            "--buffer-size",
            "4",
            "--max-buffers",
            "2",
            "--flush-timer",
            "0",
        ],
    );
    let mut emit = env.spawn(&[
        "emit",
        "--provider",
        "E2E.Lossy",
        "--count",
        "400000",
        "--threads",
        "4",
        "--rate",
        "400000",
        "--json",
    ]);
    wait_until(LIMIT, "the session to take events", || {
        env.session("lossy").counters.events >= 1_000
    });
    let daemon = env.daemon_pid();
    signal(daemon, rustix::process::Signal::STOP);
    let lines = emit.read_to_end(LIMIT);
    let exited = emit.wait(LIMIT);
    signal(daemon, rustix::process::Signal::CONT);
    assert!(exited.success(), "{}", emit.stderr());
    let report: serde_json::Value =
        serde_json::from_str(lines.last().expect("emit's report")).expect("json");
    let dropped = report["dropped"].as_u64().expect("dropped");
    assert!(dropped > 0, "the rings did not overflow: {report}");

    env.ok(&["stop", "lossy"]);
    let info = env.session("lossy");
    let c = &info.counters;
    assert!(c.events_lost >= dropped, "{c:?}, emit dropped {dropped}");
    assert_eq!(lost_records(&log), c.events_lost, "{c:?}");
    let decoded = util::decode(&log);
    assert!(decoded.damage.is_empty(), "{:?}", decoded.damage);
    assert_eq!(decoded.events.len() as u64, c.events, "{c:?}");
    assert_eq!(
        c.events + c.events_lost,
        report["enabled_events"].as_u64().expect("enabled_events"),
        "{c:?}, {report}"
    );
}
