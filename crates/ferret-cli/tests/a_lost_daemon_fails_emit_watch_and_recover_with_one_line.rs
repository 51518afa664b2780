//! When the daemon is gone, `emit` and `watch` fail with one clear line
//! instead of exiting 0; a refused `recover` leaves no empty log behind;
//! and an error is said once, not once per layer that passed it on.

use ferret_testkit as util;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use util::{Env, one_line, wait_until};

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn emit_fails_when_the_daemon_dies_while_it_writes() {
    let mut env = Env::new();
    env.start("e", "E2E.EmitGone", &env.path("e.ferret"), &[]);
    let mut emit = env.spawn(&[
        "emit",
        "--provider",
        "E2E.EmitGone",
        "--count",
        "4000",
        "--rate",
        "1000",
    ]);
    wait_until(LIMIT, "the first events", || {
        env.session("e").counters.events > 0
    });
    env.kill_daemon();
    let status = emit.wait(LIMIT);
    assert_eq!(status.code(), Some(1), "{}", emit.stderr());
    let err = emit.stderr();
    let line = one_line(&err);
    assert!(
        line.starts_with("ferret: the daemon went away while ferret emit wrote: ")
            && line.ends_with(" of 4000 events were not written"),
        "{err}"
    );
}

#[test]
fn watch_fails_when_the_daemon_drops_it() {
    let mut env = Env::new();
    let mut watch = env.spawn(&["watch", "--json"]);
    env.start("w", "E2E.WatchDropped", &env.path("w.ferret"), &[]);
    watch.wait_for_line(LIMIT, "created w", |l| l.contains("\"created\""));
    env.kill_daemon();
    watch.read_to_end(LIMIT);
    let status = watch.wait(LIMIT);
    assert_eq!(status.code(), Some(1), "{}", watch.stderr());
    assert_eq!(
        watch.stderr(),
        "ferret: the daemon closed the watch connection (it stopped or was killed); run 'ferret watch' again once it runs\n"
    );
}

#[test]
fn a_refused_recover_leaves_no_output_file() {
    let env = Env::new();
    let out = env.path("recovered.ferret");
    let keeper = env.path("no-keeper.sock");
    let err = env.fails(&[
        "recover",
        "-o",
        out.to_str().unwrap(),
        "--keeper",
        keeper.to_str().unwrap(),
    ]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!out.exists(), "recover left {} behind", out.display());
}

/// A socket that answers like no daemon does: it takes the first request
/// and hangs up.
fn hang_up_after_first_request(path: &std::path::Path) -> std::thread::JoinHandle<()> {
    // SAFETY: plain socket calls on descriptors this function owns;
    // `addr` is a zeroed sockaddr_un whose path fits (checked).
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let listener = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_encoded_bytes();
        assert!(bytes.len() < addr.sun_path.len());
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        assert_eq!(
            libc::bind(listener.as_raw_fd(), (&raw const addr).cast(), len),
            0
        );
        assert_eq!(libc::listen(listener.as_raw_fd(), 4), 0);
        std::thread::spawn(move || {
            let conn = libc::accept(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            assert!(conn >= 0);
            let conn = OwnedFd::from_raw_fd(conn);
            let mut buf = vec![0u8; 1 << 16];
            libc::recv(conn.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0);
            drop(conn);
        })
    }
}

#[test]
fn an_error_is_said_once() {
    let env = Env::without_daemon();
    let server = hang_up_after_first_request(&env.socket);
    let err = env.fails(&["list"]);
    server.join().unwrap();
    assert_eq!(
        err,
        format!(
            "ferret: cannot reach a Ferret daemon on {}: talking to the daemon failed: the peer closed the connection\n",
            env.socket.display()
        )
    );
}
