//! CTF readers hold time as signed 64-bit nanoseconds (babeltrace2 stops on
//! anything later), so `ferret export --to ctf` of a log whose events fall
//! at 2^63 ns after the UNIX epoch or later is refused in one line and
//! leaves no output, rather than writing a trace nothing can read. Other
//! formats still export it.

use ferret_testkit as util;

use ferret_format::FileHeader;
use util::{Env, one_line};

#[test]
fn a_clock_anchor_past_i64_max_is_refused_for_ctf_only() {
    let env = Env::new();
    let log = env.path("far.ferret");
    env.start("far", "E2E.Far", &log, &[]);
    env.emit("E2E.Far", 10, &[]);
    env.wait_no_providers();
    env.ok(&["stop", "far"]);

    // The same log, its clock anchor moved past 2^63 ns (a valid header).
    let bytes = std::fs::read(&log).unwrap();
    let (mut header, data_offset) = FileHeader::decode_untrusted(&bytes).unwrap();
    header.clock.anchor_unix_ns = (1u64 << 63) + 1_000_000_000;
    let mut edited = header.encode();
    assert_eq!(edited.len() as u64, data_offset);
    edited.extend_from_slice(&bytes[data_offset as usize..]);
    let far = env.path("edited.ferret");
    std::fs::write(&far, edited).unwrap();
    let far = far.to_str().unwrap();

    let out = env.path("far.ctf");
    let err = env.fails(&["export", far, "--to", "ctf", "-o", out.to_str().unwrap()]);
    let line = one_line(&err);
    assert!(
        line.starts_with(&format!("ferret: writing {}: a record is timed ", out.display()))
            && line.ends_with(" ns after the UNIX epoch, past 2262-04-11, which CTF readers cannot hold (babeltrace2 counts nanoseconds in a signed 64-bit integer); export this log to perfetto or chrome instead"),
        "{err}"
    );
    let left: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("far.ctf"))
        .collect();
    assert_eq!(left, Vec::<String>::new());

    let json = env.path("far.json");
    env.ok(&[
        "export",
        far,
        "--to",
        "chrome",
        "-o",
        json.to_str().unwrap(),
    ]);
}
