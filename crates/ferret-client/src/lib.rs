//! The typed control client for Ferret's session daemon, and the packet
//! transport every peer of the control socket uses.
//!
//! The CLI, the viewer and the tests control sessions through [`Client`];
//! the daemon and the provider library use [`transport::Conn`] for framing
//! and descriptor passing. This crate does not start daemons by itself:
//! [`Client::connect_or_start`] calls back into the caller to do that, since
//! only the caller knows which binary to run.

pub mod transport;

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferret_abi::proto::{
    ErrorCode, ErrorReply, Hello, PROTO_MAGIC, ProviderInfo, Request, Response, Role, SessionInfo,
    SessionRef, StartRequest,
};
use ferret_abi::shm::{ABI_MAJOR, ABI_MINOR};

pub use transport::{Conn, TransportError};

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("no Ferret daemon answers on {path}; start one with 'ferret daemon --socket {path}'")]
    NoDaemon {
        /// The socket path tried.
        path: PathBuf,
    },
    /// The socket exists but this user may not connect to it.
    #[error(
        "permission denied on {path}; use a daemon of your own with --socket, or ask the socket's owner (root may control every session)"
    )]
    Permission {
        /// The socket path tried.
        path: PathBuf,
    },
    /// The daemon refused the request.
    #[error("{0}")]
    Daemon(ErrorReply),
    /// The connection failed.
    #[error("talking to the daemon failed: {0}")]
    Transport(#[from] TransportError),
    /// The daemon answered something the request does not expect.
    #[error("the daemon sent an unexpected answer to {0}")]
    Unexpected(&'static str),
}

impl ClientError {
    /// The daemon's error code, if the daemon refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Daemon(e) => Some(e.code),
            _ => None,
        }
    }
}

/// A controller's connection to the daemon.
#[derive(Debug)]
pub struct Client {
    conn: Conn,
    daemon_pid: u32,
}

fn no_daemon(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

impl Client {
    /// Connects to the daemon at `path` and says hello.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let conn = Conn::connect(path).map_err(|e| {
            if no_daemon(&e) {
                ClientError::NoDaemon {
                    path: path.to_path_buf(),
                }
            } else if e.kind() == io::ErrorKind::PermissionDenied {
                ClientError::Permission {
                    path: path.to_path_buf(),
                }
            } else {
                ClientError::Transport(TransportError::Io(e))
            }
        })?;
        let mut client = Client {
            conn,
            daemon_pid: 0,
        };
        let hello = Request::Hello(Hello {
            magic: PROTO_MAGIC,
            major: ABI_MAJOR,
            minor: ABI_MINOR,
            role: Role::Controller,
            client: format!("ferret-client pid {}", std::process::id()),
        });
        match client.call(&hello, &[])? {
            Response::Hello { pid, .. } => client.daemon_pid = pid,
            _ => return Err(ClientError::Unexpected("hello")),
        }
        Ok(client)
    }

    /// Connects to the daemon at `path`; if none answers, calls `start` once
    /// to start one and waits up to `timeout` for it to answer.
    pub fn connect_or_start(
        path: &Path,
        timeout: Duration,
        start: impl FnOnce() -> io::Result<()>,
    ) -> Result<Client, ClientError> {
        match Client::connect(path) {
            Err(ClientError::NoDaemon { .. }) => {}
            other => return other,
        }
        start().map_err(|e| ClientError::Transport(TransportError::Io(e)))?;
        let deadline = Instant::now() + timeout;
        loop {
            match Client::connect(path) {
                Err(ClientError::NoDaemon { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    /// The daemon's process id.
    pub fn daemon_pid(&self) -> u32 {
        self.daemon_pid
    }

    /// Sends a request and returns the answer, turning daemon errors into
    /// [`ClientError::Daemon`].
    pub fn call(&mut self, req: &Request, fds: &[BorrowedFd<'_>]) -> Result<Response, ClientError> {
        self.conn.send(req, fds)?;
        let (resp, _fds) = self.conn.recv::<Response>()?;
        match resp {
            Response::Error(e) => Err(ClientError::Daemon(e)),
            other => Ok(other),
        }
    }

    fn session(&mut self, req: Request, what: &'static str) -> Result<SessionInfo, ClientError> {
        match self.call(&req, &[])? {
            Response::Session(s) => Ok(s),
            _ => Err(ClientError::Unexpected(what)),
        }
    }

    /// Starts a session writing to `log_file` (opened by the caller).
    pub fn start(
        &mut self,
        req: StartRequest,
        log_file: impl AsFd,
    ) -> Result<SessionInfo, ClientError> {
        match self.call(&Request::Start(req), &[log_file.as_fd()])? {
            Response::Session(s) => Ok(s),
            _ => Err(ClientError::Unexpected("start")),
        }
    }

    /// Stops a session; with `wait`, returns once it is STOPPED.
    pub fn stop(&mut self, target: &SessionRef, wait: bool) -> Result<SessionInfo, ClientError> {
        self.session(
            Request::Stop {
                target: target.clone(),
                wait,
            },
            "stop",
        )
    }

    /// Writes everything committed so far to the session's log file.
    pub fn flush(&mut self, target: &SessionRef) -> Result<SessionInfo, ClientError> {
        self.session(
            Request::Flush {
                target: target.clone(),
            },
            "flush",
        )
    }

    /// Properties and counters of one session.
    pub fn query(&mut self, target: &SessionRef) -> Result<SessionInfo, ClientError> {
        self.session(
            Request::Query {
                target: target.clone(),
            },
            "query",
        )
    }

    /// Takes a STOPPED session off the list.
    pub fn remove(&mut self, target: &SessionRef) -> Result<SessionInfo, ClientError> {
        self.session(
            Request::Remove {
                target: target.clone(),
            },
            "remove",
        )
    }

    /// Every session, by LoggerID.
    pub fn list(&mut self) -> Result<Vec<SessionInfo>, ClientError> {
        match self.call(&Request::List, &[])? {
            Response::Sessions(s) => Ok(s),
            _ => Err(ClientError::Unexpected("list")),
        }
    }

    /// Every registered provider.
    pub fn providers(&mut self) -> Result<Vec<ProviderInfo>, ClientError> {
        match self.call(&Request::Providers, &[])? {
            Response::Providers(p) => Ok(p),
            _ => Err(ClientError::Unexpected("providers")),
        }
    }
}
