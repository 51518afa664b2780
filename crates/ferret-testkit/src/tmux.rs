//! Driving a terminal program as a person does: a tmux server of the
//! test's own, keys and mouse reports sent with send-keys, the screen read
//! back with capture-pane. Used by the tests of `ferret view`.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

/// Long enough for a loaded 2-core machine; a wait ends as soon as its
/// condition holds.
const LIMIT: Duration = Duration::from_secs(60);

/// A tmux server of this test's own, on a socket in the test's directory.
#[derive(Debug)]
pub struct Tmux {
    /// The server's socket.
    pub socket: PathBuf,
}

impl Tmux {
    /// Runs `tmux -S SOCKET ARGS...`.
    pub fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// Runs and asserts success.
    pub fn ok(&self, args: &[&str]) {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The pane `view` as text.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "view"]).stdout)
            .into_owned()
    }

    /// Starts the server with one window `view`, 100 by 30, running
    /// `command` (through the shell).
    pub fn new_view(&self, command: &str) {
        self.ok(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "view",
            "-x",
            "100",
            "-y",
            "30",
            command,
        ]);
    }

    /// Fills `ferret view`'s start form (`n`) with a name, a provider spec
    /// and a log file, and submits it.
    pub fn start_from_form(&self, name: &str, provider: &str, file: &std::path::Path) {
        self.keys(&["n"]);
        self.wait_screen("the start form", |s| s.contains("Start a trace session"));
        self.type_text(name);
        self.keys(&["Tab"]);
        self.type_text(provider);
        self.keys(&["Tab"]);
        self.type_text(file.to_str().expect("log path"));
        self.keys(&["Enter"]);
    }

    /// Types text literally (no key names).
    pub fn type_text(&self, text: &str) {
        self.ok(&["send-keys", "-t", "view", "-l", text]);
    }

    /// Sends keys by tmux's names (Enter, Tab, Down).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "view"];
        args.extend_from_slice(keys);
        self.ok(&args);
    }

    /// Waits until the screen satisfies `cond`, and returns it.
    pub fn wait_screen(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            let last = self.screen();
            if cond(&last) {
                return last;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{last}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The screen row (0-based) of the session table row naming `name`.
    pub fn row_of(&self, name: &str) -> u16 {
        let screen = self.screen();
        screen
            .lines()
            .position(|l| l.starts_with('│') && l.split_whitespace().nth(2) == Some(name))
            .unwrap_or_else(|| panic!("no row for '{name}':\n{screen}")) as u16
    }

    /// A right-click at a cell, as an SGR mouse report (what terminals send
    /// to programs that enabled mouse capture): press then release.
    pub fn right_click(&self, x: u16, y: u16) {
        self.type_text(&format!("\x1b[<2;{};{}M", x + 1, y + 1));
        self.type_text(&format!("\x1b[<2;{};{}m", x + 1, y + 1));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The session table's row naming `name`, if shown.
pub fn session_line<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.starts_with('│') && l.split_whitespace().nth(2) == Some(name))
}

/// Whether tmux runs here.
pub fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}
