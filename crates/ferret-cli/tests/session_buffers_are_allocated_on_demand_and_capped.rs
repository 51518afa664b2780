//! A session's buffers cost memory only as events fill them, however many it
//! may hold; what sessions may hold (maximum buffers × buffer size) is
//! reserved from a budget capped per user and in all, a start or update
//! beyond it is refused in one line that names the cap, and a STOPPED
//! session gives its reservation back.

use ferret_testkit as util;

use std::process::Output;
use std::time::Duration;

use util::{
    Env, decode, one_line, open_socket_to_everyone, proc_status_kib, run_as_nobody,
    running_as_root, wait_until,
};

/// The daemon's anonymous resident memory in KiB: its heap, where session
/// buffers live. Unlike VmRSS it leaves out the provider rings the daemon
/// maps from shared memory, whose pages become resident as events pass.
fn anon_kib(env: &Env) -> u64 {
    proc_status_kib(env.daemon_pid(), "RssAnon")
}

#[test]
fn a_session_that_may_hold_512_mib_costs_memory_only_as_events_fill_it() {
    let env = Env::new();
    let before = anon_kib(&env);
    // 32 buffers of 16 MiB, all of them asked for at start: 512 MiB that
    // the session may come to hold.
    env.start_with(
        "big",
        &[
            "-p",
            "E2E.Big",
            "--mode",
            "in-memory",
            "--buffer-size",
            "16384",
            "--max-buffers",
            "32",
            "--min-buffers",
            "32",
            // The emitter outruns the drain; it waits rather than drops.
            "--no-loss",
        ],
    );
    // The drain has made the session's buffers once it publishes them.
    wait_until(Duration::from_secs(10), "the buffers to be made", || {
        env.json(&["query", "big"])["free_buffers"] == 31
    });
    let idle = anon_kib(&env);
    assert!(
        idle < before + 32 * 1024,
        "a session with no events grew the daemon from {before} KiB to {idle} KiB"
    );

    // About 60 MiB of events (some 20 bytes each): at least three buffers
    // fill, and all of them stay in memory (the session keeps its newest 30).
    let count = 3_000_000;
    env.emit("E2E.Big", count, &[]);
    env.wait_events("big", count);
    let filled = anon_kib(&env);
    assert!(
        filled > idle + 32 * 1024,
        "events grew the daemon only from {idle} KiB to {filled} KiB"
    );
    eprintln!(
        "daemon RssAnon: {before} KiB before, {idle} KiB with the idle session, {filled} KiB after {count} events"
    );

    let snap = env.path("big.ferret");
    env.json(&["snapshot", "big", "-f", snap.to_str().unwrap()]);
    let decoded = decode(&snap);
    assert!(decoded.damage.is_empty(), "{:?}", decoded.damage);
    let got: Vec<u64> = decoded.events.iter().filter_map(|e| e.seq).collect();
    assert_eq!(got.len() as u64, count);
    assert!(got.iter().copied().eq(0..count), "every event, in order");
    let stopped = env.json(&["stop", "big"]);
    assert_eq!(stopped["events"], count);
    assert_eq!(stopped["events_lost"], 0);
}

/// `ferret ARGS...` as a user other than root: user 65534 when the tests
/// run as root (which is exempt from the per-user cap), else this user.
/// Returns the output and the uid.
fn as_user(env: &Env, args: &[&str]) -> (Output, u32) {
    if running_as_root() {
        (run_as_nobody(env, args), 65534)
    } else {
        (env.run(args), rustix::process::getuid().as_raw())
    }
}

/// The arguments after `ferret start NAME` for an in-memory session.
fn in_memory<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-p", "E2E.Cap", "--mode", "in-memory"];
    args.extend_from_slice(extra);
    args
}

/// `ferret start NAME` of an in-memory session, whole.
fn start<'a>(name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["start", name];
    args.extend(in_memory(extra));
    args
}

#[test]
fn a_start_beyond_the_per_user_cap_is_refused_in_one_line() {
    let env = Env::with_daemon_args(&["--user-buffer-memory", "8M", "--buffer-memory", "64M"]);
    open_socket_to_everyone(&env);
    // The default 64 buffers of 64 KiB reserve 4 MiB: two fit in 8 MiB.
    for name in ["u1", "u2"] {
        let (out, _) = as_user(&env, &start(name, &[]));
        assert!(out.status.success(), "{name}: {out:?}");
    }
    let (out, uid) = as_user(&env, &start("u3", &[]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        one_line(&err),
        format!(
            "ferret: the sessions of uid {uid} may reserve at most 8 MiB of buffers (the daemon's --user-buffer-memory); 8 MiB are reserved by its other sessions and this session's 64 buffers of 64 KiB ask for 4 MiB; use a smaller --buffer-size or --max-buffers, stop one of its sessions, or run the daemon with a higher --user-buffer-memory"
        )
    );
    assert!(env.fails(&["query", "u3"]).contains("not found"));
    // A smaller session still fits in what is left of the global cap, and
    // the user's cap binds only that user: root is exempt from it.
    if running_as_root() {
        env.start_with("root1", &in_memory(&["--max-buffers", "256"]));
        assert_eq!(env.json(&["query", "root1"])["state"], "RUNNING");
    }
}

#[test]
fn a_start_beyond_the_global_cap_is_refused_until_a_session_stops() {
    let env = Env::with_daemon_args(&["--buffer-memory", "16M", "--user-buffer-memory", "16M"]);
    // 4 MiB, 8 MiB and 4 MiB: the 16 MiB are all reserved.
    env.start_with("g1", &in_memory(&[]));
    env.start_with("g2", &in_memory(&["--max-buffers", "128"]));
    env.start_with("g3", &in_memory(&[]));
    let err = env.fails(&start("g4", &[]));
    let expected = if running_as_root() {
        "ferret: all sessions together may reserve at most 16 MiB of buffers (the daemon's --buffer-memory); 16 MiB are reserved by other sessions and this session's 64 buffers of 64 KiB ask for 4 MiB; use a smaller --buffer-size or --max-buffers, stop a session, or run the daemon with a higher --buffer-memory".to_string()
    } else {
        // Not root, this user meets its own cap (also 16 MiB) first.
        format!(
            "ferret: the sessions of uid {} may reserve at most 16 MiB of buffers (the daemon's --user-buffer-memory); 16 MiB are reserved by its other sessions and this session's 64 buffers of 64 KiB ask for 4 MiB; use a smaller --buffer-size or --max-buffers, stop one of its sessions, or run the daemon with a higher --user-buffer-memory",
            rustix::process::getuid().as_raw()
        )
    };
    assert_eq!(one_line(&err), expected);
    assert!(env.fails(&["query", "g4"]).contains("not found"));
    // A refused start to a log file leaves no file behind.
    let file = env.path("g4.ferret");
    let err = env.fails(&["start", "g4", "-p", "E2E.Cap", "-f", file.to_str().unwrap()]);
    assert!(one_line(&err).contains("16 MiB are reserved"), "{err}");
    assert!(!file.exists());

    // A STOPPED session gives back its reservation; a listed one still
    // shows its figures.
    let stopped = env.json(&["stop", "g2"]);
    assert_eq!(stopped["state"], "STOPPED");
    env.start_with("g4", &in_memory(&[]));
    env.start_with("g5", &in_memory(&[]));
    let err = env.fails(&start("g6", &[]));
    assert!(one_line(&err).contains("16 MiB are reserved"), "{err}");
}

#[test]
fn update_max_buffers_beyond_the_cap_is_refused_and_changes_nothing() {
    let env = Env::with_daemon_args(&["--buffer-memory", "16M", "--user-buffer-memory", "16M"]);
    env.start_with("up", &in_memory(&[]));
    let err = env.fails(&["update", "up", "--max-buffers", "512"]);
    let cap = if running_as_root() {
        "all sessions together may reserve at most 16 MiB of buffers (the daemon's --buffer-memory); 0 bytes are reserved by other sessions and --max-buffers 512 (buffers of 64 KiB) would reserve 32 MiB; use a smaller --max-buffers, stop a session, or run the daemon with a higher --buffer-memory"
    } else {
        "may reserve at most 16 MiB of buffers (the daemon's --user-buffer-memory); 0 bytes are reserved by its other sessions and --max-buffers 512 (buffers of 64 KiB) would reserve 32 MiB;"
    };
    assert!(one_line(&err).contains(cap), "{err}");
    let q = env.json(&["query", "up"]);
    assert_eq!(q["max_buffers"], 64, "{q}");
    assert_eq!(q["state"], "RUNNING");

    // Up to the cap is allowed, and then it is all taken.
    assert_eq!(
        env.json(&["update", "up", "--max-buffers", "256"])["max_buffers"],
        256
    );
    let err = env.fails(&start("other", &[]));
    assert!(one_line(&err).contains("16 MiB are reserved"), "{err}");
    // Lowering gives the difference back.
    env.json(&["update", "up", "--max-buffers", "64"]);
    env.start_with("other", &in_memory(&[]));
    // The session still works with what it has.
    env.emit("E2E.Cap", 10_000, &[]);
    env.wait_events("up", 10_000);
}
