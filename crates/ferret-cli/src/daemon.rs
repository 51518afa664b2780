//! Running the daemon in the foreground, and starting it in the background
//! when a command finds none.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use ferret_abi::shm::{RegionLayout, RegionParams};
use ferret_client::Client;

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// The most sessions that may be RUNNING or STOPPING at once
    #[arg(long, value_name = "N", default_value_t = ferret_session::DEFAULT_SESSION_LIMIT)]
    pub session_limit: usize,
    /// Rings in each provider process's region: the most threads of one
    /// process that hold a ring at once (1-4096)
    #[arg(long, value_name = "N", default_value_t = RegionParams::default().ring_count)]
    pub rings: u32,
    /// Bytes of each ring, in KiB: a power of two from 4 to 1048576
    #[arg(long, value_name = "KIB", default_value_t = RegionParams::default().ring_capacity / 1024)]
    pub ring_kib: u64,
    /// A group whose members may control every session of this daemon, as
    /// its owner and root may; the socket and its directory become
    /// reachable by the group (0660 and 0750)
    #[arg(long, value_name = "GROUP")]
    pub control_group: Option<String>,
    /// The most buffer memory all sessions together may reserve (max
    /// buffers x buffer size, from start until STOPPED): MiB, or with a K,
    /// M, G or T suffix [default: a quarter of physical memory]
    #[arg(long, value_name = "SIZE")]
    pub buffer_memory: Option<String>,
    /// The most buffer memory one user's sessions may reserve; root's are
    /// exempt [default: 1G, or --buffer-memory if less]
    #[arg(long, value_name = "SIZE")]
    pub user_buffer_memory: Option<String>,
}

/// `ferret daemon`: serves until SIGTERM or SIGINT, then stops every session.
pub fn run_foreground(socket: PathBuf, a: DaemonArgs) -> Result<ExitCode> {
    if a.session_limit == 0 {
        bail!("--session-limit 0 would refuse every session; give 1 or more");
    }
    let region = RegionParams {
        ring_count: a.rings,
        ring_capacity: a.ring_kib.saturating_mul(1024),
        ..RegionParams::default()
    };
    if let Err(e) = RegionLayout::new(region) {
        bail!("--rings {} --ring-kib {}: {e}", a.rings, a.ring_kib);
    }
    // ferretd (crates/ferret-daemon/src/main.rs) parses the same options
    // by hand; a change to one belongs in the other.
    let mut budget = ferret_daemon::default_budget();
    if let Some(text) = &a.buffer_memory {
        budget.total = ferret_session::parse_memory(text)
            .map_err(|e| anyhow::anyhow!("--buffer-memory: {e}"))?;
    }
    budget.per_user = match &a.user_buffer_memory {
        Some(text) => ferret_session::parse_memory(text)
            .map_err(|e| anyhow::anyhow!("--user-buffer-memory: {e}"))?,
        None => ferret_session::DEFAULT_USER_BUFFER_MEMORY.min(budget.total),
    };
    let mut config = ferret_daemon::Config::new(socket);
    config.session_limit = a.session_limit;
    config.buffer_budget = budget;
    config.region = region;
    // This process has one thread so far: the keeper may be forked.
    config.keeper = true;
    if let Some(name) = &a.control_group {
        config.control_group = Some(
            ferret_daemon::ControlGroup::resolve(name)
                .map_err(|e| anyhow::anyhow!("--control-group: {e}"))?,
        );
    }
    ferret_daemon::run(config)?;
    Ok(ExitCode::SUCCESS)
}

/// The daemon's log when the CLI starts it: next to its socket.
pub fn log_path(socket: &Path) -> PathBuf {
    socket.with_file_name("ferretd.log")
}

/// Connects to the daemon at `socket`, starting one in the background if
/// none answers.
pub fn connect(socket: &Path) -> Result<Client> {
    let client =
        Client::connect_or_start(socket, Duration::from_secs(10), || spawn_background(socket))
            .with_context(|| format!("cannot reach a Ferret daemon on {}", socket.display()))?;
    Ok(client)
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
