//! Providers and controllers talk only to a daemon that runs as their own
//! user or as root, found in a directory that no other user could have put
//! it in, and a provider maps only a region sealed against resizing: a
//! listener of another user is handed no descriptor and no event, and a
//! fake daemon cannot kill the host program by truncating its region.
//!
//! The tests that need a second user switch to uid 65534 in the child; they
//! need root and say "skipped: needs root" without it.

use ferret_testkit as util;

use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferret_abi::proto::{RegionGrant, Request, Response};
use ferret_abi::shm::{CLOCK_MONOTONIC, RegionLayout, RegionParams};
use ferret_client::Conn;
use util::{Env, ferret_bin, running_as_root, wait_until};

const NOBODY: u32 = 65534;

/// `ferret --socket SOCKET ARGS...` as uid 65534.
fn nobody(socket: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(ferret_bin());
    cmd.arg("--socket")
        .arg(socket)
        .args(args)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null());
    cmd
}

/// A daemon of uid 65534, killed when dropped.
struct NobodysDaemon(Child);

impl Drop for NobodysDaemon {
    fn drop(&mut self) {
        util::terminate(&mut self.0);
    }
}

/// Starts a real daemon as uid 65534 in a directory of that user's, as
/// another local user could do at a path this user looks at.
fn start_nobodys_daemon(env: &Env) -> (NobodysDaemon, PathBuf) {
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = env.path("nobody");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = dir.join("control.sock");
    let child = nobody(&socket, &["daemon"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nobody's daemon");
    let daemon = NobodysDaemon(child);
    wait_until(Duration::from_secs(20), "nobody's daemon to answer", || {
        nobody(&socket, &["list"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    (daemon, socket)
}

fn stderr_of(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run ferret");
    (
        out.status.success(),
        String::from_utf8(out.stderr).expect("utf-8"),
    )
}

#[test]
fn a_daemon_of_another_user_is_refused_by_start_and_by_providers() {
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::without_daemon();
    let (_daemon, socket) = start_nobodys_daemon(&env);
    // Nobody's session is waiting for provider P's events.
    let log = env.path("nobody/s.ferret");
    let (ok, err) = stderr_of(nobody(&socket, &["start", "s", "-p", "P", "-f"]).arg(&log));
    assert!(ok, "nobody's start: {err}");

    // In nobody's own directory: the directory alone says it is not ours.
    let dir_refusal = format!(
        "the socket's directory '{}' belongs to uid 65534, neither this user (uid 0) nor root, who could have put any listener there; refusing to connect (use a directory of your own with --socket)",
        socket.parent().unwrap().display()
    );
    let mine = env.path("mine.ferret");
    // Root's `ferret start` of a session logging to `mine`, on `socket`.
    let start_on = |socket: &std::path::Path| {
        stderr_of(
            Command::new(ferret_bin())
                .arg("--socket")
                .arg(socket)
                .args(["start", "r", "-p", "P", "-f"])
                .arg(&mine),
        )
    };
    let (ok, err) = start_on(&socket);
    assert!(!ok, "root's start was served by nobody's daemon");
    assert_eq!(
        err,
        format!(
            "ferret: cannot reach a Ferret daemon on {}: {dir_refusal}\n",
            socket.display()
        )
    );
    assert!(!mine.exists(), "no log file is created for a refused start");

    // The same socket seen from a directory of root's (a hard link to it):
    // now only the kernel's record of the listener tells.
    let linked = env.path("control.sock");
    std::fs::hard_link(&socket, &linked).unwrap();
    let peer_refusal = format!(
        "the daemon on {} runs as uid 65534, neither this user (uid 0) nor root; refusing to talk to it (use a daemon of your own with --socket)",
        linked.display()
    );
    let (ok, err) = start_on(&linked);
    assert!(!ok, "root's start was served by nobody's daemon");
    assert_eq!(
        err,
        format!(
            "ferret: cannot reach a Ferret daemon on {}: {peer_refusal}\n",
            linked.display()
        )
    );
    assert!(!mine.exists(), "no log file is created for a refused start");

    // A provider of root's stays disabled at either path; the host runs on.
    for (path, why) in [(&socket, &dir_refusal), (&linked, &peer_refusal)] {
        let (ok, err) = stderr_of(
            Command::new(ferret_bin())
                .arg("--socket")
                .arg(path)
                .args(["emit", "--provider", "P", "--count", "100"])
                .env("FERRET_REGISTER_TIMEOUT_MS", "5000"),
        );
        assert!(ok, "the host program failed: {err}");
        assert_eq!(
            err,
            format!("ferret emit: 100 events were not written: not attached to a daemon ({why})\n")
        );
    }
    let out = nobody(&socket, &["query", "s", "--json"])
        .output()
        .expect("query");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(s["events"], 0, "nobody's session got root's events: {s}");
}

#[test]
fn a_socket_directory_others_may_write_is_refused() {
    let env = Env::new();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = env.fails(&["list"]);
    let expected = format!(
        "ferret: cannot reach a Ferret daemon on {}: the socket's directory '{}' is writable by other users (mode 777), who could have replaced the socket; refusing to connect (use a directory only you may write)\n",
        env.socket.display(),
        env.dir.path().display()
    );
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(err, expected);
    env.ok(&["list"]);
}

/// A fake daemon of our own user: it answers hello with a well-formed
/// region in a memfd it did not seal, and truncates the memfd once the
/// provider registers, as a hostile daemon would to make the host fault.
fn serve_unsealed_region(listener: rustix::fd::OwnedFd) {
    let layout = RegionLayout::new(RegionParams {
        ring_count: 4,
        ring_capacity: 64 << 10,
        meta_capacity: 64 << 10,
    })
    .expect("layout");
    while let Ok(fd) = rustix::net::accept(&listener) {
        std::thread::spawn(move || {
            let mut conn = Conn::from_fd(fd);
            let Ok((Request::Hello(_), _)) = conn.recv::<Request>() else {
                return;
            };
            let memfd = rustix::fs::memfd_create(
                "fake-region",
                rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
            )
            .expect("memfd");
            rustix::fs::ftruncate(&memfd, layout.region_size).expect("size");
            let header = layout.header(CLOCK_MONOTONIC, 0);
            // SAFETY: the header is plain integers and atomics, read here
            // as the bytes the daemon would store.
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    (&header as *const ferret_abi::shm::RegionHeader).cast::<u8>(),
                    std::mem::size_of_val(&header),
                )
            };
            rustix::io::pwrite(&memfd, bytes, 0).expect("header");
            let grant = Response::Region(RegionGrant {
                region_size: layout.region_size,
                has_eventfd: false,
            });
            if conn.send(&grant, &[memfd.as_fd()]).is_err() {
                return;
            }
            while let Ok((req, _)) = conn.recv::<Request>() {
                if let Request::RegisterProvider { slot, .. } = req {
                    rustix::fs::ftruncate(&memfd, 0).expect("truncate");
                    let _ = conn.send(&Response::ProviderRegistered { slot }, &[]);
                }
            }
        });
    }
}

#[test]
fn a_region_that_could_shrink_is_never_mapped() {
    let env = Env::without_daemon();
    let listener = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .expect("socket");
    rustix::net::bind(
        &listener,
        &rustix::net::SocketAddrUnix::new(&env.socket).unwrap(),
    )
    .expect("bind");
    rustix::net::listen(&listener, 16).expect("listen");
    std::thread::spawn(move || serve_unsealed_region(listener));

    let out = env.run(&["emit", "--provider", "P", "--count", "100"]);
    assert_eq!(out.status.code(), Some(0), "the host program died: {out:?}");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "ferret emit: 100 events were not written: not attached to a daemon (the daemon sent a region not sealed against shrinking and growing (seals 0x0); refusing to map it)\n"
    );
}
