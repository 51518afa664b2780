//! Test support for Ferret's end-to-end suite (crates/ferret-cli/tests):
//! each test runs the real `ferret` binary against its own daemon on a
//! socket in its own temporary directory. This crate is never published or
//! installed, and no product crate depends on it (the tidy test holds it).
//!
//! - this module: [`Env`] (a temporary directory, a daemon on its socket,
//!   the `ferret` verbs run against it), [`Background`] commands, waits with
//!   deadlines, and decoding logs the way `ferret fmt` does;
//! - [`stall`]: the LD_PRELOAD shims that make chosen writes hang or fail;
//! - [`programs`]: the test programs (a hostile provider, a process of many
//!   providers), run as processes of their own;
//! - [`inprocess`]: a daemon in the test's own process, for the bridges' tests;
//! - [`logbuild`]: log files built record by record, for fixtures.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferret_client::Client;

/// The `ferret` binary cargo built for these tests.
///
/// Cargo names a package's binaries to its own integration tests only at
/// compile time (`CARGO_BIN_EXE_ferret`), which this library cannot see;
/// it puts them next to the `deps` directory that holds the test binary
/// itself, so that is where the binary is looked up. The suite lives in
/// `ferret-cli`'s own `tests/` so that cargo builds `ferret` afresh for it.
pub fn ferret_bin() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary sits in target/PROFILE/deps");
        let bin = profile_dir.join("ferret");
        assert!(
            bin.is_file(),
            "no `ferret` binary at {}: run the end-to-end tests with `cargo test -p ferret-cli`",
            bin.display()
        );
        bin
    })
}

/// Waits until `cond` holds, polling, for at most `limit`; panics with
/// `what` if it never does.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the session called `name` of the daemon on `socket` has
/// counted `events` events; fails at once if it counted more.
fn wait_session_events(socket: &Path, name: &str, events: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = Client::connect(socket)
            .and_then(|mut c| c.query(&ferret_abi::proto::SessionRef::Name(name.into())))
            .unwrap_or_else(|e| panic!("query {name}: {e}"));
        if s.counters.events == events {
            return;
        }
        assert!(
            Instant::now() < deadline && s.counters.events < events,
            "session '{name}' counted {} events, waiting for {events}: {s:?}",
            s.counters.events
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A temporary directory with a daemon serving a socket inside it.
#[derive(Debug)]
pub struct Env {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    daemon: Option<Child>,
}

impl Env {
    /// A directory and socket path, with no daemon yet.
    pub fn without_daemon() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("ferret-e2e-")
            .tempdir()
            .expect("tempdir");
        let socket = dir.path().join("control.sock");
        Env {
            dir,
            socket,
            daemon: None,
        }
    }

    /// A directory with `ferret daemon` running on its socket.
    // Not `Default`: making one starts a daemon process.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Env {
        let mut env = Env::without_daemon();
        env.start_daemon();
        env
    }

    /// A directory with `ferret daemon ARGS...` running on its socket.
    pub fn with_daemon_args(args: &[&str]) -> Env {
        let mut env = Env::without_daemon();
        env.start_daemon_with(args);
        env
    }

    /// Starts `ferret daemon` and waits until it answers.
    pub fn start_daemon(&mut self) {
        self.start_daemon_with(&[]);
    }

    /// Starts `ferret daemon ARGS...` and waits until it answers.
    pub fn start_daemon_with(&mut self, args: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("daemon log");
        let child = Command::new(ferret_bin())
            .arg("--socket")
            .arg(&self.socket)
            .arg("daemon")
            .args(args)
            // A daemon a test kills leaves a keeper waiting for `ferret
            // recover` when its rings held undrained events; it should not
            // outlive the test run by long.
            .env("FERRET_KEEPER_LINGER_S", "30")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn daemon");
        self.daemon = Some(child);
        let socket = self.socket.clone();
        wait_until(Duration::from_secs(20), "the daemon to answer", || {
            Client::connect(&socket).is_ok()
        });
    }

    /// The daemon's process id.
    pub fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().expect("daemon").id()
    }

    /// Sends SIGTERM to the daemon and waits for it to exit.
    pub fn stop_daemon(&mut self) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("daemon running");
        terminate(&mut child)
    }

    /// Sends SIGKILL to the daemon, as a crash would, and waits for it:
    /// it stops nothing cleanly and leaves its socket file behind.
    pub fn kill_daemon(&mut self) {
        let mut child = self.daemon.take().expect("daemon running");
        child.kill().expect("kill the daemon");
        child.wait().expect("wait for the daemon");
    }

    /// The daemon's log so far (for failure messages).
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// A path inside the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `ferret --socket SOCKET ARGS...`, with its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("run ferret")
    }

    /// `ferret --socket SOCKET ARGS...`, with no input or output, to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(ferret_bin());
        cmd.arg("--socket")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// A control client connected to the daemon.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("connect to the daemon")
    }

    /// The session called `name`, as the daemon reports it now.
    pub fn session(&self, name: &str) -> ferret_abi::proto::SessionInfo {
        self.client()
            .query(&ferret_abi::proto::SessionRef::Name(name.into()))
            .expect("query")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ferret {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.daemon_log()
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs and asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "ferret {args:?} should have failed; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(out.status.code(), Some(1), "exit code for {args:?}");
        String::from_utf8(out.stderr).expect("utf-8 stderr")
    }

    /// Runs with `--json` appended and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{out}"))
    }

    /// Starts a session on `provider` writing `file`; returns its LoggerID.
    pub fn start(&self, name: &str, provider: &str, file: &Path, extra: &[&str]) -> u64 {
        let mut args = vec![
            "start",
            name,
            "-p",
            provider,
            "-f",
            file.to_str().expect("path"),
        ];
        args.extend_from_slice(extra);
        let s = self.json(&args);
        assert_eq!(s["state"], "RUNNING");
        s["logger_id"].as_u64().expect("logger id")
    }

    /// `ferret start NAME ARGS...`; returns the LoggerID.
    pub fn start_with(&self, name: &str, args: &[&str]) -> u64 {
        let mut all = vec!["start", name];
        all.extend_from_slice(args);
        let s = self.json(&all);
        assert_eq!(s["state"], "RUNNING");
        s["logger_id"].as_u64().expect("logger id")
    }

    /// `ferret emit --provider PROVIDER --count N EXTRA... --json`, asserting
    /// that every event was written (some session wanted each one) and none
    /// dropped; returns emit's JSON report.
    pub fn emit(&self, provider: &str, count: u64, extra: &[&str]) -> serde_json::Value {
        let count_text = count.to_string();
        let mut args = vec!["emit", "--provider", provider, "--count", &count_text];
        args.extend_from_slice(extra);
        let v = self.json(&args);
        assert_eq!(v["enabled_events"], count, "emit {provider} {extra:?}: {v}");
        assert_eq!(v["dropped"], 0, "emit {provider} {extra:?}: {v}");
        v
    }

    /// Waits until the session called `name` has counted `events` events.
    pub fn wait_events(&self, name: &str, events: u64) {
        wait_session_events(&self.socket, name, events);
    }

    /// Waits until no provider process is attached to the daemon: the
    /// daemon has seen every provider process end, and a session stopped
    /// after this has the PROCESS_END records of those it took events from.
    pub fn wait_no_providers(&self) {
        wait_until(
            Duration::from_secs(30),
            "provider processes to detach",
            || self.client().providers().expect("providers").is_empty(),
        );
    }

    /// `ferret fmt --format json FILES...`: every event and loss record,
    /// asserting that fmt found no damage (it reports damage on stderr).
    pub fn fmt_json(&self, files: &[&Path]) -> Vec<serde_json::Value> {
        let mut args = vec!["fmt", "--format", "json"];
        args.extend(files.iter().map(|f| f.to_str().expect("path")));
        let out = self.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "ferret {args:?} ({}): {stderr}",
            out.status
        );
        String::from_utf8(out.stdout)
            .expect("utf-8 stdout")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
            .collect()
    }

    /// Runs `ferret ARGS...` in the background with stdout and stderr piped;
    /// stderr is collected as it comes, stdout is left alone until
    /// [`Background::follow`] or [`Background::read_to_end`].
    pub fn spawn(&self, args: &[&str]) -> Background {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferret");
        let stdout = child.stdout.take();
        let mut stderr = child.stderr.take().expect("stderr");
        let collected = Arc::new(Mutex::new(String::new()));
        let sink = collected.clone();
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Background {
            child,
            stdout,
            lines: None,
            stderr: collected,
            stderr_reader: Some(stderr_reader),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A `ferret` command running in the background.
#[derive(Debug)]
pub struct Background {
    pub child: Child,
    stdout: Option<ChildStdout>,
    lines: Option<Receiver<String>>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    args: Vec<String>,
}

impl Background {
    /// Starts reading stdout line by line in a thread.
    pub fn follow(&mut self) {
        if self.lines.is_some() {
            return;
        }
        let stdout = self.stdout.take().expect("stdout not yet read");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.lines = Some(rx);
    }

    /// The next stdout line, or None at the end of output or after `limit`.
    pub fn next_line(&mut self, limit: Duration) -> Option<String> {
        self.follow();
        self.lines
            .as_ref()
            .expect("following")
            .recv_timeout(limit)
            .ok()
    }

    /// Reads stdout lines until one satisfies `pred`, for at most `limit`;
    /// panics naming `what` (and the lines seen) if none does.
    pub fn wait_for_line(
        &mut self,
        limit: Duration,
        what: &str,
        mut pred: impl FnMut(&str) -> bool,
    ) -> String {
        self.follow();
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.as_ref().expect("following").recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(line) => seen.push(line),
                Err(e) => panic!(
                    "{:?}: no line with {what} ({e:?}); saw {} lines, the last: {:#?}\nstderr: {}",
                    self.args,
                    seen.len(),
                    &seen[seen.len().saturating_sub(10)..],
                    self.stderr()
                ),
            }
        }
    }

    /// Reads every remaining stdout line until the command closes its
    /// output, for at most `limit`.
    pub fn read_to_end(&mut self, limit: Duration) -> Vec<String> {
        self.follow();
        let deadline = Instant::now() + limit;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.as_ref().expect("following").recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Disconnected) => return lines,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{:?} did not finish its output within {limit:?} ({} lines read)\nstderr: {}",
                    self.args,
                    lines.len(),
                    self.stderr()
                ),
            }
        }
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits up to `limit` for the command to exit.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // The command's stderr closed when it exited: collect the
                // rest of it, so that what it said last is in `stderr()`.
                if let Some(reader) = self.stderr_reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} did not exit within {limit:?}; stderr: {}",
                self.args,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            terminate(&mut self.child);
        }
    }
}

/// The `seq` field of each event in `fmt --format json` output, skipping
/// loss and process-end records.
pub fn seqs(entries: &[serde_json::Value]) -> Vec<u64> {
    entries
        .iter()
        .filter(|e| e.get("event").is_some())
        .map(|e| {
            e["fields"]["seq"]
                .as_u64()
                .unwrap_or_else(|| panic!("no seq in {e}"))
        })
        .collect()
}

/// Runs `ferret` as the unprivileged user 65534 (the caller must be root).
pub fn run_as_nobody(env: &Env, args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    Command::new(ferret_bin())
        .arg("--socket")
        .arg(&env.socket)
        .args(args)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run as nobody")
}

/// True if the tests run as root, which may switch to other users.
pub fn running_as_root() -> bool {
    rustix::process::getuid().is_root()
}

/// Lets user 65534 reach the daemon's socket, so that the daemon's own
/// ownership checks are what refuses.
pub fn open_socket_to_everyone(env: &Env) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&env.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
}

/// Asserts that `err` is one line and returns it.
pub fn one_line(err: &str) -> &str {
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {err}");
    lines[0]
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            terminate(&mut child);
        }
        // A daemon the CLI started in the background (or one a failed test
        // left behind) would outlive the test: stop it too.
        self.stop_background_daemon();
    }
}

impl Env {
    /// Sends SIGTERM to whatever daemon answers on the socket (one the CLI
    /// started in the background) and waits up to 20 s for it to remove its
    /// socket. False if none answered or it did not exit in time.
    pub fn stop_background_daemon(&self) -> bool {
        let Ok(c) = Client::connect(&self.socket) else {
            return false;
        };
        let Some(pid) = rustix::process::Pid::from_raw(c.daemon_pid() as i32) else {
            return false;
        };
        drop(c);
        if rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_err() {
            return false;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.socket.exists() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

/// SIGTERM, then wait up to 20 s, then SIGKILL.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every event in a log file, decoded with the same code `ferret fmt` uses:
/// (tid, provider, event name, fields as name/value text).
#[derive(Debug)]
pub struct Decoded {
    pub events: Vec<DecodedEvent>,
    pub damage: Vec<String>,
    pub trailer: Option<ferret_decode::Trailer>,
}

#[derive(Debug)]
pub struct DecodedEvent {
    pub pid: u32,
    pub tid: u32,
    pub provider: String,
    pub name: String,
    pub level: u8,
    pub timestamp_ns: u64,
    pub seq: Option<u64>,
    pub msg: Option<String>,
}

pub fn decode(path: &Path) -> Decoded {
    use ferret_abi::Value;
    let mut d = ferret_decode::FileDecoder::open(path).expect("open log");
    let mut events = Vec::new();
    let mut damage = Vec::new();
    d.for_each(|e| {
        match e {
            ferret_decode::Entry::Event(ev) => {
                let mut seq = None;
                let mut msg = None;
                for (f, v) in ev.ty.fields.iter().zip(ev.values) {
                    match (f.name.as_str(), v) {
                        ("seq", Value::U64(n)) => seq = Some(*n),
                        ("msg", Value::Str(s)) => msg = Some(s.to_string()),
                        _ => {}
                    }
                }
                events.push(DecodedEvent {
                    pid: ev.pid,
                    tid: ev.tid,
                    provider: ev.ty.provider.name.clone(),
                    name: ev.ty.name.clone(),
                    level: ev.ty.level,
                    timestamp_ns: ev.timestamp_ns,
                    seq,
                    msg,
                });
            }
            ferret_decode::Entry::Corrupt(c) => damage.push(c.to_string()),
            ferret_decode::Entry::BadRecord { error, .. } => damage.push(error),
            _ => {}
        }
        Ok(())
    })
    .expect("decode");
    let trailer = d.trailer().copied();
    Decoded {
        events,
        damage,
        trailer,
    }
}

/// One decoded event with every field, each as `(name, Debug of the
/// value)`, which shows the value's type (`U64(3)`, `Str("a")`), for tests
/// that check what bridges and macros wrote.
#[derive(Debug)]
pub struct TypedEvent {
    pub provider: String,
    pub name: String,
    pub level: u8,
    pub opcode: u8,
    pub keywords: u64,
    pub activity: Option<ferret_abi::Guid>,
    pub related: Option<ferret_abi::Guid>,
    pub fields: Vec<(String, String)>,
}

impl TypedEvent {
    /// The field called `name`, as `Debug` of its value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every event in a log file with its typed fields; panics on any damage.
pub fn typed_events(path: &Path) -> Vec<TypedEvent> {
    let mut d = ferret_decode::FileDecoder::open(path).expect("open log");
    let mut events = Vec::new();
    d.for_each(|e| {
        match e {
            ferret_decode::Entry::Event(ev) => events.push(TypedEvent {
                provider: ev.ty.provider.name.clone(),
                name: ev.ty.name.clone(),
                level: ev.ty.level,
                opcode: ev.ty.opcode,
                keywords: ev.ty.keywords,
                activity: ev.activity_id,
                related: ev.related_activity_id,
                fields: ev
                    .ty
                    .fields
                    .iter()
                    .zip(ev.values)
                    .map(|(f, v)| (f.name.clone(), format!("{v:?}")))
                    .collect(),
            }),
            ferret_decode::Entry::Corrupt(c) => panic!("damaged log: {c}"),
            ferret_decode::Entry::BadRecord { error, .. } => panic!("bad record: {error}"),
            _ => {}
        }
        Ok(())
    })
    .expect("decode");
    events
}

impl Env {
    /// A directory with `ferret daemon ARGS...` running on its socket with
    /// the extra environment variables `vars` (a fault-injection shim in
    /// `LD_PRELOAD`, say).
    pub fn with_daemon_env(args: &[&str], vars: &[(&str, &std::ffi::OsStr)]) -> Env {
        Env::spawn_daemon(&[], args, vars)
    }

    /// `ferret daemon ARGS...` on a new socket, run by `wrapper` (a program
    /// that runs the rest of its command line in the same process) if one
    /// is given, with the extra environment `vars`.
    fn spawn_daemon(wrapper: &[&str], args: &[&str], vars: &[(&str, &std::ffi::OsStr)]) -> Env {
        let mut env = Env::without_daemon();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(env.dir.path().join("daemon.log"))
            .expect("daemon log");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(ferret_bin());
                c
            }
            None => Command::new(ferret_bin()),
        };
        command
            .arg("--socket")
            .arg(&env.socket)
            .arg("daemon")
            .args(args)
            .env("FERRET_KEEPER_LINGER_S", "30")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        for (name, value) in vars {
            command.env(name, value);
        }
        env.daemon = Some(command.spawn().expect("spawn daemon"));
        let socket = env.socket.clone();
        wait_until(Duration::from_secs(20), "the daemon to answer", || {
            Client::connect(&socket).is_ok()
        });
        env
    }
}

/// The sum of the counts of every LOST record in a log.
pub fn lost_records(log: &Path) -> u64 {
    let mut d = ferret_decode::FileDecoder::open(log).expect("open log");
    let mut lost = 0;
    d.for_each(|e| {
        if let ferret_decode::Entry::Lost { count, .. } = e {
            lost += count;
        }
        Ok(())
    })
    .expect("decode");
    lost
}

/// A field of `/proc/PID/status` given in kB ("VmRSS", "RssAnon"), in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let prefix = format!("{field}:");
    status
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

impl Env {
    /// A directory with `ferret daemon ARGS...` running on its socket under
    /// `wrapper`, a program that runs the rest of its command line in the
    /// same process (`setpriv` taking a capability away, say), so that
    /// [`Env::daemon_pid`] is still the daemon's.
    pub fn with_daemon_under(wrapper: &[&str], args: &[&str]) -> Env {
        assert!(!wrapper.is_empty(), "a wrapper program");
        Env::spawn_daemon(wrapper, args, &[])
    }
}

pub mod debuggee;
pub mod hostile;
pub mod inprocess;
pub mod logbuild;
pub mod many_providers;
pub mod programs;
pub mod sshd;
pub mod stall;
pub mod tmux;
