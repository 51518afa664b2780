//! The keeper: a small process forked from the daemon as it starts, which
//! holds a descriptor of every provider region the daemon creates, so that
//! the rings outlive a daemon killed without warning.
//!
//! Regions are sealed memfds (a provider must not be able to shrink one
//! under the daemon's mapping), and a memfd lives only as long as some
//! process holds it; files under /dev/shm could be kept by name but cannot
//! be sealed. So the daemon hands each region's memfd to the keeper over a
//! socket pair, with the names of the providers registered in it, and tells
//! it when a region goes away. On a clean exit the daemon says goodbye and
//! the keeper exits. If the pair closes without a goodbye, the daemon died:
//! the keeper looks for committed records the drain had not taken, and if
//! there are any it listens on `SOCKET.recover-PID` (PID: the dead
//! daemon's) and hands everything to the first `ferret recover` that
//! connects, then exits. It gives up after [`LINGER`] (or
//! `FERRET_KEEPER_LINGER_S` seconds).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferret_abi::Guid;
use ferret_abi::shm::{RegionLayout, RegionParams};
use ferret_format::ClockInfo;
use ferret_session::RegionId;
use ferret_transport::Conn;
use serde::{Deserialize, Serialize};

use crate::shm::ShmRegion;

/// How long a keeper waits for `ferret recover` after its daemon died.
pub const LINGER: Duration = Duration::from_secs(600);

/// The suffix of the socket a keeper listens on, after the daemon's socket
/// path: `SOCKET.recover-PID`.
pub const RECOVER_SUFFIX: &str = ".recover-";

/// A message between the daemon and its keeper, and from the keeper to
/// `ferret recover`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum KeeperMsg {
    /// The daemon's process id and clock (first, in both directions).
    Daemon { pid: u32, clock: [u64; 5] },
    /// A region; the packet carries its memfd.
    Region {
        id: u64,
        pid: u32,
        process: String,
        ring_count: u32,
        ring_capacity: u64,
        meta_capacity: u64,
    },
    /// A provider registered in slot `slot` of region `id`.
    Provider {
        id: u64,
        slot: u32,
        name: String,
        guid: Guid,
    },
    /// Region `id` is gone (its process ended and the drain emptied it).
    Forget { id: u64 },
    /// The daemon exits cleanly; nothing needs keeping.
    Bye,
    /// The last message to `ferret recover`.
    End,
}

pub(crate) fn clock_words(c: &ClockInfo) -> [u64; 5] {
    [
        u64::from(c.kind),
        c.anchor_ticks,
        c.anchor_mono_ns,
        c.anchor_unix_ns,
        c.ticks_per_sec,
    ]
}

pub(crate) fn clock_from_words(w: [u64; 5]) -> ClockInfo {
    ClockInfo {
        kind: w[0] as u32,
        anchor_ticks: w[1],
        anchor_mono_ns: w[2],
        anchor_unix_ns: w[3],
        ticks_per_sec: w[4].max(1),
    }
}

/// The daemon's end of the pair. A send waits at most [`SEND_TIMEOUT`]
/// (the keeper only receives, but it could be stopped), and after one
/// failure the daemon stops sending: a keeper that is gone or stuck costs
/// the control thread nothing but the recovery it would have allowed.
pub(crate) struct Keeper {
    conn: Conn,
    broken: std::cell::Cell<bool>,
}

/// The longest the control thread waits to hand the keeper a message.
const SEND_TIMEOUT: Duration = Duration::from_millis(100);

impl Keeper {
    /// Forks the keeper. Must be called while the daemon has one thread, so
    /// that the child starts with no lock held by a thread it lacks. Returns
    /// None (and the daemon runs without one) if the fork fails.
    pub(crate) fn spawn(socket: &Path, clock: &ClockInfo) -> Option<Keeper> {
        use rustix::net::{AddressFamily, SocketFlags, SocketType};
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .ok()?;
        let daemon = std::process::id();
        // SAFETY: the daemon has a single thread here (see above), so the
        // child may go on running ordinary Rust code; it never returns into
        // the caller and leaves with `_exit`.
        match unsafe { libc::fork() } {
            -1 => None,
            0 => {
                drop(ours);
                let code = keep(Conn::from_fd(theirs), socket, daemon);
                // SAFETY: ends the child without running the parent's
                // destructors or exit handlers a second time.
                unsafe { libc::_exit(code) }
            }
            _ => {
                drop(theirs);
                let conn = Conn::from_fd(ours);
                conn.set_timeouts(None, Some(SEND_TIMEOUT)).ok()?;
                let keeper = Keeper {
                    conn,
                    broken: std::cell::Cell::new(false),
                };
                keeper.send(
                    &KeeperMsg::Daemon {
                        pid: daemon,
                        clock: clock_words(clock),
                    },
                    None,
                );
                Some(keeper)
            }
        }
    }

    pub(crate) fn send(&self, msg: &KeeperMsg, fd: Option<std::os::fd::BorrowedFd<'_>>) {
        if self.broken.get() {
            return;
        }
        let fds: Vec<_> = fd.into_iter().collect();
        if let Err(e) = self.conn.send(msg, &fds) {
            self.broken.set(true);
            eprintln!(
                "ferretd: the keeper process does not take messages ({e}); the rings of a killed daemon will not be recoverable"
            );
        }
    }
}

struct Kept {
    id: u64,
    pid: u32,
    process: String,
    params: RegionParams,
    memfd: OwnedFd,
    providers: BTreeMap<u32, (String, Guid)>,
}

/// The keeper's life: collect regions until the daemon says goodbye or
/// dies. Returns the exit code.
fn keep(mut conn: Conn, socket: &Path, daemon: u32) -> i32 {
    // A terminal's Ctrl-C reaches the whole process group; the keeper
    // outlives the daemon on purpose and ends on its own.
    // SAFETY: setting a signal's disposition to "ignore" has no handler to
    // make safe.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let mut clock = [0u64; 5];
    let mut regions: BTreeMap<u64, Kept> = BTreeMap::new();
    loop {
        let (msg, mut fds) = match conn.recv::<KeeperMsg>() {
            Ok(m) => m,
            Err(_) => break,
        };
        match msg {
            KeeperMsg::Daemon { clock: c, .. } => clock = c,
            KeeperMsg::Region {
                id,
                pid,
                process,
                ring_count,
                ring_capacity,
                meta_capacity,
            } => {
                if let Some(memfd) = fds.pop() {
                    let params = RegionParams {
                        ring_count,
                        ring_capacity,
                        meta_capacity,
                    };
                    regions.insert(
                        id,
                        Kept {
                            id,
                            pid,
                            process,
                            params,
                            memfd,
                            providers: BTreeMap::new(),
                        },
                    );
                }
            }
            KeeperMsg::Provider {
                id,
                slot,
                name,
                guid,
            } => {
                if let Some(r) = regions.get_mut(&id) {
                    r.providers.insert(slot, (name, guid));
                }
            }
            KeeperMsg::Forget { id } => {
                regions.remove(&id);
            }
            KeeperMsg::Bye => return 0,
            KeeperMsg::End => {}
        }
    }
    // The daemon died. Keep only regions whose rings hold something the
    // drain had not taken.
    regions.retain(|_, r| undrained(r) > 0);
    if regions.is_empty() {
        return 0;
    }
    let bytes: u64 = regions.values().map(undrained).sum();
    let path = recover_path(socket, daemon);
    let listener = match listen(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "ferretd keeper: daemon pid {daemon} died leaving {bytes} bytes of events in its rings, but {} cannot be created: {e}",
                path.display()
            );
            return 1;
        }
    };
    eprintln!(
        "ferretd keeper: daemon pid {daemon} died leaving {bytes} bytes of events in the rings of {} process(es); run 'ferret recover -o FILE' to save them",
        regions.len()
    );
    let linger = std::env::var("FERRET_KEEPER_LINGER_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(LINGER, Duration::from_secs);
    let served = serve(&listener, linger, daemon, clock, &regions);
    let _ = std::fs::remove_file(&path);
    if served { 0 } else { 1 }
}

/// Bytes of the region's rings a recovery would read: records the daemon
/// had not written to a log file, or not taken at all.
fn undrained(r: &Kept) -> u64 {
    let Ok(layout) = RegionLayout::new(r.params) else {
        return 0;
    };
    let Ok(fd) = r.memfd.try_clone() else {
        return 0;
    };
    let Ok(shm) = ShmRegion::adopt(RegionId(r.id), r.pid, layout, fd) else {
        return 0;
    };
    (0..r.params.ring_count as usize)
        .filter_map(|i| crate::recover::span(&shm, i))
        .map(|s| s.head.wrapping_sub(s.from).min(r.params.ring_capacity))
        .sum()
}

/// `SOCKET.recover-PID`.
pub(crate) fn recover_path(socket: &Path, daemon: u32) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(format!("{RECOVER_SUFFIX}{daemon}"));
    PathBuf::from(p)
}

fn listen(path: &Path) -> std::io::Result<OwnedFd> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?;
    let addr = SocketAddrUnix::new(path)?;
    rustix::net::bind(&fd, &addr)?;
    // The rings hold every traced process's events: only the daemon's own
    // user (and root) may take them, as only they could read its memory.
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o600))?;
    rustix::net::listen(&fd, 1)?;
    Ok(fd)
}

/// Waits up to `linger` for one `ferret recover` and sends it everything.
fn serve(
    listener: &OwnedFd,
    linger: Duration,
    daemon: u32,
    clock: [u64; 5],
    regions: &BTreeMap<u64, Kept>,
) -> bool {
    use rustix::event::{PollFd, PollFlags};
    let deadline = std::time::Instant::now() + linger;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut fds = [PollFd::new(listener, PollFlags::IN)];
        let ts = rustix::time::Timespec {
            tv_sec: left.as_secs().min(60) as i64,
            tv_nsec: 0,
        };
        if rustix::event::poll(&mut fds, Some(&ts)).unwrap_or(0) == 0 {
            continue;
        }
        let Ok(client) = rustix::net::accept_with(listener, rustix::net::SocketFlags::CLOEXEC)
        else {
            continue;
        };
        let me = rustix::process::geteuid();
        let allowed = rustix::net::sockopt::socket_peercred(&client)
            .is_ok_and(|c| c.uid == me || c.uid.is_root());
        if !allowed {
            continue;
        }
        let conn = Conn::from_fd(client);
        let hello = KeeperMsg::Daemon { pid: daemon, clock };
        let mut ok = conn.send(&hello, &[]).is_ok();
        for r in regions.values() {
            let region = KeeperMsg::Region {
                id: r.id,
                pid: r.pid,
                process: r.process.clone(),
                ring_count: r.params.ring_count,
                ring_capacity: r.params.ring_capacity,
                meta_capacity: r.params.meta_capacity,
            };
            ok &= conn.send(&region, &[r.memfd.as_fd()]).is_ok();
            for (slot, (name, guid)) in &r.providers {
                let p = KeeperMsg::Provider {
                    id: r.id,
                    slot: *slot,
                    name: name.clone(),
                    guid: *guid,
                };
                ok &= conn.send(&p, &[]).is_ok();
            }
        }
        ok &= conn.send(&KeeperMsg::End, &[]).is_ok();
        if ok {
            return true;
        }
    }
}
