//! The typed control client for Ferret's session daemon, and the packet
//! transport every peer of the control socket uses.
//!
//! The CLI, the viewer and the tests control sessions through [`Client`];
//! the daemon and the provider library use [`transport::Conn`] for framing
//! and descriptor passing. This crate does not start daemons by itself:
//! [`Client::connect_or_start`] calls back into the caller to do that, since
//! only the caller knows which binary to run.

pub mod output;
pub mod plan;
pub mod remote;
/// The packet transport, re-exported for controllers that use it directly.
pub use ferret_transport as transport;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferret_abi::proto::{
    ChangeKind, ErrorCode, ErrorReply, Hello, PROTO_MAGIC, ProviderInfo, ProviderSpec, Request,
    Response, Role, SessionInfo, SessionRef, StartRequest, UpdateRequest,
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
    /// What listens on the socket, or its directory, is not this user's or
    /// root's: nothing was sent to it.
    #[error("{0}")]
    Untrusted(String),
    /// The daemon refused the request.
    #[error("{0}")]
    Daemon(ErrorReply),
    /// The connection failed.
    #[error("talking to the daemon failed: {0}")]
    Transport(#[from] TransportError),
    /// A target computer could not be reached, or its link ended.
    #[error("{0}")]
    Target(#[from] remote::LinkError),
    /// The request needs something a target's link cannot do yet.
    #[error("{0}")]
    NotOverTarget(String),
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

/// The most sessions [`Client::list`] accepts: far above what a daemon
/// lists (4096 by default), so only a daemon gone wrong reaches it.
const MAX_LISTED: usize = 1 << 20;

/// The most providers [`Client::providers`] accepts: every slot of every
/// connection a daemon allows, and more.
const MAX_PROVIDERS_LISTED: usize = 1 << 22;

/// A controller's connection to the daemon.
#[derive(Debug)]
pub struct Client {
    conn: Chan,
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
        let conn = Conn::connect_to_daemon(path).map_err(|e| {
            let e = match e {
                transport::ConnectError::Untrusted(why) => return ClientError::Untrusted(why),
                transport::ConnectError::Io(e) => e,
            };
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
        Client::hello(Chan::Local(conn))
    }

    /// Connects to the daemon of a target computer over SSH and says hello.
    pub fn connect_target(target: &remote::Target) -> Result<Client, ClientError> {
        Client::hello(Chan::Remote(remote::Link::open(target)?))
    }

    /// The target computer this client controls, if not this host's daemon.
    pub fn target(&self) -> Option<&remote::Target> {
        match &self.conn {
            Chan::Local(_) => None,
            Chan::Remote(l) => Some(l.target()),
        }
    }

    /// Copies a file of the target's (an absolute path there, read as the
    /// remote user) into `out`: how a target's logs come home. Returns its
    /// size.
    pub fn fetch(&mut self, path: &str, out: &mut dyn io::Write) -> Result<u64, ClientError> {
        match &self.conn {
            Chan::Local(_) => Err(ClientError::NotOverTarget(format!(
                "{path} is on this host already; fetching is for files of a --target"
            ))),
            Chan::Remote(link) => Ok(link.fetch(path, out)?),
        }
    }

    fn hello(conn: Chan) -> Result<Client, ClientError> {
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
        match self.conn.recv()? {
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

    /// Starts a session. `log_file` is the log file the caller opened (for
    /// append mode, open for reading and writing), the directory for
    /// new-file mode, and `None` for modes without a file. Returns the
    /// session and this controller's token for it.
    pub fn start(
        &mut self,
        req: StartRequest,
        log_file: Option<BorrowedFd<'_>>,
    ) -> Result<Started, ClientError> {
        let fds: Vec<BorrowedFd<'_>> = log_file.into_iter().collect();
        match self.call(&Request::Start(req), &fds)? {
            Response::Started { session, token } => Ok(Started { session, token }),
            _ => Err(ClientError::Unexpected("start")),
        }
    }

    /// Starts the session `plan` describes: checks it, opens its log file
    /// (or directory) with the controller's rules, and starts it; a start
    /// the daemon refuses leaves no file this call created.
    pub fn start_plan(&mut self, plan: &plan::StartPlan) -> Result<Started, StartError> {
        let req = plan.request()?;
        let opening = match &plan.file {
            Some(path) => self.open_file(&plan::FileRequest::Start {
                mode: plan.mode,
                path: path.clone(),
                overwrite: plan.overwrite,
            })?,
            None => Opening::Here(plan::Opened::None),
        };
        match self.start(req, opening.fd()) {
            Ok(started) => Ok(started),
            Err(e) => {
                opening.undo();
                Err(e.into())
            }
        }
    }

    /// Opens the file a request will carry where the daemon runs: here, or
    /// on the target by its bridge (which then passes the descriptor with
    /// the next request, and removes a file it created if the daemon
    /// refuses it).
    pub fn open_file(&mut self, what: &plan::FileRequest) -> Result<Opening, StartError> {
        match &self.conn {
            Chan::Local(_) => Ok(Opening::Here(what.open()?)),
            Chan::Remote(link) => match link.open_on_target(what) {
                Ok(()) => Ok(Opening::There),
                Err(remote::OpenError::Refused(why)) => Err(plan::PlanError(why).into()),
                Err(remote::OpenError::Link(e)) => Err(ClientError::Target(e).into()),
            },
        }
    }

    /// Stops a session; with `wait`, returns once it is STOPPED.
    pub fn stop(&mut self, target: &SessionRef, wait: bool) -> Result<SessionInfo, ClientError> {
        self.session(
            Request::Stop {
                target: target.clone(),
                wait,
                only_token: None,
            },
            "stop",
        )
    }

    /// Stops a session only if this controller started it (`token` is what
    /// [`Client::start`] returned); otherwise the daemon refuses with
    /// [`ErrorCode::Permission`] and a message naming the command that stops it.
    pub fn stop_mine(
        &mut self,
        target: &SessionRef,
        token: u64,
        wait: bool,
    ) -> Result<SessionInfo, ClientError> {
        self.session(
            Request::Stop {
                target: target.clone(),
                wait,
                only_token: Some(token),
            },
            "stop",
        )
    }

    /// Changes a running session's flush timer, maximum buffers, log file
    /// (`new_file` carries the new file's descriptor) or providers.
    pub fn update(
        &mut self,
        target: &SessionRef,
        update: UpdateRequest,
        new_file: Option<BorrowedFd<'_>>,
    ) -> Result<SessionInfo, ClientError> {
        let fds: Vec<BorrowedFd<'_>> = new_file.into_iter().collect();
        let req = Request::Update {
            target: target.clone(),
            update,
        };
        match self.call(&req, &fds)? {
            Response::Session(s) => Ok(s),
            _ => Err(ClientError::Unexpected("update")),
        }
    }

    /// Enables a provider in a running session, or changes its filter.
    pub fn enable(
        &mut self,
        target: &SessionRef,
        provider: ProviderSpec,
    ) -> Result<SessionInfo, ClientError> {
        self.session(
            Request::Enable {
                target: target.clone(),
                provider,
            },
            "enable",
        )
    }

    /// Stops a running session from enabling a provider.
    pub fn disable(
        &mut self,
        target: &SessionRef,
        provider: &str,
    ) -> Result<SessionInfo, ClientError> {
        self.session(
            Request::Disable {
                target: target.clone(),
                provider: provider.to_string(),
            },
            "disable",
        )
    }

    /// Saves an in-memory session's buffers to `file` (empty, opened with
    /// [`Client::open_file`]: `None` when a target's bridge holds it)
    /// without stopping it. Returns the session, the buffers saved and the
    /// file's size.
    pub fn snapshot(
        &mut self,
        target: &SessionRef,
        path: &str,
        file: Option<BorrowedFd<'_>>,
    ) -> Result<(SessionInfo, u64, u64), ClientError> {
        let req = Request::Snapshot {
            target: target.clone(),
            path: path.to_string(),
        };
        let fds: Vec<BorrowedFd<'_>> = file.into_iter().collect();
        match self.call(&req, &fds)? {
            Response::Snapshot {
                session,
                buffers,
                bytes,
            } => Ok((session, buffers, bytes)),
            _ => Err(ClientError::Unexpected("snapshot")),
        }
    }

    /// Turns this connection into a watch: every session change from now on.
    /// The first changes are [`ChangeKind::Present`], one per listed session.
    pub fn watch(self) -> Result<Watch, ClientError> {
        self.conn.send(&Request::Watch, &[])?;
        Ok(Watch {
            conn: self.conn,
            known: BTreeMap::new(),
            unseen: None,
            pending: VecDeque::new(),
        })
    }

    /// Turns this connection into a real-time consumer of a session.
    /// Returns the session and the encoded file header its buffers go with.
    pub fn tail(mut self, target: &SessionRef) -> Result<Tail, ClientError> {
        let req = Request::Tail {
            target: target.clone(),
        };
        match self.call(&req, &[])? {
            Response::RtStart { session, header } => Ok(Tail {
                conn: self.conn,
                session,
                header,
                ended: false,
            }),
            _ => Err(ClientError::Unexpected("tail")),
        }
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

    /// Every session, by LoggerID, however many: the daemon answers a page
    /// at a time (each fits one message) and this asks until the last.
    ///
    /// The pages are taken one after another, not at one instant: a
    /// session that exists throughout is listed exactly once, in its state
    /// when its page was taken; one started or removed meanwhile may or may
    /// not be listed.
    pub fn list(&mut self) -> Result<Vec<SessionInfo>, ClientError> {
        let mut all: Vec<SessionInfo> = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = match self.call(&Request::ListPage { after }, &[])? {
                Response::SessionsPage { sessions, next } => (sessions, next),
                _ => return Err(ClientError::Unexpected("list")),
            };
            // The cursor must move forward, or a daemon that repeats a page
            // would keep this loop (and its memory) growing for ever.
            let floor = all.last().map(|s| s.logger_id).or(after);
            if page.iter().any(|s| floor.is_some_and(|f| s.logger_id <= f))
                || next.is_some_and(|n| floor.is_some_and(|f| n <= f))
                || page.windows(2).any(|w| w[0].logger_id >= w[1].logger_id)
            {
                return Err(ClientError::Unexpected("list (pages out of order)"));
            }
            all.extend(page);
            if all.len() > MAX_LISTED {
                return Err(ClientError::Unexpected("list (too many sessions)"));
            }
            match next {
                Some(n) => after = Some(n),
                None => return Ok(all),
            }
        }
    }

    /// Every registered provider, however many, a page at a time as
    /// [`Client::list`] does (and with the same promise for providers that
    /// come and go meanwhile).
    pub fn providers(&mut self) -> Result<Vec<ProviderInfo>, ClientError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = match self.call(&Request::ProvidersPage { after }, &[])? {
                Response::ProvidersPage { providers, next } => (providers, next),
                _ => return Err(ClientError::Unexpected("providers")),
            };
            if next.is_some_and(|n| after.is_some_and(|a| n <= a)) {
                return Err(ClientError::Unexpected("providers (pages out of order)"));
            }
            all.extend(page);
            if all.len() > MAX_PROVIDERS_LISTED {
                return Err(ClientError::Unexpected("providers (too many)"));
            }
            match next {
                Some(n) => after = Some(n),
                None => return Ok(all),
            }
        }
    }
}

/// Why a planned start did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The plan, or its log file, is refused before the daemon is asked.
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    /// The daemon refused, or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A started session and the token that marks this controller as its starter.
#[derive(Clone, Debug)]
pub struct Started {
    /// The session.
    pub session: SessionInfo,
    /// The controller token (see [`Client::stop_mine`]).
    pub token: u64,
}

/// What a watch reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// One change, or one session of the list (`Present`).
    Change(ChangeKind, Box<SessionInfo>),
    /// The daemon skipped `skipped` changes because this client read too
    /// slowly for them to fit the daemon's queue for it. What follows,
    /// up to [`WatchEvent::Resynced`], brings the watch back to the truth:
    /// every session as a `Present` change, new changes among them, and a
    /// `Removed` change for each session known before that is gone.
    Lagged {
        /// Changes skipped.
        skipped: u64,
    },
    /// The watch is back in step after a [`WatchEvent::Lagged`].
    Resynced,
}

/// A connection that streams session changes.
#[derive(Debug)]
pub struct Watch {
    conn: Chan,
    /// The last state of each session this watch was told about, to report
    /// the ones a resync no longer lists as removed.
    known: BTreeMap<u32, SessionInfo>,
    /// During a resync: the sessions known before it not mentioned since.
    unseen: Option<BTreeSet<u32>>,
    /// Events made up here, reported before the next message is read.
    pending: VecDeque<WatchEvent>,
}

impl Watch {
    /// Waits for the next change.
    // A blocking receive that can fail, not an iterator step.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<WatchEvent, ClientError> {
        if let Some(e) = self.pending.pop_front() {
            return Ok(e);
        }
        match self.conn.recv()? {
            Response::Change { kind, session } => {
                let id = session.logger_id;
                if let Some(unseen) = &mut self.unseen {
                    unseen.remove(&id);
                }
                if kind == ChangeKind::Removed {
                    self.known.remove(&id);
                } else if self.known.len() < MAX_LISTED || self.known.contains_key(&id) {
                    self.known.insert(id, session.clone());
                }
                Ok(WatchEvent::Change(kind, Box::new(session)))
            }
            Response::WatchLagged { skipped } => {
                self.unseen = Some(self.known.keys().copied().collect());
                Ok(WatchEvent::Lagged { skipped })
            }
            Response::WatchResynced => {
                for id in self.unseen.take().unwrap_or_default() {
                    if let Some(session) = self.known.remove(&id) {
                        self.pending
                            .push_back(WatchEvent::Change(ChangeKind::Removed, Box::new(session)));
                    }
                }
                self.pending.push_back(WatchEvent::Resynced);
                Ok(self.pending.pop_front().unwrap_or(WatchEvent::Resynced))
            }
            Response::Error(e) => Err(ClientError::Daemon(e)),
            _ => Err(ClientError::Unexpected("watch")),
        }
    }

    /// Gives up waiting after `timeout` (None: wait forever).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.conn
            .set_recv_timeout(timeout)
            .map_err(|e| ClientError::Transport(TransportError::Io(e)))
    }
}

/// What a real-time consumer receives.
#[derive(Clone, Debug)]
pub enum TailItem {
    /// One sealed buffer of records, and what this consumer missed so far.
    Data {
        /// The buffer (docs/FORMAT.md, "Buffers").
        buffer: Vec<u8>,
        /// Buffers missed so far.
        missed_buffers: u64,
        /// Events in them.
        missed_events: u64,
    },
    /// The session is STOPPED; nothing follows.
    End {
        /// The final state and counters.
        session: Box<SessionInfo>,
        /// Buffers missed in all.
        missed_buffers: u64,
        /// Events in them.
        missed_events: u64,
    },
}

/// A real-time consumer's connection.
#[derive(Debug)]
pub struct Tail {
    conn: Chan,
    /// The session when the consumer attached.
    pub session: SessionInfo,
    /// The encoded file header for decoding the buffers.
    pub header: Vec<u8>,
    ended: bool,
}

/// Ends a [`Tail`] from another thread: a consumer blocked waiting for a
/// quiet session's next buffer wakes with an error instead of holding the
/// connection until that buffer comes.
#[derive(Debug)]
pub struct TailCloser {
    conn: Chan,
}

impl TailCloser {
    /// Shuts the consumer's connection down; its `next` then fails.
    pub fn close(&self) {
        self.conn.shutdown();
    }
}

impl Tail {
    /// A handle that can end this consumer from another thread.
    pub fn closer(&self) -> io::Result<TailCloser> {
        Ok(TailCloser {
            conn: self.conn.try_clone()?,
        })
    }

    /// Waits for the next buffer or the end; `None` after the end.
    // A blocking receive that can fail, not an iterator step.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<TailItem>, ClientError> {
        if self.ended {
            return Ok(None);
        }
        match self.conn.recv()? {
            Response::RtData {
                buffer,
                missed_buffers,
                missed_events,
            } => Ok(Some(TailItem::Data {
                buffer,
                missed_buffers,
                missed_events,
            })),
            Response::RtEnd {
                session,
                missed_buffers,
                missed_events,
            } => {
                self.ended = true;
                Ok(Some(TailItem::End {
                    session: Box::new(session),
                    missed_buffers,
                    missed_events,
                }))
            }
            Response::Error(e) => Err(ClientError::Daemon(e)),
            _ => Err(ClientError::Unexpected("tail")),
        }
    }
}

/// A file opened for a request by [`Client::open_file`].
#[derive(Debug)]
pub enum Opening {
    /// Opened here; its descriptor goes with the request.
    Here(plan::Opened),
    /// Opened on the target by its bridge, which holds the descriptor.
    There,
}

impl Opening {
    /// The descriptor to send with the request, if it is here.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Opening::Here(o) => o.fd(),
            Opening::There => None,
        }
    }

    /// Leaves no file behind for a request that failed. The bridge does
    /// this itself for a file on a target.
    pub fn undo(self) {
        if let Opening::Here(o) = self {
            o.undo();
        }
    }
}

/// The channel a client talks over: this host's socket, or a target's
/// SSH link.
#[derive(Debug)]
enum Chan {
    Local(Conn),
    Remote(remote::Link),
}

impl Chan {
    fn send(&self, req: &Request, fds: &[BorrowedFd<'_>]) -> Result<(), ClientError> {
        match self {
            Chan::Local(c) => Ok(c.send(req, fds)?),
            Chan::Remote(link) => {
                if !fds.is_empty() {
                    return Err(ClientError::NotOverTarget(format!(
                        "target {}: a descriptor cannot cross to a target; the file must be opened there (Client::open_file)",
                        link.target()
                    )));
                }
                let bytes = ferret_abi::proto::encode(req).map_err(TransportError::Proto)?;
                Ok(link.send_packet(&bytes)?)
            }
        }
    }

    fn recv(&mut self) -> Result<Response, ClientError> {
        match self {
            Chan::Local(c) => Ok(c.recv::<Response>()?.0),
            Chan::Remote(link) => {
                match link.recv_packet() {
                    Ok(bytes) => Ok(ferret_abi::proto::decode_untrusted(&bytes)
                        .map_err(TransportError::Proto)?),
                    Err(remote::RecvError::Link(e)) => Err(ClientError::Target(e)),
                    Err(remote::RecvError::TimedOut) => Err(ClientError::Transport(
                        TransportError::Io(io::ErrorKind::WouldBlock.into()),
                    )),
                }
            }
        }
    }

    fn set_recv_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Chan::Local(c) => c.set_timeouts(timeout, None),
            Chan::Remote(link) => {
                link.set_recv_timeout(timeout);
                Ok(())
            }
        }
    }

    fn try_clone(&self) -> io::Result<Chan> {
        Ok(match self {
            Chan::Local(c) => Chan::Local(c.try_clone()?),
            Chan::Remote(link) => Chan::Remote(link.clone()),
        })
    }

    fn shutdown(&self) {
        match self {
            // A socket already shut down or closed by the daemon needs nothing.
            Chan::Local(c) => drop(c.shutdown()),
            Chan::Remote(link) => link.shutdown(),
        }
    }
}
