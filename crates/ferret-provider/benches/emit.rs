//! What writing an event costs the program that writes it.
//!
//! Runs a real daemon in this process (`ferret_daemon::run` on a socket in
//! a temporary directory) so that enabled events go into real rings and a
//! real drain thread empties them into an in-memory session (no disk, so
//! the figures are the producer's, not the file system's).
//!
//! - `disabled/*`: a provider no session enables, against an empty loop.
//! - `enabled/*`: events of a u64 and a 5-byte string (the shape `ferret
//!   emit` writes) through each API, one thread.
//!
//! The enabled benchmarks time bursts of 10,000 iterations and let the
//! drain empty the ring between bursts (untimed), so they measure writing
//! into a ring with room; each prints how many events were dropped (none,
//! unless the machine stalls the drain). Unpaced bursts that outrun the
//! drain are `benches/emit.sh`'s subject.
//!
//! `cargo bench -p ferret-provider --bench emit`. BENCHMARKS.md has
//! figures.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{Daemon, bench_in_bursts, wait_until};
use criterion::{Criterion, criterion_group, criterion_main};
use ferret_provider::{
    EventDescriptor, EventShape, FieldDesc, FieldType, Level, Provider, Value, provider,
    start_activity, write_event,
};

provider!(static ON = "Bench.Enabled");
provider!(static OFF = "Bench.Disabled");

static SAMPLE_ON: EventDescriptor = EventDescriptor::new(
    1,
    "Sample",
    Level::Information,
    0x1,
    0,
    &[
        FieldDesc::new("seq", FieldType::U64),
        FieldDesc::new("msg", FieldType::Str),
    ],
);

/// Starts the daemon and a session that enables `Bench.Enabled` only.
fn setup() -> Daemon {
    let daemon = Daemon::start();
    daemon.configure_providers();
    daemon.start_session("bench", "Bench.Enabled", Level::Verbose, 0, None);
    ON.get();
    OFF.get();
    wait_until(
        Duration::from_secs(10),
        "the session to enable the provider",
        || ON.enabled(Level::Information, 0x1),
    );
    assert!(
        !OFF.enabled(Level::Verbose, 0),
        "no session enables Bench.Disabled"
    );
    daemon
}

fn disabled(c: &mut Criterion) {
    let mut g = c.benchmark_group("disabled");
    let mut seq = 0u64;
    g.bench_function("empty_loop", |b| {
        b.iter(|| {
            seq += 1;
            black_box(seq)
        })
    });
    g.bench_function("write_event", |b| {
        b.iter(|| {
            seq += 1;
            write_event!(OFF, "Sample", level: Information, keywords: 0x1, seq = seq, msg = "hello");
        })
    });
    let off: Provider = OFF.get();
    g.bench_function("provider_write", |b| {
        b.iter(|| {
            seq += 1;
            off.write(&SAMPLE_ON, &[Value::U64(seq), Value::Str("hello")]);
        })
    });
    g.bench_function("dynamic_event", |b| {
        b.iter(|| {
            seq += 1;
            off.dynamic_event("Sample", Level::Information, 0x1)
                .field("seq", Value::U64(seq))
                .field("msg", Value::Str("hello"))
                .write();
        })
    });
    g.finish();
}

/// Runs one enabled benchmark in bursts (see [`bench_in_bursts`]).
fn counted(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    daemon: &Daemon,
    name: &str,
    f: impl FnMut(),
) {
    bench_in_bursts(g, daemon, "bench", name, || ON.events_dropped(), f);
}

fn enabled(c: &mut Criterion, daemon: &Daemon) {
    let mut g = c.benchmark_group("enabled");
    let mut seq = 0u64;
    counted(&mut g, daemon, "write_event", || {
        seq += 1;
        write_event!(ON, "Sample", level: Information, keywords: 0x1, seq = seq, msg = "hello");
    });
    let on: Provider = ON.get();
    counted(&mut g, daemon, "provider_write", || {
        seq += 1;
        on.write(&SAMPLE_ON, &[Value::U64(seq), Value::Str("hello")]);
    });
    {
        // Inside an activity every event carries its 16-byte id.
        let _activity = start_activity!(ON, "Bench", level: Information, keywords: 0x1);
        counted(&mut g, daemon, "write_event_in_activity", || {
            seq += 1;
            write_event!(ON, "Sample", level: Information, keywords: 0x1, seq = seq, msg = "hello");
        });
    }
    counted(&mut g, daemon, "start_and_stop_activity", || {
        seq += 1;
        let _a = start_activity!(ON, "Unit", level: Information, keywords: 0x1, seq = seq);
    });
    counted(&mut g, daemon, "dynamic_event", || {
        seq += 1;
        on.dynamic_event("Sample", Level::Information, 0x1)
            .field("seq", Value::U64(seq))
            .field("msg", Value::Str("hello"))
            .write();
    });
    let shape = EventShape::new("Sample", Level::Information)
        .keywords(0x1)
        .field("seq", FieldType::U64)
        .field("msg", FieldType::Str)
        .intern()
        .expect("shape");
    counted(&mut g, daemon, "interned_shape_write", || {
        seq += 1;
        on.write(shape, &[Value::U64(seq), Value::Str("hello")]);
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let daemon = setup();
    disabled(c);
    enabled(c, &daemon);
}

criterion_group! {
    name = emit;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(emit);
