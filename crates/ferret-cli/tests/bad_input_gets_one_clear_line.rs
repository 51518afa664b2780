//! Each kind of bad input gets one line naming the problem and the next
//! step, exit code 1, and a daemon that keeps serving.

mod util;

use util::Env;

fn one_line(err: &str) -> &str {
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {err}");
    lines[0]
}

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

/// Runs `ferret` as the unprivileged user 65534.
fn run_as_nobody(env: &Env, args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    std::process::Command::new(util::ferret_bin())
        .arg("--socket")
        .arg(&env.socket)
        .args(args)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run as nobody")
}

fn running_as_root() -> bool {
    rustix::process::getuid().is_root()
}

#[test]
fn only_a_sessions_owner_or_root_may_control_it() {
    if !running_as_root() {
        // Switching users needs root; as another user this test is the
        // socket permission test below.
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.start("mine", "E2E.Mine", &env.path("mine.ferret"), &[]);
    // Let another user reach the socket, so that the daemon's own check is
    // what refuses.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&env.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
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
