//! The control socket: binding it safely, accepting clients, and one thread
//! per connection that turns packets into [`ControlEvent`]s for the control thread.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ferret_abi::proto::{self, Request};
use ferret_transport::{Conn, TransportError};
use rustix::fs::FlockOperation;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::DaemonError;
use crate::msg::{ConnId, ControlEvent, Peer, Reply, StreamItem};

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
    ///
    /// The socket's directory is created 0700 (0750 and given to the control
    /// group, if there is one). An existing directory must belong to this
    /// user (or root) and be writable by no one else: whoever may write in
    /// it could replace the socket with their own and be sent the log files
    /// of every controller that connects.
    pub(crate) fn bind(path: &Path, group: Option<&ControlGroup>) -> Result<Listener, DaemonError> {
        let bind_err = |e: io::Error| DaemonError::Bind {
            path: path.to_path_buf(),
            source: e,
        };
        let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => d.to_path_buf(),
            None => PathBuf::from("."),
        };
        let dir_mode = if group.is_some() { 0o750 } else { 0o700 };
        let created = if dir.exists() {
            false
        } else {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(dir_mode)
                .create(&dir)
                .map_err(bind_err)?;
            true
        };
        check_socket_dir(&dir, created, group).map_err(bind_err)?;
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
        match group {
            Some(g) => {
                rustix::fs::chown(path, None, Some(rustix::fs::Gid::from_raw(g.gid)))
                    .map_err(|e| bind_err(e.into()))?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o660)).map_err(bind_err)?;
            }
            None => {
                fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(bind_err)?
            }
        }
        rustix::net::listen(&fd, 128).map_err(|e| bind_err(e.into()))?;
        Ok(Listener {
            fd,
            path: path.to_path_buf(),
            _lock: lock,
        })
    }
}

/// A group whose members may control every session of this daemon
/// (`--control-group`), as its owner and root may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlGroup {
    /// The group's name, for messages.
    pub name: String,
    /// Its id.
    pub gid: u32,
}

impl ControlGroup {
    /// Looks a group up by name in /etc/group, or takes a number as a gid.
    pub fn resolve(name: &str) -> Result<ControlGroup, String> {
        if let Ok(gid) = name.parse::<u32>() {
            return Ok(ControlGroup {
                name: name.to_string(),
                gid,
            });
        }
        let groups = fs::read_to_string("/etc/group")
            .map_err(|e| format!("cannot read /etc/group to find group '{name}': {e}"))?;
        groups
            .lines()
            .filter_map(|line| {
                let mut f = line.split(':');
                let n = f.next()?;
                let gid = f.nth(1)?.parse().ok()?;
                (n == name).then_some(gid)
            })
            .next()
            .map(|gid| ControlGroup {
                name: name.to_string(),
                gid,
            })
            .ok_or_else(|| {
                format!(
                    "no group named '{name}' in /etc/group; create it with groupadd or give a gid"
                )
            })
    }
}

/// Checks (and, for a directory this daemon owns and a control group,
/// adjusts) the directory the socket goes in.
fn check_socket_dir(dir: &Path, created: bool, group: Option<&ControlGroup>) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // What counts is the directory the socket ends up in, so a link to it
    // (such as /var/run to /run) is followed.
    let meta = fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "'{}' is not a directory",
            dir.display()
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(io::Error::other(format!(
            "the socket's directory '{}' belongs to uid {}, not to this user; choose a directory of your own",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(io::Error::other(format!(
            "the socket's directory '{}' is writable by other users (mode {:o}), who could replace the socket; use a directory only you may write",
            dir.display(),
            meta.mode() & 0o7777
        )));
    }
    if let Some(g) = group {
        if meta.uid() == me || created {
            rustix::fs::chown(dir, None, Some(rustix::fs::Gid::from_raw(g.gid)))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o750))?;
        }
    }
    Ok(())
}

/// The most connections one uid may hold open at once. Each costs the
/// daemon a thread, and a provider connection a region and two more
/// descriptors; past this, connections are refused (and counted) so that
/// one user's processes cannot exhaust the daemon for everyone else.
pub(crate) const MAX_CONNECTIONS_PER_UID: usize = 256;
/// The most connections from all users together.
pub(crate) const MAX_CONNECTIONS: usize = 4096;

/// Open connections per uid, shared by the accept loop and the connection
/// threads (which give their place back when they end).
#[derive(Debug, Default)]
struct ConnCounts {
    by_uid: std::collections::HashMap<u32, usize>,
    total: usize,
    refused: u64,
}

/// Holds one connection's place in [`ConnCounts`] until dropped.
struct ConnPlace {
    counts: std::sync::Arc<std::sync::Mutex<ConnCounts>>,
    uid: u32,
}

impl Drop for ConnPlace {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_uid.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.by_uid.remove(&self.uid);
            }
        }
    }
}

/// Raises the soft limit on open descriptors to the hard one: every
/// provider connection holds three (socket, memfd, eventfd).
pub(crate) fn raise_descriptor_limit() {
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if lim.current < lim.maximum {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: lim.maximum,
                maximum: lim.maximum,
            },
        );
    }
}

/// The connections the descriptor limit allows (three descriptors each,
/// and some to spare for log files), at most [`MAX_CONNECTIONS`].
fn connection_cap() -> usize {
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let fds = lim.current.unwrap_or(u64::MAX).min(1 << 20) as usize;
    (fds.saturating_sub(256) / 3).clamp(16, MAX_CONNECTIONS)
}

/// The groups of the process at the other end of `fd`, as the kernel
/// recorded them when it connected (SO_PEERGROUPS), or from its
/// /proc/PID/status where the kernel lacks that option.
fn peer_groups(fd: &OwnedFd, pid: u32) -> Vec<u32> {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u32; 64];
    loop {
        let mut len = (buf.len() * 4) as libc::socklen_t;
        // SAFETY: `buf` has `len` writable bytes; the kernel writes at most
        // that many and sets `len` to what it wrote (or needs).
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                buf.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let needed = len as usize / 4;
        if r == 0 {
            buf.truncate(needed.min(buf.len()));
            return buf;
        }
        if io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE)
            && needed > buf.len()
            && needed <= 65536
        {
            buf.resize(needed, 0);
            continue;
        }
        break;
    }
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Groups:").map(|g| {
                    g.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
            })
        })
        .unwrap_or_default()
}

/// Accepts connections forever, one thread each, up to the caps.
pub(crate) fn accept_loop(
    listener: OwnedFd,
    events: Sender<ControlEvent>,
    group: Option<ControlGroup>,
) {
    let mut next: ConnId = 1;
    let counts = std::sync::Arc::new(std::sync::Mutex::new(ConnCounts::default()));
    let cap = connection_cap();
    // Refused connections are held open for a moment, so that a client
    // whose hello is not sent yet still reads the refusal rather than a
    // closed socket; one thread holds them all, and at most 1024 at once.
    let (refused_tx, refused_rx) =
        crossbeam_channel::bounded::<(std::time::Instant, OwnedFd)>(1024);
    let _ = std::thread::Builder::new()
        .name("ferretd-refused".into())
        .spawn(move || {
            for (at, fd) in refused_rx {
                let close_at = at + Duration::from_millis(500);
                std::thread::sleep(close_at.saturating_duration_since(std::time::Instant::now()));
                drop(fd);
            }
        });
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
        let Ok(cred) = ferret_transport::peer_credentials(fd.as_fd()) else {
            continue;
        };
        let uid = cred.uid;
        let place = {
            let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
            let mine = c.by_uid.get(&uid).copied().unwrap_or(0);
            if mine >= MAX_CONNECTIONS_PER_UID || c.total >= cap {
                c.refused += 1;
                let refused = c.refused;
                drop(c);
                refuse_connection(&fd, uid, mine, cap, refused);
                let _ = rustix::net::shutdown(&fd, rustix::net::Shutdown::Write);
                let _ = refused_tx.try_send((std::time::Instant::now(), fd));
                continue;
            }
            *c.by_uid.entry(uid).or_insert(0) += 1;
            c.total += 1;
            ConnPlace {
                counts: counts.clone(),
                uid,
            }
        };
        let conn = next;
        next += 1;
        let events = events.clone();
        let group = group.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("ferretd-conn-{conn}"))
            .spawn(move || {
                serve(conn, fd, events, group.as_ref());
                drop(place);
            });
        if let Err(e) = spawned {
            eprintln!("ferretd: cannot start a connection thread: {e}");
        }
    }
}

/// How long a new connection may take to say hello before it is closed.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers a connection past a cap with one error packet, without a thread
/// (the peer's hello, already queued or not, is never read), and closes it.
/// Refusals are logged at powers of two, so a flood cannot fill the log.
fn refuse_connection(fd: &OwnedFd, uid: u32, mine: usize, cap: usize, refused: u64) {
    let message = if mine >= MAX_CONNECTIONS_PER_UID {
        format!(
            "uid {uid} already has {mine} connections to this daemon, the most one user may; close some and retry"
        )
    } else {
        format!("the daemon serves {cap} connections, the most it can; retry later")
    };
    let reply = proto::Response::Error(proto::ErrorReply {
        code: proto::ErrorCode::Resources,
        message: message.clone(),
    });
    if let Ok(bytes) = proto::encode(&reply) {
        let _ = rustix::net::send(
            fd,
            &bytes,
            rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL,
        );
    }
    if refused.is_power_of_two() {
        eprintln!("ferretd: refused a connection ({refused} refused so far): {message}");
    }
}

/// Serves one connection: each packet becomes one request, answered in order.
fn serve(conn: ConnId, fd: OwnedFd, events: Sender<ControlEvent>, group: Option<&ControlGroup>) {
    let Ok(cred) = ferret_transport::peer_credentials(fd.as_fd()) else {
        return;
    };
    let groups = peer_groups(&fd, cred.pid);
    let gid = cred.gid;
    let in_control_group = group.is_some_and(|g| gid == g.gid || groups.contains(&g.gid));
    let peer = Peer {
        pid: cred.pid,
        uid: cred.uid,
        gid,
        groups: groups.into(),
        in_control_group,
    };
    let mut conn_io = Conn::from_fd(fd);
    // A connection must say hello within HELLO_TIMEOUT, and be answered
    // with a welcome, to stay: otherwise every idle or refused connection
    // would hold a thread and its buffers for as long as its peer liked.
    if conn_io.set_timeouts(Some(HELLO_TIMEOUT), None).is_err() {
        return;
    }
    let mut greeted = false;
    loop {
        let fds = match conn_io.recv_bytes() {
            Ok(fds) => fds,
            Err(TransportError::Truncated) => {
                // Oversized packet: answer and keep serving.
                let (tx, rx) = crossbeam_channel::bounded(1);
                let error = "packet too large or carrying too many descriptors".to_string();
                if events
                    .send(ControlEvent::Malformed { reply: tx, error })
                    .is_err()
                {
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
            Ok(req) => ControlEvent::Request {
                conn,
                peer: peer.clone(),
                req,
                fds,
                reply: tx,
            },
            Err(e) => ControlEvent::Malformed {
                reply: tx,
                error: e.to_string(),
            },
        };
        if events.send(event).is_err() {
            break;
        }
        let reply = rx.recv().ok();
        let welcomed = matches!(
            reply,
            Some(Reply::Msg(proto::Response::Hello { .. })) | Some(Reply::Region(..))
        );
        if !answer(conn, &conn_io, reply, &events) {
            break;
        }
        if !greeted {
            // The first answer was a refusal (a bad hello, another
            // version, anything but a hello): the peer has its reason,
            // and nothing it sends next can be served.
            if !welcomed || conn_io.set_timeouts(None, None).is_err() {
                break;
            }
            greeted = true;
        }
    }
    let _ = events.send(ControlEvent::Closed { conn });
}

/// Sends the answer to one request; false when the connection is over.
fn answer(id: ConnId, conn: &Conn, reply: Option<Reply>, events: &Sender<ControlEvent>) -> bool {
    let sent = match reply {
        Some(Reply::Msg(r)) => match conn.send(&r, &[]) {
            // An answer that cannot fit one packet must still be answered,
            // or the client would wait for it forever.
            Err(e) if too_long(&e) => conn.send(&too_long_error(&e), &[]),
            other => other,
        },
        Some(Reply::Region(r, region)) => conn.send(&r, &[region.memfd(), region.eventfd.as_fd()]),
        Some(Reply::Stream(rx)) => {
            stream(id, conn, rx, events);
            return false;
        }
        None => return false,
    };
    sent.is_ok()
}

/// True if `e` says a message was too long for one packet.
fn too_long(e: &TransportError) -> bool {
    matches!(
        e,
        TransportError::TooLong { .. } | TransportError::Proto(proto::ProtoError::TooLarge(_))
    )
}

/// What a client is told instead of an answer too long for one packet.
fn too_long_error(e: &TransportError) -> proto::Response {
    let (bytes, limit) = match e {
        TransportError::TooLong { bytes, limit } => (*bytes, *limit),
        TransportError::Proto(proto::ProtoError::TooLarge(n)) => (*n, proto::MAX_MESSAGE),
        _ => (0, 0),
    };
    proto::Response::Error(proto::ErrorReply {
        code: proto::ErrorCode::Resources,
        message: format!(
            "the daemon's answer of {bytes} bytes is longer than one message may be here ({limit} bytes); a session with fewer or shorter provider names has a shorter one"
        ),
    })
}

/// Forwards a watch or a real-time stream to the client until the daemon
/// ends it or the client goes away. Sending blocks only this connection's
/// thread: a slow client holds up nobody else.
fn stream(id: ConnId, conn: &Conn, rx: Receiver<StreamItem>, events: &Sender<ControlEvent>) {
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(StreamItem::Msg(r)) => {
                if conn.send(&*r, &[]).is_err() {
                    return;
                }
            }
            Ok(StreamItem::Charged { msg, cost, queued }) => {
                let mut sent = conn.send(&*msg, &[]);
                if let Err(e) = &sent {
                    if too_long(e) {
                        // The watch cannot go on without this change; it
                        // ends with the reason rather than in silence.
                        let _ = conn.send(&too_long_error(e), &[]);
                        sent = Err(TransportError::Closed);
                    }
                }
                // The message has left the queue (for the socket, or for
                // nowhere): the watch may queue that much more.
                drop(msg);
                queued.fetch_sub(cost, std::sync::atomic::Ordering::AcqRel);
                if sent.is_err() {
                    return;
                }
            }
            Ok(StreamItem::Done {
                key,
                missed_buffers,
                missed_events,
            }) => {
                // Everything before this marker is on its way to the client.
                let _ = events.send(ControlEvent::ConsumerDone {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_group_is_a_gid_or_a_name_from_etc_group() {
        assert_eq!(ControlGroup::resolve("4242").unwrap().gid, 4242);
        // Every Linux system has a group 0, named root.
        let root = ControlGroup::resolve("root").unwrap();
        assert_eq!((root.name.as_str(), root.gid), ("root", 0));
        let e = ControlGroup::resolve("no-such-group-x").unwrap_err();
        assert!(e.contains("no group named 'no-such-group-x'"), "{e}");
    }
}
