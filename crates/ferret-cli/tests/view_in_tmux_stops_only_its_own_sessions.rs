//! `ferret view` driven as a person drives it: the real binary in a tmux
//! pane, keys and a right-click sent with send-keys, the screen read back
//! with capture-pane. A session started from the viewer shows live
//! messages from `ferret emit` and goes RUNNING to STOPPED when stopped
//! there; a session started from the CLI cannot be stopped from the viewer,
//! whose hint names the command that can; Remove keeps the log file. Flush
//! and Query work on any session, and a viewer that falls behind a flood
//! says how many events it missed. Each session shown keeps receiving
//! while another row is selected.

use ferret_testkit as util;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use util::tmux::{Tmux, session_line, tmux_available};
use util::{Env, ferret_bin, wait_until};

/// Long enough for a loaded 2-core machine; a wait ends as soon as its
/// condition holds.
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn the_viewer_stops_what_it_started_and_explains_the_rest() {
    if !tmux_available() {
        // CI installs tmux (.ci/run); elsewhere the test says why it did
        // not run rather than failing on a missing tool.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have tmux installed"
        );
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let env = Env::new();
    let cli_log = env.path("cli.ferret");
    env.start("cli", "E2E.View", &cli_log, &[]);

    let tmux = Tmux {
        socket: env.path("tmux.sock"),
    };
    let view_cmd = format!(
        "{} --socket {} view",
        ferret_bin().display(),
        env.socket.to_str().expect("socket path")
    );
    tmux.new_view(&view_cmd);
    tmux.wait_screen("the CLI session listed RUNNING", |s| {
        session_line(s, "cli").is_some_and(|l| l.contains("RUNNING"))
    });

    // Start a real-time session with a log file from the viewer's form.
    let mine_log = env.path("mine.ferret");
    tmux.start_from_form("mine", "E2E.View:5", &mine_log);
    tmux.wait_screen("the viewer's own session, marked as started here", |s| {
        session_line(s, "mine").is_some_and(|l| l.contains("RUNNING") && l.contains("yes"))
    });

    // Its live messages arrive in the message pane.
    env.emit("E2E.View", 20, &["--level", "warning"]);
    tmux.wait_screen("live messages from ferret emit", |s| {
        s.contains("E2E.View/Sample") && s.contains("seq=19")
    });

    // A right-click on the CLI session's row opens its menu; Stop Trace
    // there explains and names the command.
    tmux.right_click(10, tmux.row_of("cli"));
    tmux.wait_screen("the context menu", |s| s.contains("Stop Trace"));
    tmux.keys(&["Enter"]);
    tmux.wait_screen("the hint naming the command", |s| {
        s.contains("stop it with 'ferret stop cli'")
    });
    assert_eq!(env.session("cli").state.name(), "RUNNING");

    // The viewer's own session stops from the viewer, and the State column
    // follows without a key press.
    tmux.keys(&["Down", "s"]);
    tmux.wait_screen("the viewer's session STOPPED", |s| {
        session_line(s, "mine").is_some_and(|l| l.contains("STOPPED"))
    });

    // Remove takes the row off the list and leaves the log.
    tmux.keys(&["r"]);
    tmux.wait_screen("the row removed", |s| {
        session_line(s, "mine").is_none() && s.contains("removed 'mine'")
    });
    assert!(mine_log.exists(), "remove kept {}", mine_log.display());
    assert!(log_has_events(&mine_log));

    tmux.keys(&["q"]);
    wait_until(LIMIT, "the viewer to exit", || {
        !tmux.cmd(&["has-session", "-t", "view"]).status.success()
    });
    // The terminal was handed back: tmux ended the session because the
    // viewer exited, not because it crashed.
    assert_eq!(env.session("cli").state.name(), "RUNNING");
}

fn log_has_events(path: &Path) -> bool {
    util::decode(path)
        .events
        .iter()
        .any(|e| e.provider == "E2E.View")
}

#[test]
fn the_viewer_shows_the_messages_of_log_files() {
    if !tmux_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have tmux installed"
        );
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let env = Env::new();
    let log = env.path("old.ferret");
    env.start("old", "E2E.File", &log, &[]);
    env.emit("E2E.File", 10, &["--level", "error"]);
    env.ok(&["stop", "old"]);

    let tmux = Tmux {
        socket: env.path("tmux.sock"),
    };
    let view_cmd = format!(
        "{} --socket {} view {}",
        ferret_bin().display(),
        env.socket.to_str().expect("socket path"),
        log.to_str().expect("log path")
    );
    tmux.new_view(&view_cmd);
    let screen = tmux.wait_screen("the file's events and its name", |s| {
        s.contains("old.ferret") && s.contains("E2E.File/Sample") && s.contains("seq=9")
    });
    // Files only: no session list.
    assert!(!screen.contains("Trace Sessions"), "{screen}");
    assert!(
        screen.contains("10 messages") || screen.contains("11 messages"),
        "{screen}"
    );
    tmux.keys(&["q"]);
    wait_until(LIMIT, "the viewer to exit", || {
        !tmux.cmd(&["has-session", "-t", "view"]).status.success()
    });
}

/// Holds a process stopped with SIGSTOP, and lets it go on when dropped,
/// so that a failing test does not leave it stopped.
struct Stopped(String);

impl Stopped {
    fn new(pid: &str) -> Stopped {
        signal(pid, "-STOP");
        Stopped(pid.to_string())
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(&self.0, "-CONT");
    }
}

fn signal(pid: &str, sig: &str) {
    let status = Command::new("kill")
        .args([sig, pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid}");
}

/// The number after `label` on the screen line that has it.
fn number_after(screen: &str, label: &str) -> Option<u64> {
    let at = screen.find(label)? + label.len();
    let digits: String = screen[at..]
        .trim_start_matches([' ', ':'])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[test]
fn the_viewer_flushes_queries_and_counts_what_it_missed() {
    if !tmux_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have tmux installed"
        );
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let env = Env::new();
    let log = env.path("flood.ferret");
    // No-loss, so that the only loss is the viewer's: on a loaded machine
    // the drain could otherwise drop events for reasons of its own.
    env.start("flood", "E2E.Flood", &log, &["--realtime", "--no-loss"]);

    let tmux = Tmux {
        socket: env.path("tmux.sock"),
    };
    // exec, so that the pane's process is the viewer itself, to be
    // stopped and continued below. Tall enough for the whole Query panel.
    let view_cmd = format!(
        "exec {} --socket {} view",
        ferret_bin().display(),
        env.socket.to_str().expect("socket path")
    );
    tmux.ok(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "view",
        "-x",
        "100",
        "-y",
        "50",
        &view_cmd,
    ]);
    tmux.wait_screen("the session listed RUNNING", |s| {
        session_line(s, "flood").is_some_and(|l| l.contains("RUNNING"))
    });
    // The only session is shown at once, as a real-time consumer.
    wait_until(LIMIT, "the viewer to attach", || {
        env.session("flood").consumers == 1
    });

    // Flush works on a session started elsewhere and reports the result.
    env.emit("E2E.Flood", 10, &[]);
    tmux.keys(&["f"]);
    tmux.wait_screen("the flush result", |s| {
        s.contains("flushed 'flood':") && s.contains("buffers written")
    });

    // Query shows the properties panel with the session's counters.
    tmux.keys(&["i"]);
    let screen = tmux.wait_screen("the Query panel", |s| {
        s.contains("Query: flood") && s.contains("Real-Time Buffers Lost")
    });
    let events = number_after(&screen, "Events                ");
    assert!(events.is_some_and(|n| n >= 10), "{screen}");
    assert!(screen.contains("1 consumer(s) attached"), "{screen}");
    tmux.keys(&["Escape"]);
    tmux.wait_screen("the panel closed", |s| !s.contains("Query: flood"));

    // A viewer that cannot keep up: stopped, it reads nothing, and the
    // daemon drops buffers for it while a flood goes on. Floods are
    // repeated until the daemon has counted a loss, so the test does not
    // depend on how fast this machine is.
    let pid = String::from_utf8_lossy(
        &tmux
            .cmd(&["display-message", "-p", "-t", "view", "#{pane_pid}"])
            .stdout,
    )
    .trim()
    .to_string();
    {
        let _stopped = Stopped::new(&pid);
        let deadline = std::time::Instant::now() + LIMIT;
        while env.session("flood").counters.rt_buffers_lost == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no buffers were lost for the stopped viewer"
            );
            env.emit("E2E.Flood", 200_000, &["--threads", "2"]);
        }
    }
    // Running again, it catches up; the next buffer it gets carries the
    // running total it missed, which the pane shows.
    env.emit("E2E.Flood", 10, &[]);
    let screen = tmux.wait_screen("a non-zero missed count", |s| {
        number_after(s, "| missed ").is_some_and(|n| n > 0)
    });
    assert!(
        screen.contains("events missed: this viewer fell behind"),
        "{screen}"
    );

    tmux.keys(&["q"]);
    wait_until(LIMIT, "the viewer to exit", || {
        !tmux.cmd(&["has-session", "-t", "view"]).status.success()
    });
    assert_eq!(env.session("flood").state.name(), "RUNNING");
}

#[test]
fn a_session_switched_away_from_keeps_receiving_its_messages() {
    if !tmux_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have tmux installed"
        );
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let env = Env::new();
    env.start("one", "E2E.One", &env.path("one.ferret"), &["--realtime"]);
    env.start("two", "E2E.Two", &env.path("two.ferret"), &["--realtime"]);

    let tmux = Tmux {
        socket: env.path("tmux.sock"),
    };
    let view_cmd = format!(
        "{} --socket {} view",
        ferret_bin().display(),
        env.socket.to_str().expect("socket path")
    );
    tmux.new_view(&view_cmd);
    tmux.wait_screen("both sessions listed", |s| {
        session_line(s, "one").is_some() && session_line(s, "two").is_some()
    });
    // The first row is shown at once.
    wait_until(LIMIT, "the viewer to attach to 'one'", || {
        env.session("one").consumers == 1
    });
    env.emit("E2E.One", 3, &[]);
    tmux.wait_screen("one's first messages", |s| {
        s.contains("live: one") && s.contains("E2E.One/Sample") && s.contains("seq=2")
    });

    // Showing 'two' keeps 'one' streamed: both have a consumer.
    tmux.keys(&["Down"]);
    wait_until(LIMIT, "the viewer to attach to 'two'", || {
        env.session("two").consumers == 1
    });
    assert_eq!(env.session("one").consumers, 1);
    tmux.wait_screen("two's empty pane", |s| {
        s.contains("live: two") && !s.contains("E2E.One/Sample")
    });
    // Seven more for 'one' while 'two' is shown: seq=6 exists only in
    // this second run, so seeing it proves the stream went on.
    env.emit("E2E.One", 7, &[]);
    env.emit("E2E.Two", 2, &[]);
    tmux.wait_screen("two's messages", |s| {
        s.contains("E2E.Two/Sample") && s.contains("seq=1")
    });
    wait_until(LIMIT, "one's buffers to be sent", || {
        env.session("one").counters.events == 10
    });

    tmux.keys(&["Up"]);
    tmux.wait_screen("one's messages from before and while away", |s| {
        s.contains("live: one") && s.contains("seq=6") && s.matches("E2E.One/Sample").count() == 10
    });

    tmux.keys(&["q"]);
    wait_until(LIMIT, "the viewer to exit", || {
        !tmux.cmd(&["has-session", "-t", "view"]).status.success()
    });
}
