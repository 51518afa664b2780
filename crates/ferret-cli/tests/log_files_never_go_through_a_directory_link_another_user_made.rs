//! A log path is resolved one directory at a time, and a symbolic link
//! among its directories is followed only if this user or root made it:
//! a link that another user planted in a shared directory cannot point
//! root's `--overwrite`, append or new-file series into a directory of
//! that user's choosing, while the controller's own links work as always.
//!
//! The links of another user are made by root and handed to uid 65534 with
//! `lchown`; the tests need root and say "skipped: needs root" without it.

use ferret_testkit as util;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use util::{Env, running_as_root};

const NOBODY: u32 = 65534;

/// A world-writable sticky directory, as /tmp is, holding a link that uid
/// 65534 made to a root-only directory with a root-owned file in it.
struct Trap {
    /// The link's path (`shared/dirlink`).
    link: PathBuf,
    /// The root-only directory it points to.
    secret: PathBuf,
}

fn set_trap(env: &Env) -> Trap {
    let shared = env.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let secret = env.path("secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(secret.join("victim"), "root's own data").unwrap();
    let link = shared.join("dirlink");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(NOBODY), Some(NOBODY)).unwrap();
    Trap { link, secret }
}

fn refusal(path: &Path) -> String {
    format!(
        "ferret: cannot create log file '{}': its directory 'dirlink' is a symbolic link that uid 65534 made, neither this user nor root, and Ferret follows no one else's links; give the real path\n",
        path.display()
    )
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn another_users_directory_link_is_refused_in_every_file_mode() {
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let trap = set_trap(&env);
    let victim = trap.link.join("victim");
    let victim_text = victim.to_str().unwrap();
    let series = trap.link.join("series.ferret");
    let cases: [(&str, Vec<&str>, &Path); 3] = [
        ("overwrite", vec!["-f", victim_text, "--overwrite"], &victim),
        (
            "append",
            vec!["-f", victim_text, "--mode", "append"],
            &victim,
        ),
        (
            "new-file",
            vec![
                "-f",
                series.to_str().unwrap(),
                "--mode",
                "new-file",
                "--max-file-size",
                "1",
            ],
            &series,
        ),
    ];
    let mut got = Vec::new();
    let mut expected = Vec::new();
    for (mode, extra, shown) in cases {
        let mut args = vec!["start", mode, "-p", "P"];
        args.extend(extra);
        let out = env.run(&args);
        got.push((
            mode,
            out.status.code(),
            String::from_utf8(out.stderr).unwrap(),
        ));
        expected.push((mode, Some(1), refusal(shown)));
    }
    assert_eq!(got, expected);
    assert_eq!(
        std::fs::read_to_string(trap.secret.join("victim")).unwrap(),
        "root's own data"
    );
    assert_eq!(names_in(&trap.secret), ["victim"]);
    assert_eq!(env.ok(&["list", "--json"]).trim(), "[]");
}

#[test]
fn the_controllers_own_directory_link_is_followed_in_every_file_mode() {
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let logs = env.path("real-logs");
    std::fs::create_dir(&logs).unwrap();
    // A relative link, as `ln -s real-logs logs` makes, through a second
    // link of root's to the first: each is resolved where it lies.
    std::os::unix::fs::symlink("real-logs", env.path("logs")).unwrap();
    std::os::unix::fs::symlink(env.path("logs"), env.path("logs2")).unwrap();
    let one = env.path("logs/one.ferret");
    let two = env.path("logs2/two.ferret");
    let series = env.path("logs/series.ferret");
    env.start("one", "P", &one, &[]);
    env.start("two", "P", &two, &["--mode", "append"]);
    env.start(
        "three",
        "P",
        &series,
        &["--mode", "new-file", "--max-file-size", "1"],
    );
    for name in ["one", "two", "three"] {
        env.ok(&["stop", name]);
    }
    env.start("again", "P", &one, &["--overwrite"]);
    env.ok(&["stop", "again"]);
    assert_eq!(
        names_in(&logs),
        ["one.ferret", "series_1.ferret", "two.ferret"]
    );
}

#[test]
fn an_unprivileged_users_own_link_is_followed_and_another_users_is_not() {
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    util::open_socket_to_everyone(&env);
    let home = env.path("home");
    let real = home.join("real");
    std::fs::create_dir_all(&real).unwrap();
    for d in [&home, &real] {
        std::os::unix::fs::chown(d, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let own = home.join("logs");
    std::os::unix::fs::symlink("real", &own).unwrap();
    std::os::unix::fs::lchown(&own, Some(NOBODY), Some(NOBODY)).unwrap();
    let foreign = home.join("theirs");
    std::os::unix::fs::symlink("real", &foreign).unwrap();
    std::os::unix::fs::lchown(&foreign, Some(4243), Some(4243)).unwrap();

    let log = own.join("n.ferret");
    let out = util::run_as_nobody(
        &env,
        &["start", "n", "-p", "P", "-f", log.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = util::run_as_nobody(&env, &["stop", "n"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let refused = foreign.join("t.ferret");
    let out = util::run_as_nobody(
        &env,
        &["start", "t", "-p", "P", "-f", refused.to_str().unwrap()],
    );
    assert!(!out.status.success(), "a link of uid 4243 was followed");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "ferret: cannot create log file '{}': its directory 'theirs' is a symbolic link that uid 4243 made, neither this user nor root, and Ferret follows no one else's links; give the real path\n",
            refused.display()
        )
    );
    assert_eq!(names_in(&real), ["n.ferret"]);
}
