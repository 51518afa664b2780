//! A real-time consumer that cannot keep up has buffers dropped for it:
//! the providers and the session's log file lose nothing, the loss is
//! counted as real-time buffers lost, and the consumer is told how much it
//! missed as soon as it happens and again at the end.

use ferret_testkit as util;

use std::time::Duration;

use util::Env;

const LIMIT: Duration = Duration::from_secs(60);

/// The number before `suffix` in `text` (e.g. "12 missed" → 12).
fn number_before(text: &str, suffix: &str) -> u64 {
    let end = text
        .find(suffix)
        .unwrap_or_else(|| panic!("'{suffix}' not in {text}"));
    let start = text[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    text[start..end]
        .parse()
        .unwrap_or_else(|_| panic!("no number before '{suffix}' in {text}"))
}

#[test]
fn a_stalled_tail_misses_buffers_while_emit_and_the_log_lose_nothing() {
    let env = Env::new();
    let log = env.path("fast.ferret");
    // No-loss: on a loaded 2-core machine the drain itself can fall behind
    // a flood and the ring would drop events (ring-full) for reasons that
    // have nothing to do with the consumer; with writers waiting for the
    // drain instead, the only loss left is the stalled consumer's.
    env.start("fast", "E2E.Fast", &log, &["--realtime", "--no-loss"]);

    // A consumer whose output nobody reads yet: after a few buffers it
    // blocks writing to its pipe and stops taking buffers from the daemon.
    let mut tail = env.spawn(&["tail", "fast"]);
    util::wait_until(LIMIT, "the consumer to attach", || {
        env.session("fast").consumers == 1
    });

    // Providers are never held back by the consumer: emit writes every
    // event and drops none, and it finishes while the consumer is still
    // stuck.
    let count = 1_000_000;
    env.emit("E2E.Fast", count, &["--threads", "2"]);
    assert!(
        tail.child.try_wait().unwrap().is_none(),
        "the consumer is still attached and stalled"
    );
    env.wait_events("fast", count);
    let running = env.json(&["query", "fast"]);
    assert_eq!(running["events_lost"], 0, "{running}");
    assert!(
        running["rt_buffers_lost"].as_u64().unwrap() > 0,
        "the stalled consumer's buffers are counted as lost: {running}"
    );
    assert_eq!(running["consumers"], 1);
    assert_eq!(running["log_buffers_lost"], 0, "{running}");
    let text = env.ok(&["query", "fast"]);
    let rt_line = text
        .lines()
        .find(|l| l.starts_with("Real-Time Buffers Lost"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(!rt_line.ends_with(": 0"), "{rt_line}");

    // Stop, and let the consumer read on: it ends with the session.
    let stopping = env.json(&["stop", "fast", "--no-wait"]);
    assert_ne!(stopping["state"], "RUNNING");
    let lines = tail.read_to_end(LIMIT);
    assert!(tail.wait(LIMIT).success(), "{}", tail.stderr());
    util::wait_until(LIMIT, "STOPPED", || {
        env.session("fast").state == ferret_abi::proto::SessionState::Stopped
    });

    // The log file has every event.
    let stopped = env.json(&["query", "fast"]);
    assert_eq!(stopped["events"], count);
    assert_eq!(stopped["events_lost"], 0, "{stopped}");
    let d = util::decode(&log);
    assert_eq!(d.events.len() as u64, count);
    assert!(d.damage.is_empty(), "{:?}", d.damage);

    // The consumer was told, while it ran and at the end, and what it got
    // plus what it missed is every event.
    let err = tail.stderr();
    let warning = err
        .lines()
        .find(|l| l.contains("this consumer fell behind"))
        .unwrap_or_else(|| panic!("no missed-buffers warning in: {err}"));
    assert!(warning.starts_with("ferret: missed "), "{warning}");
    assert!(number_before(warning, " buffers (") > 0, "{warning}");
    let summary = err
        .lines()
        .find(|l| l.contains("session 'fast' STOPPED"))
        .unwrap_or_else(|| panic!("no summary in: {err}"));
    let received = number_before(summary, " events received");
    let missed = number_before(summary, " missed");
    // Besides events the consumer may print the end of the emit process.
    let event_lines = lines
        .iter()
        .filter(|l| !l.contains(" ENDED process "))
        .count();
    assert_eq!(received, event_lines as u64, "{summary}");
    assert!(missed > 0, "{summary}");
    assert_eq!(received + missed, count, "{summary}");
    assert!(
        stopped["rt_buffers_lost"].as_u64().unwrap() >= number_before(warning, " buffers ("),
        "{stopped}"
    );
}
