//! `ferret fmt --summary` tells a snapshot of a running session from a
//! clean stop, and `--format json` gives the summary as one JSON object.

use ferret_testkit as util;

use util::Env;

#[test]
fn a_snapshot_of_a_running_session_is_not_called_a_clean_stop() {
    let env = Env::new();
    env.start_with("mem", &["-p", "E2E.Snap", "--mode", "in-memory"]);
    env.emit("E2E.Snap", 10, &[]);
    env.wait_events("mem", 10);
    let snap = env.path("snap.ferret");
    env.ok(&["snapshot", "mem", "-f", snap.to_str().unwrap()]);
    assert_eq!(env.session("mem").state.name(), "RUNNING");

    let out = env.ok(&["fmt", "--summary", snap.to_str().unwrap()]);
    let stopped: Vec<&str> = out.lines().filter(|l| l.starts_with("Stopped:")).collect();
    assert_eq!(stopped.len(), 1, "{out}");
    assert!(
        stopped[0].starts_with("Stopped:    snapshot saved at ")
            && stopped[0].ends_with(" (the session may have run on after it)"),
        "{out}"
    );
    assert!(!out.contains("clean stop"), "{out}");
}

#[test]
fn the_summary_honours_format_json() {
    let env = Env::new();
    let log = env.path("sum.ferret");
    env.start("sum", "E2E.SumJson", &log, &[]);
    env.emit("E2E.SumJson", 25, &[]);
    env.wait_no_providers();
    env.ok(&["stop", "sum"]);

    let out = env.ok(&[
        "fmt",
        "--summary",
        "--format",
        "json",
        log.to_str().unwrap(),
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["file"], log.to_str().unwrap());
    assert_eq!(v["session"], "sum");
    assert_eq!(v["mode"], "sequential");
    assert_eq!(v["clean_stop"], true);
    assert_eq!(v["events"], 25);
    assert_eq!(v["lost"], 0);
    assert_eq!(v["damaged_stretches"], 0);
    assert_eq!(v["trailer"]["events"], 25);
    assert_eq!(
        v["per_event"],
        serde_json::json!([{"provider": "E2E.SumJson", "event": "Sample", "count": 25}])
    );
}
