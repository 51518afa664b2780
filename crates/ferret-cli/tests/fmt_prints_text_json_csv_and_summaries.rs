//! `ferret fmt` prints what a log holds in each format.

use ferret_testkit as util;

use util::Env;

fn sample_log(env: &Env) -> std::path::PathBuf {
    let log = env.path("fmt.ferret");
    env.start("fmt", "E2E.Fmt:verbose:0x1", &log, &[]);
    env.ok(&[
        "emit",
        "--provider",
        "E2E.Fmt",
        "--count",
        "6",
        "--threads",
        "2",
        "--level",
        "warning",
    ]);
    // The log then ends with the emit process's end.
    env.wait_no_providers();
    env.ok(&["stop", "fmt"]);
    log
}

#[test]
fn text_has_one_line_per_event() {
    let env = Env::new();
    let log = sample_log(&env);
    let out = env.ok(&["fmt", log.to_str().unwrap()]);
    let mut lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 7, "{out}");
    // The emit process's end comes last, after everything it wrote.
    let end: Vec<&str> = lines.pop().unwrap().split(' ').collect();
    assert!(end[0].ends_with('Z'), "{end:?}");
    assert!(end[1].parse::<u32>().is_ok(), "pid in {end:?}");
    assert_eq!(end[2..], ["ENDED", "process", "ferret"]);
    for line in &lines {
        let parts: Vec<&str> = line.splitn(5, ' ').collect();
        assert!(parts[0].ends_with('Z') && parts[0].contains('T'), "{line}");
        assert!(parts[1].contains('.'), "pid.tid in {line}");
        assert_eq!(parts[2], "E2E.Fmt/Sample");
        assert_eq!(parts[3], "warn");
        assert!(
            parts[4].starts_with("seq=") && parts[4].ends_with("msg=\"hello\""),
            "{line}"
        );
    }
}

#[test]
fn json_has_the_documented_keys() {
    let env = Env::new();
    let log = sample_log(&env);
    let out = env.ok(&["fmt", log.to_str().unwrap(), "--format", "json"]);
    let mut seqs = Vec::new();
    let mut lines: Vec<&str> = out.lines().collect();
    let end: serde_json::Value = serde_json::from_str(lines.pop().unwrap()).unwrap();
    assert_eq!(end["process_end"], true, "{end}");
    assert_eq!(end["process"], "ferret", "{end}");
    assert!(end["pid"].as_u64().is_some() && end["timestamp_ns"].as_u64().is_some());
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in [
            "timestamp",
            "provider",
            "event",
            "level",
            "keywords",
            "pid",
            "tid",
            "fields",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {line}");
        }
        assert_eq!(v["provider"], "E2E.Fmt");
        assert_eq!(v["event"], "Sample");
        assert_eq!(v["level"], 3);
        assert_eq!(v["keywords"], "0x1");
        assert_eq!(v["fields"]["msg"], "hello");
        seqs.push(v["fields"]["seq"].as_u64().unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, vec![0, 0, 1, 1, 2, 2]);
}

#[test]
fn csv_has_a_header_and_a_row_per_event() {
    let env = Env::new();
    let log = sample_log(&env);
    let out = env.ok(&["fmt", log.to_str().unwrap(), "--format", "csv"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("timestamp,timestamp_ns,provider,event"));
    assert_eq!(lines.len(), 7);
    assert!(
        lines[1].contains(",E2E.Fmt,Sample,1,3,0x1,"),
        "{}",
        lines[1]
    );
}

#[test]
fn the_summary_counts_events_and_losses() {
    let env = Env::new();
    let log = sample_log(&env);
    let out = env.ok(&["fmt", log.to_str().unwrap(), "--summary"]);
    assert!(out.contains("Session:    fmt (LoggerID 1)"), "{out}");
    assert!(out.contains("(clean stop)"), "{out}");
    assert!(
        out.contains("Events:     6 decoded, 0 undecodable records"),
        "{out}"
    );
    assert!(out.contains("Lost:       0"), "{out}");
    assert!(
        out.contains("Processes:  1 ended while the session ran"),
        "{out}"
    );
    assert!(out.contains("events 6, events lost 0"), "{out}");
    assert!(out.contains("6  E2E.Fmt/Sample"), "{out}");
}

#[test]
fn a_torn_tail_is_decoded_up_to_the_damage_and_reported() {
    let env = Env::new();
    let log = env.path("torn.ferret");
    env.start("torn", "E2E.Torn", &log, &["--buffer-size", "4"]);
    env.ok(&["emit", "--provider", "E2E.Torn", "--count", "3000"]);
    env.ok(&["stop", "torn"]);
    let whole = util::decode(&log).events.len();
    assert_eq!(whole, 3000);
    // Cut the file 1000 bytes into its eleventh 4 KiB buffer (buffers start
    // after the 4 KiB header), as a crash mid-write would.
    let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(4096 + 10 * 4096 + 1000).unwrap();
    let out = env.run(&["fmt", log.to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let decoded = stdout.lines().count();
    // Ten whole buffers of about 170 events each.
    assert!(decoded > 1000 && decoded < 2500, "{decoded}");
    assert!(
        stderr.contains("skipped") && stderr.contains("file ends inside a buffer"),
        "{stderr}"
    );
}
