//! `ferret --target ssh://…` controls another host's daemon through a real
//! OpenSSH server: sessions started, queried, listed, tailed and stopped
//! by LoggerName and LoggerID from here, log files opened on the target
//! by the target's user with the same rules as a local start, and every
//! way of failing to reach a target is one line naming it.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ferret_testkit as util;
use util::sshd::Sshd;

/// `ferret --target TARGET ARGS…` run here, with ssh told how to reach the
/// test's server and where `ferret` is on the target.
fn remote(sshd: &Sshd, target: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(util::ferret_bin());
    cmd.arg("--target")
        .arg(target)
        .args(args)
        .env("FERRET_SSH_COMMAND", sshd.ssh_command())
        .env("FERRET_REMOTE_FERRET", util::ferret_bin())
        // Nothing here may fall back to a daemon of this host's.
        .env("FERRET_SOCKET", "/nonexistent/ferret-local.sock")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn run(sshd: &Sshd, target: &str, args: &[&str]) -> Output {
    remote(sshd, target, args).output().expect("run ferret")
}

fn ok_json(sshd: &Sshd, target: &str, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = run(sshd, target, &all);
    assert!(
        out.status.success(),
        "ferret --target {target} {all:?} failed: {}\nsshd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        sshd.log()
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Runs, expects exit status 1 and one line on stderr; returns it.
fn fails(sshd: &Sshd, target: &str, args: &[&str]) -> String {
    let out = run(sshd, target, args);
    let err = String::from_utf8(out.stderr).expect("utf-8");
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line for {args:?}: {err}");
    err
}

fn path(p: &Path) -> &str {
    p.to_str().expect("path")
}

#[test]
fn sessions_on_a_target_start_stop_and_log_every_event() {
    let env = util::Env::new();
    let Some(sshd) = Sshd::start() else { return };
    let target = sshd.target(&env.socket);

    // Start by LoggerName on the target; its log file is opened there.
    let log = env.path("web.etl");
    let s = ok_json(
        &sshd,
        &target,
        &["start", "web", "-p", "E2E.Remote", "-f", path(&log)],
    );
    assert_eq!(s["state"], "RUNNING");
    assert!(log.exists(), "the target's log file exists");
    assert_eq!(env.session("web").state.name(), "RUNNING");

    // Providers on the target write; a query from here sees the events.
    env.emit("E2E.Remote", 1000, &[]);
    env.wait_events("web", 1000);
    let q = ok_json(&sshd, &target, &["query", "web"]);
    assert_eq!(
        (q["events"].as_u64(), q["events_lost"].as_u64()),
        (Some(1000), Some(0)),
        "{q}"
    );

    // Stop by LoggerName: STOPPED, every event in the target's log.
    let stopped = ok_json(&sshd, &target, &["stop", "web"]);
    assert_eq!(stopped["state"], "STOPPED", "{stopped}");
    let decoded = util::decode(&log);
    assert_eq!(decoded.damage, Vec::<String>::new());
    let seqs: Vec<u64> = decoded.events.iter().filter_map(|e| e.seq).collect();
    assert_eq!(seqs, (0..1000).collect::<Vec<u64>>());

    // The log comes home through the same channel, byte for byte.
    let home = tempfile::tempdir().expect("tempdir");
    let local = home.path().join("web-home.etl");
    let pulled = ok_json(&sshd, &target, &["pull", path(&log), "-o", path(&local)]);
    assert_eq!(pulled["bytes"], std::fs::metadata(&log).expect("log").len());
    assert_eq!(
        std::fs::read(&local).expect("pulled"),
        std::fs::read(&log).expect("log")
    );
    // A file that is not there, or a relative path, is one line and leaves
    // nothing here.
    let missing = home.path().join("missing.etl");
    let e = fails(
        &sshd,
        &target,
        &["pull", "/nonexistent/web.etl", "-o", path(&missing)],
    );
    assert!(e.contains("cannot read /nonexistent/web.etl"), "{e}");
    assert!(!missing.exists());
    let e = fails(&sshd, &target, &["pull", "web.etl", "-o", path(&missing)]);
    assert!(e.contains("must be an absolute path"), "{e}");
    assert!(!missing.exists());

    // Stop by LoggerID.
    let db_log = env.path("db.etl");
    let id = ok_json(
        &sshd,
        &target,
        &["start", "db", "-p", "E2E.Remote", "-f", path(&db_log)],
    )["logger_id"]
        .as_u64()
        .expect("id");
    env.emit("E2E.Remote", 10, &[]);
    env.wait_events("db", 10);
    let stopped = ok_json(&sshd, &target, &["stop", &id.to_string()]);
    assert_eq!(
        (stopped["name"].as_str(), stopped["state"].as_str()),
        (Some("db"), Some("STOPPED"))
    );
    assert_eq!(util::decode(&db_log).events.len(), 10);

    // The list from here is the target's list.
    let list = ok_json(&sshd, &target, &["list"]);
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["web", "db"]);
}

#[test]
fn snapshots_and_new_log_files_are_written_on_the_target() {
    let env = util::Env::new();
    let Some(sshd) = Sshd::start() else { return };
    let target = sshd.target(&env.socket);

    // A snapshot of an in-memory session lands in the target's file.
    ok_json(
        &sshd,
        &target,
        &["start", "mem", "-p", "E2E.Snap", "--mode", "in-memory"],
    );
    env.emit("E2E.Snap", 100, &[]);
    env.wait_events("mem", 100);
    let snap = env.path("mem.etl");
    let saved = ok_json(&sshd, &target, &["snapshot", "mem", "-f", path(&snap)]);
    assert_eq!(saved["file"], path(&snap), "{saved}");
    let seqs: Vec<u64> = util::decode(&snap)
        .events
        .iter()
        .filter_map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (0..100).collect::<Vec<u64>>());

    // update -f switches to a file the bridge opened there; no event is
    // lost across the switch.
    let first = env.path("first.etl");
    let second = env.path("second.etl");
    ok_json(
        &sshd,
        &target,
        &["start", "sw", "-p", "E2E.Switch", "-f", path(&first)],
    );
    env.emit("E2E.Switch", 10, &[]);
    env.wait_events("sw", 10);
    let updated = ok_json(&sshd, &target, &["update", "sw", "-f", path(&second)]);
    assert_eq!(updated["log_file"], path(&second), "{updated}");
    env.emit("E2E.Switch", 10, &[]);
    env.wait_events("sw", 20);
    ok_json(&sshd, &target, &["stop", "sw"]);
    let events = util::decode(&first).events.len() + util::decode(&second).events.len();
    assert_eq!(events, 20);

    // A snapshot the daemon refuses (the session is not in memory) leaves
    // no file on the target.
    let refused = env.path("refused.etl");
    let e = fails(&sshd, &target, &["snapshot", "sw", "-f", path(&refused)]);
    assert!(!refused.exists(), "{e}");
}

#[test]
fn a_real_time_session_on_a_target_is_tailed_from_here() {
    let env = util::Env::new();
    let Some(sshd) = Sshd::start() else { return };
    let target = sshd.target(&env.socket);
    ok_json(
        &sshd,
        &target,
        &["start", "live", "-p", "E2E.Live", "--mode", "real-time"],
    );
    let tail = remote(&sshd, &target, &["tail", "live", "--format", "json"])
        .spawn()
        .expect("tail");
    util::wait_until(
        Duration::from_secs(30),
        "the remote consumer to attach",
        || env.session("live").consumers == 1,
    );
    env.emit("E2E.Live", 500, &[]);
    env.wait_events("live", 500);
    ok_json(&sshd, &target, &["stop", "live"]);
    // The consumer ends with the session, having shown every event.
    let out = tail.wait_with_output().expect("tail output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(util::seqs(&entries), (0..500).collect::<Vec<u64>>());
}

#[test]
fn a_watch_from_here_sees_the_targets_sessions_change() {
    use std::io::BufRead;
    let env = util::Env::new();
    let Some(sshd) = Sshd::start() else { return };
    let target = sshd.target(&env.socket);
    let mut watch = remote(&sshd, &target, &["watch", "--json"])
        .spawn()
        .expect("watch");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    // A session started on the target, by its own CLI, reaches the watch here.
    env.start_with("seen", &["-p", "P", "--mode", "in-memory"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let v = rx
            .recv_timeout(left)
            .expect("a change for the session started on the target");
        if v["session"]["name"] == "seen" {
            assert_eq!(v["session"]["state"], "RUNNING", "{v}");
            break;
        }
    }
    util::terminate(&mut watch);
}

#[test]
fn a_consumer_whose_link_drops_says_so_and_is_not_taken_for_the_end() {
    let env = util::Env::new();
    let Some(sshd) = Sshd::start() else { return };
    let target = sshd.target(&env.socket);
    ok_json(
        &sshd,
        &target,
        &["start", "live", "-p", "E2E.Drop", "--mode", "real-time"],
    );
    let mut tail = remote(&sshd, &target, &["tail", "live", "--format", "json"])
        .spawn()
        .expect("tail");
    util::wait_until(
        Duration::from_secs(30),
        "the remote consumer to attach",
        || env.session("live").consumers == 1,
    );
    // The far end goes away: the bridge on the target is killed.
    let bridges = Command::new("pkill")
        .args(["-KILL", "-f", &format!("{} bridge", env.socket.display())])
        .status()
        .expect("pkill");
    assert!(bridges.success(), "a bridge was running");
    let status = tail.wait().expect("tail");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut tail.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("target {target}: ")), "{err}");
    // The session itself runs on.
    assert_eq!(env.session("live").state.name(), "RUNNING");
}

#[test]
fn log_files_on_a_target_follow_the_targets_rules() {
    let env = util::Env::new();
    let Some(sshd) = Sshd::start() else { return };
    let target = sshd.target(&env.socket);

    // A path is the target's, so it must not depend on where this command runs.
    let e = fails(
        &sshd,
        &target,
        &["start", "rel", "-p", "P", "-f", "relative.etl"],
    );
    assert!(e.contains("must be an absolute path"), "{e}");

    // A link at the end of the path is never followed, there as here.
    let aim = env.path("aim.etl");
    let link = env.path("link.etl");
    std::os::unix::fs::symlink(&aim, &link).expect("symlink");
    let e = fails(
        &sshd,
        &target,
        &["start", "ln", "-p", "P", "-f", path(&link)],
    );
    assert!(!aim.exists(), "nothing was created through the link: {e}");

    // A start the target's daemon refuses leaves no file the bridge made.
    let first = env.path("first.etl");
    ok_json(
        &sshd,
        &target,
        &["start", "dup", "-p", "P", "-f", path(&first)],
    );
    let second = env.path("second.etl");
    let e = fails(
        &sshd,
        &target,
        &["start", "DUP", "-p", "P", "-f", path(&second)],
    );
    assert!(e.contains("already exists"), "{e}");
    assert!(!second.exists(), "the refused start's file was removed");
    assert_eq!(env.session("dup").state.name(), "RUNNING");
}

/// `ferret --target A --target B ... ARGS` with ssh set up as `remote`.
fn fleet(sshd: &Sshd, targets: &[&str], args: &[&str]) -> Output {
    let mut cmd = Command::new(util::ferret_bin());
    for t in targets {
        cmd.arg("--target").arg(t);
    }
    cmd.args(args)
        .env("FERRET_SSH_COMMAND", sshd.ssh_command())
        .env("FERRET_REMOTE_FERRET", util::ferret_bin())
        .env("FERRET_SOCKET", "/nonexistent/ferret-local.sock")
        .stdin(Stdio::null())
        .output()
        .expect("run ferret")
}

#[test]
fn one_command_stops_a_session_across_several_targets() {
    let Some(sshd) = Sshd::start() else { return };
    let hosts = [util::Env::new(), util::Env::new()];
    let targets: Vec<String> = hosts.iter().map(|h| sshd.target(&h.socket)).collect();
    for h in &hosts {
        h.start("web", "E2E.Fleet", &h.path("web.etl"), &[]);
    }
    let dead = format!(
        "ssh://{}@127.0.0.1:1{}",
        sshd.user,
        hosts[0].socket.display()
    );
    let mut all: Vec<&str> = targets.iter().map(String::as_str).collect();
    all.push(&dead);

    // Stopped everywhere it can be; the unreachable target is one line of
    // its own and makes the exit status 1.
    let out = fleet(&sshd, &all, &["stop", "web", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    for h in &hosts {
        assert_eq!(h.session("web").state.name(), "STOPPED");
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("ferret: target {dead}: ")),
        "{err}"
    );
    // One JSON array, in the order the targets were given.
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let items = v.as_array().expect("array");
    assert_eq!(items.len(), 3, "{v}");
    for (item, t) in items.iter().zip(&all) {
        assert_eq!(item["target"], *t);
    }
    assert_eq!(items[0]["result"]["state"], "STOPPED");
    assert_eq!(items[1]["result"]["state"], "STOPPED");
    assert!(
        items[2]["error"]
            .as_str()
            .expect("error")
            .starts_with(&format!("ferret: target {dead}: "))
    );

    // Text output says which target each line is from; a file of targets
    // works as the same list.
    let list = hosts[0].path("targets");
    std::fs::write(
        &list,
        format!("# the web fleet\n{}\n{}\n", targets[0], targets[1]),
    )
    .expect("targets file");
    let out = fleet(&sshd, &[&format!("@{}", list.display())], &["list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    for t in &targets {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{t} | ")) && l.contains("web")),
            "{t} in:\n{text}"
        );
    }
}

#[test]
fn a_target_that_cannot_be_reached_is_one_line_naming_it() {
    let env = util::Env::new();
    let Some(sshd) = Sshd::start() else { return };

    // A port where no sshd listens.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let target = format!(
        "ssh://{}@127.0.0.1:{closed}{}",
        sshd.user,
        env.socket.display()
    );
    let e = fails(&sshd, &target, &["list"]);
    assert!(e.starts_with(&format!("ferret: target {target}: ")), "{e}");

    // No ferret program on the target.
    let target = sshd.target(&env.socket);
    let out = remote(&sshd, &target, &["list"])
        .env("FERRET_REMOTE_FERRET", "/nonexistent/ferret")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("ferret: target {target}: ")),
        "{err}"
    );
    assert!(err.contains("/nonexistent/ferret"), "{err}");

    // A key the target does not accept, and a host that does not exist.
    let stranger = sshd.dir().join("stranger_key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let out = remote(&sshd, &target, &["list"])
        .env(
            "FERRET_SSH_COMMAND",
            sshd.ssh_command().replace("user_key", "stranger_key"),
        )
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("ferret: target {target}: ")),
        "{err}"
    );
    assert!(err.contains("Permission denied"), "{err}");
    let nowhere = "ssh://nosuchhost.invalid";
    let e = fails(&sshd, nowhere, &["list"]);
    assert!(
        e.starts_with("ferret: target ssh://nosuchhost.invalid: "),
        "{e}"
    );

    // A target URL that is not one: a usage error, before any ssh runs.
    let out = run(&sshd, "web-1", &["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only SSH targets"));

    // Commands that work on this host only say so.
    let e = fails(&sshd, &target, &["emit", "--provider", "P", "--count", "1"]);
    assert!(e.contains("works on this host only"), "{e}");
}

#[test]
fn the_viewer_over_a_target_starts_shows_and_stops_its_own_sessions() {
    use util::tmux::{Tmux, session_line, tmux_available};
    if !tmux_available() {
        assert!(
            std::env::var("FERRET_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "tmux is not installed, and FERRET_REQUIRE_TOOLS=1"
        );
        println!("skipped: tmux is not installed");
        return;
    }
    let env = util::Env::new();
    let Some(sshd) = Sshd::start() else { return };
    let target = sshd.target(&env.socket);
    env.start("cli", "E2E.RView", &env.path("cli.etl"), &[]);

    let tmux = Tmux {
        socket: env.path("tmux.sock"),
    };
    let view = format!(
        "env FERRET_SSH_COMMAND='{}' FERRET_REMOTE_FERRET={} FERRET_SOCKET=/nonexistent/ferret-local.sock {} --target {target} view",
        sshd.ssh_command(),
        util::ferret_bin().display(),
        util::ferret_bin().display(),
    );
    tmux.new_view(&view);
    tmux.wait_screen("the target's session listed RUNNING", |s| {
        session_line(s, "cli").is_some_and(|l| l.contains("RUNNING"))
    });

    // A session started from the viewer's form, its file opened there.
    let mine_log = env.path("mine.etl");
    tmux.start_from_form("mine", "E2E.RView:5", &mine_log);
    tmux.wait_screen("the viewer's own session on the target", |s| {
        session_line(s, "mine").is_some_and(|l| l.contains("RUNNING") && l.contains("yes"))
    });

    // Live messages from a provider on the target arrive over the link,
    // once the viewer's consumer (a link of its own) has attached.
    util::wait_until(
        Duration::from_secs(30),
        "the viewer's consumer to attach",
        || env.session("mine").consumers == 1,
    );
    env.emit("E2E.RView", 20, &["--level", "warning"]);
    tmux.wait_screen("live messages from the target", |s| {
        s.contains("E2E.RView/Sample") && s.contains("seq=19")
    });

    // The viewer stops only what it started, over the target as here.
    tmux.right_click(10, tmux.row_of("cli"));
    tmux.wait_screen("the context menu", |s| s.contains("Stop Trace"));
    tmux.keys(&["Enter"]);
    tmux.wait_screen("the hint naming the command", |s| {
        s.contains("stop it with 'ferret stop cli'")
    });
    tmux.keys(&["Down", "s"]);
    tmux.wait_screen("the viewer's session STOPPED", |s| {
        session_line(s, "mine").is_some_and(|l| l.contains("STOPPED"))
    });
    assert_eq!(env.session("cli").state.name(), "RUNNING");
    assert_eq!(env.session("mine").state.name(), "STOPPED");
    assert_eq!(
        util::decode(&mine_log)
            .events
            .iter()
            .filter(|e| e.provider == "E2E.RView")
            .count(),
        20
    );
    tmux.keys(&["q"]);
    util::wait_until(Duration::from_secs(30), "the viewer to exit", || {
        !tmux.cmd(&["has-session", "-t", "view"]).status.success()
    });
}
