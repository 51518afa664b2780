//! A crafted file that defines event types with the longest names and the
//! most fields cannot make the decoder keep more than its metadata budget
//! (64 MiB): definitions beyond it are dropped, said once as a note, and
//! events that need them count as undecodable; types defined before it
//! decode as usual.

use ferret_abi::Value;
use ferret_abi::record::{self, ContextMeta, EventTypeMeta, FieldMeta, FieldType, Ticks};
use ferret_decode::{Entry, FileDecoder};
use ferret_format::{BufferBuilder, ClockInfo, FileHeader, buffer_kind, mode};

const BUF: usize = 1 << 20;
/// About 38 KiB of budget each, so this many overrun 64 MiB.
const TYPES: u16 = 2000;

fn big_type(type_id: u16) -> Vec<u8> {
    let fields = (0..record::MAX_FIELDS)
        .map(|i| FieldMeta {
            name: format!("{i:0>255}"),
            ty: FieldType::U8,
        })
        .collect();
    let mut out = Vec::new();
    record::encode_event_type(
        &EventTypeMeta {
            source: 1,
            type_id,
            provider: 0,
            event_id: type_id,
            level: 4,
            opcode: 0,
            keywords: 1,
            name: format!("{type_id:0>1024}"),
            fields,
        },
        &mut out,
    )
    .unwrap();
    out
}

fn event(type_id: u16) -> Vec<u8> {
    let values = vec![Value::U8(7); record::MAX_FIELDS];
    let size = record::EVENT_HEADER_LEN + values.iter().map(Value::encoded_len).sum::<usize>();
    let mut b = vec![0u8; size];
    let mut at = record::encode_event_header(&mut b, size, type_id, Ticks::Delta(10));
    for v in &values {
        at += v.encode(&mut b[at..]);
    }
    b
}

/// Appends a sealed buffer as a whole slot.
fn slot(file: &mut Vec<u8>, sealed: &[u8]) {
    let end = file.len() + BUF;
    file.extend_from_slice(sealed);
    file.resize(end, 0);
}

#[test]
fn definitions_past_the_budget_are_dropped_and_said_once() {
    let header = FileHeader {
        session_name: "big".into(),
        host: "h".into(),
        logger_id: 1,
        buffer_size: BUF as u32,
        log_mode: mode::SEQUENTIAL,
        start_unix_ns: 1,
        clock: ClockInfo {
            kind: 1,
            anchor_ticks: 0,
            anchor_mono_ns: 0,
            anchor_unix_ns: 1,
            ticks_per_sec: 1_000_000_000,
        },
        daemon_pid: 1,
        slot_count: 0,
        file_index: 0,
    };
    let mut file = header.encode();
    let mut seq = 0;
    let mut b = BufferBuilder::new(BUF);
    for id in 0..TYPES {
        let rec = big_type(id);
        if !b.push(&rec) {
            slot(&mut file, b.seal(buffer_kind::DATA, seq));
            seq += 1;
            b = BufferBuilder::new(BUF);
            assert!(b.push(&rec));
        }
    }
    slot(&mut file, b.seal(buffer_kind::DATA, seq));
    seq += 1;
    let mut b = BufferBuilder::new(BUF);
    assert!(b.push(&record::context_record(&ContextMeta {
        source: 1,
        pid: 2,
        tid: 2,
        base_ticks: 0,
    })));
    assert!(b.push(&event(0)));
    assert!(b.push(&event(TYPES - 1)));
    slot(&mut file, b.seal(buffer_kind::DATA, seq));

    let mut d = FileDecoder::new_seekable(std::io::Cursor::new(file)).unwrap();
    let mut notes = Vec::new();
    let mut events = Vec::new();
    let mut bad = Vec::new();
    d.for_each(|e| {
        match e {
            Entry::Note(n) => notes.push(n),
            Entry::Event(ev) => events.push(ev.ty.event_id),
            Entry::BadRecord { error, .. } => bad.push(error),
            _ => {}
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(events, [0]);
    assert_eq!(
        bad,
        [format!(
            "event of undescribed type {} from source 1",
            TYPES - 1
        )]
    );
    assert_eq!(
        notes[0],
        "the file defines more than 64 MiB of providers, event types and process names; later definitions are not kept, and events that need them count as undecodable"
    );
    // The other note: this crafted file has no trailer.
    assert_eq!(notes.len(), 2, "{notes:?}");
}
