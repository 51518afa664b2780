//! One test per way a log file can be damaged: the reader reports the
//! offset, the bytes skipped and the reason, and goes on at the next buffer.

use ferret_abi::record::{self, ContextMeta, Record};
use ferret_format::{
    BUFFER_HEADER_LEN, BufferBuilder, ClockInfo, CorruptionReason, FileHeader, FormatError, Item,
    LogReader, Records, Trailer, buffer_kind, mode,
};
use proptest::prelude::*;

const BUF: u32 = 4096;

fn header() -> FileHeader {
    FileHeader {
        session_name: "corruption-test".into(),
        host: "host".into(),
        logger_id: 3,
        buffer_size: BUF,
        log_mode: mode::SEQUENTIAL,
        start_unix_ns: 1_700_000_000_000_000_000,
        clock: ClockInfo {
            kind: 1,
            anchor_ticks: 0,
            anchor_mono_ns: 0,
            anchor_unix_ns: 1_700_000_000_000_000_000,
            ticks_per_sec: 1_000_000_000,
        },
        daemon_pid: 77,
        slot_count: 0,
        file_index: 0,
    }
}

fn ctx(tid: u32) -> [u8; record::CONTEXT_LEN] {
    record::context_record(&ContextMeta {
        source: 1,
        pid: 1,
        tid,
        base_ticks: 0,
    })
}

/// A file with `n` data buffers, each holding one CONTEXT record with
/// tid = buffer number, written as the daemon writes them: every slot full
/// size except the last, which ends after its records.
fn file_with_buffers(n: u64, trailer: bool) -> Vec<u8> {
    let h = header();
    let mut out = h.encode();
    let mut b = BufferBuilder::new(BUF as usize);
    let total = n + trailer as u64;
    for seq in 0..total {
        b.clear();
        let kind = if seq < n {
            assert!(b.push(&ctx(seq as u32)));
            buffer_kind::DATA
        } else {
            let mut t = Vec::new();
            record::encode_trailer(&Trailer::default().to_values(), &mut t).unwrap();
            assert!(b.push(&t));
            buffer_kind::TRAILER
        };
        let bytes = b.seal(kind, seq).to_vec();
        out.extend_from_slice(&bytes);
        if seq + 1 < total {
            out.resize(out.len() + BUF as usize - bytes.len(), 0);
        }
    }
    out
}

fn data_offset() -> usize {
    header().data_offset() as usize
}

/// Reads everything: the tids of good data buffers, and each corruption's
/// (offset, skipped, reason).
fn read_all(bytes: &[u8]) -> (Vec<u32>, Vec<(u64, u64, CorruptionReason)>) {
    let mut r = LogReader::new(bytes).expect("header");
    let mut tids = Vec::new();
    let mut bad = Vec::new();
    while let Some(item) = r.next() {
        match item.expect("io") {
            Item::Buffer(b) => {
                for rec in Records::new(b.records) {
                    if let Ok(Record::Context(ContextMeta { tid, .. })) = rec {
                        tids.push(tid);
                    }
                }
            }
            Item::Corrupt(c) => bad.push((c.offset, c.skipped, c.reason)),
        }
    }
    (tids, bad)
}

#[test]
fn an_intact_file_reads_back_every_buffer() {
    let (tids, bad) = read_all(&file_with_buffers(4, true));
    assert_eq!(tids, vec![0, 1, 2, 3]);
    assert!(bad.is_empty());
}

#[test]
fn a_flipped_bit_fails_the_checksum_and_reading_resumes_at_the_next_buffer() {
    let mut f = file_with_buffers(3, false);
    let at = data_offset() + BUF as usize + BUFFER_HEADER_LEN + 12;
    f[at] ^= 0x01;
    let (tids, bad) = read_all(&f);
    assert_eq!(tids, vec![0, 2]);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, (data_offset() + BUF as usize) as u64);
    assert_eq!(bad[0].1, BUF as u64);
    assert!(matches!(bad[0].2, CorruptionReason::CrcMismatch { .. }));
}

#[test]
fn a_torn_tail_is_reported_with_the_bytes_present() {
    let f = file_with_buffers(2, false);
    let cut = f.len() - 5;
    let (tids, bad) = read_all(&f[..cut]);
    assert_eq!(tids, vec![0]);
    assert_eq!(bad.len(), 1);
    let (offset, skipped, reason) = &bad[0];
    assert_eq!(*offset, (data_offset() + BUF as usize) as u64);
    assert_eq!(*skipped as usize, cut - data_offset() - BUF as usize);
    assert!(matches!(reason, CorruptionReason::Truncated { .. }));
}

#[test]
fn a_tail_cut_inside_the_buffer_header_is_torn_too() {
    let f = file_with_buffers(2, false);
    let cut = data_offset() + BUF as usize + 10;
    let (tids, bad) = read_all(&f[..cut]);
    assert_eq!(tids, vec![0]);
    assert!(matches!(bad[0].2, CorruptionReason::Truncated { .. }));
    assert_eq!(bad[0].1, 10);
}

#[test]
fn a_slot_of_zeros_is_an_empty_slot() {
    let mut f = file_with_buffers(3, false);
    let start = data_offset() + BUF as usize;
    f[start..start + BUF as usize].fill(0);
    let (tids, bad) = read_all(&f);
    assert_eq!(tids, vec![0, 2]);
    assert_eq!(bad[0].2, CorruptionReason::EmptySlot);
}

#[test]
fn garbage_where_a_buffer_should_start_is_bad_magic() {
    let mut f = file_with_buffers(2, false);
    f[data_offset()] = b'X';
    let (tids, bad) = read_all(&f);
    assert_eq!(tids, vec![1]);
    assert_eq!(bad[0].2, CorruptionReason::BadMagic);
}

#[test]
fn a_used_length_beyond_the_buffer_is_bad_length() {
    let mut f = file_with_buffers(2, false);
    let at = data_offset() + 16;
    f[at..at + 4].copy_from_slice(&(BUF * 2).to_le_bytes());
    let (tids, bad) = read_all(&f);
    assert_eq!(tids, vec![1]);
    assert_eq!(bad[0].2, CorruptionReason::BadLength(BUF * 2));
}

#[test]
fn a_malformed_record_in_a_good_buffer_stops_that_buffer_only() {
    let h = header();
    let mut f = h.encode();
    let mut b = BufferBuilder::new(BUF as usize);
    assert!(b.push(&ctx(5)));
    // A record whose size runs past the buffer's end.
    let mut bogus = ctx(6);
    bogus[0] = 250;
    assert!(b.push(&bogus));
    f.extend_from_slice(b.seal(buffer_kind::DATA, 0));
    let mut r = LogReader::new(&f[..]).unwrap();
    let Some(Ok(Item::Buffer(buf))) = r.next() else {
        panic!("expected a buffer")
    };
    let recs: Vec<_> = Records::new(buf.records).collect();
    assert_eq!(recs.len(), 2);
    assert!(recs[0].is_ok());
    assert!(recs[1].is_err());
}

#[test]
fn a_file_that_is_not_a_log_is_refused() {
    assert!(matches!(
        LogReader::new(&b"hello world, this is not a trace"[..]),
        Err(FormatError::NotALog)
    ));
    assert!(matches!(
        LogReader::new(&b""[..]),
        Err(FormatError::NotALog)
    ));
}

#[test]
fn a_damaged_header_is_refused_with_its_checksum() {
    let mut f = file_with_buffers(1, false);
    f[130] ^= 0xff; // inside the session name
    assert!(matches!(
        LogReader::new(&f[..]),
        Err(FormatError::HeaderCrc { .. })
    ));
}

#[test]
fn another_major_version_is_refused() {
    let mut f = file_with_buffers(1, false);
    f[8] = 9;
    assert!(matches!(
        LogReader::new(&f[..]),
        Err(FormatError::Version(9))
    ));
}

#[test]
fn a_header_alone_is_an_empty_log() {
    let f = header().encode();
    let (tids, bad) = read_all(&f);
    assert!(tids.is_empty() && bad.is_empty());
}

#[test]
fn the_header_round_trips() {
    let h = header();
    let bytes = h.encode();
    let (back, data_offset) = FileHeader::decode_untrusted(&bytes).unwrap();
    assert_eq!(back, h);
    assert_eq!(data_offset, 4096);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any damage to the buffers never panics the reader, and buffers that
    /// the damage did not touch still read back.
    #[test]
    fn damage_never_panics_and_spares_untouched_buffers(
        flips in proptest::collection::vec((0usize..4 * BUF as usize, any::<u8>()), 0..8),
        cut in 0usize..4 * BUF as usize,
    ) {
        let mut f = file_with_buffers(4, false);
        let base = data_offset();
        let mut touched = std::collections::BTreeSet::new();
        for (at, x) in &flips {
            if *x != 0 && base + at < f.len() {
                f[base + at] ^= x;
                touched.insert(at / BUF as usize);
            }
        }
        let end = (base + cut).min(f.len());
        let (tids, _) = read_all(&f[..end]);
        for tid in 0..4u32 {
            let slot_end = base + (tid as usize + 1) * BUF as usize;
            let whole = slot_end <= end || (tid == 3 && end == f.len());
            if whole && !touched.contains(&(tid as usize)) {
                prop_assert!(tids.contains(&tid), "buffer {tid} lost");
            }
        }
    }

    #[test]
    fn random_bytes_after_a_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..3 * BUF as usize)) {
        let mut f = header().encode();
        f.extend_from_slice(&tail);
        let _ = read_all(&f);
    }
}
