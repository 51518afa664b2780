//! A provider's drops (ring full) are charged to the sessions that enabled
//! the provider when they were counted, not to whichever sessions the
//! daemon routes when it reads the counters: session A's drops, read only
//! after A stopped and B started, are A's alone, and B's log + B's losses
//! = what was written while B enabled the provider, exactly.
//!
//! To make "read only after B started" certain, the test stops the
//! daemon's drain thread alone (ptrace, so root) while A's provider (this
//! process) fills its ring, stops A and starts B, and lets the drain go on
//! only then: it finds the drops and the route changes together (before:
//! it charged all 19,051 of A's drops to B too, in 5 runs of 5). B takes
//! only a keyword none of A's events has, so that the events A left in the
//! ring, which the drain routes once B's routes are in force, are not B's
//! either.

use ferret_testkit as util;

use std::time::Duration;

use ferret_abi::proto::SessionState;
use ferret_provider::{Level, provider, write_event};
use util::{Env, running_as_root, wait_until};

provider!(static P = "E2E.DropTime");

const LIMIT: Duration = Duration::from_secs(20);
const PAD: &str = "the quick brown fox jumps over the lazy dog, twice over";

/// The drain thread of daemon `pid`.
fn drain_tid(pid: u32) -> i32 {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let task = task.expect("task");
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == "ferretd-drain" {
            return task.file_name().to_str().unwrap().parse().unwrap();
        }
    }
    panic!("daemon {pid} has no ferretd-drain thread");
}

/// Stops thread `tid` alone (its process goes on), until [`thaw`]. False
/// if this process may not trace it (root without CAP_SYS_PTRACE, as in
/// some containers).
fn freeze(tid: i32) -> bool {
    // SAFETY: plain ptrace requests on a thread of a child process; the
    // status is written into a local.
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, tid, 0, 0) != 0 {
            let e = std::io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "PTRACE_SEIZE: {e}");
            return false;
        }
        assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0), 0);
        let mut status = 0;
        assert_eq!(libc::waitpid(tid, &mut status, libc::__WALL), tid);
    }
    true
}

fn thaw(tid: i32) {
    // SAFETY: as in `freeze`; the thread is in a ptrace stop.
    assert_eq!(unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0, 0) }, 0);
}

fn counters(env: &Env, name: &str) -> (u64, u64) {
    let c = env.session(name).counters;
    (c.events, c.events_lost)
}

#[test]
fn drops_read_after_a_stop_and_a_start_go_to_the_session_they_were_for() {
    if !running_as_root() {
        eprintln!("skipped: needs root (ptrace)");
        return;
    }
    let env = Env::with_daemon_args(&["--ring-kib", "64"]);
    assert!(ferret_provider::configure(ferret_provider::Options {
        socket: env.socket.clone(),
        ..ferret_provider::Options::default()
    }));
    let log_a = env.path("a.ferret");
    let log_b = env.path("b.ferret");
    env.start("a", "E2E.DropTime", &log_a, &["--flush-timer", "0"]);
    wait_until(LIMIT, "the provider enabled", || {
        P.enabled(Level::Information, 0x1)
    });
    write_event!(P, "Sample", level: Information, keywords: 0x1, seq = 0u64, msg = PAD);
    wait_until(LIMIT, "A's first event", || counters(&env, "a").0 == 1);
    let mut written_a = 1u64;

    // With the drain stopped, A's events fill the ring and the rest are
    // dropped and counted by the provider.
    let tid = drain_tid(env.daemon_pid());
    if !freeze(tid) {
        eprintln!("skipped: this process may not ptrace the daemon (needs CAP_SYS_PTRACE)");
        return;
    }
    let dropped_before = P.events_dropped();
    for seq in 1..20_000u64 {
        write_event!(P, "Sample", level: Information, keywords: 0x1, seq = seq, msg = PAD);
        written_a += 1;
    }
    let dropped = P.events_dropped() - dropped_before;
    env.ok(&["stop", "a", "--no-wait"]);
    assert!(!P.enabled(Level::Information, 0x1));
    // B takes only keyword 0x2, which none of A's events has: what A's
    // events left in the ring is not B's either.
    env.start(
        "b",
        "E2E.DropTime:verbose:0x2",
        &log_b,
        &["--flush-timer", "0"],
    );
    assert!(P.enabled(Level::Information, 0x2));
    assert!(!P.enabled(Level::Information, 0x1));
    thaw(tid);
    assert!(dropped > 0, "the ring never filled");

    wait_until(LIMIT, "A stopped", || {
        env.session("a").state == SessionState::Stopped
    });
    // B's own events, few enough for the ring.
    let written_b = 500u64;
    for seq in 0..written_b {
        write_event!(P, "Sample", level: Information, keywords: 0x2, seq = seq, msg = PAD);
    }
    env.ok(&["stop", "b"]);
    let (events_a, lost_a) = counters(&env, "a");
    let (events_b, lost_b) = counters(&env, "b");
    eprintln!(
        "{}\n{}",
        env.json(&["query", "a"]),
        env.json(&["query", "b"])
    );
    eprintln!(
        "A: {events_a} + {lost_a} of {written_a} ({dropped} dropped); B: {events_b} + {lost_b} of {written_b}"
    );
    assert_eq!(lost_b, 0, "B was charged A's drops");
    assert_eq!(events_b, written_b);
    assert_eq!(events_a + lost_a, written_a);
    assert_eq!(util::lost_records(&log_a), lost_a);
    assert_eq!(util::decode(&log_a).events.len() as u64, events_a);
    assert_eq!(util::decode(&log_b).events.len() as u64, events_b);
}
