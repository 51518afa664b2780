//! `ferret demo`, the newcomer's first command, does the whole job.

mod util;

use std::time::Duration;

use util::{Env, wait_until};

#[test]
fn the_demo_narrates_a_session_from_start_to_decoded_events() {
    let env = Env::without_daemon();
    let dir = env.path("demo");
    let out = env.ok(&[
        "demo",
        "--count",
        "20000",
        "--rate",
        "200000",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    for expected in [
        "1. Session daemon: pid",
        "2. Started session",
        "3. Running 'ferret emit': 20000 events from 2 threads",
        "RUNNING",
        "STOPPED",
        "5. Counters: 20000 events, 0 lost",
        "Ferret.Demo/Sample",
        "20000 events decoded in all (every event the session counted)",
    ] {
        assert!(out.contains(expected), "'{expected}' missing from:\n{out}");
    }
    assert!(dir.join("demo.ferret").exists());
    let mut c = ferret_client::Client::connect(&env.socket).unwrap();
    let sessions = c.list().unwrap();
    assert_eq!(sessions[0].state, ferret_abi::proto::SessionState::Stopped);
    let pid = rustix::process::Pid::from_raw(c.daemon_pid() as i32).unwrap();
    drop(c);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let socket = env.socket.clone();
    wait_until(Duration::from_secs(20), "the demo's daemon to exit", || {
        !socket.exists()
    });
}
