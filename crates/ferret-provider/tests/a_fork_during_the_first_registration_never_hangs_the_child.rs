//! A child forked while another thread performs the process's very first
//! registration (which sets up the provider library's process state: the
//! options, the enable table, the link thread) never finds that setup half
//! done: it registers a provider of its own at once.
//!
//! Each round is a fresh process (forked from this test before any provider
//! exists), so that each has a first registration to race: one thread
//! registers while the main thread forks as fast as it can, and every
//! grandchild registers and exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferret_provider::{Options, Provider};

const ROUNDS: usize = 40;

/// Waits for `pid` until `deadline`; kills it if it is still running then.
/// True if it exited with status 0 in time.
fn exited_in_time(pid: libc::pid_t, deadline: Instant) -> bool {
    loop {
        let mut status = 0;
        // SAFETY: waiting for a child of this process.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        }
        if Instant::now() >= deadline {
            // SAFETY: killing and reaping a child of this process.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One round, in a fresh process: the first registration on one thread,
/// forks on this one until it is done. Returns the number of grandchildren
/// forked and the number that did not exit in time.
fn round(socket: std::path::PathBuf) -> (usize, usize) {
    let done = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicBool::new(false));
    let forked = Arc::new(AtomicBool::new(false));
    let first = {
        let done = done.clone();
        let running = running.clone();
        let forked = forked.clone();
        std::thread::spawn(move || {
            running.store(true, Ordering::Release);
            ferret_provider::configure(Options {
                socket,
                ..Options::default()
            });
            let _ = Provider::register("Fork.First");
            done.store(true, Ordering::Release);
            // A thread that ends also takes that lock of the standard
            // library: this one ends after the forks.
            while !forked.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
        })
    };
    // The standard library holds a lock of its own while a thread starts,
    // which a child forked then inherits held (the provider library cannot
    // take it); the race under test is the registration, so the forks
    // start once this thread runs.
    while !running.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    let mut children = Vec::new();
    // A few forks after the registration, too, so that every round forks.
    let mut after = 3;
    while after > 0 && children.len() < 500 {
        if done.load(Ordering::Acquire) {
            after -= 1;
        }
        // SAFETY: the child registers a provider and `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let _ = Provider::register("Fork.Child");
            // SAFETY: ends the child without running the parent's exit code.
            unsafe { libc::_exit(0) };
        }
        assert!(pid > 0, "fork");
        children.push(pid);
    }
    forked.store(true, Ordering::Release);
    first.join().expect("first registration");
    // One deadline for all: a child that registers at once exits in
    // milliseconds.
    let deadline = Instant::now() + Duration::from_secs(2);
    let hung = children
        .iter()
        .filter(|&&pid| !exited_in_time(pid, deadline))
        .count();
    (children.len(), hung)
}

#[test]
fn children_forked_during_the_first_registration_register_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No daemon listens here: registration fails fast, so the setup of the
    // process state is all a fork can meet.
    let socket = dir.path().join("nobody.sock");
    let mut forked = 0;
    let mut hung = 0;
    for _ in 0..ROUNDS {
        let (rd, wr) = rustix::pipe::pipe().expect("pipe");
        // SAFETY: the child runs one round, reports it on the pipe and
        // `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let (n, h) = round(socket.clone());
            let _ = rustix::io::write(&wr, format!("{n} {h}").as_bytes());
            // SAFETY: ends the child without running the test harness's code.
            unsafe { libc::_exit(0) };
        }
        assert!(pid > 0, "fork");
        drop(wr);
        assert!(
            exited_in_time(pid, Instant::now() + Duration::from_secs(30)),
            "a round did not finish"
        );
        let mut buf = [0u8; 64];
        let n = rustix::io::read(&rd, &mut buf).expect("read report");
        let report = std::str::from_utf8(&buf[..n]).expect("utf8");
        let (n, h) = report.split_once(' ').expect("report");
        forked += n.parse::<usize>().expect("n");
        hung += h.parse::<usize>().expect("h");
    }
    eprintln!("{ROUNDS} rounds, {forked} children forked, {hung} hung");
    assert_eq!(hung, 0, "of {forked} children");
}
