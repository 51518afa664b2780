//! A pid does not name one process: the kernel reuses pids, and providers
//! in other PID namespaces reach a daemon in its own namespace with pid 0.
//! A log that holds two processes with the same pid shows each event, and
//! each process end, with its own process's name: names are kept by source
//! (one provider process as the daemon saw it), not by pid.

use ferret_abi::record::{
    self, ContextMeta, EventTypeMeta, ProcessEndMeta, ProcessMeta, ProviderMeta, Ticks,
};
use ferret_abi::{Guid, Value};
use ferret_decode::{Entry, FileDecoder};
use ferret_format::{BufferBuilder, ClockInfo, FileHeader, buffer_kind, mode};

const BUF: usize = 4096;
const PID: u32 = 42;

fn header() -> FileHeader {
    FileHeader {
        session_name: "pids".into(),
        host: "testhost".into(),
        logger_id: 1,
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
    }
}

/// The metadata the daemon writes for one process (source `source`, pid
/// [`PID`], called `name`).
fn describe(b: &mut BufferBuilder, source: u32, name: &str) {
    let mut meta = Vec::new();
    record::encode_process(
        &ProcessMeta {
            pid: PID,
            name: name.into(),
            source: Some(source),
        },
        &mut meta,
    )
    .unwrap();
    record::encode_provider(
        &ProviderMeta {
            source,
            provider: 0,
            pid: PID,
            guid: Guid::from_name("App"),
            name: "App".into(),
        },
        &mut meta,
    )
    .unwrap();
    record::encode_event_type(
        &EventTypeMeta {
            source,
            type_id: 0,
            provider: 0,
            event_id: 1,
            level: 4,
            opcode: 0,
            keywords: 1,
            name: "Tick".into(),
            fields: vec![],
        },
        &mut meta,
    )
    .unwrap();
    assert!(b.push(&meta));
}

/// One event of source `source` and, with `end`, the process's end.
fn event(b: &mut BufferBuilder, source: u32, ticks: u64, end: bool) {
    assert!(b.push(&record::context_record(&ContextMeta {
        source,
        pid: PID,
        tid: PID,
        base_ticks: ticks,
    })));
    let values: [Value<'_>; 0] = [];
    let size = record::event_header_len(Ticks::Delta(1), &record::ActivityIds::NONE)
        + values.iter().map(Value::encoded_len).sum::<usize>();
    let mut event = vec![0u8; size];
    record::encode_event_header_ids(
        &mut event,
        size,
        0,
        Ticks::Delta(1),
        &record::ActivityIds::NONE,
    );
    assert!(b.push(&event));
    if end {
        assert!(b.push(&record::process_end_record(&ProcessEndMeta {
            source,
            pid: PID,
            ticks: ticks + 2,
        })));
    }
}

#[test]
fn events_and_ends_of_two_processes_with_one_pid_show_their_own_names() {
    let header = header();
    let mut file = header.encode();
    let mut b = BufferBuilder::new(BUF);
    // Two processes with one pid (two PID namespaces, or a pid reused
    // while the first one's last events were still being drained) write
    // in turn.
    describe(&mut b, 1, "first");
    event(&mut b, 1, 2_000, false);
    describe(&mut b, 2, "second");
    event(&mut b, 2, 3_000, false);
    event(&mut b, 1, 4_000, true);
    event(&mut b, 2, 5_000, true);
    file.extend_from_slice(b.seal(buffer_kind::DATA, 0));

    let mut d = FileDecoder::new(&file[..]).unwrap();
    let mut seen = Vec::new();
    d.for_each(|e| {
        match e {
            Entry::Event(ev) => seen.push(format!("event {} {}", ev.pid, ev.process)),
            Entry::ProcessEnd { pid, process, .. } => seen.push(format!("end {pid} {process}")),
            _ => {}
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        seen,
        [
            "event 42 first",
            "event 42 second",
            "event 42 first",
            "end 42 first",
            "event 42 second",
            "end 42 second",
        ]
    );
}

#[test]
fn a_log_whose_process_records_name_no_source_still_names_processes_by_pid() {
    // Logs written before PROCESS records carried their source.
    let header = header();
    let mut file = header.encode();
    let mut b = BufferBuilder::new(BUF);
    describe(&mut b, 1, "sourced");
    event(&mut b, 1, 2_000, true);
    let mut meta = Vec::new();
    record::encode_process(
        &ProcessMeta {
            pid: 7,
            name: "old".into(),
            source: None,
        },
        &mut meta,
    )
    .unwrap();
    assert!(b.push(&meta));
    assert!(b.push(&record::process_end_record(&ProcessEndMeta {
        source: 5,
        pid: 7,
        ticks: 9_000,
    })));
    file.extend_from_slice(b.seal(buffer_kind::DATA, 0));
    let mut d = FileDecoder::new(&file[..]).unwrap();
    let mut ends = Vec::new();
    d.for_each(|e| {
        if let Entry::ProcessEnd { pid, process, .. } = e {
            ends.push(format!("{pid} {process}"));
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(ends, ["42 sourced", "7 old"]);
}
