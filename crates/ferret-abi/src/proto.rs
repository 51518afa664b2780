//! The control protocol (docs/ABI.md, "Control protocol").
//!
//! Clients talk to the daemon over a Unix `SOCK_SEQPACKET` socket. Each
//! packet holds one message: a [`Request`] from the client or a [`Response`]
//! from the daemon, encoded with postcard 1.x (varint integers, length-prefixed
//! strings and sequences, enums as a varint variant index followed by the
//! variant's fields). File descriptors ride along as `SCM_RIGHTS` on the
//! packet whose message says it carries one. The first message on every
//! connection is [`Request::Hello`]; the daemon answers [`Response::Hello`] or
//! an error and closes.
//!
//! These are wire types: the daemon converts its own state to them at the
//! boundary. New variants and fields are appended at the end only.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::level::EnableFilter;
use crate::{Guid, Level};

/// The magic in every Hello: "FRT1" little-endian.
pub const PROTO_MAGIC: u32 = u32::from_le_bytes(*b"FRT1");
/// The largest message either side sends or accepts, in bytes.
pub const MAX_MESSAGE: usize = 1 << 20;
/// The longest session name.
pub const MAX_SESSION_NAME: usize = 256;
/// The most providers one session may enable.
pub const MAX_SESSION_PROVIDERS: usize = 256;
/// The most bytes of entries the daemon puts in one page of a list
/// ([`Response::SessionsPage`], [`Response::ProvidersPage`]): the page's
/// own framing (variant, lengths, cursor) takes at most a few dozen bytes
/// more, so a full page still fits [`MAX_MESSAGE`]. Where one packet
/// carries less (the socket send buffer bounds it, to about 208 KiB by
/// default), the daemon fills pages only up to that, less the same margin.
pub const PAGE_BYTES: usize = MAX_MESSAGE - 1024;

/// What kind of peer opens a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A CLI, viewer or test that controls sessions.
    Controller,
    /// A process that registers providers and writes events.
    Provider,
}

/// The first message of every connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTO_MAGIC`].
    pub magic: u32,
    /// The client's ABI major version.
    pub major: u16,
    /// The client's ABI minor version.
    pub minor: u16,
    /// What the client is.
    pub role: Role,
    /// A short description of the client, for `ferret list` and logs.
    pub client: String,
}

/// Names a session by LoggerID or LoggerName.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionRef {
    /// The LoggerID.
    Id(u32),
    /// The LoggerName.
    Name(String),
}

impl SessionRef {
    /// Reads a CLI argument: a number names a LoggerID, anything else a LoggerName.
    pub fn parse(arg: &str) -> SessionRef {
        if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(id) = arg.parse() {
                return SessionRef::Id(id);
            }
        }
        SessionRef::Name(arg.to_string())
    }
}

impl core::fmt::Display for SessionRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SessionRef::Id(id) => write!(f, "{id}"),
            SessionRef::Name(n) => write!(f, "'{n}'"),
        }
    }
}

/// One provider a session enables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSpec {
    /// The provider's name (matched exactly, as ETW matches GUIDs by name hash).
    pub name: String,
    /// Level and keywords.
    pub filter: EnableFilter,
}

/// Where a session's buffers go besides real-time consumers, as ETW's log
/// file modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileMode {
    /// Buffers in order; at the maximum file size (if any) writing stops and
    /// further buffers are counted as log buffers lost.
    #[default]
    Sequential,
    /// A file of the maximum size whose slots are reused, keeping the newest
    /// buffers.
    Circular,
    /// Sequential, after the buffers of an existing Ferret log.
    Append,
    /// Sequential files of at most the maximum size, NAME_1, NAME_2, ...;
    /// the packet carries the directory's descriptor.
    NewFile,
    /// No file: buffers go to real-time consumers only (`--mode real-time`).
    RealTime,
    /// No file: the newest buffers stay in memory until a snapshot saves them.
    InMemory,
}

impl FileMode {
    /// The name the CLI takes and `query` shows.
    pub const fn name(self) -> &'static str {
        match self {
            FileMode::Sequential => "sequential",
            FileMode::Circular => "circular",
            FileMode::Append => "append",
            FileMode::NewFile => "new-file",
            FileMode::RealTime => "real-time",
            FileMode::InMemory => "in-memory",
        }
    }

    /// Every mode, for parsing and help.
    pub const ALL: [FileMode; 6] = [
        FileMode::Sequential,
        FileMode::Circular,
        FileMode::Append,
        FileMode::NewFile,
        FileMode::RealTime,
        FileMode::InMemory,
    ];

    /// True if the mode writes a log file the controller passed.
    pub const fn has_file(self) -> bool {
        !matches!(self, FileMode::RealTime | FileMode::InMemory)
    }
}

/// Everything a controller asks for when it starts a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRequest {
    /// The LoggerName.
    pub name: String,
    /// Providers to enable.
    pub providers: Vec<ProviderSpec>,
    /// The log file's path as the controller opened it (for display; the
    /// daemon writes only to the descriptor that comes with this message).
    pub log_file: String,
    /// Buffer size in KiB.
    pub buffer_kib: u32,
    /// The most buffers the session may hold in memory.
    pub max_buffers: u32,
    /// Milliseconds between timed flushes of partial buffers; 0 flushes
    /// only when buffers fill, on `flush` and on `stop`.
    pub flush_timer_ms: u32,
    /// Buffers allocated when the session starts (at most `max_buffers`).
    pub min_buffers: u32,
    /// The log file mode.
    pub file_mode: FileMode,
    /// The largest log file, in bytes; 0 for no limit. Circular and
    /// new-file modes need one.
    pub max_file_bytes: u64,
    /// Also deliver buffers to real-time consumers (`ferret tail`).
    pub realtime: bool,
    /// A short description of the controller (e.g. "ferret view pid 42"),
    /// shown by `list`.
    pub controller: String,
    /// No-loss mode: a provider thread whose ring is full waits for the
    /// daemon to make room, up to `no_loss_wait_ms`, before it drops an
    /// event (and counts it).
    pub no_loss: bool,
    /// The longest a writer waits for ring space in no-loss mode, in
    /// milliseconds (1 to 60000; ignored without `no_loss`).
    pub no_loss_wait_ms: u32,
}

/// Changes to a running session that ETW allows (`ferret update`); each
/// `None` leaves that property as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRequest {
    /// A new flush timer, milliseconds.
    pub flush_timer_ms: Option<u32>,
    /// A new maximum number of buffers.
    pub max_buffers: Option<u32>,
    /// Switch to a new log file: its path as the controller opened it; the
    /// packet carries its descriptor.
    pub log_file: Option<String>,
    /// A new provider list, replacing the old one.
    pub providers: Option<Vec<ProviderSpec>>,
}

/// A session's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionState {
    /// Collecting events.
    Running,
    /// Providers disabled; unsent events are being drained and written.
    Stopping,
    /// Everything is written and the log file closed.
    Stopped,
}

impl SessionState {
    /// The upper-case name ETW tools print.
    pub const fn name(self) -> &'static str {
        match self {
            SessionState::Running => "RUNNING",
            SessionState::Stopping => "STOPPING",
            SessionState::Stopped => "STOPPED",
        }
    }
}

/// A session's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Events written into the session's buffers.
    pub events: u64,
    /// Events the session wanted but did not get (the sum of the reasons below).
    pub events_lost: u64,
    /// Lost because a provider thread's ring was full.
    pub lost_ring_full: u64,
    /// Lost because the session had no free buffer.
    pub lost_no_buffer: u64,
    /// Lost for any other reason (invalid, no ring, no metadata, corrupt).
    pub lost_other: u64,
    /// Buffers written to the log file.
    pub buffers_written: u64,
    /// Buffers that could not be written to the log file.
    pub log_buffers_lost: u64,
    /// Bytes written to the log file.
    pub bytes_written: u64,
    /// Buffers the session holds now.
    pub buffers_in_use: u64,
    /// Of those, buffers free for new events.
    pub free_buffers: u64,
    /// Buffers real-time consumers could not take (summed over consumers).
    pub rt_buffers_lost: u64,
    /// Circular and in-memory sessions: older buffers replaced by newer
    /// ones, as the mode intends (not a loss).
    pub buffers_overwritten: u64,
    /// Log files written (more than one after rotation or `update -f`).
    pub files: u64,
}

/// What `query`, `list` and the other verbs report about a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The LoggerID.
    pub logger_id: u32,
    /// The LoggerName.
    pub name: String,
    /// The state.
    pub state: SessionState,
    /// The providers it enables.
    pub providers: Vec<ProviderSpec>,
    /// The log file path, as the controller gave it.
    pub log_file: String,
    /// Buffer size in KiB.
    pub buffer_kib: u32,
    /// The most buffers.
    pub max_buffers: u32,
    /// The flush timer in milliseconds (0: none).
    pub flush_timer_ms: u32,
    /// The clock: "tsc" or "monotonic".
    pub clock: String,
    /// The uid that started it.
    pub owner_uid: u32,
    /// Start time, nanoseconds since the UNIX epoch.
    pub started_unix_ns: u64,
    /// Stop time, or 0 while not stopped.
    pub stopped_unix_ns: u64,
    /// Counters.
    pub counters: Counters,
    /// The last error writing the log file, if any.
    pub last_error: Option<String>,
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
    /// Who started the session (the controller's own description).
    pub controller: String,
    /// Events lost per provider name, for providers that lost any.
    pub provider_lost: Vec<(String, u64)>,
    /// No-loss mode: writers wait for ring space rather than drop.
    pub no_loss: bool,
    /// How long writers wait for ring space in no-loss mode, milliseconds.
    pub no_loss_wait_ms: u32,
    /// Log files whose data, trailer included, the daemon has flushed to
    /// stable storage with fsync (at stop, at every file switch and after a
    /// snapshot). Equals `counters.files` once a file session is STOPPED,
    /// unless a sync failed (then `last_error` says so).
    pub files_synced: u64,
}

/// A provider registered with the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// The provider's name.
    pub name: String,
    /// Its GUID.
    pub guid: Guid,
    /// The process that registered it.
    pub pid: u32,
    /// That process's command name.
    pub process: String,
    /// LoggerIDs of the sessions (running or stopping) that enable it.
    pub sessions: Vec<u32>,
    /// The most verbose level any session enables it at, if any.
    pub level: Option<Level>,
}

/// A message from a client to the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The first message on a connection.
    Hello(Hello),
    /// Start a session; the packet carries the log file's descriptor.
    Start(StartRequest),
    /// Stop a session. With `wait`, the answer comes once it is STOPPED;
    /// without, as soon as it is STOPPING.
    Stop {
        /// Which session.
        target: SessionRef,
        /// Wait for STOPPED.
        wait: bool,
        /// "Only mine": refuse unless the session was started with this
        /// controller token (the viewer passes the tokens of its sessions).
        only_token: Option<u64>,
    },
    /// Write every event committed so far to the log file.
    Flush {
        /// Which session.
        target: SessionRef,
    },
    /// Properties and counters of one session.
    Query {
        /// Which session.
        target: SessionRef,
    },
    /// Every session.
    List,
    /// Take a STOPPED session off the list (its log file stays).
    Remove {
        /// Which session.
        target: SessionRef,
    },
    /// Every registered provider.
    Providers,
    /// From a provider process: register the provider in enable slot `slot`.
    RegisterProvider {
        /// The slot the process chose (0 to 1023).
        slot: u32,
        /// The provider's name.
        name: String,
        /// Its GUID.
        guid: Guid,
    },
    /// Change a running session's properties.
    Update {
        /// Which session.
        target: SessionRef,
        /// What to change.
        update: UpdateRequest,
    },
    /// Enable one provider in a running session, or change its filter.
    Enable {
        /// Which session.
        target: SessionRef,
        /// The provider and filter.
        provider: ProviderSpec,
    },
    /// Stop a running session from enabling one provider.
    Disable {
        /// Which session.
        target: SessionRef,
        /// The provider's name.
        provider: String,
    },
    /// Save an in-memory session's buffers to the log file whose
    /// descriptor the packet carries, without stopping it.
    Snapshot {
        /// Which session.
        target: SessionRef,
        /// The file's path as the controller opened it.
        path: String,
    },
    /// Stream every session change on this connection ([`Response::Change`])
    /// until the client hangs up.
    Watch,
    /// Become a real-time consumer of a session: the daemon answers
    /// [`Response::RtStart`], then [`Response::RtData`] as buffers fill or
    /// flush, and [`Response::RtEnd`] once the session is STOPPED.
    Tail {
        /// Which session.
        target: SessionRef,
    },
    /// One page of the session list: the sessions whose LoggerID is
    /// greater than `after` (every session when `None`), in LoggerID
    /// order, as many as fit one packet (see [`PAGE_BYTES`]). Answered with
    /// [`Response::SessionsPage`].
    ListPage {
        /// The `next` of the previous page, or `None` for the first.
        after: Option<u32>,
    },
    /// One page of the registered providers, in registration order, after
    /// the cursor the previous page returned. Answered with
    /// [`Response::ProvidersPage`].
    ProvidersPage {
        /// The `next` of the previous page, or `None` for the first.
        after: Option<ProviderCursor>,
    },
}

/// Where a page of providers ends: the daemon's key of the last
/// registration in it (the provider process's connection, numbered in the
/// order they connected, and the enable slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProviderCursor {
    /// The provider process's region number.
    pub region: u64,
    /// The enable slot.
    pub slot: u32,
}

/// What `watch` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    /// The session list when the watch began, one message per session.
    Present,
    /// A session started.
    Created,
    /// A session changed state (RUNNING, STOPPING, STOPPED).
    State,
    /// A session's properties or providers changed.
    Updated,
    /// A session was taken off the list.
    Removed,
    /// The counters, once a second for every listed session.
    Counters,
}

impl ChangeKind {
    /// The lower-case name `watch` prints.
    pub const fn name(self) -> &'static str {
        match self {
            ChangeKind::Present => "present",
            ChangeKind::Created => "created",
            ChangeKind::State => "state",
            ChangeKind::Updated => "updated",
            ChangeKind::Removed => "removed",
            ChangeKind::Counters => "counters",
        }
    }
}

/// What went wrong, for clients that act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The message could not be decoded or was not expected.
    BadRequest,
    /// Hello with another major version.
    Version,
    /// No session by that LoggerID or LoggerName.
    NotFound,
    /// A session by that name exists.
    AlreadyExists,
    /// A value is out of range or malformed.
    Invalid,
    /// The session is not in a state that allows this.
    WrongState,
    /// The caller may not do this.
    Permission,
    /// The daemon is out of something (session limit, memory).
    Resources,
    /// The daemon failed doing it.
    Internal,
}

/// A refused request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Error)]
#[error("{message}")]
pub struct ErrorReply {
    /// The kind of failure.
    pub code: ErrorCode,
    /// One line for the user: what failed and what to do next.
    pub message: String,
}

/// What the daemon sends a provider with its region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionGrant {
    /// Bytes of the region (the memfd's size).
    pub region_size: u64,
    /// True when the packet also carries an eventfd for watermark wake-ups.
    pub has_eventfd: bool,
}

/// A message from the daemon to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to a controller's Hello.
    Hello {
        /// The daemon's ABI major version.
        major: u16,
        /// The daemon's ABI minor version.
        minor: u16,
        /// The daemon's process id.
        pid: u32,
    },
    /// Answer to a provider's Hello; the packet carries the memfd (and eventfd).
    Region(RegionGrant),
    /// The request failed.
    Error(ErrorReply),
    /// A session, after start, stop, flush, query or remove.
    Session(SessionInfo),
    /// Every session.
    Sessions(Vec<SessionInfo>),
    /// Every provider.
    Providers(Vec<ProviderInfo>),
    /// A provider's registration is in effect: its enable slot is current.
    ProviderRegistered {
        /// The slot.
        slot: u32,
    },
    /// A session started; `token` identifies the controller that started it
    /// (pass it in [`Request::Stop`] to stop only your own sessions). The
    /// token is told to this controller only.
    Started {
        /// The session.
        session: SessionInfo,
        /// The controller token.
        token: u64,
    },
    /// One change of the session list, on a watch.
    Change {
        /// What happened.
        kind: ChangeKind,
        /// The session after the change.
        session: SessionInfo,
    },
    /// The start of a real-time stream: the session and the encoded log file
    /// header its buffers would have (clock anchors for the timestamps).
    RtStart {
        /// The session.
        session: SessionInfo,
        /// A file header, as in docs/FORMAT.md.
        header: Vec<u8>,
    },
    /// Records for a real-time consumer: one sealed buffer (docs/FORMAT.md,
    /// "Buffers") holding the records added since the last one.
    RtData {
        /// The buffer.
        buffer: Vec<u8>,
        /// Buffers this consumer missed so far because it fell behind.
        missed_buffers: u64,
        /// Events in those buffers.
        missed_events: u64,
    },
    /// The session is STOPPED: every event it accepted was sent before this.
    RtEnd {
        /// The session's final state and counters.
        session: SessionInfo,
        /// Buffers this consumer missed in all.
        missed_buffers: u64,
        /// Events in those buffers.
        missed_events: u64,
    },
    /// A snapshot was saved.
    Snapshot {
        /// The session.
        session: SessionInfo,
        /// Buffers saved.
        buffers: u64,
        /// Bytes of the file.
        bytes: u64,
    },
    /// One page of the session list, in LoggerID order.
    SessionsPage {
        /// The sessions.
        sessions: Vec<SessionInfo>,
        /// `Some(id)` when more sessions follow: ask again with
        /// `after: Some(id)`; `None` when this page is the last.
        next: Option<u32>,
    },
    /// One page of the registered providers.
    ProvidersPage {
        /// The providers.
        providers: Vec<ProviderInfo>,
        /// `Some(cursor)` when more follow: ask again with it; `None` when
        /// this page is the last.
        next: Option<ProviderCursor>,
    },
    /// On a watch: the daemon skipped `skipped` changes because the client
    /// read too slowly for them to fit its queue. The current state of
    /// every session follows as [`ChangeKind::Present`] changes (new
    /// changes may come between them), then [`Response::WatchResynced`].
    WatchLagged {
        /// Changes skipped since the last change this watch received.
        skipped: u64,
    },
    /// On a watch: every session listed now has been sent since the last
    /// [`Response::WatchLagged`]; a session the client knew before it
    /// that was not mentioned since is gone.
    WatchResynced,
}

/// Why a message could not be encoded or decoded.
#[derive(Debug, Error)]
pub enum ProtoError {
    /// Postcard failed.
    #[error("malformed message: {0}")]
    Codec(#[from] postcard::Error),
    /// The message is larger than [`MAX_MESSAGE`].
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE}-byte limit")]
    TooLarge(usize),
}

/// Encodes a message for one packet.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtoError> {
    let bytes = postcard::to_allocvec(msg)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(ProtoError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// The number of bytes [`encode`] would produce, without producing them.
pub fn encoded_len<T: Serialize>(msg: &T) -> Result<usize, ProtoError> {
    Ok(postcard::serialize_with_flavor(
        msg,
        postcard::ser_flavors::Size::default(),
    )?)
}

/// Decodes one packet from an untrusted peer.
pub fn decode_untrusted<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, ProtoError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(ProtoError::TooLarge(bytes.len()));
    }
    Ok(postcard::from_bytes(bytes)?)
}

/// The path of file number `index` (from 1) of a new-file series whose
/// pattern is `pattern`: a `%d` in the file name is replaced by the number;
/// without one, `_N` goes before the extension (`trace.flog` → `trace_2.flog`).
pub fn rotated_file_name(pattern: &str, index: u32) -> String {
    let (dir, file) = match pattern.rfind('/') {
        Some(i) => pattern.split_at(i + 1),
        None => ("", pattern),
    };
    if file.contains("%d") {
        return format!("{dir}{}", file.replacen("%d", &index.to_string(), 1));
    }
    match file.rfind('.').filter(|&i| i > 0) {
        Some(i) => format!("{dir}{}_{index}{}", &file[..i], &file[i..]),
        None => format!("{dir}{file}_{index}"),
    }
}

/// Checks a LoggerName: 1 to 256 bytes, printable, not all digits.
pub fn validate_session_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("session name is empty; give a name such as 'net-trace'".into());
    }
    if name.len() > MAX_SESSION_NAME {
        return Err(format!(
            "session name is {} bytes long; the limit is {MAX_SESSION_NAME}",
            name.len()
        ));
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "session name '{name}' is all digits, which would read as a LoggerID; add a letter"
        ));
    }
    // Only what the message promises: a name is shown in lists, logs and
    // file headers, and anything beyond ASCII letters, digits and these
    // three signs (control, invisible and bidi characters among them) could
    // make one name look like another.
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "session name {name:?} contains {c:?}; use ASCII letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// Checks a provider name: 1 to 1024 bytes with no control characters.
pub fn validate_provider_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("provider name is empty".into());
    }
    if name.len() > crate::record::MAX_NAME {
        return Err(format!(
            "provider name is {} bytes long; the limit is {}",
            name.len(),
            crate::record::MAX_NAME
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "provider name {name:?} contains a control character"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_name_logger_ids() {
        assert_eq!(SessionRef::parse("12"), SessionRef::Id(12));
        assert_eq!(SessionRef::parse("net"), SessionRef::Name("net".into()));
        assert_eq!(SessionRef::parse("1a"), SessionRef::Name("1a".into()));
    }

    #[test]
    fn rotated_files_are_numbered() {
        assert_eq!(rotated_file_name("/t/trace.flog", 2), "/t/trace_2.flog");
        assert_eq!(rotated_file_name("/t/run-%d.log", 3), "/t/run-3.log");
        assert_eq!(rotated_file_name("trace", 1), "trace_1");
        assert_eq!(rotated_file_name("/a.b/.hidden", 1), "/a.b/.hidden_1");
    }

    #[test]
    fn session_names_are_checked() {
        assert!(validate_session_name("net-trace").is_ok());
        assert!(
            validate_session_name("123")
                .unwrap_err()
                .contains("all digits")
        );
        assert!(validate_session_name("").is_err());
        assert!(validate_session_name("a b").is_err());
        for hidden in ["net\u{202e}txt", "a\u{200b}b", "\u{feff}net", "caf\u{e9}"] {
            let e = validate_session_name(hidden).unwrap_err();
            assert!(
                e.ends_with("; use ASCII letters, digits, '-', '_' and '.'"),
                "{e}"
            );
        }
        assert!(validate_session_name(&"x".repeat(257)).is_err());
    }

    #[test]
    fn requests_round_trip() {
        let req = Request::Start(StartRequest {
            name: "s".into(),
            providers: vec![ProviderSpec {
                name: "P".into(),
                filter: EnableFilter::level(Level::Verbose),
            }],
            log_file: "/tmp/x".into(),
            buffer_kib: 64,
            max_buffers: 32,
            flush_timer_ms: 1000,
            min_buffers: 4,
            file_mode: FileMode::Circular,
            max_file_bytes: 1 << 20,
            realtime: true,
            controller: "test".into(),
            no_loss: true,
            no_loss_wait_ms: 250,
        });
        let bytes = encode(&req).unwrap();
        assert_eq!(decode_untrusted::<Request>(&bytes).unwrap(), req);
    }

    #[test]
    fn encoded_len_is_what_encode_writes_and_a_full_page_fits_a_message() {
        let page = Response::SessionsPage {
            sessions: Vec::new(),
            next: Some(u32::MAX),
        };
        assert_eq!(encoded_len(&page).unwrap(), encode(&page).unwrap().len());
        // A page's framing (variant, length of up to 4096 entries, cursor)
        // takes far less than what PAGE_BYTES leaves of a message.
        let framing = encoded_len(&page).unwrap() + 5;
        assert!(PAGE_BYTES + framing <= MAX_MESSAGE);
        let cursor = Request::ProvidersPage {
            after: Some(ProviderCursor {
                region: u64::MAX,
                slot: u32::MAX,
            }),
        };
        assert_eq!(
            decode_untrusted::<Request>(&encode(&cursor).unwrap()).unwrap(),
            cursor
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_untrusted::<Request>(&bytes);
            let _ = decode_untrusted::<Response>(&bytes);
        }
    }
}
