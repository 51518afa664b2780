//! A root daemon gives each file it creates for a user's new-file series to
//! that user. When it cannot (fchown fails with EPERM, as for a daemon
//! without CAP_CHOWN or on a file system that refuses ownership changes),
//! the file is removed rather than left as root's in the user's directory:
//!
//! - at a rotation, the series skips that file: the buffers it would have
//!   held are counted as log buffers lost, `query` says which file and why
//!   (as past once the next file takes buffers), and the next file starts
//!   where it would have, so that every file describes its events and
//!   decodes alone (before: the next file started one buffer early and
//!   every later file's events were of undescribed types, and the error
//!   read as current for the rest of the session);
//! - for the first file, `start` is refused in one line and no file is left.
//!
//! The rotation's fault is injected with an LD_PRELOAD shim
//! (tests/stall/fail_fchown.c, compiled here with `cc`) that fails fchown
//! for one file name; the first file's is real: the daemon runs under
//! `setpriv` with CAP_CHOWN out of its bounding set. Both need root, to run
//! the controller as another user.

use ferret_testkit as util;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use util::{Env, open_socket_to_everyone, running_as_root};

const NOBODY: u32 = 65534;

/// A directory that belongs to user 65534, for its series.
fn nobodys_dir(env: &Env) -> PathBuf {
    open_socket_to_everyone(env);
    let dir = env.path("theirs");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn start_series(env: &Env, pattern: &Path) -> std::process::Output {
    util::run_as_nobody(
        env,
        &[
            "start",
            "rot",
            "-p",
            "E2E.Chown",
            "--mode",
            "new-file",
            "-f",
            pattern.to_str().unwrap(),
            "--max-file-size",
            "16K",
            "--buffer-size",
            "4",
        ],
    )
}

#[test]
fn a_next_file_the_daemon_cannot_give_to_the_user_is_skipped_counted_and_named() {
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let shim_dir = tempfile::tempdir().unwrap();
    let shim = util::stall::build_shim(shim_dir.path(), "fail_fchown");
    let env = Env::with_daemon_env(
        &[],
        &[
            ("LD_PRELOAD", shim.as_os_str()),
            (
                "FERRET_TEST_FAIL_FCHOWN_PATH",
                "/theirs/r_2.ferret".as_ref(),
            ),
        ],
    );
    let dir = nobodys_dir(&env);
    let out = start_series(&env, &dir.join("r.ferret"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = dir.join("r_1.ferret");
    assert_eq!(std::fs::metadata(&first).unwrap().uid(), NOBODY);
    let report = env.emit("E2E.Chown", 3000, &[]);
    env.wait_no_providers();
    env.ok(&["stop", "rot"]);
    let s = env.json(&["query", "rot"]);
    let error = s["last_error"].as_str().unwrap_or_default();
    let second = dir.join("r_2.ferret");
    // The error names the file and why, and reads as past, since the
    // series went on with the next file.
    let (failure, past) = error
        .split_once(" (past: writing resumed at buffer ")
        .unwrap_or_else(|| panic!("the error does not read as past: {s}"));
    assert_eq!(
        failure,
        format!(
            "cannot create log file {}: cannot give the new log file to uid 65534: Operation not permitted (os error 1); later buffers are counted as log buffers lost",
            second.display()
        ),
        "{s}"
    );
    assert!(past.ends_with(')'), "{s}");
    // No file the user cannot own is left behind; the series skipped that
    // name and went on, every file the user's.
    assert!(
        !second.exists(),
        "a file the user cannot own was left behind"
    );
    let mut indexes: Vec<u64> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let n = name
                .strip_prefix("r_")
                .and_then(|n| n.strip_suffix(".ferret"))
                .unwrap_or_else(|| panic!("unexpected file {name}"));
            n.parse().unwrap()
        })
        .collect();
    indexes.sort_unstable();
    let last = *indexes.last().unwrap();
    assert!(last >= 3, "{indexes:?}");
    let expected: Vec<u64> = std::iter::once(1).chain(3..=last).collect();
    assert_eq!(indexes, expected);
    // The buffers meant for the file that could not be created are
    // counted; every other file decodes whole (each describes what its
    // events need), and the last one's trailer holds the session's final
    // counters.
    // A file holds as many buffers as the first one wrote (its trailer
    // counts the session's buffers so far): the second file's are lost.
    let per_file = util::decode(&dir.join("r_1.ferret"))
        .trailer
        .expect("the first file's trailer")
        .buffers_written;
    assert!(per_file > 0);
    assert_eq!(s["log_buffers_lost"].as_u64(), Some(per_file), "{s}");
    assert_eq!(s["events"].as_u64(), Some(3000), "{s}");
    assert_eq!(report["enabled_events"].as_u64(), Some(3000), "{report}");
    let mut logged = 0;
    for i in &indexes {
        let file = dir.join(format!("r_{i}.ferret"));
        assert_eq!(std::fs::metadata(&file).unwrap().uid(), NOBODY);
        let log = util::decode(&file);
        assert!(
            log.damage.is_empty(),
            "{}: {:?}",
            file.display(),
            log.damage
        );
        let trailer = log.trailer.expect("each finished file has its trailer");
        logged += log.events.len() as u64;
        if *i == last {
            assert_eq!(trailer.events, 3000, "{trailer:?}");
            assert_eq!(trailer.events_lost, 0, "{trailer:?}");
            assert_eq!(trailer.log_buffers_lost, per_file, "{trailer:?}");
        }
    }
    // What is missing is the lost buffers' events, which the counters count
    // only as buffers.
    assert!(logged > 0 && logged < 3000, "{logged} events in the files");
}

#[test]
fn a_first_file_the_daemon_cannot_give_to_the_user_refuses_the_start_in_one_line() {
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: needs setpriv (util-linux)");
        return;
    }
    let env = Env::with_daemon_under(&["setpriv", "--bounding-set", "-chown"], &[]);
    let dir = nobodys_dir(&env);
    let out = start_series(&env, &dir.join("r.ferret"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "ferret: cannot create log file '{}': cannot give the new log file to uid 65534: Operation not permitted (os error 1)",
            dir.join("r_1.ferret").display()
        )
    );
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(names.is_empty(), "{names:?}");
    env.fails(&["query", "rot"]);
}
