//! Ferret's gdb commands, the analog of ETW's `!wmitrace.stop`: from a real
//! gdb attached to a provider program, `ferret stop` stops the session at
//! once while the program stays stopped, with every event it wrote in the
//! log; `ferret break-stop` stops a session when the program reaches a
//! location and lets it run on; `ferret dump`, from the live program or
//! from a core of it taken while its daemon was frozen, writes exactly the
//! events no log file has. The commands load from the program's own
//! `.debug_gdb_scripts` section, or from the script file.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ferret_testkit as util;
use util::programs::Program;

#[test]
fn test_program() {
    util::programs::serve();
}

/// Whether gdb runs here; without it the test is skipped, or fails when
/// FERRET_REQUIRE_TOOLS=1, as CI sets it.
fn have_gdb() -> bool {
    let ok = Command::new("gdb")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("FERRET_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "gdb is not installed, and FERRET_REQUIRE_TOOLS=1"
        );
        println!("skipped: gdb is not installed");
    }
    ok
}

/// gdb in batch mode, allowed to load the scripts programs carry, with
/// Ferret's commands told where `ferret` is.
fn gdb() -> Command {
    let mut cmd = Command::new("gdb");
    cmd.args(["-q", "-batch", "-nx", "-iex", "set auto-load safe-path /"])
        .env("FERRET_GDB_FERRET", util::ferret_bin())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A debuggee that is killed however the test ends, so that a failed
/// assertion leaves no program behind.
struct Debuggee(std::process::Child);

impl Drop for Debuggee {
    fn drop(&mut self) {
        util::terminate(&mut self.0);
    }
}

/// A daemon stopped with SIGSTOP, continued however the test ends.
struct Frozen(rustix::process::Pid);

impl Frozen {
    fn freeze(pid: u32) -> Frozen {
        let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::STOP).expect("SIGSTOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(self.0, rustix::process::Signal::CONT);
    }
}

/// The script as a file, for gdb sessions whose program does not carry it.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ferret-provider/gdb/ferret.py")
}

#[test]
fn a_stop_from_the_debugger_completes_while_the_program_stays_stopped() {
    if !have_gdb() {
        return;
    }
    let env = util::Env::new();
    let log = env.path("web.etl");
    env.start("web", "E2E.Debuggee", &log, &[]);
    let socket = env.socket.to_str().expect("socket").to_string();
    let mut program = Debuggee(
        Program::Debuggee
            .command(&[socket.as_str(), "1000", "0", "wait"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("debuggee"),
    );
    let rx = lines(program.0.stdout.take().expect("stdout"));
    wait_line(&rx, |l| l == "ready");
    env.wait_events("web", 1000);

    // Attaching stops the program; the stop is asked of the daemon, which
    // drains the program's rings from shared memory while it stays stopped.
    let pid = program.0.id();
    let out = gdb()
        .args(["-p", &pid.to_string()])
        .args(["-ex", "ferret stop web"])
        .args(["-ex", &format!("shell grep State /proc/{pid}/status")])
        .args(["-ex", "ferret query web"])
        .output()
        .expect("run gdb");
    let shown = text(&out);
    let stopped = shown
        .find("Events Lost")
        .expect("the stop's final counters");
    let traced = shown
        .find("State:\tt (tracing stop)")
        .unwrap_or_else(|| panic!("the program was stopped by gdb during the stop:\n{shown}"));
    assert!(stopped < traced, "{shown}");
    assert!(
        shown[traced..].contains("State                 : STOPPED"),
        "{shown}"
    );
    drop(program);

    let seqs: Vec<u64> = util::decode(&log)
        .events
        .iter()
        .filter_map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (0..1000).collect::<Vec<u64>>());
}

#[test]
fn a_breakpoint_stops_the_session_and_the_program_runs_on() {
    if !have_gdb() {
        return;
    }
    let env = util::Env::new();
    let log = env.path("web.etl");
    env.start("web", "E2E.Debuggee", &log, &[]);
    let socket = env.socket.to_str().expect("socket").to_string();
    let program = Program::Debuggee.command(&[socket.as_str(), "500", "500"]);
    let mut cmd = gdb();
    cmd.args(["-ex", "ferret break-stop ferret_testkit_checkpoint web"])
        .args(["-ex", "run"])
        .arg("--args")
        .arg(program.get_program())
        .args(program.get_args());
    for (k, v) in program.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let out = cmd.output().expect("run gdb");
    let shown = text(&out);
    assert!(
        shown.contains("breakpoint 1 reached: stopping session web"),
        "{shown}"
    );
    // The program ran to its end: the session was stopped at the
    // checkpoint, so it wrote nothing after it.
    assert!(shown.contains(r#"{"before":500,"after":0}"#), "{shown}");
    assert_eq!(env.session("web").state.name(), "STOPPED");
    let seqs: Vec<u64> = util::decode(&log)
        .events
        .iter()
        .filter_map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (0..500).collect::<Vec<u64>>());
}

/// Reads the debuggee's lines into a channel.
fn lines(out: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(rx: &std::sync::mpsc::Receiver<String>, want: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx.recv_timeout(left).expect("the debuggee's line");
        if want(&line) {
            return;
        }
    }
}

fn seqs(path: &std::path::Path) -> Vec<u64> {
    let d = util::decode(path);
    assert_eq!(d.damage, Vec::<String>::new(), "{}", path.display());
    d.events.iter().filter_map(|e| e.seq).collect()
}

/// The seqs of a log being written, or None while a buffer is half
/// written.
fn seqs_now(path: &std::path::Path) -> Option<Vec<u64>> {
    let d = util::decode(path);
    d.damage
        .is_empty()
        .then(|| d.events.iter().filter_map(|e| e.seq).collect())
}

#[test]
fn a_dump_from_the_program_or_its_core_holds_exactly_what_no_log_has() {
    if !have_gdb() {
        return;
    }
    let env = util::Env::new();
    let log = env.path("web.etl");
    // Small buffers and no flush timer: the first events fill buffers that
    // are written, the rest wait in a buffer the daemon has not written.
    env.start(
        "web",
        "E2E.Debuggee",
        &log,
        &["--buffer-size", "4", "--flush-timer", "0"],
    );
    let socket = env.socket.to_str().expect("socket").to_string();
    let (before, after) = (3000u64, 200u64);
    let mut program = Debuggee(
        Program::Debuggee
            .command(&[
                socket.as_str(),
                &before.to_string(),
                &after.to_string(),
                "gate",
                "wait",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("debuggee"),
    );
    let rx = lines(program.0.stdout.take().expect("stdout"));
    wait_line(&rx, |l| l == "ready");
    env.wait_events("web", before);
    let pid = program.0.id().to_string();

    // Wait until the daemon has marked in the rings what its log holds: a
    // dump of the live program then starts where the log ends.
    let probe = env.path("probe.etl");
    util::wait_until(
        Duration::from_secs(30),
        "the rings to keep only what the log lacks",
        || {
            let _ = std::fs::remove_file(&probe);
            gdb()
                .args([
                    "-p",
                    &pid,
                    "-ex",
                    &format!("ferret dump {}", probe.display()),
                ])
                .output()
                .expect("gdb");
            match (
                seqs_now(&log),
                probe.exists().then(|| seqs_now(&probe)).flatten(),
            ) {
                (Some(logged), Some(dumped)) => {
                    !logged.is_empty() && dumped.first() == Some(&(logged.len() as u64))
                }
                _ => false,
            }
        },
    );

    // The daemon freezes; the program writes more, which only its ring
    // now holds.
    let frozen = Frozen::freeze(env.daemon_pid());
    {
        use std::io::Write;
        let stdin = program.0.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").expect("go");
        stdin.flush().expect("flush");
    }
    wait_line(&rx, |l| l.starts_with("{\"before\""));

    let core = env.path("debuggee.core");
    let live_dump = env.path("live.etl");
    let out = gdb()
        .args(["-p", &pid])
        .args(["-ex", "ferret rings"])
        .args(["-ex", &format!("ferret dump {}", live_dump.display())])
        .args(["-ex", &format!("gcore {}", core.display())])
        .output()
        .expect("gdb");
    let shown = text(&out);
    assert!(shown.contains("provider 0    E2E.Debuggee"), "{shown}");
    assert!(shown.contains("bytes no log file has"), "{shown}");
    assert!(core.exists(), "{shown}");

    // From the core, with no process, while the daemon is still frozen.
    let core_dump = env.path("core.etl");
    let exe = Program::Debuggee
        .command::<&str>(&[])
        .get_program()
        .to_owned();
    let out = gdb()
        .args(["-ex", &format!("ferret dump {}", core_dump.display())])
        .arg(&exe)
        .arg(&core)
        .output()
        .expect("gdb");
    let shown = text(&out);
    assert!(shown.contains("events no log file has"), "{shown}");

    // The log and each dump split the events exactly, in order.
    let logged = seqs(&log);
    let k = logged.len() as u64;
    assert!(k > 0 && k < before, "{k} events logged");
    assert_eq!(logged, (0..k).collect::<Vec<u64>>());
    let rest: Vec<u64> = (k..before + after).collect();
    assert_eq!(seqs(&live_dump), rest);
    assert_eq!(seqs(&core_dump), rest);
    assert_eq!(util::decode(&core_dump).events[0].provider, "E2E.Debuggee");

    drop(frozen);
    drop(program);
}

#[test]
fn a_program_without_ferret_gets_one_line() {
    if !have_gdb() {
        return;
    }
    let out = gdb()
        .args(["-ex", &format!("source {}", script().display())])
        .args(["-ex", "ferret stop web"])
        .arg("/bin/true")
        .output()
        .expect("run gdb");
    let shown = text(&out);
    assert!(
        shown.contains("ferret: this program does not link ferret-provider"),
        "{shown}"
    );
}
