//! The session table: LoggerNames, LoggerIDs, states and properties.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferret_abi::proto::{
    ErrorCode, ErrorReply, MAX_SESSION_PROVIDERS, ProviderSpec, SessionInfo, SessionRef,
    SessionState, StartRequest, validate_provider_name, validate_session_name,
};

use crate::SessionCounters;

/// The default buffer size, KiB.
pub const DEFAULT_BUFFER_KIB: u32 = 64;
/// The default most buffers a session holds.
pub const DEFAULT_MAX_BUFFERS: u32 = 64;
/// The default flush timer, milliseconds.
pub const DEFAULT_FLUSH_TIMER_MS: u32 = 1000;
/// The default limit on sessions that are RUNNING or STOPPING.
pub const DEFAULT_SESSION_LIMIT: usize = 64;

/// The most memory one session's buffers may take.
const MAX_SESSION_MEMORY: u64 = 1 << 30;

/// A session's identity inside the daemon, never reused (LoggerIDs are).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionKey(pub u64);

/// One session.
#[derive(Debug)]
pub struct Session {
    /// Never reused.
    pub key: SessionKey,
    /// The LoggerID: the lowest positive integer free when it started.
    pub logger_id: u32,
    /// The LoggerName.
    pub name: String,
    /// RUNNING, STOPPING or STOPPED.
    pub state: SessionState,
    /// The providers it enables.
    pub providers: Vec<ProviderSpec>,
    /// The log file path as the controller gave it.
    pub log_file: String,
    /// Buffer size, KiB.
    pub buffer_kib: u32,
    /// The most buffers.
    pub max_buffers: u32,
    /// Flush timer, ms (0: none).
    pub flush_timer_ms: u32,
    /// "tsc" or "monotonic".
    pub clock: String,
    /// The uid that started it.
    pub owner_uid: u32,
    /// Start time, ns since the UNIX epoch.
    pub started_unix_ns: u64,
    /// Stop time, or 0.
    pub stopped_unix_ns: u64,
    /// Counters, shared with the threads that move events.
    pub counters: Arc<SessionCounters>,
}

impl Session {
    /// The wire form of this session.
    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            logger_id: self.logger_id,
            name: self.name.clone(),
            state: self.state,
            providers: self.providers.clone(),
            log_file: self.log_file.clone(),
            buffer_kib: self.buffer_kib,
            max_buffers: self.max_buffers,
            flush_timer_ms: self.flush_timer_ms,
            clock: self.clock.clone(),
            owner_uid: self.owner_uid,
            started_unix_ns: self.started_unix_ns,
            stopped_unix_ns: self.stopped_unix_ns,
            counters: self.counters.snapshot(),
            last_error: self.counters.error(),
        }
    }

    /// True while the session collects or drains events.
    pub fn is_active(&self) -> bool {
        self.state != SessionState::Stopped
    }
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        code,
        message: message.into(),
    }
}

/// Checks everything in a start request that does not depend on other sessions.
pub fn validate_start(req: &StartRequest) -> Result<(), ErrorReply> {
    validate_session_name(&req.name).map_err(|m| refuse(ErrorCode::Invalid, m))?;
    if req.providers.len() > MAX_SESSION_PROVIDERS {
        return Err(refuse(
            ErrorCode::Invalid,
            format!(
                "{} providers; a session may enable at most {MAX_SESSION_PROVIDERS}",
                req.providers.len()
            ),
        ));
    }
    for (i, p) in req.providers.iter().enumerate() {
        validate_provider_name(&p.name).map_err(|m| refuse(ErrorCode::Invalid, m))?;
        if req.providers[..i].iter().any(|q| q.name == p.name) {
            return Err(refuse(
                ErrorCode::Invalid,
                format!("provider '{}' is given twice; give it once", p.name),
            ));
        }
    }
    if !(4..=16384).contains(&req.buffer_kib) || req.buffer_kib % 4 != 0 {
        return Err(refuse(
            ErrorCode::Invalid,
            format!(
                "buffer size {} KiB is not valid; use a multiple of 4 from 4 to 16384",
                req.buffer_kib
            ),
        ));
    }
    if !(2..=65536).contains(&req.max_buffers) {
        return Err(refuse(
            ErrorCode::Invalid,
            format!(
                "maximum buffers {} is out of range; use 2 to 65536",
                req.max_buffers
            ),
        ));
    }
    if req.buffer_kib as u64 * 1024 * req.max_buffers as u64 > MAX_SESSION_MEMORY {
        return Err(refuse(
            ErrorCode::Resources,
            format!(
                "{} buffers of {} KiB exceed the 1 GiB a session may hold; use fewer or smaller buffers",
                req.max_buffers, req.buffer_kib
            ),
        ));
    }
    if req.flush_timer_ms > 86_400_000 {
        return Err(refuse(
            ErrorCode::Invalid,
            "flush timer is longer than a day; use 0 (none) to 86400 seconds",
        ));
    }
    Ok(())
}

/// Every session the daemon lists.
#[derive(Debug)]
pub struct SessionTable {
    sessions: BTreeMap<u32, Session>,
    next_key: u64,
    limit: usize,
}

impl SessionTable {
    /// An empty table allowing `limit` active sessions.
    pub fn new(limit: usize) -> SessionTable {
        SessionTable {
            sessions: BTreeMap::new(),
            next_key: 1,
            limit,
        }
    }

    /// Adds a RUNNING session for `req`, with the lowest free LoggerID.
    pub fn insert(
        &mut self,
        req: &StartRequest,
        owner_uid: u32,
        clock: &str,
        now_unix_ns: u64,
    ) -> Result<&Session, ErrorReply> {
        validate_start(req)?;
        if let Some(s) = self
            .sessions
            .values()
            .find(|s| s.name.eq_ignore_ascii_case(&req.name))
        {
            let hint = if s.is_active() {
                format!(
                    "stop it with 'ferret stop {}' or choose another name",
                    s.name
                )
            } else {
                format!(
                    "remove it with 'ferret remove {}' or choose another name",
                    s.name
                )
            };
            return Err(refuse(
                ErrorCode::AlreadyExists,
                format!(
                    "session '{}' already exists (LoggerID {}, {}); {hint}",
                    s.name,
                    s.logger_id,
                    s.state.name()
                ),
            ));
        }
        let active = self.sessions.values().filter(|s| s.is_active()).count();
        if active >= self.limit {
            return Err(refuse(
                ErrorCode::Resources,
                format!(
                    "the limit of {} active sessions is reached; stop one first",
                    self.limit
                ),
            ));
        }
        let logger_id = (1..)
            .find(|id| !self.sessions.contains_key(id))
            .unwrap_or(u32::MAX);
        let key = SessionKey(self.next_key);
        self.next_key += 1;
        let session = Session {
            key,
            logger_id,
            name: req.name.clone(),
            state: SessionState::Running,
            providers: req.providers.clone(),
            log_file: req.log_file.clone(),
            buffer_kib: req.buffer_kib,
            max_buffers: req.max_buffers,
            flush_timer_ms: req.flush_timer_ms,
            clock: clock.to_string(),
            owner_uid,
            started_unix_ns: now_unix_ns,
            stopped_unix_ns: 0,
            counters: Arc::new(SessionCounters::default()),
        };
        Ok(self.sessions.entry(logger_id).or_insert(session))
    }

    fn id_of(&self, target: &SessionRef) -> Result<u32, ErrorReply> {
        let found = match target {
            SessionRef::Id(id) => self.sessions.get(id).map(|s| s.logger_id),
            SessionRef::Name(name) => self
                .sessions
                .values()
                .find(|s| s.name.eq_ignore_ascii_case(name))
                .map(|s| s.logger_id),
        };
        found.ok_or_else(|| {
            let what = match target {
                SessionRef::Id(id) => format!("no session has LoggerID {id}"),
                SessionRef::Name(n) => format!("session '{n}' not found"),
            };
            refuse(
                ErrorCode::NotFound,
                format!("{what}; run 'ferret list' to see sessions"),
            )
        })
    }

    /// The session `target` names.
    pub fn find(&self, target: &SessionRef) -> Result<&Session, ErrorReply> {
        let id = self.id_of(target)?;
        self.sessions
            .get(&id)
            .ok_or_else(|| refuse(ErrorCode::NotFound, "session vanished"))
    }

    /// The session `target` names, to change it.
    pub fn find_mut(&mut self, target: &SessionRef) -> Result<&mut Session, ErrorReply> {
        let id = self.id_of(target)?;
        self.sessions
            .get_mut(&id)
            .ok_or_else(|| refuse(ErrorCode::NotFound, "session vanished"))
    }

    /// The session with this key.
    pub fn by_key_mut(&mut self, key: SessionKey) -> Option<&mut Session> {
        self.sessions.values_mut().find(|s| s.key == key)
    }

    /// Takes a STOPPED session off the list, freeing its LoggerID.
    pub fn remove(&mut self, target: &SessionRef) -> Result<Session, ErrorReply> {
        let id = self.id_of(target)?;
        let s = &self.sessions[&id];
        if s.is_active() {
            return Err(refuse(
                ErrorCode::WrongState,
                format!(
                    "session '{}' is {}; stop it first with 'ferret stop {}'",
                    s.name,
                    s.state.name(),
                    s.name
                ),
            ));
        }
        self.sessions
            .remove(&id)
            .ok_or_else(|| refuse(ErrorCode::NotFound, "session vanished"))
    }

    /// Every session, by LoggerID.
    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// Every session, by LoggerID, to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Session> {
        self.sessions.values_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferret_abi::{EnableFilter, Level};

    fn req(name: &str) -> StartRequest {
        StartRequest {
            name: name.into(),
            providers: vec![ProviderSpec {
                name: "P".into(),
                filter: EnableFilter::level(Level::Verbose),
            }],
            log_file: "/tmp/x".into(),
            buffer_kib: DEFAULT_BUFFER_KIB,
            max_buffers: DEFAULT_MAX_BUFFERS,
            flush_timer_ms: DEFAULT_FLUSH_TIMER_MS,
        }
    }

    #[test]
    fn logger_ids_are_the_lowest_free_positive_integers() {
        let mut t = SessionTable::new(64);
        assert_eq!(t.insert(&req("a"), 0, "tsc", 0).unwrap().logger_id, 1);
        assert_eq!(t.insert(&req("b"), 0, "tsc", 0).unwrap().logger_id, 2);
        assert_eq!(t.insert(&req("c"), 0, "tsc", 0).unwrap().logger_id, 3);
        t.find_mut(&SessionRef::Id(2)).unwrap().state = SessionState::Stopped;
        t.remove(&SessionRef::Name("b".into())).unwrap();
        assert_eq!(t.insert(&req("d"), 0, "tsc", 0).unwrap().logger_id, 2);
    }

    #[test]
    fn names_are_unique_regardless_of_case_and_stopped_sessions_stay() {
        let mut t = SessionTable::new(64);
        t.insert(&req("Net"), 0, "tsc", 0).unwrap();
        let e = t.insert(&req("net"), 0, "tsc", 0).unwrap_err();
        assert_eq!(e.code, ErrorCode::AlreadyExists);
        assert!(e.message.contains("ferret stop Net"), "{}", e.message);
        t.find_mut(&SessionRef::Name("NET".into())).unwrap().state = SessionState::Stopped;
        let e = t.insert(&req("net"), 0, "tsc", 0).unwrap_err();
        assert!(e.message.contains("ferret remove Net"), "{}", e.message);
    }

    #[test]
    fn running_sessions_cannot_be_removed() {
        let mut t = SessionTable::new(64);
        t.insert(&req("a"), 0, "tsc", 0).unwrap();
        let e = t.remove(&SessionRef::Id(1)).unwrap_err();
        assert_eq!(e.code, ErrorCode::WrongState);
        assert!(t.find(&SessionRef::Id(1)).is_ok());
    }

    #[test]
    fn the_session_limit_counts_active_sessions_only() {
        let mut t = SessionTable::new(2);
        t.insert(&req("a"), 0, "tsc", 0).unwrap();
        t.insert(&req("b"), 0, "tsc", 0).unwrap();
        let e = t.insert(&req("c"), 0, "tsc", 0).unwrap_err();
        assert_eq!(e.code, ErrorCode::Resources);
        assert!(e.message.contains("limit of 2"));
        t.find_mut(&SessionRef::Id(1)).unwrap().state = SessionState::Stopped;
        t.insert(&req("c"), 0, "tsc", 0).unwrap();
    }

    #[test]
    fn bad_start_requests_name_the_problem() {
        let mut r = req("123");
        assert!(
            validate_start(&r)
                .unwrap_err()
                .message
                .contains("all digits")
        );
        r = req("ok");
        r.buffer_kib = 1;
        assert!(
            validate_start(&r)
                .unwrap_err()
                .message
                .contains("buffer size")
        );
        r = req("ok");
        r.providers.push(r.providers[0].clone());
        assert!(validate_start(&r).unwrap_err().message.contains("twice"));
        r = req("ok");
        r.max_buffers = 65536;
        r.buffer_kib = 16384;
        assert_eq!(validate_start(&r).unwrap_err().code, ErrorCode::Resources);
    }

    #[test]
    fn unknown_sessions_point_to_list() {
        let t = SessionTable::new(64);
        let e = t.find(&SessionRef::Name("nope".into())).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound);
        assert_eq!(
            e.message,
            "session 'nope' not found; run 'ferret list' to see sessions"
        );
    }
}
