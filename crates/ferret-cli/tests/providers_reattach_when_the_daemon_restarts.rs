//! When the daemon dies and a new one starts on the same socket, running
//! provider processes attach to it on their own and the sessions it runs
//! enable them; meanwhile the program never blocks or fails.

use ferret_testkit as util;

use std::process::Stdio;
use std::time::{Duration, Instant};

use util::{Env, decode, wait_until};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_provider_keeps_writing_through_a_daemon_crash_and_restart() {
    let mut env = Env::new();
    env.start("before", "E2E.Restart", &env.path("before.ferret"), &[]);
    // Six seconds of events at a steady 4000 a second.
    let emitter = env
        .command(&[
            "emit",
            "--provider",
            "E2E.Restart",
            "--count",
            "24000",
            "--rate",
            "4000",
            "--json",
        ])
        .env("FERRET_RECONNECT_MS", "50")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn emit");
    wait_until(LIMIT, "events in the first session", || {
        env.session("before").counters.events > 400
    });

    // The daemon crashes, and stays down for a while: the outage the
    // program must ride out without waiting for it.
    env.kill_daemon();
    let outage = Duration::from_secs(2);
    let down = Instant::now();
    wait_until(LIMIT, "the outage to last", || down.elapsed() >= outage);
    env.start_daemon();
    let log = env.path("after.ferret");
    env.start("after", "E2E.Restart", &log, &[]);
    wait_until(LIMIT, "events in the new daemon's session", || {
        env.session("after").counters.events > 0
    });

    let out = emitter.wait_with_output().expect("emit output");
    assert!(
        out.status.success(),
        "emit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("emit JSON");
    assert_eq!(report["connected"], true, "{report}");
    assert_eq!(report["dropped"], 0, "{report}");
    // No write waited for the daemon: the program stayed on schedule
    // through a two-second outage.
    let lag = report["max_lag_ms"].as_u64().unwrap();
    assert!(
        lag < 1500,
        "emit fell {lag} ms behind its schedule: {report}"
    );

    env.wait_no_providers();
    let stopped = env.json(&["stop", "after"]);
    assert_eq!(stopped["events_lost"], 0, "{stopped}");
    let d = decode(&log);
    assert!(d.damage.is_empty(), "{:?}", d.damage);
    assert_eq!(d.events.len() as u64, stopped["events"].as_u64().unwrap());
    // Once the new session enabled the provider, every event reached it:
    // its sequence numbers run without a gap to the program's last event.
    let seqs: Vec<u64> = d.events.iter().map(|e| e.seq.unwrap()).collect();
    let first = seqs[0];
    assert_eq!(seqs, (first..24_000).collect::<Vec<_>>());
    assert!(first > 400, "the new session began after the restart");
}
