//! A seekable circular file is read oldest buffer first, whatever slots the
//! buffers sit in; damage is still reported once per slot, and never panics.

use std::io::Cursor;

use ferret_format::{
    BufferBuilder, ClockInfo, CorruptionReason, FileHeader, Item, LogReader, buffer_kind,
    check_buffer, mode,
};
use proptest::prelude::*;

const BUF: usize = 4096;

fn header(log_mode: u32, slot_count: u32) -> FileHeader {
    FileHeader {
        session_name: "circular".into(),
        host: "host".into(),
        logger_id: 5,
        buffer_size: BUF as u32,
        log_mode,
        start_unix_ns: 0,
        clock: ClockInfo {
            kind: 1,
            anchor_ticks: 0,
            anchor_mono_ns: 0,
            anchor_unix_ns: 0,
            ticks_per_sec: 1_000_000_000,
        },
        daemon_pid: 1,
        slot_count,
        file_index: 0,
    }
}

/// A buffer of `kind` numbered `seq`, holding one unknown-kind record whose
/// body is the sequence number, so each buffer has its own bytes.
fn buffer(kind: u16, seq: u64) -> Vec<u8> {
    let mut b = BufferBuilder::new(BUF);
    let mut rec = vec![11, 0, 0x7e];
    rec.extend_from_slice(&seq.to_le_bytes());
    assert!(b.push(&rec));
    b.seal(kind, seq).to_vec()
}

/// A circular file of `slots` slots after `written` data buffers (buffer s
/// in slot s % (slots - 1)), with the trailer in the last slot.
fn circular(slots: u32, written: u64) -> Vec<u8> {
    let h = header(mode::CIRCULAR, slots);
    let data_offset = h.data_offset() as usize;
    let mut file = h.encode();
    let mut put = |slot: usize, bytes: &[u8]| {
        let at = data_offset + slot * BUF;
        if file.len() < at + bytes.len() {
            file.resize(at + bytes.len(), 0);
        }
        file[at..at + bytes.len()].copy_from_slice(bytes);
    };
    for seq in 0..written {
        put(
            (seq % u64::from(slots - 1)) as usize,
            &buffer(buffer_kind::DATA, seq),
        );
    }
    put(slots as usize - 1, &buffer(buffer_kind::TRAILER, written));
    file
}

/// (kind, sequence) of every good buffer and the reason of every report.
fn read_all(r: &mut LogReader<Cursor<Vec<u8>>>) -> (Vec<(u16, u64)>, Vec<CorruptionReason>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    while let Some(item) = r.next() {
        match item.expect("reading memory cannot fail") {
            Item::Buffer(b) => good.push((b.header.kind, b.header.sequence)),
            Item::Corrupt(c) => bad.push(c.reason),
        }
    }
    (good, bad)
}

#[test]
fn a_wrapped_circular_file_is_read_oldest_first_then_its_trailer() {
    let mut r = LogReader::new_seekable(Cursor::new(circular(4, 7))).unwrap();
    assert!(r.by_sequence());
    let (good, bad) = read_all(&mut r);
    assert_eq!(
        good,
        vec![
            (buffer_kind::DATA, 4),
            (buffer_kind::DATA, 5),
            (buffer_kind::DATA, 6),
            (buffer_kind::TRAILER, 7)
        ]
    );
    assert!(bad.is_empty());
}

#[test]
fn a_seekable_reader_starts_at_offset_zero_wherever_the_input_is() {
    let mut input = Cursor::new(circular(3, 5));
    input.set_position(1234);
    let (good, _) = read_all(&mut LogReader::new_seekable(input).unwrap());
    assert_eq!(good.len(), 3);
}

#[test]
fn other_modes_are_read_in_file_order_even_when_seekable() {
    let mut file = header(mode::SEQUENTIAL, 0).encode();
    for seq in [3, 1, 2] {
        let start = file.len();
        file.extend_from_slice(&buffer(buffer_kind::DATA, seq));
        file.resize(start + BUF, 0);
    }
    let mut r = LogReader::new_seekable(Cursor::new(file)).unwrap();
    assert!(!r.by_sequence());
    let (good, _) = read_all(&mut r);
    assert_eq!(good.iter().map(|g| g.1).collect::<Vec<_>>(), [3, 1, 2]);
}

#[test]
fn a_circular_header_with_fewer_than_two_slots_is_refused() {
    let bytes = header(mode::CIRCULAR, 1).encode();
    assert!(LogReader::new(&bytes[..]).is_err());
}

#[test]
fn check_buffer_accepts_a_sealed_buffer_and_ignores_what_follows_it() {
    let mut b = buffer(buffer_kind::DATA, 9);
    let (h, records) = check_buffer(&b, BUF as u32).unwrap();
    assert_eq!((h.sequence, records.len()), (9, 11));
    b.extend_from_slice(&[0xff; 10]);
    assert!(check_buffer(&b, BUF as u32).is_ok());
    // A buffer claiming more records than the slot size allows is refused
    // even when the bytes are there.
    assert_eq!(
        check_buffer(&b, 32 + 10),
        Err(CorruptionReason::BadLength(11))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever is changed in a circular file, reading it never panics,
    /// each buffer comes at most once, and the buffers the damage did not
    /// touch still come, data oldest first.
    #[test]
    fn damaged_circular_files_never_panic_and_keep_their_order(
        slots in 2u32..7,
        written in 0u64..20,
        flips in proptest::collection::vec((0usize..7 * BUF, any::<u8>()), 0..6),
        cut in 0usize..8 * BUF,
    ) {
        let mut file = circular(slots, written);
        let data_offset = header(mode::CIRCULAR, slots).data_offset() as usize;
        let mut touched = std::collections::HashSet::new();
        for (at, x) in flips {
            if x != 0 && data_offset + at < file.len() {
                file[data_offset + at] ^= x;
                touched.insert(at / BUF);
            }
        }
        if data_offset + cut < file.len() {
            file.truncate(data_offset + cut);
            touched.insert(cut / BUF);
        }
        let len = file.len();
        let mut r = LogReader::new_seekable(Cursor::new(file)).unwrap();
        let (good, _) = read_all(&mut r);
        let data: Vec<u64> = good
            .iter()
            .filter(|g| g.0 == buffer_kind::DATA)
            .map(|g| g.1)
            .collect();
        prop_assert!(data.is_sorted(), "{good:?}");
        let kept = written.min(u64::from(slots - 1));
        for seq in written - kept..written {
            let slot = (seq % u64::from(slots - 1)) as usize;
            let intact = !touched.contains(&slot)
                && data_offset + slot * BUF + 43 <= len;
            if intact {
                prop_assert!(data.contains(&seq), "buffer {seq} missing from {good:?}");
            }
        }
        let mut seen = good.clone();
        seen.sort_unstable();
        seen.dedup();
        prop_assert_eq!(seen.len(), good.len());
    }
}
