//! `ferret fmt` and `ferret export` of a log that lost its end, lost,
//! repeated or swapped buffers, or had its header's buffer size changed
//! (with a valid checksum) say so on standard error, one line for each kind
//! of problem, instead of decoding quietly to fewer or more events. They
//! still exit 0 and decode what is there, as for a torn tail (FORMAT.md,
//! "Reading and resynchronising").

use ferret_testkit as util;

use std::path::{Path, PathBuf};

use ferret_format::FileHeader;
use util::Env;

const EVENTS: u64 = 3000;

/// A stopped session's log of 4 KiB buffers, and its bytes cut into the
/// header and the slots.
fn sample(env: &Env) -> (PathBuf, Vec<u8>, Vec<Vec<u8>>) {
    let log = env.path("whole.ferret");
    env.start("whole", "E2E.Whole", &log, &["--buffer-size", "4"]);
    env.emit("E2E.Whole", EVENTS, &[]);
    env.wait_no_providers();
    env.ok(&["stop", "whole"]);
    let bytes = std::fs::read(&log).unwrap();
    let (header, data_offset) = FileHeader::decode_untrusted(&bytes).unwrap();
    let size = header.buffer_size as usize;
    let head = bytes[..data_offset as usize].to_vec();
    let slots: Vec<Vec<u8>> = bytes[data_offset as usize..]
        .chunks(size)
        .map(<[u8]>::to_vec)
        .collect();
    assert!(slots.len() >= 6, "{} slots", slots.len());
    (log, head, slots)
}

fn write(env: &Env, name: &str, head: &[u8], slots: &[&Vec<u8>]) -> PathBuf {
    let path = env.path(name);
    let mut bytes = head.to_vec();
    for s in slots {
        bytes.extend_from_slice(s);
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `ferret fmt FILE --format json`: exit status, events, stderr lines.
fn fmt(env: &Env, path: &Path) -> (bool, usize, Vec<String>) {
    let out = env.run(&["fmt", path.to_str().unwrap(), "--format", "json"]);
    let events = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"event\""))
        .count();
    let stderr = String::from_utf8(out.stderr).unwrap();
    (
        out.status.success(),
        events,
        stderr.lines().map(str::to_string).collect(),
    )
}

const NO_TRAILER: &str = "buffer(s): the session is still running, its daemon was killed, or the file was cut short; if the daemon was killed, 'ferret recover' may save the events it had not written";

#[test]
fn a_whole_log_decodes_without_a_word() {
    let env = Env::new();
    let (log, _, _) = sample(&env);
    assert_eq!(fmt(&env, &log), (true, EVENTS as usize, vec![]));
}

#[test]
fn a_log_cut_at_a_buffer_boundary_says_it_has_no_trailer() {
    let env = Env::new();
    let (_, head, slots) = sample(&env);
    let cut = write(
        &env,
        "cut.ferret",
        &head,
        &slots.iter().take(3).collect::<Vec<_>>(),
    );
    let (ok, events, stderr) = fmt(&env, &cut);
    assert!(ok && events > 0 && events < EVENTS as usize, "{events}");
    assert_eq!(
        stderr,
        [format!(
            "ferret fmt: {}: no trailer after the last 3 {NO_TRAILER}",
            cut.display()
        )]
    );

    let out = env.path("cut.json");
    let export = env.run(&[
        "export",
        cut.to_str().unwrap(),
        "--to",
        "chrome",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(export.status.success());
    let stderr = String::from_utf8(export.stderr).unwrap();
    assert_eq!(
        stderr.lines().next().unwrap(),
        format!(
            "ferret export: {}: no trailer after the last 3 {NO_TRAILER}",
            cut.display()
        )
    );
}

#[test]
fn a_missing_buffer_is_named_by_its_number() {
    let env = Env::new();
    let (_, head, slots) = sample(&env);
    let mut kept: Vec<&Vec<u8>> = slots.iter().collect();
    kept.remove(2);
    let holed = write(&env, "holed.ferret", &head, &kept);
    let (ok, events, stderr) = fmt(&env, &holed);
    assert!(ok && events < EVENTS as usize, "{events}");
    assert_eq!(
        stderr,
        [format!(
            "ferret fmt: {}: 1 buffer(s) missing: no buffer numbered 2; the file was cut or damaged there",
            holed.display()
        )]
    );
}

#[test]
fn repeated_buffers_are_skipped_and_counted() {
    let env = Env::new();
    let (_, head, slots) = sample(&env);
    let mut kept: Vec<&Vec<u8>> = vec![&slots[0]];
    for _ in 0..20 {
        kept.push(&slots[0]);
    }
    kept.extend(slots.iter().skip(1));
    let repeated = write(&env, "repeated.ferret", &head, &kept);
    let (ok, events, stderr) = fmt(&env, &repeated);
    assert!(ok);
    assert_eq!(events, EVENTS as usize);
    assert_eq!(
        stderr,
        [format!(
            "ferret fmt: {}: 20 buffer(s) repeat buffers already read (same number) and were skipped",
            repeated.display()
        )]
    );
}

#[test]
fn swapped_buffers_are_reported_out_of_order() {
    let env = Env::new();
    let (_, head, slots) = sample(&env);
    let mut kept: Vec<&Vec<u8>> = slots.iter().collect();
    // Buffers after the first few, whose events' metadata came before.
    kept.swap(3, 4);
    let swapped = write(&env, "swapped.ferret", &head, &kept);
    let (ok, events, stderr) = fmt(&env, &swapped);
    assert!(ok);
    assert_eq!(events, EVENTS as usize);
    assert_eq!(
        stderr,
        [format!(
            "ferret fmt: {}: 1 buffer(s) out of order (numbered below a buffer before them); their events are decoded where they lie",
            swapped.display()
        )]
    );
}

#[test]
fn a_header_with_another_buffer_size_says_it_has_no_trailer() {
    let env = Env::new();
    let (log, _, slots) = sample(&env);
    let bytes = std::fs::read(&log).unwrap();
    let (mut header, data_offset) = FileHeader::decode_untrusted(&bytes).unwrap();
    header.buffer_size = 16 << 20;
    let mut edited = header.encode();
    assert_eq!(edited.len() as u64, data_offset);
    edited.extend_from_slice(&bytes[data_offset as usize..]);
    let path = env.path("edited.ferret");
    std::fs::write(&path, edited).unwrap();
    let (ok, events, stderr) = fmt(&env, &path);
    assert!(ok && events < EVENTS as usize, "{events}");
    assert!(slots.len() > 1);
    assert_eq!(
        stderr,
        [format!(
            "ferret fmt: {}: no trailer after the last 1 {NO_TRAILER}",
            path.display()
        )]
    );
}
