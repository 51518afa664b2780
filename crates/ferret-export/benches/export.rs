//! Export speed per format, in events per second, on a trace shaped like
//! `ferret emit`'s: one event type with a u64 and a 5-byte string, two
//! threads, and an activity every thousand events. Writers write to a
//! sink (CTF to a temporary directory), so the figures are the writers'
//! own cost, not the disk's.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferret_abi::Guid;
use ferret_abi::payload::Value;
use ferret_abi::record::{FieldMeta, FieldType};
use ferret_decode::{DecodedProvider, Entry, Event, EventType};
use ferret_export::{Trace, write_chrome, write_ctf, write_perfetto};

const EVENTS: u64 = 200_000;

fn trace() -> Trace {
    let provider = Arc::new(DecodedProvider {
        name: "Bench.Export".into(),
        guid: Guid::default(),
        pid: 1,
    });
    let ty = |name: &str, opcode, fields: Vec<FieldMeta>| EventType {
        name: name.into(),
        event_id: 1,
        level: 4,
        opcode,
        keywords: 1,
        fields,
        provider: provider.clone(),
    };
    let sample = ty(
        "Sample",
        0,
        vec![
            FieldMeta {
                name: "seq".into(),
                ty: FieldType::U64,
            },
            FieldMeta {
                name: "msg".into(),
                ty: FieldType::Str,
            },
        ],
    );
    let start = ty("Work", 1, vec![]);
    let stop = ty("Work", 2, vec![]);
    let mut trace = Trace::new();
    for i in 0..EVENTS {
        let id = Some(Guid([(i / 1000) as u8; 16]));
        let (t, values, activity) = match i % 1000 {
            0 => (&start, vec![], id),
            999 => (&stop, vec![], id),
            _ => (&sample, vec![Value::U64(i), Value::Str("hello")], None),
        };
        trace.add(&Entry::Event(Event {
            timestamp_ns: 1_796_000_000_000_000_000 + i * 30,
            ty: t,
            process: "bench",
            pid: 1,
            tid: 1 + (i % 2) as u32,
            values: &values,
            activity_id: activity,
            related_activity_id: None,
        }));
    }
    trace.finish();
    trace
}

fn bench(c: &mut Criterion) {
    let trace = trace();
    let mut g = c.benchmark_group("export");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    g.bench_function("perfetto", |b| {
        b.iter(|| write_perfetto(&trace, &mut std::io::sink(), &mut |_| {}).unwrap())
    });
    g.bench_function("chrome", |b| {
        b.iter(|| write_chrome(&trace, &mut std::io::sink(), &mut |_| {}).unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    g.bench_function("ctf", |b| {
        b.iter(|| write_ctf(&trace, dir.path(), &mut |_| {}).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
