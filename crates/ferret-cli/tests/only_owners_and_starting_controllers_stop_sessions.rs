//! A user may control only the sessions it owns (root may control all),
//! and a controller that asks for "only mine" stops only the sessions it
//! started, being told how to stop the others from the command line.

use ferret_testkit as util;

use std::fs::OpenOptions;
use std::os::fd::AsFd;

use ferret_abi::proto::{
    ErrorCode, FileMode, ProviderSpec, SessionRef, SessionState, StartRequest,
};
use ferret_abi::{EnableFilter, Level};
use util::{Env, one_line, open_socket_to_everyone, run_as_nobody, running_as_root};

#[test]
fn a_user_who_does_not_own_a_session_cannot_control_it() {
    if !running_as_root() {
        // Switching to a second uid needs root; without it this test
        // cannot create the second user's processes.
        eprintln!("skipped: switching users needs root");
        return;
    }
    let env = Env::new();
    let log = env.path("owned.ferret");
    env.start("owned", "E2E.Owned", &log, &["--realtime"]);
    open_socket_to_everyone(&env);
    // A directory the other user may write to, so that the snapshot file
    // can be created and the daemon's check is what refuses.
    let shared = env.path("shared");
    std::fs::create_dir(&shared).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let snap = shared.join("snap.ferret");
    let attempts: Vec<Vec<&str>> = vec![
        vec!["stop", "owned"],
        vec!["stop", "1", "--no-wait"],
        vec!["update", "owned", "--flush-timer", "5"],
        vec!["enable", "owned", "E2E.Other"],
        vec!["disable", "owned", "E2E.Owned"],
        vec!["flush", "owned"],
        vec!["remove", "owned"],
        vec!["snapshot", "owned", "-f", snap.to_str().unwrap()],
        // Another user's events are not theirs to read either.
        vec!["tail", "owned"],
    ];
    for args in &attempts {
        let out = run_as_nobody(&env, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        let line = one_line(&err);
        assert!(
            line.contains("belongs to uid 0; only its owner or root may control it"),
            "{args:?}: {line}"
        );
    }
    // Looking is allowed, and nothing changed.
    assert!(run_as_nobody(&env, &["query", "owned"]).status.success());
    assert!(run_as_nobody(&env, &["list"]).status.success());
    let s = env.json(&["query", "owned"]);
    assert_eq!(s["state"], "RUNNING");
    assert_eq!(s["flush_timer_ms"], 1000);
    assert_eq!(s["providers"].as_array().unwrap().len(), 1);
    // The owner (root) still can.
    env.ok(&["stop", "owned"]);
}

fn start_request(name: &str, log: &std::path::Path) -> StartRequest {
    StartRequest {
        name: name.into(),
        providers: vec![ProviderSpec {
            name: "E2E.Mine".into(),
            filter: EnableFilter::level(Level::Verbose),
        }],
        log_file: log.display().to_string(),
        buffer_kib: ferret_abi::limits::DEFAULT_BUFFER_KIB,
        max_buffers: ferret_abi::limits::DEFAULT_MAX_BUFFERS,
        flush_timer_ms: ferret_abi::limits::DEFAULT_FLUSH_TIMER_MS,
        min_buffers: 4,
        file_mode: FileMode::Sequential,
        max_file_bytes: 0,
        realtime: false,
        controller: "only-mine test".into(),
        no_loss: false,
        no_loss_wait_ms: 0,
    }
}

#[test]
fn a_controller_asking_for_only_mine_stops_only_the_sessions_it_started() {
    let env = Env::new();
    // One session from the command line, one from this controller.
    env.start("theirs", "E2E.Mine", &env.path("theirs.ferret"), &[]);
    let log = env.path("mine.ferret");
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&log)
        .unwrap();
    let mut client = env.client();
    let started = client
        .start(start_request("mine", &log), Some(file.as_fd()))
        .expect("start");
    drop(file);
    assert_eq!(started.session.controller, "only-mine test");

    // The token of "mine" does not stop "theirs"; the refusal says how to.
    let err = client
        .stop_mine(&SessionRef::Name("theirs".into()), started.token, true)
        .expect_err("another controller's session");
    assert_eq!(err.code(), Some(ErrorCode::Permission), "{err}");
    let msg = err.to_string();
    assert!(
        one_line(&msg).contains("ferret stop theirs"),
        "the refusal names the command line that stops it: {msg}"
    );
    // A wrong token is refused for the starter's own session too.
    let err = client
        .stop_mine(&SessionRef::Name("mine".into()), started.token ^ 1, true)
        .expect_err("wrong token");
    assert_eq!(err.code(), Some(ErrorCode::Permission), "{err}");
    assert!(err.to_string().contains("ferret stop mine"), "{err}");
    assert_eq!(env.session("theirs").state, SessionState::Running);
    assert_eq!(env.session("mine").state, SessionState::Running);

    // The right token works, from any connection.
    let s = env
        .client()
        .stop_mine(
            &SessionRef::Id(started.session.logger_id),
            started.token,
            true,
        )
        .expect("stop my own session");
    assert_eq!(s.state, SessionState::Stopped);
    // The token is a secret between the daemon and its controller: it is
    // in no listing (checked where the token is long enough not to appear
    // by chance among the other numbers).
    let listed = serde_json::to_string(&env.json(&["list"])).unwrap();
    if started.token > 1 << 40 {
        assert!(!listed.contains(&started.token.to_string()), "{listed}");
    }
    // A plain stop (no "only mine") of the other session works as before.
    env.ok(&["stop", "theirs"]);
}
