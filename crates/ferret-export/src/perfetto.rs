//! Perfetto protobuf traces (`.pftrace`), which ui.perfetto.dev and
//! trace_processor open.
//!
//! The messages are declared here with prost's derive, a subset of
//! perfetto's `protos/perfetto/trace/perfetto_trace.proto` with its field
//! numbers, so no protoc runs at build time. The trace is one packet
//! sequence: a first packet that clears the incremental state, snapshots
//! the clocks (REALTIME and MONOTONIC as the first log's session read them
//! together) and makes REALTIME (UNIX-epoch nanoseconds, which Ferret
//! timestamps are) the sequence's clock and the trace's; then a track per
//! process and per thread; then one packet per event, with event names,
//! categories (provider names) and field names interned.
//!
//! Each event is an instant on its thread's track with its fields as typed
//! debug annotations. An activity gets a track of its own under its
//! process, since it may end on another thread and activities need not nest:
//! its start event begins a slice there and its stop event ends it. A stop
//! whose start is not in the trace is an instant. Losses are instants named
//! "Lost events" on their process's track, with the count, reason and
//! provider as annotations; the export's totals are annotations of an
//! "Export summary" instant on a track of its own.

use std::collections::HashMap;
use std::io::{self, Write};

use ferret_abi::Guid;
use ferret_abi::payload::Value;
use prost::Message;

use crate::{Ticker, Trace, TraceItem, event_name, guid_text, hex};

#[derive(Clone, PartialEq, Message)]
struct TracePacket {
    #[prost(uint64, optional, tag = "8")]
    timestamp: Option<u64>,
    #[prost(uint32, optional, tag = "10")]
    trusted_packet_sequence_id: Option<u32>,
    #[prost(message, optional, tag = "6")]
    clock_snapshot: Option<ClockSnapshot>,
    #[prost(message, optional, tag = "11")]
    track_event: Option<TrackEvent>,
    #[prost(message, optional, tag = "12")]
    interned_data: Option<InternedData>,
    #[prost(uint32, optional, tag = "13")]
    sequence_flags: Option<u32>,
    #[prost(message, optional, tag = "59")]
    trace_packet_defaults: Option<TracePacketDefaults>,
    #[prost(message, optional, tag = "60")]
    track_descriptor: Option<TrackDescriptor>,
}

#[derive(Clone, PartialEq, Message)]
struct TracePacketDefaults {
    #[prost(uint32, optional, tag = "58")]
    timestamp_clock_id: Option<u32>,
}

#[derive(Clone, PartialEq, Message)]
struct ClockSnapshot {
    #[prost(message, repeated, tag = "1")]
    clocks: Vec<Clock>,
    #[prost(int32, optional, tag = "2")]
    primary_trace_clock: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct Clock {
    #[prost(uint32, optional, tag = "1")]
    clock_id: Option<u32>,
    #[prost(uint64, optional, tag = "2")]
    timestamp: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
struct TrackDescriptor {
    #[prost(uint64, optional, tag = "1")]
    uuid: Option<u64>,
    #[prost(string, optional, tag = "2")]
    name: Option<String>,
    #[prost(message, optional, tag = "3")]
    process: Option<ProcessDescriptor>,
    #[prost(message, optional, tag = "4")]
    thread: Option<ThreadDescriptor>,
    #[prost(uint64, optional, tag = "5")]
    parent_uuid: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
struct ProcessDescriptor {
    #[prost(int32, optional, tag = "1")]
    pid: Option<i32>,
    #[prost(string, optional, tag = "6")]
    process_name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct ThreadDescriptor {
    #[prost(int32, optional, tag = "1")]
    pid: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    tid: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct TrackEvent {
    #[prost(uint64, repeated, packed = "false", tag = "3")]
    category_iids: Vec<u64>,
    #[prost(message, repeated, tag = "4")]
    debug_annotations: Vec<DebugAnnotation>,
    #[prost(int32, optional, tag = "9")]
    r#type: Option<i32>,
    #[prost(uint64, optional, tag = "10")]
    name_iid: Option<u64>,
    #[prost(uint64, optional, tag = "11")]
    track_uuid: Option<u64>,
    #[prost(string, optional, tag = "23")]
    name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct DebugAnnotation {
    #[prost(uint64, optional, tag = "1")]
    name_iid: Option<u64>,
    #[prost(bool, optional, tag = "2")]
    bool_value: Option<bool>,
    #[prost(uint64, optional, tag = "3")]
    uint_value: Option<u64>,
    #[prost(int64, optional, tag = "4")]
    int_value: Option<i64>,
    #[prost(double, optional, tag = "5")]
    double_value: Option<f64>,
    #[prost(string, optional, tag = "6")]
    string_value: Option<String>,
    #[prost(string, optional, tag = "10")]
    name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct InternedData {
    #[prost(message, repeated, tag = "1")]
    event_categories: Vec<InternedName>,
    #[prost(message, repeated, tag = "2")]
    event_names: Vec<InternedName>,
    #[prost(message, repeated, tag = "3")]
    debug_annotation_names: Vec<InternedName>,
}

/// EventCategory, EventName and DebugAnnotationName share this shape.
#[derive(Clone, PartialEq, Message)]
struct InternedName {
    #[prost(uint64, optional, tag = "1")]
    iid: Option<u64>,
    #[prost(string, optional, tag = "2")]
    name: Option<String>,
}

/// TrackEvent.Type values.
const SLICE_BEGIN: i32 = 1;
const SLICE_END: i32 = 2;
const INSTANT: i32 = 3;
/// BuiltinClock.BUILTIN_CLOCK_REALTIME and BUILTIN_CLOCK_MONOTONIC.
const CLOCK_REALTIME: u32 = 1;
const CLOCK_MONOTONIC: u32 = 3;
/// TracePacket.SequenceFlags.
const SEQ_INCREMENTAL_STATE_CLEARED: u32 = 1;
const SEQ_NEEDS_INCREMENTAL_STATE: u32 = 2;
/// The one packet sequence this writer uses.
const SEQUENCE: u32 = 1;

/// Interned strings of one kind: iids start at 1, as 0 means "none".
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u64>,
}

impl Interner {
    /// The iid of `name`, adding it to `new` the first time.
    fn iid(&mut self, name: &str, new: &mut Vec<InternedName>) -> u64 {
        if let Some(&i) = self.ids.get(name) {
            return i;
        }
        let i = self.ids.len() as u64 + 1;
        self.ids.insert(name.to_string(), i);
        new.push(InternedName {
            iid: Some(i),
            name: Some(name.to_string()),
        });
        i
    }
}

struct Writer<'a> {
    out: &'a mut dyn Write,
    buf: Vec<u8>,
    names: Interner,
    categories: Interner,
    fields: Interner,
    /// Each event type's name, category and field name iids, once
    /// interned, so an event costs no string hashing.
    type_iids: Vec<Option<TypeIids>>,
    next_uuid: u64,
}

struct TypeIids {
    name: u64,
    category: u64,
    fields: Vec<u64>,
}

impl Writer<'_> {
    /// Writes one packet as an element of `Trace.packet` (field 1), so
    /// the file is a `Trace` message without holding it whole.
    fn packet(&mut self, p: &TracePacket) -> io::Result<()> {
        self.buf.clear();
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut self.buf);
        prost::encoding::encode_varint(p.encoded_len() as u64, &mut self.buf);
        p.encode(&mut self.buf).map_err(io::Error::other)?;
        self.out.write_all(&self.buf)
    }

    fn uuid(&mut self) -> u64 {
        self.next_uuid += 1;
        self.next_uuid
    }

    fn track(&mut self, d: TrackDescriptor) -> io::Result<()> {
        self.packet(&TracePacket {
            trusted_packet_sequence_id: Some(SEQUENCE),
            track_descriptor: Some(d),
            ..TracePacket::default()
        })
    }

    /// Writes a track event on `track` at `ts`, interning its name,
    /// category and annotation names. For an event of a Ferret event type,
    /// `of_type` is the type's position and how many of the annotations
    /// are its fields, whose iids are then remembered.
    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        ts: u64,
        track: u64,
        ty: i32,
        name: &str,
        category: &str,
        annotations: Vec<(&str, AnnotationValue)>,
        of_type: Option<(usize, usize)>,
    ) -> io::Result<()> {
        let mut interned = InternedData::default();
        let Writer {
            names,
            categories,
            fields,
            type_iids,
            ..
        } = self;
        let cached = of_type.and_then(|(i, _)| type_iids.get(i)?.as_ref());
        let (name_iid, category_iid) = match cached {
            Some(t) => (t.name, t.category),
            None => (
                names.iid(name, &mut interned.event_names),
                categories.iid(category, &mut interned.event_categories),
            ),
        };
        let known: &[u64] = cached.map_or(&[], |t| &t.fields);
        let mut key_iids = Vec::with_capacity(annotations.len());
        for (j, (key, _)) in annotations.iter().enumerate() {
            key_iids.push(match known.get(j) {
                Some(&iid) => iid,
                None => fields.iid(key, &mut interned.debug_annotation_names),
            });
        }
        if let Some((i, n)) = of_type {
            if cached.is_none() {
                if type_iids.len() <= i {
                    type_iids.resize_with(i + 1, || None);
                }
                type_iids[i] = Some(TypeIids {
                    name: name_iid,
                    category: category_iid,
                    fields: key_iids[..n.min(key_iids.len())].to_vec(),
                });
            }
        }
        let debug_annotations = annotations
            .into_iter()
            .zip(key_iids)
            .map(|((_, v), iid)| {
                let mut a = DebugAnnotation {
                    name_iid: Some(iid),
                    ..DebugAnnotation::default()
                };
                match v {
                    AnnotationValue::Bool(b) => a.bool_value = Some(b),
                    AnnotationValue::Uint(u) => a.uint_value = Some(u),
                    AnnotationValue::Int(i) => a.int_value = Some(i),
                    AnnotationValue::Double(d) => a.double_value = Some(d),
                    AnnotationValue::String(s) => a.string_value = Some(s),
                }
                a
            })
            .collect();
        let any_new = !interned.event_names.is_empty()
            || !interned.event_categories.is_empty()
            || !interned.debug_annotation_names.is_empty();
        self.packet(&TracePacket {
            timestamp: Some(ts),
            trusted_packet_sequence_id: Some(SEQUENCE),
            sequence_flags: Some(SEQ_NEEDS_INCREMENTAL_STATE),
            interned_data: any_new.then_some(interned),
            track_event: Some(TrackEvent {
                category_iids: vec![category_iid],
                debug_annotations,
                r#type: Some(ty),
                name_iid: Some(name_iid),
                track_uuid: Some(track),
                name: None,
            }),
            ..TracePacket::default()
        })
    }
}

enum AnnotationValue {
    Bool(bool),
    Uint(u64),
    Int(i64),
    Double(f64),
    String(String),
}

fn annotation(v: &Value<'_>) -> AnnotationValue {
    match *v {
        Value::U8(x) => AnnotationValue::Uint(x.into()),
        Value::U16(x) => AnnotationValue::Uint(x.into()),
        Value::U32(x) => AnnotationValue::Uint(x.into()),
        Value::U64(x) => AnnotationValue::Uint(x),
        Value::I8(x) => AnnotationValue::Int(x.into()),
        Value::I16(x) => AnnotationValue::Int(x.into()),
        Value::I32(x) => AnnotationValue::Int(x.into()),
        Value::I64(x) => AnnotationValue::Int(x),
        Value::F64(x) => AnnotationValue::Double(x),
        Value::Bool(x) => AnnotationValue::Bool(x),
        Value::Str(s) => AnnotationValue::String(s.to_string()),
        Value::Bytes(b) => AnnotationValue::String(hex(b)),
        Value::Guid(g) => AnnotationValue::String(guid_text(&g)),
    }
}

/// Writes `trace` (ordered by [`Trace::finish`]) as a Perfetto protobuf
/// trace. `progress` is called now and then with the records written.
pub fn write_perfetto(
    trace: &Trace,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> io::Result<()> {
    let mut w = Writer {
        out,
        buf: Vec::with_capacity(1024),
        names: Interner::default(),
        categories: Interner::default(),
        fields: Interner::default(),
        type_iids: Vec::new(),
        next_uuid: 0,
    };
    let start = trace.first_ns().unwrap_or(0);
    // The session's own reading of both clocks at one instant lets the
    // trace line up with traces timed by CLOCK_MONOTONIC on the same boot.
    let (snapshot_ts, clocks) = match trace.clock_anchor() {
        Some((mono, unix)) => (
            unix,
            vec![
                Clock {
                    clock_id: Some(CLOCK_REALTIME),
                    timestamp: Some(unix),
                },
                Clock {
                    clock_id: Some(CLOCK_MONOTONIC),
                    timestamp: Some(mono),
                },
            ],
        ),
        None => (
            start,
            vec![Clock {
                clock_id: Some(CLOCK_REALTIME),
                timestamp: Some(start),
            }],
        ),
    };
    w.packet(&TracePacket {
        timestamp: Some(snapshot_ts),
        trusted_packet_sequence_id: Some(SEQUENCE),
        sequence_flags: Some(SEQ_INCREMENTAL_STATE_CLEARED),
        clock_snapshot: Some(ClockSnapshot {
            clocks,
            primary_trace_clock: Some(CLOCK_REALTIME as i32),
        }),
        trace_packet_defaults: Some(TracePacketDefaults {
            timestamp_clock_id: Some(CLOCK_REALTIME),
        }),
        ..TracePacket::default()
    })?;
    let mut process_tracks = HashMap::new();
    for (&pid, name) in trace.processes() {
        let uuid = w.uuid();
        process_tracks.insert(pid, uuid);
        w.track(TrackDescriptor {
            uuid: Some(uuid),
            process: Some(ProcessDescriptor {
                pid: Some(pid as i32),
                process_name: (!name.is_empty()).then(|| name.clone()),
            }),
            ..TrackDescriptor::default()
        })?;
    }
    let mut thread_tracks = HashMap::new();
    for &(pid, tid) in trace.threads() {
        let uuid = w.uuid();
        thread_tracks.insert((pid, tid), uuid);
        w.track(TrackDescriptor {
            uuid: Some(uuid),
            parent_uuid: process_tracks.get(&pid).copied(),
            thread: Some(ThreadDescriptor {
                pid: Some(pid as i32),
                tid: Some(tid as i32),
            }),
            ..TrackDescriptor::default()
        })?;
    }
    // The open activities' tracks.
    let mut open: HashMap<Guid, u64> = HashMap::new();
    let names: Vec<String> = trace.types().iter().map(event_name).collect();
    let mut ticker = Ticker::new(progress);
    trace.for_each(|record| {
        ticker.tick();
        match record {
            TraceItem::Event(e) => {
                let name = names.get(e.type_index).map_or("", String::as_str);
                let mut annotations: Vec<(&str, AnnotationValue)> =
                    e.ty.fields
                        .iter()
                        .zip(&e.values)
                        .map(|(f, v)| (f.name.as_str(), annotation(v)))
                        .collect();
                for (key, id) in [
                    ("activity_id", e.activity_id),
                    ("related_activity_id", e.related_activity_id),
                ] {
                    if let Some(id) = id {
                        if e.ty.fields.iter().all(|f| f.name != key) {
                            annotations.push((key, AnnotationValue::String(guid_text(&id))));
                        }
                    }
                }
                let thread = thread_tracks.get(&(e.pid, e.tid)).copied().unwrap_or(0);
                let (track, ty) = match e.activity_id {
                    Some(id) if e.ty.opcode == crate::OPCODE_START => {
                        let uuid = w.uuid();
                        w.track(TrackDescriptor {
                            uuid: Some(uuid),
                            name: Some(name.to_string()),
                            parent_uuid: process_tracks.get(&e.pid).copied(),
                            ..TrackDescriptor::default()
                        })?;
                        open.insert(id, uuid);
                        (uuid, SLICE_BEGIN)
                    }
                    Some(id) if e.ty.opcode == crate::OPCODE_STOP => match open.remove(&id) {
                        Some(uuid) => (uuid, SLICE_END),
                        None => (thread, INSTANT),
                    },
                    _ => (thread, INSTANT),
                };
                let fields = e.values.len();
                w.event(
                    e.timestamp_ns,
                    track,
                    ty,
                    name,
                    &e.ty.provider.name,
                    annotations,
                    Some((e.type_index, fields)),
                )
            }
            TraceItem::Lost {
                timestamp_ns,
                pid,
                provider,
                reason,
                count,
            } => {
                let track = process_track(&mut w, &mut process_tracks, pid)?;
                w.event(
                    timestamp_ns,
                    track,
                    INSTANT,
                    "Lost events",
                    "ferret",
                    vec![
                        ("count", AnnotationValue::Uint(count)),
                        ("reason", AnnotationValue::String(reason.to_string())),
                        ("provider", AnnotationValue::String(provider.to_string())),
                    ],
                    None,
                )
            }
            TraceItem::ProcessEnd { timestamp_ns, pid } => {
                let track = process_track(&mut w, &mut process_tracks, pid)?;
                w.event(
                    timestamp_ns,
                    track,
                    INSTANT,
                    "Process ended",
                    "ferret",
                    Vec::new(),
                    None,
                )
            }
        }
    })?;
    ticker.end();
    let s = trace.summary();
    let uuid = w.uuid();
    w.track(TrackDescriptor {
        uuid: Some(uuid),
        name: Some("Ferret export".into()),
        ..TrackDescriptor::default()
    })?;
    let mut totals = vec![
        ("files", AnnotationValue::Uint(s.files)),
        ("events", AnnotationValue::Uint(s.events)),
        ("lost_events", AnnotationValue::Uint(s.lost_total())),
    ];
    for (reason, n) in &s.lost {
        totals.push((reason, AnnotationValue::Uint(*n)));
    }
    totals.extend([
        (
            "log_buffers_lost",
            AnnotationValue::Uint(s.log_buffers_lost),
        ),
        ("bad_records", AnnotationValue::Uint(s.bad_records)),
        ("corrupt_bytes", AnnotationValue::Uint(s.corrupt_bytes)),
    ]);
    let end = trace.last_ns().unwrap_or(start);
    w.event(end, uuid, INSTANT, "Export summary", "ferret", totals, None)?;
    w.out.flush()
}

/// The track of process `pid`, made if a loss or end is all the trace has
/// of it.
fn process_track(w: &mut Writer<'_>, tracks: &mut HashMap<u32, u64>, pid: u32) -> io::Result<u64> {
    if let Some(&t) = tracks.get(&pid) {
        return Ok(t);
    }
    let uuid = w.uuid();
    w.track(TrackDescriptor {
        uuid: Some(uuid),
        process: Some(ProcessDescriptor {
            pid: Some(pid as i32),
            process_name: None,
        }),
        ..TrackDescriptor::default()
    })?;
    tracks.insert(pid, uuid);
    Ok(uuid)
}
