//! A hand-built log file decodes to the same text, JSON and CSV every time,
//! and the summary reports its losses.

use ferret_abi::record::{
    self, ActivityIds, EventTypeMeta, FieldMeta, FieldType, LostMeta, LostReason, Ticks,
};
use ferret_abi::{Guid, Value};
use ferret_decode::{FileDecoder, OutputFormat, Printer, write_summary};
use ferret_format::{BufferBuilder, Trailer, buffer_kind};
use ferret_testkit::logbuild::{self, LogBuilder, context, event as event_ids, field};

const BUF: usize = 4096;

fn event(type_id: u16, ticks: Ticks, values: &[Value<'_>]) -> Vec<u8> {
    event_ids(type_id, ticks, ActivityIds::NONE, values)
}

/// The activity of the sample's second buffer and the one it started in.
const JOB: Guid = Guid([
    0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0x4e, 0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
]);
const PARENT: Guid = Guid([0xaa; 16]);

/// Two buffers: metadata and three events of two threads, a loss, then a
/// buffer with one more event and an activity (start, an event inside it,
/// stop); then a trailer.
fn sample_log() -> Vec<u8> {
    let types = vec![
        event_type(
            0,
            7,
            2,
            0,
            "Checkout",
            vec![
                field("items", FieldType::U32),
                field("total", FieldType::F64),
                field("user, name", FieldType::Str),
                field("ok", FieldType::Bool),
                field("blob", FieldType::Bytes),
                field("delta", FieldType::I64),
            ],
        ),
        event_type(
            1,
            8,
            4,
            1,
            "Payment",
            vec![
                field("order", FieldType::U64),
                field("cart", FieldType::Guid),
            ],
        ),
        event_type(2, 8, 4, 2, "Payment", vec![]),
    ];
    let vals = |n: u32, s: &'static str| {
        vec![
            Value::U32(n),
            Value::F64(19.5),
            Value::Str(s),
            Value::Bool(n % 2 == 0),
            Value::Bytes(&[0xde, 0xad]),
            Value::I64(-(n as i64)),
        ]
    };
    let mut log = LogBuilder::new(logbuild::header(
        "snap",
        BUF as u32,
        1_000,
        1_795_426_500_000_000_000,
    ));
    log.push(&logbuild::metadata(9, 42, "app", "Shop.Cart", types))
        .push(&context(9, 42, 43, 2_000))
        .push(&event(0, Ticks::Delta(500), &vals(1, "ann")))
        .push(&event(0, Ticks::Delta(1_000_000), &vals(2, "bob \"b\"")))
        .push(&context(9, 42, 44, 2_000))
        .push(&event(0, Ticks::Absolute(5_000), &vals(3, "cy")))
        .push(&record::lost_record(&LostMeta {
            source: 9,
            provider: 0,
            reason: LostReason::RingFull,
            pid: 42,
            count: 17,
        }))
        .seal();
    let start = ActivityIds {
        activity: Some(JOB),
        related: Some(PARENT),
    };
    let inside = ActivityIds {
        activity: Some(JOB),
        related: None,
    };
    log.push(&context(9, 42, 43, 1_002_500))
        .push(&event(0, Ticks::Delta(1), &vals(4, "dee")))
        .push(&event_ids(
            1,
            Ticks::Delta(10),
            start,
            &[Value::U64(77), Value::Guid(Guid::from_name("MyProvider"))],
        ))
        .push(&event_ids(0, Ticks::Delta(10), inside, &vals(5, "eve")))
        .push(&event_ids(2, Ticks::Delta(10), inside, &[]))
        .seal();
    log.finish(&Trailer {
        events: 7,
        events_lost: 17,
        lost_ring_full: 17,
        buffers_written: 2,
        end_ticks: 1_000 + 2_000_000_000,
        end_mono_ns: 1_000 + 2_000_000_000,
        end_unix_ns: 1_795_426_502_000_000_000,
        ..Trailer::default()
    })
}

fn event_type(
    type_id: u16,
    event_id: u16,
    level: u8,
    opcode: u8,
    name: &str,
    fields: Vec<FieldMeta>,
) -> EventTypeMeta {
    EventTypeMeta {
        source: 9,
        type_id,
        provider: 0,
        event_id,
        level,
        opcode,
        keywords: 0x30,
        name: name.into(),
        fields,
    }
}

fn render(format: OutputFormat) -> String {
    let file = sample_log();
    let mut d = FileDecoder::new(&file[..]).unwrap();
    let mut out = Vec::new();
    let mut diag = Vec::new();
    {
        let mut p = Printer::new(format, &mut out, &mut diag, "sample");
        d.for_each(|e| p.entry(&e)).unwrap();
    }
    assert!(
        diag.is_empty() || format == OutputFormat::Csv,
        "{}",
        String::from_utf8_lossy(&diag)
    );
    String::from_utf8(out).unwrap() + &String::from_utf8(diag).unwrap()
}

#[test]
fn text_output() {
    insta::assert_snapshot!(render(OutputFormat::Text));
}

#[test]
fn json_output() {
    insta::assert_snapshot!(render(OutputFormat::Json));
}

#[test]
fn csv_output() {
    insta::assert_snapshot!(render(OutputFormat::Csv));
}

#[test]
fn summary_output() {
    let file = sample_log();
    let mut d = FileDecoder::new(&file[..]).unwrap();
    d.count_per_event(true);
    d.for_each(|_| Ok(())).unwrap();
    let mut out = Vec::new();
    write_summary(&mut out, "sample", d.header(), d.stats(), d.trailer()).unwrap();
    insta::assert_snapshot!(String::from_utf8(out).unwrap());
}

#[test]
fn an_event_before_any_context_is_reported_not_guessed() {
    let mut file = sample_log();
    // Replace the first buffer's first CONTEXT record kind with an unknown
    // kind: the events after it have no context.
    let data = 4096 + 32;
    let pos = (data..data + 400)
        .find(|&i| file[i] == 23 && file[i + 1] == 0 && file[i + 2] == record::kind::CONTEXT)
        .unwrap();
    file[pos + 2] = 0x7f;
    // Fix the buffer's CRC so only the record is wrong.
    let used = u32::from_le_bytes(file[4096 + 16..4096 + 20].try_into().unwrap()) as usize;
    let head: [u8; 32] = file[4096..4096 + 32].try_into().unwrap();
    let crc = ferret_format::buffer_crc(&head, &file[data..data + used]);
    file[4096 + 20..4096 + 24].copy_from_slice(&crc.to_le_bytes());
    let mut d = FileDecoder::new(&file[..]).unwrap();
    let mut bad = Vec::new();
    let mut events = 0;
    d.for_each(|e| {
        match e {
            ferret_decode::Entry::BadRecord { error, .. } => bad.push(error),
            ferret_decode::Entry::Event(_) => events += 1,
            _ => {}
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(bad, vec!["event before any context record"; 2]);
    assert_eq!(
        events, 5,
        "the second context (1 event) and the second buffer (4) still decode"
    );
}

mod damaged_logs {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever is changed in a valid log, decoding and summarising it
        /// never panics, and buffers the change did not touch still decode.
        #[test]
        fn decoding_damaged_logs_never_panics(
            flips in proptest::collection::vec((0usize..3 * BUF, any::<u8>()), 1..16),
            cut in 0usize..4 * BUF,
        ) {
            let mut file = sample_log();
            let base = 4096;
            for (at, x) in flips {
                if base + at < file.len() {
                    file[base + at] ^= x;
                }
            }
            file.truncate((base + cut).min(file.len()));
            let mut d = FileDecoder::new(&file[..]).unwrap();
            d.count_per_event(true);
            let mut out = Vec::new();
            let mut diag = Vec::new();
            {
                let mut p = Printer::new(OutputFormat::Text, &mut out, &mut diag, "x");
                d.for_each(|e| p.entry(&e)).unwrap();
            }
            write_summary(&mut out, "x", d.header(), d.stats(), d.trailer()).unwrap();
        }
    }
}

/// Found by fuzzing: loss counts from a file could overflow when summed.
#[test]
fn huge_loss_counts_saturate_instead_of_overflowing() {
    let mut file = sample_log();
    file.resize(4096 + 3 * BUF, 0);
    // Append a buffer with two LOST records whose counts add past u64::MAX.
    let mut b = BufferBuilder::new(BUF);
    for (reason, count) in [(LostReason::RingFull, u64::MAX), (LostReason::NoBuffer, 1)] {
        assert!(b.push(&record::lost_record(&LostMeta {
            source: 9,
            provider: 0,
            reason,
            pid: 42,
            count
        })));
    }
    file.extend_from_slice(b.seal(buffer_kind::DATA, 3));
    let mut d = FileDecoder::new(&file[..]).unwrap();
    d.for_each(|_| Ok(())).unwrap();
    assert_eq!(d.stats().lost_total(), u64::MAX);
    let mut out = Vec::new();
    write_summary(&mut out, "x", d.header(), d.stats(), d.trailer()).unwrap();
}
