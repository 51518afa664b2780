//! The record encoding shared by provider rings, the metadata area and log
//! file buffers (docs/FORMAT.md, "Records").
//!
//! Every record starts with `size: u16` (bytes of the whole record) and
//! `kind: u8`, little-endian, and records follow each other with no
//! padding. Event records are compact: a 16-bit event type, then either a
//! 32-bit tick delta from the previous record of the same stream (EVENT) or
//! a full 64-bit tick count (EVENT_ABS), then, only for events written
//! inside an activity, the 16-byte activity id and possibly the 16-byte
//! related activity id (two flag bits of the kind say which), then the
//! payload. Type ids, provider
//! ids and timestamps are scoped by the CONTEXT record that precedes them, so
//! the daemon can copy runs of ring records into log buffers unchanged.
//!
//! Parsers here take bytes from another process or from disk: they check
//! every length against the bytes they were given, cap what they allocate,
//! and return an error instead of panicking.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::Guid;
use crate::shm::Span;

/// Bytes of the header every record starts with (size and kind).
pub const HEADER_LEN: usize = 3;
/// Bytes before the payload of an EVENT record.
pub const EVENT_HEADER_LEN: usize = 9;
/// Bytes before the payload of an EVENT_ABS record.
pub const EVENT_ABS_HEADER_LEN: usize = 13;
/// Bytes of one activity id in an event record.
pub const ACTIVITY_ID_LEN: usize = 16;
/// The largest record.
pub const MAX_RECORD: usize = u16::MAX as usize;
/// The longest name (provider, event, process) the encoders write.
pub const MAX_NAME: usize = 1024;
/// The longest field name.
pub const MAX_FIELD_NAME: usize = 255;
/// The most fields an event type may declare.
pub const MAX_FIELDS: usize = 128;
/// The most event types one process may register (type ids are 16 bits).
pub const MAX_TYPES: usize = u16::MAX as usize;

/// Record kinds (the byte after the size).
pub mod kind {
    /// An event: u16 type, u32 tick delta from the previous record of the stream, payload.
    pub const EVENT: u8 = 0x01;
    /// An event: u16 type, u64 ticks, payload.
    pub const EVENT_ABS: u8 = 0x02;
    /// Set in an event kind when a 16-byte activity id follows the time.
    pub const ACTIVITY_BIT: u8 = 0x04;
    /// Set in an event kind (with [`ACTIVITY_BIT`]) when a 16-byte related
    /// activity id follows the activity id.
    pub const RELATED_BIT: u8 = 0x08;
    /// EVENT with an activity id: u16 type, u32 delta, activity, payload.
    pub const EVENT_ACTIVITY: u8 = EVENT | ACTIVITY_BIT;
    /// EVENT_ABS with an activity id: u16 type, u64 ticks, activity, payload.
    pub const EVENT_ABS_ACTIVITY: u8 = EVENT_ABS | ACTIVITY_BIT;
    /// EVENT with activity and related activity ids.
    pub const EVENT_RELATED: u8 = EVENT | ACTIVITY_BIT | RELATED_BIT;
    /// EVENT_ABS with activity and related activity ids.
    pub const EVENT_ABS_RELATED: u8 = EVENT_ABS | ACTIVITY_BIT | RELATED_BIT;

    /// A compact event (every kind from 0x80 up): the kind's low seven
    /// bits are the type id (0–127), a LEB128 tick delta from the previous
    /// record of the stream follows (1–5 bytes, at most `u32::MAX`), then
    /// the payload. No activity ids. A burst of small events of a
    /// program's first 128 types takes 4 header bytes each instead of 9.
    pub const COMPACT: u8 = 0x80;

    /// True for the six event kinds and the compact ones.
    #[inline]
    pub const fn is_event(kind: u8) -> bool {
        kind & COMPACT != 0
            || matches!(
                kind,
                EVENT
                    | EVENT_ABS
                    | EVENT_ACTIVITY
                    | EVENT_ABS_ACTIVITY
                    | EVENT_RELATED
                    | EVENT_ABS_RELATED
            )
    }
    /// Ring padding: the rest of the ring up to its end is unused.
    pub const PAD: u8 = 0x03;
    /// Rings only: u32 thread id of the thread that writes the records after
    /// it (a ring passes from thread to thread as threads exit and start).
    pub const THREAD: u8 = 0x21;
    /// Metadata: a provider instance (name, GUID, process).
    pub const PROVIDER: u8 = 0x10;
    /// Metadata: an event type (names and field types).
    pub const EVENT_TYPE: u8 = 0x11;
    /// Metadata: a process id and its name.
    pub const PROCESS: u8 = 0x12;
    /// A provider process ended (its connection to the daemon closed) and
    /// everything it committed before is in the stream.
    pub const PROCESS_END: u8 = 0x13;
    /// The source, process, thread and base time of the events that follow in a buffer.
    pub const CONTEXT: u8 = 0x20;
    /// A count of events lost at this point of the stream, with the reason.
    pub const LOST: u8 = 0x30;
    /// The final counters of a session (log file trailer buffer only).
    pub const TRAILER: u8 = 0x40;
}

/// The size and kind at the start of `b`, if at least three bytes are there.
#[inline]
pub fn peek_header(b: &[u8]) -> Option<(usize, u8)> {
    let h = b.first_chunk::<HEADER_LEN>()?;
    Some((u16::from_le_bytes([h[0], h[1]]) as usize, h[2]))
}

/// How an event record carries its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ticks {
    /// Ticks since the previous record of the same stream.
    Delta(u32),
    /// An absolute tick count.
    Absolute(u64),
}

impl Ticks {
    /// The absolute time, given the time of the previous record.
    #[inline]
    pub fn resolve(self, previous: u64) -> u64 {
        match self {
            Ticks::Delta(d) => previous.wrapping_add(d as u64),
            Ticks::Absolute(t) => t,
        }
    }
}

/// The activity ids an event record carries: none, an activity id, or an
/// activity id and a related activity id (ETW's `ActivityId` and
/// `RelatedActivityId`). Events written outside any activity carry none and
/// keep their size.
///
/// ```
/// use ferret_abi::Guid;
/// use ferret_abi::record::{ActivityIds, Ticks, event_header_len};
///
/// let inside = ActivityIds { activity: Some(Guid([1; 16])), related: None };
/// assert_eq!(event_header_len(Ticks::Delta(0), &ActivityIds::NONE), 9);
/// assert_eq!(event_header_len(Ticks::Delta(0), &inside), 25);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActivityIds {
    /// The activity the event belongs to.
    pub activity: Option<Guid>,
    /// The activity that started this one (start events) or that this
    /// event transfers from. Written only with `activity`: a related id
    /// without an activity id is written with the all-zero activity id.
    pub related: Option<Guid>,
}

impl ActivityIds {
    /// No activity ids.
    pub const NONE: ActivityIds = ActivityIds {
        activity: None,
        related: None,
    };

    /// How many 16-byte ids the record carries (0, 1 or 2).
    #[inline]
    pub const fn count(&self) -> usize {
        if self.related.is_some() {
            2
        } else if self.activity.is_some() {
            1
        } else {
            0
        }
    }
}

/// Bytes before the payload of an event record with this time form and
/// these ids.
#[inline]
pub const fn event_header_len(ticks: Ticks, ids: &ActivityIds) -> usize {
    let time = match ticks {
        Ticks::Delta(_) => EVENT_HEADER_LEN,
        Ticks::Absolute(_) => EVENT_ABS_HEADER_LEN,
    };
    time + ids.count() * ACTIVITY_ID_LEN
}

/// Writes an event record's header into `dst` and returns its length.
///
/// # Panics
///
/// If `dst` is shorter than the header; callers size it first.
// Always inlined: the provider's writer calls it for every event, and only
// inlined does the header become a few stores with the size checks folded.
#[inline(always)]
pub fn encode_event_header(dst: &mut [u8], size: usize, type_id: u16, ticks: Ticks) -> usize {
    encode_event_header_at(&mut Span::new(dst), size, type_id, ticks)
}

/// [`encode_event_header`] into a [`Span`]: how the provider's writer
/// builds a record in ring space without a reference to shared memory.
///
/// # Panics
///
/// If `dst` is shorter than the header; nothing is written past its end.
#[inline(always)]
pub fn encode_event_header_at(
    dst: &mut Span<'_>,
    size: usize,
    type_id: u16,
    ticks: Ticks,
) -> usize {
    let len = match ticks {
        Ticks::Delta(_) => EVENT_HEADER_LEN,
        Ticks::Absolute(_) => EVENT_ABS_HEADER_LEN,
    };
    // One check for the header, then its parts unchecked.
    dst.check(0, len);
    // SAFETY: every store below lies inside [0, len), checked above.
    unsafe {
        dst.put_array_unchecked(0, (size as u16).to_le_bytes());
        dst.put_array_unchecked(3, type_id.to_le_bytes());
        match ticks {
            Ticks::Delta(d) => {
                dst.put_array_unchecked(2, [kind::EVENT]);
                dst.put_array_unchecked(5, d.to_le_bytes());
            }
            Ticks::Absolute(t) => {
                dst.put_array_unchecked(2, [kind::EVENT_ABS]);
                dst.put_array_unchecked(5, t.to_le_bytes());
            }
        }
    }
    len
}

/// Type ids below this may be written as compact events ([`kind::COMPACT`]).
pub const COMPACT_TYPES: u16 = 0x80;

/// The longest compact event header: size, kind and a five-byte delta.
pub const COMPACT_MAX_HEADER_LEN: usize = HEADER_LEN + 5;

/// The header length of a compact event whose delta is `delta`.
///
/// ```
/// use ferret_abi::record::compact_header_len;
///
/// assert_eq!(compact_header_len(100), 4);
/// assert_eq!(compact_header_len(20_000), 6);
/// assert_eq!(compact_header_len(u32::MAX), 8);
/// ```
#[inline(always)]
pub const fn compact_header_len(delta: u32) -> usize {
    // Seven bits per byte: 1 byte below 2^7, 2 below 2^14, and so on. A
    // chain of tests, not arithmetic on the bit length: in a burst the
    // first one is taken every time and costs a compare and a branch.
    HEADER_LEN
        + if delta < 1 << 7 {
            1
        } else if delta < 1 << 14 {
            2
        } else if delta < 1 << 21 {
            3
        } else if delta < 1 << 28 {
            4
        } else {
            5
        }
}

/// Writes a compact event header (see [`kind::COMPACT`]) into `dst` and
/// returns its length, [`compact_header_len`] of `delta`. `type_id` must be
/// below [`COMPACT_TYPES`].
///
/// # Panics
///
/// If `dst` is shorter than the header; callers size it first.
#[inline(always)]
pub fn encode_compact_header(dst: &mut [u8], size: usize, type_id: u16, delta: u32) -> usize {
    encode_compact_header_at(&mut Span::new(dst), size, type_id, delta)
}

/// [`encode_compact_header`] into a [`Span`].
///
/// # Panics
///
/// If `dst` is shorter than the header; nothing is written past its end.
#[inline(always)]
pub fn encode_compact_header_at(
    dst: &mut Span<'_>,
    size: usize,
    type_id: u16,
    delta: u32,
) -> usize {
    debug_assert!(type_id < COMPACT_TYPES);
    // The common case in a burst: a delta under 128 ticks, one byte, and
    // one check for the whole header.
    if delta < 0x80 {
        dst.check(0, HEADER_LEN + 1);
        // SAFETY: the stores lie inside [0, HEADER_LEN + 1), checked above.
        unsafe {
            dst.put_array_unchecked(
                0,
                [
                    size as u8,
                    (size >> 8) as u8,
                    kind::COMPACT | type_id as u8,
                    delta as u8,
                ],
            );
        }
        return HEADER_LEN + 1;
    }
    // Checked whole first, so that a span too short for the header gets
    // none of it.
    dst.check(0, compact_header_len(delta));
    dst.put_u16(0, size as u16);
    dst.put_u8(2, kind::COMPACT | type_id as u8);
    let mut at = HEADER_LEN;
    let mut d = delta;
    while d >= 0x80 {
        dst.put_u8(at, (d as u8) | 0x80);
        d >>= 7;
        at += 1;
    }
    dst.put_u8(at, d as u8);
    at + 1
}

/// The type id and delta of a compact event header at the start of `b`, and
/// the header's length. `None` if the delta runs past `b`, past five bytes or
/// past `u32::MAX`, or is not in its shortest form (so that every header
/// has exactly one encoding).
#[inline]
fn decode_compact(b: &[u8], k: u8) -> Option<(u16, Ticks, usize)> {
    let mut delta: u64 = 0;
    let mut at = HEADER_LEN;
    loop {
        let byte = *b.get(at)?;
        delta |= u64::from(byte & 0x7F) << (7 * (at - HEADER_LEN));
        at += 1;
        if byte & 0x80 == 0 {
            if byte == 0 && at > HEADER_LEN + 1 {
                return None;
            }
            break;
        }
        if at == COMPACT_MAX_HEADER_LEN {
            return None;
        }
    }
    let delta = u32::try_from(delta).ok()?;
    Some(((k & !kind::COMPACT) as u16, Ticks::Delta(delta), at))
}

/// Writes the header of an event record carrying `ids` into `dst` and
/// returns its length ([`event_header_len`]). Without ids it is
/// [`encode_event_header`], at the same cost.
///
/// # Panics
///
/// If `dst` is shorter than the header; callers size it first.
#[inline]
pub fn encode_event_header_ids(
    dst: &mut [u8],
    size: usize,
    type_id: u16,
    ticks: Ticks,
    ids: &ActivityIds,
) -> usize {
    let at = encode_event_header(dst, size, type_id, ticks);
    if ids.activity.is_none() && ids.related.is_none() {
        return at;
    }
    encode_activity_ids(dst, at, ids)
}

/// Appends `ids` (at least one) to an event header that
/// [`encode_event_header`] wrote into `dst` and whose time ends at `at`,
/// sets the kind's bits, and returns the header's new length.
///
/// # Panics
///
/// If `dst` is shorter than the header; callers size it first.
#[inline]
pub fn encode_activity_ids(dst: &mut [u8], at: usize, ids: &ActivityIds) -> usize {
    encode_activity_ids_at(&mut Span::new(dst), at, ids)
}

/// [`encode_activity_ids`] into a [`Span`].
///
/// # Panics
///
/// If `dst` is shorter than the header; nothing is written past its end.
#[inline]
pub fn encode_activity_ids_at(dst: &mut Span<'_>, mut at: usize, ids: &ActivityIds) -> usize {
    dst.or_u8(2, kind::ACTIVITY_BIT);
    let activity = ids.activity.unwrap_or_default();
    dst.put_array(at, activity.0);
    at += ACTIVITY_ID_LEN;
    if let Some(related) = ids.related {
        dst.or_u8(2, kind::RELATED_BIT);
        dst.put_array(at, related.0);
        at += ACTIVITY_ID_LEN;
    }
    at
}

/// Reads the type and time of an event record from its first bytes (at
/// least [`EVENT_ABS_HEADER_LEN`] of them, or [`EVENT_HEADER_LEN`] for
/// EVENT and its activity forms, or the compact header's length) and
/// returns them with the length of the
/// whole header, activity ids included. The ids themselves are not read:
/// the caller checks that the record is at least that long and reads them
/// with [`decode_activity_ids`] if it needs them.
#[inline]
pub fn decode_event_header(b: &[u8]) -> Option<(u16, Ticks, usize)> {
    let (_, k) = peek_header(b)?;
    // The daemon frames every ring record with this: the two plain kinds
    // come first and cost what they did before activity ids existed.
    match k {
        k if k & kind::COMPACT != 0 => decode_compact(b, k),
        kind::EVENT => decode_time(b, false, 0),
        kind::EVENT_ABS => decode_time(b, true, 0),
        kind::EVENT_ACTIVITY => decode_time(b, false, 1),
        kind::EVENT_ABS_ACTIVITY => decode_time(b, true, 1),
        kind::EVENT_RELATED => decode_time(b, false, 2),
        kind::EVENT_ABS_RELATED => decode_time(b, true, 2),
        _ => None,
    }
}

/// The type and time of an event header, and its length with `ids` ids.
#[inline(always)]
fn decode_time(b: &[u8], absolute: bool, ids: usize) -> Option<(u16, Ticks, usize)> {
    let type_id = u16::from_le_bytes([*b.get(3)?, *b.get(4)?]);
    if absolute {
        let t: [u8; 8] = b.get(5..13)?.try_into().ok()?;
        Some((
            type_id,
            Ticks::Absolute(u64::from_le_bytes(t)),
            EVENT_ABS_HEADER_LEN + ids * ACTIVITY_ID_LEN,
        ))
    } else {
        let d = b.get(5..9)?;
        Some((
            type_id,
            Ticks::Delta(u32::from_le_bytes([d[0], d[1], d[2], d[3]])),
            EVENT_HEADER_LEN + ids * ACTIVITY_ID_LEN,
        ))
    }
}

/// The activity ids of the event record `record` (the whole record, as
/// framed by its size). `None` if it is not an event record or is too
/// short for the ids its kind announces.
pub fn decode_activity_ids(record: &[u8]) -> Option<ActivityIds> {
    let (_, k) = peek_header(record)?;
    if !kind::is_event(k) {
        return None;
    }
    if k & kind::COMPACT != 0 {
        // The kind's low bits are a type id here, not id flags.
        return Some(ActivityIds::NONE);
    }
    let at = if k & !(kind::ACTIVITY_BIT | kind::RELATED_BIT) == kind::EVENT {
        EVENT_HEADER_LEN
    } else {
        EVENT_ABS_HEADER_LEN
    };
    let id = |n: usize| -> Option<Guid> {
        let start = at + n * ACTIVITY_ID_LEN;
        let b: [u8; ACTIVITY_ID_LEN] = record
            .get(start..start + ACTIVITY_ID_LEN)?
            .try_into()
            .ok()?;
        Some(Guid(b))
    };
    let mut ids = ActivityIds::NONE;
    if k & kind::ACTIVITY_BIT != 0 {
        ids.activity = Some(id(0)?);
    }
    if k & kind::RELATED_BIT != 0 {
        ids.related = Some(id(1)?);
    }
    Some(ids)
}

/// The type of one event field.
///
/// ```
/// use ferret_abi::record::FieldType;
///
/// assert_eq!(FieldType::from_u8(13), Some(FieldType::Guid));
/// assert_eq!(FieldType::U32.fixed_size(), Some(4));
/// assert_eq!(FieldType::Str.name(), "str");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum FieldType {
    /// Unsigned 8-bit integer.
    U8 = 1,
    /// Signed 8-bit integer.
    I8 = 2,
    /// Unsigned 16-bit integer.
    U16 = 3,
    /// Signed 16-bit integer.
    I16 = 4,
    /// Unsigned 32-bit integer.
    U32 = 5,
    /// Signed 32-bit integer.
    I32 = 6,
    /// Unsigned 64-bit integer.
    U64 = 7,
    /// Signed 64-bit integer.
    I64 = 8,
    /// IEEE 754 double.
    F64 = 9,
    /// One byte, 0 or 1.
    Bool = 10,
    /// UTF-8 text: u16 length, then the bytes.
    Str = 11,
    /// Raw bytes: u16 length, then the bytes.
    Bytes = 12,
    /// A GUID: 16 bytes in the form of provider GUIDs (first three fields
    /// little-endian). Since format minor 2.
    Guid = 13,
}

impl FieldType {
    /// The type with wire code `code`.
    pub const fn from_u8(code: u8) -> Option<FieldType> {
        Some(match code {
            1 => FieldType::U8,
            2 => FieldType::I8,
            3 => FieldType::U16,
            4 => FieldType::I16,
            5 => FieldType::U32,
            6 => FieldType::I32,
            7 => FieldType::U64,
            8 => FieldType::I64,
            9 => FieldType::F64,
            10 => FieldType::Bool,
            11 => FieldType::Str,
            12 => FieldType::Bytes,
            13 => FieldType::Guid,
            _ => return None,
        })
    }

    /// Bytes of a value of a fixed-size type; `None` for strings and bytes.
    pub const fn fixed_size(self) -> Option<usize> {
        match self {
            FieldType::U8 | FieldType::I8 | FieldType::Bool => Some(1),
            FieldType::U16 | FieldType::I16 => Some(2),
            FieldType::U32 | FieldType::I32 => Some(4),
            FieldType::U64 | FieldType::I64 | FieldType::F64 => Some(8),
            FieldType::Guid => Some(16),
            FieldType::Str | FieldType::Bytes => None,
        }
    }

    /// The name used in docs and decoded output.
    pub const fn name(self) -> &'static str {
        match self {
            FieldType::U8 => "u8",
            FieldType::I8 => "i8",
            FieldType::U16 => "u16",
            FieldType::I16 => "i16",
            FieldType::U32 => "u32",
            FieldType::I32 => "i32",
            FieldType::U64 => "u64",
            FieldType::I64 => "i64",
            FieldType::F64 => "f64",
            FieldType::Bool => "bool",
            FieldType::Str => "str",
            FieldType::Bytes => "bytes",
            FieldType::Guid => "guid",
        }
    }
}

/// One declared field of an event type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldMeta {
    /// The field's name (at most 255 bytes).
    pub name: String,
    /// The field's type.
    pub ty: FieldType,
}

/// The metadata of one event type: everything needed to decode its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTypeMeta {
    /// The source (provider process) the type belongs to; 0 in a region's
    /// metadata area, where the source is implied.
    pub source: u32,
    /// The id that event records of this type carry.
    pub type_id: u16,
    /// The provider's enable slot in its process.
    pub provider: u32,
    /// The event id the program declared.
    pub event_id: u16,
    /// The event's level (1 to 5).
    pub level: u8,
    /// The event's opcode (0 info, 1 start, 2 stop, as ETW).
    pub opcode: u8,
    /// The event's keyword mask.
    pub keywords: u64,
    /// The event's name.
    pub name: String,
    /// The payload's fields, in order.
    pub fields: Vec<FieldMeta>,
}

/// A provider instance: one provider registered by one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderMeta {
    /// The source (provider process) it belongs to.
    pub source: u32,
    /// Its enable slot in that process; event types refer to it.
    pub provider: u32,
    /// The process that registered it.
    pub pid: u32,
    /// The GUID derived from the name.
    pub guid: Guid,
    /// The provider's name.
    pub name: String,
}

/// A process id and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessMeta {
    /// The process id.
    pub pid: u32,
    /// The command name the kernel reports for it.
    pub name: String,
    /// The source (the provider process as the daemon saw it) the name
    /// belongs to. A pid alone does not name one process: the kernel reuses
    /// pids, and processes in other PID namespaces may share one. Records
    /// written before this field existed have none.
    pub source: Option<u32>,
}

/// The end of a provider process, as the daemon saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessEndMeta {
    /// The source (provider process as one daemon saw it) that ended.
    pub source: u32,
    /// Its process id.
    pub pid: u32,
    /// When the daemon had drained its rings after its connection closed,
    /// in the session's ticks.
    pub ticks: u64,
}

/// The stream the events after a CONTEXT record belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextMeta {
    /// The source (provider process) whose types and providers the events use.
    pub source: u32,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// The tick count the first EVENT delta is relative to.
    pub base_ticks: u64,
}

/// Why events were lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u32)]
pub enum LostReason {
    /// The writing thread's ring was full (the daemon did not keep up).
    RingFull = 1,
    /// The session had no free buffer (the log file did not keep up).
    NoBuffer = 2,
    /// The event was larger than a record or a buffer can hold, or did not
    /// match its declared fields.
    Invalid = 3,
    /// The process had more writing threads than rings.
    NoRing = 4,
    /// The daemon found a malformed record in a ring and discarded the rest.
    Corrupt = 5,
    /// The event's type could not be registered (metadata area full).
    NoMetadata = 6,
}

impl LostReason {
    /// The reason with wire code `code`.
    pub const fn from_u32(code: u32) -> Option<LostReason> {
        Some(match code {
            1 => LostReason::RingFull,
            2 => LostReason::NoBuffer,
            3 => LostReason::Invalid,
            4 => LostReason::NoRing,
            5 => LostReason::Corrupt,
            6 => LostReason::NoMetadata,
            _ => return None,
        })
    }

    /// The name used in decoded output.
    pub const fn name(self) -> &'static str {
        match self {
            LostReason::RingFull => "ring-full",
            LostReason::NoBuffer => "no-buffer",
            LostReason::Invalid => "invalid",
            LostReason::NoRing => "no-ring",
            LostReason::Corrupt => "corrupt",
            LostReason::NoMetadata => "no-metadata",
        }
    }
}

/// A count of lost events recorded in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LostMeta {
    /// The source (provider process) they came from.
    pub source: u32,
    /// The provider's slot in that process, or `u32::MAX` when not known.
    pub provider: u32,
    /// Why they were lost.
    pub reason: LostReason,
    /// The process they came from.
    pub pid: u32,
    /// How many.
    pub count: u64,
}

/// One parsed record. Borrowed parts point into the bytes given to [`parse_untrusted`].
#[derive(Clone, Debug, PartialEq)]
pub enum Record<'a> {
    /// An event record (EVENT or EVENT_ABS, with or without activity ids).
    Event {
        /// The event type id, scoped by the current context's source.
        type_id: u16,
        /// The record's time.
        ticks: Ticks,
        /// The activity ids the record carries, if any.
        ids: ActivityIds,
        /// The encoded field values.
        payload: &'a [u8],
    },
    /// Ring padding.
    Pad,
    /// Rings only: the thread writing the records that follow.
    Thread {
        /// Its thread id.
        tid: u32,
    },
    /// Provider metadata.
    Provider(ProviderMeta),
    /// Event type metadata.
    EventType(EventTypeMeta),
    /// Process metadata.
    Process(ProcessMeta),
    /// A provider process ended.
    ProcessEnd(ProcessEndMeta),
    /// The stream of the following events.
    Context(ContextMeta),
    /// Lost events.
    Lost(LostMeta),
    /// Final counters, in the order docs/FORMAT.md gives.
    Trailer(Vec<u64>),
    /// A kind this reader does not know; readers skip it.
    Unknown {
        /// The kind byte.
        kind: u8,
    },
}

/// Why a record could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RecordError {
    /// Fewer bytes remain than a record header.
    #[error("{0} bytes left, too few for a record header")]
    ShortHeader(usize),
    /// The size field is smaller than the header or larger than the bytes left.
    #[error("record size {size} is invalid with {available} bytes left")]
    BadSize {
        /// The size field.
        size: usize,
        /// Bytes available.
        available: usize,
    },
    /// The body is shorter than its kind requires or its lengths overrun it.
    #[error("{kind_name} record is truncated: {detail}")]
    Truncated {
        /// The record kind's name.
        kind_name: &'static str,
        /// What was missing.
        detail: &'static str,
    },
    /// A name or string is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    BadUtf8(&'static str),
    /// A field type code is unknown.
    #[error("unknown field type code {0}")]
    BadFieldType(u8),
    /// A lost-event reason code is unknown.
    #[error("unknown lost-event reason {0}")]
    BadReason(u32),
    /// A count exceeds its cap.
    #[error("{what} is {value}, more than the limit {limit}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The value found.
        value: usize,
        /// The cap.
        limit: usize,
    },
}

/// Why a record could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// A name is longer than its cap.
    #[error("{what} is {len} bytes long; the limit is {limit}")]
    NameTooLong {
        /// Which name.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The cap.
        limit: usize,
    },
    /// Too many fields.
    #[error("{0} fields; the limit is {MAX_FIELDS}")]
    TooManyFields(usize),
    /// The record would exceed [`MAX_RECORD`].
    #[error("record would be {0} bytes; the limit is {MAX_RECORD}")]
    TooLarge(usize),
}

/// A bounds-checked reader over untrusted bytes.
#[derive(Debug)]
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    kind_name: &'static str,
}

impl<'a> Cursor<'a> {
    /// A cursor over `bytes`; `kind_name` names the record in errors.
    pub fn new(bytes: &'a [u8], kind_name: &'static str) -> Cursor<'a> {
        Cursor {
            bytes,
            pos: 0,
            kind_name,
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, detail: &'static str) -> Result<&'a [u8], RecordError> {
        if self.remaining() < n {
            return Err(RecordError::Truncated {
                kind_name: self.kind_name,
                detail,
            });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, detail: &'static str) -> Result<[u8; N], RecordError> {
        let s = self.take(N, detail)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// A byte.
    pub fn u8(&mut self, detail: &'static str) -> Result<u8, RecordError> {
        Ok(self.array::<1>(detail)?[0])
    }

    /// A little-endian u16.
    pub fn u16(&mut self, detail: &'static str) -> Result<u16, RecordError> {
        Ok(u16::from_le_bytes(self.array(detail)?))
    }

    /// A little-endian u32.
    pub fn u32(&mut self, detail: &'static str) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.array(detail)?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self, detail: &'static str) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.array(detail)?))
    }

    /// A UTF-8 string of `len` bytes, at most `limit`.
    pub fn str(
        &mut self,
        len: usize,
        limit: usize,
        detail: &'static str,
    ) -> Result<&'a str, RecordError> {
        if len > limit {
            return Err(RecordError::TooMany {
                what: detail,
                value: len,
                limit,
            });
        }
        let b = self.take(len, detail)?;
        core::str::from_utf8(b).map_err(|_| RecordError::BadUtf8(detail))
    }
}

/// Parses the record at the start of `bytes`, returning it and its size.
///
/// `bytes` comes from another process or from disk: nothing in it is
/// trusted. PAD returns a size of [`HEADER_LEN`]; what follows a pad is not
/// a record.
pub fn parse_untrusted(bytes: &[u8]) -> Result<(Record<'_>, usize), RecordError> {
    let Some((size, k)) = peek_header(bytes) else {
        return Err(RecordError::ShortHeader(bytes.len()));
    };
    // Most records of a busy log are compact events: framed first, without
    // the general kind dispatch.
    if k & kind::COMPACT != 0 && size <= bytes.len() {
        let record = &bytes[..size];
        if let Some((type_id, ticks, header)) = decode_compact(record, k) {
            if header <= size {
                return Ok((
                    Record::Event {
                        type_id,
                        ticks,
                        ids: ActivityIds::NONE,
                        payload: &record[header..],
                    },
                    size,
                ));
            }
        }
    }
    if k == kind::PAD {
        return Ok((Record::Pad, HEADER_LEN));
    }
    if size < HEADER_LEN || size > bytes.len() {
        return Err(RecordError::BadSize {
            size,
            available: bytes.len(),
        });
    }
    let body = &bytes[HEADER_LEN..size];
    let record = match k {
        k if kind::is_event(k) => {
            let record = &bytes[..size];
            let truncated = RecordError::Truncated {
                kind_name: "event",
                detail: "header",
            };
            let Some((type_id, ticks, header)) = decode_event_header(record) else {
                return Err(truncated);
            };
            if header > size {
                return Err(truncated);
            }
            let ids = decode_activity_ids(record).ok_or(truncated)?;
            Record::Event {
                type_id,
                ticks,
                ids,
                payload: &bytes[header..size],
            }
        }
        kind::PROVIDER => Record::Provider(parse_provider(body)?),
        kind::EVENT_TYPE => Record::EventType(parse_event_type(body)?),
        kind::PROCESS => {
            let mut c = Cursor::new(body, "process");
            let pid = c.u32("process id")?;
            let len = c.u16("name length")? as usize;
            let name = c.str(len, MAX_NAME, "process name")?.to_string();
            // The source was appended later: a record without it ends at
            // the name.
            let source = if c.remaining() >= 4 {
                Some(c.u32("process source")?)
            } else {
                None
            };
            Record::Process(ProcessMeta { pid, name, source })
        }
        kind::THREAD => {
            let mut c = Cursor::new(body, "thread");
            Record::Thread {
                tid: c.u32("thread id")?,
            }
        }
        kind::PROCESS_END => {
            let mut c = Cursor::new(body, "process end");
            Record::ProcessEnd(ProcessEndMeta {
                source: c.u32("source")?,
                pid: c.u32("process id")?,
                ticks: c.u64("ticks")?,
            })
        }
        kind::CONTEXT => {
            let mut c = Cursor::new(body, "context");
            Record::Context(ContextMeta {
                source: c.u32("source")?,
                pid: c.u32("process id")?,
                tid: c.u32("thread id")?,
                base_ticks: c.u64("base ticks")?,
            })
        }
        kind::LOST => {
            let mut c = Cursor::new(body, "lost");
            let source = c.u32("source")?;
            let provider = c.u32("provider")?;
            let code = c.u32("reason")?;
            let reason = LostReason::from_u32(code).ok_or(RecordError::BadReason(code))?;
            let pid = c.u32("process id")?;
            let count = c.u64("count")?;
            Record::Lost(LostMeta {
                source,
                provider,
                reason,
                pid,
                count,
            })
        }
        kind::TRAILER => {
            let mut c = Cursor::new(body, "trailer");
            let n = c.u16("counter count")? as usize;
            if n > c.remaining() / 8 {
                return Err(RecordError::Truncated {
                    kind_name: "trailer",
                    detail: "counters",
                });
            }
            let mut values = Vec::with_capacity(n);
            for _ in 0..n {
                values.push(c.u64("counter")?);
            }
            Record::Trailer(values)
        }
        other => Record::Unknown { kind: other },
    };
    Ok((record, size))
}

fn parse_provider(body: &[u8]) -> Result<ProviderMeta, RecordError> {
    let mut c = Cursor::new(body, "provider");
    let source = c.u32("source")?;
    let provider = c.u32("provider")?;
    let pid = c.u32("process id")?;
    let guid = Guid(c.array::<16>("guid")?);
    let len = c.u16("name length")? as usize;
    let name = c.str(len, MAX_NAME, "provider name")?.to_string();
    Ok(ProviderMeta {
        source,
        provider,
        pid,
        guid,
        name,
    })
}

fn parse_event_type(body: &[u8]) -> Result<EventTypeMeta, RecordError> {
    let mut c = Cursor::new(body, "event type");
    let source = c.u32("source")?;
    let type_id = c.u16("type id")?;
    let provider = c.u32("provider")?;
    let event_id = c.u16("event id")?;
    let level = c.u8("level")?;
    let opcode = c.u8("opcode")?;
    let keywords = c.u64("keywords")?;
    let len = c.u16("name length")? as usize;
    let name = c.str(len, MAX_NAME, "event name")?.to_string();
    let count = c.u16("field count")? as usize;
    if count > MAX_FIELDS {
        return Err(RecordError::TooMany {
            what: "field count",
            value: count,
            limit: MAX_FIELDS,
        });
    }
    let mut fields = Vec::with_capacity(count);
    for _ in 0..count {
        let code = c.u8("field type")?;
        let ty = FieldType::from_u8(code).ok_or(RecordError::BadFieldType(code))?;
        let len = c.u8("field name length")? as usize;
        let name = c.str(len, MAX_FIELD_NAME, "field name")?.to_string();
        fields.push(FieldMeta { name, ty });
    }
    Ok(EventTypeMeta {
        source,
        type_id,
        provider,
        event_id,
        level,
        opcode,
        keywords,
        name,
        fields,
    })
}

fn check_name(what: &'static str, s: &str, limit: usize) -> Result<(), EncodeError> {
    if s.len() > limit {
        return Err(EncodeError::NameTooLong {
            what,
            len: s.len(),
            limit,
        });
    }
    Ok(())
}

/// Appends a record of kind `kind` with `body` to `out`, filling in the size.
fn push_record(out: &mut Vec<u8>, kind: u8, body: &[u8]) -> Result<(), EncodeError> {
    let size = HEADER_LEN + body.len();
    if size > MAX_RECORD {
        return Err(EncodeError::TooLarge(size));
    }
    out.extend_from_slice(&(size as u16).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    Ok(())
}

/// Appends an EVENT_TYPE record.
pub fn encode_event_type(meta: &EventTypeMeta, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_name("event name", &meta.name, MAX_NAME)?;
    if meta.fields.len() > MAX_FIELDS {
        return Err(EncodeError::TooManyFields(meta.fields.len()));
    }
    let mut body = Vec::with_capacity(32 + meta.name.len() + meta.fields.len() * 12);
    body.extend_from_slice(&meta.source.to_le_bytes());
    body.extend_from_slice(&meta.type_id.to_le_bytes());
    body.extend_from_slice(&meta.provider.to_le_bytes());
    body.extend_from_slice(&meta.event_id.to_le_bytes());
    body.push(meta.level);
    body.push(meta.opcode);
    body.extend_from_slice(&meta.keywords.to_le_bytes());
    body.extend_from_slice(&(meta.name.len() as u16).to_le_bytes());
    body.extend_from_slice(meta.name.as_bytes());
    body.extend_from_slice(&(meta.fields.len() as u16).to_le_bytes());
    for f in &meta.fields {
        check_name("field name", &f.name, MAX_FIELD_NAME)?;
        body.push(f.ty as u8);
        body.push(f.name.len() as u8);
        body.extend_from_slice(f.name.as_bytes());
    }
    push_record(out, kind::EVENT_TYPE, &body)
}

/// Appends a PROVIDER record.
pub fn encode_provider(meta: &ProviderMeta, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_name("provider name", &meta.name, MAX_NAME)?;
    let mut body = Vec::with_capacity(30 + meta.name.len());
    body.extend_from_slice(&meta.source.to_le_bytes());
    body.extend_from_slice(&meta.provider.to_le_bytes());
    body.extend_from_slice(&meta.pid.to_le_bytes());
    body.extend_from_slice(&meta.guid.0);
    body.extend_from_slice(&(meta.name.len() as u16).to_le_bytes());
    body.extend_from_slice(meta.name.as_bytes());
    push_record(out, kind::PROVIDER, &body)
}

/// Appends a PROCESS record.
pub fn encode_process(meta: &ProcessMeta, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_name("process name", &meta.name, MAX_NAME)?;
    let mut body = Vec::with_capacity(10 + meta.name.len());
    body.extend_from_slice(&meta.pid.to_le_bytes());
    body.extend_from_slice(&(meta.name.len() as u16).to_le_bytes());
    body.extend_from_slice(meta.name.as_bytes());
    if let Some(source) = meta.source {
        body.extend_from_slice(&source.to_le_bytes());
    }
    push_record(out, kind::PROCESS, &body)
}

/// Bytes of a CONTEXT record.
pub const CONTEXT_LEN: usize = HEADER_LEN + 20;

/// The bytes of a CONTEXT record.
pub fn context_record(ctx: &ContextMeta) -> [u8; CONTEXT_LEN] {
    let mut b = [0u8; CONTEXT_LEN];
    b[0..2].copy_from_slice(&(CONTEXT_LEN as u16).to_le_bytes());
    b[2] = kind::CONTEXT;
    b[3..7].copy_from_slice(&ctx.source.to_le_bytes());
    b[7..11].copy_from_slice(&ctx.pid.to_le_bytes());
    b[11..15].copy_from_slice(&ctx.tid.to_le_bytes());
    b[15..23].copy_from_slice(&ctx.base_ticks.to_le_bytes());
    b
}

/// Bytes of a THREAD record.
pub const THREAD_LEN: usize = HEADER_LEN + 4;

/// The bytes of a THREAD record (rings only).
pub fn thread_record(tid: u32) -> [u8; THREAD_LEN] {
    let mut b = [0u8; THREAD_LEN];
    b[0..2].copy_from_slice(&(THREAD_LEN as u16).to_le_bytes());
    b[2] = kind::THREAD;
    b[3..7].copy_from_slice(&tid.to_le_bytes());
    b
}

/// Bytes of a PROCESS_END record.
pub const PROCESS_END_LEN: usize = HEADER_LEN + 16;

/// The bytes of a PROCESS_END record.
pub fn process_end_record(end: &ProcessEndMeta) -> [u8; PROCESS_END_LEN] {
    let mut b = [0u8; PROCESS_END_LEN];
    b[0..2].copy_from_slice(&(PROCESS_END_LEN as u16).to_le_bytes());
    b[2] = kind::PROCESS_END;
    b[3..7].copy_from_slice(&end.source.to_le_bytes());
    b[7..11].copy_from_slice(&end.pid.to_le_bytes());
    b[11..19].copy_from_slice(&end.ticks.to_le_bytes());
    b
}

/// Bytes of a LOST record.
pub const LOST_LEN: usize = HEADER_LEN + 24;

/// The bytes of a LOST record.
pub fn lost_record(lost: &LostMeta) -> [u8; LOST_LEN] {
    let mut b = [0u8; LOST_LEN];
    b[0..2].copy_from_slice(&(LOST_LEN as u16).to_le_bytes());
    b[2] = kind::LOST;
    b[3..7].copy_from_slice(&lost.source.to_le_bytes());
    b[7..11].copy_from_slice(&lost.provider.to_le_bytes());
    b[11..15].copy_from_slice(&(lost.reason as u32).to_le_bytes());
    b[15..19].copy_from_slice(&lost.pid.to_le_bytes());
    b[19..27].copy_from_slice(&lost.count.to_le_bytes());
    b
}

/// Appends a TRAILER record holding `values` (at most 65535 of them).
pub fn encode_trailer(values: &[u64], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let n = values.len().min(u16::MAX as usize);
    let mut body = Vec::with_capacity(2 + n * 8);
    body.extend_from_slice(&(n as u16).to_le_bytes());
    for v in &values[..n] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    push_record(out, kind::TRAILER, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_type() -> EventTypeMeta {
        EventTypeMeta {
            source: 2,
            type_id: 7,
            provider: 3,
            event_id: 42,
            level: 4,
            opcode: 0,
            keywords: 0x8000_0000_0000_0001,
            name: "Sample".into(),
            fields: vec![
                FieldMeta {
                    name: "seq".into(),
                    ty: FieldType::U64,
                },
                FieldMeta {
                    name: "msg".into(),
                    ty: FieldType::Str,
                },
            ],
        }
    }

    #[test]
    fn metadata_records_round_trip() {
        let mut out = Vec::new();
        encode_event_type(&sample_type(), &mut out).unwrap();
        let provider = ProviderMeta {
            source: 2,
            provider: 3,
            pid: 99,
            guid: Guid::from_name("P"),
            name: "P".into(),
        };
        encode_provider(&provider, &mut out).unwrap();
        let process = ProcessMeta {
            pid: 99,
            name: "app".into(),
            source: Some(7),
        };
        encode_process(&process, &mut out).unwrap();
        let (rec, n) = parse_untrusted(&out).unwrap();
        assert_eq!(rec, Record::EventType(sample_type()));
        let (rec2, m) = parse_untrusted(&out[n..]).unwrap();
        assert_eq!(rec2, Record::Provider(provider));
        let (rec3, k) = parse_untrusted(&out[n + m..]).unwrap();
        assert_eq!(rec3, Record::Process(process));
        assert_eq!(n + m + k, out.len());
    }

    #[test]
    fn event_headers_round_trip_both_forms() {
        for ticks in [Ticks::Delta(123_456), Ticks::Absolute(u64::MAX - 5)] {
            let mut b = [0u8; 16];
            let h = encode_event_header(&mut b, 16, 0xBEEF, ticks);
            b[h..16].fill(0xAA);
            let (rec, n) = parse_untrusted(&b).unwrap();
            assert_eq!(n, 16);
            assert_eq!(
                rec,
                Record::Event {
                    type_id: 0xBEEF,
                    ticks,
                    ids: ActivityIds::NONE,
                    payload: &b[h..16]
                }
            );
        }
        assert_eq!(Ticks::Delta(5).resolve(10), 15);
        assert_eq!(Ticks::Absolute(3).resolve(10), 3);
    }

    #[test]
    fn activity_ids_round_trip_in_every_form_and_cost_nothing_when_absent() {
        let a = Guid([0x11; 16]);
        let r = Guid([0x22; 16]);
        let forms = [
            (ActivityIds::NONE, 0),
            (
                ActivityIds {
                    activity: Some(a),
                    related: None,
                },
                16,
            ),
            (
                ActivityIds {
                    activity: Some(a),
                    related: Some(r),
                },
                32,
            ),
        ];
        for ticks in [Ticks::Delta(7), Ticks::Absolute(1 << 40)] {
            let plain = event_header_len(ticks, &ActivityIds::NONE);
            for (ids, extra) in forms {
                let header = event_header_len(ticks, &ids);
                assert_eq!(header, plain + extra, "{ids:?}");
                let size = header + 4;
                let mut b = vec![0u8; size];
                assert_eq!(
                    encode_event_header_ids(&mut b, size, 3, ticks, &ids),
                    header
                );
                b[header..].copy_from_slice(&[1, 2, 3, 4]);
                // The ring reader frames the record from its first 13 bytes.
                let (t, tk, h) =
                    decode_event_header(&b[..b.len().min(EVENT_ABS_HEADER_LEN)]).expect("header");
                assert_eq!((t, tk, h), (3, ticks, header));
                let (rec, n) = parse_untrusted(&b).unwrap();
                assert_eq!(n, size);
                assert_eq!(
                    rec,
                    Record::Event {
                        type_id: 3,
                        ticks,
                        ids,
                        payload: &[1, 2, 3, 4]
                    }
                );
                // A record too short for the ids its kind announces is an
                // error, not a payload read from the wrong place.
                if extra > 0 {
                    let mut short = b[..header - 1].to_vec();
                    short[0..2].copy_from_slice(&((header - 1) as u16).to_le_bytes());
                    assert!(parse_untrusted(&short).is_err());
                }
            }
        }
        // A related id alone is written with the zero activity id.
        let mut b = [0u8; 64];
        let ids = ActivityIds {
            activity: None,
            related: Some(r),
        };
        let h = encode_event_header_ids(&mut b, 41, 0, Ticks::Delta(0), &ids);
        assert_eq!(h, 41);
        assert_eq!(
            decode_activity_ids(&b[..41]),
            Some(ActivityIds {
                activity: Some(Guid::default()),
                related: Some(r)
            })
        );
    }

    #[test]
    fn only_the_event_kinds_frame_as_events() {
        let events: Vec<u8> = (0..=255u8).filter(|k| kind::is_event(*k)).collect();
        let mut expected = vec![0x01, 0x02, 0x05, 0x06, 0x0d, 0x0e];
        expected.extend(0x80..=0xFF);
        assert_eq!(events, expected);
        for k in 0..=255u8 {
            let mut b = [0u8; 64];
            b[0] = 64;
            b[2] = k;
            assert_eq!(
                decode_event_header(&b).is_some(),
                kind::is_event(k),
                "kind {k:#x}"
            );
        }
    }

    #[test]
    fn small_records_round_trip() {
        let ctx = ContextMeta {
            source: 1,
            pid: 5,
            tid: 6,
            base_ticks: 77,
        };
        let bytes = context_record(&ctx);
        let (rec, n) = parse_untrusted(&bytes).unwrap();
        assert_eq!(rec, Record::Context(ctx));
        assert_eq!(n, CONTEXT_LEN);
        let lost = LostMeta {
            source: 1,
            provider: 2,
            reason: LostReason::RingFull,
            pid: 9,
            count: 1234,
        };
        let bytes = lost_record(&lost);
        let (rec, _) = parse_untrusted(&bytes).unwrap();
        assert_eq!(rec, Record::Lost(lost));
        let bytes = thread_record(4321);
        assert_eq!(
            parse_untrusted(&bytes).unwrap(),
            (Record::Thread { tid: 4321 }, THREAD_LEN)
        );
        let end = ProcessEndMeta {
            source: 3,
            pid: 99,
            ticks: 1 << 40,
        };
        let bytes = process_end_record(&end);
        assert_eq!(
            parse_untrusted(&bytes).unwrap(),
            (Record::ProcessEnd(end), PROCESS_END_LEN)
        );
        for cut in 0..PROCESS_END_LEN {
            let mut short = bytes;
            short[0] = cut as u8;
            assert!(
                parse_untrusted(&short[..cut.max(3)]).is_err(),
                "cut at {cut}"
            );
        }
        let mut t = Vec::new();
        encode_trailer(&[1, 2, 3], &mut t).unwrap();
        assert_eq!(
            parse_untrusted(&t).unwrap().0,
            Record::Trailer(vec![1, 2, 3])
        );
    }

    #[test]
    fn truncated_and_oversized_records_are_errors() {
        let mut out = Vec::new();
        encode_event_type(&sample_type(), &mut out).unwrap();
        for cut in 0..out.len() {
            assert!(parse_untrusted(&out[..cut]).is_err(), "cut at {cut}");
        }
        let ctx = ContextMeta {
            source: 1,
            pid: 1,
            tid: 1,
            base_ticks: 0,
        };
        let mut bad = context_record(&ctx);
        bad[0] = 200; // size larger than the bytes
        assert!(matches!(
            parse_untrusted(&bad),
            Err(RecordError::BadSize { .. })
        ));
        let mut short = context_record(&ctx);
        short[0] = 2; // size smaller than the header
        assert!(parse_untrusted(&short).is_err());
    }

    #[test]
    fn compact_headers_take_the_fewest_bytes_and_only_one_form() {
        for (delta, len) in [
            (0, 4),
            (127, 4),
            (128, 5),
            (16_383, 5),
            (16_384, 6),
            (u32::MAX, 8),
        ] {
            assert_eq!(compact_header_len(delta), len, "{delta}");
            let mut b = vec![0u8; len + 2];
            assert_eq!(encode_compact_header(&mut b, len + 2, 127, delta), len);
            assert_eq!(b[2], 0xFF);
            assert_eq!(
                decode_event_header(&b),
                Some((127, Ticks::Delta(delta), len))
            );
        }
        // 1 written as two bytes, a sixth delta byte, and a delta past 32
        // bits are all refused.
        let size = 9;
        for header in [
            &[0x81, 0x00][..],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            &[0xFF, 0xFF, 0xFF, 0xFF, 0x1F],
        ] {
            let mut b = vec![size as u8, 0, kind::COMPACT | 5];
            b.extend_from_slice(header);
            b.resize(size, 0);
            assert_eq!(decode_event_header(&b), None, "{header:?}");
            assert!(parse_untrusted(&b).is_err(), "{header:?}");
        }
    }

    #[test]
    fn names_over_the_cap_are_refused() {
        let mut t = sample_type();
        t.name = "x".repeat(MAX_NAME + 1);
        assert!(encode_event_type(&t, &mut Vec::new()).is_err());
    }

    proptest! {
        #[test]
        fn compact_events_round_trip(type_id in 0u16..COMPACT_TYPES, delta: u32,
                                     payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let header = compact_header_len(delta);
            let size = header + payload.len();
            let mut b = vec![0u8; size];
            prop_assert_eq!(encode_compact_header(&mut b, size, type_id, delta), header);
            b[header..].copy_from_slice(&payload);
            let (record, n) = parse_untrusted(&b).expect("a compact event");
            prop_assert_eq!(n, size);
            prop_assert_eq!(record, Record::Event {
                type_id,
                ticks: Ticks::Delta(delta),
                ids: ActivityIds::NONE,
                payload: &payload,
            });
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut rest = &bytes[..];
            while let Ok((record, n)) = parse_untrusted(rest) {
                // An event's ids are never read from its payload, nor its
                // payload from past its size.
                if let Record::Event { payload, .. } = &record {
                    let (_, _, header) = decode_event_header(&rest[..n]).expect("an event's header");
                    prop_assert_eq!(header + payload.len(), n);
                }
                rest = &rest[n.max(1).min(rest.len())..];
                if rest.is_empty() { break; }
            }
        }
    }
}
