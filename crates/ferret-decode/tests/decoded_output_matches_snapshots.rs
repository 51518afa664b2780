//! A hand-built log file decodes to the same text, JSON and CSV every time,
//! and the summary reports its losses.

use ferret_abi::record::{
    self, ActivityIds, ContextMeta, EventTypeMeta, FieldMeta, FieldType, LostMeta, LostReason,
    ProcessMeta, ProviderMeta, Ticks,
};
use ferret_abi::{Guid, Value};
use ferret_decode::{FileDecoder, OutputFormat, Printer, write_summary};
use ferret_format::{BufferBuilder, ClockInfo, FileHeader, Trailer, buffer_kind, mode};

const BUF: usize = 4096;

fn event(type_id: u16, ticks: Ticks, values: &[Value<'_>]) -> Vec<u8> {
    event_ids(type_id, ticks, ActivityIds::NONE, values)
}

fn event_ids(type_id: u16, ticks: Ticks, ids: ActivityIds, values: &[Value<'_>]) -> Vec<u8> {
    let header = record::event_header_len(ticks, &ids);
    let size = header + values.iter().map(Value::encoded_len).sum::<usize>();
    let mut b = vec![0u8; size];
    let mut at = record::encode_event_header_ids(&mut b, size, type_id, ticks, &ids);
    for v in values {
        at += v.encode(&mut b[at..]);
    }
    b
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
    let header = FileHeader {
        session_name: "snap".into(),
        host: "testhost".into(),
        logger_id: 4,
        buffer_size: BUF as u32,
        log_mode: mode::SEQUENTIAL,
        start_unix_ns: 1_795_426_500_000_000_000,
        clock: ClockInfo {
            kind: 1,
            anchor_ticks: 1_000,
            anchor_mono_ns: 1_000,
            anchor_unix_ns: 1_795_426_500_000_000_000,
            ticks_per_sec: 1_000_000_000,
        },
        daemon_pid: 1,
        slot_count: 0,
        file_index: 0,
    };
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
    record::encode_event_type(
        &EventTypeMeta {
            source: 9,
            type_id: 0,
            provider: 0,
            event_id: 7,
            level: 2,
            opcode: 0,
            keywords: 0x30,
            name: "Checkout".into(),
            fields: vec![
                FieldMeta {
                    name: "items".into(),
                    ty: FieldType::U32,
                },
                FieldMeta {
                    name: "total".into(),
                    ty: FieldType::F64,
                },
                FieldMeta {
                    name: "user, name".into(),
                    ty: FieldType::Str,
                },
                FieldMeta {
                    name: "ok".into(),
                    ty: FieldType::Bool,
                },
                FieldMeta {
                    name: "blob".into(),
                    ty: FieldType::Bytes,
                },
                FieldMeta {
                    name: "delta".into(),
                    ty: FieldType::I64,
                },
            ],
        },
        &mut meta,
    )
    .unwrap();
    for (type_id, opcode, fields) in [
        (
            1,
            1,
            vec![
                FieldMeta {
                    name: "order".into(),
                    ty: FieldType::U64,
                },
                FieldMeta {
                    name: "cart".into(),
                    ty: FieldType::Guid,
                },
            ],
        ),
        (2, 2, vec![]),
    ] {
        record::encode_event_type(
            &EventTypeMeta {
                source: 9,
                type_id,
                provider: 0,
                event_id: 8,
                level: 4,
                opcode,
                keywords: 0x30,
                name: "Payment".into(),
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
    assert!(b.push(&event(0, Ticks::Delta(500), &vals(1, "ann"))));
    assert!(b.push(&event(0, Ticks::Delta(1_000_000), &vals(2, "bob \"b\""))));
    assert!(b.push(&ctx(44, 2_000)));
    assert!(b.push(&event(0, Ticks::Absolute(5_000), &vals(3, "cy"))));
    assert!(b.push(&record::lost_record(&LostMeta {
        source: 9,
        provider: 0,
        reason: LostReason::RingFull,
        pid: 42,
        count: 17
    })));
    file.extend_from_slice(b.seal(buffer_kind::DATA, 0));
    file.resize(header.data_offset() as usize + BUF, 0);
    b.clear();
    assert!(b.push(&ctx(43, 1_002_500)));
    assert!(b.push(&event(0, Ticks::Delta(1), &vals(4, "dee"))));
    let start = ActivityIds {
        activity: Some(JOB),
        related: Some(PARENT),
    };
    let inside = ActivityIds {
        activity: Some(JOB),
        related: None,
    };
    assert!(b.push(&event_ids(
        1,
        Ticks::Delta(10),
        start,
        &[Value::U64(77), Value::Guid(Guid::from_name("MyProvider"))]
    )));
    assert!(b.push(&event_ids(0, Ticks::Delta(10), inside, &vals(5, "eve"))));
    assert!(b.push(&event_ids(2, Ticks::Delta(10), inside, &[])));
    file.extend_from_slice(b.seal(buffer_kind::DATA, 1));
    file.resize(header.data_offset() as usize + 2 * BUF, 0);
    b.clear();
    let t = Trailer {
        events: 7,
        events_lost: 17,
        lost_ring_full: 17,
        buffers_written: 2,
        end_ticks: 1_000 + 2_000_000_000,
        end_mono_ns: 1_000 + 2_000_000_000,
        end_unix_ns: 1_795_426_502_000_000_000,
        ..Trailer::default()
    };
    let mut rec = Vec::new();
    record::encode_trailer(&t.to_values(), &mut rec).unwrap();
    assert!(b.push(&rec));
    file.extend_from_slice(b.seal(buffer_kind::TRAILER, 2));
    file
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
