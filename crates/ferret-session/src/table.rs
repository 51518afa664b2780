//! The session table: LoggerNames, LoggerIDs, states and properties.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferret_abi::proto::{
    FileMode, ProviderSpec, SessionRef, SessionState, StartRequest, validate_session_name,
};

use crate::SessionCounters;
use crate::budget::{BufferBudget, reservation, show};
use crate::error::{SessionError, Why};
use ferret_abi::limits::MAX_LISTED_SESSIONS;

/// A session's identity inside the daemon, never reused (LoggerIDs are).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionKey(pub u64);

/// The most real-time consumers one session serves at once.
pub const MAX_CONSUMERS_PER_SESSION: u32 = 16;

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
    /// Buffers allocated at start.
    pub min_buffers: u32,
    /// The log file mode.
    pub file_mode: FileMode,
    /// The largest log file in bytes, or 0.
    pub max_file_bytes: u64,
    /// Whether real-time consumers may attach.
    pub realtime: bool,
    /// Real-time consumers attached now.
    pub consumers: u32,
    /// The starting controller's description.
    pub controller: String,
    /// The starting controller's token (secret: never shown).
    pub controller_token: u64,
    /// No-loss mode: writers wait for ring space, up to `no_loss_wait_ms`.
    pub no_loss: bool,
    /// The wait bound in milliseconds (0 when not in no-loss mode).
    pub no_loss_wait_ms: u32,
    /// Set while the daemon opens the session's log file, off its control
    /// thread: the name and LoggerID are taken, but the session collects
    /// nothing, is not listed and takes no request until its start
    /// returns.
    pub opening: bool,
}

impl Session {
    /// Takes one more real-time consumer, or says in one line why not: the
    /// session must be real-time and serve fewer than
    /// [`MAX_CONSUMERS_PER_SESSION`] (each may hold a queue of up to 64
    /// chunks, so the bound keeps a session's streams from holding more
    /// than a few hundred MiB whatever its consumers do).
    pub fn attach_consumer(&mut self) -> Result<(), SessionError> {
        if !self.realtime {
            return Err(refuse(
                Why::Invalid,
                format!(
                    "session '{}' is not real-time; start it with --realtime (or 'ferret update' cannot change that) to tail it",
                    self.name
                ),
            ));
        }
        if self.consumers >= MAX_CONSUMERS_PER_SESSION {
            return Err(refuse(
                Why::Resources,
                format!(
                    "session '{}' already has {MAX_CONSUMERS_PER_SESSION} real-time consumers, the most one session serves; stop one",
                    self.name
                ),
            ));
        }
        self.consumers += 1;
        Ok(())
    }

    /// True while the session collects or drains events.
    pub fn is_active(&self) -> bool {
        self.state != SessionState::Stopped
    }
}

fn refuse(why: Why, message: impl Into<String>) -> SessionError {
    SessionError::new(why, message)
}

/// Every session the daemon lists.
#[derive(Debug)]
pub struct SessionTable {
    sessions: BTreeMap<u32, Session>,
    next_key: u64,
    limit: usize,
    budget: BufferBudget,
}

impl SessionTable {
    /// An empty table allowing `limit` active sessions.
    pub fn new(limit: usize) -> SessionTable {
        SessionTable {
            sessions: BTreeMap::new(),
            next_key: 1,
            limit,
            budget: BufferBudget::default(),
        }
    }

    /// The table with `budget` capping its sessions' buffer memory.
    pub fn with_budget(mut self, budget: BufferBudget) -> SessionTable {
        self.budget = budget;
        self
    }

    /// Buffer memory reserved by the sessions not yet STOPPED, other than
    /// `except`: (by those of `uid`, by all). A session holds its buffers
    /// until it is STOPPED, so a STOPPING one still counts.
    fn reserved(&self, uid: u32, except: Option<SessionKey>) -> (u64, u64) {
        let mut by_user = 0u64;
        let mut in_all = 0u64;
        for s in self.sessions.values() {
            if !s.is_active() || Some(s.key) == except {
                continue;
            }
            let r = reservation(s.max_buffers, s.buffer_kib);
            in_all = in_all.saturating_add(r);
            if s.owner_uid == uid {
                by_user = by_user.saturating_add(r);
            }
        }
        (by_user, in_all)
    }

    /// Checks that running session `key` may raise its maximum buffers to
    /// `max_buffers` within the budget; lowering it is always allowed.
    pub fn check_max_buffers(&self, key: SessionKey, max_buffers: u32) -> Result<(), SessionError> {
        let Some(s) = self.by_key(key) else {
            return Err(refuse(Why::NotFound, "the session went away"));
        };
        if max_buffers <= s.max_buffers {
            return Ok(());
        }
        let (by_user, in_all) = self.reserved(s.owner_uid, Some(key));
        let asked = reservation(max_buffers, s.buffer_kib);
        self.budget.check(
            s.owner_uid,
            asked,
            by_user,
            in_all,
            &format!(
                "--max-buffers {max_buffers} (buffers of {}) would reserve",
                show(s.buffer_kib as u64 * 1024)
            ),
            "use a smaller --max-buffers",
        )
    }

    /// Adds a RUNNING session for `req`, with the lowest free LoggerID.
    /// The protocol's own rules for a start (names, sizes, providers) are
    /// checked by the caller with `ferret_abi::limits::validate_start`;
    /// this checks what only the table knows: names taken, the session
    /// limits and the buffer budget.
    pub fn insert(
        &mut self,
        req: &StartRequest,
        owner_uid: u32,
        clock: &str,
        now_unix_ns: u64,
        controller_token: u64,
    ) -> Result<&Session, SessionError> {
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
                Why::AlreadyExists,
                format!(
                    "session '{}' already exists (LoggerID {}, {}); {hint}",
                    s.name,
                    s.logger_id,
                    s.state.name()
                ),
            ));
        }
        if self.sessions.len() >= MAX_LISTED_SESSIONS {
            return Err(refuse(
                Why::Resources,
                format!(
                    "{MAX_LISTED_SESSIONS} sessions are listed, the most the daemon keeps; remove STOPPED ones with 'ferret remove NAME'"
                ),
            ));
        }
        let active = self.sessions.values().filter(|s| s.is_active()).count();
        if active >= self.limit {
            return Err(refuse(
                Why::Resources,
                format!(
                    "the limit of {} active sessions is reached; stop one first (or run the daemon with a higher --session-limit)",
                    self.limit
                ),
            ));
        }
        let (by_user, in_all) = self.reserved(owner_uid, None);
        self.budget.check(
            owner_uid,
            reservation(req.max_buffers, req.buffer_kib),
            by_user,
            in_all,
            &format!(
                "this session's {} buffers of {} ask for",
                req.max_buffers,
                show(req.buffer_kib as u64 * 1024)
            ),
            "use a smaller --buffer-size or --max-buffers",
        )?;
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
            min_buffers: req.min_buffers,
            file_mode: req.file_mode,
            max_file_bytes: req.max_file_bytes,
            realtime: req.realtime,
            consumers: 0,
            controller: req.controller.clone(),
            no_loss: req.no_loss,
            no_loss_wait_ms: if req.no_loss { req.no_loss_wait_ms } else { 0 },
            controller_token,
            opening: false,
        };
        Ok(self.sessions.entry(logger_id).or_insert(session))
    }

    fn id_of(&self, target: &SessionRef) -> Result<u32, SessionError> {
        let found = match target {
            SessionRef::Id(id) => self.sessions.get(id).map(|s| s.logger_id),
            SessionRef::Name(name) => self
                .sessions
                .values()
                .find(|s| s.name.eq_ignore_ascii_case(name))
                .map(|s| s.logger_id),
        };
        if let Some(s) = found
            .and_then(|id| self.sessions.get(&id))
            .filter(|s| s.opening)
        {
            return Err(refuse(
                Why::WrongState,
                format!(
                    "session '{}' (LoggerID {}) is still opening its log file; try again once its start has returned",
                    s.name, s.logger_id
                ),
            ));
        }
        found.ok_or_else(|| {
            let what = match target {
                SessionRef::Id(id) => format!("no session has LoggerID {id}"),
                // A name no session can have (too long, or with control
                // characters) is shown escaped and cut, so the answer
                // stays one line.
                SessionRef::Name(n) if validate_session_name(n).is_err() => {
                    let shown: String = n.chars().take(64).collect();
                    format!("session {shown:?} not found")
                }
                SessionRef::Name(n) => format!("session '{n}' not found"),
            };
            refuse(
                Why::NotFound,
                format!("{what}; run 'ferret list' to see sessions"),
            )
        })
    }

    /// The session `target` names.
    pub fn find(&self, target: &SessionRef) -> Result<&Session, SessionError> {
        let id = self.id_of(target)?;
        self.sessions
            .get(&id)
            .ok_or_else(|| refuse(Why::NotFound, "session vanished"))
    }

    /// The session `target` names, to change it.
    pub fn find_mut(&mut self, target: &SessionRef) -> Result<&mut Session, SessionError> {
        let id = self.id_of(target)?;
        self.sessions
            .get_mut(&id)
            .ok_or_else(|| refuse(Why::NotFound, "session vanished"))
    }

    /// The session with this key.
    pub fn by_key(&self, key: SessionKey) -> Option<&Session> {
        self.sessions.values().find(|s| s.key == key)
    }

    /// The session with this key, to change it.
    pub fn by_key_mut(&mut self, key: SessionKey) -> Option<&mut Session> {
        self.sessions.values_mut().find(|s| s.key == key)
    }

    /// Takes a STOPPED session off the list, freeing its LoggerID.
    pub fn remove(&mut self, target: &SessionRef) -> Result<Session, SessionError> {
        let id = self.id_of(target)?;
        let s = &self.sessions[&id];
        if s.is_active() {
            return Err(refuse(
                Why::WrongState,
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
            .ok_or_else(|| refuse(Why::NotFound, "session vanished"))
    }

    /// Takes off the table a session whose log file could not be opened.
    pub fn abandon(&mut self, key: SessionKey) -> Option<Session> {
        let id = self.by_key(key)?.logger_id;
        self.sessions.remove(&id)
    }

    /// Every session but those still opening their log file, by LoggerID.
    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values().filter(|s| !s.opening)
    }

    /// The sessions whose LoggerID is greater than `after` (all of them
    /// when `None`), by LoggerID, but those still opening their log file:
    /// where a page of the list resumes.
    pub fn iter_after(&self, after: Option<u32>) -> impl Iterator<Item = &Session> {
        use std::ops::Bound;
        let from = match after {
            Some(id) => Bound::Excluded(id),
            None => Bound::Unbounded,
        };
        self.sessions
            .range((from, Bound::Unbounded))
            .map(|(_, s)| s)
            .filter(|s| !s.opening)
    }

    /// Every session but those still opening their log file, by LoggerID,
    /// to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Session> {
        self.sessions.values_mut().filter(|s| !s.opening)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferret_abi::limits::*;
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
            min_buffers: 4,
            file_mode: FileMode::Sequential,
            max_file_bytes: 0,
            realtime: false,
            controller: "test".into(),
            no_loss: false,
            no_loss_wait_ms: 0,
        }
    }

    #[test]
    fn a_session_takes_consumers_only_when_real_time_and_up_to_its_limit() {
        let mut t = SessionTable::new(8);
        let key = t.insert(&req("file"), 0, "tsc", 0, 1).unwrap().key;
        let s = t.by_key_mut(key).unwrap();
        assert!(
            s.attach_consumer()
                .unwrap_err()
                .message
                .contains("is not real-time")
        );
        s.realtime = true;
        for _ in 0..MAX_CONSUMERS_PER_SESSION {
            s.attach_consumer().unwrap();
        }
        let e = s.attach_consumer().unwrap_err();
        assert_eq!(e.why, Why::Resources);
        assert_eq!(s.consumers, MAX_CONSUMERS_PER_SESSION);
    }

    #[test]
    fn a_session_opening_its_file_keeps_its_name_and_id_but_is_not_listed_or_found() {
        let mut t = SessionTable::new(8);
        let key = t.insert(&req("slow"), 0, "tsc", 0, 1).unwrap().key;
        t.by_key_mut(key).unwrap().opening = true;
        assert_eq!(t.iter().count(), 0);
        let e = t.find(&SessionRef::Name("slow".into())).unwrap_err();
        assert_eq!(e.why, Why::WrongState);
        assert!(
            e.message.contains("still opening its log file"),
            "{}",
            e.message
        );
        assert!(t.find(&SessionRef::Id(1)).is_err());
        assert!(t.remove(&SessionRef::Id(1)).is_err());
        // Its name and LoggerID stay taken.
        let e = t.insert(&req("SLOW"), 0, "tsc", 0, 2).unwrap_err();
        assert_eq!(e.why, Why::AlreadyExists);
        assert_eq!(t.insert(&req("b"), 0, "tsc", 0, 3).unwrap().logger_id, 2);
        // Abandoned, it frees both.
        assert!(t.abandon(key).is_some());
        assert_eq!(t.insert(&req("slow"), 0, "tsc", 0, 4).unwrap().logger_id, 1);
    }

    #[test]
    fn logger_ids_are_the_lowest_free_positive_integers() {
        let mut t = SessionTable::new(64);
        assert_eq!(t.insert(&req("a"), 0, "tsc", 0, 7).unwrap().logger_id, 1);
        assert_eq!(t.insert(&req("b"), 0, "tsc", 0, 7).unwrap().logger_id, 2);
        assert_eq!(t.insert(&req("c"), 0, "tsc", 0, 7).unwrap().logger_id, 3);
        t.find_mut(&SessionRef::Id(2)).unwrap().state = SessionState::Stopped;
        t.remove(&SessionRef::Name("b".into())).unwrap();
        assert_eq!(t.insert(&req("d"), 0, "tsc", 0, 7).unwrap().logger_id, 2);
    }

    #[test]
    fn names_are_unique_regardless_of_case_and_stopped_sessions_stay() {
        let mut t = SessionTable::new(64);
        t.insert(&req("Net"), 0, "tsc", 0, 7).unwrap();
        let e = t.insert(&req("net"), 0, "tsc", 0, 7).unwrap_err();
        assert_eq!(e.why, Why::AlreadyExists);
        assert!(e.message.contains("ferret stop Net"), "{}", e.message);
        t.find_mut(&SessionRef::Name("NET".into())).unwrap().state = SessionState::Stopped;
        let e = t.insert(&req("net"), 0, "tsc", 0, 7).unwrap_err();
        assert!(e.message.contains("ferret remove Net"), "{}", e.message);
    }

    #[test]
    fn running_sessions_cannot_be_removed() {
        let mut t = SessionTable::new(64);
        t.insert(&req("a"), 0, "tsc", 0, 7).unwrap();
        let e = t.remove(&SessionRef::Id(1)).unwrap_err();
        assert_eq!(e.why, Why::WrongState);
        assert!(t.find(&SessionRef::Id(1)).is_ok());
    }

    #[test]
    fn stopped_sessions_count_toward_the_listed_cap() {
        let mut t = SessionTable::new(1);
        for i in 0..MAX_LISTED_SESSIONS {
            t.insert(&req(&format!("s{i}")), 0, "tsc", 0, 7).unwrap();
            t.find_mut(&SessionRef::Name(format!("s{i}")))
                .unwrap()
                .state = SessionState::Stopped;
        }
        let e = t.insert(&req("one-more"), 0, "tsc", 0, 7).unwrap_err();
        assert_eq!(e.why, Why::Resources);
        assert!(e.message.contains("ferret remove"), "{}", e.message);
        t.remove(&SessionRef::Name("s0".into())).unwrap();
        t.insert(&req("one-more"), 0, "tsc", 0, 7).unwrap();
    }

    #[test]
    fn the_session_limit_counts_active_sessions_only() {
        let mut t = SessionTable::new(2);
        t.insert(&req("a"), 0, "tsc", 0, 7).unwrap();
        t.insert(&req("b"), 0, "tsc", 0, 7).unwrap();
        let e = t.insert(&req("c"), 0, "tsc", 0, 7).unwrap_err();
        assert_eq!(e.why, Why::Resources);
        assert!(e.message.contains("limit of 2"));
        t.find_mut(&SessionRef::Id(1)).unwrap().state = SessionState::Stopped;
        t.insert(&req("c"), 0, "tsc", 0, 7).unwrap();
    }

    #[test]
    fn unknown_sessions_point_to_list() {
        let t = SessionTable::new(64);
        let e = t.find(&SessionRef::Name("nope".into())).unwrap_err();
        assert_eq!(e.why, Why::NotFound);
        assert_eq!(
            e.message,
            "session 'nope' not found; run 'ferret list' to see sessions"
        );
    }

    fn budgeted() -> SessionTable {
        // Default sessions reserve 64 buffers of 64 KiB: 4 MiB each.
        SessionTable::new(64).with_budget(BufferBudget {
            total: 12 << 20,
            per_user: 8 << 20,
        })
    }

    #[test]
    fn starts_reserve_buffer_memory_per_user_and_in_all() {
        let mut t = budgeted();
        t.insert(&req("a"), 1000, "tsc", 0, 7).unwrap();
        t.insert(&req("b"), 1000, "tsc", 0, 7).unwrap();
        let e = t.insert(&req("c"), 1000, "tsc", 0, 7).unwrap_err();
        assert_eq!(e.why, Why::Resources);
        assert!(
            e.message.starts_with(
                "the sessions of uid 1000 may reserve at most 8 MiB of buffers (the daemon's --user-buffer-memory); 8 MiB are reserved by its other sessions and this session's 64 buffers of 64 KiB ask for 4 MiB;"
            ),
            "{}",
            e.message
        );
        // Another user still has room until the total is reached.
        t.insert(&req("c"), 1001, "tsc", 0, 7).unwrap();
        let e = t.insert(&req("d"), 0, "tsc", 0, 7).unwrap_err();
        assert!(
            e.message
                .starts_with("all sessions together may reserve at most 12 MiB")
        );
        assert!(!t.sessions.values().any(|s| s.name == "d"));
    }

    #[test]
    fn a_stopped_session_releases_its_reservation_and_a_stopping_one_does_not() {
        let mut t = budgeted();
        t.insert(&req("a"), 1000, "tsc", 0, 7).unwrap();
        t.insert(&req("b"), 1000, "tsc", 0, 7).unwrap();
        t.find_mut(&SessionRef::Name("a".into())).unwrap().state = SessionState::Stopping;
        assert!(t.insert(&req("c"), 1000, "tsc", 0, 7).is_err());
        t.find_mut(&SessionRef::Name("a".into())).unwrap().state = SessionState::Stopped;
        t.insert(&req("c"), 1000, "tsc", 0, 7).unwrap();
    }

    #[test]
    fn raising_max_buffers_is_checked_and_lowering_is_not() {
        let mut t = budgeted();
        let key = t.insert(&req("a"), 1000, "tsc", 0, 7).unwrap().key;
        t.insert(&req("b"), 1001, "tsc", 0, 7).unwrap();
        // 128 buffers of 64 KiB: 8 MiB, within the user's cap.
        t.check_max_buffers(key, 128).unwrap();
        let e = t.check_max_buffers(key, 129).unwrap_err();
        assert!(
            e.message.starts_with(
                "the sessions of uid 1000 may reserve at most 8 MiB of buffers (the daemon's --user-buffer-memory); 0 bytes are reserved by its other sessions and --max-buffers 129 (buffers of 64 KiB) would reserve 8256 KiB;"
            ),
            "{}",
            e.message
        );
        assert!(t.check_max_buffers(key, 2).is_ok());
        assert_eq!(
            t.check_max_buffers(SessionKey(99), 2).unwrap_err().why,
            Why::NotFound
        );
    }
}
