//! A daemon killed with SIGKILL in the middle of a burst leaves a log file
//! in which every buffer it wrote stays readable: `ferret fmt` decodes it
//! and exits 0, and when the crash tore the last buffer (a write cut short,
//! or pages that never reached the disk) it decodes everything before the
//! tear and says how many bytes it skipped there and why. The provider
//! process goes on running and attaches to the next daemon by itself.
//!
//! `providers_reattach_when_the_daemon_restarts.rs` checks in more detail
//! that the provider never blocks during the outage and that the new
//! daemon's session gets every event from the moment it enables it.

use ferret_testkit as util;

use std::process::Stdio;
use std::time::Duration;

use util::{Env, wait_until};

const LIMIT: Duration = Duration::from_secs(30);

/// `ferret fmt --format json FILE`: exit status, the events' `seq`
/// fields, and stderr.
fn fmt(env: &Env, file: &std::path::Path) -> (bool, Vec<u64>, String) {
    let out = env.run(&["fmt", "--format", "json", file.to_str().unwrap()]);
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let seqs = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .filter(|e| e.get("event").is_some())
        .map(|e| e["fields"]["seq"].as_u64().expect("seq"))
        .collect();
    (
        out.status.success(),
        seqs,
        String::from_utf8(out.stderr).expect("utf-8"),
    )
}

/// Kills the provider process when the test ends, passed or not: it was
/// asked for far more events than the test waits for.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The file offset and record bytes of the last good buffer of `path` that
/// holds more than a few events (the very last may be a flush's copy of a
/// nearly empty buffer).
fn last_buffer(path: &std::path::Path) -> (u64, u64) {
    let file = std::fs::File::open(path).expect("open");
    let mut reader = ferret_format::LogReader::new(file).expect("a log file");
    let mut last = None;
    while let Some(item) = reader.next() {
        if let ferret_format::Item::Buffer(b) = item.expect("read") {
            if b.records.len() > 1000 {
                last = Some((b.offset, b.records.len() as u64));
            }
        }
    }
    last.expect("a buffer")
}

#[test]
fn every_buffer_written_before_a_sigkill_decodes_and_a_torn_tail_is_reported() {
    let mut env = Env::new();
    let log = env.path("crash.ferret");
    // Small buffers and a short flush timer: buffers reach the file all
    // through the burst, so the kill lands between and during writes.
    env.start(
        "crash",
        "E2E.Crash",
        &log,
        &["--buffer-size", "16", "--flush-timer", "0.05"],
    );
    let mut emitter = KillOnDrop(
        env.command(&[
            "emit",
            "--provider",
            "E2E.Crash",
            "--count",
            "100000000",
            "--rate",
            "20000",
        ])
        .env("FERRET_RECONNECT_MS", "50")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn emit"),
    );

    // Wait until the daemon says buffers are in the file, then kill it
    // while the burst goes on.
    let mut written = 0;
    wait_until(LIMIT, "buffers written to the log", || {
        written = env.session("crash").counters.buffers_written;
        written >= 8
    });
    env.kill_daemon();

    // Every buffer the daemon had written decodes: the events run from the
    // first without a gap, and fmt reports no damage and succeeds.
    let (ok, seqs, stderr) = fmt(&env, &log);
    assert!(ok, "fmt failed after the crash: {stderr}");
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    let summary = env.ok(&["fmt", "--summary", log.to_str().unwrap()]);
    let read: u64 = summary
        .lines()
        .find_map(|l| l.strip_prefix("Buffers:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no buffer count in the summary:\n{summary}"));
    assert!(
        read >= written,
        "{read} buffers decode, the daemon had reported {written} written:\n{summary}"
    );
    assert!(
        summary.contains("no trailer (still running, or the daemon did not stop cleanly)"),
        "{summary}"
    );

    // A crash in the middle of a write (or a power loss before the last
    // pages reached the disk) leaves the last buffer cut short. fmt decodes
    // every event before the tear, exits 0 and says what it skipped and why.
    let torn = env.path("torn.ferret");
    std::fs::copy(&log, &torn).expect("copy");
    let len = std::fs::metadata(&torn).unwrap().len();
    let (last_offset, last_records) = last_buffer(&torn);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&torn)
        .expect("open the copy");
    let header = ferret_format::BUFFER_HEADER_LEN as u64;
    file.set_len(last_offset + header + last_records / 2)
        .expect("tear the last buffer");
    drop(file);
    let (ok, torn_seqs, stderr) = fmt(&env, &torn);
    assert!(ok, "fmt must succeed on a torn tail: {stderr}");
    assert!(!torn_seqs.is_empty() && torn_seqs.len() < seqs.len());
    assert_eq!(torn_seqs[..], seqs[..torn_seqs.len()], "a prefix, in order");
    let lines: Vec<&str> = stderr.lines().collect();
    // One line about the tear, and one that the log has no trailer, with
    // what 'ferret recover' may save.
    assert_eq!(lines.len(), 2, "two lines: {stderr}");
    assert!(
        lines[1].starts_with(&format!(
            "ferret fmt: {}: no trailer after the last ",
            torn.display()
        )) && lines[1].ends_with(
            "; if the daemon was killed, 'ferret recover' may save the events it had not written"
        ),
        "{stderr}"
    );
    // For example: "skipped 15384 bytes at offset 1069056: file ends
    // inside a buffer (15384 of 16375 bytes present)".
    let prefix = format!("ferret fmt: {}: skipped ", torn.display());
    let rest = lines[0]
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{stderr}"));
    let skipped: u64 = rest.split(' ').next().unwrap().parse().expect("a count");
    assert!(skipped > 0 && skipped < len, "{stderr}");
    assert!(
        rest.contains(" bytes at offset ")
            && rest.contains(&format!(": file ends inside a buffer ({skipped} of ")),
        "{stderr}"
    );

    // The provider process is still running, writing nothing, and attaches
    // to the next daemon on the same socket without being restarted.
    assert!(
        emitter.0.try_wait().expect("try_wait").is_none(),
        "emit lives"
    );
    env.start_daemon();
    env.start("after", "E2E.Crash", &env.path("after.ferret"), &[]);
    wait_until(LIMIT, "events from the same provider process", || {
        env.session("after").counters.events > 0
    });
}
