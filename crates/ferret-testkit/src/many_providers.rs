//! The many-providers program (see [`crate::programs`]): a provider process that registers many
//! providers, for the registration benchmark (benches/registration.sh) and
//! the end-to-end test that many providers from several processes are all
//! routed (crates/ferret-cli/tests/many_providers_register_and_route_exactly.rs).
//! It is not part of Ferret's user interface.
//!
//! It registers `--providers N` providers called `PREFIX0` to `PREFIX{N-1}`
//! through `ferret-provider`, timing the registrations, then writes
//! `--events K` events (one `u64` field, `seq`) from every provider that a
//! session enables, and prints one JSON line:
//! `{"pid":..,"registered":..,"register_ns":..,"enabled":..,"written":..}`.

use std::path::PathBuf;
use std::time::Instant;

use ferret_provider::{EventDescriptor, FieldDesc, FieldType, Level, Options, Provider, Value};

static SAMPLE: EventDescriptor = EventDescriptor::new(
    1,
    "Sample",
    Level::Information,
    0x1,
    0,
    &[FieldDesc::new("seq", FieldType::U64)],
);

struct Args {
    socket: PathBuf,
    prefix: String,
    providers: u32,
    events: u64,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        socket: ferret_abi::paths::socket_path(None),
        prefix: "Many.P".into(),
        providers: 1024,
        events: 0,
    };
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--socket" => args.socket = PathBuf::from(value()?),
            "--prefix" => args.prefix = value()?,
            "--providers" => {
                args.providers = value()?.parse().map_err(|_| "--providers needs a number")?
            }
            "--events" => args.events = value()?.parse().map_err(|_| "--events needs a number")?,
            _ => return Err(format!("unexpected argument '{a}'")),
        }
    }
    Ok(args)
}

/// Runs the program with `args` (its command line after the program's
/// name); returns its exit status.
pub fn main(args: impl Iterator<Item = String>) -> i32 {
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ferret-many-providers: {e}");
            return 2;
        }
    };
    ferret_provider::configure(Options {
        socket: args.socket.clone(),
        ..Options::default()
    });
    let start = Instant::now();
    let providers: Vec<Provider> = (0..args.providers)
        .map(|i| Provider::register(&format!("{}{i}", args.prefix)))
        .collect();
    let register_ns = start.elapsed().as_nanos();
    let mut enabled = 0u64;
    let mut written = 0u64;
    for p in &providers {
        if !p.enabled(SAMPLE.level, SAMPLE.keywords) {
            continue;
        }
        enabled += 1;
        for seq in 0..args.events {
            p.write(&SAMPLE, &[Value::U64(seq)]);
            written += 1;
        }
    }
    let dropped: u64 = providers.iter().map(Provider::events_dropped).sum();
    println!(
        "{{\"pid\":{},\"registered\":{},\"register_ns\":{register_ns},\"enabled\":{enabled},\"written\":{written},\"dropped\":{dropped}}}",
        std::process::id(),
        providers.len(),
    );
    0
}
