//! A small instrumented program: a pool of worker threads processing jobs
//! from a queue, traced with the provider library.
//!
//! - The whole run is an activity; each job is an activity of its own,
//!   started by the worker that takes it, related to the run that queued
//!   it, so a log shows which events belong to which job and where each
//!   job came from.
//! - Fixed events use `write_event!`; the per-stage metrics, whose names and
//!   fields come from a table the program reads at run time (as a plug-in or
//!   script would), use the dynamic API.
//!
//! With no daemon running the program runs the same and traces nothing. To
//! trace it (from the repository root):
//!
//! ```sh
//! ferret start workload -p Example.Workload:verbose -f workload.ferret
//! cargo run --release -p ferret-provider --example workload -- 200 4
//! ferret stop workload
//! ferret fmt workload.ferret | head -20
//! ```
//!
//! Arguments: the number of jobs (default 100) and of workers (default 4).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferret_provider::{Guid, Level, Value, activity, provider, start_activity, write_event};

provider!(static WORKLOAD = "Example.Workload");

/// Keywords: what a session can select.
const JOBS: u64 = 0x1;
const METRICS: u64 = 0x2;

/// One unit of work, with the activity that queued it.
struct Job {
    id: u64,
    size: usize,
    queued_by: Option<Guid>,
}

/// The stages a job goes through and the metrics each reports: in a real
/// program this would come from configuration or a plug-in, which is why
/// these events use the dynamic API.
const STAGES: &[(&str, &[&str])] = &[
    ("Parse", &["bytes", "records"]),
    ("Transform", &["records", "changed"]),
    ("Store", &["bytes", "checksum"]),
];

fn main() {
    let mut args = std::env::args().skip(1);
    let jobs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4).max(1);

    // Register now, so that the first event does not wait for the daemon.
    WORKLOAD.get();
    let started = Instant::now();
    let run = start_activity!(WORKLOAD, "Run", level: Information, keywords: JOBS,
        jobs = jobs, workers = workers);

    let (queue, incoming) = mpsc::channel::<Job>();
    let incoming = Arc::new(Mutex::new(incoming));
    let pool: Vec<_> = (0..workers)
        .map(|w| {
            let incoming = Arc::clone(&incoming);
            std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || worker(w, &incoming))
                .expect("spawn worker")
        })
        .collect();

    for id in 0..jobs {
        let job = Job {
            id,
            size: 1024 + (id as usize * 7919) % 65536,
            queued_by: activity::current(),
        };
        write_event!(WORKLOAD, "Queued", level: Verbose, keywords: JOBS, job = id, size = job.size);
        if queue.send(job).is_err() {
            break;
        }
    }
    drop(queue);
    let done: u64 = pool
        .into_iter()
        .map(|t| t.join().expect("worker panicked"))
        .sum();
    let run_id = run.id();
    drop(run);

    println!(
        "{done} of {jobs} jobs done by {workers} workers in {:.1} ms; run activity {}; {} events dropped",
        started.elapsed().as_secs_f64() * 1e3,
        run_id.map_or("- (not traced)".to_string(), |id| id.to_string()),
        WORKLOAD.events_dropped()
    );
}

/// Takes jobs until the queue closes; returns how many it did.
fn worker(index: usize, incoming: &Mutex<mpsc::Receiver<Job>>) -> u64 {
    let mut done = 0;
    loop {
        let next = incoming.lock().map(|rx| rx.recv());
        let Ok(Ok(job)) = next else {
            return done;
        };
        // Work on behalf of the run that queued the job, so that the job's
        // start event names the run as its related activity.
        let _queued_by = job.queued_by.map(activity::enter);
        let _job = start_activity!(WORKLOAD, "Job", level: Information, keywords: JOBS,
            job = job.id, size = job.size, worker = index);
        let checksum = process(&job);
        write_event!(WORKLOAD, "Done", level: Information, keywords: JOBS,
            job = job.id, checksum = checksum);
        done += 1;
    }
}

/// Runs a job's stages, reporting each stage's metrics.
fn process(job: &Job) -> u64 {
    let data: Vec<u8> = (0..job.size).map(|i| (i as u64 * job.id) as u8).collect();
    let mut checksum = 0xcbf2_9ce4_8422_2325u64;
    for byte in &data {
        checksum = (checksum ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
    }
    let records = (job.size / 64) as u64;
    for (stage, metrics) in STAGES {
        let mut event = WORKLOAD.dynamic_event(stage, Level::Verbose, METRICS);
        // Skip building the values when no session wants them.
        if !event.is_enabled() {
            continue;
        }
        for metric in *metrics {
            let value = match *metric {
                "bytes" => Value::U64(job.size as u64),
                "records" => Value::U64(records),
                "changed" => Value::U64(records / 3),
                "checksum" => Value::U64(checksum),
                _ => Value::Str("unknown"),
            };
            event.field(metric, value);
        }
        event.write();
    }
    checksum
}
