//! Turning a log file's records into typed events.

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use ferret_abi::Guid;
use ferret_abi::payload::{self, Value};
use ferret_abi::record::{ContextMeta, FieldMeta, LostReason, Record};
use ferret_format::{
    BufferHeader, Corruption, FileHeader, FormatError, Item, LogReader, Records, Timebase, Trailer,
    buffer_kind, check_buffer, mode,
};

/// A provider instance as the file describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedProvider {
    /// The provider's name.
    pub name: String,
    /// Its GUID.
    pub guid: Guid,
    /// The process that registered it.
    pub pid: u32,
}

/// An event type as the file describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventType {
    /// The event's name.
    pub name: String,
    /// The event id.
    pub event_id: u16,
    /// Level, 1 to 5.
    pub level: u8,
    /// Opcode.
    pub opcode: u8,
    /// Keyword mask.
    pub keywords: u64,
    /// Fields in payload order.
    pub fields: Vec<FieldMeta>,
    /// The provider.
    pub provider: Arc<DecodedProvider>,
}

/// One decoded event, borrowing from the decoder until the callback returns.
#[derive(Debug)]
pub struct Event<'a> {
    /// Nanoseconds since the UNIX epoch.
    pub timestamp_ns: u64,
    /// The event's type.
    pub ty: &'a EventType,
    /// The process's command name, if the file recorded it.
    pub process: &'a str,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Field values, in the order of `ty.fields`; empty when the decoder
    /// was told not to decode them (`decode_values(false)`). The decoder
    /// reuses one buffer for every event's values, so a reader that keeps
    /// them copies them (`to_vec`).
    pub values: &'a [Value<'a>],
    /// The activity the event belongs to, if it was written inside one.
    pub activity_id: Option<Guid>,
    /// The related activity: for a start event, the activity that was
    /// current when this one started.
    pub related_activity_id: Option<Guid>,
}

/// What the decoder found next.
#[derive(Debug)]
pub enum Entry<'a> {
    /// An event.
    Event(Event<'a>),
    /// Events lost at this point of the stream.
    Lost {
        /// The time of the event before it, if any.
        timestamp_ns: u64,
        /// Their process.
        pid: u32,
        /// Their provider's name, if known.
        provider: &'a str,
        /// Why.
        reason: LostReason,
        /// How many.
        count: u64,
    },
    /// A provider process ended: everything it committed before is above.
    ProcessEnd {
        /// When the daemon noticed and had drained the process's rings.
        timestamp_ns: u64,
        /// The process id.
        pid: u32,
        /// Its command name, if the file recorded it.
        process: &'a str,
    },
    /// A stretch of the file that was skipped.
    Corrupt(Corruption),
    /// A record or event that could not be decoded; the buffer's remaining
    /// records are skipped when the record's length is not trustworthy.
    BadRecord {
        /// File offset of the buffer holding it.
        buffer_offset: u64,
        /// What was wrong.
        error: String,
    },
    /// One session's final counters. An appended file holds one trailer
    /// per session that stopped cleanly.
    Trailer(Trailer),
    /// Something the reader of the output should know about how the input
    /// was read, such as a circular file read in file order rather than
    /// oldest first.
    Note(String),
}

/// Counts gathered while decoding, for `--summary`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Good buffers read.
    pub buffers: u64,
    /// Stretches skipped.
    pub corrupt_stretches: u64,
    /// Bytes skipped.
    pub corrupt_bytes: u64,
    /// Events decoded.
    pub events: u64,
    /// Records or events that could not be decoded.
    pub bad_records: u64,
    /// Lost events recorded in the stream, by reason name.
    pub lost: Vec<(LostReason, u64)>,
    /// Events per (provider, event name).
    pub per_event: HashMap<(String, String), u64>,
    /// Earliest event time.
    pub first_ns: Option<u64>,
    /// Latest event time.
    pub last_ns: Option<u64>,
    /// TRAILER records read: one per session that stopped cleanly. An
    /// appended file may hold several.
    pub trailers: u64,
    /// Good data buffers read after the last trailer: when a file has a
    /// trailer and this is not zero, its last session did not stop cleanly
    /// (or is still running).
    pub buffers_after_trailer: u64,
    /// Notes about how the input was read (also given as [`Entry::Note`]).
    pub notes: Vec<String>,
    /// PROCESS_END records read: provider processes that ended while the
    /// session ran.
    pub process_ends: u64,
}

impl Stats {
    /// Counts come from the file, so sums saturate rather than overflow.
    fn add_lost(&mut self, reason: LostReason, n: u64) {
        match self.lost.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, c)) => *c = c.saturating_add(n),
            None => self.lost.push((reason, n)),
        }
    }

    /// Lost events of every reason.
    pub fn lost_total(&self) -> u64 {
        self.lost
            .iter()
            .fold(0u64, |a, (_, n)| a.saturating_add(*n))
    }
}

/// The most metadata entries a decoder keeps, so a hostile file cannot make
/// it allocate without bound. A definition that replaces one already kept
/// is always taken.
const MAX_METADATA: usize = 1 << 20;

/// The most bytes of metadata (names and field lists, with a fixed cost per
/// entry) a decoder keeps. The entry cap alone let a crafted file of a
/// million definitions with long names take a gigabyte.
const MAX_METADATA_BYTES: usize = 64 << 20;

/// The metadata bytes kept, against [`MAX_METADATA_BYTES`].
#[derive(Debug, Default)]
struct MetadataBudget {
    used: usize,
    /// Whether a definition was refused (said once, as a note).
    refused: bool,
}

impl MetadataBudget {
    /// Whether a definition costing `new` bytes may replace one costing
    /// `old` (0 for a new key); if so, it is charged.
    fn take(&mut self, new: usize, old: usize) -> bool {
        let used = self.used.saturating_sub(old).saturating_add(new);
        if used > MAX_METADATA_BYTES {
            return false;
        }
        self.used = used;
        true
    }
}

/// What a provider definition costs [`MetadataBudget`].
fn provider_cost(name: &str) -> usize {
    std::mem::size_of::<DecodedProvider>() + 64 + name.len()
}

/// What an event type costs [`MetadataBudget`].
fn type_cost(name: &str, fields: &[FieldMeta]) -> usize {
    std::mem::size_of::<EventType>()
        + 64
        + name.len()
        + fields
            .iter()
            .map(|f| std::mem::size_of::<FieldMeta>() + f.name.len())
            .sum::<usize>()
}

/// What a process name costs [`MetadataBudget`].
fn process_cost(name: &str) -> usize {
    std::mem::size_of::<String>() + 32 + name.len()
}

/// Says once, as a note, that metadata beyond [`MAX_METADATA_BYTES`] is not
/// kept.
fn refuse_metadata(
    budget: &mut MetadataBudget,
    stats: &mut Stats,
    f: &mut impl FnMut(Entry<'_>) -> io::Result<()>,
) -> io::Result<()> {
    if budget.refused {
        return Ok(());
    }
    budget.refused = true;
    let note = format!(
        "the file defines more than {} MiB of providers, event types and process names; later definitions are not kept, and events that need them count as undecodable",
        MAX_METADATA_BYTES >> 20
    );
    stats.notes.push(note.clone());
    f(Entry::Note(note))
}

/// Inserts a definition unless the table is full of others.
fn define<K: std::hash::Hash + Eq, V>(table: &mut HashMap<K, V>, key: K, value: V) {
    if table.len() < MAX_METADATA || table.contains_key(&key) {
        table.insert(key, value);
    }
}

/// Metadata kept by key, each value at a position in `list` that never
/// changes while it is kept, so a caller may remember a position instead of
/// hashing the key again. A key is redefined in place; a new key is taken
/// only while the table holds fewer than [`MAX_METADATA`] values, so a
/// hostile file cannot make it grow without bound.
#[derive(Debug)]
struct Positions<K, V> {
    index: HashMap<K, usize>,
    list: Vec<V>,
}

impl<K: std::hash::Hash + Eq, V> Positions<K, V> {
    fn new() -> Self {
        Positions {
            index: HashMap::new(),
            list: Vec::new(),
        }
    }

    /// Where the value of `key` is, if it is kept.
    fn find(&self, key: &K) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// The value at a position [`Positions::find`] gave.
    fn at(&self, at: usize) -> Option<&V> {
        self.list.get(at)
    }

    fn define(&mut self, key: K, value: V) {
        if let Some(&at) = self.index.get(&key) {
            if let Some(slot) = self.list.get_mut(at) {
                *slot = value;
            }
        } else if self.list.len() < MAX_METADATA {
            self.index.insert(key, self.list.len());
            self.list.push(value);
        }
    }

    fn clear(&mut self) {
        self.index.clear();
        self.list.clear();
    }
}

/// Slots in [`TypeTable`]'s cache of recent lookups: a power of two, more
/// than the event types a busy buffer interleaves.
const RECENT_TYPES: usize = 64;

/// The event types by (source, type id). Every event looks its type up, so
/// a small direct-mapped cache of recent lookups sits in front of the
/// (SipHash, so collision-resistant against hostile files) map; a type's
/// position never changes while it is kept, so a cached position stays
/// right until the table is cleared. The cache is made of cells so that a
/// lookup needs only a shared borrow, which the event keeps while the
/// per-event counts read the table.
#[derive(Debug)]
struct TypeTable {
    types: Positions<(u32, u16), EventType>,
    /// Recent lookups: key and position; `usize::MAX` when empty.
    recent: [Cell<((u32, u16), usize)>; RECENT_TYPES],
}

/// An empty slot of [`TypeTable::recent`].
const NO_TYPE: ((u32, u16), usize) = ((0, 0), usize::MAX);

impl TypeTable {
    fn new() -> TypeTable {
        TypeTable {
            types: Positions::new(),
            recent: std::array::from_fn(|_| Cell::new(NO_TYPE)),
        }
    }

    fn slot(key: (u32, u16)) -> usize {
        (key.0 as usize)
            .wrapping_mul(31)
            .wrapping_add(usize::from(key.1))
            % RECENT_TYPES
    }

    /// The type with this key, through the cache.
    fn get(&self, key: (u32, u16)) -> Option<&EventType> {
        let slot = &self.recent[TypeTable::slot(key)];
        let (k, at) = slot.get();
        if k == key && at != usize::MAX {
            return self.types.at(at);
        }
        let at = self.types.find(&key)?;
        slot.set((key, at));
        self.types.at(at)
    }

    /// The type with this key, without touching the cache.
    fn peek(&self, key: (u32, u16)) -> Option<&EventType> {
        self.types.at(self.types.find(&key)?)
    }

    fn define(&mut self, key: (u32, u16), ty: EventType) {
        self.types.define(key, ty);
    }

    fn clear(&mut self) {
        self.types.clear();
        for slot in &self.recent {
            slot.set(NO_TYPE);
        }
    }
}

/// What a PROCESS record names: a source (one provider process as the
/// daemon saw it), or only a pid in files written before PROCESS records
/// carried their source. A pid alone is ambiguous: the kernel reuses pids,
/// and processes in different PID namespaces may share one, so a name is
/// looked up by source first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ProcessKey {
    Source(u32),
    Pid(u32),
}

/// The processes' command names by source (or pid). A buffer's events
/// mostly share one process, so the decoder remembers where its name is
/// instead of hashing the key for each event.
type ProcessTable = Positions<ProcessKey, String>;

impl ProcessTable {
    /// The name at a position [`Positions::find`] gave, or "".
    fn name(&self, at: Option<usize>) -> &str {
        at.and_then(|i| self.at(i)).map_or("", String::as_str)
    }

    /// Where the name of the process of `source` is, or, for a file whose
    /// PROCESS records name no source, that of `pid`.
    fn locate(&self, source: u32, pid: u32) -> Option<usize> {
        self.find(&ProcessKey::Source(source))
            .or_else(|| self.find(&ProcessKey::Pid(pid)))
    }
}

/// The most (type, count) pairs gathered before they are added to
/// [`Stats::per_event`]. A buffer seldom holds more distinct types.
const MAX_PENDING_COUNTS: usize = 16;

/// Adds one event of type `key` to the counts not yet in
/// [`Stats::per_event`]. Counting there directly would build two Strings
/// per event for the map's key; counting by type key and adding up once per
/// buffer costs a comparison or two.
fn count_event(
    pending: &mut Vec<((u32, u16), u64)>,
    key: (u32, u16),
    types: &TypeTable,
    stats: &mut Stats,
) {
    if let Some((k, n)) = pending.last_mut() {
        if *k == key {
            *n += 1;
            return;
        }
    }
    if let Some((_, n)) = pending.iter_mut().find(|(k, _)| *k == key) {
        *n += 1;
        return;
    }
    if pending.len() >= MAX_PENDING_COUNTS {
        flush_counts(pending, types, stats);
    }
    pending.push((key, 1));
}

/// Adds the pending counts to [`Stats::per_event`] under their types'
/// names. It must run before a type is redefined or the table cleared, so
/// that counts go to the names they were counted under.
fn flush_counts(pending: &mut Vec<((u32, u16), u64)>, types: &TypeTable, stats: &mut Stats) {
    for (key, n) in pending.drain(..) {
        if let Some(ty) = types.peek(key) {
            let c = stats
                .per_event
                .entry((ty.provider.name.clone(), ty.name.clone()))
                .or_default();
            *c = c.saturating_add(n);
        }
    }
}

/// What decoding carries from one buffer to the next: the metadata tables,
/// the clock and the counts. Files and real-time streams share it, so both
/// decode buffers the same way.
#[derive(Debug)]
struct DecodeState {
    timebase: Timebase,
    providers: HashMap<(u32, u32), Arc<DecodedProvider>>,
    types: TypeTable,
    processes: ProcessTable,
    /// The trailers read so far, added up.
    trailer: Option<Trailer>,
    stats: Stats,
    collect_per_event: bool,
    /// Per-event counts not yet in `stats.per_event`.
    pending_counts: Vec<((u32, u16), u64)>,
    /// Whether events carry their field values; when not, payloads are
    /// still checked, so the same records count as bad.
    decode_values: bool,
    budget: MetadataBudget,
}

impl DecodeState {
    fn new(header: &FileHeader) -> DecodeState {
        DecodeState {
            timebase: Timebase::new(&header.clock, None),
            providers: HashMap::new(),
            types: TypeTable::new(),
            processes: ProcessTable::new(),
            trailer: None,
            stats: Stats::default(),
            collect_per_event: false,
            pending_counts: Vec::new(),
            decode_values: true,
            budget: MetadataBudget::default(),
        }
    }

    fn note(&mut self, note: String) {
        self.stats.notes.push(note);
    }

    fn corrupt(
        &mut self,
        c: Corruption,
        f: &mut impl FnMut(Entry<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.stats.corrupt_stretches += 1;
        self.stats.corrupt_bytes = self.stats.corrupt_bytes.saturating_add(c.skipped);
        f(Entry::Corrupt(c))
    }

    /// Decodes the records of one good buffer, whose slot (or chunk) starts
    /// at `offset`.
    fn buffer(
        &mut self,
        header: &BufferHeader,
        offset: u64,
        records: &[u8],
        f: &mut impl FnMut(Entry<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        let result = self.buffer_records(header, offset, records, f);
        // The counts are added up even when `f` failed part way, so that
        // the statistics always cover every event handed out.
        flush_counts(&mut self.pending_counts, &self.types, &mut self.stats);
        result
    }

    fn buffer_records(
        &mut self,
        header: &BufferHeader,
        offset: u64,
        records: &[u8],
        f: &mut impl FnMut(Entry<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        let DecodeState {
            timebase,
            providers,
            types,
            processes,
            trailer,
            stats,
            collect_per_event,
            pending_counts,
            decode_values,
            budget,
        } = self;
        stats.buffers += 1;
        if header.kind == buffer_kind::DATA && stats.trailers > 0 {
            stats.buffers_after_trailer += 1;
        }
        // Each buffer decodes alone: events need a CONTEXT record in the
        // same buffer for their source, thread and time base.
        let mut context: Option<ContextMeta> = None;
        let mut ticks = 0u64;
        let mut last_ns = 0u64;
        // The last (source, pid) whose name was looked up, and where the
        // name is. PROCESS records and trailers forget it, since they
        // change the table.
        let mut last_process: Option<((u32, u32), Option<usize>)> = None;
        // Every event's values go into this one buffer, so decoding
        // allocates nothing per event.
        let mut values = Vec::new();
        for rec in Records::new(records) {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    stats.bad_records += 1;
                    f(Entry::BadRecord {
                        buffer_offset: offset,
                        error: e.to_string(),
                    })?;
                    break;
                }
            };
            match rec {
                Record::Event {
                    type_id,
                    ticks: t,
                    ids,
                    payload,
                } => {
                    ticks = t.resolve(ticks);
                    let Some(ctx) = context else {
                        stats.bad_records += 1;
                        f(Entry::BadRecord {
                            buffer_offset: offset,
                            error: "event before any context record".into(),
                        })?;
                        continue;
                    };
                    let key = (ctx.source, type_id);
                    let Some(ty) = types.get(key) else {
                        stats.bad_records += 1;
                        f(Entry::BadRecord {
                            buffer_offset: offset,
                            error: format!(
                                "event of undescribed type {type_id} from source {}",
                                ctx.source
                            ),
                        })?;
                        continue;
                    };
                    // Readers that only count events get no values, but
                    // the payload is checked all the same.
                    let decoded = if *decode_values {
                        payload::decode_untrusted_into(&ty.fields, payload, &mut values)
                    } else {
                        values.clear();
                        payload::check_untrusted(&ty.fields, payload)
                    };
                    match decoded {
                        Ok(()) => {}
                        Err(e) => {
                            stats.bad_records += 1;
                            f(Entry::BadRecord {
                                buffer_offset: offset,
                                error: format!("event '{}': {e}", ty.name),
                            })?;
                            continue;
                        }
                    };
                    let ns = timebase.unix_ns(ticks);
                    last_ns = ns;
                    stats.events += 1;
                    stats.first_ns = Some(stats.first_ns.map_or(ns, |v| v.min(ns)));
                    stats.last_ns = Some(stats.last_ns.map_or(ns, |v| v.max(ns)));
                    if *collect_per_event {
                        count_event(pending_counts, key, types, stats);
                    }
                    let at = match last_process {
                        Some((who, at)) if who == (ctx.source, ctx.pid) => at,
                        _ => {
                            let at = processes.locate(ctx.source, ctx.pid);
                            last_process = Some(((ctx.source, ctx.pid), at));
                            at
                        }
                    };
                    let process = processes.name(at);
                    f(Entry::Event(Event {
                        timestamp_ns: ns,
                        ty,
                        process,
                        pid: ctx.pid,
                        tid: ctx.tid,
                        values: &values,
                        activity_id: ids.activity,
                        related_activity_id: ids.related,
                    }))?;
                }
                Record::Context(c) => {
                    ticks = c.base_ticks;
                    context = Some(c);
                }
                // A later definition of the same (source, id) replaces the
                // earlier one: an appended file's later session numbers its
                // sources afresh, and a circular file repeats definitions.
                Record::Provider(p) => {
                    let key = (p.source, p.provider);
                    let old = providers.get(&key).map_or(0, |o| provider_cost(&o.name));
                    if !budget.take(provider_cost(&p.name), old) {
                        refuse_metadata(budget, stats, f)?;
                        continue;
                    }
                    define(
                        providers,
                        key,
                        Arc::new(DecodedProvider {
                            name: p.name,
                            guid: p.guid,
                            pid: p.pid,
                        }),
                    );
                }
                Record::EventType(t) => {
                    let old = types
                        .peek((t.source, t.type_id))
                        .map_or(0, |o| type_cost(&o.name, &o.fields));
                    if !budget.take(type_cost(&t.name, &t.fields), old) {
                        refuse_metadata(budget, stats, f)?;
                        continue;
                    }
                    let provider = providers
                        .get(&(t.source, t.provider))
                        .cloned()
                        .unwrap_or_else(|| {
                            Arc::new(DecodedProvider {
                                name: format!("provider#{}.{}", t.source, t.provider),
                                guid: Guid::default(),
                                pid: 0,
                            })
                        });
                    // Counts so far go to the names they were counted under.
                    flush_counts(pending_counts, types, stats);
                    types.define(
                        (t.source, t.type_id),
                        EventType {
                            name: t.name,
                            event_id: t.event_id,
                            level: t.level,
                            opcode: t.opcode,
                            keywords: t.keywords,
                            fields: t.fields,
                            provider,
                        },
                    );
                }
                Record::Process(p) => {
                    last_process = None;
                    let key = p.source.map_or(ProcessKey::Pid(p.pid), ProcessKey::Source);
                    let old = processes
                        .find(&key)
                        .map_or(0, |at| process_cost(processes.name(Some(at))));
                    if !budget.take(process_cost(&p.name), old) {
                        refuse_metadata(budget, stats, f)?;
                        continue;
                    }
                    processes.define(key, p.name);
                }
                Record::ProcessEnd(end) => {
                    stats.process_ends += 1;
                    let process = processes.name(processes.locate(end.source, end.pid));
                    f(Entry::ProcessEnd {
                        timestamp_ns: timebase.unix_ns(end.ticks),
                        pid: end.pid,
                        process,
                    })?;
                }
                Record::Lost(l) => {
                    stats.add_lost(l.reason, l.count);
                    let provider = providers
                        .get(&(l.source, l.provider))
                        .map_or("", |p| p.name.as_str());
                    f(Entry::Lost {
                        timestamp_ns: last_ns,
                        pid: l.pid,
                        provider,
                        reason: l.reason,
                        count: l.count,
                    })?;
                }
                Record::Trailer(v) => {
                    let t = Trailer::from_values(&v);
                    match trailer {
                        Some(sum) => sum.add_session(&t),
                        None => *trailer = Some(t),
                    }
                    stats.trailers += 1;
                    stats.buffers_after_trailer = 0;
                    // A trailer ends its session. Whatever follows in an
                    // appended file is another session, which describes
                    // everything it uses itself; forgetting the old
                    // definitions makes an event that lacks its own show
                    // up as undescribed instead of decoding under the
                    // wrong names and fields.
                    flush_counts(pending_counts, types, stats);
                    providers.clear();
                    types.clear();
                    processes.clear();
                    budget.used = 0;
                    last_process = None;
                    f(Entry::Trailer(t))?;
                }
                // THREAD records live in rings only; a file never needs one.
                Record::Pad | Record::Thread { .. } | Record::Unknown { .. } => {}
            }
        }
        Ok(())
    }
}

/// The most sequence numbers [`Continuity`] remembers (8 bytes each, so a
/// crafted file costs at most 8 MiB here); a file with more buffers is not
/// checked beyond them.
const MAX_SEEN_SEQUENCES: usize = 1 << 20;

/// Checks that the buffers of a file that is written in order (sequential,
/// append, new-file, snapshot) carry every sequence number from the first
/// to the last once and in order (a trailer takes a number too), so that a
/// file cut, with buffers removed, repeated or swapped says so instead of
/// decoding quietly to fewer or more events.
#[derive(Debug, Default)]
struct Continuity {
    /// Every buffer's sequence number, up to [`MAX_SEEN_SEQUENCES`].
    seen: std::collections::HashSet<u64>,
    /// Whether `seen` ran full, so that the check stopped.
    full: bool,
    /// The highest number read so far.
    highest: Option<u64>,
    /// Buffers whose number was read before; they are skipped.
    repeated: u64,
    /// Buffers numbered below one read before them.
    out_of_order: u64,
}

impl Continuity {
    /// Whether the buffer numbered `seq` should be decoded: false for a
    /// repeat of one already decoded.
    fn buffer(&mut self, seq: u64) -> bool {
        if self.full {
            return true;
        }
        if !self.seen.insert(seq) {
            self.repeated += 1;
            return false;
        }
        if self.seen.len() >= MAX_SEEN_SEQUENCES {
            self.full = true;
        }
        match self.highest {
            Some(h) if seq < h => self.out_of_order += 1,
            _ => self.highest = Some(seq),
        }
        true
    }

    /// One line for each kind of problem found. `counted_lost` is the
    /// buffers the trailers say the sessions could not write.
    fn notes(&self, counted_lost: u64) -> Vec<String> {
        let mut notes = Vec::new();
        let mut numbers: Vec<u64> = self.seen.iter().copied().collect();
        numbers.sort_unstable();
        let mut missing = 0u64;
        let mut first_gap = None;
        for pair in numbers.windows(2) {
            let gap = pair[1] - pair[0] - 1;
            if gap > 0 {
                missing = missing.saturating_add(gap);
                first_gap.get_or_insert((pair[0], pair[1]));
            }
        }
        // Missing numbers the trailers count as unwritten buffers (a full
        // disk, a size limit) are a loss the summary reports already.
        if let Some((a, b)) = first_gap.filter(|_| !self.full && missing > counted_lost) {
            notes.push(format!(
                "{missing} buffer(s) missing: no buffer numbered {}{}{}; {}",
                a + 1,
                if b - a > 2 {
                    format!(" to {}", b - 1)
                } else {
                    String::new()
                },
                if missing > b - a - 1 {
                    " and others after"
                } else {
                    ""
                },
                if counted_lost > 0 {
                    format!(
                        "the trailer counts only {counted_lost} as buffers the session could not write; the file was cut or damaged"
                    )
                } else {
                    "the file was cut or damaged there".to_string()
                }
            ));
        }
        if self.repeated > 0 {
            notes.push(format!(
                "{} buffer(s) repeat buffers already read (same number) and were skipped",
                self.repeated
            ));
        }
        if self.out_of_order > 0 {
            notes.push(format!(
                "{} buffer(s) out of order (numbered below a buffer before them); their events are decoded where they lie",
                self.out_of_order
            ));
        }
        notes
    }
}

/// Decodes one log file.
#[derive(Debug)]
pub struct FileDecoder<R> {
    reader: LogReader<R>,
    state: DecodeState,
    /// A note to give as the first entry.
    pending_note: Option<String>,
    /// The sequence check, for files not written circularly (whose slots
    /// are overwritten in turn, so numbers jump by design).
    continuity: Option<Continuity>,
}

impl FileDecoder<File> {
    /// Opens a log file. When the file ends with a trailer, its stop anchor
    /// refines the timestamp conversion; a circular file's buffers are read
    /// oldest first (see [`FileDecoder::new_seekable`]).
    pub fn open(path: &Path) -> Result<FileDecoder<File>, FormatError> {
        FileDecoder::new_seekable(File::open(path)?)
    }
}

/// Reads the trailer from the last slot of a seekable log, if there is one.
/// Anything wrong (no trailer there, damage, I/O errors) gives `None`: the
/// trailer only refines timestamps, and reading proper reports damage.
fn peek_trailer<R: Read + Seek>(input: &mut R) -> Option<Trailer> {
    input.seek(SeekFrom::Start(0)).ok()?;
    // The longest header (two names of MAX_HEADER_NAME bytes) fits in 4 KiB.
    let mut head = Vec::with_capacity(4096);
    input.by_ref().take(4096).read_to_end(&mut head).ok()?;
    let (header, data_offset) = FileHeader::decode_untrusted(&head).ok()?;
    let len = input.seek(SeekFrom::End(0)).ok()?;
    let size = u64::from(header.buffer_size);
    if len <= data_offset {
        return None;
    }
    let last = (len - data_offset - 1) / size;
    let offset = data_offset + last * size;
    input.seek(SeekFrom::Start(offset)).ok()?;
    let mut slot = Vec::with_capacity((len - offset).min(size) as usize);
    input.by_ref().take(size).read_to_end(&mut slot).ok()?;
    let (h, records) = check_buffer(&slot, header.buffer_size).ok()?;
    if h.kind != buffer_kind::TRAILER {
        return None;
    }
    Records::new(records).find_map(|r| match r {
        Ok(Record::Trailer(v)) => Some(Trailer::from_values(&v)),
        _ => None,
    })
}

impl<R: Read + Seek> FileDecoder<R> {
    /// Decodes a log from a seekable input (a file, or bytes in memory),
    /// read from its offset 0.
    ///
    /// When the last slot holds a trailer, its stop anchor refines the
    /// timestamp conversion. A circular file's data buffers are decoded
    /// oldest first, then its trailer; only if the file has more than
    /// [`ferret_format::MAX_ORDERED_SLOTS`] slots is it read in file order,
    /// with an [`Entry::Note`] saying so.
    pub fn new_seekable(mut input: R) -> Result<FileDecoder<R>, FormatError> {
        let trailer = peek_trailer(&mut input);
        let reader = LogReader::new_seekable(input)?;
        let mut d = FileDecoder::with_reader(reader);
        if let Some(t) = trailer {
            d.state.timebase = Timebase::new(&d.reader.header().clock, Some(&t));
        }
        if d.reader.header().log_mode == mode::CIRCULAR && !d.reader.by_sequence() {
            d.set_note(format!(
                "circular log with more than {} slots: buffers are decoded in file order, not oldest first",
                ferret_format::MAX_ORDERED_SLOTS
            ));
        }
        Ok(d)
    }
}

impl<R: Read> FileDecoder<R> {
    /// Decodes a log read from `input` (a file or a pipe) in file order.
    ///
    /// A circular file read this way comes out in slot order, not oldest
    /// first (an [`Entry::Note`] says so); use [`FileDecoder::open`] or
    /// [`FileDecoder::new_seekable`] to have it ordered.
    pub fn new(input: R) -> Result<FileDecoder<R>, FormatError> {
        let mut d = FileDecoder::with_reader(LogReader::new(input)?);
        if d.reader.header().log_mode == mode::CIRCULAR {
            d.set_note(
                "circular log read from a stream: buffers are decoded in slot order, not oldest first"
                    .into(),
            );
        }
        Ok(d)
    }

    fn with_reader(reader: LogReader<R>) -> FileDecoder<R> {
        let state = DecodeState::new(reader.header());
        let continuity = (reader.header().log_mode != mode::CIRCULAR).then(Continuity::default);
        FileDecoder {
            reader,
            state,
            pending_note: None,
            continuity,
        }
    }

    fn set_note(&mut self, note: String) {
        self.state.note(note.clone());
        self.pending_note = Some(note);
    }

    /// Also counts events per provider and name (for summaries).
    pub fn count_per_event(&mut self, on: bool) {
        self.state.collect_per_event = on;
    }

    /// Whether events carry their field values (the default). A reader
    /// that only counts events turns this off: [`Event::values`] is then
    /// empty, payloads are still checked, and nothing is allocated per
    /// event.
    pub fn decode_values(&mut self, on: bool) {
        self.state.decode_values = on;
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        self.reader.header()
    }

    /// Counts so far.
    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }

    /// The trailer, once read. When the file holds several (an appended
    /// file, one per session), their counters are added up and the stop
    /// time is the last one's; [`Stats::trailers`] says how many there were.
    pub fn trailer(&self) -> Option<&Trailer> {
        self.state.trailer.as_ref()
    }

    /// Decodes the whole input, calling `f` for each entry in reading order
    /// (file order, or oldest first for a circular file read seekably).
    /// Stops early if `f` returns an error (a closed pipe, say).
    pub fn for_each(&mut self, mut f: impl FnMut(Entry<'_>) -> io::Result<()>) -> io::Result<()> {
        if let Some(note) = self.pending_note.take() {
            f(Entry::Note(note))?;
        }
        let FileDecoder {
            reader,
            state,
            continuity,
            ..
        } = self;
        while let Some(item) = reader.next() {
            match item? {
                Item::Corrupt(c) => state.corrupt(c, &mut f)?,
                Item::Buffer(b) => {
                    let decode = continuity
                        .as_mut()
                        .is_none_or(|c| c.buffer(b.header.sequence));
                    if decode {
                        state.buffer(&b.header, b.offset, b.records, &mut f)?;
                    }
                }
            }
        }
        let counted_lost = state.trailer.map_or(0, |t| t.log_buffers_lost);
        let mut notes = continuity
            .take()
            .map(|c| c.notes(counted_lost))
            .unwrap_or_default();
        let stats = &state.stats;
        if stats.trailers == 0 || stats.buffers_after_trailer > 0 {
            notes.push(format!(
                "no trailer after the last {} buffer(s): the session is still running, its daemon was killed, or the file was cut short; if the daemon was killed, 'ferret recover' may save the events it had not written",
                if stats.trailers == 0 {
                    stats.buffers
                } else {
                    stats.buffers_after_trailer
                }
            ));
        }
        for note in notes {
            state.note(note.clone());
            f(Entry::Note(note))?;
        }
        Ok(())
    }
}

/// Decodes a session in real time (`ferret tail`): the session's encoded
/// file header, then chunks, each one sealed buffer exactly as it would sit
/// in a slot of the file (its header and `used` record bytes).
///
/// Chunks are checked like slots: one that fails is reported as an
/// [`Entry::Corrupt`] whose offset counts the chunk bytes fed before it,
/// and the next chunk decodes as usual. Timestamps use the header's clock
/// calibration, since the trailer's refinement comes only at the end.
#[derive(Debug)]
pub struct StreamDecoder {
    header: FileHeader,
    state: DecodeState,
    /// Chunk bytes fed so far: the stream offset of the next chunk.
    offset: u64,
}

impl StreamDecoder {
    /// A decoder for a session with this header.
    pub fn new(header: FileHeader) -> StreamDecoder {
        let state = DecodeState::new(&header);
        StreamDecoder {
            header,
            state,
            offset: 0,
        }
    }

    /// A decoder for a session whose encoded header (as at the start of its
    /// file, with or without the padding) is `bytes`, which are untrusted.
    pub fn from_header_bytes(bytes: &[u8]) -> Result<StreamDecoder, FormatError> {
        let (header, _) = FileHeader::decode_untrusted(bytes)?;
        Ok(StreamDecoder::new(header))
    }

    /// The session's header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// Also counts events per provider and name (for summaries).
    pub fn count_per_event(&mut self, on: bool) {
        self.state.collect_per_event = on;
    }

    /// Whether events carry their field values (the default); see
    /// [`FileDecoder::decode_values`].
    pub fn decode_values(&mut self, on: bool) {
        self.state.decode_values = on;
    }

    /// Counts so far.
    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }

    /// The trailer, once a chunk held one.
    pub fn trailer(&self) -> Option<&Trailer> {
        self.state.trailer.as_ref()
    }

    /// Decodes one chunk, calling `f` for each entry. Only an error from
    /// `f` is returned: a malformed chunk is an entry, never an error.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut f: impl FnMut(Entry<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        let offset = self.offset;
        self.offset = self.offset.saturating_add(chunk.len() as u64);
        match check_buffer(chunk, self.header.buffer_size) {
            Ok((header, records)) => self.state.buffer(&header, offset, records, &mut f),
            Err(reason) => self.state.corrupt(
                Corruption {
                    offset,
                    skipped: chunk.len() as u64,
                    reason,
                },
                &mut f,
            ),
        }
    }
}
