//! A real daemon in the test's own process, on a socket in a temporary
//! directory, and sessions started through the real control client.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferret_abi::proto::{FileMode, ProviderSpec, SessionRef, StartRequest};
use ferret_abi::{EnableFilter, Level};
use ferret_client::Client;

/// A daemon serving a private socket; it runs until the process exits.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
}

impl Daemon {
    /// Starts `ferret_daemon::run` in a thread and waits until it answers.
    pub fn start() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("ferret-provider-test-")
            .tempdir()
            .expect("tempdir");
        let socket = dir.path().join("control.sock");
        let config = ferret_daemon::Config::new(socket.clone());
        std::thread::Builder::new()
            .name("test-daemon".into())
            .spawn(move || ferret_daemon::run(config))
            .expect("daemon thread");
        wait_until(Duration::from_secs(20), "the daemon to answer", || {
            Client::connect(&socket).is_ok()
        });
        Daemon { dir, socket }
    }

    /// Points this process's providers at the daemon. Call before the
    /// first provider is used.
    pub fn configure_providers(&self) {
        assert!(
            ferret_provider::configure(ferret_provider::Options {
                socket: self.socket.clone(),
                ..ferret_provider::Options::default()
            }),
            "providers were used before the test configured them"
        );
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("connect")
    }

    /// Starts session `name` enabling `provider` at `level` with
    /// match-any keywords `keywords`. With `log` the session writes that
    /// file; without, it keeps its buffers in memory.
    pub fn start_session(
        &self,
        name: &str,
        provider: &str,
        level: Level,
        keywords: u64,
        log: Option<&Path>,
    ) {
        let file = log.map(|p| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)
                .expect("create log file")
        });
        let req = StartRequest {
            name: name.into(),
            providers: vec![ProviderSpec {
                name: provider.into(),
                filter: EnableFilter {
                    level,
                    match_any: keywords,
                    match_all: 0,
                },
            }],
            log_file: log.map(|p| p.display().to_string()).unwrap_or_default(),
            buffer_kib: 64,
            max_buffers: 64,
            flush_timer_ms: 1000,
            min_buffers: 8,
            file_mode: if log.is_some() {
                FileMode::Sequential
            } else {
                FileMode::InMemory
            },
            max_file_bytes: 0,
            realtime: false,
            controller: "ferret-provider test".into(),
            no_loss: false,
            no_loss_wait_ms: 0,
        };
        use std::os::fd::AsFd;
        self.client()
            .start(req, file.as_ref().map(|f| f.as_fd()))
            .expect("start session");
    }

    /// Stops session `name` and waits until it is STOPPED (its log, if
    /// any, is complete).
    pub fn stop_session(&self, name: &str) -> ferret_abi::proto::SessionInfo {
        self.client()
            .stop(&SessionRef::Name(name.into()), true)
            .expect("stop session")
    }
}

/// Waits until `cond` holds, polling, for at most `limit`; panics naming
/// `what` if it never does.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Iterations between two flushes in [`bench_in_bursts`]. A burst of
/// events of at most about 120 bytes fills well under an eighth of the
/// 8 MiB ring: no event is dropped for a full ring, and the writer never
/// reaches the fill level at which it checks the drain's position on every
/// event and wakes it (the cost of a ring the drain is not keeping up with,
/// which `benches/emit.sh` measures).
pub const BURST: u64 = 10_000;

/// Benchmarks `f` writing into session `session` of `daemon`: the timed
/// loop runs at most [`BURST`] iterations, then (untimed) a flush waits
/// until the drain has taken everything from the ring. It measures what
/// writing costs while the ring has room, and prints how many events
/// `dropped` says were dropped anyway.
pub fn bench_in_bursts(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    daemon: &Daemon,
    session: &str,
    name: &str,
    dropped: impl Fn() -> u64,
    mut f: impl FnMut(),
) {
    let mut client = daemon.client();
    let session = SessionRef::Name(session.into());
    let before = dropped();
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(BURST);
                let start = Instant::now();
                for _ in 0..n {
                    f();
                }
                timed += start.elapsed();
                left -= n;
                client.flush(&session).expect("flush");
            }
            timed
        })
    });
    eprintln!("{name}: {} events dropped", dropped() - before);
}
