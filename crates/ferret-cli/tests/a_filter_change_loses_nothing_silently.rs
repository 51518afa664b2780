//! Whatever `disable`, `update -p`, a narrowing `enable` or `stop` do to a
//! running session, the events a provider wrote while the session enabled
//! it are in the session's log or counted lost for it (in its counters and
//! as LOST records in the log): none vanish unseen.
//!
//! The plain provider is `ferret emit --exact` under load, changed
//! mid-stream: each of its events is written or not by one enable test,
//! which is also what it counts, and the session is the only one enabling
//! the provider, so emit's count is exactly what was written while the
//! session enabled it. The `tracing` program is this test process with
//! `ferret_tracing::layer`: its threads write every event while the session
//! enables it and the change comes at once after, while the events are
//! still in the rings.

use ferret_testkit as util;

use std::path::Path;
use std::time::Duration;

use ferret_abi::proto::{ProviderSpec, SessionRef, UpdateRequest};
use ferret_abi::{EnableFilter, Level};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::prelude::*;
use util::{Env, lost_records, wait_until};

const LIMIT: Duration = Duration::from_secs(30);
const RUNS: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    Disable,
    /// `update -p` with a list that no longer holds the provider.
    Update,
    /// `enable` with a filter that no longer takes the events.
    Narrow,
    Stop,
}

/// What a session's log and counters hold for one provider.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Events of the provider in the log.
    logged: u64,
    /// Sum of the LOST records' counts in the log.
    lost_records: u64,
    /// The session's lost counter.
    lost_counted: u64,
    /// The session's event counter.
    counted: u64,
}

fn outcome(env: &Env, name: &str, log: &Path, provider: &str) -> Outcome {
    let info = env.session(name);
    assert_eq!(info.state.name(), "STOPPED", "{info:?}");
    let decoded = util::decode(log);
    assert!(decoded.damage.is_empty(), "{:?}", decoded.damage);
    let logged = decoded
        .events
        .iter()
        .filter(|e| e.provider == provider)
        .count() as u64;
    Outcome {
        logged,
        lost_records: lost_records(log),
        lost_counted: info.counters.events_lost,
        counted: info.counters.events,
    }
}

/// Checks the promise for one run: what was written while the session
/// enabled the provider is in the log or counted lost, in both places.
fn check(run: usize, verb: Verb, written: u64, o: &Outcome) {
    assert_eq!(
        o.logged + o.lost_counted,
        written,
        "run {run}, {verb:?}: {written} written while enabled, {o:?}"
    );
    assert_eq!(o.lost_records, o.lost_counted, "run {run}, {verb:?}: {o:?}");
    assert_eq!(o.counted, o.logged, "run {run}, {verb:?}: {o:?}");
}

const EMIT_PROVIDER: &str = "E2E.FilterChange";
const EMIT_COUNT: u64 = 100_000;

fn change(env: &Env, verb: Verb, name: &str, provider: &str) {
    match verb {
        Verb::Disable => env.ok(&["disable", name, provider]),
        Verb::Update => env.ok(&["update", name, "-p", "E2E.Elsewhere"]),
        Verb::Narrow => env.ok(&["enable", name, &format!("{provider}:error")]),
        Verb::Stop => env.ok(&["stop", name]),
    };
}

fn emit_under_a_change(verb: Verb) {
    let env = Env::new();
    for run in 0..RUNS {
        let name = format!("emit{run}");
        let log = env.path(&format!("{name}.ferret"));
        env.start(&name, &format!("{EMIT_PROVIDER}:verbose"), &log, &[]);
        let count = EMIT_COUNT.to_string();
        let mut emit = env.spawn(&[
            "emit",
            "--provider",
            EMIT_PROVIDER,
            "--count",
            &count,
            "--threads",
            "2",
            "--rate",
            "400000",
            "--exact",
            "--json",
        ]);
        wait_until(LIMIT, "the session to take events", || {
            env.session(&name).counters.events >= 2_000
        });
        change(&env, verb, &name, EMIT_PROVIDER);
        let lines = emit.read_to_end(LIMIT);
        assert!(emit.wait(LIMIT).success(), "{}", emit.stderr());
        let report: serde_json::Value =
            serde_json::from_str(lines.last().expect("emit's report")).expect("json");
        let written = report["enabled_events"].as_u64().expect("enabled_events");
        assert!(
            written < EMIT_COUNT,
            "run {run}: the change came after emit had finished: {report}"
        );
        if verb != Verb::Stop {
            env.ok(&["stop", &name]);
        }
        check(
            run,
            verb,
            written,
            &outcome(&env, &name, &log, EMIT_PROVIDER),
        );
    }
}

#[test]
fn disable_under_emit_loses_nothing_silently() {
    emit_under_a_change(Verb::Disable);
}

#[test]
fn update_providers_under_emit_loses_nothing_silently() {
    emit_under_a_change(Verb::Update);
}

#[test]
fn narrowing_enable_under_emit_loses_nothing_silently() {
    emit_under_a_change(Verb::Narrow);
}

#[test]
fn stop_under_emit_loses_nothing_silently() {
    emit_under_a_change(Verb::Stop);
}

const TRACING_PROVIDER: &str = "E2E.FilterChangeTracing";
const TRACING_THREADS: u64 = 4;
const TRACING_CALLS: u64 = 500;

/// The same call sites every run: a span around an event, so that each
/// call writes three events (span start, the event, span stop).
fn traced_work(thread: u64, n: u64) {
    let _span = tracing::info_span!("work", thread, n).entered();
    tracing::info!(thread, n, "step");
}

/// Sends the change from this process, so that it reaches the daemon
/// within microseconds of the last event, while the events are still in
/// the rings.
fn change_now(env: &Env, verb: Verb, name: &str) {
    let mut client = env.client();
    let target = SessionRef::Name(name.to_string());
    match verb {
        Verb::Disable => client.disable(&target, TRACING_PROVIDER).map(drop),
        Verb::Update => client
            .update(
                &target,
                UpdateRequest {
                    providers: Some(vec![ProviderSpec {
                        name: "E2E.Elsewhere".into(),
                        filter: EnableFilter::level(Level::Verbose),
                    }]),
                    ..UpdateRequest::default()
                },
                None,
            )
            .map(drop),
        Verb::Narrow => client
            .enable(
                &target,
                ProviderSpec {
                    name: TRACING_PROVIDER.into(),
                    filter: EnableFilter::level(Level::Error),
                },
            )
            .map(drop),
        Verb::Stop => client.stop(&target, true).map(drop),
    }
    .expect("the change");
}

#[test]
fn every_verb_under_a_tracing_program_loses_nothing_silently() {
    let env = Env::new();
    assert!(ferret_provider::configure(ferret_provider::Options {
        socket: env.socket.clone(),
        ..ferret_provider::Options::default()
    }));
    tracing_subscriber::registry()
        .with(ferret_tracing::layer(TRACING_PROVIDER))
        .init();
    for verb in [Verb::Disable, Verb::Update, Verb::Narrow, Verb::Stop] {
        for run in 0..RUNS {
            let name = format!("tr{verb:?}{run}");
            let log = env.path(&format!("{name}.ferret"));
            env.start(&name, &format!("{TRACING_PROVIDER}:verbose"), &log, &[]);
            // The bridge's call sites follow the session once tracing's
            // interest cache has been rebuilt for it.
            wait_until(LIMIT, "tracing's max level to be TRACE", || {
                LevelFilter::current() == LevelFilter::TRACE
            });
            // The bridge's watcher rebuilds tracing's call-site interest
            // cache on its own thread, and a call site it has not reached
            // yet is still off; rebuilding it here too, now that the
            // session enables the provider, makes every call below write.
            tracing::callsite::rebuild_interest_cache();
            let threads: Vec<_> = (0..TRACING_THREADS)
                .map(|t| {
                    std::thread::spawn(move || {
                        for n in 0..TRACING_CALLS {
                            traced_work(t, n);
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().expect("writer thread");
            }
            // Nothing changed the session while they wrote: every event
            // was written while it enabled the provider.
            change_now(&env, verb, &name);
            if verb != Verb::Stop {
                env.ok(&["stop", &name]);
            }
            let written = TRACING_THREADS * TRACING_CALLS * 3;
            check(
                run,
                verb,
                written,
                &outcome(&env, &name, &log, TRACING_PROVIDER),
            );
            wait_until(LIMIT, "tracing's max level to be OFF", || {
                LevelFilter::current() == LevelFilter::OFF
            });
        }
    }
}
