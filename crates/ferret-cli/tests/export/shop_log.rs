//! A hand-built log whose every record is known: every field type, an
//! activity that starts on one thread and stops on another, a stop whose
//! start is not in the log, a loss and a process end.

use ferret_abi::record::{
    self, ActivityIds, EventTypeMeta, FieldMeta, FieldType, LostMeta, LostReason, ProcessEndMeta,
    Ticks,
};
use ferret_abi::{Guid, Value};
use ferret_format::{FileHeader, Trailer};
use ferret_testkit::logbuild::{self, LogBuilder, context, event, field};

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
    LogBuilder::new(header()).slot_offset(1)
}

fn header() -> FileHeader {
    logbuild::header("shop", BUF as u32, 1_000, T0)
}

fn event_type(type_id: u16, name: &str, opcode: u8, fields: Vec<FieldMeta>) -> EventTypeMeta {
    EventTypeMeta {
        source: 9,
        type_id,
        provider: 0,
        event_id: 7 + type_id,
        level: 4,
        opcode,
        keywords: 0x30,
        name: name.into(),
        fields,
    }
}

pub fn bytes() -> Vec<u8> {
    let mut log = LogBuilder::new(header());
    let types = vec![
        event_type(0, "Checkout", 0, checkout_fields()),
        event_type(1, "Payment", 1, vec![field("order", FieldType::U64)]),
        event_type(2, "Payment", 2, vec![]),
    ];
    let start = ActivityIds {
        activity: Some(JOB),
        related: Some(PARENT),
    };
    log.push(&logbuild::metadata(9, 42, "app", "Shop.Cart", types))
        .push(&context(9, 42, 43, 2_000))
        .push(&event(0, Ticks::Delta(500), NONE, &checkout(1)))
        .push(&event(0, Ticks::Delta(1_000), NONE, &checkout(2)))
        .push(&context(9, 42, 44, 2_000))
        .push(&event(1, Ticks::Absolute(5_000), start, &[Value::U64(77)]))
        .push(&record::lost_record(&LostMeta {
            source: 9,
            provider: 0,
            reason: LostReason::RingFull,
            pid: 42,
            count: LOST,
        }))
        .seal();
    let inside = |id| ActivityIds {
        activity: Some(id),
        related: None,
    };
    log.push(&context(9, 42, 43, 10_000))
        .push(&event(0, Ticks::Delta(0), inside(JOB), &checkout(3)))
        .push(&event(2, Ticks::Delta(2_000), inside(JOB), &[]))
        .push(&event(2, Ticks::Delta(1_000), inside(STRAY), &[]))
        .push(&record::process_end_record(&ProcessEndMeta {
            source: 9,
            pid: 42,
            ticks: 20_000,
        }))
        .seal();
    log.finish(&Trailer {
        events: 6,
        events_lost: LOST,
        lost_ring_full: LOST,
        buffers_written: 2,
        end_ticks: 1_000 + 2_000_000_000,
        end_mono_ns: 1_000 + 2_000_000_000,
        end_unix_ns: T0 + 2_000_000_000,
        ..Trailer::default()
    })
}
