//! The control socket: binding it safely, accepting clients, and one thread
//! per connection that turns packets into [`Event`]s for the control thread.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ferret_abi::proto::{self, Request};
use ferret_client::{Conn, TransportError};
use rustix::fs::FlockOperation;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::DaemonError;
use crate::control::{ConnId, Event, Peer, Reply, StreamItem};

/// The bound listening socket and the lock that makes this daemon the only
/// one serving its path.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) fd: OwnedFd,
    pub(crate) path: PathBuf,
    _lock: File,
}

impl Listener {
    /// Takes the lock next to `path`, removes a stale socket, binds and listens.
    pub(crate) fn bind(path: &Path) -> Result<Listener, DaemonError> {
        let bind_err = |e: io::Error| DaemonError::Bind {
            path: path.to_path_buf(),
            source: e,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(bind_err)?;
            }
        }
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&lock_path)
            .map_err(bind_err)?;
        if rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
            return Err(DaemonError::AlreadyRunning(path.to_path_buf()));
        }
        // Holding the lock, any socket file left here belongs to a daemon
        // that is gone.
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(bind_err(e)),
        }
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| bind_err(e.into()))?;
        let addr = SocketAddrUnix::new(path).map_err(|e| bind_err(e.into()))?;
        rustix::net::bind(&fd, &addr).map_err(|e| bind_err(e.into()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
        rustix::net::listen(&fd, 128).map_err(|e| bind_err(e.into()))?;
        Ok(Listener {
            fd,
            path: path.to_path_buf(),
            _lock: lock,
        })
    }
}

/// Accepts connections forever, one thread each.
pub(crate) fn accept_loop(listener: OwnedFd, events: Sender<Event>) {
    let mut next: ConnId = 1;
    loop {
        let fd = match rustix::net::accept_with(&listener, SocketFlags::CLOEXEC) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::CONNABORTED) => continue,
            Err(e) => {
                eprintln!("ferretd: accept failed: {e}");
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
        };
        let conn = next;
        next += 1;
        let events = events.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("ferretd-conn-{conn}"))
            .spawn(move || serve(conn, fd, events));
        if let Err(e) = spawned {
            eprintln!("ferretd: cannot start a connection thread: {e}");
        }
    }
}

/// Serves one connection: each packet becomes one request, answered in order.
fn serve(conn: ConnId, fd: OwnedFd, events: Sender<Event>) {
    let peer = match rustix::net::sockopt::socket_peercred(&fd) {
        Ok(c) => Peer {
            pid: c.pid.as_raw_nonzero().get() as u32,
            uid: c.uid.as_raw(),
            gid: c.gid.as_raw(),
        },
        Err(_) => return,
    };
    let mut conn_io = Conn::from_fd(fd);
    loop {
        let fds = match conn_io.recv_bytes() {
            Ok(fds) => fds,
            Err(TransportError::Truncated) => {
                // Oversized packet: answer and keep serving.
                let (tx, rx) = crossbeam_channel::bounded(1);
                let error = "packet too large or carrying too many descriptors".to_string();
                if events.send(Event::Malformed { reply: tx, error }).is_err() {
                    break;
                }
                if !answer(conn, &conn_io, rx.recv().ok(), &events) {
                    break;
                }
                continue;
            }
            Err(_) => break,
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let event = match proto::decode_untrusted::<Request>(conn_io.last_packet()) {
            Ok(req) => Event::Request {
                conn,
                peer,
                req,
                fds,
                reply: tx,
            },
            Err(e) => Event::Malformed {
                reply: tx,
                error: e.to_string(),
            },
        };
        if events.send(event).is_err() {
            break;
        }
        if !answer(conn, &conn_io, rx.recv().ok(), &events) {
            break;
        }
    }
    let _ = events.send(Event::Closed { conn });
}

/// Sends the answer to one request; false when the connection is over.
fn answer(id: ConnId, conn: &Conn, reply: Option<Reply>, events: &Sender<Event>) -> bool {
    let sent = match reply {
        Some(Reply::Msg(r)) => conn.send(&r, &[]),
        Some(Reply::Region(r, region)) => conn.send(&r, &[region.memfd(), region.eventfd.as_fd()]),
        Some(Reply::Stream(rx)) => {
            stream(id, conn, rx, events);
            return false;
        }
        None => return false,
    };
    sent.is_ok()
}

/// Forwards a watch or a real-time stream to the client until the daemon
/// ends it or the client goes away. Sending blocks only this connection's
/// thread: a slow client holds up nobody else.
fn stream(id: ConnId, conn: &Conn, rx: Receiver<StreamItem>, events: &Sender<Event>) {
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(StreamItem::Msg(r)) => {
                if conn.send(&*r, &[]).is_err() {
                    return;
                }
            }
            Ok(StreamItem::Done {
                key,
                missed_buffers,
                missed_events,
            }) => {
                // Everything before this marker is on its way to the client.
                let _ = events.send(Event::ConsumerDone {
                    conn: id,
                    key,
                    missed_buffers,
                    missed_events,
                });
            }
            Err(RecvTimeoutError::Timeout) => {
                if peer_gone(conn) {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// True if the client has closed its end.
fn peer_gone(conn: &Conn) -> bool {
    use rustix::event::{PollFd, PollFlags};
    let mut fds = [PollFd::new(conn, PollFlags::RDHUP)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(n) if n > 0 => fds[0]
            .revents()
            .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR),
        _ => false,
    }
}
