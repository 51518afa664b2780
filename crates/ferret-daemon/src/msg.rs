//! What the daemon's threads hand each other: the control thread's events
//! and replies, the drain's and the writer's commands, and the types they
//! carry. They live here, below every thread module, so that no thread
//! module needs another to name what it sends (the tidy test
//! `the_workspace_keeps_its_layering.rs` holds that).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use ferret_abi::proto::{Counters, ErrorReply, Request, Response};
use ferret_format::BufferBuilder;
use ferret_session::{RegionId, RouteTable, SessionCounters, SessionKey};

use crate::logfile;
use crate::shm::ShmRegion;

/// Identifies one client connection.
pub(crate) type ConnId = u64;

/// The kernel's word on who is at the other end of a connection
/// (SO_PEERCRED and SO_PEERGROUPS, taken when it connected); nothing a peer
/// says in a message changes it.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub(crate) pid: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Supplementary groups.
    pub(crate) groups: Arc<[u32]>,
    /// Member of the daemon's control group (`--control-group`).
    pub(crate) in_control_group: bool,
}

impl Peer {
    /// True if the peer may create files in a directory whose owner,
    /// group and mode are those given: write and search permission by the
    /// mode bits that apply to it (root may).
    pub(crate) fn may_write_dir(&self, owner: u32, group: u32, mode: u32) -> bool {
        let bits = if self.uid == 0 {
            return true;
        } else if self.uid == owner {
            mode >> 6
        } else if self.gid == group || self.groups.contains(&group) {
            mode >> 3
        } else {
            mode
        };
        bits & 0o3 == 0o3
    }
}

/// What a streaming connection (watch, tail) forwards.
#[derive(Debug)]
pub(crate) enum StreamItem {
    /// A message for the client.
    Msg(Box<Response>),
    /// A message for a watch client, and what it costs the watch's queue:
    /// the connection subtracts `cost` from `queued` once it has sent it
    /// (see `watch.rs`).
    Charged {
        msg: Box<Response>,
        cost: usize,
        queued: Arc<std::sync::atomic::AtomicUsize>,
    },
    /// A consumer's marker: every event of the stopping session before this
    /// is on its way; tell the control thread.
    Done {
        key: SessionKey,
        missed_buffers: u64,
        missed_events: u64,
    },
}

/// What a connection thread sends back to its client.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A message alone.
    Msg(Response),
    /// A region grant, with the region's memfd and eventfd attached.
    Region(Response, Arc<ShmRegion>),
    /// From now on the connection forwards this stream.
    Stream(Receiver<StreamItem>),
}

/// Everything the control thread reacts to.
#[derive(Debug)]
pub(crate) enum ControlEvent {
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
    /// The writer saved a snapshot (buffers, bytes) or failed.
    Snapshotted {
        token: u64,
        result: Result<(u64, u64), String>,
    },
    /// A consumer's connection has sent everything up to the end marker.
    ConsumerDone {
        conn: ConnId,
        key: SessionKey,
        missed_buffers: u64,
        missed_events: u64,
    },
    /// The file work a request needed is done (see [`Control::prepare`]).
    Prepared { token: u64, result: Prepared },
    /// SIGTERM or SIGINT.
    Shutdown,
}

/// The result of a request's file work, done off the control thread.
#[derive(Debug)]
pub(crate) enum Prepared {
    Start(Result<logfile::OpenedLog, ErrorReply>),
    /// The file of an `update -f`, with where its buffers start.
    Switch(Result<(File, u64), ErrorReply>),
    Snapshot(Result<File, ErrorReply>),
}

/// What the control thread asks of the drain thread.
#[derive(Debug)]
pub(crate) enum DrainCmd {
    /// A provider process attached.
    AddRegion {
        region: Arc<ShmRegion>,
        process: String,
    },
    /// A provider process went away: drain what it committed, record its
    /// end in the sessions that took events from it, then forget it.
    CloseRegion(RegionId),
    /// Sessions or providers changed.
    Routes(Arc<RouteTable>),
    /// A session started.
    AddSession(SessionSetup),
    /// Write everything committed so far, then tell the writer to report `token`.
    Flush { key: SessionKey, token: u64 },
    /// Final pass, last buffer, trailer: the session's providers are already disabled.
    Stop { key: SessionKey },
    /// A real-time consumer attaches to a session.
    Attach { key: SessionKey, consumer: Consumer },
    /// A consumer's connection closed.
    Detach { key: SessionKey, conn: ConnId },
    /// `update`: a new flush timer (outer None: unchanged; inner None: off)
    /// and maximum buffers.
    Update {
        key: SessionKey,
        flush_timer: Option<Option<Duration>>,
        max_buffers: Option<usize>,
    },
    /// `update -f`: finish the log file and go on in `file`.
    Switch {
        key: SessionKey,
        file: std::fs::File,
        data_offset: u64,
    },
    /// Save an in-memory session's buffers to `file`.
    Snapshot {
        key: SessionKey,
        file: std::fs::File,
        header: Vec<u8>,
        token: u64,
    },
}

/// A real-time consumer as the drain sees it.
#[derive(Debug)]
pub(crate) struct Consumer {
    pub(crate) conn: ConnId,
    pub(crate) tx: Sender<StreamItem>,
    pub(crate) missed_buffers: u64,
    pub(crate) missed_events: u64,
}

impl Consumer {
    pub(crate) fn new(conn: ConnId, tx: Sender<StreamItem>) -> Consumer {
        Consumer {
            conn,
            tx,
            missed_buffers: 0,
            missed_events: 0,
        }
    }
}

/// Chunks a consumer may have queued before further ones are dropped for
/// it (counted), so that a consumer that cannot keep up never holds back
/// the session or the providers.
pub(crate) const RT_QUEUE_LIMIT: usize = 64;

/// What the drain needs to know about a new session.
#[derive(Debug)]
pub(crate) struct SessionSetup {
    pub(crate) key: SessionKey,
    pub(crate) buffer_size: usize,
    pub(crate) max_buffers: usize,
    pub(crate) flush_timer: Option<Duration>,
    pub(crate) counters: Arc<SessionCounters>,
    /// Buffers allocated at start.
    pub(crate) min_buffers: usize,
    /// Whether buffers go to a log file (else to memory or nowhere).
    pub(crate) writes_file: bool,
    /// Real-time only: buffers no consumer takes are lost (counted).
    pub(crate) realtime_only: bool,
    /// Repeat the metadata events need in every buffer whose sequence
    /// number is a multiple of this (1: every buffer), so that each file of
    /// a series, each slot of a circular file and each buffer kept in memory
    /// decodes alone.
    pub(crate) describe_every: Option<u64>,
    /// The sequence number of the first buffer.
    pub(crate) first_seq: u64,
    /// No-loss mode: hold events in the rings much longer (providers wait
    /// for room) rather than count them lost for want of a buffer.
    pub(crate) no_loss: bool,
}

/// What the drain thread (and the control thread, for `Open`) asks the writer.
#[derive(Debug)]
pub(crate) enum WriteCmd {
    /// A session's sink: its log file (header already written), memory, or nothing.
    Open {
        key: SessionKey,
        sink: SinkSetup,
        counters: Arc<SessionCounters>,
    },
    /// A full buffer, sealed; it goes back to the drain afterwards (at once,
    /// or once an in-memory session no longer keeps it).
    Write {
        key: SessionKey,
        seq: u64,
        buffer: BufferBuilder,
    },
    /// A copy of a partly filled buffer, sealed.
    WriteCopy {
        key: SessionKey,
        seq: u64,
        bytes: Vec<u8>,
    },
    /// Everything sent before this is written: tell the control thread.
    Flushed { key: SessionKey, token: u64 },
    /// Finish the current log file (trailer with sequence `seq`, sync,
    /// close) and go on in `file`, whose header is written; its first
    /// buffer has sequence `first_seq`.
    Switch {
        key: SessionKey,
        seq: u64,
        file: File,
        data_offset: u64,
        first_seq: u64,
        /// The session's counters when the drain switched: the old file's
        /// trailer reports those, not events the drain counted for the new
        /// file before this command was handled.
        at_switch: Counters,
    },
    /// Save an in-memory session's kept buffers, then `partial` (the
    /// current buffer, sealed), to `file` after `header`.
    Snapshot {
        key: SessionKey,
        file: File,
        header: Vec<u8>,
        partial: Option<Vec<u8>>,
        next_seq: u64,
        token: u64,
    },
    /// Write the trailer with sequence `seq`, sync, close, and tell the control thread.
    Finish { key: SessionKey, seq: u64 },
}

/// Where a session's buffers go.
#[derive(Debug)]
pub(crate) enum SinkSetup {
    /// A log file whose header is written; data starts at `data_offset`.
    File {
        file: File,
        data_offset: u64,
        buffer_size: u64,
        layout: FileLayout,
        /// The sequence number of the buffer that goes in the file's first
        /// free slot; `first_slot` is that slot (non-zero when appending).
        first_seq: u64,
        first_slot: u64,
        /// For new-file mode: how to create the next files.
        series: Option<Box<Series>>,
    },
    /// In-memory mode: keep the newest `keep` buffers.
    Memory { keep: usize },
    /// Real-time only: buffers go straight back.
    Discard,
}

/// How sequence numbers map to the slots of one log file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileLayout {
    /// Slot = sequence − first sequence; at most `data_slots` data slots
    /// (None: unlimited), the trailer after the last.
    Sequential { data_slots: Option<u64> },
    /// `data_slots` slots reused in turn; the trailer in the slot after them.
    Circular { data_slots: u64 },
}

/// The next files of a new-file series.
#[derive(Debug)]
pub(crate) struct Series {
    /// The directory the controller opened.
    pub(crate) dir: std::os::fd::OwnedFd,
    /// The path pattern (see `ferret_abi::proto::rotated_file_name`).
    pub(crate) pattern: String,
    /// The header of file 1; later files change `file_index`.
    pub(crate) header: ferret_format::FileHeader,
    /// The number of the file being written.
    pub(crate) index: u32,
    /// Who should own new files when the daemon runs as root.
    pub(crate) owner: Option<(u32, u32)>,
    /// The controller that started the session: each file is created only
    /// if it may still create files in the directory.
    pub(crate) controller: Peer,
}

/// Asks the scheduler to prefer the calling thread (nice -10) when it is
/// allowed to (root, or an RLIMIT_NICE that permits it). Under overload the
/// drain then takes the CPU it needs from the producers, which slows them
/// down instead of making them drop events. Without the permission the
/// thread keeps its normal priority.
pub(crate) fn raise_priority() {
    let tid = rustix::thread::gettid();
    let _ = rustix::process::setpriority_process(Some(tid), -10);
}
