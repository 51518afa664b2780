//! `ferret emit`: a real provider process that writes sample events, the
//! load generator for tests, demos and benchmarks.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use ferret_abi::Level;
use ferret_provider::{EventDescriptor, FieldDesc, FieldType, Options, Provider, Value};

#[derive(Args, Debug)]
pub struct EmitArgs {
    /// The provider's name
    #[arg(long)]
    pub provider: String,
    /// Events to write in all
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Threads to split them over
    #[arg(long, default_value_t = 1)]
    pub threads: u32,
    /// Events per second in all (0: as fast as possible)
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// The events' level (1-5 or a name)
    #[arg(long, default_value = "information")]
    pub level: Level,
    /// The events' keyword mask (hex)
    #[arg(long, default_value = "0x1", value_parser = parse_hex)]
    pub keywords: u64,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

fn parse_hex(s: &str) -> Result<u64, String> {
    let d = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u64::from_str_radix(d, 16).map_err(|_| format!("'{s}' is not a hex keyword mask"))
}

const FIELDS: &[FieldDesc] = &[
    FieldDesc::new("seq", FieldType::U64),
    FieldDesc::new("msg", FieldType::Str),
];

/// One descriptor per level, so `--level` changes the declared level
/// without building descriptors at run time.
static SAMPLES: [EventDescriptor; 5] = [
    EventDescriptor::new(1, "Sample", Level::Critical, 0, 0, FIELDS),
    EventDescriptor::new(1, "Sample", Level::Error, 0, 0, FIELDS),
    EventDescriptor::new(1, "Sample", Level::Warning, 0, 0, FIELDS),
    EventDescriptor::new(1, "Sample", Level::Information, 0, 0, FIELDS),
    EventDescriptor::new(1, "Sample", Level::Verbose, 0, 0, FIELDS),
];

/// A descriptor with the requested keywords: those are part of the event
/// type, so a mask other than the built-in one gets a leaked descriptor
/// (once per process).
fn descriptor(level: Level, keywords: u64) -> &'static EventDescriptor {
    let base = &SAMPLES[level as usize - 1];
    if keywords == base.keywords {
        return base;
    }
    Box::leak(Box::new(EventDescriptor::new(
        1, "Sample", level, keywords, 0, FIELDS,
    )))
}

struct ThreadResult {
    written: u64,
    elapsed: Duration,
}

pub fn run(socket: &Path, a: EmitArgs) -> Result<ExitCode> {
    if a.threads == 0 || a.threads > 4096 {
        bail!("--threads must be 1 to 4096");
    }
    if !a.rate.is_finite() || a.rate < 0.0 {
        bail!("--rate must be a number of events per second, 0 for as fast as possible");
    }
    ferret_provider::configure(Options {
        socket: socket.to_path_buf(),
        ..Options::default()
    });
    let provider = Provider::register(&a.provider);
    let desc = descriptor(a.level, a.keywords);
    let status = ferret_provider::link_status();
    let per_thread_rate = a.rate / a.threads as f64;
    let start = Instant::now();
    let handles: Vec<_> = (0..a.threads)
        .map(|t| {
            let n = a.count / a.threads as u64 + u64::from((t as u64) < a.count % a.threads as u64);
            std::thread::Builder::new()
                .name(format!("emit-{t}"))
                .spawn(move || emit_thread(provider, desc, n, per_thread_rate))
        })
        .collect::<Result<_, _>>()?;
    let results: Vec<ThreadResult> = handles
        .into_iter()
        .map(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("an emit thread panicked"))
        })
        .collect::<Result<_>>()?;
    let wall = start.elapsed();
    let written: u64 = results.iter().map(|r| r.written).sum();
    let dropped = provider.events_dropped();
    let per_thread_ns = results
        .iter()
        .filter(|r| r.written > 0)
        .map(|r| r.elapsed.as_nanos() as f64 / r.written as f64)
        .sum::<f64>()
        / results.iter().filter(|r| r.written > 0).count().max(1) as f64;
    let wall_ns = if a.count > 0 {
        wall.as_nanos() as f64 / a.count as f64
    } else {
        0.0
    };
    if a.json {
        let v = serde_json::json!({
            "provider": a.provider,
            "count": a.count,
            "threads": a.threads,
            "enabled_events": written,
            "dropped": dropped,
            "wall_ns": wall.as_nanos() as u64,
            "ns_per_event": per_thread_ns,
            "wall_ns_per_event": wall_ns,
            "connected": status.connected,
        });
        println!("{v}");
    } else {
        println!(
            "wrote {written} of {} events over {} thread(s) in {:.1} ms: {per_thread_ns:.1} ns per event per thread, {wall_ns:.1} ns wall per event; {dropped} dropped",
            a.count,
            a.threads,
            wall.as_secs_f64() * 1e3
        );
        if written < a.count {
            let why = match status.last_error {
                Some(e) if !status.connected => format!("not attached to a daemon ({e})"),
                _ => format!(
                    "no running session enabled provider '{}' at level {} with keywords 0x{:x}",
                    a.provider, a.level, a.keywords
                ),
            };
            eprintln!(
                "ferret emit: {} events were not written: {why}",
                a.count - written
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn emit_thread(
    provider: Provider,
    desc: &'static EventDescriptor,
    count: u64,
    rate: f64,
) -> ThreadResult {
    let start = Instant::now();
    let mut written = 0;
    let interval = if rate > 0.0 {
        Some(Duration::from_secs_f64(1.0 / rate))
    } else {
        None
    };
    for seq in 0..count {
        if let Some(interval) = interval {
            let due = start + interval.mul_f64(seq as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        if provider.enabled(desc.level, desc.keywords) {
            provider.write(desc, &[Value::U64(seq), Value::Str("hello")]);
            written += 1;
        }
    }
    ThreadResult {
        written,
        elapsed: start.elapsed(),
    }
}
