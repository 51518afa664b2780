//! `ferret watch` reports every change of the session list as it happens:
//! the sessions present, created, each state (RUNNING, STOPPING, STOPPED),
//! updated, removed; and a stop that has to wait for a slow real-time
//! consumer is seen as STOPPING in `watch` and `list` while it drains.

use ferret_testkit as util;

use std::time::Duration;

use util::{Background, Env};

const LIMIT: Duration = Duration::from_secs(30);

/// Parses one `watch --json` line.
fn change(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad watch line {line}: {e}"))
}

/// Waits for the change `kind` of session `name`, in state `state` if given.
fn wait_change(
    watch: &mut Background,
    kind: &str,
    name: &str,
    state: Option<&str>,
) -> serde_json::Value {
    let what = format!("{kind} {name} {state:?}");
    let line = watch.wait_for_line(LIMIT, &what, |l| {
        let v = change(l);
        v["change"] == kind
            && v["session"]["name"] == name
            && state.is_none_or(|s| v["session"]["state"] == s)
    });
    change(&line)
}

#[test]
fn watch_json_sees_present_created_each_state_updated_and_removed() {
    let env = Env::new();
    env.start("before", "E2E.Watch", &env.path("before.ferret"), &[]);
    let mut watch = env.spawn(&["watch", "--json"]);
    // The session list as it was when the watch began.
    let present = wait_change(&mut watch, "present", "before", Some("RUNNING"));
    assert_eq!(present["session"]["logger_id"], 1);
    assert_eq!(present["session"]["log_file_mode"], "sequential");

    env.start("w", "E2E.Watch", &env.path("w.ferret"), &[]);
    let created = wait_change(&mut watch, "created", "w", Some("RUNNING"));
    assert_eq!(created["session"]["logger_id"], 2);
    assert_eq!(created["session"]["events"], 0);

    env.ok(&["update", "w", "--flush-timer", "0.5"]);
    let updated = wait_change(&mut watch, "updated", "w", None);
    assert_eq!(updated["session"]["flush_timer_ms"], 500);

    env.ok(&["emit", "--provider", "E2E.Watch", "--count", "10"]);
    env.ok(&["stop", "w"]);
    // Every stop passes through STOPPING, however short.
    wait_change(&mut watch, "state", "w", Some("STOPPING"));
    let stopped = wait_change(&mut watch, "state", "w", Some("STOPPED"));
    assert_eq!(stopped["session"]["events"], 10);

    env.ok(&["remove", "w"]);
    let removed = wait_change(&mut watch, "removed", "w", None);
    assert_eq!(removed["session"]["logger_id"], 2);

    // The counters come once a second for every listed session.
    wait_change(&mut watch, "counters", "before", Some("RUNNING"));
}

#[test]
fn watch_text_prints_one_line_per_change() {
    let env = Env::new();
    env.start("first", "E2E.WatchText", &env.path("first.ferret"), &[]);
    let mut watch = env.spawn(&["watch"]);
    // Once the watch reports the session present, it sees every change.
    watch.wait_for_line(LIMIT, "first present", |l| {
        l.contains(" present ") && l.contains(" first RUNNING ")
    });
    env.start("web", "E2E.WatchText", &env.path("web.ferret"), &[]);
    let line = watch.wait_for_line(LIMIT, "created web", |l| l.contains(" created "));
    // e.g. `12:00:01.123 created    2 web RUNNING events=0 lost=0`
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 7, "{line}");
    assert_eq!(words[0].len(), "12:00:01.123".len(), "{line}");
    assert_eq!(
        &words[1..],
        ["created", "2", "web", "RUNNING", "events=0", "lost=0"]
    );
    env.ok(&["stop", "web"]);
    watch.wait_for_line(LIMIT, "web STOPPED", |l| {
        l.contains(" state ") && l.contains(" web STOPPED ")
    });
}

#[test]
fn watch_ends_with_one_clear_line_when_the_daemon_goes_away() {
    let mut env = Env::new();
    env.start("gone", "E2E.WatchGone", &env.path("gone.ferret"), &[]);
    let mut watch = env.spawn(&["watch", "--json"]);
    wait_change(&mut watch, "present", "gone", None);
    assert!(env.stop_daemon().success());
    // Shutting down stops the session: the watch may see that, then its
    // end, which the user did not ask for and a script must be able to
    // tell from a clean end.
    watch.read_to_end(LIMIT);
    let status = watch.wait(LIMIT);
    assert_eq!(status.code(), Some(1), "{status}: {}", watch.stderr());
    assert_eq!(
        watch.stderr(),
        "ferret: the daemon closed the watch connection (it stopped or was killed); run 'ferret watch' again once it runs\n"
    );
}

#[test]
fn a_stop_waiting_for_a_slow_consumer_shows_stopping_in_watch_and_list() {
    let env = Env::new();
    let log = env.path("slow.ferret");
    // No-loss, so that a drain starved by a loaded machine makes the writer
    // wait rather than drop: the count checks below are about the consumer.
    env.start(
        "slow",
        "E2E.SlowStop",
        &log,
        &["--realtime", "--no-loss", "--flush-timer", "0.05"],
    );
    let mut watch = env.spawn(&["watch", "--json"]);
    wait_change(&mut watch, "present", "slow", Some("RUNNING"));

    // A consumer whose output nobody reads: it blocks writing to its pipe
    // after the first few buffers, and the rest queue up for it.
    let mut tail = env.spawn(&["tail", "slow"]);
    util::wait_until(LIMIT, "the consumer to attach", || {
        env.session("slow").consumers == 1
    });
    let count = 400_000;
    env.emit("E2E.SlowStop", count, &[]);
    env.wait_events("slow", count);

    // Stopping must deliver what the consumer is owed before STOPPED, so
    // the session stays STOPPING while the consumer is stuck.
    let s = env.json(&["stop", "slow", "--no-wait"]);
    assert_eq!(s["state"], "STOPPING", "{s}");
    wait_change(&mut watch, "state", "slow", Some("STOPPING"));
    let list = env.json(&["list"]);
    assert_eq!(list[0]["name"], "slow");
    assert_eq!(list[0]["state"], "STOPPING", "{list}");
    let q = env.ok(&["list"]);
    assert!(q.contains("STOPPING"), "{q}");
    assert!(
        tail.child.try_wait().unwrap().is_none(),
        "the consumer is still blocked"
    );

    // Reading the consumer's output lets the stop finish.
    let lines = tail.read_to_end(LIMIT);
    let status = tail.wait(LIMIT);
    assert!(status.success(), "{status}: {}", tail.stderr());
    let stopped = wait_change(&mut watch, "state", "slow", Some("STOPPED"));
    assert_eq!(stopped["session"]["events"], count);
    assert_eq!(stopped["session"]["events_lost"], 0);
    // Whatever it missed while running, the consumer says so; what it got
    // and what it missed add up to every event.
    let err = tail.stderr();
    let summary = err
        .lines()
        .find(|l| l.contains("session 'slow' STOPPED"))
        .unwrap_or_else(|| panic!("no summary in: {err}"));
    // Besides events the consumer may print the end of the emit process.
    let received = lines
        .iter()
        .filter(|l| !l.contains(" ENDED process "))
        .count() as u64;
    assert!(
        summary.contains(&format!("{received} events received")),
        "{summary} (printed {received} events)"
    );
    let missed: u64 = summary
        .rsplit(", ")
        .next()
        .and_then(|m| m.strip_suffix(" missed"))
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no missed count in {summary}"));
    assert_eq!(received + missed, count, "{summary}");
    assert_eq!(util::decode(&log).events.len() as u64, count);
}
