//! Security: the control socket and its directory are private (or open to
//! a configured control group only), the daemon knows each peer by its
//! kernel credentials, a control group's members may control every
//! session, a provider reaches only its own region, and log files are
//! created 0640, never through a symlink and only where the controller
//! could create them.
//!
//! Tests that need a second user switch to uid 65534 (and made-up group
//! ids) in the child process; they need root and say "skipped: needs root"
//! without it.

use ferret_testkit as util;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use ferret_abi::proto::{FileMode, Hello, PROTO_MAGIC, Request, Response, Role, StartRequest};
use ferret_client::Conn;
use util::{Env, ferret_bin, one_line, open_socket_to_everyone, running_as_root};

const NOBODY: u32 = 65534;
/// A group id no account on a test machine is expected to use.
const GROUP: u32 = 4242;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").mode() & 0o7777
}

/// `ferret --socket SOCKET ARGS...` as uid 65534 with primary group `gid`
/// and supplementary groups `groups`, switched in the child before exec.
fn run_as(env: &Env, gid: u32, groups: &[u32], args: &[&str]) -> Output {
    let groups: Vec<libc::gid_t> = groups.to_vec();
    let mut cmd = Command::new(ferret_bin());
    cmd.arg("--socket").arg(&env.socket).args(args);
    // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid)
    // between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(NOBODY) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdin(Stdio::null())
        .output()
        .expect("run as another user")
}

fn stderr_line(out: &Output) -> String {
    one_line(&String::from_utf8_lossy(&out.stderr)).to_string()
}

/// Runs `ferret daemon` on `socket` with `args` and expects it to refuse
/// to start; returns its one-line error.
fn daemon_refuses(socket: &Path, args: &[&str]) -> String {
    let out = Command::new(ferret_bin())
        .arg("--socket")
        .arg(socket)
        .arg("daemon")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the daemon");
    assert!(!out.status.success(), "the daemon started on {socket:?}");
    stderr_line(&out)
}

#[test]
fn the_socket_and_its_directory_are_private_and_checked() {
    let mut env = Env::without_daemon();
    env.socket = env.path("run/control.sock");
    env.start_daemon();
    assert_eq!(mode(&env.path("run")), 0o700, "socket directory");
    assert_eq!(mode(&env.socket), 0o600, "socket");
    drop(env);

    // A directory others may write: they could swap the socket for their own.
    let env = Env::without_daemon();
    let shared = env.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = daemon_refuses(&shared.join("c.sock"), &[]);
    assert!(err.contains("is writable by other users"), "{err}");
    assert!(!shared.join("c.sock").exists());
    // An unknown control group is named.
    let err = daemon_refuses(&env.path("g.sock"), &["--control-group", "no-such-group-x"]);
    assert!(err.contains("no group named 'no-such-group-x'"), "{err}");

    if !running_as_root() {
        eprintln!("skipped: another user's directory needs root");
        return;
    }
    let theirs = env.path("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    let err = daemon_refuses(&theirs.join("c.sock"), &[]);
    assert!(err.contains("belongs to uid 65534"), "{err}");
    // A control group given by name is looked up in /etc/group.
    let mut named = Env::without_daemon();
    named.socket = named.path("run/c.sock");
    named.start_daemon_with(&["--control-group", "root"]);
    assert_eq!(std::fs::metadata(&named.socket).unwrap().gid(), 0);
    assert_eq!(mode(&named.socket), 0o660);
    assert_eq!(mode(&named.path("run")), 0o750);
    assert!(
        named.daemon_log().contains("control group 'root' (gid 0)"),
        "{}",
        named.daemon_log()
    );
}

#[test]
fn members_of_the_control_group_may_control_every_session() {
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut env = Env::without_daemon();
    env.socket = env.path("run/control.sock");
    env.start_daemon_with(&["--control-group", &GROUP.to_string()]);
    // The socket and its directory are the group's, and no one else's.
    let dir = env.path("run");
    assert_eq!(mode(&dir), 0o750);
    assert_eq!(std::fs::metadata(&dir).unwrap().gid(), GROUP);
    assert_eq!(mode(&env.socket), 0o660);
    assert_eq!(std::fs::metadata(&env.socket).unwrap().gid(), GROUP);
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    env.start(
        "owned",
        "E2E.Owned",
        &env.path("owned.ferret"),
        &["--realtime"],
    );
    // A member by primary group, and one by supplementary group.
    let out = run_as(&env, GROUP, &[GROUP], &["flush", "owned"]);
    assert!(out.status.success(), "{}", stderr_line(&out));
    let out = run_as(
        &env,
        NOBODY,
        &[NOBODY, GROUP],
        &["update", "owned", "--flush-timer", "5"],
    );
    assert!(out.status.success(), "{}", stderr_line(&out));
    assert_eq!(env.json(&["query", "owned"])["flush_timer_ms"], 5000);

    // Someone else cannot even reach the socket...
    let out = run_as(&env, NOBODY, &[NOBODY], &["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("permission denied"), "{:?}", out);
    // ...and, let in, is refused by the daemon for every verb, tail included.
    open_socket_to_everyone(&env);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for args in [
        vec!["stop", "owned"],
        vec!["flush", "owned"],
        vec!["tail", "owned"],
    ] {
        let out = run_as(&env, NOBODY, &[NOBODY], &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let line = stderr_line(&out);
        assert!(
            line.contains("only its owner, root or members of group '4242' may control it"),
            "{args:?}: {line}"
        );
    }
    // A member stops it.
    let out = run_as(&env, GROUP, &[], &["stop", "owned"]);
    assert!(out.status.success(), "{}", stderr_line(&out));
    assert_eq!(env.json(&["query", "owned"])["state"], "STOPPED");
}

fn real_time_request(name: &str, controller: &str) -> StartRequest {
    StartRequest {
        name: name.into(),
        providers: vec![],
        log_file: String::new(),
        buffer_kib: 64,
        max_buffers: 8,
        flush_timer_ms: 1000,
        min_buffers: 2,
        file_mode: FileMode::RealTime,
        max_file_bytes: 0,
        realtime: true,
        controller: controller.into(),
        no_loss: false,
        no_loss_wait_ms: 0,
    }
}

#[test]
fn a_peer_is_who_the_kernel_says_not_what_it_claims() {
    let env = Env::new();
    let me = rustix::process::getuid().as_raw();
    // What a controller says about itself is only a description.
    let mut client = env.client();
    let started = client
        .start(real_time_request("claims", "root, uid 0, pid 1"), None)
        .expect("start");
    assert_eq!(started.session.owner_uid, me);
    // A provider's pid is the one the kernel reports for its connection.
    let mut emit = env.spawn(&[
        "emit",
        "--provider",
        "E2E.Who",
        "--count",
        "1000000",
        "--rate",
        "1000",
    ]);
    let pid = emit.child.id();
    util::wait_until(std::time::Duration::from_secs(20), "the provider", || {
        env.json(&["providers"])
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["name"] == "E2E.Who"))
    });
    let providers = env.json(&["providers"]);
    let who = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "E2E.Who")
        .unwrap();
    assert_eq!(who["pids"], serde_json::json!([pid]), "{providers}");
    let _ = emit.child.kill();
    let _ = emit.child.wait();

    if !running_as_root() {
        eprintln!("skipped: the second user's part needs root");
        return;
    }
    open_socket_to_everyone(&env);
    let out = util::run_as_nobody(&env, &["start", "theirs", "-p", "X", "--mode", "real-time"]);
    assert!(out.status.success(), "{}", stderr_line(&out));
    assert_eq!(env.json(&["query", "theirs"])["owner_uid"], NOBODY);
}

/// Provider connections from this process: each gets a region of its own
/// whose header names this process.
fn attach(env: &Env) -> (Conn, Vec<std::os::fd::OwnedFd>) {
    let mut conn = Conn::connect(&env.socket).expect("connect");
    conn.send(
        &Request::Hello(Hello {
            magic: PROTO_MAGIC,
            major: ferret_abi::shm::ABI_MAJOR,
            minor: ferret_abi::shm::ABI_MINOR,
            role: Role::Provider,
            client: "pid 1 (init)".into(),
        }),
        &[],
    )
    .expect("hello");
    match conn.recv::<Response>().expect("answer") {
        (Response::Region(_), fds) => (conn, fds),
        (other, _) => panic!("no region: {other:?}"),
    }
}

#[test]
fn a_provider_reaches_only_its_own_region() {
    let env = Env::new();
    let (_a, fds_a) = attach(&env);
    let (_b, fds_b) = attach(&env);
    let ino = |fds: &[std::os::fd::OwnedFd]| rustix::fs::fstat(&fds[0]).unwrap().st_ino;
    assert_ne!(ino(&fds_a), ino(&fds_b), "two connections share a region");
    for fds in [&fds_a, &fds_b] {
        let mut header = [0u8; 32];
        rustix::io::pread(&fds[0], &mut header, 0).unwrap();
        let pid = u32::from_le_bytes(header[28..32].try_into().unwrap());
        assert_eq!(pid, std::process::id(), "the region names the kernel's pid");
    }

    if !running_as_root() {
        eprintln!("skipped: the second user's part needs root");
        return;
    }
    // Another user's process cannot open the daemon's copy of a region.
    let daemon = env.daemon_pid();
    let memfds: Vec<String> = std::fs::read_dir(format!("/proc/{daemon}/fd"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            target
                .to_string_lossy()
                .contains("ferret-region")
                .then(|| e.path().display().to_string())
        })
        .collect();
    assert!(memfds.len() >= 2, "the daemon's regions: {memfds:?}");
    for path in &memfds {
        // Root can (so the path is right); uid 65534 cannot.
        assert!(std::fs::File::open(path).is_ok(), "{path}");
        let out = Command::new("head")
            .args(["-c", "8", path])
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .expect("run head");
        assert!(!out.status.success(), "uid 65534 read {path}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("ermission denied"),
            "{:?}",
            out
        );
    }
}

#[test]
fn log_files_are_0640_and_never_written_through_a_symlink() {
    let env = Env::new();
    let log = env.path("plain.ferret");
    env.start("plain", "E2E.Mode", &log, &[]);
    let m = mode(&log);
    assert_eq!(m & !0o640, 0, "log file mode {m:o} is wider than 0640");
    assert_eq!(m & 0o600, 0o600, "log file mode {m:o}");
    env.ok(&["stop", "plain"]);

    // A link planted where the log goes: refused, and its target untouched,
    // whatever the mode and with --overwrite too.
    let precious = env.path("precious.txt");
    std::fs::write(&precious, b"keep me").unwrap();
    let link = env.path("trap.ferret");
    std::os::unix::fs::symlink(&precious, &link).unwrap();
    let link_s = link.to_str().unwrap();
    for extra in [vec!["--overwrite"], vec!["--mode", "append"]] {
        let mut args = vec!["start", "trap", "-p", "X", "-f", link_s];
        args.extend(extra.iter().copied());
        let err = env.fails(&args);
        let line = one_line(&err);
        assert!(
            line.contains("it is a symbolic link, and Ferret never writes a log through one"),
            "{args:?}: {line}"
        );
    }
    let err = env.fails(&["start", "trap", "-p", "X", "-f", link_s]);
    assert!(one_line(&err).contains("exists"), "{err}");
    assert_eq!(std::fs::read(&precious).unwrap(), b"keep me");
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 1);

    // New-file series: the daemon creates the files, 0640 as well.
    let dir = env.path("series");
    std::fs::create_dir(&dir).unwrap();
    let pattern = dir.join("s.ferret");
    env.start(
        "series",
        "E2E.Mode",
        &pattern,
        &["--mode", "new-file", "--max-file-size", "1M"],
    );
    env.ok(&["stop", "series"]);
    let first = dir.join("s_1.ferret");
    assert_eq!(mode(&first) & !0o640, 0, "{:o}", mode(&first));

    if !running_as_root() {
        eprintln!("skipped: the second user's part needs root");
        return;
    }
    // A directory the controller may read but not write: the daemon (root)
    // could create files there, but does not do it for uid 65534.
    open_socket_to_everyone(&env);
    let closed = env.path("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pattern = closed.join("t.ferret");
    let out = util::run_as_nobody(
        &env,
        &[
            "start",
            "sneaky",
            "-p",
            "X",
            "--mode",
            "new-file",
            "-f",
            pattern.to_str().unwrap(),
            "--max-file-size",
            "1M",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let line = stderr_line(&out);
    assert!(
        line.contains("uid 65534 may not create files in the directory of"),
        "{line}"
    );
    assert!(!closed.join("t_1.ferret").exists());
}

/// The daemon checks the controller's right to create files in a new-file
/// series' directory again at every rotation: once the controller loses it,
/// no more files appear there, and the buffers are counted as lost.
#[test]
fn a_series_stops_creating_files_where_its_controller_may_no_longer_write() {
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    open_socket_to_everyone(&env);
    let dir = env.path("theirs");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pattern = dir.join("r.ferret");
    let out = util::run_as_nobody(
        &env,
        &[
            "start",
            "rot",
            "-p",
            "E2E.Rot",
            "--mode",
            "new-file",
            "-f",
            pattern.to_str().unwrap(),
            "--max-file-size",
            "16K",
            "--buffer-size",
            "4",
        ],
    );
    assert!(out.status.success(), "{}", stderr_line(&out));
    let first = dir.join("r_1.ferret");
    assert_eq!(std::fs::metadata(&first).unwrap().uid(), NOBODY);
    // The directory is no longer the controller's to write.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    env.ok(&["emit", "--provider", "E2E.Rot", "--count", "3000"]);
    env.wait_no_providers();
    env.ok(&["stop", "rot"]);
    let s = env.json(&["query", "rot"]);
    assert!(s["log_buffers_lost"].as_u64().unwrap() > 0, "{s}");
    let error = s["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("uid 65534 may not create files in the log directory"),
        "{s}"
    );
    assert!(
        !dir.join("r_2.ferret").exists(),
        "a file was created for uid 65534"
    );
}
