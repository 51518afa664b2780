//! A connection holds a daemon thread only once it has said hello and been
//! welcomed; a client the daemon sees from another PID namespace (pid 0)
//! is served like any other.

use ferret_testkit as util;

use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketType};
use util::*;

/// A raw SEQPACKET connection to the daemon's socket, as any local process
/// could open it, with no client library in the way.
fn raw_connect(env: &Env) -> OwnedFd {
    let fd = rustix::net::socket(AddressFamily::UNIX, SocketType::SEQPACKET, None).expect("socket");
    let addr = SocketAddrUnix::new(&env.socket).expect("address");
    rustix::net::connect(&fd, &addr).expect("connect");
    fd
}

/// Reads packets until the daemon closes the connection (a zero-length
/// read); returns how many packets came first. Panics past `limit`.
fn packets_until_closed(fd: &OwnedFd, limit: Duration) -> usize {
    use rustix::net::sockopt::{Timeout, set_socket_timeout};
    let deadline = Instant::now() + limit;
    let mut packets = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the daemon kept the connection open past {limit:?}"
        );
        set_socket_timeout(fd, Timeout::Recv, Some(left)).expect("timeout");
        match rustix::net::recv(fd, &mut buf, RecvFlags::empty()) {
            Ok((0, _)) => return packets,
            Ok(_) => packets += 1,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::CONNRESET) => return packets,
            Err(e) => panic!("the daemon kept the connection open past {limit:?} ({e})"),
        }
    }
}

#[test]
fn a_connection_that_never_says_hello_is_closed() {
    let env = Env::new();
    let silent = raw_connect(&env);
    // The daemon allows a few seconds for the hello; then the connection
    // and its thread are gone, and the peer reads the end of the stream.
    assert_eq!(packets_until_closed(&silent, Duration::from_secs(30)), 0);
    // The daemon serves on.
    env.ok(&["list"]);
}

#[test]
fn a_connection_refused_at_its_first_message_is_closed_after_the_answer() {
    let env = Env::new();
    let garbage = raw_connect(&env);
    rustix::net::send(&garbage, b"not a hello at all", SendFlags::NOSIGNAL).expect("send");
    // One error answer, then the end of the stream: the daemon does not
    // keep a thread waiting on a peer it could not greet.
    assert_eq!(packets_until_closed(&garbage, Duration::from_secs(30)), 1);
    env.ok(&["list"]);
}

#[test]
fn a_daemon_in_its_own_pid_namespace_serves_clients_and_providers_outside() {
    if !running_as_root() {
        eprintln!("skipped: a new PID namespace needs root");
        return;
    }
    let env = Env::without_daemon();
    let log = std::fs::File::create(env.path("daemon.log")).expect("daemon log");
    // Inside the new namespace every peer outside it has pid 0, which the
    // kernel reports as such; the daemon must still see their uid.
    let daemon = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child"])
        .arg(ferret_bin())
        .arg("--socket")
        .arg(&env.socket)
        .arg("daemon")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("spawn unshare");
    // Ends the namespace however the test ends. unshare itself ignores
    // SIGTERM while it waits, so the daemon (its child) is asked to stop,
    // and unshare follows it.
    struct Ends(std::process::Child);
    impl Drop for Ends {
        fn drop(&mut self) {
            let pid = self.0.id();
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if let Some(child) = rustix::process::Pid::from_raw(child) {
                    let _ = rustix::process::kill_process(child, rustix::process::Signal::TERM);
                }
            }
            terminate(&mut self.0);
        }
    }
    let _daemon = Ends(daemon);
    let socket = env.socket.clone();
    wait_until(Duration::from_secs(20), "the daemon to answer", || {
        ferret_client::Client::connect(&socket).is_ok()
    });
    let file = env.path("ns.ferret");
    env.start("ns", "Ns.Provider", &file, &[]);
    // emit asserts that all 1000 passed the enable test and none dropped.
    env.emit("Ns.Provider", 1000, &[]);
    env.wait_events("ns", 1000);
    env.ok(&["stop", "ns"]);
    let decoded = decode(&file);
    assert_eq!(decoded.events.len(), 1000, "{}", env.daemon_log());
    assert!(decoded.damage.is_empty(), "{:?}", decoded.damage);
}
