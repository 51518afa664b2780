//! A child made by `fork()` while other threads of its parent intern
//! dynamic shapes, register enable-change callbacks and wait for a slow
//! registration never waits for a lock those threads held: it interns,
//! registers a callback and uses a lazily registered provider at once, and
//! the activity ids it makes are not the ones its parent makes next.
//!
//! The daemon here accepts connections and never answers, so that every
//! registration is slow: each waits for the register timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferret_provider::{EventShape, LazyProvider, Level, Options, Provider, activity};

static SLOW: LazyProvider = LazyProvider::new("Fork.Slow");

const CHILDREN: usize = 50;

/// Listens on `socket` and accepts connections that it never answers.
fn silent_daemon(socket: &std::path::Path) {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let listener = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .expect("socket");
    rustix::net::bind(&listener, &SocketAddrUnix::new(socket).unwrap()).expect("bind");
    rustix::net::listen(&listener, 128).expect("listen");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok(conn) = rustix::net::accept(&listener) {
            held.push(conn);
        }
    });
}

/// What a child does, then `_exit`s: everything that took a lock another
/// thread of the parent may have held at the fork. Reports its next
/// activity id through `report`.
fn child(report: i32) -> ! {
    // The load threads may have filled the table: a refusal is an answer too.
    let _ = EventShape::new("InChild", Level::Verbose)
        .id(u16::MAX)
        .intern();
    ferret_provider::on_enable_change(|| {});
    let _ = SLOW.enabled(Level::Verbose, 0);
    let id = activity::new_id();
    // SAFETY: `report` is the pipe's write end; a plain write of 16 bytes.
    let ok = unsafe { libc::write(report, id.0.as_ptr().cast(), 16) } == 16;
    // SAFETY: ends the child at once, running no destructor or atexit
    // handler of the parent's.
    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
}

#[test]
fn fifty_children_forked_under_load_all_exit_with_ids_of_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("control.sock");
    silent_daemon(&socket);
    assert!(ferret_provider::configure(Options {
        socket,
        register_timeout: Duration::from_millis(1000),
        ..Options::default()
    }));
    Provider::register("Fork.Busy");

    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for t in 0..2u16 {
        let stop = stop.clone();
        load.push(std::thread::spawn(move || {
            let mut i = 0u16;
            while !stop.load(Ordering::Relaxed) {
                // A new shape each time, so that each takes the table's lock.
                let _ = EventShape::new("Busy", Level::Verbose)
                    .id(i)
                    .keywords(u64::from(t))
                    .intern();
                i = i.wrapping_add(1) % (u16::MAX - 1);
            }
        }));
    }
    {
        let stop = stop.clone();
        load.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 100_000 {
                ferret_provider::on_enable_change(|| {});
                n += 1;
            }
        }));
    }
    // Its first use waits the whole register timeout for the silent daemon.
    let slow = std::thread::spawn(|| SLOW.get());

    let mut children = Vec::new();
    let mut parent_next = Vec::new();
    for _ in 0..CHILDREN {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        activity::new_id();
        // SAFETY: the child runs only `child`, which ends with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            child(fds[1]);
        }
        // SAFETY: closing the parent's copy of the write end.
        unsafe { libc::close(fds[1]) };
        parent_next.push(activity::new_id());
        children.push((pid, fds[0]));
        std::thread::sleep(Duration::from_millis(10));
    }

    // Every child must be gone within the deadline; a hung one is killed
    // and counted.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut hung = 0;
    let mut failed = 0;
    let mut repeated = 0;
    for ((pid, read_end), next) in children.into_iter().zip(parent_next) {
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            if Instant::now() >= deadline {
                // SAFETY: killing and reaping our own hung child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                hung += 1;
                status = 0;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            failed += 1;
        }
        let mut id = [0u8; 16];
        let file = std::fs::File::from(unsafe {
            // SAFETY: the read end is ours and closed only here.
            <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(read_end)
        });
        if std::io::Read::read_exact(&mut &file, &mut id).is_ok() && id == next.0 {
            repeated += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().expect("load thread");
    }
    slow.join().expect("slow registration");
    assert_eq!(
        (hung, failed, repeated),
        (0, 0, 0),
        "of {CHILDREN} children: hung, failed, made their parent's next activity id"
    );
}
