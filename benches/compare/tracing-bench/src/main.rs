//! The `tracing` side of `benches/compare.sh`: COUNT events of an integer
//! and a 5-byte string from THREADS threads, through `tracing-subscriber`'s
//! fmt layer into a file behind `tracing_appender::non_blocking` with its
//! default (lossy) settings, as applications commonly set it up.
//!
//! usage: tracing-bench COUNT THREADS FILE
//!
//! Prints one JSON line: each thread's ns per event (averaged over threads),
//! the wall ns per event, how long dropping the appender's guard took (it
//! flushes the queue to the file), the lines that reached the file and the
//! events lost. The non-blocking writer drops lines silently when its queue
//! is full, so the lines in the file are the only honest count.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Barrier};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: tracing-bench COUNT THREADS FILE");
        std::process::exit(2);
    }
    let count: u64 = args[1].parse().expect("COUNT");
    let threads: u64 = args[2].parse().expect("THREADS");
    let path = &args[3];

    let file = std::fs::File::create(path).expect("create the output file");
    let (writer, guard) = tracing_appender::non_blocking(file);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("install the subscriber");

    let start = Arc::new(Barrier::new(threads as usize + 1));
    let per = count / threads;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let start = Arc::clone(&start);
            let first = per * t;
            let n = if t == threads - 1 { count - first } else { per };
            std::thread::spawn(move || {
                start.wait();
                let began = Instant::now();
                for seq in first..first + n {
                    tracing::info!(seq, msg = "hello", "sample");
                }
                began.elapsed().as_nanos() as f64 / n as f64
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let per_thread: f64 =
        handles.into_iter().map(|h| h.join().unwrap()).sum::<f64>() / threads as f64;
    let wall = began.elapsed();
    let flush_began = Instant::now();
    drop(guard);
    let flush = flush_began.elapsed();

    let lines = BufReader::new(std::fs::File::open(path).expect("open the output file"))
        .lines()
        .count() as u64;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "{{\"count\":{count},\"threads\":{threads},\"ns_per_event\":{per_thread:.3},\"wall_ns_per_event\":{:.3},\"guard_drop_ms\":{:.3},\"events_in_file\":{lines},\"lost\":{},\"bytes\":{bytes}}}",
        wall.as_nanos() as f64 / count as f64,
        flush.as_secs_f64() * 1e3,
        count.saturating_sub(lines),
    );
}
