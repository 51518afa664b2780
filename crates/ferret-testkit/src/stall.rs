//! Helpers for the tests whose log files stall: an LD_PRELOAD shim
//! (shims/stall_writes.c, compiled here with `cc`) that makes the
//! daemon's writes to chosen files wait while a flag file exists, as writes
//! to a hung mount wait in the kernel, and verbs run with a deadline.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Env;

pub const LIMIT: Duration = Duration::from_secs(20);
/// A generous bound for one control verb on a loaded two-core machine, far
/// below the stall, which lasts until the test ends it.
pub const VERB: Duration = Duration::from_secs(2);
pub const PAD: &str = "the quick brown fox jumps over the lazy dog";

/// Builds the shim `shims/NAME.c` into `dir` and returns its path.
pub fn build_shim(dir: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("shims/{name}.c"));
    let out = dir.join(format!("{name}.so"));
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-ldl")
        .status()
        .expect("run cc to build a test shim");
    assert!(status.success(), "cc failed to build {}", src.display());
    out
}

/// Runs `ferret ARGS...` for at most `limit`; a command that takes longer
/// is killed and fails the test instead of hanging it.
pub fn within(env: &Env, args: &[&str], limit: Duration) -> std::process::Output {
    let child = env
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferret");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(limit) else {
        let _ = Command::new("kill").arg(pid.to_string()).status();
        panic!("ferret {args:?} took more than {limit:?} while a log file stalled");
    };
    out.expect("ferret output")
}

/// Runs `ferret ARGS...` and asserts that it succeeds within [`VERB`];
/// returns its stdout.
pub fn quick(env: &Env, args: &[&str]) -> String {
    let start = Instant::now();
    let out = within(env, args, VERB);
    assert!(
        out.status.success(),
        "ferret {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if args[0] != "query" {
        eprintln!("ferret {args:?}: {:?}", start.elapsed());
    }
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// `ferret query NAME --json`, within [`VERB`].
pub fn query(env: &Env, name: &str) -> serde_json::Value {
    serde_json::from_str(&quick(env, &["query", name, "--json"])).expect("query JSON")
}

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A daemon whose writes to files whose paths end with `suffix` wait
/// while the returned flag file exists, and this process's providers
/// configured to use it. The temporary directory holds the shim and flag.
pub fn stalling_env(suffix: &str) -> (Env, PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let shim = build_shim(tmp.path(), "stall_writes");
    let flag = tmp.path().join("stall");
    let env = Env::with_daemon_env(
        &[],
        &[
            ("LD_PRELOAD", shim.as_os_str()),
            ("FERRET_TEST_STALL_PATH", OsStr::new(suffix)),
            ("FERRET_TEST_STALL_WHILE", flag.as_os_str()),
        ],
    );
    assert!(ferret_provider::configure(ferret_provider::Options {
        socket: env.socket.clone(),
        ..ferret_provider::Options::default()
    }));
    (env, flag, tmp)
}
