//! A daemon that attaches a process and then stops reading its socket
//! (stalled, stopped, or hostile) cannot make the process wait: providers
//! still register at once (their registrations wait in the provider's own
//! queue, not in a blocked send), and `fork()`, whose handlers take the
//! link's lock, is never held up behind a send.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferret_abi::proto::{RegionGrant, Request, Response};
use ferret_abi::shm::{CLOCK_MONOTONIC, RegionHeader, RegionLayout, RegionParams};
use ferret_provider::{Options, Provider};
use ferret_transport::Conn;

const PROVIDERS: usize = 1000;

/// Answers hello with a well-formed, sealed region, then never reads again.
fn daemon_that_stops_reading(socket: &std::path::Path) {
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
    let layout = RegionLayout::new(RegionParams {
        ring_count: 4,
        ring_capacity: 64 << 10,
        meta_capacity: 64 << 10,
    })
    .expect("layout");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok(fd) = rustix::net::accept(&listener) {
            let mut conn = Conn::from_fd(fd);
            let Ok((Request::Hello(_), _)) = conn.recv::<Request>() else {
                continue;
            };
            use rustix::fs::{MemfdFlags, SealFlags};
            let memfd = rustix::fs::memfd_create(
                "stalled",
                MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
            )
            .expect("memfd");
            rustix::fs::ftruncate(&memfd, layout.region_size).expect("size");
            rustix::fs::fcntl_add_seals(
                &memfd,
                SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
            )
            .expect("seal");
            let header = layout.header(CLOCK_MONOTONIC, 0);
            // SAFETY: the header is plain integers and atomics, written out
            // as the bytes the daemon would store.
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    (&header as *const RegionHeader).cast::<u8>(),
                    std::mem::size_of_val(&header),
                )
            };
            rustix::io::pwrite(&memfd, bytes, 0).expect("header");
            let grant = Response::Region(RegionGrant {
                region_size: layout.region_size,
                has_eventfd: false,
            });
            // A forked child may connect and exit before it is answered.
            if conn.send(&grant, &[memfd.as_fd()]).is_err() {
                continue;
            }
            held.push((conn, memfd));
        }
    });
}

#[test]
fn a_thousand_providers_register_and_forks_return_while_the_daemon_reads_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("control.sock");
    daemon_that_stops_reading(&socket);
    assert!(ferret_provider::configure(Options {
        socket,
        register_timeout: Duration::from_millis(1),
        ..Options::default()
    }));
    Provider::register("Stall.First");
    // The register timeout is too short to wait for the attach itself.
    let attached = Instant::now() + Duration::from_secs(10);
    while !ferret_provider::link_status().connected {
        assert!(Instant::now() < attached, "the provider never attached");
        std::thread::sleep(Duration::from_millis(1));
    }

    let registered = Arc::new(AtomicUsize::new(0));
    let counter = registered.clone();
    let registrar = std::thread::spawn(move || {
        for i in 0..PROVIDERS {
            Provider::register(&format!("Stall.P{i}"));
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });

    // Fork while the registrations pile up; every child ends at once.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut forks = 0;
    let mut slowest = Duration::ZERO;
    while registered.load(Ordering::Relaxed) < PROVIDERS && Instant::now() < deadline {
        let before = Instant::now();
        // SAFETY: the child only calls `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(0) };
        }
        slowest = slowest.max(before.elapsed());
        let mut status = 0;
        // SAFETY: reaping our own child, which exits at once.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        forks += 1;
    }
    eprintln!("{forks} forks, the slowest took {slowest:?}");
    assert_eq!(
        registered.load(Ordering::Relaxed),
        PROVIDERS,
        "registrations finished while the daemon read nothing (slowest of {forks} forks: {slowest:?})"
    );
    registrar.join().expect("registrar");
}
