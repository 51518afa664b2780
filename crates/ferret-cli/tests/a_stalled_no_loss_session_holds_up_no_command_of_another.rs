//! A no-loss session may hold events in the rings for ten seconds when it
//! has no buffer; while its file stalls, no command of another session
//! waits for that.

use ferret_testkit as util;

use ferret_provider::{Level, provider, write_event};
use util::stall::{LIMIT, PAD, query, quick, stalling_env};
use util::{decode, wait_until};

provider!(static NO_LOSS = "E2E.StallNoLoss");
provider!(static BESIDE = "E2E.StallBeside");

/// A no-loss session holds events in the rings for up to ten seconds when
/// it has no buffer. While its file stalls, a flush or stop of another
/// session, or a change of its filters, does not wait for that: the
/// stalled session pays with counted losses instead, and every event
/// written for it is still in its log or counted.
#[test]
fn a_stalled_no_loss_session_holds_up_no_command_of_another() {
    let (env, flag, _tmp) = stalling_env("/stalled.ferret");
    let stalled_log = env.path("stalled.ferret");
    let beside_log = env.path("beside.ferret");
    let small = ["--buffer-size", "64", "--max-buffers", "4"];
    let mut args = small.to_vec();
    args.push("--no-loss");
    env.start("stalled", "E2E.StallNoLoss", &stalled_log, &args);
    env.start("beside", "E2E.StallBeside", &beside_log, &small);
    wait_until(LIMIT, "both providers enabled", || {
        NO_LOSS.enabled(Level::Information, 0) && BESIDE.enabled(Level::Information, 0)
    });
    std::fs::write(&flag, b"").expect("stall flag");

    // 20,000 events of about 60 bytes fill the stalled session's four
    // 64 KiB buffers many times over.
    const N: u64 = 20_000;
    let writer = std::thread::spawn(|| {
        for seq in 0..N {
            write_event!(NO_LOSS, "Sample", level: Information, seq = seq, msg = PAD);
        }
    });
    wait_until(LIMIT, "the stalled session's last_error", || {
        query(&env, "stalled")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("has not returned"))
    });
    // Well inside the stalled session's ten seconds without a buffer.
    for seq in 0..100u64 {
        write_event!(BESIDE, "Sample", level: Information, seq = seq);
    }
    quick(&env, &["flush", "beside"]);
    assert_eq!(query(&env, "beside")["events"], 100);
    quick(&env, &["disable", "beside", "E2E.StallBeside"]);
    quick(&env, &["stop", "beside"]);
    let beside = decode(&beside_log);
    assert_eq!(beside.events.len(), 100);
    assert_eq!(beside.trailer.map(|t| t.events_lost), Some(0));

    std::fs::remove_file(&flag).expect("unstall");
    writer.join().expect("writer");
    env.ok(&["stop", "stalled"]);
    let s = env.session("stalled");
    let log = decode(&stalled_log);
    assert!(log.damage.is_empty(), "{:?}", log.damage);
    assert_eq!(
        log.events.len() as u64 + s.counters.events_lost,
        N,
        "events in the log + counted losses = events written: {s:?}"
    );
    assert_eq!(
        log.trailer.map(|t| t.events_lost),
        Some(s.counters.events_lost)
    );
}
