//! `ferret demo`, the newcomer's first command, does the whole job.

use ferret_testkit as util;

use util::Env;

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
    let sessions = env.client().list().unwrap();
    assert_eq!(sessions[0].state, ferret_abi::proto::SessionState::Stopped);
    assert!(env.stop_background_daemon(), "the demo's daemon exits");
}
