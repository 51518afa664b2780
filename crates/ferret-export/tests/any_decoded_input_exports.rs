//! Whatever a decoder hands out (any field types and values, any names,
//! activity starts and stops in any order, losses, process ends, times in
//! any order), every exporter writes it without panicking; the Chrome JSON
//! always parses and counts every event, and the CTF stream is whole
//! packets.

use std::sync::Arc;

use ferret_abi::Guid;
use ferret_abi::payload::Value;
use ferret_abi::record::{FieldMeta, FieldType, LostReason};
use ferret_decode::{DecodedProvider, Entry, Event, EventType};
use ferret_export::{Trace, write_chrome, write_ctf, write_perfetto};
use proptest::prelude::*;

/// Perfetto's `Trace` message, its packets left encoded.
#[derive(Clone, PartialEq, prost::Message)]
struct Packets {
    #[prost(bytes = "vec", repeated, tag = "1")]
    packet: Vec<Vec<u8>>,
}

const TYPES: [FieldType; 13] = [
    FieldType::U8,
    FieldType::I8,
    FieldType::U16,
    FieldType::I16,
    FieldType::U32,
    FieldType::I32,
    FieldType::U64,
    FieldType::I64,
    FieldType::F64,
    FieldType::Bool,
    FieldType::Str,
    FieldType::Bytes,
    FieldType::Guid,
];

/// A value of type `ty` made from the raw inputs.
fn value<'a>(ty: FieldType, n: u64, f: f64, s: &'a str, b: &'a [u8]) -> Value<'a> {
    match ty {
        FieldType::U8 => Value::U8(n as u8),
        FieldType::I8 => Value::I8(n as i8),
        FieldType::U16 => Value::U16(n as u16),
        FieldType::I16 => Value::I16(n as i16),
        FieldType::U32 => Value::U32(n as u32),
        FieldType::I32 => Value::I32(n as i32),
        FieldType::U64 => Value::U64(n),
        FieldType::I64 => Value::I64(n as i64),
        FieldType::F64 => Value::F64(f),
        FieldType::Bool => Value::Bool(n & 1 == 1),
        FieldType::Str => Value::Str(s),
        FieldType::Bytes => Value::Bytes(b),
        FieldType::Guid => Value::Guid(Guid([n as u8; 16])),
    }
}

#[derive(Debug, Clone)]
enum Input {
    Event {
        ty: usize,
        ts: u64,
        tid: u32,
        n: u64,
        f: f64,
        s: String,
        b: Vec<u8>,
        activity: Option<u8>,
        related: Option<u8>,
    },
    Lost {
        ts: u64,
        pid: u32,
        count: u64,
    },
    End {
        ts: u64,
        pid: u32,
    },
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        6 => (
            0..4usize,
            any::<u64>(),
            0..3u32,
            any::<u64>(),
            any::<f64>(),
            ".{0,20}",
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::option::of(0..3u8),
            proptest::option::of(0..3u8),
        )
            .prop_map(|(ty, ts, tid, n, f, s, b, activity, related)| Input::Event {
                ty,
                ts,
                tid,
                n,
                f,
                s,
                b,
                activity,
                related,
            }),
        1 => (any::<u64>(), 0..3u32, any::<u64>())
            .prop_map(|(ts, pid, count)| Input::Lost { ts, pid, count }),
        1 => (any::<u64>(), 0..3u32).prop_map(|(ts, pid)| Input::End { ts, pid }),
    ]
}

/// Four event types: any names (the provider's too), any fields, and
/// opcodes that make activity starts and stops.
fn types() -> impl Strategy<Value = Vec<EventType>> {
    proptest::collection::vec(
        (
            ".{0,12}",
            ".{0,12}",
            0..4u8,
            proptest::collection::vec((".{0,10}", 0..TYPES.len()), 0..6),
        ),
        4,
    )
    .prop_map(|types| {
        types
            .into_iter()
            .map(|(provider, name, opcode, fields)| EventType {
                name,
                event_id: 1,
                level: 4,
                opcode,
                keywords: 0,
                fields: fields
                    .into_iter()
                    .map(|(name, t)| FieldMeta { name, ty: TYPES[t] })
                    .collect(),
                provider: Arc::new(DecodedProvider {
                    name: provider,
                    guid: Guid::default(),
                    pid: 1,
                }),
            })
            .collect()
    })
}

fn trace(types: &[EventType], inputs: &[Input]) -> Trace {
    let mut trace = Trace::new();
    for i in inputs {
        match i {
            Input::Event {
                ty,
                ts,
                tid,
                n,
                f,
                s,
                b,
                activity,
                related,
            } => {
                let ty = &types[*ty];
                let values: Vec<_> = ty
                    .fields
                    .iter()
                    .map(|field| value(field.ty, *n, *f, s, b))
                    .collect();
                trace.add(&Entry::Event(Event {
                    timestamp_ns: *ts,
                    ty,
                    process: if tid % 2 == 0 { "proc\"\n" } else { "" },
                    pid: tid % 2,
                    tid: *tid,
                    values: &values,
                    activity_id: activity.map(|a| Guid([a; 16])),
                    related_activity_id: related.map(|a| Guid([a; 16])),
                }));
            }
            Input::Lost { ts, pid, count } => trace.add(&Entry::Lost {
                timestamp_ns: *ts,
                pid: *pid,
                provider: "P",
                reason: LostReason::RingFull,
                count: *count,
            }),
            Input::End { ts, pid } => trace.add(&Entry::ProcessEnd {
                timestamp_ns: *ts,
                pid: *pid,
                process: "",
            }),
        }
    }
    trace.finish();
    trace
}

/// Walks the CTF stream's packets by their sizes.
fn ctf_packets(stream: &[u8]) {
    let mut at = 0;
    while at < stream.len() {
        let p = &stream[at..];
        assert_eq!(&p[0..4], &0xC1FC_1FC1u32.to_le_bytes(), "magic at {at}");
        let content = u64::from_le_bytes(p[40..48].try_into().unwrap()) as usize / 8;
        let size = u64::from_le_bytes(p[48..56].try_into().unwrap()) as usize / 8;
        assert!(content >= 64 && content <= size && at + size <= stream.len());
        at += size;
    }
    assert_eq!(at, stream.len(), "the stream is whole packets");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_exporter_writes_any_decoded_input(
        types in types(),
        inputs in proptest::collection::vec(input(), 0..40),
    ) {
        let trace = trace(&types, &inputs);
        let mut none = |_: u64| {};

        let mut json = Vec::new();
        write_chrome(&trace, &mut json, &mut none).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&json)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&json))))?;
        let events = inputs.iter().filter(|i| matches!(i, Input::Event { .. })).count();
        prop_assert_eq!(&doc["metadata"]["events"], &serde_json::json!(events));

        let mut pf = Vec::new();
        write_perfetto(&trace, &mut pf, &mut none).unwrap();
        // The file is a Trace message: a packet per record, and more for
        // the clock, the tracks and the summary.
        let packets = <Packets as prost::Message>::decode(&pf[..]).unwrap().packet;
        prop_assert!(packets.len() >= inputs.len() + 2, "{} packets", packets.len());

        // CTF readers hold time as signed 64-bit nanoseconds: a trace with
        // a later record is refused, one without is written.
        let dir = tempfile::tempdir().unwrap();
        let latest = inputs
            .iter()
            .map(|i| match i {
                Input::Event { ts, .. } | Input::Lost { ts, .. } | Input::End { ts, .. } => *ts,
            })
            .max()
            .unwrap_or(0);
        let written = write_ctf(&trace, dir.path(), &mut none);
        if latest > i64::MAX as u64 {
            let e = written.unwrap_err();
            prop_assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
            return Ok(());
        }
        written.unwrap();
        let metadata = std::fs::read_to_string(dir.path().join("metadata")).unwrap();
        prop_assert!(metadata.starts_with("/* CTF 1.8 */"));
        let stream = std::fs::read(dir.path().join("stream")).unwrap();
        ctf_packets(&stream);
    }
}

/// Whether babeltrace2 runs; when it does not, says the test is skipped,
/// or fails it when FERRET_REQUIRE_TOOLS=1.
fn have_babeltrace() -> bool {
    let ok = std::process::Command::new("babeltrace2")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("FERRET_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "babeltrace2 is not installed, and FERRET_REQUIRE_TOOLS=1"
        );
        println!("skipped: babeltrace2 is not installed");
    }
    ok
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any provider, event and field names make metadata babeltrace2
    /// accepts, and it finds every event and process end.
    #[test]
    fn babeltrace2_reads_ctf_of_any_names(
        types in types(),
        inputs in proptest::collection::vec(input(), 0..20),
    ) {
        if !have_babeltrace() {
            return Ok(());
        }
        // Real timestamps are UNIX-epoch nanoseconds, far below 2^62;
        // babeltrace2 converts them to signed nanoseconds.
        let inputs: Vec<Input> = inputs
            .into_iter()
            .map(|mut i| {
                match &mut i {
                    Input::Event { ts, .. } | Input::Lost { ts, .. } | Input::End { ts, .. } => {
                        *ts >>= 2;
                    }
                }
                i
            })
            .collect();
        let trace = trace(&types, &inputs);
        let dir = tempfile::tempdir().unwrap();
        write_ctf(&trace, dir.path(), &mut |_| {}).unwrap();
        let o = std::process::Command::new("babeltrace2").arg(dir.path()).output().unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        prop_assert!(
            o.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(dir.path().join("metadata")).unwrap()
        );
        let shown = stdout.lines().filter(|l| l.starts_with('[')).count();
        let written = inputs.iter().filter(|i| !matches!(i, Input::Lost { .. })).count();
        prop_assert_eq!(shown, written, "{}", stdout);
    }
}
