//! A provider process that ends, normally or by SIGKILL in the middle of a
//! stream, leaves every event it committed in the log, and the log says the
//! process ended. The daemon goes on serving.

use ferret_testkit as util;

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use util::{Env, wait_until};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_provider_killed_mid_stream_leaves_its_events_and_its_end_in_the_log() {
    let env = Env::new();
    let log = env.path("killed.ferret");
    env.start("killed", "E2E.Killed", &log, &[]);
    let mut victim = env.spawn(&[
        "emit",
        "--provider",
        "E2E.Killed",
        "--count",
        "100000000",
        "--rate",
        "20000",
    ]);
    let victim_pid = victim.child.id();
    wait_until(LIMIT, "events from the provider", || {
        env.session("killed").counters.events > 2000
    });
    let pid = Pid::from_raw(victim_pid as i32).unwrap();
    kill_process(pid, Signal::KILL).unwrap();
    assert!(!victim.wait(LIMIT).success());
    // The daemon notices the end, drains what the process left in its
    // rings and forgets it.
    env.wait_no_providers();

    // It keeps serving: another process writes into the same session.
    let after = env.emit("E2E.Killed", 100, &[]);
    let after_pid = after["pid"].as_u64().unwrap();
    env.wait_no_providers();
    let stopped = env.json(&["stop", "killed"]);
    assert_eq!(stopped["events_lost"], 0, "{stopped}");

    let entries = env.fmt_json(&[&log]);
    let events: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e.get("event").is_some())
        .collect();
    assert_eq!(events.len() as u64, stopped["events"].as_u64().unwrap());
    let d = util::decode(&log);
    assert!(d.damage.is_empty(), "{:?}", d.damage);
    assert_eq!(
        d.trailer.expect("trailer").events,
        stopped["events"].as_u64().unwrap()
    );

    // The killed process's events are exactly the ones it committed: its
    // sequence numbers run from 0 with no gap, a prefix of what it meant
    // to write, and the record of its end comes after the last of them.
    let from = |pid: u64| -> Vec<u64> {
        events
            .iter()
            .filter(|e| e["pid"] == pid)
            .map(|e| e["fields"]["seq"].as_u64().unwrap())
            .collect()
    };
    let killed = from(victim_pid as u64);
    assert!(killed.len() > 2000, "{}", killed.len());
    assert_eq!(killed, (0..killed.len() as u64).collect::<Vec<_>>());
    assert_eq!(from(after_pid), (0..100).collect::<Vec<_>>());
    let position = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        entries.iter().rposition(pred).expect("entry present")
    };
    let last_event = position(&|e| e.get("event").is_some() && e["pid"] == victim_pid);
    let end = position(&|e| e["process_end"] == true && e["pid"] == victim_pid);
    assert!(end > last_event, "the end follows the process's events");
    assert_eq!(entries[end]["process"], "ferret");
    let ended: Vec<u64> = entries
        .iter()
        .filter(|e| e["process_end"] == true)
        .map(|e| e["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(ended, vec![victim_pid as u64, after_pid]);
}
