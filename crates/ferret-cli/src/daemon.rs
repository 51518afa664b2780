//! Running the daemon in the foreground, and starting it in the background
//! when a command finds none.

use std::fs::OpenOptions;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use ferret_client::Client;
use ferret_client::remote::Target;
use ferret_daemon::{DaemonOptions, OPTION_HELP};

/// The daemon's options: their meaning, defaults and checks are
/// `ferret_daemon::DaemonOptions`' (which `ferretd` reads too); this is only their
/// clap form, with the help text from `ferret_daemon::OPTION_HELP`.
#[derive(Args, Debug)]
pub struct DaemonArgs {
    #[arg(long, value_name = "N", default_value_t = DaemonOptions::default().session_limit, help = OPTION_HELP[0].2)]
    pub session_limit: usize,
    #[arg(long, value_name = "N", default_value_t = DaemonOptions::default().rings, help = OPTION_HELP[1].2)]
    pub rings: u32,
    #[arg(long, value_name = "KIB", default_value_t = DaemonOptions::default().ring_kib, help = OPTION_HELP[2].2)]
    pub ring_kib: u64,
    #[arg(long, value_name = "GROUP", help = OPTION_HELP[3].2)]
    pub control_group: Option<String>,
    #[arg(long, value_name = "SIZE", help = OPTION_HELP[4].2)]
    pub buffer_memory: Option<String>,
    #[arg(long, value_name = "SIZE", help = OPTION_HELP[5].2)]
    pub user_buffer_memory: Option<String>,
}

/// `ferret daemon`: serves until SIGTERM or SIGINT, then stops every session.
pub fn run_foreground(socket: PathBuf, a: DaemonArgs) -> Result<ExitCode> {
    let options = DaemonOptions {
        session_limit: a.session_limit,
        rings: a.rings,
        ring_kib: a.ring_kib,
        control_group: a.control_group,
        buffer_memory: a.buffer_memory,
        user_buffer_memory: a.user_buffer_memory,
    };
    let mut config = options.config(socket).map_err(anyhow::Error::msg)?;
    // This process has one thread so far: the keeper may be forked.
    config.keeper = true;
    ferret_daemon::run(config)?;
    Ok(ExitCode::SUCCESS)
}

/// The daemon's log when the CLI starts it: next to its socket.
pub fn log_path(socket: &Path) -> PathBuf {
    socket.with_file_name("ferretd.log")
}

/// Which daemon a command talks to: this host's, on its socket, or a
/// target computer's, over SSH.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// This host's daemon.
    Local(PathBuf),
    /// Another host's daemon (`--target`).
    Target(Target),
}

impl Endpoint {
    /// The socket of this host's daemon, or a one-line refusal naming
    /// `verb` for a command that works on this host only.
    pub fn local(&self, verb: &str) -> Result<&Path> {
        match self {
            Endpoint::Local(socket) => Ok(socket),
            Endpoint::Target(t) => bail!(
                "'ferret {verb}' works on this host only, not over --target {t}; run it on the target (ssh {} ferret {verb} ...)",
                t.host
            ),
        }
    }
}

/// Connects to the daemon `at` names. This host's is started in the
/// background if none answers; a target's bridge starts the target's.
pub fn connect(at: &Endpoint) -> Result<Client> {
    match at {
        Endpoint::Local(socket) => connect_local(socket),
        Endpoint::Target(t) => Ok(Client::connect_target(t)?),
    }
}

/// Connects to this host's daemon at `socket`, starting one in the
/// background if none answers.
pub fn connect_local(socket: &Path) -> Result<Client> {
    Client::connect_or_start(socket, Duration::from_secs(10), || spawn_background(socket))
        .with_context(|| format!("cannot reach a Ferret daemon on {}", socket.display()))
}

/// `ferret bridge`: run by SSH on a target, relays a controller's stream
/// on standard input and output to this host's daemon (started if none
/// answers, as any command here would).
pub fn bridge(socket: &Path) -> Result<ExitCode> {
    // Started (or found) the usual way, then a raw connection of its own:
    // the controller at the other end says hello itself.
    drop(connect_local(socket)?);
    let conn = ferret_client::Conn::connect_to_daemon(socket)
        .map_err(|e| anyhow!("cannot reach a Ferret daemon on {}: {e}", socket.display()))?;
    // Standard output as a plain file: `Stdout` is line-buffered, and
    // would cut binary frames at every newline byte into separate writes.
    let out = std::fs::File::from(
        std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .context("cannot use standard output")?,
    );
    ferret_client::remote::bridge(conn, std::io::stdin().lock(), out)
        .map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}

/// Starts `ferret daemon --socket SOCKET` detached from this process: its own
/// session, no terminal, output appended to the daemon log.
fn spawn_background(socket: &Path) -> std::io::Result<()> {
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The daemon refuses a directory others may write (they could
        // replace its socket); one created here is this user's alone.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    use std::os::unix::fs::OpenOptionsExt;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(log_path(socket))?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--socket")
        .arg(socket)
        .arg("daemon")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory of the
    // parent; it detaches the daemon from our terminal and process group so
    // that a Ctrl-C meant for this command does not stop it.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    cmd.spawn()?;
    Ok(())
}
