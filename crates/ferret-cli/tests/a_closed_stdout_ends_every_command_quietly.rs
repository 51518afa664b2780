//! A reader that closes the command's standard output (`ferret list | head
//! -0`, `ferret query S | true`) ends every printing command quietly, with
//! status 0, as `fmt` always did: no panic, no error line.

use ferret_testkit as util;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use util::Env;

/// Runs `ferret ARGS...` with its standard output a pipe nobody reads:
/// the read end is closed before the command starts, so its first write
/// meets a closed pipe.
fn run_into_closed_pipe(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills `fds` with two new descriptors, which are owned
    // here from then on.
    let (reader, writer) = unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    drop(reader);
    let out = env
        .command(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run ferret");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_printing_command_ends_quietly_on_a_closed_pipe() {
    let env = Env::new();
    let log = env.path("s.etl");
    env.start("s", "ClosedPipe", &log, &[]);
    let commands: [&[&str]; 9] = [
        &["list"],
        &["list", "--json"],
        &["query", "s"],
        &["query", "s", "--json"],
        &["providers"],
        &["providers", "--json"],
        &["flush", "s"],
        &["enable", "s", "Other"],
        &["emit", "--provider", "ClosedPipe", "--count", "10"],
    ];
    for args in commands {
        assert_eq!(
            run_into_closed_pipe(&env, args),
            (Some(0), String::new()),
            "ferret {args:?}"
        );
    }
}
