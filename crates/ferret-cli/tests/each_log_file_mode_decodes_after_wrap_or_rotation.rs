//! Every log file mode keeps the events it promises, and every file (and
//! real-time stream) it produces decodes on its own after wrapping or
//! rotation: circular keeps the newest, oldest first; new-file rotates into
//! files each readable alone; append adds a second session after the
//! first; sequential stops at its maximum size and counts what it dropped;
//! real-time delivers every event to a consumer; in-memory keeps the
//! newest buffers for a snapshot that does not stop the session.

use ferret_testkit as util;

use std::path::{Path, PathBuf};
use std::time::Duration;

use util::{Env, one_line, seqs};

const LIMIT: Duration = Duration::from_secs(30);

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// Asserts every event entry is a decoded `Sample` event of `provider`:
/// events whose metadata had been lost would not decode to names. (Loss and
/// process-end entries have no `event`.)
fn all_samples_of(entries: &[serde_json::Value], provider: &str) {
    for e in entries.iter().filter(|e| e.get("lost").is_none()) {
        if e.get("process_end").is_some() {
            continue;
        }
        assert_eq!(e["provider"], provider, "{e}");
        assert_eq!(e["event"], "Sample", "{e}");
    }
}

/// Asserts `seqs` is `first..=last` with nothing missing.
fn contiguous(seqs: &[u64], last: u64) {
    let first = seqs[0];
    assert_eq!(*seqs.last().unwrap(), last);
    assert!(
        seqs.iter().copied().eq(first..=last),
        "sequence numbers {first}..={last} are complete and in order"
    );
}

#[test]
fn circular_keeps_the_newest_events_and_reads_them_oldest_first() {
    let env = Env::new();
    let log = env.path("circ.ferret");
    env.start(
        "circ",
        "E2E.Circ",
        &log,
        &[
            "--mode",
            "circular",
            "--buffer-size",
            "16",
            "--max-file-size",
            "256K",
        ],
    );
    let count = 200_000;
    env.emit("E2E.Circ", count, &[]);
    let stopped = env.json(&["stop", "circ"]);
    assert_eq!(stopped["events"], count);
    assert_eq!(stopped["log_file_mode"], "circular");
    // STOPPED is reported only after the file was fsynced.
    assert_eq!(stopped["files_synced"], 1, "{stopped}");
    assert!(
        stopped["buffers_overwritten"].as_u64().unwrap() > 0,
        "{stopped}"
    );
    assert!(file_size(&log) <= 256 * 1024, "the file keeps its size");

    let entries = env.fmt_json(&[&log]);
    all_samples_of(&entries, "E2E.Circ");
    let seqs = seqs(&entries);
    assert!(
        !seqs.is_empty() && (seqs.len() as u64) < count,
        "{}",
        seqs.len()
    );
    assert!(seqs[0] > 0, "the oldest events were overwritten");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "events come oldest first"
    );
    assert_eq!(*seqs.last().unwrap(), count - 1, "the last event is kept");
    if stopped["events_lost"] == 0 {
        contiguous(&seqs, count - 1);
    }
}

/// The files of a new-file series, in order, as far as they exist.
fn series(pattern: &Path) -> Vec<PathBuf> {
    (1..)
        .map(|i| {
            PathBuf::from(ferret_abi::proto::rotated_file_name(
                pattern.to_str().unwrap(),
                i,
            ))
        })
        .take_while(|p| p.exists())
        .collect()
}

#[test]
fn new_file_rotates_into_files_each_decodable_alone() {
    let env = Env::new();
    let dir = env.path("series");
    std::fs::create_dir(&dir).unwrap();
    let pattern = dir.join("trace.ferret");
    env.start(
        "rot",
        "E2E.Rotate",
        &pattern,
        &[
            "--mode",
            "new-file",
            "--buffer-size",
            "16",
            "--max-file-size",
            "256K",
        ],
    );
    let count = 100_000;
    env.emit("E2E.Rotate", count, &[]);
    let stopped = env.json(&["stop", "rot"]);
    assert_eq!(stopped["events"], count);
    assert_eq!(stopped["events_lost"], 0, "{stopped}");
    assert_eq!(stopped["log_buffers_lost"], 0, "{stopped}");

    let files = series(&pattern);
    assert!(files.len() >= 2, "rotated into several files: {files:?}");
    assert_eq!(stopped["files"], files.len() as u64, "{stopped}");
    // Every file of the series was fsynced: the earlier ones when the
    // series moved on, the last before STOPPED.
    assert_eq!(stopped["files_synced"], files.len() as u64, "{stopped}");
    assert!(!pattern.exists(), "the pattern itself names no file");
    assert_eq!(dir.join("trace_1.ferret"), files[0]);
    let mut all = Vec::new();
    for (i, f) in files.iter().enumerate() {
        assert!(
            file_size(f) <= 256 * 1024,
            "{} is within the size",
            f.display()
        );
        // Each file alone, through the command line.
        let entries = env.fmt_json(&[f]);
        all_samples_of(&entries, "E2E.Rotate");
        let s = seqs(&entries);
        if i + 1 < files.len() {
            assert!(!s.is_empty(), "{} holds events", f.display());
        }
        all.extend(s);
    }
    // Together they hold every event exactly once, in order.
    contiguous(&all, count - 1);
    assert_eq!(all[0], 0);
}

#[test]
fn append_adds_a_second_session_after_the_first() {
    let env = Env::new();
    let log = env.path("app.ferret");
    env.start("first", "E2E.AppendA", &log, &[]);
    env.emit("E2E.AppendA", 100, &[]);
    env.ok(&["stop", "first"]);
    let before = file_size(&log);

    env.start("second", "E2E.AppendB", &log, &["--mode", "append"]);
    env.emit("E2E.AppendB", 200, &[]);
    let stopped = env.json(&["stop", "second"]);
    assert_eq!(stopped["log_file_mode"], "append");
    assert_eq!(stopped["files_synced"], 1, "{stopped}");
    assert!(file_size(&log) > before, "the file grew");

    let entries = env.fmt_json(&[&log]);
    let providers: Vec<&str> = entries
        .iter()
        .filter(|e| e.get("event").is_some())
        .map(|e| e["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers.len(), 300);
    assert!(providers[..100].iter().all(|p| *p == "E2E.AppendA"));
    assert!(providers[100..].iter().all(|p| *p == "E2E.AppendB"));
    let s = seqs(&entries);
    contiguous(&s[..100], 99);
    contiguous(&s[100..], 199);
    assert_eq!(util::decode(&log).events.len(), 300);

    // Append to a file that does not exist yet starts a new log.
    let fresh = env.path("fresh.ferret");
    env.start("fresh", "E2E.AppendA", &fresh, &["--mode", "append"]);
    env.emit("E2E.AppendA", 10, &[]);
    env.ok(&["stop", "fresh"]);
    assert_eq!(
        seqs(&env.fmt_json(&[&fresh])),
        (0..10).collect::<Vec<u64>>()
    );

    // A file that is not a Ferret log is refused and left as it was.
    let text = env.path("notes.txt");
    std::fs::write(&text, b"not a trace\n").unwrap();
    let err = env.fails(&[
        "start",
        "bad",
        "-p",
        "E2E.AppendA",
        "-f",
        text.to_str().unwrap(),
        "--mode",
        "append",
    ]);
    assert!(one_line(&err).contains("notes.txt"), "{err}");
    assert_eq!(std::fs::read(&text).unwrap(), b"not a trace\n");
}

#[test]
fn sequential_stops_growing_at_its_maximum_size_and_counts_the_rest() {
    let env = Env::new();
    let log = env.path("seq.ferret");
    env.start(
        "capped",
        "E2E.Capped",
        &log,
        &["--buffer-size", "16", "--max-file-size", "256K"],
    );
    let count = 200_000;
    env.emit("E2E.Capped", count, &[]);
    env.wait_events("capped", count);
    let q = env.json(&["query", "capped"]);
    assert_eq!(q["max_file_bytes"], 256 * 1024);
    let stopped = env.json(&["stop", "capped"]);
    assert_eq!(stopped["events"], count);
    assert_eq!(stopped["files_synced"], 1, "{stopped}");
    assert!(
        stopped["log_buffers_lost"].as_u64().unwrap() > 0,
        "the buffers beyond the size are counted: {stopped}"
    );
    assert!(file_size(&log) <= 256 * 1024, "{}", file_size(&log));
    let text = env.ok(&["query", "capped"]);
    assert!(text.contains("Log Buffers Lost"), "{text}");

    // The file holds the oldest events, undamaged.
    let entries = env.fmt_json(&[&log]);
    all_samples_of(&entries, "E2E.Capped");
    let s = seqs(&entries);
    assert!(!s.is_empty() && (s.len() as u64) < count);
    assert_eq!(s[0], 0);
    contiguous(&s, *s.last().unwrap());
}

#[test]
fn real_time_only_delivers_every_event_to_a_consumer() {
    let env = Env::new();
    env.start_with("live", &["-p", "E2E.Live", "--mode", "real-time"]);
    let q = env.json(&["query", "live"]);
    assert_eq!(q["log_file_mode"], "real-time");
    assert_eq!(q["realtime"], true, "real-time mode implies --realtime");
    let mut tail = env.spawn(&["tail", "live", "--format", "json"]);
    tail.follow();
    util::wait_until(LIMIT, "the consumer to attach", || {
        env.session("live").consumers == 1
    });
    let count = 20_000;
    env.emit("E2E.Live", count, &[]);
    let stopped = env.json(&["stop", "live"]);
    assert_eq!(stopped["events"], count);
    let lines = tail.read_to_end(LIMIT);
    assert!(tail.wait(LIMIT).success(), "{}", tail.stderr());
    let entries: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    all_samples_of(&entries, "E2E.Live");
    assert_eq!(seqs(&entries), (0..count).collect::<Vec<u64>>());
    assert!(
        tail.stderr()
            .contains("session 'live' STOPPED: 20000 events received, 0 missed"),
        "{}",
        tail.stderr()
    );
    assert_eq!(stopped["bytes_written"], 0, "no file was written");
}

#[test]
fn in_memory_keeps_the_newest_buffers_for_a_snapshot_that_does_not_stop_it() {
    let env = Env::new();
    env.start_with(
        "flight",
        &[
            "-p",
            "E2E.Flight",
            "--mode",
            "in-memory",
            "--buffer-size",
            "16",
            "--max-buffers",
            "8",
        ],
    );
    let count = 200_000;
    env.emit("E2E.Flight", count, &[]);
    env.wait_events("flight", count);

    let snap = env.path("snap1.ferret");
    let saved = env.json(&["snapshot", "flight", "-f", snap.to_str().unwrap()]);
    let buffers = saved["buffers"].as_u64().unwrap();
    assert!((1..=8).contains(&buffers), "{saved}");
    assert_eq!(saved["bytes"], file_size(&snap), "{saved}");
    assert_eq!(saved["session"]["state"], "RUNNING");
    let entries = env.fmt_json(&[&snap]);
    all_samples_of(&entries, "E2E.Flight");
    let s = seqs(&entries);
    assert!(!s.is_empty() && (s.len() as u64) < count, "{}", s.len());
    assert!(s.windows(2).all(|w| w[0] < w[1]), "oldest first");
    assert_eq!(*s.last().unwrap(), count - 1, "the newest event is saved");

    // The session goes on collecting; a second snapshot has the new events.
    assert_eq!(env.json(&["query", "flight"])["state"], "RUNNING");
    env.emit("E2E.Flight", 10, &[]);
    env.wait_events("flight", count + 10);
    let snap2 = env.path("snap2.ferret");
    let text = env.ok(&["snapshot", "1", "-f", snap2.to_str().unwrap()]);
    assert!(
        text.starts_with("Saved ") && text.contains(" buffers, "),
        "{text}"
    );
    let s2 = seqs(&env.fmt_json(&[&snap2]));
    assert_eq!(s2[s2.len() - 10..], (0..10).collect::<Vec<u64>>());

    // A snapshot never overwrites a file unless asked.
    let err = env.fails(&["snapshot", "flight", "-f", snap.to_str().unwrap()]);
    assert!(one_line(&err).contains("pass --overwrite"), "{err}");

    let stopped = env.json(&["stop", "flight"]);
    assert_eq!(stopped["events"], count + 10);
    assert!(
        stopped["buffers_overwritten"].as_u64().unwrap() > 0,
        "{stopped}"
    );
    assert_eq!(stopped["log_file_mode"], "in-memory");
}
