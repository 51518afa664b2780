//! Each kind of bad input gets one line naming the problem and the next
//! step, exit code 1, and a daemon that keeps serving.

use ferret_testkit as util;

use util::{Env, one_line, open_socket_to_everyone, run_as_nobody, running_as_root};

#[test]
fn bad_requests_are_refused_clearly_and_the_daemon_keeps_serving() {
    let env = Env::new();
    let log = env.path("a.ferret");
    env.start("net", "E2E.Bad", &log, &[]);

    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["stop".into(), "nosuch".into()],
            "session 'nosuch' not found; run 'ferret list'",
        ),
        (
            vec!["query".into(), "42".into()],
            "no session has LoggerID 42",
        ),
        (
            vec![
                "start".into(),
                "NET".into(),
                "-p".into(),
                "X".into(),
                "-f".into(),
                env.path("b.ferret").display().to_string(),
            ],
            "already exists",
        ),
        (
            vec![
                "start".into(),
                "1234".into(),
                "-p".into(),
                "X".into(),
                "-f".into(),
                env.path("c.ferret").display().to_string(),
            ],
            "all digits",
        ),
        (
            vec![
                "start".into(),
                "spec".into(),
                "-p".into(),
                "X:loud".into(),
                "-f".into(),
                env.path("d.ferret").display().to_string(),
            ],
            "level 'loud' is not valid",
        ),
        (
            vec![
                "start".into(),
                "patient".into(),
                "-p".into(),
                "X".into(),
                "-f".into(),
                env.path("p.ferret").display().to_string(),
                "--no-loss".into(),
                "--no-loss-wait-ms".into(),
                "0".into(),
            ],
            "a no-loss wait of 0 ms is out of range; use 1 to 60000 ms",
        ),
        (
            vec![
                "start".into(),
                "spec2".into(),
                "-p".into(),
                "X:4:zz".into(),
                "-f".into(),
                env.path("e.ferret").display().to_string(),
            ],
            "not a hex number",
        ),
        (
            vec![
                "start".into(),
                "exists".into(),
                "-p".into(),
                "X".into(),
                "-f".into(),
                log.display().to_string(),
            ],
            "pass --overwrite",
        ),
        (
            vec![
                "start".into(),
                "nodir".into(),
                "-p".into(),
                "X".into(),
                "-f".into(),
                env.path("no/such/dir/x.ferret").display().to_string(),
            ],
            "create its directory first",
        ),
        (
            vec![
                "start".into(),
                "tiny".into(),
                "-p".into(),
                "X".into(),
                "-f".into(),
                env.path("f.ferret").display().to_string(),
                "--buffer-size".into(),
                "5".into(),
            ],
            "multiple of 4",
        ),
        (
            vec![
                "start".into(),
                "procfs".into(),
                "-p".into(),
                "X".into(),
                "-f".into(),
                "/proc/ferret-test.ferret".into(),
            ],
            "cannot create log file '/proc/ferret-test.ferret'",
        ),
        (vec!["remove".into(), "net".into()], "stop it first"),
        (vec!["flush".into(), "nosuch".into()], "not found"),
    ];
    for (args, expected) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = env.fails(&args);
        let line = one_line(&err);
        assert!(
            line.contains(expected),
            "{args:?}: '{line}' lacks '{expected}'"
        );
    }
    // Nothing was left behind by the refused starts, and the daemon serves on.
    assert!(!env.path("c.ferret").exists());
    assert!(!env.path("d.ferret").exists());
    let list = env.json(&["list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["state"], "RUNNING");
}

#[test]
fn an_existing_log_is_replaced_only_when_asked() {
    let env = Env::new();
    let log = env.path("x.ferret");
    std::fs::write(&log, b"old contents").unwrap();
    env.fails(&["start", "s1", "-p", "X", "-f", log.to_str().unwrap()]);
    assert_eq!(std::fs::read(&log).unwrap(), b"old contents");
    env.start("s1", "X", &log, &["--overwrite"]);
    env.ok(&["stop", "s1"]);
    assert!(util::decode(&log).trailer.is_some());
}

#[test]
fn fmt_refuses_a_file_that_is_not_a_log() {
    let env = Env::without_daemon();
    let bogus = env.path("bogus.ferret");
    std::fs::write(&bogus, b"this is not a trace at all, just text").unwrap();
    let out = env.run(&["fmt", bogus.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(one_line(&err).contains("not a Ferret log file"), "{err}");
}

#[test]
fn only_a_sessions_owner_or_root_may_control_it() {
    if !running_as_root() {
        // Switching users needs root; as another user this test is the
        // socket permission test below.
        return;
    }
    let env = Env::new();
    env.start("mine", "E2E.Mine", &env.path("mine.ferret"), &[]);
    // Let another user reach the socket, so that the daemon's own check is
    // what refuses.
    open_socket_to_everyone(&env);
    for verb in ["stop", "flush", "remove"] {
        let out = run_as_nobody(&env, &[verb, "mine"]);
        assert_eq!(out.status.code(), Some(1), "{verb}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            one_line(&err).contains("belongs to uid 0; only its owner or root may control it"),
            "{verb}: {err}"
        );
    }
    // Looking is allowed.
    let out = run_as_nobody(&env, &["query", "mine"]);
    assert!(out.status.success());
    assert_eq!(env.json(&["query", "mine"])["state"], "RUNNING");
}

#[test]
fn a_socket_the_user_may_not_open_is_named_in_the_error() {
    if !running_as_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    // The directory is reachable but the socket is root's alone (0600).
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run_as_nobody(&env, &["list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(one_line(&err).contains("permission denied on"), "{err}");
}

#[test]
fn problems_the_cli_can_see_are_refused_before_asking_the_daemon() {
    let env = Env::new();
    env.start("net", "E2E.Local", &env.path("net.ferret"), &[]);
    let f = env.path("local.ferret");
    let f = f.to_str().unwrap();
    let taken = env.path("series");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("t_1.ferret"), b"").unwrap();
    let pattern = taken.join("t.ferret");
    let pattern = pattern.to_str().unwrap();
    let long_name = "n".repeat(300);
    let long_provider = "p".repeat(1100);
    let newline_path = env.path("local\n.ferret").display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["start", "nofile", "-p", "X"],
            "sequential mode writes a log file; give one with -f FILE",
        ),
        (
            vec!["start", "rt", "-p", "X", "--mode", "real-time", "-f", f],
            "real-time mode writes no log file",
        ),
        (
            vec![
                "start",
                "mem",
                "-p",
                "X",
                "--mode",
                "in-memory",
                "--overwrite",
            ],
            "--overwrite applies to log files",
        ),
        (
            vec!["start", "circ", "-p", "X", "--mode", "circular", "-f", f],
            "circular mode needs a maximum file size; give --max-file-size",
        ),
        (
            vec![
                "start",
                "app",
                "-p",
                "X",
                "--mode",
                "append",
                "-f",
                f,
                "--overwrite",
            ],
            "--overwrite would discard the log",
        ),
        (
            vec![
                "start",
                "nf",
                "-p",
                "X",
                "--mode",
                "new-file",
                "-f",
                pattern,
                "--max-file-size",
                "1M",
            ],
            "t_1.ferret' exists; choose another pattern or pass --overwrite",
        ),
        (
            vec!["start", "ft", "-p", "X", "-f", f, "--flush-timer", "100000"],
            "flush timer 100000 s is out of range",
        ),
        (
            vec!["start", "sz", "-p", "X", "-f", f, "--max-file-size", "7Q"],
            "unknown unit",
        ),
        // Names: length and characters.
        (vec!["start", "a b", "-p", "X", "-f", f], "contains ' '"),
        (
            vec!["start", &long_name, "-p", "X", "-f", f],
            "the limit is 256",
        ),
        (
            vec!["start", "esc\u{1b}[2J", "-p", "X", "-f", f],
            "contains '\\u{1b}'",
        ),
        (
            vec!["start", "s", "-p", "Bad\u{7}", "-f", f],
            "contains a control character",
        ),
        (
            vec!["start", "s", "-p", &long_provider, "-f", f],
            "provider name is 1100 bytes long",
        ),
        (
            vec!["start", "s", "-p", "A", "-p", "A", "-f", f],
            "given twice",
        ),
        // Levels and keyword masks.
        (
            vec!["start", "s", "-p", "X:9", "-f", f],
            "level '9' is not valid",
        ),
        (
            vec!["start", "s", "-p", "X:0", "-f", f],
            "level '0' is not valid",
        ),
        (
            vec!["start", "s", "-p", "X:4:0x12345678901234567", "-f", f],
            "is not a hex number of at most 16 digits",
        ),
        (
            vec!["start", "s", "-p", "X:4:1:zz", "-f", f],
            "match-all keyword mask 'zz'",
        ),
        (
            vec!["start", "s", "-p", "X:4:1:2:3", "-f", f],
            "too many ':' parts",
        ),
        // Sizes, counts and intervals.
        (
            vec!["start", "s", "-p", "X", "-f", f, "--buffer-size", "0"],
            "buffer size 0 KiB is not valid",
        ),
        (
            vec!["start", "s", "-p", "X", "-f", f, "--max-buffers", "1"],
            "maximum buffers 1 is out of range",
        ),
        (
            vec![
                "start",
                "s",
                "-p",
                "X",
                "-f",
                f,
                "--max-buffers",
                "10",
                "--min-buffers",
                "20",
            ],
            "minimum buffers 20 exceed maximum buffers 10",
        ),
        (
            vec![
                "start",
                "s",
                "-p",
                "X",
                "-f",
                f,
                "--buffer-size",
                "16384",
                "--max-buffers",
                "65536",
            ],
            "exceed the 1 GiB a session may hold",
        ),
        (
            vec![
                "start",
                "s",
                "-p",
                "X",
                "-f",
                f,
                "--no-loss",
                "--no-loss-wait-ms",
                "70000",
            ],
            "a no-loss wait of 70000 ms is out of range",
        ),
        (
            vec!["start", "s", "-p", "X", "-f", f, "--max-file-size", "1K"],
            "holds no buffer",
        ),
        (
            vec![
                "start",
                "s",
                "-p",
                "X",
                "-f",
                f,
                "--max-file-size",
                "99999999999T",
            ],
            "--max-file-size",
        ),
        (
            vec!["start", "s", "-p", "X", "-f", f, "--max-buffers", "abc"],
            "invalid value 'abc' for '--max-buffers",
        ),
        (
            vec!["start", "s", "-p", "X", "-f", f, "--flush-timer=-1"],
            "flush timer -1 s is out of range",
        ),
        (
            vec!["start", "s", "-p", "X", "-f", f, "--bogus"],
            "unexpected argument '--bogus'",
        ),
        (
            vec![
                "start",
                "s",
                "-p",
                "X",
                "--mode",
                "real-time",
                "--buffer-size",
                "1024",
            ],
            "real-time sessions use buffers of at most 128 KiB",
        ),
        // Paths.
        (
            vec!["start", "s", "-p", "X", "-f", &newline_path],
            "contains the control character '\\n'",
        ),
        (vec!["update", "net"], "nothing to update"),
        (
            vec!["update", "net", "--max-buffers", "0"],
            "maximum buffers 0 is out of range",
        ),
        (vec!["update", "net", "-p", "A", "-p", "A"], "given twice"),
        (vec!["enable", "net", "X:6"], "level '6' is not valid"),
        (
            vec!["disable", "net", "a\u{7}b"],
            "contains a control character",
        ),
        (
            vec!["stop", "two\nlines"],
            "session \"two\\nlines\" not found",
        ),
        (vec!["enable", "net", "X:loud"], "level 'loud' is not valid"),
        (vec!["enable", "net", ":4"], "has no name"),
        (vec!["disable", "net", ""], "provider name is empty"),
        (vec!["tail", "nosuch"], "session 'nosuch' not found"),
        (
            vec!["snapshot", "nosuch", "-f", f],
            "session 'nosuch' not found",
        ),
    ];
    for (args, expected) in &cases {
        let out = env.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8(out.stderr).unwrap();
        let line = one_line(&err);
        assert!(
            line.contains(expected),
            "{args:?}: '{line}' lacks '{expected}'"
        );
    }
    assert!(
        !env.path("local.ferret").exists() && !env.path("local\n.ferret").exists(),
        "no refused command left a file"
    );
    // The daemon's own refusals for verbs that need a kind of session.
    let err = env.fails(&["snapshot", "net", "-f", f]);
    assert!(one_line(&err).contains("in-memory"), "{err}");
    assert!(
        !env.path("local.ferret").exists(),
        "a refused snapshot leaves no file"
    );
    let err = env.fails(&["tail", "net"]);
    assert!(one_line(&err).contains("real-time"), "{err}");
    let list = env.json(&["list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

/// Sessions size buffers in whole KiB; appending to a log whose buffers
/// are not would write its buffers out of step with the ones there, so the
/// start is refused in one line and the log is left as it was.
#[test]
fn append_refuses_a_log_whose_buffers_are_not_whole_kib() {
    let env = Env::new();
    let log = env.path("odd.ferret");
    env.start("odd", "E2E.Odd", &log, &[]);
    env.emit("E2E.Odd", 10, &[]);
    env.wait_no_providers();
    env.ok(&["stop", "odd"]);
    env.ok(&["remove", "odd"]);

    // The same log with a valid header claiming 64.5 KiB buffers.
    let bytes = std::fs::read(&log).unwrap();
    let (mut header, data_offset) = ferret_format::FileHeader::decode_untrusted(&bytes).unwrap();
    header.buffer_size = 64 * 1024 + 512;
    let mut edited = header.encode();
    assert_eq!(edited.len() as u64, data_offset);
    edited.extend_from_slice(&bytes[data_offset as usize..]);
    std::fs::write(&log, &edited).unwrap();

    let f = log.to_str().unwrap();
    let err = env.fails(&["start", "odd", "-p", "E2E.Odd", "--mode", "append", "-f", f]);
    let line = one_line(&err);
    assert!(
        line.contains("its buffers are 66048 bytes, not a whole number of KiB")
            && line.ends_with("start a new file"),
        "{err}"
    );
    assert_eq!(std::fs::read(&log).unwrap(), edited, "the log is untouched");
    assert!(env.run(&["query", "odd"]).status.code() == Some(1));
}
