//! `ferret fmt F`, `ferret fmt - < F` and `cat F | ferret fmt -` print the
//! same lines: one file, one answer, whatever the input is.

use ferret_testkit as util;

use std::io::Write;
use std::process::Stdio;

use util::Env;

#[test]
fn a_file_a_redirect_and_a_pipe_decode_alike() {
    let env = Env::new();
    let log = env.path("one.ferret");
    env.start("one", "E2E.OneAnswer", &log, &[]);
    // Paced over more than a second, so that the trailer's stop anchor
    // refines the tick rate (it does only for sessions that long).
    env.emit("E2E.OneAnswer", 1500, &["--rate", "1000"]);
    env.wait_no_providers();
    env.ok(&["stop", "one"]);
    let path = log.to_str().unwrap();

    let from_file = env.ok(&["fmt", path]);
    let redirected = env
        .command(&["fmt", "-"])
        .stdin(std::fs::File::open(&log).unwrap())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(redirected.status.success());

    let mut piped = env
        .command(&["fmt", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&log).unwrap();
    let mut input = piped.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || input.write_all(&bytes));
    let piped = piped.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(piped.status.success());

    assert_eq!(from_file.lines().count(), 1501);
    assert_eq!(String::from_utf8(redirected.stdout).unwrap(), from_file);
    assert_eq!(String::from_utf8(piped.stdout).unwrap(), from_file);
}
