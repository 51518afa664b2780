//! The control thread: the daemon's one event loop. Every state change
//! (sessions, providers, regions, routes) happens here, in the order events
//! arrive; the drain and writer threads only report back through [`ControlEvent`].

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ferret_abi::Level;
use ferret_abi::proto::{
    ChangeKind, ErrorCode, ErrorReply, FileMode, MAX_SESSION_PROVIDERS, PAGE_BYTES, PROTO_MAGIC,
    ProviderCursor, ProviderInfo, ProviderSpec, RegionGrant, Request, Response, Role, SessionInfo,
    SessionRef, SessionState, StartRequest, UpdateRequest, validate_provider_name,
};
use ferret_abi::shm::{ABI_MAJOR, ABI_MINOR, RegionParams};
use ferret_format::{FileHeader, mode};
use ferret_session::{
    ProviderEntry, RegionId, Registry, RouteTable, Session, SessionKey, SessionTable, StopStep,
    enable_words, no_loss_wait_us, validate_flush_timer, validate_log_path, validate_max_buffers,
    validate_providers, validate_start,
};

use crate::clock::{Clock, unix_now_ns};
use crate::logfile;
use crate::msg::{
    ConnId, Consumer, ControlEvent, DrainCmd, Peer, Prepared, Reply, SessionSetup, SinkSetup,
    StreamItem, WriteCmd,
};
use crate::shm::ShmRegion;
use crate::wire::{refused, session_info};

/// A request waiting for its file work.
struct Preparing {
    uid: u32,
    reply: Sender<Reply>,
    then: Then,
}

/// What a request waiting for its file work goes on with.
enum Then {
    /// Start collecting; `token` is the starting controller's.
    Start {
        key: SessionKey,
        req: StartRequest,
        peer: Peer,
        token: u64,
    },
    /// Apply the update, switching to the prepared file.
    Switch {
        key: SessionKey,
        update: UpdateRequest,
        path: String,
    },
    /// Ask the drain for the snapshot.
    Snapshot { key: SessionKey, header: FileHeader },
}

/// The most requests that may wait for file work at once, in all and per
/// user (see [`Control::may_prepare`]).
const MAX_PREPARING: usize = 64;
const MAX_PREPARING_PER_USER: usize = 16;

#[derive(Debug, Default)]
struct ConnInfo {
    role: Option<Role>,
    region: Option<RegionId>,
}

pub(crate) struct Control {
    /// Holds every region's memfd so that a daemon that dies leaves its
    /// rings recoverable (see `keeper.rs`).
    keeper: Option<crate::keeper::Keeper>,
    events: Receiver<ControlEvent>,
    /// For threads doing file work, to report back.
    events_tx: Sender<ControlEvent>,
    /// Requests waiting for their file work, by token.
    preparing: HashMap<u64, Preparing>,
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
    /// The route table the drain was last sent.
    routes: Arc<RouteTable>,
    flush_waiters: HashMap<u64, Sender<Reply>>,
    snapshot_waiters: HashMap<u64, (SessionKey, Sender<Reply>)>,
    stop_waiters: HashMap<SessionKey, Vec<Sender<Reply>>>,
    /// The header each session's files start from (clock anchors, names).
    headers: HashMap<SessionKey, FileHeader>,
    /// Connections that watch the session list.
    watchers: crate::watch::Watchers,
    /// Real-time consumers by connection.
    consumers: HashMap<ConnId, ConsumerEntry>,
    /// Stopping sessions: whether the writer has finished, and since when.
    stopping: HashMap<SessionKey, ferret_session::Stopping>,
    next_tick: Instant,
    shutting_down: bool,
    control_group: Option<crate::server::ControlGroup>,
}

struct ConsumerEntry {
    key: SessionKey,
    tx: Sender<StreamItem>,
    /// Set once the consumer's connection has forwarded the end marker.
    done: Option<(u64, u64)>,
}

/// How long a stop waits for real-time consumers to take the end of a
/// session before it reports STOPPED anyway (their streams still end
/// after every event, since each is in order).
fn consumer_grace() -> Duration {
    let ms = std::env::var("FERRET_RT_STOP_GRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    Duration::from_millis(ms)
}

/// A token no other controller can guess.
fn new_token() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|f| f.read_exact_at(&mut b, 0))
        .is_err()
    {
        // No /dev/urandom: still unique within this daemon.
        b = (unix_now_ns() ^ ((std::process::id() as u64) << 32)).to_le_bytes();
    }
    u64::from_le_bytes(b).max(1)
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
        events: Receiver<ControlEvent>,
        events_tx: Sender<ControlEvent>,
        drain: Sender<DrainCmd>,
        drain_wake: Arc<OwnedFd>,
        writer: Sender<WriteCmd>,
        clock: Clock,
        config: &crate::Config,
    ) -> Control {
        let region_params = config.region;
        let session_limit = config.session_limit;
        let control_group = config.control_group.clone();
        Control {
            keeper: None,
            events,
            events_tx,
            preparing: HashMap::new(),
            drain,
            drain_wake,
            writer,
            clock,
            region_params,
            sessions: SessionTable::new(session_limit).with_budget(config.buffer_budget),
            registry: Registry::default(),
            conns: HashMap::new(),
            regions: HashMap::new(),
            next_region: 1,
            next_token: 1,
            routes_epoch: 0,
            routes: Arc::new(RouteTable::default()),
            flush_waiters: HashMap::new(),
            snapshot_waiters: HashMap::new(),
            stop_waiters: HashMap::new(),
            headers: HashMap::new(),
            watchers: crate::watch::Watchers::default(),
            consumers: HashMap::new(),
            stopping: HashMap::new(),
            next_tick: Instant::now() + Duration::from_secs(1),
            shutting_down: false,
            control_group,
        }
    }

    /// Hands every region to `keeper` from now on.
    pub(crate) fn with_keeper(mut self, keeper: Option<crate::keeper::Keeper>) -> Control {
        self.keeper = keeper;
        self
    }

    /// Runs until shutdown has stopped every session.
    pub(crate) fn run(mut self) {
        loop {
            let wait = self.next_tick.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(wait) {
                Ok(event) => self.handle(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if Instant::now() >= self.next_tick {
                self.tick();
                self.next_tick = Instant::now() + Duration::from_secs(1);
            }
            if self.shutting_down && !self.sessions.iter().any(Session::is_active) {
                // A clean exit: every session is written, so the keeper has
                // nothing to keep.
                if let Some(k) = &self.keeper {
                    k.send(&crate::keeper::KeeperMsg::Bye, None);
                }
                return;
            }
        }
    }

    /// Once a second: counters to watchers, and stops whose consumers are
    /// past their grace.
    fn tick(&mut self) {
        if !self.watchers.is_empty() {
            let sessions = &self.sessions;
            self.watchers
                .tick(&|after| sessions.iter_after(after).next().map(fitted_info));
        }
        let (grace, now) = (consumer_grace(), Instant::now());
        let late: Vec<SessionKey> = self
            .stopping
            .keys()
            .copied()
            .filter(|&k| self.stop_step(k, now, grace) == StopStep::StoppedPastGrace)
            .collect();
        for key in late {
            eprintln!(
                "ferretd: real-time consumers of session key {} did not take the end within {grace:?}; reporting STOPPED",
                key.0
            );
            self.finish_stop(key);
        }
    }

    /// Tells every watcher about a change; a watcher whose queue has no
    /// room for it skips it, counted, and is sent the whole list again once
    /// its client reads (see `watch.rs`).
    fn notify(&mut self, kind: ChangeKind, session: ferret_abi::proto::SessionInfo) {
        if self.watchers.is_empty() {
            return;
        }
        let sessions = &self.sessions;
        let session = fit_one_message(session);
        self.watchers.notify(kind, &session, &|after| {
            sessions.iter_after(after).next().map(fitted_info)
        });
    }

    fn notify_key(&mut self, kind: ChangeKind, key: SessionKey) {
        if let Some(info) = self.sessions.by_key(key).map(session_info) {
            self.notify(kind, info);
        }
    }

    fn to_drain(&self, cmd: DrainCmd) {
        let _ = self.drain.send(cmd);
        let _ = rustix::io::write(self.drain_wake.as_ref(), &1u64.to_ne_bytes());
    }

    fn handle(&mut self, event: ControlEvent) {
        match event {
            ControlEvent::Request {
                conn,
                peer,
                req,
                fds,
                reply,
            } => {
                if let Some(r) = self.request(conn, &peer, req, fds, &reply) {
                    let _ = reply.send(r);
                }
            }
            ControlEvent::Malformed { reply, error } => {
                let _ = reply.send(Reply::Msg(refuse(
                    ErrorCode::BadRequest,
                    format!("malformed request: {error}"),
                )));
            }
            ControlEvent::Closed { conn } => {
                self.watchers.remove(conn);
                if let Some(c) = self.consumers.remove(&conn) {
                    self.to_drain(DrainCmd::Detach { key: c.key, conn });
                    if let Some(s) = self.sessions.by_key_mut(c.key) {
                        s.consumers = s.consumers.saturating_sub(1);
                    }
                    self.try_finish_stop(c.key);
                }
                if let Some(info) = self.conns.remove(&conn) {
                    if let Some(id) = info.region {
                        // The drain gets the close before the new routes, so
                        // it drains the region with the routes still in force.
                        self.to_drain(DrainCmd::CloseRegion(id));
                        if let Some(k) = &self.keeper {
                            k.send(&crate::keeper::KeeperMsg::Forget { id: id.0 }, None);
                        }
                        self.registry.remove_region(id);
                        self.regions.remove(&id);
                        self.publish_routes();
                    }
                }
            }
            ControlEvent::Flushed { key, token } => {
                if let Some(reply) = self.flush_waiters.remove(&token) {
                    let info = self
                        .sessions
                        .iter()
                        .find(|s| s.key == key)
                        .map(session_info);
                    let resp = match info {
                        Some(i) => Response::Session(i),
                        None => refuse(ErrorCode::NotFound, "the session went away during flush"),
                    };
                    let _ = reply.send(Reply::Msg(resp));
                }
            }
            ControlEvent::Stopped { key } => {
                self.stopping
                    .entry(key)
                    .or_default()
                    .writer_done(Instant::now());
                self.try_finish_stop(key);
            }
            ControlEvent::ConsumerDone {
                conn,
                key,
                missed_buffers,
                missed_events,
            } => {
                if let Some(c) = self.consumers.get_mut(&conn) {
                    c.done = Some((missed_buffers, missed_events));
                }
                self.try_finish_stop(key);
            }
            ControlEvent::Snapshotted { token, result } => {
                if let Some((key, reply)) = self.snapshot_waiters.remove(&token) {
                    let resp = match (result, self.sessions.by_key(key)) {
                        (Ok((buffers, bytes)), Some(s)) => Response::Snapshot {
                            session: session_info(s),
                            buffers,
                            bytes,
                        },
                        (Ok(_), None) => refuse(
                            ErrorCode::NotFound,
                            "the session went away during the snapshot",
                        ),
                        (Err(e), _) => refuse(
                            ErrorCode::Internal,
                            format!("writing the snapshot failed: {e}"),
                        ),
                    };
                    let _ = reply.send(Reply::Msg(resp));
                }
            }
            ControlEvent::Prepared { token, result } => self.prepared(token, result),
            ControlEvent::Shutdown => {
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

    /// Reports STOPPED once the writer has finished and every consumer has
    /// taken the end.
    fn try_finish_stop(&mut self, key: SessionKey) {
        if self.stop_step(key, Instant::now(), consumer_grace()) == StopStep::Stopped {
            self.finish_stop(key);
        }
    }

    /// Where stopping session `key` stands (see `ferret_session::Stopping`).
    fn stop_step(&self, key: SessionKey, now: Instant, grace: Duration) -> StopStep {
        let waiting = self
            .consumers
            .values()
            .any(|c| c.key == key && c.done.is_none());
        self.stopping
            .get(&key)
            .map_or(StopStep::Wait, |s| s.step(waiting, now, grace))
    }

    fn finish_stop(&mut self, key: SessionKey) {
        self.stopping.remove(&key);
        let Some(s) = self.sessions.by_key_mut(key) else {
            return;
        };
        s.state = SessionState::Stopped;
        s.stopped_unix_ns = unix_now_ns();
        s.consumers = 0;
        let c = s.counters.snapshot();
        eprintln!(
            "ferretd: session '{}' (LoggerID {}) STOPPED: {} events, {} lost, {} buffers written",
            s.name, s.logger_id, c.events, c.events_lost, c.buffers_written
        );
        let info = session_info(s);
        for w in self.stop_waiters.remove(&key).unwrap_or_default() {
            let _ = w.send(Reply::Msg(Response::Session(info.clone())));
        }
        let conns: Vec<ConnId> = self
            .consumers
            .iter()
            .filter(|(_, c)| c.key == key)
            .map(|(id, _)| *id)
            .collect();
        for conn in conns {
            if let Some(c) = self.consumers.remove(&conn) {
                let (missed_buffers, missed_events) = c.done.unwrap_or((0, 0));
                let _ = c.tx.send(StreamItem::Msg(Box::new(Response::RtEnd {
                    session: info.clone(),
                    missed_buffers,
                    missed_events,
                })));
            }
        }
        self.notify(ChangeKind::State, info);
    }

    /// Handles one request; `None` when the answer comes later.
    fn request(
        &mut self,
        conn: ConnId,
        peer: &Peer,
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
            (Request::Start(start), Some(Role::Controller)) => self.start(peer, start, fds, reply),
            (
                Request::Stop {
                    target,
                    wait,
                    only_token,
                },
                Some(Role::Controller),
            ) => self.stop(peer, target, wait, only_token, reply),
            (Request::Update { target, update }, Some(Role::Controller)) => {
                self.update(peer, target, update, fds, reply)
            }
            (Request::Enable { target, provider }, Some(Role::Controller)) => {
                msg(self.enable(peer, target, provider))
            }
            (Request::Disable { target, provider }, Some(Role::Controller)) => {
                msg(self.disable(peer, target, provider))
            }
            (Request::Snapshot { target, path }, Some(Role::Controller)) => {
                self.snapshot(peer, target, path, fds, reply)
            }
            (Request::Watch, Some(Role::Controller)) => Some(self.watch(conn)),
            (Request::Tail { target }, Some(Role::Controller)) => {
                Some(self.tail(conn, peer, target))
            }
            (Request::Flush { target }, Some(Role::Controller)) => self.flush(peer, target, reply),
            (Request::Query { target }, Some(Role::Controller)) => {
                msg(match self.sessions.find(&target) {
                    Ok(s) => Response::Session(fitted_info(s)),
                    Err(e) => Response::Error(refused(e)),
                })
            }
            (Request::List, Some(Role::Controller)) => {
                let (sessions, more) =
                    fill_page(self.sessions.iter().map(|s| (s.logger_id, fitted_info(s))));
                msg(match more {
                    None => Response::Sessions(sessions),
                    Some(_) => refuse(ErrorCode::Resources, too_many_for_one_answer("sessions")),
                })
            }
            (Request::ListPage { after }, Some(Role::Controller)) => {
                let (sessions, next) = fill_page(
                    self.sessions
                        .iter_after(after)
                        .map(|s| (s.logger_id, fitted_info(s))),
                );
                msg(Response::SessionsPage { sessions, next })
            }
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
                        self.headers.remove(&s.key);
                        let info = session_info(&s);
                        self.notify(ChangeKind::Removed, info.clone());
                        Response::Session(info)
                    }
                    Err(e) => Response::Error(refused(e)),
                })
            }
            (Request::Providers, Some(Role::Controller)) => {
                let (providers, more) = fill_page(self.providers_after(None));
                msg(match more {
                    None => Response::Providers(providers),
                    Some(_) => refuse(ErrorCode::Resources, too_many_for_one_answer("providers")),
                })
            }
            (Request::ProvidersPage { after }, Some(Role::Controller)) => {
                let (providers, next) = fill_page(self.providers_after(after));
                msg(Response::ProvidersPage { providers, next })
            }
        }
    }

    fn attach_provider(&mut self, conn: ConnId, peer: &Peer) -> Reply {
        let id = RegionId(self.next_region);
        self.next_region += 1;
        let region = match ShmRegion::create(id, peer.pid, self.region_params, &self.clock.info()) {
            Ok(r) => Arc::new(r),
            Err(e) => {
                return Reply::Msg(refuse(
                    ErrorCode::Resources,
                    format!("cannot create shared memory for the provider: {e}"),
                ));
            }
        };
        let process = process_name(peer.pid);
        if let Some(k) = &self.keeper {
            let p = &region.layout.params;
            let msg = crate::keeper::KeeperMsg::Region {
                id: id.0,
                pid: peer.pid,
                process: process.clone(),
                ring_count: p.ring_count,
                ring_capacity: p.ring_capacity,
                meta_capacity: p.meta_capacity,
            };
            k.send(&msg, Some(region.memfd()));
        }
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
        peer: &Peer,
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
        if let Err(e) = self.registry.register(id, slot, entry) {
            return Response::Error(refused(e));
        }
        if let Some(k) = &self.keeper {
            let msg = crate::keeper::KeeperMsg::Provider {
                id: id.0,
                slot,
                name: name.clone(),
                guid,
            };
            k.send(&msg, None);
        }
        if let Some(region) = self.regions.get(&id) {
            region.set_enable(
                slot,
                enable_words(&self.sessions, &name),
                no_loss_wait_us(&self.sessions, &name),
            );
        }
        // Only this slot's routes change: the new table shares every other
        // part with the last one, so a process that registers n providers
        // costs O(n) in all rather than a whole table per registration.
        if let Some(entry) = self.registry.get(id, slot) {
            self.routes_epoch += 1;
            let table = Arc::new(self.routes.with_registration(
                self.routes_epoch,
                &self.sessions,
                id,
                slot,
                entry,
            ));
            self.routes = table.clone();
            self.to_drain(DrainCmd::Routes(table));
        }
        Response::ProviderRegistered { slot }
    }

    /// Sends the drain a fresh route table. `register_provider` and
    /// `change_filters` change `self.routes` one part at a time instead, so
    /// every other change of sessions or registrations must publish through
    /// here for `self.routes` to stay the table of the current state.
    fn publish_routes(&mut self) {
        self.routes_epoch += 1;
        let table = Arc::new(RouteTable::build(
            self.routes_epoch,
            &self.sessions,
            &self.registry,
        ));
        self.routes = table.clone();
        self.to_drain(DrainCmd::Routes(table));
    }

    /// Applies a change of the running sessions' filters for the providers
    /// called `names` (the session table already holds the new filters),
    /// so that no event is lost on the way:
    ///
    /// 1. the drain gets a table that takes what the old filters or the
    ///    new ones take, so that events tested against either set of enable
    ///    words meet a route (a widening is in force before any provider
    ///    can see it);
    /// 2. the enable words change;
    /// 3. the drain gets the new table. It applies it only after draining
    ///    every ring with the union (as `stop` does), and routes each ring's
    ///    first event after the change by both tables, since that event's
    ///    writer may have tested the old words and committed only now.
    fn change_filters<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        self.routes_epoch += 1;
        // Only the routes of the providers called `names` change.
        let names: Vec<&str> = names.into_iter().collect();
        let next = self.routes.with_names(
            self.routes_epoch + 1,
            &self.sessions,
            &self.registry,
            names.iter().copied(),
        );
        let union = self.routes.union(&next, self.routes_epoch);
        self.to_drain(DrainCmd::Routes(Arc::new(union)));
        self.update_enables(names);
        self.routes_epoch += 1;
        let next = Arc::new(next);
        self.routes = next.clone();
        self.to_drain(DrainCmd::Routes(next));
    }

    /// Rewrites the enable slots of every process that registered one of `names`.
    fn update_enables<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            let words = enable_words(&self.sessions, name);
            let wait = no_loss_wait_us(&self.sessions, name);
            for (region, slot, _) in self.registry.by_name(name) {
                if let Some(r) = self.regions.get(&region) {
                    r.set_enable(slot, words, wait);
                }
            }
        }
    }

    /// A session's owner, root and members of the control group may control
    /// it; the peer is who the kernel says it is.
    fn check_owner(&self, peer: &Peer, target: &SessionRef) -> Result<(), Box<ErrorReply>> {
        let s = self
            .sessions
            .find(target)
            .map_err(|e| Box::new(refused(e)))?;
        let asker = ferret_session::Asker {
            uid: peer.uid,
            in_control_group: peer.in_control_group,
        };
        let group = self.control_group.as_ref().map(|g| g.name.as_str());
        ferret_session::may_control(asker, s, group).map_err(|e| Box::new(refused(e.into())))
    }

    fn start(
        &mut self,
        peer: &Peer,
        req: StartRequest,
        fds: Vec<OwnedFd>,
        reply: &Sender<Reply>,
    ) -> Option<Reply> {
        let fail = |e| Some(Reply::Msg(Response::Error(e)));
        if let Err(e) = logfile::check_start_descriptors(&req, &fds) {
            return fail(e);
        }
        if let Err(e) = self.may_prepare(peer.uid) {
            return fail(e);
        }
        if let Err(e) = validate_start(&req) {
            return fail(e);
        }
        let clock = self.clock.info();
        let token = new_token();
        let session = match self.sessions.insert(
            &req,
            peer.uid,
            self.clock.name(),
            clock.anchor_unix_ns,
            token,
        ) {
            Ok(s) => s,
            Err(e) => return fail(refused(e)),
        };
        let (key, logger_id) = (session.key, session.logger_id);
        let header = FileHeader {
            session_name: req.name.clone(),
            host: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            logger_id,
            buffer_size: req.buffer_kib * 1024,
            log_mode: match req.file_mode {
                FileMode::Circular => mode::CIRCULAR,
                FileMode::NewFile => mode::NEW_FILE,
                _ => mode::SEQUENTIAL,
            },
            start_unix_ns: clock.anchor_unix_ns,
            clock,
            daemon_pid: std::process::id(),
            slot_count: 0,
            file_index: 0,
        };
        // The name and LoggerID are taken from here on; the session
        // collects nothing and is not listed until its file is open.
        if let Some(s) = self.sessions.by_key_mut(key) {
            s.opening = true;
        }
        let work = {
            let (req, peer, kind) = (req.clone(), peer.clone(), self.clock.kind);
            move || Prepared::Start(logfile::open_log(req, fds, &peer, kind, header))
        };
        let then = Then::Start {
            key,
            req,
            peer: peer.clone(),
            token,
        };
        if let Err(e) = self.prepare(peer.uid, reply, then, work) {
            self.sessions.abandon(key);
            return fail(e);
        }
        None
    }

    /// Refuses a request that needs a log file opened when too many are
    /// being opened already: each waits on a thread of its own for as long
    /// as its file system takes, and a hung one could otherwise gather
    /// threads without end.
    fn may_prepare(&self, uid: u32) -> Result<(), ErrorReply> {
        let mine = self.preparing.values().filter(|p| p.uid == uid).count();
        if self.preparing.len() >= MAX_PREPARING || mine >= MAX_PREPARING_PER_USER {
            return Err(ErrorReply {
                code: ErrorCode::Resources,
                message: format!(
                    "{} log files are still being opened ({mine} of them for uid {uid}), the most the daemon waits for; a file system may be hung: try again later or choose a file elsewhere",
                    self.preparing.len()
                ),
            });
        }
        Ok(())
    }

    /// Runs `work` (file I/O) on a thread of its own; the control thread
    /// goes on with `then` when the result comes back as
    /// [`ControlEvent::Prepared`], and answers on `reply`.
    fn prepare(
        &mut self,
        uid: u32,
        reply: &Sender<Reply>,
        then: Then,
        work: impl FnOnce() -> Prepared + Send + 'static,
    ) -> Result<(), ErrorReply> {
        self.may_prepare(uid)?;
        let token = self.next_token;
        self.next_token += 1;
        let events = self.events_tx.clone();
        logfile::spawn(work, move |result| {
            let _ = events.send(ControlEvent::Prepared { token, result });
        })?;
        self.preparing.insert(
            token,
            Preparing {
                uid,
                reply: reply.clone(),
                then,
            },
        );
        Ok(())
    }

    /// Goes on with a request whose file work is done.
    fn prepared(&mut self, token: u64, result: Prepared) {
        let Some(p) = self.preparing.remove(&token) else {
            return;
        };
        let response = match (p.then, result) {
            (
                Then::Start {
                    key,
                    req,
                    peer,
                    token,
                },
                Prepared::Start(opened),
            ) => self.finish_start(key, req, &peer, token, opened),
            (Then::Switch { key, update, path }, Prepared::Switch(file)) => match file {
                Ok((file, data_offset)) => {
                    self.apply_update(key, update, Some((file, data_offset, path)))
                }
                Err(e) => Response::Error(e),
            },
            (Then::Snapshot { key, header }, Prepared::Snapshot(file)) => {
                match (file, self.sessions.by_key(key)) {
                    (Ok(file), Some(s)) if s.state == SessionState::Running => {
                        let token = self.next_token;
                        self.next_token += 1;
                        self.snapshot_waiters.insert(token, (key, p.reply));
                        self.to_drain(DrainCmd::Snapshot {
                            key,
                            file,
                            header: header.encode(),
                            token,
                        });
                        return;
                    }
                    (Ok(_), _) => refuse(
                        ErrorCode::WrongState,
                        "the session stopped while its snapshot file was checked",
                    ),
                    (Err(e), _) => Response::Error(e),
                }
            }
            _ => refuse(
                ErrorCode::Internal,
                "file work came back for another request",
            ),
        };
        let _ = p.reply.send(Reply::Msg(response));
    }

    /// Starts collecting for a session whose log file is open, or takes
    /// it off the table if the file could not be opened.
    fn finish_start(
        &mut self,
        key: SessionKey,
        req: StartRequest,
        peer: &Peer,
        token: u64,
        opened: Result<logfile::OpenedLog, ErrorReply>,
    ) -> Response {
        let opened = match opened {
            Ok(o) if !self.shutting_down => o,
            Ok(_) => {
                self.sessions.abandon(key);
                return refuse(
                    ErrorCode::WrongState,
                    "the daemon is shutting down; the session was not started",
                );
            }
            Err(e) => {
                self.sessions.abandon(key);
                return Response::Error(e);
            }
        };
        let Some(s) = self.sessions.by_key_mut(key) else {
            return refuse(
                ErrorCode::NotFound,
                "the session went away while its file opened",
            );
        };
        s.opening = false;
        s.buffer_kib = opened.buffer_kib;
        let (logger_id, counters) = (s.logger_id, s.counters.clone());
        let logfile::OpenedLog {
            setup,
            describe_every,
            header,
            ..
        } = opened;
        let buffer_size = header.buffer_size as u64;
        let mut first_seq = 0;
        if let SinkSetup::File {
            data_offset,
            first_seq: f,
            ..
        } = &setup
        {
            first_seq = *f;
            counters
                .bytes_written
                .store(*data_offset, std::sync::atomic::Ordering::Relaxed);
        }
        let _ = self.writer.send(WriteCmd::Open {
            key,
            sink: setup,
            counters: counters.clone(),
        });
        self.to_drain(DrainCmd::AddSession(SessionSetup {
            key,
            buffer_size: buffer_size as usize,
            max_buffers: req.max_buffers as usize,
            flush_timer: (req.flush_timer_ms > 0)
                .then(|| Duration::from_millis(req.flush_timer_ms as u64)),
            counters,
            min_buffers: req.min_buffers as usize,
            writes_file: req.file_mode.has_file(),
            realtime_only: req.file_mode == FileMode::RealTime,
            describe_every,
            first_seq,
            no_loss: req.no_loss,
        }));
        self.headers.insert(key, header);
        self.publish_routes();
        self.update_enables(req.providers.iter().map(|p| p.name.as_str()));
        eprintln!(
            "ferretd: session '{}' (LoggerID {logger_id}) started by uid {} ({}), mode {}, logging to {}",
            req.name,
            peer.uid,
            req.controller,
            req.file_mode.name(),
            if req.log_file.is_empty() {
                "-"
            } else {
                &req.log_file
            }
        );
        let info = match self.sessions.find(&SessionRef::Id(logger_id)) {
            Ok(s) => session_info(s),
            Err(e) => return Response::Error(refused(e)),
        };
        self.notify(ChangeKind::Created, info.clone());
        Response::Started {
            session: info,
            token,
        }
    }

    /// Moves a RUNNING session to STOPPING: disable its providers, then ask
    /// the drain for the final pass. Returns the session's key.
    fn begin_stop(&mut self, target: &SessionRef) -> Result<SessionKey, ErrorReply> {
        let s = self.sessions.find_mut(target).map_err(refused)?;
        s.state = SessionState::Stopping;
        let key = s.key;
        let names: Vec<String> = s.providers.iter().map(|p| p.name.clone()).collect();
        // Disable first, so that the drain's final pass sees everything that
        // providers committed before they saw the change.
        self.update_enables(names.iter().map(String::as_str));
        self.to_drain(DrainCmd::Stop { key });
        self.publish_routes();
        self.stopping
            .insert(key, ferret_session::Stopping::default());
        self.notify_key(ChangeKind::State, key);
        Ok(key)
    }

    fn stop(
        &mut self,
        peer: &Peer,
        target: SessionRef,
        wait: bool,
        only_token: Option<u64>,
        reply: &Sender<Reply>,
    ) -> Option<Reply> {
        if let Err(e) = self.check_owner(peer, &target) {
            return Some(Reply::Msg(Response::Error(*e)));
        }
        if let (Some(token), Ok(s)) = (only_token, self.sessions.find(&target)) {
            if let Err(e) = ferret_session::started_by(s, token) {
                return Some(Reply::Msg(refuse(ErrorCode::Permission, e.to_string())));
            }
        }
        let (state, name, key) = match self.sessions.find(&target) {
            Ok(s) => (s.state, s.name.clone(), s.key),
            Err(e) => return Some(Reply::Msg(Response::Error(refused(e)))),
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
            let info = self.sessions.find(&target).map(session_info);
            Some(Reply::Msg(match info {
                Ok(i) => Response::Session(i),
                Err(e) => Response::Error(refused(e)),
            }))
        }
    }

    fn flush(&mut self, peer: &Peer, target: SessionRef, reply: &Sender<Reply>) -> Option<Reply> {
        if let Err(e) = self.check_owner(peer, &target) {
            return Some(Reply::Msg(Response::Error(*e)));
        }
        let s = match self.sessions.find(&target) {
            Ok(s) => s,
            Err(e) => return Some(Reply::Msg(Response::Error(refused(e)))),
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

    /// Checks that `peer` may change `target` and that it is RUNNING.
    fn running(
        &self,
        peer: &Peer,
        target: &SessionRef,
        verb: &str,
    ) -> Result<SessionKey, ErrorReply> {
        self.check_owner(peer, target).map_err(|e| *e)?;
        let s = self.sessions.find(target).map_err(refused)?;
        if s.state != SessionState::Running {
            return Err(ErrorReply {
                code: ErrorCode::WrongState,
                message: format!(
                    "session '{}' is {}; only running sessions can {verb}",
                    s.name,
                    s.state.name()
                ),
            });
        }
        Ok(s.key)
    }

    fn session_response(&self, key: SessionKey) -> Response {
        match self.sessions.by_key(key) {
            Some(s) => Response::Session(session_info(s)),
            None => refuse(ErrorCode::NotFound, "the session went away"),
        }
    }

    fn update(
        &mut self,
        peer: &Peer,
        target: SessionRef,
        update: UpdateRequest,
        mut fds: Vec<OwnedFd>,
        reply: &Sender<Reply>,
    ) -> Option<Reply> {
        let response = self.update_now(peer, target, update, &mut fds, reply)?;
        Some(Reply::Msg(response))
    }

    /// Checks an update and applies it, or, when it switches log files,
    /// has the new file prepared and returns `None`: the answer follows.
    fn update_now(
        &mut self,
        peer: &Peer,
        target: SessionRef,
        update: UpdateRequest,
        fds: &mut Vec<OwnedFd>,
        reply: &Sender<Reply>,
    ) -> Option<Response> {
        let key = match self.running(peer, &target, "be updated") {
            Ok(k) => k,
            Err(e) => return Some(Response::Error(e)),
        };
        let Some(s) = self.sessions.by_key(key) else {
            return Some(refuse(ErrorCode::NotFound, "the session went away"));
        };
        // Check everything before changing anything.
        if let Some(ms) = update.flush_timer_ms {
            if let Err(e) = validate_flush_timer(ms) {
                return Some(Response::Error(e));
            }
        }
        if let Some(n) = update.max_buffers {
            if let Err(e) = validate_max_buffers(n, s.buffer_kib)
                .and_then(|()| self.sessions.check_max_buffers(key, n).map_err(refused))
            {
                return Some(Response::Error(e));
            }
            if s.file_mode == FileMode::InMemory && n < 4 {
                return Some(refuse(
                    ErrorCode::Invalid,
                    "an in-memory session needs at least 4 buffers",
                ));
            }
        }
        if let Some(p) = &update.providers {
            if let Err(e) = validate_providers(p) {
                return Some(Response::Error(e));
            }
        }
        if let Some(path) = &update.log_file {
            if let Err(e) = validate_log_path(path) {
                return Some(Response::Error(e));
            }
        }
        if let Some(path) = update.log_file.clone() {
            if !matches!(
                s.file_mode,
                FileMode::Sequential | FileMode::Circular | FileMode::Append
            ) {
                return Some(refuse(
                    ErrorCode::Invalid,
                    format!(
                        "session '{}' is in {} mode; only sequential, circular and append sessions switch log files",
                        s.name,
                        s.file_mode.name()
                    ),
                ));
            }
            if fds.len() != 1 {
                return Some(refuse(
                    ErrorCode::BadRequest,
                    "a new log file needs its descriptor",
                ));
            }
            let Some(header) = self.headers.get(&key) else {
                return Some(refuse(ErrorCode::Internal, "the session has no header"));
            };
            let mut header = header.clone();
            if header.log_mode == mode::NEW_FILE {
                header.log_mode = mode::SEQUENTIAL;
            }
            let file = File::from(fds.remove(0));
            let shown = path.clone();
            let work = move || Prepared::Switch(logfile::open_switch(file, &shown, &header));
            let then = Then::Switch { key, update, path };
            return match self.prepare(peer.uid, reply, then, work) {
                Ok(()) => None,
                Err(e) => Some(Response::Error(e)),
            };
        }
        if !fds.is_empty() {
            return Some(refuse(
                ErrorCode::BadRequest,
                "a descriptor came without a log file path",
            ));
        }
        Some(self.apply_update(key, update, None))
    }

    /// Applies a checked update; `new_file` is the prepared file of an
    /// `update -f`, with where its buffers start and its path.
    fn apply_update(
        &mut self,
        key: SessionKey,
        update: UpdateRequest,
        new_file: Option<(File, u64, String)>,
    ) -> Response {
        match self.sessions.by_key(key) {
            Some(s) if s.state == SessionState::Running => {}
            Some(s) => {
                return refuse(
                    ErrorCode::WrongState,
                    format!(
                        "session '{}' stopped while its new log file was prepared; nothing was changed",
                        s.name
                    ),
                );
            }
            None => return refuse(ErrorCode::NotFound, "the session went away"),
        }
        let Some(s) = self.sessions.by_key_mut(key) else {
            return refuse(ErrorCode::NotFound, "the session went away");
        };
        if let Some(ms) = update.flush_timer_ms {
            s.flush_timer_ms = ms;
        }
        if let Some(n) = update.max_buffers {
            s.max_buffers = n;
        }
        let mut names: Vec<String> = Vec::new();
        if let Some(p) = update.providers {
            names.extend(s.providers.iter().map(|p| p.name.clone()));
            names.extend(p.iter().map(|p| p.name.clone()));
            s.providers = p;
        }
        let flush_timer = update
            .flush_timer_ms
            .map(|ms| (ms > 0).then(|| Duration::from_millis(ms as u64)));
        if flush_timer.is_some() || update.max_buffers.is_some() {
            self.to_drain(DrainCmd::Update {
                key,
                flush_timer,
                max_buffers: update.max_buffers.map(|n| n as usize),
            });
        }
        if let Some((file, data_offset, path)) = new_file {
            if let Some(s) = self.sessions.by_key_mut(key) {
                eprintln!("ferretd: session '{}' switches to log file {path}", s.name);
                s.log_file = path;
            }
            self.to_drain(DrainCmd::Switch {
                key,
                file,
                data_offset,
            });
        }
        if !names.is_empty() {
            self.change_filters(names.iter().map(String::as_str));
        }
        self.notify_key(ChangeKind::Updated, key);
        self.session_response(key)
    }

    fn enable(&mut self, peer: &Peer, target: SessionRef, provider: ProviderSpec) -> Response {
        let key = match self.running(peer, &target, "enable providers") {
            Ok(k) => k,
            Err(e) => return Response::Error(e),
        };
        if let Err(m) = validate_provider_name(&provider.name) {
            return refuse(ErrorCode::Invalid, m);
        }
        let Some(s) = self.sessions.by_key_mut(key) else {
            return refuse(ErrorCode::NotFound, "the session went away");
        };
        let count = s.providers.len();
        match s.providers.iter_mut().find(|p| p.name == provider.name) {
            Some(p) => p.filter = provider.filter,
            None if count >= MAX_SESSION_PROVIDERS => {
                return refuse(
                    ErrorCode::Resources,
                    format!(
                        "session '{}' already enables {MAX_SESSION_PROVIDERS} providers, the most a session may",
                        s.name
                    ),
                );
            }
            None => s.providers.push(provider.clone()),
        }
        self.change_filters([provider.name.as_str()]);
        self.notify_key(ChangeKind::Updated, key);
        self.session_response(key)
    }

    fn disable(&mut self, peer: &Peer, target: SessionRef, provider: String) -> Response {
        let key = match self.running(peer, &target, "disable providers") {
            Ok(k) => k,
            Err(e) => return Response::Error(e),
        };
        if let Err(m) = validate_provider_name(&provider) {
            return refuse(ErrorCode::Invalid, m);
        }
        let Some(s) = self.sessions.by_key_mut(key) else {
            return refuse(ErrorCode::NotFound, "the session went away");
        };
        let before = s.providers.len();
        s.providers.retain(|p| p.name != provider);
        if s.providers.len() == before {
            return refuse(
                ErrorCode::NotFound,
                format!(
                    "session '{}' does not enable provider '{provider}'; 'ferret query {}' lists its providers",
                    s.name, s.name
                ),
            );
        }
        self.change_filters([provider.as_str()]);
        self.notify_key(ChangeKind::Updated, key);
        self.session_response(key)
    }

    fn snapshot(
        &mut self,
        peer: &Peer,
        target: SessionRef,
        path: String,
        mut fds: Vec<OwnedFd>,
        reply: &Sender<Reply>,
    ) -> Option<Reply> {
        let fail = |e: ErrorReply| Some(Reply::Msg(Response::Error(e)));
        let key = match self.running(peer, &target, "take snapshots") {
            Ok(k) => k,
            Err(e) => return fail(e),
        };
        if let Err(e) = validate_log_path(&path) {
            return fail(e);
        }
        let s = self.sessions.by_key(key)?;
        if s.file_mode != FileMode::InMemory {
            return Some(Reply::Msg(refuse(
                ErrorCode::Invalid,
                format!(
                    "session '{}' is in {} mode, its events go to {}; only in-memory sessions take snapshots",
                    s.name,
                    s.file_mode.name(),
                    if s.log_file.is_empty() {
                        "its consumers"
                    } else {
                        &s.log_file
                    }
                ),
            )));
        }
        if fds.len() != 1 {
            return Some(Reply::Msg(refuse(
                ErrorCode::BadRequest,
                "snapshot must carry exactly one file descriptor",
            )));
        }
        let file = File::from(fds.remove(0));
        let mut header = self.headers.get(&key)?.clone();
        header.log_mode = mode::SNAPSHOT;
        let work = move || Prepared::Snapshot(logfile::check_snapshot_file(file, &path));
        match self.prepare(peer.uid, reply, Then::Snapshot { key, header }, work) {
            Ok(()) => None,
            Err(e) => fail(e),
        }
    }

    fn watch(&mut self, conn: ConnId) -> Reply {
        let sessions = &self.sessions;
        let rx = self.watchers.add(conn, &|after| {
            sessions.iter_after(after).next().map(fitted_info)
        });
        Reply::Stream(rx)
    }

    fn tail(&mut self, conn: ConnId, peer: &Peer, target: SessionRef) -> Reply {
        let key = match self.running(peer, &target, "be tailed") {
            Ok(k) => k,
            Err(e) => return Reply::Msg(Response::Error(e)),
        };
        if self.consumers.contains_key(&conn) {
            return Reply::Msg(refuse(
                ErrorCode::BadRequest,
                "this connection already tails a session",
            ));
        }
        let Some(s) = self.sessions.by_key_mut(key) else {
            return Reply::Msg(refuse(ErrorCode::NotFound, "the session went away"));
        };
        if let Err(e) = s.attach_consumer() {
            return Reply::Msg(Response::Error(refused(e)));
        }
        let info = session_info(s);
        let header = self
            .headers
            .get(&key)
            .map(FileHeader::encode)
            .unwrap_or_default();
        let (tx, rx) = crossbeam_channel::unbounded();
        let _ = tx.send(StreamItem::Msg(Box::new(Response::RtStart {
            session: info,
            header,
        })));
        self.to_drain(DrainCmd::Attach {
            key,
            consumer: Consumer::new(conn, tx.clone()),
        });
        self.consumers.insert(
            conn,
            ConsumerEntry {
                key,
                tx,
                done: None,
            },
        );
        self.notify_key(ChangeKind::Updated, key);
        Reply::Stream(rx)
    }

    /// The registered providers after `after`, in registration order, each
    /// with the key the next page would resume from.
    fn providers_after(
        &self,
        after: Option<ProviderCursor>,
    ) -> impl Iterator<Item = (ProviderCursor, ProviderInfo)> + '_ {
        self.registry
            .iter_after(after.map(|c| (RegionId(c.region), c.slot)))
            .map(|(region, slot, e)| {
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
                let cursor = ProviderCursor {
                    region: region.0,
                    slot,
                };
                let info = ProviderInfo {
                    name: e.name.clone(),
                    guid: e.guid,
                    pid: e.pid,
                    process: e.process.clone(),
                    sessions: enabling.iter().map(|s| s.logger_id).collect(),
                    level: level.map(|l: Level| l),
                };
                (cursor, info)
            })
    }
}

/// One page of a list: entries from `items` while their encoded sizes add
/// up to at most [`PAGE_BYTES`], or what one packet carries on this system
/// if that is less (always at least one entry), and the key of the last
/// one when more follow.
/// Pages are measured with the encoder rather than counted, since an entry
/// may be a few hundred bytes or a few hundred KiB.
fn fill_page<K: Copy, T: serde::Serialize>(
    items: impl Iterator<Item = (K, T)>,
) -> (Vec<T>, Option<K>) {
    // A page must fit one packet, which the system's socket buffer may
    // make shorter than the protocol's limit; the margin is for the page's
    // own framing.
    let budget = PAGE_BYTES.min(ferret_transport::packet_limit().saturating_sub(1024));
    let mut page = Vec::new();
    let mut bytes = 0usize;
    let mut last = None;
    for (key, item) in items {
        let size = ferret_abi::proto::encoded_len(&item).unwrap_or(PAGE_BYTES);
        if !page.is_empty() && bytes.saturating_add(size) > budget {
            return (page, last);
        }
        bytes = bytes.saturating_add(size);
        page.push(item);
        last = Some(key);
    }
    (page, None)
}

/// A session's info, made to fit one message (see [`fit_one_message`]).
fn fitted_info(s: &Session) -> SessionInfo {
    fit_one_message(session_info(s))
}

/// `info` as it can travel in one message: when it is longer than one
/// packet carries (a session of long provider names whose every provider
/// lost events holds each name twice), the last entries of
/// `provider_lost` are folded into one, named `(N more providers)` and
/// holding their sum, until it fits. Every other field is whole, so
/// `list`, `query` and `watch` keep working for such a session, and the
/// total lost is unchanged.
fn fit_one_message(mut info: SessionInfo) -> SessionInfo {
    // Room for the message around the info (variant, page framing).
    let budget = ferret_transport::packet_limit().saturating_sub(1024);
    let Ok(len) = ferret_abi::proto::encoded_len(&info) else {
        return info;
    };
    if len <= budget {
        return info;
    }
    // The summary entry takes at most 40 bytes; each entry folded saves at
    // least its name and a length byte.
    let mut over = len - budget + 40;
    let (mut folded, mut sum) = (0usize, 0u64);
    while over > 0 {
        let Some((name, lost)) = info.provider_lost.pop() else {
            break;
        };
        over = over.saturating_sub(name.len() + 1);
        folded += 1;
        sum = sum.saturating_add(lost);
    }
    if folded > 0 {
        info.provider_lost
            .push((format!("({folded} more providers)"), sum));
    }
    info
}

/// Why an old, unpaged `List` or `Providers` is refused.
fn too_many_for_one_answer(what: &str) -> String {
    format!(
        "the {what} do not fit one answer and this client cannot ask for them page by page; use a ferret of protocol version 1.4 or later"
    )
}

/// A log file the daemon will write: a regular, empty file open for writing.
#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            pid: 1,
            uid,
            gid,
            groups: groups.into(),
            in_control_group: false,
        }
    }

    #[test]
    fn a_session_info_too_long_for_one_message_folds_its_lost_providers() {
        let limit = ferret_transport::packet_limit();
        let names: Vec<String> = (0..256)
            .map(|i| format!("P{i:03}{}", "x".repeat(796)))
            .collect();
        let info = SessionInfo {
            logger_id: 1,
            name: "s".into(),
            state: SessionState::Running,
            providers: names
                .iter()
                .map(|n| ProviderSpec {
                    name: n.clone(),
                    filter: ferret_abi::EnableFilter::level(Level::Verbose),
                })
                .collect(),
            log_file: String::new(),
            buffer_kib: 4,
            max_buffers: 2,
            flush_timer_ms: 0,
            clock: "monotonic".into(),
            owner_uid: 0,
            started_unix_ns: 0,
            stopped_unix_ns: 0,
            counters: Default::default(),
            last_error: None,
            min_buffers: 1,
            file_mode: FileMode::RealTime,
            max_file_bytes: 0,
            realtime: true,
            consumers: 0,
            controller: String::new(),
            provider_lost: names.iter().map(|n| (n.clone(), 3)).collect(),
            no_loss: false,
            no_loss_wait_ms: 0,
            files_synced: 0,
        };
        let len = ferret_abi::proto::encoded_len(&info).unwrap();
        let fitted = fit_one_message(info.clone());
        let fitted_len = ferret_abi::proto::encoded_len(&fitted).unwrap();
        if len > limit - 1024 {
            assert!(fitted_len <= limit - 1024, "{fitted_len} > {limit}");
            let (last, sum) = fitted.provider_lost.last().unwrap();
            let kept = fitted.provider_lost.len() - 1;
            assert_eq!(last, &format!("({} more providers)", 256 - kept));
            assert_eq!(*sum, 3 * (256 - kept) as u64);
        } else {
            assert_eq!(fitted, info);
        }
        assert_eq!(fitted.providers, info.providers);
        let total: u64 = fitted.provider_lost.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 3 * 256);
    }

    #[test]
    fn pages_fill_by_encoded_bytes_and_resume_after_their_last_key() {
        let budget = PAGE_BYTES.min(ferret_transport::packet_limit() - 1024);
        // Entries of very different sizes: 10 bytes to 60 KB.
        let items: Vec<(u32, String)> = (1..=400u32)
            .map(|k| (k, "x".repeat(if k % 7 == 0 { 60_000 } else { 10 })))
            .collect();
        let mut after = None;
        let mut seen = Vec::new();
        loop {
            let rest = items.iter().filter(|(k, _)| after.is_none_or(|a| *k > a));
            let (page, next) = fill_page(rest.cloned());
            assert!(ferret_abi::proto::encoded_len(&page).unwrap() <= budget + 8);
            assert!(!page.is_empty());
            seen.extend(page);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let all: Vec<String> = items.into_iter().map(|(_, v)| v).collect();
        assert_eq!(seen, all, "every entry once, in order");
        // One entry larger than the budget still makes a page of its own.
        let (page, next) = fill_page([(1u32, "y".repeat(budget + 1))].into_iter());
        assert_eq!((page.len(), next), (1, None));
    }

    #[test]
    fn directory_write_permission_follows_the_mode_bits_that_apply() {
        let owner = peer(1000, 1000, &[]);
        assert!(owner.may_write_dir(1000, 50, 0o700));
        assert!(!owner.may_write_dir(1000, 50, 0o500), "no write bit");
        assert!(!owner.may_write_dir(1000, 50, 0o600), "no search bit");
        // The owner's bits apply to the owner even when others may write.
        assert!(!owner.may_write_dir(1000, 50, 0o577));
        let member = peer(1001, 1001, &[50]);
        assert!(member.may_write_dir(1000, 50, 0o730));
        assert!(!member.may_write_dir(1000, 50, 0o707));
        let by_primary = peer(1001, 50, &[]);
        assert!(by_primary.may_write_dir(1000, 50, 0o730));
        let other = peer(1002, 1002, &[7]);
        assert!(other.may_write_dir(1000, 50, 0o703));
        assert!(!other.may_write_dir(1000, 50, 0o770));
        assert!(!other.may_write_dir(1000, 50, 0o755));
        assert!(peer(0, 0, &[]).may_write_dir(1000, 50, 0o000), "root may");
    }
}
