//! The control thread: the daemon's one event loop. Every state change
//! (sessions, providers, regions, routes) happens here, in the order events
//! arrive; the drain and writer threads only report back through [`Event`].

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use ferret_abi::Level;
use ferret_abi::proto::{
    ErrorCode, ErrorReply, PROTO_MAGIC, ProviderInfo, RegionGrant, Request, Response, Role,
    SessionRef, SessionState, StartRequest,
};
use ferret_abi::shm::{ABI_MAJOR, ABI_MINOR, RegionParams};
use ferret_format::{FileHeader, mode};
use ferret_session::{
    ProviderEntry, RegionId, Registry, RouteTable, Session, SessionKey, SessionTable, enable_words,
};

use crate::clock::{Clock, unix_now_ns};
use crate::drain::{DrainCmd, SessionSetup};
use crate::shm::ShmRegion;
use crate::writer::WriteCmd;

/// Identifies one client connection.
pub(crate) type ConnId = u64;

/// The kernel's word on who is at the other end of a connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer {
    pub(crate) pid: u32,
    pub(crate) uid: u32,
}

/// What a connection thread sends back to its client.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A message alone.
    Msg(Response),
    /// A region grant, with the region's memfd and eventfd attached.
    Region(Response, Arc<ShmRegion>),
}

/// Everything the control thread reacts to.
#[derive(Debug)]
pub(crate) enum Event {
    /// A client's request, with the descriptors it carried.
    Request {
        conn: ConnId,
        peer: Peer,
        req: Request,
        fds: Vec<OwnedFd>,
        reply: Sender<Reply>,
    },
    /// A packet that did not decode.
    Malformed { reply: Sender<Reply>, error: String },
    /// A client hung up.
    Closed { conn: ConnId },
    /// The writer wrote everything a flush asked for.
    Flushed { key: SessionKey, token: u64 },
    /// The writer wrote a session's trailer and closed its file.
    Stopped { key: SessionKey },
    /// SIGTERM or SIGINT.
    Shutdown,
}

#[derive(Debug, Default)]
struct ConnInfo {
    role: Option<Role>,
    region: Option<RegionId>,
}

pub(crate) struct Control {
    events: Receiver<Event>,
    drain: Sender<DrainCmd>,
    drain_wake: Arc<OwnedFd>,
    writer: Sender<WriteCmd>,
    clock: Clock,
    region_params: RegionParams,
    sessions: SessionTable,
    registry: Registry,
    conns: HashMap<ConnId, ConnInfo>,
    regions: HashMap<RegionId, Arc<ShmRegion>>,
    next_region: u64,
    next_token: u64,
    routes_epoch: u64,
    flush_waiters: HashMap<u64, Sender<Reply>>,
    stop_waiters: HashMap<SessionKey, Vec<Sender<Reply>>>,
    shutting_down: bool,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> Response {
    Response::Error(ErrorReply {
        code,
        message: message.into(),
    })
}

fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

impl Control {
    pub(crate) fn new(
        events: Receiver<Event>,
        drain: Sender<DrainCmd>,
        drain_wake: Arc<OwnedFd>,
        writer: Sender<WriteCmd>,
        clock: Clock,
        region_params: RegionParams,
        session_limit: usize,
    ) -> Control {
        Control {
            events,
            drain,
            drain_wake,
            writer,
            clock,
            region_params,
            sessions: SessionTable::new(session_limit),
            registry: Registry::default(),
            conns: HashMap::new(),
            regions: HashMap::new(),
            next_region: 1,
            next_token: 1,
            routes_epoch: 0,
            flush_waiters: HashMap::new(),
            stop_waiters: HashMap::new(),
            shutting_down: false,
        }
    }

    /// Runs until shutdown has stopped every session.
    pub(crate) fn run(mut self) {
        while let Ok(event) = self.events.recv() {
            self.handle(event);
            if self.shutting_down && !self.sessions.iter().any(Session::is_active) {
                return;
            }
        }
    }

    fn to_drain(&self, cmd: DrainCmd) {
        let _ = self.drain.send(cmd);
        let _ = rustix::io::write(self.drain_wake.as_ref(), &1u64.to_ne_bytes());
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Request {
                conn,
                peer,
                req,
                fds,
                reply,
            } => {
                if let Some(r) = self.request(conn, peer, req, fds, &reply) {
                    let _ = reply.send(r);
                }
            }
            Event::Malformed { reply, error } => {
                let _ = reply.send(Reply::Msg(refuse(
                    ErrorCode::BadRequest,
                    format!("malformed request: {error}"),
                )));
            }
            Event::Closed { conn } => {
                if let Some(info) = self.conns.remove(&conn) {
                    if let Some(id) = info.region {
                        // The drain gets the close before the new routes, so
                        // it drains the region with the routes still in force.
                        self.to_drain(DrainCmd::CloseRegion(id));
                        self.registry.remove_region(id);
                        self.regions.remove(&id);
                        self.publish_routes();
                    }
                }
            }
            Event::Flushed { key, token } => {
                if let Some(reply) = self.flush_waiters.remove(&token) {
                    let info = self
                        .sessions
                        .iter()
                        .find(|s| s.key == key)
                        .map(Session::info);
                    let resp = match info {
                        Some(i) => Response::Session(i),
                        None => refuse(ErrorCode::NotFound, "the session went away during flush"),
                    };
                    let _ = reply.send(Reply::Msg(resp));
                }
            }
            Event::Stopped { key } => {
                if let Some(s) = self.sessions.by_key_mut(key) {
                    s.state = SessionState::Stopped;
                    s.stopped_unix_ns = unix_now_ns();
                    let c = s.counters.snapshot();
                    eprintln!(
                        "ferretd: session '{}' (LoggerID {}) STOPPED: {} events, {} lost, {} buffers written",
                        s.name, s.logger_id, c.events, c.events_lost, c.buffers_written
                    );
                    let info = s.info();
                    for w in self.stop_waiters.remove(&key).unwrap_or_default() {
                        let _ = w.send(Reply::Msg(Response::Session(info.clone())));
                    }
                }
            }
            Event::Shutdown => {
                eprintln!("ferretd: shutting down; stopping every running session");
                self.shutting_down = true;
                let running: Vec<u32> = self
                    .sessions
                    .iter()
                    .filter(|s| s.state == SessionState::Running)
                    .map(|s| s.logger_id)
                    .collect();
                for id in running {
                    let _ = self.begin_stop(&SessionRef::Id(id));
                }
            }
        }
    }

    /// Handles one request; `None` when the answer comes later.
    fn request(
        &mut self,
        conn: ConnId,
        peer: Peer,
        req: Request,
        fds: Vec<OwnedFd>,
        reply: &Sender<Reply>,
    ) -> Option<Reply> {
        let role = self.conns.get(&conn).and_then(|c| c.role);
        let msg = |r| Some(Reply::Msg(r));
        match (req, role) {
            (Request::Hello(h), None) => {
                if h.magic != PROTO_MAGIC {
                    return msg(refuse(
                        ErrorCode::BadRequest,
                        "not a Ferret client (bad magic)",
                    ));
                }
                if h.major != ABI_MAJOR {
                    return msg(refuse(
                        ErrorCode::Version,
                        format!(
                            "client speaks protocol {}, this daemon speaks {ABI_MAJOR}; use matching versions",
                            h.major
                        ),
                    ));
                }
                match h.role {
                    Role::Controller => {
                        self.conns.entry(conn).or_default().role = Some(Role::Controller);
                        msg(Response::Hello {
                            major: ABI_MAJOR,
                            minor: ABI_MINOR,
                            pid: std::process::id(),
                        })
                    }
                    Role::Provider => Some(self.attach_provider(conn, peer)),
                }
            }
            (Request::Hello(_), Some(_)) => msg(refuse(
                ErrorCode::BadRequest,
                "hello was already said on this connection",
            )),
            (_, None) => msg(refuse(
                ErrorCode::BadRequest,
                "the first message on a connection must be hello",
            )),
            (Request::RegisterProvider { slot, name, guid }, Some(Role::Provider)) => {
                msg(self.register_provider(conn, peer, slot, name, guid))
            }
            (_, Some(Role::Provider)) => msg(refuse(
                ErrorCode::BadRequest,
                "provider connections may only register providers",
            )),
            (Request::RegisterProvider { .. }, Some(Role::Controller)) => msg(refuse(
                ErrorCode::BadRequest,
                "only provider connections register providers",
            )),
            (Request::Start(start), Some(Role::Controller)) => msg(self.start(peer, start, fds)),
            (Request::Stop { target, wait }, Some(Role::Controller)) => {
                self.stop(peer, target, wait, reply)
            }
            (Request::Flush { target }, Some(Role::Controller)) => self.flush(peer, target, reply),
            (Request::Query { target }, Some(Role::Controller)) => {
                msg(match self.sessions.find(&target) {
                    Ok(s) => Response::Session(s.info()),
                    Err(e) => Response::Error(e),
                })
            }
            (Request::List, Some(Role::Controller)) => msg(Response::Sessions(
                self.sessions.iter().map(Session::info).collect(),
            )),
            (Request::Remove { target }, Some(Role::Controller)) => {
                if let Err(e) = self.check_owner(peer, &target) {
                    return msg(Response::Error(*e));
                }
                msg(match self.sessions.remove(&target) {
                    Ok(s) => {
                        eprintln!(
                            "ferretd: session '{}' (LoggerID {}) removed",
                            s.name, s.logger_id
                        );
                        Response::Session(s.info())
                    }
                    Err(e) => Response::Error(e),
                })
            }
            (Request::Providers, Some(Role::Controller)) => {
                msg(Response::Providers(self.providers()))
            }
        }
    }

    fn attach_provider(&mut self, conn: ConnId, peer: Peer) -> Reply {
        let id = RegionId(self.next_region);
        self.next_region += 1;
        let region = match ShmRegion::create(id, peer.pid, self.region_params, self.clock.kind) {
            Ok(r) => Arc::new(r),
            Err(e) => {
                return Reply::Msg(refuse(
                    ErrorCode::Resources,
                    format!("cannot create shared memory for the provider: {e}"),
                ));
            }
        };
        let process = process_name(peer.pid);
        self.regions.insert(id, region.clone());
        let info = self.conns.entry(conn).or_default();
        info.role = Some(Role::Provider);
        info.region = Some(id);
        self.to_drain(DrainCmd::AddRegion {
            region: region.clone(),
            process,
        });
        let grant = RegionGrant {
            region_size: region.layout.region_size,
            has_eventfd: true,
        };
        Reply::Region(Response::Region(grant), region)
    }

    fn register_provider(
        &mut self,
        conn: ConnId,
        peer: Peer,
        slot: u32,
        name: String,
        guid: ferret_abi::Guid,
    ) -> Response {
        let Some(id) = self.conns.get(&conn).and_then(|c| c.region) else {
            return refuse(ErrorCode::BadRequest, "no region on this connection");
        };
        let entry = ProviderEntry {
            name: name.clone(),
            guid,
            pid: peer.pid,
            process: process_name(peer.pid),
        };
        if let Err((code, message)) = self.registry.register(id, slot, entry) {
            return refuse(code, message);
        }
        if let Some(region) = self.regions.get(&id) {
            region.set_enable(slot, enable_words(&self.sessions, &name));
        }
        self.publish_routes();
        Response::ProviderRegistered { slot }
    }

    /// Sends the drain a fresh route table.
    fn publish_routes(&mut self) {
        self.routes_epoch += 1;
        let table = RouteTable::build(self.routes_epoch, &self.sessions, &self.registry);
        self.to_drain(DrainCmd::Routes(Arc::new(table)));
    }

    /// Rewrites the enable slots of every process that registered one of `names`.
    fn update_enables<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            let words = enable_words(&self.sessions, name);
            for (region, slot, _) in self.registry.by_name(name) {
                if let Some(r) = self.regions.get(&region) {
                    r.set_enable(slot, words);
                }
            }
        }
    }

    fn check_owner(&self, peer: Peer, target: &SessionRef) -> Result<(), Box<ErrorReply>> {
        let s = self.sessions.find(target)?;
        if peer.uid == 0 || peer.uid == s.owner_uid {
            Ok(())
        } else {
            Err(Box::new(ErrorReply {
                code: ErrorCode::Permission,
                message: format!(
                    "session '{}' belongs to uid {}; only its owner or root may control it",
                    s.name, s.owner_uid
                ),
            }))
        }
    }

    fn start(&mut self, peer: Peer, req: StartRequest, mut fds: Vec<OwnedFd>) -> Response {
        if fds.len() != 1 {
            return refuse(
                ErrorCode::BadRequest,
                "start must carry exactly one log file descriptor",
            );
        }
        let file = File::from(fds.remove(0));
        if let Err(e) = check_log_file(&file) {
            return refuse(
                ErrorCode::Invalid,
                format!("log file '{}': {e}", req.log_file),
            );
        }
        let clock = self.clock.info();
        let session =
            match self
                .sessions
                .insert(&req, peer.uid, self.clock.name(), clock.anchor_unix_ns)
            {
                Ok(s) => s,
                Err(e) => return Response::Error(e),
            };
        let (key, logger_id) = (session.key, session.logger_id);
        let counters = session.counters.clone();
        let header = FileHeader {
            session_name: req.name.clone(),
            host: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            logger_id,
            buffer_size: req.buffer_kib * 1024,
            log_mode: mode::SEQUENTIAL,
            slot_count: 0,
            file_index: 0,
            start_unix_ns: clock.anchor_unix_ns,
            clock,
            daemon_pid: std::process::id(),
        };
        let bytes = header.encode();
        if let Err(e) = file.write_all_at(&bytes, 0) {
            if let Some(s) = self.sessions.by_key_mut(key) {
                s.state = SessionState::Stopped;
            }
            let _ = self.sessions.remove(&SessionRef::Id(logger_id));
            return refuse(
                ErrorCode::Invalid,
                format!("cannot write the log file '{}': {e}", req.log_file),
            );
        }
        counters
            .bytes_written
            .store(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let _ = self.writer.send(WriteCmd::Open {
            key,
            file,
            data_offset: header.data_offset(),
            buffer_size: header.buffer_size as u64,
            counters: counters.clone(),
        });
        self.to_drain(DrainCmd::AddSession(SessionSetup {
            key,
            buffer_size: header.buffer_size as usize,
            max_buffers: req.max_buffers as usize,
            flush_timer: (req.flush_timer_ms > 0)
                .then(|| Duration::from_millis(req.flush_timer_ms as u64)),
            counters,
        }));
        self.publish_routes();
        self.update_enables(req.providers.iter().map(|p| p.name.as_str()));
        eprintln!(
            "ferretd: session '{}' (LoggerID {logger_id}) started by uid {}, logging to {}",
            req.name, peer.uid, req.log_file
        );
        match self.sessions.find(&SessionRef::Id(logger_id)) {
            Ok(s) => Response::Session(s.info()),
            Err(e) => Response::Error(e),
        }
    }

    /// Moves a RUNNING session to STOPPING: disable its providers, then ask
    /// the drain for the final pass. Returns the session's key.
    fn begin_stop(&mut self, target: &SessionRef) -> Result<SessionKey, ErrorReply> {
        let s = self.sessions.find_mut(target)?;
        s.state = SessionState::Stopping;
        let key = s.key;
        let names: Vec<String> = s.providers.iter().map(|p| p.name.clone()).collect();
        // Disable first, so that the drain's final pass sees everything that
        // providers committed before they saw the change.
        self.update_enables(names.iter().map(String::as_str));
        self.to_drain(DrainCmd::Stop { key });
        self.publish_routes();
        Ok(key)
    }

    fn stop(
        &mut self,
        peer: Peer,
        target: SessionRef,
        wait: bool,
        reply: &Sender<Reply>,
    ) -> Option<Reply> {
        if let Err(e) = self.check_owner(peer, &target) {
            return Some(Reply::Msg(Response::Error(*e)));
        }
        let (state, name, key) = match self.sessions.find(&target) {
            Ok(s) => (s.state, s.name.clone(), s.key),
            Err(e) => return Some(Reply::Msg(Response::Error(e))),
        };
        match state {
            SessionState::Running => {
                if let Err(e) = self.begin_stop(&target) {
                    return Some(Reply::Msg(Response::Error(e)));
                }
            }
            SessionState::Stopping if !wait => {
                return Some(Reply::Msg(refuse(
                    ErrorCode::WrongState,
                    format!("session '{name}' is already stopping"),
                )));
            }
            SessionState::Stopping => {}
            SessionState::Stopped => {
                return Some(Reply::Msg(refuse(
                    ErrorCode::WrongState,
                    format!(
                        "session '{name}' is already STOPPED; 'ferret query {name}' shows its counters"
                    ),
                )));
            }
        }
        if wait {
            self.stop_waiters
                .entry(key)
                .or_default()
                .push(reply.clone());
            None
        } else {
            let info = self.sessions.find(&target).map(Session::info);
            Some(Reply::Msg(match info {
                Ok(i) => Response::Session(i),
                Err(e) => Response::Error(e),
            }))
        }
    }

    fn flush(&mut self, peer: Peer, target: SessionRef, reply: &Sender<Reply>) -> Option<Reply> {
        if let Err(e) = self.check_owner(peer, &target) {
            return Some(Reply::Msg(Response::Error(*e)));
        }
        let s = match self.sessions.find(&target) {
            Ok(s) => s,
            Err(e) => return Some(Reply::Msg(Response::Error(e))),
        };
        if s.state != SessionState::Running {
            return Some(Reply::Msg(refuse(
                ErrorCode::WrongState,
                format!(
                    "session '{}' is {}; only running sessions flush",
                    s.name,
                    s.state.name()
                ),
            )));
        }
        let key = s.key;
        let token = self.next_token;
        self.next_token += 1;
        self.flush_waiters.insert(token, reply.clone());
        self.to_drain(DrainCmd::Flush { key, token });
        None
    }

    fn providers(&self) -> Vec<ProviderInfo> {
        self.registry
            .iter()
            .map(|(_, _, e)| {
                let enabling: Vec<&Session> = self
                    .sessions
                    .iter()
                    .filter(|s| {
                        s.state == SessionState::Running
                            && s.providers.iter().any(|p| p.name == e.name)
                    })
                    .collect();
                let level = enabling
                    .iter()
                    .flat_map(|s| s.providers.iter().filter(|p| p.name == e.name))
                    .map(|p| p.filter.level)
                    .max();
                ProviderInfo {
                    name: e.name.clone(),
                    guid: e.guid,
                    pid: e.pid,
                    process: e.process.clone(),
                    sessions: enabling.iter().map(|s| s.logger_id).collect(),
                    level: level.map(|l: Level| l),
                }
            })
            .collect()
    }
}

/// A log file the daemon will write: a regular, empty file open for writing.
fn check_log_file(file: &File) -> Result<(), String> {
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() != 0 {
        return Err("the file is not empty".into());
    }
    let flags = rustix::fs::fcntl_getfl(file).map_err(|e| e.to_string())?;
    let mode = flags & rustix::fs::OFlags::RWMODE;
    if mode != rustix::fs::OFlags::WRONLY && mode != rustix::fs::OFlags::RDWR {
        return Err("the descriptor is not open for writing".into());
    }
    Ok(())
}
