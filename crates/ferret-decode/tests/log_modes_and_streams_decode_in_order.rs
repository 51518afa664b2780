//! Files written in each log mode decode to their events in time order: a
//! circular file that wrapped gives its newest buffers oldest first, an
//! appended file decodes each session with its own definitions and sums its
//! trailers, and a stream of sealed buffers (`ferret tail`) decodes exactly
//! as the file holding them does.

use std::path::Path;

use ferret_abi::Value;
use ferret_abi::record::{
    self, ActivityIds, EventTypeMeta, FieldMeta, FieldType, ProcessEndMeta, Ticks,
};
use ferret_decode::{
    Entry, FileDecoder, OutputFormat, Printer, Stats, StreamDecoder, Trailer, write_summary,
};
use ferret_format::{BufferBuilder, ClockInfo, CorruptionReason, FileHeader, buffer_kind, mode};
use ferret_testkit::logbuild::{self, field};
use proptest::prelude::*;

const BUF: usize = 4096;

/// The note a file without a trailer after its last `n` buffers ends with.
fn no_trailer(n: u64) -> String {
    format!(
        "note no trailer after the last {n} buffer(s): the session is still running, its daemon was killed, or the file was cut short; if the daemon was killed, 'ferret recover' may save the events it had not written"
    )
}
const ANCHOR_UNIX_NS: u64 = 1_795_426_500_000_000_000;

fn header(log_mode: u32, slot_count: u32) -> FileHeader {
    FileHeader {
        session_name: "modes".into(),
        host: "testhost".into(),
        logger_id: 2,
        buffer_size: BUF as u32,
        log_mode,
        start_unix_ns: ANCHOR_UNIX_NS,
        clock: ClockInfo {
            kind: 1,
            anchor_ticks: 0,
            anchor_mono_ns: 0,
            anchor_unix_ns: ANCHOR_UNIX_NS,
            ticks_per_sec: 1_000_000_000,
        },
        daemon_pid: 1,
        slot_count,
        file_index: 0,
    }
}

/// What one session calls source 1's provider 0 and event type 0.
struct Definitions {
    provider: &'static str,
    event: &'static str,
    fields: Vec<FieldMeta>,
}

/// The first session's type 0: `Tick { seq: u64 }`.
fn tick() -> Definitions {
    Definitions {
        provider: "Clock",
        event: "Tick",
        fields: vec![field("seq", FieldType::U64)],
    }
}

/// An appended session's type 0 of the same source: another name and fields.
fn order() -> Definitions {
    Definitions {
        provider: "Shop",
        event: "Order",
        fields: vec![field("id", FieldType::U32), field("who", FieldType::Str)],
    }
}

fn metadata(defs: &Definitions) -> Vec<u8> {
    let ty = EventTypeMeta {
        source: 1,
        type_id: 0,
        provider: 0,
        event_id: 1,
        level: 4,
        opcode: 0,
        keywords: 1,
        name: defs.event.into(),
        fields: defs.fields.clone(),
    };
    logbuild::metadata(1, 42, "app", defs.provider, vec![ty])
}

fn event(values: &[Value<'_>]) -> Vec<u8> {
    logbuild::event(0, Ticks::Delta(10), ActivityIds::NONE, values)
}

/// The values of event `i` of buffer `seq` under `defs`; every event is
/// told apart by `seq * 10 + i`.
fn values(defs: &Definitions, seq: u64, i: u64) -> Vec<Value<'static>> {
    let n = seq * 10 + i;
    if defs.event == "Tick" {
        vec![Value::U64(n)]
    } else {
        vec![Value::U32(n as u32), Value::Str("ann")]
    }
}

/// A sealed data buffer, self-describing as circular buffers are: the
/// metadata (when `describe`), a CONTEXT at `seq` milliseconds, and three
/// events 10 ns apart.
fn data_buffer(seq: u64, defs: &Definitions, describe: bool) -> Vec<u8> {
    let mut b = BufferBuilder::new(BUF);
    if describe {
        assert!(b.push(&metadata(defs)));
    }
    assert!(b.push(&logbuild::context(1, 42, 43, seq * 1_000_000)));
    for i in 0..3 {
        assert!(b.push(&event(&values(defs, seq, i))));
    }
    b.seal(buffer_kind::DATA, seq).to_vec()
}

fn trailer_buffer(seq: u64, t: &Trailer) -> Vec<u8> {
    let mut b = BufferBuilder::new(BUF);
    let mut rec = Vec::new();
    record::encode_trailer(&t.to_values(), &mut rec).unwrap();
    assert!(b.push(&rec));
    b.seal(buffer_kind::TRAILER, seq).to_vec()
}

fn trailer(events: u64, buffers: u64, end_ms: u64) -> Trailer {
    Trailer {
        events,
        events_lost: 1,
        lost_ring_full: 1,
        buffers_written: buffers,
        end_ticks: end_ms * 1_000_000,
        end_mono_ns: end_ms * 1_000_000,
        end_unix_ns: ANCHOR_UNIX_NS + end_ms * 1_000_000,
        ..Trailer::default()
    }
}

/// Writes `bytes` into slot `slot` the way the daemon does: at the slot's
/// offset, leaving a hole (zeros) before it if the file was shorter.
fn put_slot(file: &mut Vec<u8>, data_offset: usize, slot: usize, bytes: &[u8]) {
    let at = data_offset + slot * BUF;
    if file.len() < at + bytes.len() {
        file.resize(at + bytes.len(), 0);
    }
    file[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A circular file of `slots` slots (the last one for the trailer) after
/// `written` data buffers, with a trailer if `stopped`.
fn circular_file(slots: u32, written: u64, stopped: bool) -> Vec<u8> {
    let h = header(mode::CIRCULAR, slots);
    let data_offset = h.data_offset() as usize;
    let mut file = h.encode();
    let data_slots = u64::from(slots - 1);
    for seq in 0..written {
        let slot = (seq % data_slots) as usize;
        put_slot(
            &mut file,
            data_offset,
            slot,
            &data_buffer(seq, &tick(), true),
        );
        // A reused slot may keep stale bytes of a longer buffer after the
        // new one's records; these buffers are all the same length, so
        // make the tail visibly stale instead.
        let end = data_offset + slot * BUF + BUF;
        if file.len() >= end {
            file[end - 8..end].fill(0xee);
        }
    }
    if stopped {
        let t = trailer(3 * written, written, 1_000 * written + 1);
        put_slot(
            &mut file,
            data_offset,
            slots as usize - 1,
            &trailer_buffer(written, &t),
        );
    }
    file
}

/// A sequential file one session wrote (buffers `first..first + n`, then a
/// trailer if `stopped`), with another session's buffers appended after it
/// when `second` is given.
fn appended_file(second: Option<(u64, bool)>) -> Vec<u8> {
    let h = header(mode::SEQUENTIAL, 0);
    let data_offset = h.data_offset() as usize;
    let mut file = h.encode();
    let mut slot = 0;
    let mut seq = 0;
    // Session 1: two data buffers (metadata in the first only), a trailer.
    for describe in [true, false] {
        put_slot(
            &mut file,
            data_offset,
            slot,
            &data_buffer(seq, &tick(), describe),
        );
        slot += 1;
        seq += 1;
    }
    put_slot(
        &mut file,
        data_offset,
        slot,
        &trailer_buffer(seq, &trailer(6, 2, 1_000)),
    );
    slot += 1;
    seq += 1;
    if let Some((n, stopped)) = second {
        // Session 2 numbers its buffers on from session 1's and defines
        // source 1's type 0 as something else.
        for i in 0..n {
            let bytes = data_buffer(seq, &order(), i == 0);
            put_slot(&mut file, data_offset, slot, &bytes);
            slot += 1;
            seq += 1;
        }
        if stopped {
            put_slot(
                &mut file,
                data_offset,
                slot,
                &trailer_buffer(seq, &trailer(3 * n, n, 2_000 + seq)),
            );
        }
    }
    file
}

fn write_temp(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.ferret");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// An entry as a line: events as `name n` (n the first field's value) and
/// everything else by kind, so orders can be compared.
fn describe(e: &Entry<'_>) -> String {
    match e {
        Entry::Event(ev) => {
            let n = match ev.values.first() {
                Some(Value::U64(n)) => *n,
                Some(Value::U32(n)) => u64::from(*n),
                other => panic!("unexpected first value {other:?}"),
            };
            format!("{}/{} {n}", ev.ty.provider.name, ev.ty.name)
        }
        Entry::Lost { count, .. } => format!("lost {count}"),
        Entry::ProcessEnd { pid, process, .. } => format!("ended {pid} {process}"),
        Entry::Corrupt(c) => format!("corrupt {}", c.reason),
        Entry::BadRecord { error, .. } => format!("bad {error}"),
        Entry::Trailer(t) => format!("trailer {}", t.events),
        Entry::Note(n) => format!("note {n}"),
    }
}

/// Every entry of a decoder, described, and the events' timestamps.
fn decode_all<R: std::io::Read>(d: &mut FileDecoder<R>) -> (Vec<String>, Vec<u64>) {
    let mut lines = Vec::new();
    let mut times = Vec::new();
    d.for_each(|e| {
        if let Entry::Event(ev) = &e {
            times.push(ev.timestamp_ns);
        }
        lines.push(describe(&e));
        Ok(())
    })
    .unwrap();
    (lines, times)
}

fn ticks(seqs: impl IntoIterator<Item = u64>) -> Vec<String> {
    seqs.into_iter()
        .flat_map(|s| (0..3).map(move |i| format!("Clock/Tick {}", s * 10 + i)))
        .collect()
}

fn open(path: &Path) -> FileDecoder<std::fs::File> {
    FileDecoder::open(path).expect("open log")
}

#[test]
fn a_wrapped_circular_file_decodes_its_newest_buffers_oldest_first() {
    // 4 slots: 3 for data and the trailer's. Buffers 0..7 were written, so
    // slots 0, 1, 2 hold buffers 6, 4, 5.
    let (_dir, path) = write_temp(&circular_file(4, 7, true));
    let mut d = open(&path);
    let (lines, times) = decode_all(&mut d);
    let mut want = ticks([4, 5, 6]);
    want.push("trailer 21".into());
    assert_eq!(lines, want);
    assert!(times.is_sorted(), "{times:?}");
    assert_eq!(d.stats().buffers, 4);
    assert_eq!(d.stats().corrupt_stretches, 0);
    assert_eq!(d.trailer().map(|t| t.events), Some(21));
    assert!(d.stats().notes.is_empty());
}

#[test]
fn a_circular_file_that_has_not_wrapped_skips_its_unwritten_slots_silently() {
    // 6 slots, 2 data buffers written, the trailer in the last slot: slots
    // 2, 3 and 4 are a hole of zeros.
    let (_dir, path) = write_temp(&circular_file(6, 2, true));
    let mut d = open(&path);
    let (lines, _) = decode_all(&mut d);
    let mut want = ticks([0, 1]);
    want.push("trailer 6".into());
    assert_eq!(lines, want);
    assert_eq!(d.stats().corrupt_stretches, 0);
}

#[test]
fn a_damaged_circular_slot_is_reported_where_its_sequence_puts_it() {
    let mut file = circular_file(4, 7, true);
    // Slot 2 holds buffer 5: break a record byte so its checksum fails.
    let at = header(mode::CIRCULAR, 4).data_offset() as usize + 2 * BUF + 40;
    file[at] ^= 0x40;
    let (_dir, path) = write_temp(&file);
    let (lines, _) = decode_all(&mut open(&path));
    let mut want = ticks([4]);
    want.push(lines[3].clone());
    want.extend(ticks([6]));
    want.push("trailer 21".into());
    assert_eq!(lines, want);
    assert!(
        lines[3].starts_with("corrupt checksum mismatch"),
        "{lines:?}"
    );

    // A slot whose buffer header is unreadable has no sequence: it is
    // reported first, and the others still come oldest first.
    let at = header(mode::CIRCULAR, 4).data_offset() as usize + BUF;
    file[at] = b'X';
    let (_dir, path) = write_temp(&file);
    let (lines, _) = decode_all(&mut open(&path));
    assert_eq!(lines[0], "corrupt no buffer header");
    assert!(lines[1].starts_with("corrupt checksum mismatch"));
    assert_eq!(lines[2..5], ticks([6])[..]);
}

#[test]
fn a_circular_file_from_a_pipe_is_decoded_in_slot_order_with_a_note() {
    let file = circular_file(4, 7, true);
    let mut d = FileDecoder::new(&file[..]).unwrap();
    let (lines, _) = decode_all(&mut d);
    assert!(lines[0].starts_with("note circular log read from a stream"));
    let mut want = ticks([6, 4, 5]);
    want.push("trailer 21".into());
    assert_eq!(lines[1..], want[..]);
    // The summary repeats the note.
    let mut out = Vec::new();
    write_summary(&mut out, "pipe", d.header(), d.stats(), d.trailer()).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("Mode:       circular, 4 slots"), "{out}");
    assert!(
        out.contains("Note:       circular log read from a stream"),
        "{out}"
    );
}

#[test]
fn an_appended_file_decodes_each_session_with_its_own_definitions() {
    let (_dir, path) = write_temp(&appended_file(Some((2, true))));
    let mut d = open(&path);
    d.count_per_event(true);
    let (lines, _) = decode_all(&mut d);
    let mut want = ticks([0, 1]);
    want.push("trailer 6".into());
    want.extend((3..5).flat_map(|s| (0..3).map(move |i| format!("Shop/Order {}", s * 10 + i))));
    want.push("trailer 6".into());
    assert_eq!(lines, want);

    let stats: &Stats = d.stats();
    assert_eq!(stats.trailers, 2);
    assert_eq!(stats.buffers_after_trailer, 0);
    assert_eq!(stats.events, 12);
    let sum = d.trailer().copied().unwrap();
    assert_eq!(
        (sum.events, sum.events_lost, sum.buffers_written),
        (12, 2, 4)
    );
    assert_eq!(sum.end_unix_ns, ANCHOR_UNIX_NS + 2_005_000_000);

    let mut out = Vec::new();
    write_summary(&mut out, "appended", d.header(), stats, d.trailer()).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("Sessions:   2 wrote into this file"), "{out}");
    assert!(out.contains("Stopped:    2026-11-23T09:35:02.005000000Z (clean stop)"));
    assert!(
        out.contains(
            "Trailer:    events 12, events lost 2 (ring-full 2, no-buffer 0, other 0), buffers written 4"
        ),
        "{out}"
    );
    assert!(out.contains("6  Clock/Tick") && out.contains("6  Shop/Order"));
}

#[test]
fn a_process_end_is_decoded_after_the_events_and_printed_in_each_format() {
    // One buffer: metadata, three events at 1 ms, the process's end at 3 ms
    // and one more event, whose time must not depend on the end record.
    let mut b = BufferBuilder::new(BUF);
    assert!(b.push(&metadata(&tick())));
    assert!(b.push(&logbuild::context(1, 42, 43, 1_000_000)));
    for i in 0..3 {
        assert!(b.push(&event(&values(&tick(), 1, i))));
    }
    assert!(b.push(&record::process_end_record(&ProcessEndMeta {
        source: 1,
        pid: 42,
        ticks: 3_000_000,
    })));
    assert!(b.push(&event(&values(&tick(), 1, 3))));
    let h = header(mode::SEQUENTIAL, 0);
    let mut file = h.encode();
    put_slot(
        &mut file,
        h.data_offset() as usize,
        0,
        b.seal(buffer_kind::DATA, 0),
    );
    let (_dir, path) = write_temp(&file);
    let mut d = open(&path);
    let (lines, times) = decode_all(&mut d);
    let mut want = ticks([1]);
    want.push("ended 42 app".into());
    want.push("Clock/Tick 13".into());
    want.push(no_trailer(1));
    assert_eq!(lines, want);
    assert_eq!(times[3], ANCHOR_UNIX_NS + 1_000_040, "{times:?}");
    assert_eq!(d.stats().process_ends, 1);

    let (text, _) = print_file(&file, OutputFormat::Text);
    assert!(
        text.contains("2026-11-23T09:35:00.003000000Z 42 ENDED process app\n"),
        "{text}"
    );
    let (json, _) = print_file(&file, OutputFormat::Json);
    let end: serde_json::Value = serde_json::from_str(json.lines().nth(3).unwrap()).unwrap();
    assert_eq!(end["process_end"], true);
    assert_eq!(end["pid"], 42);
    assert_eq!(end["process"], "app");
    assert_eq!(end["timestamp_ns"], ANCHOR_UNIX_NS + 3_000_000);
    let (csv, diag) = print_file(&file, OutputFormat::Csv);
    assert_eq!(
        csv.lines().count(),
        5,
        "a header and the four events: {csv}"
    );
    // This crafted file has no trailer, which is the only thing said.
    assert_eq!(
        diag,
        format!("ferret fmt: s: {}\n", &no_trailer(1)["note ".len()..])
    );
}

#[test]
fn an_appended_session_does_not_inherit_the_earlier_sessions_definitions() {
    // Session 2's first buffer lacks its metadata: its events must not be
    // decoded under session 1's definition of the same (source, type).
    let h = header(mode::SEQUENTIAL, 0);
    let mut file = appended_file(None);
    let data_offset = h.data_offset() as usize;
    put_slot(&mut file, data_offset, 3, &data_buffer(3, &order(), false));
    let (_dir, path) = write_temp(&file);
    let (lines, _) = decode_all(&mut open(&path));
    assert_eq!(
        lines[lines.len() - 4..],
        [
            "bad event of undescribed type 0 from source 1".to_string(),
            "bad event of undescribed type 0 from source 1".to_string(),
            "bad event of undescribed type 0 from source 1".to_string(),
            no_trailer(1),
        ][..]
    );
}

#[test]
fn an_appended_session_that_did_not_stop_is_not_called_a_clean_stop() {
    let (_dir, path) = write_temp(&appended_file(Some((2, false))));
    let mut d = open(&path);
    decode_all(&mut d);
    assert_eq!(d.stats().trailers, 1);
    assert_eq!(d.stats().buffers_after_trailer, 2);
    let mut out = Vec::new();
    write_summary(&mut out, "x", d.header(), d.stats(), d.trailer()).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("Stopped:    no trailer after the last 2 buffers"),
        "{out}"
    );
    assert!(!out.contains("Sessions:"), "{out}");
}

#[test]
fn new_file_and_snapshot_headers_are_named_in_the_summary() {
    for (log_mode, index, want) in [
        (
            mode::NEW_FILE,
            3,
            "Mode:       new-file, file 3 of a series",
        ),
        (mode::SNAPSHOT, 0, "Mode:       snapshot"),
    ] {
        let mut h = header(log_mode, 0);
        h.file_index = index;
        let mut file = h.encode();
        // A snapshot starts at whatever sequence the session had reached.
        file.extend_from_slice(&data_buffer(40, &tick(), true));
        let (_dir, path) = write_temp(&file);
        let mut d = open(&path);
        let (lines, _) = decode_all(&mut d);
        let mut decoded = ticks([40]);
        decoded.push(no_trailer(1));
        assert_eq!(lines, decoded);
        let mut out = Vec::new();
        write_summary(&mut out, "x", d.header(), d.stats(), d.trailer()).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains(want), "{out}");
    }
}

/// The buffers of a file, as the daemon would deliver them to a real-time
/// consumer: each slot's `used` bytes, in file order.
fn chunks(file: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let data_offset = header(mode::SEQUENTIAL, 0).data_offset() as usize;
    let head = file[..data_offset].to_vec();
    let chunks = file[data_offset..]
        .chunks(BUF)
        .map(|slot| {
            let used = u32::from_le_bytes(slot[16..20].try_into().unwrap()) as usize;
            slot[..32 + used].to_vec()
        })
        .collect();
    (head, chunks)
}

fn print_file(file: &[u8], format: OutputFormat) -> (String, String) {
    let (_dir, path) = write_temp(file);
    let mut d = open(&path);
    let (mut out, mut diag) = (Vec::new(), Vec::new());
    let mut p = Printer::new(format, &mut out, &mut diag, "s");
    d.for_each(|e| p.entry(&e)).unwrap();
    drop(p);
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(diag).unwrap(),
    )
}

fn print_stream<'a>(
    head: &[u8],
    chunks: impl IntoIterator<Item = &'a [u8]>,
    format: OutputFormat,
) -> (String, String, StreamDecoder) {
    let mut d = StreamDecoder::from_header_bytes(head).unwrap();
    let (mut out, mut diag) = (Vec::new(), Vec::new());
    let mut p = Printer::new(format, &mut out, &mut diag, "s");
    for chunk in chunks {
        d.feed(chunk, |e| p.entry(&e)).unwrap();
    }
    drop(p);
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(diag).unwrap(),
        d,
    )
}

#[test]
fn a_stream_of_buffers_decodes_exactly_as_the_file_holding_them() {
    let file = appended_file(Some((2, true)));
    let (head, chunks) = chunks(&file);
    for format in [OutputFormat::Text, OutputFormat::Json, OutputFormat::Csv] {
        let (file_out, file_diag) = print_file(&file, format);
        let (out, diag, d) = print_stream(&head, chunks.iter().map(Vec::as_slice), format);
        assert_eq!(out, file_out);
        assert_eq!(diag, file_diag);
        assert_eq!(d.stats().events, 12);
        assert_eq!(d.stats().trailers, 2);
        assert_eq!(d.trailer().map(|t| t.events), Some(12));
    }
    // The header may come without its padding.
    let h = header(mode::SEQUENTIAL, 0);
    let d = StreamDecoder::from_header_bytes(&head[..h.header_len()]).unwrap();
    assert_eq!(d.header(), &h);
}

#[test]
fn a_corrupt_chunk_is_reported_and_the_next_one_still_decodes() {
    let file = appended_file(None);
    let (head, mut chunks) = chunks(&file);
    let sizes: Vec<u64> = chunks.iter().map(|c| c.len() as u64).collect();
    // Chunk 1 (the second data buffer) gets a flipped bit.
    chunks[1][40] ^= 0x01;
    let mut d = StreamDecoder::from_header_bytes(&head).unwrap();
    let mut lines = Vec::new();
    let mut offsets = Vec::new();
    for chunk in &chunks {
        d.feed(chunk, |e| {
            if let Entry::Corrupt(c) = &e {
                offsets.push((c.offset, c.skipped));
            }
            lines.push(describe(&e));
            Ok(())
        })
        .unwrap();
    }
    let mut want = ticks([0]);
    want.push(lines[3].clone());
    want.push("trailer 6".into());
    assert_eq!(lines, want);
    assert!(
        lines[3].starts_with("corrupt checksum mismatch"),
        "{lines:?}"
    );
    assert_eq!(offsets, vec![(sizes[0], sizes[1])]);

    // Chunks that are not buffers at all are reported too, and a chunk
    // after them still decodes.
    let mut d = StreamDecoder::from_header_bytes(&head).unwrap();
    let mut reasons = Vec::new();
    let good = data_buffer(7, &tick(), true);
    for chunk in [
        &[][..],
        &good[..20],
        &[0u8; 64],
        b"FBUF garbage",
        &good[..good.len() - 1],
    ] {
        d.feed(chunk, |e| {
            if let Entry::Corrupt(c) = e {
                reasons.push(c.reason);
            }
            Ok(())
        })
        .unwrap();
    }
    assert!(matches!(
        reasons[0],
        CorruptionReason::Truncated { need: 32, have: 0 }
    ));
    assert!(matches!(
        reasons[1],
        CorruptionReason::Truncated { need: 32, have: 20 }
    ));
    assert_eq!(reasons[2], CorruptionReason::EmptySlot);
    assert!(matches!(reasons[3], CorruptionReason::Truncated { .. }));
    assert!(matches!(reasons[4], CorruptionReason::Truncated { .. }));
    let mut events = 0;
    d.feed(&good, |e| {
        events += matches!(e, Entry::Event(_)) as u32;
        Ok(())
    })
    .unwrap();
    assert_eq!(events, 3);
    assert_eq!(d.stats().corrupt_stretches, 5);
}

#[test]
fn tail_diagnostics_name_tail() {
    let mut out = Vec::new();
    let mut diag = Vec::new();
    let mut p = Printer::new(OutputFormat::Text, &mut out, &mut diag, "session 2");
    p.set_program("ferret tail");
    p.entry(&Entry::Note("hello".into())).unwrap();
    drop(p);
    assert_eq!(
        String::from_utf8(diag).unwrap(),
        "ferret tail: session 2: hello\n"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However many buffers a circular file of any size took, it decodes
    /// to the events of the newest ones, oldest first.
    #[test]
    fn a_circular_file_keeps_its_newest_buffers_in_order(
        slots in 2u32..9,
        written in 0u64..30,
        stopped: bool,
    ) {
        let (_dir, path) = write_temp(&circular_file(slots, written, stopped));
        let mut d = open(&path);
        let (lines, times) = decode_all(&mut d);
        let kept = written.min(u64::from(slots - 1));
        let mut want = ticks(written - kept..written);
        if stopped {
            want.push(format!("trailer {}", 3 * written));
        } else {
            want.push(no_trailer(kept));
        }
        prop_assert_eq!(lines, want);
        prop_assert!(times.is_sorted());
    }

    /// Whatever bytes arrive as chunks, the stream decoder reports them
    /// and never panics.
    #[test]
    fn arbitrary_chunks_never_panic(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8),
        flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..8),
    ) {
        let h = header(mode::SEQUENTIAL, 0);
        let mut d = StreamDecoder::new(h);
        let mut good = data_buffer(1, &tick(), true);
        for (at, x) in flips {
            if let Some(b) = good.get_mut(at) {
                *b ^= x;
            }
        }
        for chunk in chunks.iter().map(Vec::as_slice).chain([&good[..]]) {
            d.feed(chunk, |_| Ok(())).unwrap();
        }
    }
}
