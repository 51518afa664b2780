//! When a log file cannot be written (the disk is full, or the file has hit
//! the process's file size limit), the session keeps running: the buffers
//! that could not be written are counted as log buffers lost, the error is
//! shown by `query` and `list`, writing resumes when space returns, and
//! other sessions lose nothing meanwhile.
//!
//! The failure is made deterministic, as root or not, by lowering the
//! daemon's RLIMIT_FSIZE with prlimit(2): every write past the limit fails
//! with EFBIG exactly as a write to a full disk fails with ENOSPC, and
//! raising the limit again is the space coming back.

use ferret_testkit as util;

use std::time::Duration;

use ferret_provider::{Level, provider, write_event};
use rustix::process::{Pid, Resource, Rlimit, getrlimit, prlimit};
use util::{Env, decode, wait_until};

provider!(static FULL = "E2E.DiskFull");
provider!(static OTHER = "E2E.DiskOther");

const LIMIT: Duration = Duration::from_secs(30);
/// Enough text that a few thousand events fill several 64 KiB buffers.
const PAD: &str = "the quick brown fox jumps over the lazy dog";

fn write_full(seqs: std::ops::Range<u64>) {
    for seq in seqs {
        write_event!(FULL, "Sample", level: Information, seq = seq, msg = PAD);
    }
}

fn write_other(seqs: std::ops::Range<u64>) {
    for seq in seqs {
        write_event!(OTHER, "Sample", level: Information, seq = seq, msg = PAD);
    }
}

fn set_file_size_limit(pid: u32, limit: Option<u64>) {
    let pid = Pid::from_raw(pid as i32).expect("pid");
    // Only the soft limit moves, so a process that is not root may raise it
    // again.
    let hard = getrlimit(Resource::Fsize).maximum;
    prlimit(
        Some(pid),
        Resource::Fsize,
        Rlimit {
            current: limit.or(hard),
            maximum: hard,
        },
    )
    .expect("prlimit RLIMIT_FSIZE on the daemon");
}

#[test]
fn a_write_error_costs_counted_buffers_is_shown_and_clears_when_space_returns() {
    let env = Env::new();
    assert!(ferret_provider::configure(ferret_provider::Options {
        socket: env.socket.clone(),
        ..ferret_provider::Options::default()
    }));
    let full_log = env.path("full.ferret");
    let other_log = env.path("other.ferret");
    let small = ["--buffer-size", "64", "--flush-timer", "0"];
    env.start("full", "E2E.DiskFull", &full_log, &small);
    env.start("other", "E2E.DiskOther", &other_log, &small);
    wait_until(LIMIT, "both providers enabled", || {
        FULL.enabled(Level::Information, 0) && OTHER.enabled(Level::Information, 0)
    });

    // Before the failure: buffers reach the file.
    const A: u64 = 10_000;
    const C: u64 = 20_000;
    const D: u64 = 10_000;
    const B: u64 = 300;
    write_full(0..A);
    env.wait_events("full", A);
    env.ok(&["flush", "full"]);
    let before = env.session("full");
    assert_eq!(before.counters.log_buffers_lost, 0, "{before:?}");
    let end = std::fs::metadata(&full_log).expect("full log").len();
    assert!(end > 4 * 65536, "several buffers written: {end} bytes");

    // The disk fills: nothing more fits in the file past its current end.
    set_file_size_limit(env.daemon_pid(), Some(end));
    write_full(A..A + C);
    write_other(0..B);
    env.wait_events("full", A + C);
    env.wait_events("other", B);
    env.ok(&["flush", "full"]);
    env.ok(&["flush", "other"]);

    let failing = env.session("full");
    assert_eq!(failing.state, ferret_abi::proto::SessionState::Running);
    assert!(failing.counters.log_buffers_lost > 0, "{failing:?}");
    let error = failing.last_error.clone().expect("an error is shown");
    assert!(
        error.contains("File too large") && !error.contains("past"),
        "{error}"
    );
    let query = env.ok(&["query", "full"]);
    assert!(
        query.contains("File too large"),
        "query shows the error:\n{query}"
    );
    let list = env.ok(&["list"]);
    assert!(
        list.contains("error: writing buffers") && list.contains("File too large"),
        "list shows the error:\n{list}"
    );
    let listed = env.json(&["list"]);
    let other_listed = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "other")
        .expect("other listed");
    assert_eq!(other_listed["last_error"], serde_json::Value::Null);
    assert_eq!(other_listed["log_buffers_lost"], 0);
    let lost_while_full = failing.counters.log_buffers_lost;

    // Space returns: the next buffers are written, and the error shows as
    // past.
    set_file_size_limit(env.daemon_pid(), None);
    write_full(A + C..A + C + D);
    env.wait_events("full", A + C + D);
    env.ok(&["flush", "full"]);
    let recovered = env.session("full");
    let error = recovered.last_error.clone().expect("the error is kept");
    assert!(
        error.contains("File too large") && error.contains("past: writing resumed"),
        "{error}"
    );
    assert!(recovered.counters.buffers_written > failing.counters.buffers_written);
    // The flush while the disk was full wrote a copy of the buffer being
    // filled, which failed and was counted; that buffer, written whole once
    // space returned, is in the file, so it is counted no more. What stays
    // counted is checked against the file below.
    let lost = recovered.counters.log_buffers_lost;
    assert!(lost > 0 && lost <= lost_while_full, "{recovered:?}");

    let full = env.json(&["stop", "full"]);
    let other = env.json(&["stop", "other"]);
    assert_eq!(full["events"], A + C + D, "{full}");
    assert_eq!(full["events_lost"], 0, "{full}");
    assert_eq!(full["files_synced"], 1, "{full}");

    // The other session lost nothing while the first one could not write.
    assert_eq!(other["events"], B, "{other}");
    assert_eq!(other["events_lost"], 0, "{other}");
    assert_eq!(other["log_buffers_lost"], 0, "{other}");
    let o = decode(&other_log);
    assert!(o.damage.is_empty(), "{:?}", o.damage);
    assert_eq!(
        o.events.iter().map(|e| e.seq.unwrap()).collect::<Vec<_>>(),
        (0..B).collect::<Vec<_>>()
    );

    // The full session's file holds everything written before the failure
    // and after it; what is missing was in the lost buffers, and the
    // reader reports the slots that were never written instead of
    // stopping there.
    let f = decode(&full_log);
    let seqs: std::collections::BTreeSet<u64> = f.events.iter().map(|e| e.seq.unwrap()).collect();
    assert_eq!(seqs.len(), f.events.len(), "no event twice");
    assert!(
        (0..A).all(|s| seqs.contains(&s)),
        "events before the failure"
    );
    assert!(
        (A + C..A + C + D).all(|s| seqs.contains(&s)),
        "events after space returned"
    );
    let missing = (A..A + C).filter(|s| !seqs.contains(s)).count() as u64;
    assert!(missing > 0, "the lost buffers' events are missing");
    assert!(!f.damage.is_empty(), "the unwritten slots are reported");
    let trailer = f.trailer.expect("the trailer was written after recovery");
    assert_eq!(trailer.log_buffers_lost, lost);
    assert_eq!(full["log_buffers_lost"], lost, "{full}");
    // Exactly the slots the reader finds missing are counted, no more.
    assert_eq!(missing_slots(&full_log), lost, "{:?}", f.damage);
}

/// The 64 KiB slots of a log that the reader skips as damaged.
fn missing_slots(log: &std::path::Path) -> u64 {
    let mut d = ferret_decode::FileDecoder::open(log).expect("open log");
    let mut skipped = 0;
    d.for_each(|e| {
        if let ferret_decode::Entry::Corrupt(c) = e {
            skipped += c.skipped;
        }
        Ok(())
    })
    .expect("decode");
    skipped.div_ceil(65536)
}
