//! One connection on the control socket: `SOCK_SEQPACKET` packets of one
//! message each, with file descriptors passed as `SCM_RIGHTS`.
//!
//! The daemon, the provider library and controllers all use this type, so
//! the framing is written once.

pub mod stream;

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use ferret_abi::proto::{self, MAX_MESSAGE, ProtoError};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The most descriptors one packet may carry.
pub const MAX_FDS: usize = 4;

/// What went wrong on a connection.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// A message could not be encoded or decoded.
    #[error(transparent)]
    Proto(#[from] ProtoError),
    /// A packet was larger than [`MAX_MESSAGE`] or carried too many descriptors.
    #[error("packet too large or carrying too many descriptors")]
    Truncated,
    /// The message is longer than one packet may be on this system.
    #[error(
        "a message of {bytes} bytes is longer than one packet may be here ({limit} bytes, set by the socket send buffer, net.core.wmem_default); send less, such as fewer or shorter provider names"
    )]
    TooLong {
        /// The message's length.
        bytes: usize,
        /// The longest packet this system's sockets send.
        limit: usize,
    },
}

/// The longest packet this process can send on the control socket: the
/// protocol's [`MAX_MESSAGE`], or less where the kernel's default socket
/// send buffer (`net.core.wmem_default`, 208 KiB on most systems) is
/// smaller, since a `SOCK_SEQPACKET` packet must fit the sender's buffer
/// less 32 bytes. Measured once on a socket pair.
pub fn packet_limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let sndbuf = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .and_then(|(a, _b)| rustix::net::sockopt::socket_send_buffer_size(&a));
        match sndbuf {
            Ok(n) => n.saturating_sub(32).clamp(4096, MAX_MESSAGE),
            // No socket pair to measure with: the smallest default Linux
            // has had.
            Err(_) => 100 * 1024,
        }
    })
}

impl From<rustix::io::Errno> for TransportError {
    fn from(e: rustix::io::Errno) -> TransportError {
        TransportError::Io(e.into())
    }
}

/// A connected `SOCK_SEQPACKET` Unix socket.
#[derive(Debug)]
pub struct Conn {
    fd: OwnedFd,
    /// Receive buffer, allocated on the first receive and kept at full size.
    buf: Vec<u8>,
    len: usize,
}

impl Conn {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> io::Result<Conn> {
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        let addr = SocketAddrUnix::new(path)?;
        rustix::net::connect(&fd, &addr)?;
        Ok(Conn::from_fd(fd))
    }

    /// Connects to the daemon's socket at `path`, but only after checking
    /// that a daemon this process may trust listens there: the socket's
    /// directory must belong to this user or root and be writable by no one
    /// else (so no one else can have put the socket there), and the kernel's
    /// record of the listener (`SO_PEERCRED`) must name this user or root.
    /// Nothing is sent before both checks pass, so an impostor learns
    /// nothing and is handed no descriptor.
    pub fn connect_to_daemon(path: &Path) -> Result<Conn, ConnectError> {
        check_socket_dir(path)?;
        let conn = Conn::connect(path).map_err(ConnectError::Io)?;
        let uid = peer_credentials(conn.fd.as_fd())
            .map_err(ConnectError::Io)?
            .uid;
        let me = rustix::process::geteuid().as_raw();
        if uid != me && uid != 0 {
            return Err(ConnectError::Untrusted(format!(
                "the daemon on {} runs as uid {uid}, neither this user (uid {me}) nor root; refusing to talk to it (use a daemon of your own with --socket)",
                path.display()
            )));
        }
        Ok(conn)
    }

    /// Wraps an accepted or connected socket.
    pub fn from_fd(fd: OwnedFd) -> Conn {
        Conn {
            fd,
            buf: Vec::new(),
            len: 0,
        }
    }

    /// A second handle on the same socket, for sending from another thread
    /// while this one receives.
    pub fn try_clone(&self) -> io::Result<Conn> {
        let fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)?;
        Ok(Conn::from_fd(fd))
    }

    /// Shuts the socket down both ways, so that a `recv` blocked on it in
    /// another thread, on this handle or a clone, returns at once.
    pub fn shutdown(&self) -> io::Result<()> {
        rustix::net::shutdown(&self.fd, rustix::net::Shutdown::Both)?;
        Ok(())
    }

    /// Limits how long `recv` and `send` block; `None` blocks forever.
    pub fn set_timeouts(&self, recv: Option<Duration>, send: Option<Duration>) -> io::Result<()> {
        use rustix::net::sockopt::{Timeout, set_socket_timeout};
        set_socket_timeout(&self.fd, Timeout::Recv, recv)?;
        set_socket_timeout(&self.fd, Timeout::Send, send)?;
        Ok(())
    }

    /// Sends one message with `fds` attached.
    pub fn send<T: Serialize>(
        &self,
        msg: &T,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), TransportError> {
        let bytes = proto::encode(msg)?;
        self.send_bytes(&bytes, fds)
    }

    /// Sends one message if the socket has room for it now, without
    /// waiting: `Ok(false)` when it has none. For senders that hold a lock
    /// another thread (or `fork()`) may need.
    pub fn try_send<T: Serialize>(&self, msg: &T) -> Result<bool, TransportError> {
        let bytes = proto::encode(msg)?;
        if bytes.len() > MAX_MESSAGE {
            return Err(TransportError::Truncated);
        }
        let flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
        loop {
            match rustix::net::send(&self.fd, &bytes, flags) {
                Ok(_) => return Ok(true),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => return Ok(false),
                Err(rustix::io::Errno::PIPE) | Err(rustix::io::Errno::CONNRESET) => {
                    return Err(TransportError::Closed);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends one packet of raw bytes with `fds` attached.
    pub fn send_bytes(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), TransportError> {
        if fds.len() > MAX_FDS || bytes.len() > MAX_MESSAGE {
            return Err(TransportError::Truncated);
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            control.push(SendAncillaryMessage::ScmRights(fds));
        }
        let iov = [io::IoSlice::new(bytes)];
        loop {
            match rustix::net::sendmsg(&self.fd, &iov, &mut control, SendFlags::NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::PIPE) | Err(rustix::io::Errno::CONNRESET) => {
                    return Err(TransportError::Closed);
                }
                Err(rustix::io::Errno::MSGSIZE) => {
                    let limit = rustix::net::sockopt::socket_send_buffer_size(&self.fd)
                        .map_or_else(|_| packet_limit(), |n| n.saturating_sub(32));
                    return Err(TransportError::TooLong {
                        bytes: bytes.len(),
                        limit,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receives one message and the descriptors that came with it. The
    /// message is from an untrusted peer and is decoded with size caps.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<(T, Vec<OwnedFd>), TransportError> {
        let fds = self.recv_bytes()?;
        let msg = proto::decode_untrusted(self.last_packet())?;
        Ok((msg, fds))
    }

    /// Receives one packet into the connection's buffer; returns its
    /// descriptors. [`Conn::last_packet`] holds the bytes.
    pub fn recv_bytes(&mut self) -> Result<Vec<OwnedFd>, TransportError> {
        if self.buf.len() != MAX_MESSAGE + 1 {
            self.buf = vec![0; MAX_MESSAGE + 1];
        }
        self.len = 0;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = loop {
            let mut iov = [io::IoSliceMut::new(&mut self.buf)];
            match rustix::net::recvmsg(&self.fd, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
                Ok(m) => break m,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::CONNRESET) => return Err(TransportError::Closed),
                Err(e) => return Err(e.into()),
            }
        };
        let mut fds = Vec::new();
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(iter) = m {
                fds.extend(iter);
            }
        }
        if msg
            .flags
            .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC)
            || msg.bytes > MAX_MESSAGE
        {
            return Err(TransportError::Truncated);
        }
        if msg.bytes == 0 {
            // A zero-length read on a SEQPACKET socket is end of stream: no
            // message of ours encodes to zero bytes.
            return Err(TransportError::Closed);
        }
        self.len = msg.bytes;
        Ok(fds)
    }

    /// The bytes of the last packet [`Conn::recv_bytes`] received.
    pub fn last_packet(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Why [`Conn::connect_to_daemon`] did not connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The socket could not be reached.
    #[error("{0}")]
    Io(io::Error),
    /// Something listens there, or could have put the socket there, that is
    /// neither this user nor root.
    #[error("{0}")]
    Untrusted(String),
}

/// Checks the directory the socket is in as the daemon checks it before
/// listening: owned by this user or root, writable by no other user. A link
/// to the directory (such as `/var/run` to `/run`) is followed, since what
/// counts is the directory the socket really is in.
fn check_socket_dir(path: &Path) -> Result<(), ConnectError> {
    use std::os::unix::fs::MetadataExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        // No directory, no daemon: let the connect say so in its own words.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ConnectError::Io(e)),
    };
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(ConnectError::Untrusted(format!(
            "the socket's directory '{}' belongs to uid {}, neither this user (uid {me}) nor root, who could have put any listener there; refusing to connect (use a directory of your own with --socket)",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(ConnectError::Untrusted(format!(
            "the socket's directory '{}' is writable by other users (mode {:o}), who could have replaced the socket; refusing to connect (use a directory only you may write)",
            dir.display(),
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// A socket peer's credentials, as the kernel recorded them when it
/// connected or listened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCredentials {
    /// The peer's pid in this process's PID namespace; 0 when the peer is
    /// in a namespace this one cannot see (a client outside a container).
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Reads `SO_PEERCRED` with `getsockopt` directly: unlike rustix's
/// `socket_peercred`, it also answers for a peer in another PID namespace,
/// whose pid reads as 0; its uid and gid are still the kernel's.
pub fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<PeerCredentials> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given, and
    // `fd` is an open socket for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<libc::ucred>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the kernel answered SO_PEERCRED with an unexpected size",
        ));
    }
    Ok(PeerCredentials {
        pid: u32::try_from(cred.pid).unwrap_or(0),
        uid: cred.uid,
        gid: cred.gid,
    })
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutting_a_clone_down_wakes_a_blocked_receive() {
        let (a, _b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .expect("socketpair");
        let mut conn = Conn::from_fd(a);
        let other = conn.try_clone().expect("clone");
        // The peer stays open and silent, so only the shutdown can end the
        // receive, whether it comes before the receive blocks or after.
        let waiter = std::thread::spawn(move || conn.recv_bytes().map(|_| ()));
        other.shutdown().expect("shutdown");
        assert!(matches!(
            waiter.join().expect("no panic"),
            Err(TransportError::Closed)
        ));
    }
}
