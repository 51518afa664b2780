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

mod util;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferret_abi::proto::SessionState;
use ferret_provider::{Level, provider, write_event};
use util::{Env, decode, wait_until};

provider!(static STALLED = "E2E.Stalled");
provider!(static OTHER = "E2E.StallOther");

const LIMIT: Duration = Duration::from_secs(20);
/// A generous bound for one control verb on a loaded two-core machine, far
/// below the stall, which lasts until the test ends it.
const VERB: Duration = Duration::from_secs(2);
const PAD: &str = "the quick brown fox jumps over the lazy dog";

/// Builds the shim into `dir` and returns its path.
fn build_shim(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stall/stall_writes.c");
    let out = dir.join("stall_writes.so");
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-ldl")
        .status()
        .expect("run cc to build the stall shim");
    assert!(status.success(), "cc failed to build {}", src.display());
    out
}

/// Runs `ferret ARGS...` for at most `limit`; a command that takes longer
/// is killed and fails the test instead of hanging it.
fn within(env: &Env, args: &[&str], limit: Duration) -> std::process::Output {
    let child = env
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferret");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(limit) else {
        let _ = Command::new("kill").arg(pid.to_string()).status();
        panic!("ferret {args:?} took more than {limit:?} while a log file stalled");
    };
    out.expect("ferret output")
}

/// Runs `ferret ARGS...` and asserts that it succeeds within [`VERB`];
/// returns its stdout.
fn quick(env: &Env, args: &[&str]) -> String {
    let start = Instant::now();
    let out = within(env, args, VERB);
    assert!(
        out.status.success(),
        "ferret {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if args[0] != "query" {
        eprintln!("ferret {args:?}: {:?}", start.elapsed());
    }
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// `ferret query NAME --json`, within [`VERB`].
fn query(env: &Env, name: &str) -> serde_json::Value {
    serde_json::from_str(&quick(env, &["query", name, "--json"])).expect("query JSON")
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A daemon whose writes to files whose paths end with `suffix` wait
/// while the returned flag file exists, and this process's providers
/// configured to use it. The temporary directory holds the shim and flag.
fn stalling_env(suffix: &str) -> (Env, PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let shim = build_shim(tmp.path());
    let flag = tmp.path().join("stall");
    let env = Env::with_daemon_env(
        &[],
        &[
            ("LD_PRELOAD", shim.as_os_str()),
            ("FERRET_TEST_STALL_PATH", OsStr::new(suffix)),
            ("FERRET_TEST_STALL_WHILE", flag.as_os_str()),
        ],
    );
    assert!(ferret_provider::configure(ferret_provider::Options {
        socket: env.socket.clone(),
        ..ferret_provider::Options::default()
    }));
    (env, flag, tmp)
}

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

provider!(static OPENED = "E2E.StallOpened");

/// Writing a log file's first header is file I/O too: a start, or an
/// `update -f`, whose file stalls waits for it, while every other request
/// is answered at once and the stalled start takes nothing from anyone.
#[test]
fn a_file_that_stalls_at_start_or_switch_holds_up_no_other_request() {
    let (env, flag, _tmp) = stalling_env("-stalled.ferret");
    let other_log = env.path("other.ferret");
    env.start("other", "E2E.StallOpened", &other_log, &[]);
    std::fs::write(&flag, b"").expect("stall flag");

    // A start whose header write hangs.
    let hung_log = env.path("hung-stalled.ferret");
    let hung = hung_log.to_str().expect("path");
    let mut hung_start = env.spawn(&["start", "hung", "-p", "E2E.StallOpened", "-f", hung]);
    wait_until(LIMIT, "the hung start to reach the daemon", || {
        let out = within(&env, &["query", "hung"], VERB);
        String::from_utf8_lossy(&out.stderr).contains("still opening its log file")
    });
    // An update whose new file's header write hangs.
    let switched_log = env.path("other2-stalled.ferret");
    let switched = switched_log.to_str().expect("path");
    let mut hung_update = env.spawn(&["update", "other", "-f", switched]);

    // Everything else is answered at once.
    for seq in 0..1000u64 {
        write_event!(OPENED, "Sample", level: Information, seq = seq);
    }
    quick(&env, &["flush", "other"]);
    let list = quick(&env, &["list"]);
    assert!(
        !list.contains("hung"),
        "a session still opening its file is not listed:\n{list}"
    );
    let refused = within(&env, &["stop", "hung"], VERB);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(said.contains("still opening its log file"), "{said}");
    let third_log = env.path("third.ferret");
    let third = third_log.to_str().expect("path");
    quick(
        &env,
        &["start", "third", "-p", "E2E.StallOpened", "-f", third],
    );
    quick(&env, &["stop", "third"]);
    assert_eq!(decode(&third_log).trailer.map(|t| t.events_lost), Some(0));
    assert_eq!(hung_start.child.try_wait().expect("try_wait"), None);
    assert_eq!(hung_update.child.try_wait().expect("try_wait"), None);

    // Once the file system answers, both finish as asked.
    std::fs::remove_file(&flag).expect("unstall");
    assert!(hung_start.wait(LIMIT).success(), "{}", hung_start.stderr());
    assert!(
        hung_update.wait(LIMIT).success(),
        "{}",
        hung_update.stderr()
    );
    assert_eq!(env.session("hung").state, SessionState::Running);
    assert!(
        env.session("other")
            .log_file
            .ends_with("other2-stalled.ferret")
    );
    for seq in 1000..1500u64 {
        write_event!(OPENED, "Sample", level: Information, seq = seq);
    }
    quick(&env, &["stop", "hung"]);
    quick(&env, &["stop", "other"]);
    let before = decode(&other_log);
    let after = decode(&switched_log);
    assert_eq!(before.events.len() + after.events.len(), 1500);
    assert_eq!(decode(&hung_log).events.len(), 500);
    for log in [&before, &after] {
        assert!(log.damage.is_empty(), "{:?}", log.damage);
        assert_eq!(log.trailer.as_ref().map(|t| t.events_lost), Some(0));
    }
}

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
