//! A hand-built log whose every record is known: every field type, an
//! activity that starts on one thread and stops on another, a stop whose
//! start is not in the log, a loss and a process end.

use ferret_abi::record::{
    self, ActivityIds, ContextMeta, EventTypeMeta, FieldMeta, FieldType, LostMeta, LostReason,
    ProcessEndMeta, ProcessMeta, ProviderMeta, Ticks,
};
use ferret_abi::{Guid, Value};
use ferret_format::{BufferBuilder, ClockInfo, FileHeader, Trailer, buffer_kind, mode};

const BUF: usize = 4096;
/// The UNIX time of tick 1000, the clock's anchor; a tick is a nanosecond.
pub const T0: u64 = 1_795_426_500_000_000_000;
/// The activity started and stopped, the one it started in, and one
/// stopped without a start in the log.
pub const JOB: Guid = Guid([0x11; 16]);
pub const PARENT: Guid = Guid([0x22; 16]);
pub const STRAY: Guid = Guid([0x33; 16]);
pub const LOST: u64 = 17;
/// A string with quotes, a backslash, a newline and non-ASCII text.
pub const TRICKY: &str = "bob \"b\" \\ é\n";

fn event(type_id: u16, ticks: Ticks, ids: ActivityIds, values: &[Value<'_>]) -> Vec<u8> {
    let header = record::event_header_len(ticks, &ids);
    let size = header + values.iter().map(Value::encoded_len).sum::<usize>();
    let mut b = vec![0u8; size];
    let mut at = record::encode_event_header_ids(&mut b, size, type_id, ticks, &ids);
    for v in values {
        at += v.encode(&mut b[at..]);
    }
    b
}

fn field(name: &str, ty: FieldType) -> FieldMeta {
    FieldMeta {
        name: name.into(),
        ty,
    }
}

/// The Checkout event's values, numbered `n`.
pub fn checkout(n: u32) -> Vec<Value<'static>> {
    vec![
        Value::U32(n),
        Value::F64(19.5),
        Value::Str(if n == 2 { TRICKY } else { "ann" }),
        Value::Bool(n % 2 == 0),
        Value::Bytes(&[0xde, 0xad]),
        Value::I64(-(n as i64)),
        Value::U8(200),
        Value::I8(-5),
        Value::U16(60000),
        Value::I16(-30000),
        Value::U64(u64::MAX),
        Value::I32(-2_000_000_000),
        Value::Guid(Guid::from_name("cart")),
        Value::Str("kw"),
    ]
}

pub fn checkout_fields() -> Vec<FieldMeta> {
    vec![
        field("items", FieldType::U32),
        field("total", FieldType::F64),
        field("user, name", FieldType::Str),
        field("ok", FieldType::Bool),
        field("blob", FieldType::Bytes),
        field("delta", FieldType::I64),
        field("small", FieldType::U8),
        field("tiny", FieldType::I8),
        field("mid", FieldType::U16),
        field("neg", FieldType::I16),
        field("big", FieldType::U64),
        field("i32v", FieldType::I32),
        field("cart", FieldType::Guid),
        field("string", FieldType::Str),
    ]
}

const NONE: ActivityIds = ActivityIds::NONE;

/// Where the second buffer's slot starts.
pub fn second_slot() -> usize {
    header().data_offset() as usize + BUF
}

fn header() -> FileHeader {
    FileHeader {
        session_name: "shop".into(),
        host: "testhost".into(),
        logger_id: 4,
        buffer_size: BUF as u32,
        log_mode: mode::SEQUENTIAL,
        start_unix_ns: T0,
        clock: ClockInfo {
            kind: 1,
            anchor_ticks: 1_000,
            anchor_mono_ns: 1_000,
            anchor_unix_ns: T0,
            ticks_per_sec: 1_000_000_000,
        },
        daemon_pid: 1,
        slot_count: 0,
        file_index: 0,
    }
}

pub fn bytes() -> Vec<u8> {
    let header = header();
    let mut file = header.encode();
    let mut b = BufferBuilder::new(BUF);
    let mut meta = Vec::new();
    record::encode_process(
        &ProcessMeta {
            pid: 42,
            name: "app".into(),
            source: None,
        },
        &mut meta,
    )
    .unwrap();
    record::encode_provider(
        &ProviderMeta {
            source: 9,
            provider: 0,
            pid: 42,
            guid: Guid::from_name("Shop.Cart"),
            name: "Shop.Cart".into(),
        },
        &mut meta,
    )
    .unwrap();
    for (type_id, name, opcode, fields) in [
        (0, "Checkout", 0, checkout_fields()),
        (1, "Payment", 1, vec![field("order", FieldType::U64)]),
        (2, "Payment", 2, vec![]),
    ] {
        record::encode_event_type(
            &EventTypeMeta {
                source: 9,
                type_id,
                provider: 0,
                event_id: 7 + type_id,
                level: 4,
                opcode,
                keywords: 0x30,
                name: name.into(),
                fields,
            },
            &mut meta,
        )
        .unwrap();
    }
    assert!(b.push(&meta));
    let ctx = |tid, base| {
        record::context_record(&ContextMeta {
            source: 9,
            pid: 42,
            tid,
            base_ticks: base,
        })
    };
    assert!(b.push(&ctx(43, 2_000)));
    assert!(b.push(&event(0, Ticks::Delta(500), NONE, &checkout(1))));
    assert!(b.push(&event(0, Ticks::Delta(1_000), NONE, &checkout(2))));
    assert!(b.push(&ctx(44, 2_000)));
    let start = ActivityIds {
        activity: Some(JOB),
        related: Some(PARENT),
    };
    assert!(b.push(&event(1, Ticks::Absolute(5_000), start, &[Value::U64(77)])));
    assert!(b.push(&record::lost_record(&LostMeta {
        source: 9,
        provider: 0,
        reason: LostReason::RingFull,
        pid: 42,
        count: LOST,
    })));
    file.extend_from_slice(b.seal(buffer_kind::DATA, 0));
    file.resize(header.data_offset() as usize + BUF, 0);
    b.clear();
    let inside = |id| ActivityIds {
        activity: Some(id),
        related: None,
    };
    assert!(b.push(&ctx(43, 10_000)));
    assert!(b.push(&event(0, Ticks::Delta(0), inside(JOB), &checkout(3))));
    assert!(b.push(&event(2, Ticks::Delta(2_000), inside(JOB), &[])));
    assert!(b.push(&event(2, Ticks::Delta(1_000), inside(STRAY), &[])));
    assert!(b.push(&record::process_end_record(&ProcessEndMeta {
        source: 9,
        pid: 42,
        ticks: 20_000,
    })));
    file.extend_from_slice(b.seal(buffer_kind::DATA, 1));
    file.resize(header.data_offset() as usize + 2 * BUF, 0);
    b.clear();
    let t = Trailer {
        events: 6,
        events_lost: LOST,
        lost_ring_full: LOST,
        buffers_written: 2,
        end_ticks: 1_000 + 2_000_000_000,
        end_mono_ns: 1_000 + 2_000_000_000,
        end_unix_ns: T0 + 2_000_000_000,
        ..Trailer::default()
    };
    let mut rec = Vec::new();
    record::encode_trailer(&t.to_values(), &mut rec).unwrap();
    assert!(b.push(&rec));
    file.extend_from_slice(b.seal(buffer_kind::TRAILER, 2));
    file
}
