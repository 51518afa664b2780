//! `ferret emit`: a real provider process that writes sample events, the
//! load generator for tests, demos and benchmarks.

use std::collections::VecDeque;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
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
    /// Thread churn: each thread writes this many events and exits, and new
    /// threads take over until --count events are written, at most
    /// --threads of them alive at once. Event N has seq N.
    #[arg(long, value_name = "N")]
    pub thread_events: Option<u64>,
    /// fork() once about half the events are written: the parent goes on,
    /// and the child, a provider process of its own, writes --count events
    /// on its main thread once its daemon enables it. Each prints a report
    /// (the child's first), with "role" and "pid" in JSON.
    #[arg(long, conflicts_with = "thread_events")]
    pub fork: bool,
    /// The events' level (1-5 or a name)
    #[arg(long, default_value = "information")]
    pub level: Level,
    /// The events' keyword mask (hex)
    #[arg(long, default_value = "0x1", value_parser = parse_hex)]
    pub keywords: u64,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    /// Count exactly the events handed to the ring: write each as a
    /// dynamic event, whose one enable test decides both whether it is
    /// written and whether it is counted (a sample event is tested again
    /// inside the write, so a change of filters between the two tests
    /// would be counted but not written). For tests of filter changes.
    #[arg(long)]
    pub exact: bool,
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
    /// Paced runs only: the longest single write, and the furthest behind
    /// its schedule an event was written.
    max_write: Duration,
    max_lag: Duration,
}

/// What one thread writes: `count` events numbered from `first_seq`.
#[derive(Clone, Copy)]
struct Work {
    provider: Provider,
    desc: &'static EventDescriptor,
    first_seq: u64,
    count: u64,
    /// Events per second for this thread (0: as fast as possible).
    rate: f64,
    /// Count written events in [`PROGRESS`] (for `--fork`, which forks half
    /// way; not otherwise, as it costs an atomic add per event).
    progress: bool,
    /// `--exact`.
    exact: bool,
}

/// Events written so far, when the threads count them.
static PROGRESS: AtomicU64 = AtomicU64::new(0);

fn spawn(
    name: String,
    work: Work,
    barrier: Option<Arc<Barrier>>,
) -> Result<JoinHandle<ThreadResult>> {
    Ok(std::thread::Builder::new().name(name).spawn(move || {
        if let Some(b) = barrier {
            b.wait();
        }
        emit_thread(work)
    })?)
}

fn join(h: JoinHandle<ThreadResult>) -> Result<ThreadResult> {
    h.join()
        .map_err(|_| anyhow::anyhow!("an emit thread panicked"))
}

pub fn run(socket: &Path, a: EmitArgs) -> Result<ExitCode> {
    if a.threads == 0 || a.threads > 4096 {
        bail!("--threads must be 1 to 4096");
    }
    if !a.rate.is_finite() || a.rate < 0.0 {
        bail!("--rate must be a number of events per second, 0 for as fast as possible");
    }
    if a.thread_events == Some(0) {
        bail!("--thread-events must be 1 or more");
    }
    ferret_provider::configure(Options {
        socket: socket.to_path_buf(),
        ..Options::default()
    });
    let provider = Provider::register(&a.provider);
    let desc = descriptor(a.level, a.keywords);
    let status = ferret_provider::link_status();
    let rate = a.rate / a.threads as f64;
    let work = |first_seq, count| Work {
        provider,
        desc,
        first_seq,
        count,
        rate,
        progress: a.fork,
        exact: a.exact,
    };
    let start = Instant::now();
    let mut results = Vec::new();
    let mut threads_started = 0u64;
    let mut extra = serde_json::Map::new();
    match a.thread_events {
        Some(per_thread) => {
            // Short-lived threads, at most --threads alive: each new one
            // starts when the oldest has finished.
            let mut live = VecDeque::new();
            let mut next = 0;
            while next < a.count {
                if live.len() >= a.threads as usize {
                    results.push(join(live.pop_front().expect("not empty"))?);
                }
                let count = per_thread.min(a.count - next);
                let name = format!("emit-{threads_started}");
                live.push_back(spawn(name, work(next, count), None)?);
                next += count;
                threads_started += 1;
            }
            for h in live {
                results.push(join(h)?);
            }
        }
        None => {
            // With --fork the main thread writes a share first, so that the
            // thread that forks holds a ring the child must forget.
            let main_share = if a.fork {
                a.count / (a.threads as u64 + 1)
            } else {
                0
            };
            if main_share > 0 {
                results.push(emit_thread(work(0, main_share)));
            }
            let rest = a.count - main_share;
            // Every thread starts writing at once, so that they all hold
            // rings together.
            let barrier = Arc::new(Barrier::new(a.threads as usize));
            let handles = (0..a.threads)
                .map(|t| {
                    let count =
                        rest / a.threads as u64 + u64::from((t as u64) < rest % a.threads as u64);
                    spawn(format!("emit-{t}"), work(0, count), Some(barrier.clone()))
                })
                .collect::<Result<Vec<_>>>()?;
            threads_started = handles.len() as u64;
            let mut child = None;
            if a.fork {
                // Fork while the threads are writing.
                while PROGRESS.load(Ordering::Relaxed) < main_share + rest / 2
                    && !handles.iter().all(JoinHandle::is_finished)
                {
                    std::thread::sleep(Duration::from_micros(100));
                }
                match fork()? {
                    None => {
                        // The child has only this thread: the handles name
                        // threads of the parent, which must be neither
                        // joined nor detached here.
                        std::mem::forget(handles);
                        return run_child(&a, provider, desc);
                    }
                    Some(pid) => child = Some(pid),
                }
            }
            for h in handles {
                results.push(join(h)?);
            }
            if let Some(pid) = child {
                extra.insert("role".into(), "parent".into());
                extra.insert("child_pid".into(), pid.into());
                extra.insert("child_exit_code".into(), wait_child(pid)?.into());
            }
        }
    }
    let wall = start.elapsed();
    report(&a, provider, &results, wall, threads_started, status, extra)?;
    Ok(ExitCode::SUCCESS)
}

/// The child of `--fork`: a new provider process with only this thread. It
/// waits (at most 10 s) for its daemon to enable it, writes --count events
/// on this thread, whose writer held one of the parent's rings at the fork,
/// and reports.
fn run_child(a: &EmitArgs, provider: Provider, desc: &'static EventDescriptor) -> Result<ExitCode> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !provider.enabled(desc.level, desc.keywords) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let status = ferret_provider::link_status();
    let start = Instant::now();
    let result = emit_thread(Work {
        provider,
        desc,
        first_seq: 0,
        count: a.count,
        rate: a.rate,
        progress: false,
        exact: a.exact,
    });
    let mut extra = serde_json::Map::new();
    extra.insert("role".into(), "child".into());
    report(a, provider, &[result], start.elapsed(), 1, status, extra)?;
    Ok(ExitCode::SUCCESS)
}

/// fork(2): `None` in the child, the child's pid in the parent.
fn fork() -> Result<Option<u32>> {
    // SAFETY: the child goes on with this thread only and never joins the
    // parent's threads; the provider library's fork handlers leave its own
    // state usable in the child.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error().into()),
        0 => Ok(None),
        pid => Ok(Some(pid as u32)),
    }
}

/// Waits for the child of `--fork`: its exit code, or 128 + the signal that
/// ended it.
fn wait_child(pid: u32) -> Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        if r == pid as libc::pid_t {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e.into());
        }
    }
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}

/// Prints what this process wrote: one JSON object, with `extra` merged in,
/// or a line of text.
fn report(
    a: &EmitArgs,
    provider: Provider,
    results: &[ThreadResult],
    wall: Duration,
    threads_started: u64,
    status: ferret_provider::LinkStatus,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    let written: u64 = results.iter().map(|r| r.written).sum();
    // Attached at the start and not at the end: the daemon died or dropped
    // this process while it wrote, and the events it did not take are a
    // failure to report, not a session that simply did not want them.
    let daemon_went_away = status.connected && !ferret_provider::link_status().connected;
    let paced = a.rate > 0.0;
    let max_write = results
        .iter()
        .map(|r| r.max_write)
        .max()
        .unwrap_or_default();
    let max_lag = results.iter().map(|r| r.max_lag).max().unwrap_or_default();
    let dropped = provider.events_dropped();
    let busy: Vec<&ThreadResult> = results.iter().filter(|r| r.written > 0).collect();
    let per_thread_ns = busy
        .iter()
        .map(|r| r.elapsed.as_nanos() as f64 / r.written as f64)
        .sum::<f64>()
        / busy.len().max(1) as f64;
    let wall_ns = if a.count > 0 {
        wall.as_nanos() as f64 / a.count as f64
    } else {
        0.0
    };
    if a.json {
        let mut v = serde_json::json!({
            "provider": a.provider,
            "count": a.count,
            "threads": a.threads,
            "enabled_events": written,
            "dropped": dropped,
            "wall_ns": wall.as_nanos() as u64,
            "ns_per_event": per_thread_ns,
            "wall_ns_per_event": wall_ns,
            "connected": status.connected,
            "pid": std::process::id(),
            "threads_started": threads_started,
            "max_write_us": paced.then_some(max_write.as_micros() as u64),
            "max_lag_ms": paced.then_some(max_lag.as_millis() as u64),
        });
        if let Some(map) = v.as_object_mut() {
            map.extend(extra);
        }
        outln!("{v}");
    } else {
        let who = match extra.get("role").and_then(|r| r.as_str()) {
            Some(role) => format!("{role} pid {}: ", std::process::id()),
            None => String::new(),
        };
        outln!(
            "{who}wrote {written} of {} events over {threads_started} thread(s) in {:.1} ms: {per_thread_ns:.1} ns per event per thread, {wall_ns:.1} ns wall per event; {dropped} dropped",
            a.count,
            wall.as_secs_f64() * 1e3
        );
        if written < a.count && !daemon_went_away {
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
    // The parent of --fork reports after its child: the child's report
    // must be out of its buffer before the child exits.
    std::io::Write::flush(&mut std::io::stdout())?;
    if daemon_went_away && written < a.count {
        bail!(
            "the daemon went away while ferret emit wrote: {} of {} events were not written",
            a.count - written,
            a.count
        );
    }
    Ok(())
}

/// The keyword mask `--keywords` defaults to.
const DEFAULT_KEYWORDS: u64 = 0x1;

/// Writes one sample event. With the default keyword mask it goes through
/// `write_event!`, as an instrumented program's events do: a call site per
/// level, whose typed fields are encoded by code made for their types.
/// Another mask is known only at run time, so those events go through
/// `Provider::write` and its checked values. Both write the same event
/// type (name, id, level, keywords and fields).
#[inline(always)]
fn write_sample(w: &Work, seq: u64) {
    let p = w.provider;
    // One call site per level, as the macro takes the level as a name.
    macro_rules! sample {
        ($level:ident) => {
            ferret_provider::write_event!(
                p, "Sample", id: 1, level: $level, keywords: DEFAULT_KEYWORDS,
                seq = seq, msg = "hello"
            )
        };
    }
    match (w.desc.keywords, w.desc.level) {
        (DEFAULT_KEYWORDS, Level::Critical) => sample!(Critical),
        (DEFAULT_KEYWORDS, Level::Error) => sample!(Error),
        (DEFAULT_KEYWORDS, Level::Warning) => sample!(Warning),
        (DEFAULT_KEYWORDS, Level::Information) => sample!(Information),
        (DEFAULT_KEYWORDS, Level::Verbose) => sample!(Verbose),
        _ => p.write(w.desc, &[Value::U64(seq), Value::Str("hello")]),
    }
}

/// Writes one sample as a dynamic event if the provider is enabled for it,
/// and says whether it did, from the same test (`--exact`).
fn write_exact(w: &Work, seq: u64) -> bool {
    let mut event = w
        .provider
        .dynamic_event("Sample", w.desc.level, w.desc.keywords);
    if !event.is_enabled() {
        return false;
    }
    event
        .id(1)
        .field("seq", Value::U64(seq))
        .field("msg", Value::Str("hello"))
        .write();
    true
}

fn emit_thread(w: Work) -> ThreadResult {
    let start = Instant::now();
    let mut written = 0;
    let mut max_write = Duration::ZERO;
    let mut max_lag = Duration::ZERO;
    let interval = (w.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / w.rate));
    for i in 0..w.count {
        let seq = w.first_seq + i;
        let Some(interval) = interval else {
            // As fast as possible: nothing but the write, so that the
            // figures measure the provider.
            if w.exact {
                written += u64::from(write_exact(&w, seq));
            } else if w.provider.enabled(w.desc.level, w.desc.keywords) {
                write_sample(&w, seq);
                written += 1;
            }
            if w.progress {
                PROGRESS.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        };
        let due = start + interval.mul_f64(i as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let before = Instant::now();
        max_lag = max_lag.max(before.saturating_duration_since(due));
        if w.exact {
            written += u64::from(write_exact(&w, seq));
        } else if w.provider.enabled(w.desc.level, w.desc.keywords) {
            write_sample(&w, seq);
            written += 1;
        }
        max_write = max_write.max(before.elapsed());
        if w.progress {
            PROGRESS.fetch_add(1, Ordering::Relaxed);
        }
    }
    ThreadResult {
        written,
        elapsed: start.elapsed(),
        max_write,
        max_lag,
    }
}
