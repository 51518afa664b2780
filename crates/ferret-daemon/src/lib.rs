//! `ferretd`, Ferret's session daemon, as a library: `ferretd` and
//! `ferret daemon` both call [`run`].
//!
//! Threads: one accepts clients on the control socket and one per
//! connection decodes packets; the control thread applies every change
//! (sessions, providers, regions) in one event loop; the drain thread moves
//! records from provider rings into session buffers; the writer thread puts
//! buffers into log files. Only this crate listens on sockets and creates
//! memfds. Session logic lives in `ferret-session`, the file format in
//! `ferret-format`, the layouts in `ferret-abi`.

pub use options::{DaemonOptions, OPTION_HELP};
mod clock;
mod control;
mod drain;
mod held;
mod keeper;
mod logfile;
mod msg;
mod options;
mod recover;
mod ring;
mod server;
mod shm;
mod watch;
mod wire;
mod writer;

pub use keeper::LINGER as KEEPER_LINGER;
pub use recover::{RecoverError, Recovered, RegionImage, RingState, kept_daemons, recover};

use std::path::PathBuf;
use std::sync::Arc;

use ferret_abi::shm::RegionParams;
use ferret_session::DEFAULT_SESSION_LIMIT;
pub use server::ControlGroup;

/// Entry points for fuzz targets and property tests of the daemon's
/// untrusted-input parsers. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Frames the records of a ring whose memory is `ring` (its length must
    /// be a power of two of at least 16) between `tail` and `head`, as the
    /// drain thread does; returns the number of events found and the new tail.
    /// Every event found must pass the check the drain makes of its copy
    /// (`ring::frames_as_events`), as nothing rewrote it meanwhile.
    pub fn scan_ring(ring: &[u8], tail: u64, head: u64) -> (usize, u64) {
        let cap = ring.len() as u64;
        assert!(
            cap.is_power_of_two() && cap >= 16,
            "ring length must be a power of two"
        );
        let mut n = 0;
        let mut time = crate::ring::TimeBase::default();
        let mut count = crate::ring::EventsOnly(|e| {
            assert!(
                crate::ring::frames_as_events(&ring[e.offset..e.offset + e.size], 1),
                "a framed event fails the copy check"
            );
            n += 1;
            true
        });
        let out = crate::ring::scan(ring, cap, tail, head, &mut time, &mut count);
        (n, out.tail)
    }

    /// Recovers a dead daemon's one-ring region, as `ferret recover` does:
    /// a 4096-byte ring holding `ring`, a metadata area holding `meta`, and
    /// the tail, head and keep positions as shared memory left them.
    /// Returns the events written and the records that could not be used.
    pub fn recover_ring(ring: &[u8], meta: &[u8], tail: u64, head: u64, keep: u64) -> (u64, u64) {
        match crate::recover::recover_one_ring(ring, meta, tail, head, keep) {
            Ok(r) => (r.events, r.unusable),
            Err(e) => panic!("memfd or log I/O failed: {e}"),
        }
    }
}

/// How to run the daemon.
#[derive(Clone, Debug)]
pub struct Config {
    /// The control socket's path.
    pub socket: PathBuf,
    /// The most sessions that may be RUNNING or STOPPING at once.
    pub session_limit: usize,
    /// Sizes of the region each provider process gets.
    pub region: RegionParams,
    /// Fork a keeper process that holds the provider rings, so that
    /// `ferret recover` can save what they hold if the daemon is killed.
    /// Only for a process that calls [`run`] while it has one thread (the
    /// `ferretd` and `ferret daemon` binaries): a fork copies only the
    /// calling thread, and locks other threads held would stay locked in
    /// the keeper. Off by default.
    pub keeper: bool,
    /// A group whose members may control every session (`--control-group`);
    /// the socket and its directory are then open to that group.
    pub control_group: Option<ControlGroup>,
    /// The caps on session buffer memory, in all and per user
    /// (`--buffer-memory`, `--user-buffer-memory`).
    pub buffer_budget: ferret_session::BufferBudget,
}

impl Config {
    /// Defaults for the socket at `socket`.
    pub fn new(socket: PathBuf) -> Config {
        Config {
            socket,
            session_limit: DEFAULT_SESSION_LIMIT,
            region: RegionParams::default(),
            keeper: false,
            control_group: None,
            buffer_budget: default_budget(),
        }
    }
}

/// The buffer budget for this machine's physical memory.
pub fn default_budget() -> ferret_session::BufferBudget {
    let physical = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| ferret_session::mem_total(&text));
    ferret_session::BufferBudget::for_memory(physical)
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon holds the socket's lock.
    #[error("a Ferret daemon already serves {0}")]
    AlreadyRunning(PathBuf),
    /// The socket could not be created.
    #[error("cannot listen on {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A thread or descriptor could not be created.
    #[error("cannot start the daemon: {0}")]
    Setup(std::io::Error),
}

/// Runs the daemon until SIGTERM or SIGINT, then stops every session
/// cleanly (each log file gets its trailer and is synced) and returns:
/// what `ferretd` and `ferret daemon` do.
pub fn run(config: Config) -> Result<(), DaemonError> {
    // Registered before the daemon's threads start, so that no signal
    // sent while they start is missed.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(DaemonError::Setup)?;
    let daemon = start(config)?;
    let tx = daemon.events.clone();
    std::thread::Builder::new()
        .name("ferretd-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = tx.send(msg::ControlEvent::Shutdown);
            }
        })
        .map_err(DaemonError::Setup)?;
    daemon.wait();
    Ok(())
}

/// A daemon started by [`start`], serving from threads of the calling
/// process.
#[derive(Debug)]
pub struct Daemon {
    events: crossbeam_channel::Sender<msg::ControlEvent>,
    control: std::thread::JoinHandle<()>,
}

impl Daemon {
    /// Stops every session cleanly, as SIGTERM does for `ferretd`, and
    /// waits until the daemon has finished.
    pub fn shutdown(self) {
        let _ = self.events.send(msg::ControlEvent::Shutdown);
        self.wait();
    }

    /// Waits until the daemon has finished (after a shutdown).
    pub fn wait(self) {
        let _ = self.control.join();
    }
}

/// Starts the daemon in threads of the calling process and returns once it
/// listens; it serves until [`Daemon::shutdown`]. It handles no signals
/// ([`run`] does). A keeper (`config.keeper`) is forked, so only a process
/// with one thread should ask for one: the binaries do, through [`run`];
/// a daemon inside a test process does not.
pub fn start(config: Config) -> Result<Daemon, DaemonError> {
    let clock = clock::Clock::detect();
    // Forked first, while the daemon has one thread and before it holds
    // the socket's lock file, which the keeper must not keep.
    let keeper = if config.keeper {
        keeper::Keeper::spawn(&config.socket, &clock.info())
    } else {
        None
    };
    let listener = server::Listener::bind(&config.socket, config.control_group.as_ref())?;
    server::raise_descriptor_limit();
    let setup = DaemonError::Setup;
    let (events_tx, events_rx) = crossbeam_channel::unbounded();
    let (drain_tx, drain_rx) = crossbeam_channel::unbounded();
    let (writer_tx, writer_rx) = crossbeam_channel::unbounded();
    let (returned_tx, returned_rx) = crossbeam_channel::unbounded();
    let drain_wake = Arc::new(
        rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .map_err(|e| setup(e.into()))?,
    );

    // A write past the file size limit (RLIMIT_FSIZE) raises SIGXFSZ, whose
    // default action ends the process. The writer treats that write like
    // any other failed write (EFBIG: counted, shown, retried with the next
    // buffer), so the signal must only be noted, never fatal.
    signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    )
    .map_err(setup)?;
    let drain = drain::Drain::new(
        drain_rx,
        drain_wake.clone(),
        writer_tx.clone(),
        returned_rx,
        clock,
    );
    let drain_thread = std::thread::Builder::new()
        .name("ferretd-drain".into())
        .spawn(move || drain.run())
        .map_err(setup)?;
    let tx = events_tx.clone();
    let writer_thread = std::thread::Builder::new()
        .name("ferretd-writer".into())
        .spawn(move || writer::run(writer_rx, returned_tx, tx, clock))
        .map_err(setup)?;
    let listen_fd = listener.fd.try_clone().map_err(setup)?;
    let tx = events_tx.clone();
    let group = config.control_group.clone();
    std::thread::Builder::new()
        .name("ferretd-accept".into())
        .spawn(move || server::accept_loop(listen_fd, tx, group))
        .map_err(setup)?;
    // The control thread keeps one sender, for the threads that do its
    // file work.
    let control_tx = events_tx;

    eprintln!(
        "ferretd: listening on {} (pid {}, clock {}{})",
        listener.path.display(),
        std::process::id(),
        clock.name(),
        match &config.control_group {
            Some(g) => format!(", control group '{}' (gid {})", g.name, g.gid),
            None => String::new(),
        }
    );
    let events = control_tx.clone();
    let control = control::Control::new(
        events_rx, control_tx, drain_tx, drain_wake, writer_tx, clock, &config,
    )
    .with_keeper(keeper);
    let control = std::thread::Builder::new()
        .name("ferretd-control".into())
        .spawn(move || {
            // The whole listener, not just its path: it holds the socket's
            // lock file, which must stay locked while the daemon serves.
            let listener = listener;
            control.run();
            // Every session is STOPPED: its trailer is written and its file
            // synced.
            let _ = std::fs::remove_file(&listener.path);
            drop(drain_thread);
            drop(writer_thread);
            eprintln!("ferretd: stopped");
        })
        .map_err(setup)?;
    Ok(Daemon { events, control })
}
