//! Names that come from other programs (a provider process's name, taken
//! from its executable) are printed escaped by `ferret providers` and by
//! `ferret fmt` in text and CSV, so that no escape sequence or control
//! character in them reaches the terminal raw.

use ferret_testkit as util;

use std::process::Stdio;

use util::Env;

#[test]
fn a_process_named_with_an_escape_sequence_is_shown_escaped() {
    let env = Env::new();
    let log = env.path("names.ferret");
    env.start("names", "E2E.Names", &log, &[]);
    // The kernel names a process after the file it executes: a link
    // whose name holds ESC [ 2 J (clear the screen).
    let link = env.path("x\u{1b}[2Jy");
    std::os::unix::fs::symlink(util::ferret_bin(), &link).unwrap();
    let mut emitter = std::process::Command::new(&link)
        .arg("--socket")
        .arg(&env.socket)
        .args([
            "emit",
            "--provider",
            "E2E.Names",
            "--count",
            "100000",
            "--rate",
            "1000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    util::wait_until(
        std::time::Duration::from_secs(20),
        "the provider to register",
        || !env.client().providers().unwrap().is_empty(),
    );
    let providers = env.ok(&["providers"]);
    let row = providers
        .lines()
        .find(|l| l.starts_with("E2E.Names "))
        .unwrap_or_else(|| panic!("{providers}"));
    assert!(!providers.contains('\u{1b}'), "{providers:?}");
    assert!(row.contains(" x\\u{1b}[2Jy "), "{row:?}");

    emitter.kill().unwrap();
    emitter.wait().unwrap();
    env.wait_no_providers();
    env.ok(&["stop", "names"]);
    let text = env.ok(&["fmt", log.to_str().unwrap()]);
    let csv = env.ok(&["fmt", "--format", "csv", log.to_str().unwrap()]);
    assert!(!text.contains('\u{1b}'), "raw ESC in text output");
    assert!(!csv.contains('\u{1b}'), "raw ESC in CSV output");
    assert_eq!(
        text.lines()
            .last()
            .unwrap()
            .split(' ')
            .skip(2)
            .collect::<Vec<_>>(),
        ["ENDED", "process", "x\\u{1b}[2Jy"]
    );
    let row = csv.lines().nth(1).unwrap();
    assert!(row.contains(",x\\u{1b}[2Jy,"), "{row:?}");
}
