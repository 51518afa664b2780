//! Events a program committed to its rings that a daemon had not yet taken
//! when it was killed (it hung, then was killed) are not lost with it: the
//! daemon's keeper process holds the rings, and `ferret recover` writes
//! those events, and the ones it had taken but not yet written, to a log
//! file that `ferret fmt` decodes, with their provider, type, fields,
//! process and thread. A daemon that exits cleanly leaves nothing to
//! recover.

use ferret_testkit as util;

use std::time::Duration;

use ferret_provider::{Level, provider, write_event};
use rustix::process::{Pid, Signal, kill_process};
use util::{Env, wait_until};

provider!(static APP = "E2E.Recover");

const LIMIT: Duration = Duration::from_secs(30);

fn write(seqs: std::ops::Range<u64>) {
    for seq in seqs {
        write_event!(APP, "Sample", level: Information, seq = seq, msg = "in a ring");
    }
}

fn keepers(env: &Env) -> Vec<std::path::PathBuf> {
    ferret_daemon::kept_daemons(&env.socket)
}

#[test]
fn events_a_killed_daemon_had_not_drained_are_recovered_from_its_rings() {
    let mut env = Env::new();
    assert!(ferret_provider::configure(ferret_provider::Options {
        socket: env.socket.clone(),
        ..ferret_provider::Options::default()
    }));
    let log = env.path("session.ferret");
    env.start("rec", "E2E.Recover", &log, &[]);
    wait_until(LIMIT, "the session to enable the provider", || {
        APP.enabled(Level::Information, 0)
    });
    // These reach the daemon's session buffer, which it has not written
    // (a flush timer's copy does not count: the buffer is not full).
    write(0..100);
    env.wait_events("rec", 100);

    // The daemon hangs (its drain takes nothing more), the program goes
    // on committing events to its ring, and then the daemon is killed.
    let pid = Pid::from_raw(env.daemon_pid() as i32).unwrap();
    kill_process(pid, Signal::STOP).expect("SIGSTOP the daemon");
    write(100..1100);
    env.kill_daemon();

    wait_until(LIMIT, "the keeper to offer the rings", || {
        keepers(&env).len() == 1
    });
    let out = env.path("recovered.ferret");
    let report = env.json(&["recover", "-o", out.to_str().unwrap()]);
    assert_eq!(report["events"], 1100, "{report}");
    assert_eq!(report["processes"], 1, "{report}");
    assert_eq!(report["unusable"], 0, "{report}");
    assert_eq!(report["daemon_pid"], pid.as_raw_nonzero().get() as u64);

    // fmt decodes exactly the events the dead daemon had not written: the
    // 100 in its session buffer and the 1000 it never took.
    let entries = env.fmt_json(&[&out]);
    let events: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e.get("event").is_some())
        .collect();
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["fields"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..1100).collect::<Vec<_>>());
    for e in &events {
        assert_eq!(e["provider"], "E2E.Recover");
        assert_eq!(e["event"], "Sample");
        assert_eq!(e["fields"]["msg"], "in a ring");
        assert_eq!(e["pid"], u64::from(std::process::id()));
    }
    // The keeper handed the rings over once and is gone.
    wait_until(LIMIT, "the keeper to leave", || keepers(&env).is_empty());
    let again = env.fails(&["recover", "-o", env.path("again.ferret").to_str().unwrap()]);
    assert!(
        again.contains("no dead daemon's rings to recover"),
        "{again}"
    );

    // A daemon that stops cleanly writes everything itself and leaves no
    // keeper behind.
    env.start_daemon();
    env.start("clean", "E2E.Recover", &env.path("clean.ferret"), &[]);
    wait_until(LIMIT, "the new daemon to enable the provider", || {
        APP.enabled(Level::Information, 0)
    });
    write(0..100);
    env.wait_events("clean", 100);
    env.stop_daemon();
    assert!(keepers(&env).is_empty());
}
