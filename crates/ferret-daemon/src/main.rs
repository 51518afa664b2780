//! `ferretd [--socket PATH] [--session-limit N] [--rings N] [--ring-kib KIB]
//! [--control-group GROUP] [--buffer-memory SIZE] [--user-buffer-memory SIZE]`:
//! runs Ferret's session daemon in the foreground.
//!
//! `ferret daemon` (crates/ferret-cli/src/daemon.rs) takes the same options
//! through clap; a change to one belongs in the other.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let mut socket: Option<PathBuf> = None;
    let mut limit = ferret_session::DEFAULT_SESSION_LIMIT;
    let mut region = ferret_abi::shm::RegionParams::default();
    let mut group = None;
    let mut budget = ferret_daemon::default_budget();
    let mut user_cap = None;
    const USAGE: &str = "usage: ferretd [--socket PATH] [--session-limit N] [--rings N] [--ring-kib KIB] [--control-group GROUP] [--buffer-memory SIZE] [--user-buffer-memory SIZE]";
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--socket") => match args.next() {
                Some(p) => socket = Some(PathBuf::from(p)),
                None => {
                    eprintln!("ferretd: --socket needs a path");
                    return ExitCode::from(2);
                }
            },
            Some("--session-limit") => {
                match args.next().and_then(|v| v.to_str()?.parse::<usize>().ok()) {
                    Some(n) if (1..=4096).contains(&n) => limit = n,
                    _ => {
                        eprintln!("ferretd: --session-limit needs a number from 1 to 4096");
                        return ExitCode::from(2);
                    }
                }
            }
            Some("--rings") => match args.next().and_then(|v| v.to_str()?.parse::<u32>().ok()) {
                Some(n) => region.ring_count = n,
                None => {
                    eprintln!("ferretd: --rings needs a number from 1 to 4096");
                    return ExitCode::from(2);
                }
            },
            Some("--ring-kib") => match args.next().and_then(|v| v.to_str()?.parse::<u64>().ok()) {
                Some(n) => region.ring_capacity = n.saturating_mul(1024),
                None => {
                    eprintln!("ferretd: --ring-kib needs a power of two from 4 to 1048576");
                    return ExitCode::from(2);
                }
            },
            Some("--control-group") => {
                match args.next().map(|v| v.to_string_lossy().into_owned()) {
                    Some(name) => match ferret_daemon::ControlGroup::resolve(&name) {
                        Ok(g) => group = Some(g),
                        Err(e) => {
                            eprintln!("ferretd: --control-group: {e}");
                            return ExitCode::from(2);
                        }
                    },
                    None => {
                        eprintln!("ferretd: --control-group needs a group name or gid");
                        return ExitCode::from(2);
                    }
                }
            }
            Some(name @ ("--buffer-memory" | "--user-buffer-memory")) => {
                let value = args.next().map(|v| v.to_string_lossy().into_owned());
                match value.as_deref().map(ferret_session::parse_memory) {
                    Some(Ok(bytes)) if name == "--buffer-memory" => budget.total = bytes,
                    Some(Ok(bytes)) => user_cap = Some(bytes),
                    Some(Err(e)) => {
                        eprintln!("ferretd: {name}: {e}");
                        return ExitCode::from(2);
                    }
                    None => {
                        eprintln!("ferretd: {name} needs a size (e.g. 512M, 4G)");
                        return ExitCode::from(2);
                    }
                }
            }
            Some("-h") | Some("--help") => {
                println!(
                    "{USAGE}\nRuns Ferret's session daemon in the foreground until SIGTERM or SIGINT.\n--session-limit: the most sessions RUNNING or STOPPING at once (default {})\n--rings, --ring-kib: rings per provider process and their size (default {} of {} KiB)\n--control-group: members of this group may control every session, and reach the socket\n--buffer-memory: the most buffer memory all sessions together may reserve (max buffers x buffer size; default a quarter of physical memory, here {} MiB)\n--user-buffer-memory: the most one user's sessions may reserve; root is exempt (default {} MiB, or --buffer-memory if less)",
                    ferret_session::DEFAULT_SESSION_LIMIT,
                    region.ring_count,
                    region.ring_capacity / 1024,
                    budget.total >> 20,
                    ferret_session::DEFAULT_USER_BUFFER_MEMORY >> 20
                );
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("ferretd: unexpected argument {arg:?}; {USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if let Err(e) = ferret_abi::shm::RegionLayout::new(region) {
        eprintln!("ferretd: --rings/--ring-kib: {e}");
        return ExitCode::from(2);
    }
    let mut config = ferret_daemon::Config::new(ferret_abi::paths::socket_path(socket));
    config.session_limit = limit;
    config.region = region;
    // This process has one thread so far: the keeper may be forked.
    config.keeper = true;
    config.control_group = group;
    // Without its own cap, a user may reserve the default or, under a
    // smaller total, the total.
    budget.per_user =
        user_cap.unwrap_or(ferret_session::DEFAULT_USER_BUFFER_MEMORY.min(budget.total));
    config.buffer_budget = budget;
    match ferret_daemon::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferretd: {e}");
            ExitCode::FAILURE
        }
    }
}
