//! CTF 1.8 traces: a directory with a TSDL `metadata` file and one binary
//! stream file, `stream`, which babeltrace2 and Trace Compass open.
//!
//! Every process's events go into the one stream, in time order, since CTF
//! needs a stream's timestamps not to go back. The stream's clock counts
//! nanoseconds from the UNIX epoch (frequency 1e9, offset 0), so event
//! timestamps are Ferret's, absolute. Each Ferret event type is an event
//! class named `provider/event` whose payload has the type's fields, typed:
//! integers with their size and sign, `f64` as a double, `str` as a string
//! (a NUL byte inside one, which CTF strings cannot hold, is written as
//! U+FFFD), `bool` as an 8-bit unsigned integer, `bytes` as a u16 length and
//! a sequence of bytes, `guid` as its text. Every event's context holds its
//! pid, tid and activity ids (empty text when it has none). A process's end
//! is an event of the class `ferret/process_end`.
//!
//! Packets hold at most about [`PACKET_EVENTS_BYTES`] of events. Losses are
//! in the packet context's `events_discarded`, the count of events lost so
//! far at the packet's end: a loss closes the packet before it, so the next
//! packet counts it and readers (babeltrace2 says "discarded N events")
//! place it between the two packets' ends.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use ferret_abi::payload::Value;
use ferret_abi::record::FieldType;

use crate::{Ticker, Trace, TraceItem, event_name, guid_text};

/// The most event bytes a packet holds before it is closed (a single
/// larger event makes a larger packet).
pub const PACKET_EVENTS_BYTES: usize = 64 * 1024;

/// CTF's packet magic number.
const MAGIC: u32 = 0xC1FC_1FC1;
/// Packet header (magic, uuid, stream id) and context (begin, end,
/// content size, packet size, events discarded).
const HEADER_LEN: usize = 4 + 16 + 4;
const CONTEXT_LEN: usize = 5 * 8;

/// The latest time a CTF reader can hold: babeltrace2 converts every clock
/// value to signed 64-bit nanoseconds from the clock's origin, and stops on
/// a trace with a later one, so such a trace is refused rather than written.
const MAX_CTF_NS: u64 = i64::MAX as u64;

/// Writes `trace` (ordered by [`Trace::finish`]) as a CTF 1.8 trace into
/// the directory `dir`, which must exist: `dir/metadata` and
/// `dir/stream`. `progress` is called now and then with the records
/// written. A record timed after [`MAX_CTF_NS`] is refused.
pub fn write_ctf(trace: &Trace, dir: &Path, progress: &mut dyn FnMut(u64)) -> io::Result<()> {
    let uuid = make_uuid(trace);
    let process_end_id = trace.types().len();
    std::fs::write(dir.join("metadata"), metadata(trace, &uuid, process_end_id))?;
    let mut stream = Stream {
        out: BufWriter::with_capacity(1 << 16, File::create(dir.join("stream"))?),
        uuid,
        packet: Vec::with_capacity(PACKET_EVENTS_BYTES + 4096),
        begin: None,
        end: 0,
        discarded: 0,
        wrote: false,
        wrote_discarded: 0,
    };
    stream.reset();
    let mut ticker = Ticker::new(progress);
    trace.for_each(|record| {
        ticker.tick();
        let at = match &record {
            TraceItem::Event(e) => e.timestamp_ns,
            TraceItem::ProcessEnd { timestamp_ns, .. } | TraceItem::Lost { timestamp_ns, .. } => {
                *timestamp_ns
            }
        };
        if at > MAX_CTF_NS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a record is timed {at} ns after the UNIX epoch, past 2262-04-11, which CTF readers cannot hold (babeltrace2 counts nanoseconds in a signed 64-bit integer); export this log to perfetto or chrome instead"
                ),
            ));
        }
        match record {
            TraceItem::Event(e) => {
                let p = stream.event_header(e.type_index as u32, e.timestamp_ns);
                put_u32(p, e.pid);
                put_u32(p, e.tid);
                for id in [e.activity_id, e.related_activity_id] {
                    match id {
                        Some(id) => put_str(p, &guid_text(&id)),
                        None => p.push(0),
                    }
                }
                for v in &e.values {
                    put_value(p, v);
                }
                stream.after_event()
            }
            TraceItem::ProcessEnd { timestamp_ns, pid } => {
                let p = stream.event_header(process_end_id as u32, timestamp_ns);
                put_u32(p, pid);
                put_u32(p, 0);
                p.extend_from_slice(&[0, 0]);
                stream.after_event()
            }
            TraceItem::Lost {
                timestamp_ns,
                count,
                ..
            } => {
                // The packet so far ends before the loss, so the next one
                // counts it; the first packet is written even when empty,
                // since readers take a count only as the difference from
                // an earlier packet's.
                if stream.begin.is_some() || !stream.wrote {
                    if stream.begin.is_none() {
                        stream.begin = Some(timestamp_ns);
                        stream.end = stream.end.max(timestamp_ns);
                    }
                    stream.close()?;
                }
                // Readers take an all-ones count to mean "not known", so
                // the sum stops one short of it.
                stream.discarded = stream.discarded.saturating_add(count).min(u64::MAX - 1);
                Ok(())
            }
        }
    })?;
    ticker.end();
    // A loss after the last event is counted by a last, empty packet.
    if stream.begin.is_some() || stream.discarded != stream.wrote_discarded {
        stream.close()?;
    }
    stream.out.flush()
}

struct Stream {
    out: BufWriter<File>,
    uuid: [u8; 16],
    /// The packet being filled, header and context first.
    packet: Vec<u8>,
    /// Its first and last timestamps.
    begin: Option<u64>,
    end: u64,
    /// Events lost so far.
    discarded: u64,
    /// Whether a packet was written, and the count of losses the last one
    /// carried.
    wrote: bool,
    wrote_discarded: u64,
}

impl Stream {
    fn reset(&mut self) {
        self.packet.clear();
        self.packet.resize(HEADER_LEN + CONTEXT_LEN, 0);
        self.begin = None;
    }

    /// Starts an event: its header (class id, timestamp).
    fn event_header(&mut self, id: u32, ts: u64) -> &mut Vec<u8> {
        if self.begin.is_none() {
            self.begin = Some(ts);
        }
        self.end = self.end.max(ts);
        put_u32(&mut self.packet, id);
        put_u64(&mut self.packet, ts);
        &mut self.packet
    }

    fn after_event(&mut self) -> io::Result<()> {
        if self.packet.len() >= HEADER_LEN + CONTEXT_LEN + PACKET_EVENTS_BYTES {
            self.close()?;
        }
        Ok(())
    }

    /// Fills in the header and context and writes the packet.
    fn close(&mut self) -> io::Result<()> {
        let begin = self.begin.unwrap_or(self.end);
        let bits = (self.packet.len() as u64) * 8;
        let p = &mut self.packet;
        p[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        p[4..20].copy_from_slice(&self.uuid);
        p[20..24].copy_from_slice(&0u32.to_le_bytes());
        let c = HEADER_LEN;
        p[c..c + 8].copy_from_slice(&begin.to_le_bytes());
        p[c + 8..c + 16].copy_from_slice(&self.end.to_le_bytes());
        p[c + 16..c + 24].copy_from_slice(&bits.to_le_bytes());
        p[c + 24..c + 32].copy_from_slice(&bits.to_le_bytes());
        p[c + 32..c + 40].copy_from_slice(&self.discarded.to_le_bytes());
        self.out.write_all(p)?;
        self.wrote = true;
        self.wrote_discarded = self.discarded;
        self.reset();
        Ok(())
    }
}

fn put_u32(p: &mut Vec<u8>, v: u32) {
    p.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(p: &mut Vec<u8>, v: u64) {
    p.extend_from_slice(&v.to_le_bytes());
}

/// A NUL-terminated string; NUL bytes inside become U+FFFD.
fn put_str(p: &mut Vec<u8>, s: &str) {
    if s.as_bytes().contains(&0) {
        p.extend_from_slice(s.replace('\0', "\u{FFFD}").as_bytes());
    } else {
        p.extend_from_slice(s.as_bytes());
    }
    p.push(0);
}

fn put_value(p: &mut Vec<u8>, v: &Value<'_>) {
    match *v {
        Value::U8(x) => p.push(x),
        Value::I8(x) => p.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => p.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => p.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => p.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => p.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => p.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => p.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => p.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => p.push(u8::from(x)),
        Value::Str(s) => put_str(p, s),
        Value::Bytes(b) => {
            // Decoded values are at most 65535 bytes; the cut is only a
            // guard so the length always matches the bytes written.
            let b = &b[..b.len().min(usize::from(u16::MAX))];
            p.extend_from_slice(&(b.len() as u16).to_le_bytes());
            p.extend_from_slice(b);
        }
        Value::Guid(g) => put_str(p, &guid_text(&g)),
    }
}

/// A trace UUID: random enough that two exports are told apart.
fn make_uuid(trace: &Trace) -> [u8; 16] {
    let state = std::collections::hash_map::RandomState::new();
    let mut out = [0u8; 16];
    for (i, half) in out.chunks_mut(8).enumerate() {
        let mut h = state.build_hasher();
        h.write_usize(i);
        h.write_u64(trace.first_ns().unwrap_or(0));
        h.write_usize(trace.len());
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    // Version 4, variant 1, as a random UUID is marked.
    out[6] = (out[6] & 0x0f) | 0x40;
    out[8] = (out[8] & 0x3f) | 0x80;
    out
}

fn uuid_text(u: &[u8; 16]) -> String {
    let h = crate::hex(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// TSDL's reserved words, which no identifier may be.
const KEYWORDS: &[&str] = &[
    "align",
    "callsite",
    "const",
    "char",
    "clock",
    "double",
    "enum",
    "env",
    "event",
    "floating_point",
    "float",
    "integer",
    "int",
    "long",
    "short",
    "signed",
    "stream",
    "string",
    "struct",
    "trace",
    "typealias",
    "typedef",
    "unsigned",
    "variant",
    "void",
    "_Bool",
    "_Complex",
    "_Imaginary",
];

/// A TSDL identifier for a field name, not in `used`. Characters an
/// identifier cannot hold become `_`. Readers drop one leading underscore
/// from a field's name (CTF reserves it for escaping reserved words), so
/// a name that starts with one, with a digit, or is a reserved word gets
/// one added, and readers show the name as it was.
fn identifier(name: &str, used: &mut HashSet<String>) -> String {
    let mut id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // An empty name is "_" to readers: an identifier of "_" alone would
    // lose its underscore and show as nothing.
    if id.is_empty() {
        id.push('_');
    }
    if id.starts_with('_')
        || id.starts_with(|c: char| c.is_ascii_digit())
        || KEYWORDS.contains(&id.as_str())
    {
        id.insert(0, '_');
    }
    // babeltrace2 checks a new field's name against the earlier ones with
    // their underscore dropped, so both forms must be new.
    let stripped = |s: &str| s.strip_prefix('_').unwrap_or(s).to_string();
    let mut unique = id.clone();
    let mut n = 2;
    while used.contains(&unique) || used.contains(&stripped(&unique)) {
        unique = format!("{id}_{n}");
        n += 1;
    }
    used.insert(stripped(&unique));
    used.insert(unique.clone());
    unique
}

/// A TSDL string literal: quotes and backslashes escaped, control
/// characters written as spaces (names only: values are in the stream).
fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn metadata(trace: &Trace, uuid: &[u8; 16], process_end_id: usize) -> String {
    let uuid = uuid_text(uuid);
    let mut m = String::new();
    let _ = write!(
        m,
        r#"/* CTF 1.8 */

typealias integer {{ size = 8; align = 8; signed = false; }} := uint8_t;
typealias integer {{ size = 16; align = 8; signed = false; }} := uint16_t;
typealias integer {{ size = 32; align = 8; signed = false; }} := uint32_t;
typealias integer {{ size = 64; align = 8; signed = false; }} := uint64_t;
typealias integer {{ size = 8; align = 8; signed = true; }} := int8_t;
typealias integer {{ size = 16; align = 8; signed = true; }} := int16_t;
typealias integer {{ size = 32; align = 8; signed = true; }} := int32_t;
typealias integer {{ size = 64; align = 8; signed = true; }} := int64_t;
typealias floating_point {{ exp_dig = 11; mant_dig = 53; align = 8; }} := double_t;

trace {{
    major = 1;
    minor = 8;
    uuid = "{uuid}";
    byte_order = le;
    packet.header := struct {{
        uint32_t magic;
        uint8_t uuid[16];
        uint32_t stream_id;
    }};
}};

env {{
    tracer_name = "ferret";
    domain = "ferret";
    events = {events};
    lost_events = {lost};
    log_buffers_lost = {log_lost};
    bad_records = {bad};
}};

clock {{
    name = ferret;
    uuid = "{uuid}";
    description = "UNIX-epoch time (CLOCK_REALTIME) in nanoseconds";
    freq = 1000000000;
    precision = 1;
    offset_s = 0;
    offset = 0;
    absolute = true;
}};

typealias integer {{ size = 64; align = 8; signed = false; map = clock.ferret.value; }} := ferret_clock_t;

stream {{
    id = 0;
    packet.context := struct {{
        ferret_clock_t timestamp_begin;
        ferret_clock_t timestamp_end;
        uint64_t content_size;
        uint64_t packet_size;
        uint64_t events_discarded;
    }};
    event.header := struct {{
        uint32_t id;
        ferret_clock_t timestamp;
    }};
    event.context := struct {{
        uint32_t pid;
        uint32_t tid;
        string activity_id;
        string related_activity_id;
    }};
}};
"#,
        events = trace.summary().events,
        lost = trace.summary().lost_total(),
        log_lost = trace.summary().log_buffers_lost,
        bad = trace.summary().bad_records,
    );
    for (id, ty) in trace.types().iter().enumerate() {
        let _ = write!(
            m,
            "\nevent {{\n    name = {};\n    id = {id};\n    stream_id = 0;\n    fields := struct {{\n",
            literal(&event_name(ty))
        );
        let mut used = HashSet::new();
        for f in &ty.fields {
            let name = identifier(&f.name, &mut used);
            let decl = match f.ty {
                FieldType::U8 => format!("uint8_t {name}"),
                FieldType::I8 => format!("int8_t {name}"),
                FieldType::U16 => format!("uint16_t {name}"),
                FieldType::I16 => format!("int16_t {name}"),
                FieldType::U32 => format!("uint32_t {name}"),
                FieldType::I32 => format!("int32_t {name}"),
                FieldType::U64 => format!("uint64_t {name}"),
                FieldType::I64 => format!("int64_t {name}"),
                FieldType::F64 => format!("double_t {name}"),
                FieldType::Bool => format!("uint8_t {name}"),
                FieldType::Str | FieldType::Guid => format!("string {name}"),
                FieldType::Bytes => {
                    let len = identifier(&format!("{name}_len"), &mut used);
                    format!("uint16_t {len};\n        uint8_t {name}[{len}]")
                }
            };
            let _ = writeln!(m, "        {decl};");
        }
        m.push_str("    };\n};\n");
    }
    let _ = write!(
        m,
        "\nevent {{\n    name = \"ferret/process_end\";\n    id = {process_end_id};\n    stream_id = 0;\n    fields := struct {{ }};\n}};\n"
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_valid_unique_and_keep_their_names() {
        let mut used = HashSet::new();
        assert_eq!(identifier("seq", &mut used), "seq");
        assert_eq!(identifier("spaced, name", &mut used), "spaced__name");
        assert_eq!(identifier("string", &mut used), "_string");
        assert_eq!(identifier("_x", &mut used), "__x");
        assert_eq!(identifier("9lives", &mut used), "_9lives");
        assert_eq!(identifier("", &mut used), "__");
        assert_eq!(identifier("_", &mut used), "___2");
        assert_eq!(identifier("seq", &mut used), "seq_2");
        assert_eq!(identifier("spaced__name", &mut used), "spaced__name_2");
    }
}
