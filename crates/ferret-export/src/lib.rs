//! Writes Ferret log files as traces for the viewers people already use:
//! Perfetto protobuf (ui.perfetto.dev, trace_processor), Chrome trace event
//! JSON (ui.perfetto.dev, chrome://tracing) and CTF 1.8 (babeltrace2, Trace
//! Compass).
//!
//! A [`Trace`] is loaded from one or more log files through
//! `ferret-decode`'s [`FileDecoder`], then ordered by time, since a log's
//! buffers come from many threads and are not in time order, CTF needs each
//! stream in time order, and pairing activity starts with their stops needs
//! the starts first. Events are kept compactly (their payloads re-encoded in
//! one byte arena) and decoded again as each writer walks them.

mod chrome;
mod ctf;
pub mod otlp;
mod perfetto;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::Path;

use ferret_abi::Guid;
use ferret_abi::payload::{self, Value};
use ferret_abi::record::LostReason;
use ferret_decode::{Entry, EventType, FileDecoder};

pub use chrome::write_chrome;
pub use ctf::write_ctf;
pub use perfetto::write_perfetto;

/// Opcode of an activity's start event (see docs/ABI.md).
pub const OPCODE_START: u8 = 1;
/// Opcode of an activity's stop event.
pub const OPCODE_STOP: u8 = 2;

/// The `ty` of an item that is a loss.
const LOST: u32 = u32::MAX;
/// The `ty` of an item that is a process's end.
const PROCESS_END: u32 = u32::MAX - 1;
/// Item flags: the arena holds an activity id, then a related id, before
/// the payload.
const HAS_ACTIVITY: u8 = 1;
const HAS_RELATED: u8 = 2;

/// One event, loss or process end, ordered by `ts`. What does not fit here
/// (activity ids, the payload, a loss's counts) is at `at` in the arena.
#[derive(Clone, Copy, Debug)]
struct Item {
    ts: u64,
    at: usize,
    len: u32,
    pid: u32,
    tid: u32,
    ty: u32,
    flags: u8,
}

/// What was read and what could not be: every drop is counted here, and
/// the writers carry the losses into the exported trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Log files read.
    pub files: u64,
    /// Events kept.
    pub events: u64,
    /// Lost events the logs recorded (LOST records), by reason.
    pub lost: BTreeMap<&'static str, u64>,
    /// Buffers the sessions could not write to their logs (from the
    /// trailers): their events are in no file.
    pub log_buffers_lost: u64,
    /// Records or events that could not be decoded and are not exported.
    pub bad_records: u64,
    /// Damaged stretches skipped.
    pub corrupt_stretches: u64,
    /// Bytes in them.
    pub corrupt_bytes: u64,
    /// What the decoder noticed about each file (buffers missing, repeated
    /// or out of order, no trailer), as (file, note): a trace made from a
    /// log that ends early must say so.
    pub notes: Vec<(String, String)>,
}

impl Summary {
    /// Lost events of every reason.
    pub fn lost_total(&self) -> u64 {
        self.lost.values().fold(0u64, |a, n| a.saturating_add(*n))
    }
}

/// Events of one or more log files, in time order once
/// [`Trace::finish`] has run.
#[derive(Debug, Default)]
pub struct Trace {
    types: Vec<EventType>,
    /// Type positions by (provider, event name); equal names with other
    /// fields or ids are other types.
    type_index: HashMap<(String, String), Vec<u32>>,
    items: Vec<Item>,
    arena: Vec<u8>,
    /// Names of lost events' providers, by position.
    names: Vec<String>,
    name_index: HashMap<String, u32>,
    /// Where the decoder's types were last found in `types`, by their
    /// address: looking a type up by name for every event would build two
    /// strings per event. An entry is used only while the type there is
    /// still equal, since a decoder may reuse an address for another type.
    recent_types: HashMap<usize, u32>,
    processes: BTreeMap<u32, String>,
    threads: BTreeSet<(u32, u32)>,
    summary: Summary,
    sorted: bool,
    /// CLOCK_MONOTONIC and CLOCK_REALTIME read together, from the first
    /// log's header.
    clock_anchor: Option<(u64, u64)>,
}

/// One thing in a trace, as the writers see it.
#[derive(Debug)]
pub enum TraceItem<'a> {
    /// An event.
    Event(TraceEvent<'a>),
    /// Events lost at this point.
    Lost {
        /// The time of the event before them in their buffer.
        timestamp_ns: u64,
        /// Their process.
        pid: u32,
        /// Their provider, if known.
        provider: &'a str,
        /// Why.
        reason: &'static str,
        /// How many.
        count: u64,
    },
    /// A provider process ended.
    ProcessEnd {
        /// When.
        timestamp_ns: u64,
        /// Its pid.
        pid: u32,
    },
}

/// One event.
#[derive(Debug)]
pub struct TraceEvent<'a> {
    /// Nanoseconds since the UNIX epoch.
    pub timestamp_ns: u64,
    /// Its type.
    pub ty: &'a EventType,
    /// The type's position in [`Trace::types`].
    pub type_index: usize,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Field values in the order of `ty.fields`.
    pub values: Vec<Value<'a>>,
    /// The activity it belongs to.
    pub activity_id: Option<Guid>,
    /// For a start event, the activity current when it started.
    pub related_activity_id: Option<Guid>,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Trace {
        Trace::default()
    }

    /// Reads every event, loss and process end of a log file. `progress`
    /// is called now and then with the number of entries read so far from
    /// this file. Damage inside the file is counted in the summary, not
    /// returned; an error means the file could not be read at all.
    pub fn add_file(&mut self, path: &Path, progress: &mut dyn FnMut(u64)) -> io::Result<()> {
        let mut decoder = FileDecoder::open(path).map_err(|e| io::Error::other(e.to_string()))?;
        self.sorted = false;
        let clock = &decoder.header().clock;
        if self.clock_anchor.is_none() && clock.anchor_unix_ns != 0 {
            self.clock_anchor = Some((clock.anchor_mono_ns, clock.anchor_unix_ns));
        }
        let mut seen = 0u64;
        decoder.for_each(|entry| {
            seen += 1;
            if seen % 65536 == 0 {
                progress(seen);
            }
            self.add(&entry);
            Ok(())
        })?;
        progress(seen);
        self.summary.files += 1;
        let file = path.display().to_string();
        self.summary.notes.extend(
            decoder
                .stats()
                .notes
                .iter()
                .map(|n| (file.clone(), n.clone())),
        );
        if let Some(t) = decoder.trailer() {
            self.summary.log_buffers_lost = self
                .summary
                .log_buffers_lost
                .saturating_add(t.log_buffers_lost);
        }
        Ok(())
    }

    /// Adds one decoded entry.
    pub fn add(&mut self, entry: &Entry<'_>) {
        self.sorted = false;
        match entry {
            Entry::Event(e) => {
                let ty = self.intern_type(e.ty);
                if !e.process.is_empty() {
                    if self.processes.get(&e.pid).map(String::as_str) != Some(e.process) {
                        self.processes.insert(e.pid, e.process.to_string());
                    }
                } else {
                    self.processes.entry(e.pid).or_default();
                }
                self.threads.insert((e.pid, e.tid));
                let at = self.arena.len();
                let mut flags = 0;
                if let Some(a) = e.activity_id {
                    flags |= HAS_ACTIVITY;
                    self.arena.extend_from_slice(&a.0);
                }
                if let Some(r) = e.related_activity_id {
                    flags |= HAS_RELATED;
                    self.arena.extend_from_slice(&r.0);
                }
                let len: usize = e.values.iter().map(Value::encoded_len).sum();
                let start = self.arena.len();
                self.arena.resize(start + len, 0);
                let mut put = start;
                for v in e.values {
                    put += v.encode(&mut self.arena[put..]);
                }
                self.items.push(Item {
                    ts: e.timestamp_ns,
                    at,
                    len: (self.arena.len() - at) as u32,
                    pid: e.pid,
                    tid: e.tid,
                    ty,
                    flags,
                });
                self.summary.events += 1;
            }
            Entry::Lost {
                timestamp_ns,
                pid,
                provider,
                reason,
                count,
            } => {
                let name = self.intern_name(provider);
                let at = self.arena.len();
                self.arena.extend_from_slice(&count.to_le_bytes());
                self.arena
                    .extend_from_slice(&(*reason as u32).to_le_bytes());
                self.arena.extend_from_slice(&name.to_le_bytes());
                self.items.push(Item {
                    ts: *timestamp_ns,
                    at,
                    len: 16,
                    pid: *pid,
                    tid: 0,
                    ty: LOST,
                    flags: 0,
                });
                let c = self.summary.lost.entry(reason.name()).or_default();
                *c = c.saturating_add(*count);
            }
            Entry::ProcessEnd {
                timestamp_ns,
                pid,
                process,
            } => {
                if !process.is_empty() {
                    self.processes.insert(*pid, process.to_string());
                } else {
                    self.processes.entry(*pid).or_default();
                }
                self.items.push(Item {
                    ts: *timestamp_ns,
                    at: 0,
                    len: 0,
                    pid: *pid,
                    tid: 0,
                    ty: PROCESS_END,
                    flags: 0,
                });
            }
            Entry::Corrupt(c) => {
                self.summary.corrupt_stretches += 1;
                self.summary.corrupt_bytes = self.summary.corrupt_bytes.saturating_add(c.skipped);
            }
            Entry::BadRecord { .. } => self.summary.bad_records += 1,
            Entry::Trailer(_) | Entry::Note(_) => {}
        }
    }

    fn intern_type(&mut self, ty: &EventType) -> u32 {
        let addr = std::ptr::from_ref(ty) as usize;
        if let Some(&i) = self.recent_types.get(&addr) {
            if self.types.get(i as usize) == Some(ty) {
                return i;
            }
        }
        let i = self.intern_type_by_name(ty);
        if self.recent_types.len() >= 1 << 16 {
            self.recent_types.clear();
        }
        self.recent_types.insert(addr, i);
        i
    }

    fn intern_type_by_name(&mut self, ty: &EventType) -> u32 {
        let key = (ty.provider.name.clone(), ty.name.clone());
        let candidates = self.type_index.entry(key).or_default();
        for &i in candidates.iter() {
            if self.types[i as usize] == *ty {
                return i;
            }
        }
        let i = self.types.len() as u32;
        candidates.push(i);
        self.types.push(ty.clone());
        i
    }

    fn intern_name(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.name_index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.name_index.insert(name.to_string(), i);
        i
    }

    /// Orders everything by time; equal times keep reading order.
    pub fn finish(&mut self) {
        if !self.sorted {
            self.items.sort_by_key(|i| i.ts);
            self.sorted = true;
        }
    }

    /// CLOCK_MONOTONIC and CLOCK_REALTIME nanoseconds at one instant, as
    /// the first log's session read them when it started, if a log was
    /// read.
    pub fn clock_anchor(&self) -> Option<(u64, u64)> {
        self.clock_anchor
    }

    /// What was read and lost.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Every event type, by position.
    pub fn types(&self) -> &[EventType] {
        &self.types
    }

    /// Process names by pid ("" when no file named the process).
    pub fn processes(&self) -> &BTreeMap<u32, String> {
        &self.processes
    }

    /// Every (pid, tid) that wrote an event.
    pub fn threads(&self) -> &BTreeSet<(u32, u32)> {
        &self.threads
    }

    /// Events, losses and process ends.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the trace holds nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The earliest time in the trace.
    pub fn first_ns(&self) -> Option<u64> {
        self.items.iter().map(|i| i.ts).min()
    }

    /// The latest time in the trace.
    pub fn last_ns(&self) -> Option<u64> {
        self.items.iter().map(|i| i.ts).max()
    }

    /// Calls `f` with each record in order ([`Trace::finish`] first).
    pub fn for_each(&self, mut f: impl FnMut(TraceItem<'_>) -> io::Result<()>) -> io::Result<()> {
        for item in &self.items {
            let bytes = self.arena.get(item.at..item.at + item.len as usize);
            let bytes = bytes.unwrap_or(&[]);
            match item.ty {
                LOST => {
                    let u64_at = |i: usize| {
                        bytes
                            .get(i..i + 8)
                            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                    };
                    let u32_at = |i: usize| {
                        bytes
                            .get(i..i + 4)
                            .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
                    };
                    let reason = LostReason::from_u32(u32_at(8)).map_or("unknown", |r| r.name());
                    let provider = self.names.get(u32_at(12) as usize).map_or("", |s| s);
                    f(TraceItem::Lost {
                        timestamp_ns: item.ts,
                        pid: item.pid,
                        provider,
                        reason,
                        count: u64_at(0),
                    })?;
                }
                PROCESS_END => f(TraceItem::ProcessEnd {
                    timestamp_ns: item.ts,
                    pid: item.pid,
                })?,
                ty => {
                    let Some(t) = self.types.get(ty as usize) else {
                        continue;
                    };
                    let mut rest = bytes;
                    let mut id = || {
                        let (head, tail) = rest.split_at_checked(16)?;
                        rest = tail;
                        Some(Guid(head.try_into().ok()?))
                    };
                    let activity_id = if item.flags & HAS_ACTIVITY != 0 {
                        id()
                    } else {
                        None
                    };
                    let related_activity_id = if item.flags & HAS_RELATED != 0 {
                        id()
                    } else {
                        None
                    };
                    // The payload was encoded here from decoded values, so
                    // it decodes; were it not to, the event is skipped
                    // rather than exported wrong.
                    let Ok(values) = payload::decode_untrusted(&t.fields, rest) else {
                        continue;
                    };
                    f(TraceItem::Event(TraceEvent {
                        timestamp_ns: item.ts,
                        ty: t,
                        type_index: ty as usize,
                        pid: item.pid,
                        tid: item.tid,
                        values,
                        activity_id,
                        related_activity_id,
                    }))?;
                }
            }
        }
        Ok(())
    }
}

/// Writes a GUID as `ferret fmt` does.
pub(crate) fn guid_text(g: &Guid) -> String {
    g.to_string()
}

/// Bytes as lower-case hex, as `ferret fmt` prints them.
pub(crate) fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[usize::from(x >> 4)] as char);
        s.push(DIGITS[usize::from(x & 15)] as char);
    }
    s
}

/// The name viewers show for an event: `provider/event`, as `ferret fmt`
/// prints it.
pub(crate) fn event_name(ty: &EventType) -> String {
    format!("{}/{}", ty.provider.name, ty.name)
}

/// Calls `progress` every so many records, for the writers.
pub(crate) struct Ticker<'a> {
    done: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<'a> Ticker<'a> {
    pub(crate) fn new(progress: &'a mut dyn FnMut(u64)) -> Ticker<'a> {
        Ticker { done: 0, progress }
    }

    pub(crate) fn tick(&mut self) {
        self.done += 1;
        if self.done % 65536 == 0 {
            (self.progress)(self.done);
        }
    }

    pub(crate) fn end(&mut self) {
        (self.progress)(self.done);
    }
}
