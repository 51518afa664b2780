//! A log file whose writes hang (a file on a hung mount) costs only its own
//! session: every other session keeps receiving and writing every event,
//! every control verb answers at once, the daemon's memory stays bounded,
//! the stalled session's `last_error` says that its file is stalled, and
//! once the file unstalls, every event its provider wrote while the session
//! enabled it is either in its log or counted as lost.
//!
//! The stall is injected into the real daemon with an LD_PRELOAD shim
//! (tests/stall/stall_writes.c, compiled here with `cc`): while a flag file
//! exists, the daemon's writes to the one log file whose path it is given
//! wait, exactly as a write to a hung NFS mount waits in the kernel.

use ferret_testkit as util;

use std::time::{Duration, Instant};

use ferret_abi::proto::SessionState;
use ferret_provider::{Level, provider, write_event};
use util::stall::{LIMIT, PAD, query, quick, rss_kib, stalling_env};
use util::{decode, wait_until};

provider!(static STALLED = "E2E.Stalled");
provider!(static OTHER = "E2E.StallOther");

#[test]
fn a_stalled_log_file_stalls_only_its_own_session() {
    let (env, flag, _tmp) = stalling_env("/stalled.ferret");
    let stalled_log = env.path("stalled.ferret");
    let other_log = env.path("other.ferret");
    let small = [
        "--buffer-size",
        "64",
        "--max-buffers",
        "16",
        "--flush-timer",
        "0.2",
    ];
    env.start("stalled", "E2E.Stalled", &stalled_log, &small);
    env.start("other", "E2E.StallOther", &other_log, &small);
    wait_until(LIMIT, "both providers enabled", || {
        STALLED.enabled(Level::Information, 0) && OTHER.enabled(Level::Information, 0)
    });

    // From here on the stalled session's file takes no write.
    std::fs::write(&flag, b"").expect("stall flag");
    let rss_before = rss_kib(env.daemon_pid());

    // The stalled session's provider writes for three seconds, far more
    // than its 16 buffers of 64 KiB hold.
    let writer = std::thread::spawn(|| {
        let end = Instant::now() + Duration::from_secs(3);
        let mut written = 0u64;
        while Instant::now() < end {
            for _ in 0..1000 {
                write_event!(STALLED, "Sample", level: Information, seq = written, msg = PAD);
                written += 1;
            }
        }
        written
    });

    // Meanwhile the other session takes every event it is sent.
    const M: u64 = 20_000;
    for seq in 0..M {
        write_event!(OTHER, "Sample", level: Information, seq = seq, msg = PAD);
    }
    wait_until(LIMIT, "every event of the other session counted", || {
        query(&env, "other")["events"] == M
    });
    quick(&env, &["flush", "other"]);
    quick(&env, &["list"]);
    quick(&env, &["query", "stalled"]);
    let third_log = env.path("third.ferret");
    let third = third_log.to_str().expect("path");
    let mut start = vec!["start", "third", "-p", "E2E.StallThird", "-f", third];
    start.extend_from_slice(&small);
    quick(&env, &start);
    quick(&env, &["stop", "third"]);
    assert!(
        decode(&third_log).trailer.is_some(),
        "the third log is finished"
    );

    // The stalled session says so while it is stalled.
    wait_until(LIMIT, "the stalled session's last_error", || {
        query(&env, "stalled")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("has not returned"))
    });
    let list = quick(&env, &["list"]);
    assert!(
        list.contains("has not returned"),
        "list shows the stall:\n{list}"
    );

    let written = writer.join().expect("stalled provider's thread");
    let rss_after = rss_kib(env.daemon_pid());
    assert!(
        rss_after < rss_before + 64 * 1024,
        "the daemon grew from {rss_before} KiB to {rss_after} KiB while a file stalled"
    );
    eprintln!("stall: {written} events written, daemon RSS {rss_before} KiB -> {rss_after} KiB");

    // The other session stops at once and has every event.
    quick(&env, &["stop", "other"]);
    let other = decode(&other_log);
    assert_eq!(other.events.len() as u64, M);
    assert!(other.damage.is_empty(), "{:?}", other.damage);
    let other_trailer = other.trailer.expect("other trailer");
    assert_eq!(other_trailer.events_lost, 0);

    // The stalled session stops at once too, but stays STOPPING until its
    // file takes the trailer.
    quick(&env, &["stop", "stalled", "--no-wait"]);
    assert_eq!(query(&env, "stalled")["state"], "STOPPING");
    let list = quick(&env, &["list"]);
    assert!(
        list.contains("STOPPING"),
        "list shows the stopping session:\n{list}"
    );

    std::fs::remove_file(&flag).expect("unstall");
    wait_until(LIMIT, "the stalled session to stop", || {
        env.session("stalled").state == SessionState::Stopped
    });
    let s = env.session("stalled");
    let log = decode(&stalled_log);
    assert!(log.damage.is_empty(), "{:?}", log.damage);
    let trailer = log.trailer.expect("stalled trailer");
    assert!(s.counters.events_lost > 0, "the stall cost events: {s:?}");
    assert_eq!(trailer.events_lost, s.counters.events_lost);
    assert_eq!(s.counters.log_buffers_lost, 0, "{s:?}");
    assert_eq!(
        log.events.len() as u64 + s.counters.events_lost,
        written,
        "events in the log + counted losses = events written: {s:?}"
    );
    let error = s.last_error.expect("the stall stays in last_error");
    assert!(error.contains("past"), "{error}");
}
