//! Turning a log file's records into typed events.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use ferret_abi::Guid;
use ferret_abi::payload::{self, Value};
use ferret_abi::record::{ContextMeta, FieldMeta, LostReason, Record};
use ferret_format::{
    BUFFER_HEADER_LEN, BufferHeader, Corruption, FileHeader, FormatError, Item, LogReader, Records,
    Timebase, Trailer, buffer_crc, buffer_kind,
};

/// A provider instance as the file describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderInfo {
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
    pub provider: Arc<ProviderInfo>,
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
    /// Field values, in the order of `ty.fields`.
    pub values: Vec<Value<'a>>,
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
    /// The session's final counters.
    Trailer(Trailer),
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

/// Decodes one log file.
#[derive(Debug)]
pub struct FileDecoder<R> {
    reader: LogReader<R>,
    timebase: Timebase,
    providers: HashMap<(u32, u32), Arc<ProviderInfo>>,
    types: HashMap<(u32, u16), EventType>,
    processes: HashMap<u32, String>,
    trailer: Option<Trailer>,
    stats: Stats,
    collect_per_event: bool,
}

/// The most metadata entries a decoder keeps, so a hostile file cannot make
/// it allocate without bound.
const MAX_METADATA: usize = 1 << 20;

impl FileDecoder<File> {
    /// Opens a log file. When the file ends with a trailer, its stop anchor
    /// refines the timestamp conversion.
    pub fn open(path: &Path) -> Result<FileDecoder<File>, FormatError> {
        let file = File::open(path)?;
        let trailer = peek_trailer(&file);
        let mut d = FileDecoder::new(file)?;
        if let Some(t) = trailer {
            d.timebase = Timebase::new(&d.reader.header().clock, Some(&t));
        }
        Ok(d)
    }
}

/// Reads the trailer from the last slot of a seekable log, if there is one.
fn peek_trailer(file: &File) -> Option<Trailer> {
    let len = file.metadata().ok()?.len();
    let mut head = vec![0u8; 4096];
    let n = file.read_at(&mut head, 0).ok()?;
    let (header, data_offset) = FileHeader::decode_untrusted(&head[..n]).ok()?;
    let size = header.buffer_size as u64;
    if len <= data_offset {
        return None;
    }
    let last = (len - data_offset - 1) / size;
    let offset = data_offset + last * size;
    let mut slot = vec![0u8; (len - offset).min(size) as usize];
    file.read_exact_at(&mut slot, offset).ok()?;
    let bh: &[u8; BUFFER_HEADER_LEN] = slot.first_chunk()?;
    let h = BufferHeader::decode(bh)?;
    let end = BUFFER_HEADER_LEN + h.used as usize;
    if h.kind != buffer_kind::TRAILER || end > slot.len() {
        return None;
    }
    let records = &slot[BUFFER_HEADER_LEN..end];
    if buffer_crc(bh, records) != h.crc {
        return None;
    }
    Records::new(records).find_map(|r| match r {
        Ok(Record::Trailer(v)) => Some(Trailer::from_values(&v)),
        _ => None,
    })
}

impl<R: Read> FileDecoder<R> {
    /// Decodes a log read from `input` (a file or a pipe).
    pub fn new(input: R) -> Result<FileDecoder<R>, FormatError> {
        let reader = LogReader::new(input)?;
        let timebase = Timebase::new(&reader.header().clock, None);
        Ok(FileDecoder {
            reader,
            timebase,
            providers: HashMap::new(),
            types: HashMap::new(),
            processes: HashMap::new(),
            trailer: None,
            stats: Stats::default(),
            collect_per_event: false,
        })
    }

    /// Also counts events per provider and name (for summaries).
    pub fn count_per_event(&mut self, on: bool) {
        self.collect_per_event = on;
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        self.reader.header()
    }

    /// Counts so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The trailer, once read.
    pub fn trailer(&self) -> Option<&Trailer> {
        self.trailer.as_ref()
    }

    /// Decodes the whole input, calling `f` for each entry in file order.
    /// Stops early if `f` returns an error (a closed pipe, say).
    pub fn for_each(&mut self, mut f: impl FnMut(Entry<'_>) -> io::Result<()>) -> io::Result<()> {
        let FileDecoder {
            reader,
            timebase,
            providers,
            types,
            processes,
            trailer,
            stats,
            collect_per_event,
        } = self;
        while let Some(item) = reader.next() {
            let buffer = match item? {
                Item::Corrupt(c) => {
                    stats.corrupt_stretches += 1;
                    stats.corrupt_bytes += c.skipped;
                    f(Entry::Corrupt(c))?;
                    continue;
                }
                Item::Buffer(b) => b,
            };
            stats.buffers += 1;
            // Each buffer decodes alone: events need a CONTEXT record in the
            // same buffer for their source, thread and time base.
            let mut context: Option<ContextMeta> = None;
            let mut ticks = 0u64;
            let mut last_ns = 0u64;
            for rec in Records::new(buffer.records) {
                let rec = match rec {
                    Ok(r) => r,
                    Err(e) => {
                        stats.bad_records += 1;
                        f(Entry::BadRecord {
                            buffer_offset: buffer.offset,
                            error: e.to_string(),
                        })?;
                        break;
                    }
                };
                match rec {
                    Record::Event {
                        type_id,
                        ticks: t,
                        payload,
                    } => {
                        ticks = t.resolve(ticks);
                        let Some(ctx) = context else {
                            stats.bad_records += 1;
                            f(Entry::BadRecord {
                                buffer_offset: buffer.offset,
                                error: "event before any context record".into(),
                            })?;
                            continue;
                        };
                        let Some(ty) = types.get(&(ctx.source, type_id)) else {
                            stats.bad_records += 1;
                            f(Entry::BadRecord {
                                buffer_offset: buffer.offset,
                                error: format!(
                                    "event of undescribed type {type_id} from source {}",
                                    ctx.source
                                ),
                            })?;
                            continue;
                        };
                        let values = match payload::decode_untrusted(&ty.fields, payload) {
                            Ok(v) => v,
                            Err(e) => {
                                stats.bad_records += 1;
                                f(Entry::BadRecord {
                                    buffer_offset: buffer.offset,
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
                            *stats
                                .per_event
                                .entry((ty.provider.name.clone(), ty.name.clone()))
                                .or_default() += 1;
                        }
                        let process = processes.get(&ctx.pid).map_or("", String::as_str);
                        f(Entry::Event(Event {
                            timestamp_ns: ns,
                            ty,
                            process,
                            pid: ctx.pid,
                            tid: ctx.tid,
                            values,
                        }))?;
                    }
                    Record::Context(c) => {
                        ticks = c.base_ticks;
                        context = Some(c);
                    }
                    Record::Provider(p) => {
                        if providers.len() < MAX_METADATA {
                            providers.insert(
                                (p.source, p.provider),
                                Arc::new(ProviderInfo {
                                    name: p.name,
                                    guid: p.guid,
                                    pid: p.pid,
                                }),
                            );
                        }
                    }
                    Record::EventType(t) => {
                        let provider = providers
                            .get(&(t.source, t.provider))
                            .cloned()
                            .unwrap_or_else(|| {
                                Arc::new(ProviderInfo {
                                    name: format!("provider#{}.{}", t.source, t.provider),
                                    guid: Guid::default(),
                                    pid: 0,
                                })
                            });
                        if types.len() < MAX_METADATA {
                            types.insert(
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
                    }
                    Record::Process(p) => {
                        if processes.len() < MAX_METADATA {
                            processes.insert(p.pid, p.name);
                        }
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
                        *trailer = Some(t);
                        f(Entry::Trailer(t))?;
                    }
                    Record::Pad | Record::Unknown { .. } => {}
                }
            }
        }
        Ok(())
    }
}
