//! What a `tracing` event or span costs a program that has added
//! `ferret_tracing::layer`, when no session wants it and when one does.
//!
//! Runs a real daemon in this process (`ferret_daemon::run` on a socket in
//! a temporary directory) with an in-memory session, so that enabled
//! events go through the layer into real rings and a real drain empties
//! them. As in the provider's own bench, enabled cases are timed in bursts
//! of at most 10,000 iterations with an untimed flush between bursts, so
//! they measure writing into a ring with room.
//!
//! - `disabled/*`: the layer installed, no session enabling its provider,
//!   against an empty loop: `tracing`'s own level check turns the call
//!   site away.
//! - `enabled/*`: an event with a u64 and a 5-byte string (the shape
//!   `ferret emit` writes), one inside a span, and a span created, entered,
//!   exited and closed (an activity's start and stop events).
//!
//! `cargo bench -p ferret-tracing --bench layer`. BENCHMARKS.md has
//! figures.

#[path = "../../ferret-provider/tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{Daemon, bench_in_bursts, wait_until};
use criterion::{Criterion, criterion_group, criterion_main};
use ferret_provider::Level;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::prelude::*;

const PROVIDER: &str = "Bench.Tracing";

fn disabled(c: &mut Criterion) {
    assert_eq!(LevelFilter::current(), LevelFilter::OFF);
    let mut g = c.benchmark_group("disabled");
    let mut seq = 0u64;
    g.bench_function("empty_loop", |b| {
        b.iter(|| {
            seq += 1;
            black_box(seq)
        })
    });
    g.bench_function("info_event", |b| {
        b.iter(|| {
            seq += 1;
            tracing::info!(seq, msg = "hello", "sample");
        })
    });
    g.bench_function("info_span", |b| {
        b.iter(|| {
            seq += 1;
            let _s = tracing::info_span!("unit", seq).entered();
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
    let provider = ferret_provider::Provider::register(PROVIDER);
    bench_in_bursts(g, daemon, "bench", name, || provider.events_dropped(), f);
}

fn enabled(c: &mut Criterion, daemon: &Daemon) {
    daemon.start_session("bench", PROVIDER, Level::Verbose, 0, None);
    wait_until(
        Duration::from_secs(10),
        "tracing to see the session",
        || LevelFilter::current() == LevelFilter::TRACE,
    );
    let mut g = c.benchmark_group("enabled");
    let mut seq = 0u64;
    counted(&mut g, daemon, "info_event", || {
        seq += 1;
        tracing::info!(seq, msg = "hello", "sample");
    });
    {
        let _span = tracing::info_span!("outer").entered();
        counted(&mut g, daemon, "info_event_in_span", || {
            seq += 1;
            tracing::info!(seq, msg = "hello", "sample");
        });
    }
    counted(&mut g, daemon, "info_span", || {
        seq += 1;
        let _s = tracing::info_span!("unit", seq).entered();
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let daemon = Daemon::start();
    daemon.configure_providers();
    tracing_subscriber::registry()
        .with(ferret_tracing::layer(PROVIDER))
        .init();
    wait_until(
        Duration::from_secs(10),
        "the provider to attach with nothing enabled",
        || ferret_provider::link_status().connected && LevelFilter::current() == LevelFilter::OFF,
    );
    disabled(c);
    enabled(c, &daemon);
}

criterion_group! {
    name = layer;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(layer);
