//! `ferretd [--socket PATH] [--session-limit N] [--rings N] [--ring-kib KIB]
//! [--control-group GROUP]`: runs Ferret's session daemon in the foreground.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let mut socket: Option<PathBuf> = None;
    let mut limit = ferret_session::DEFAULT_SESSION_LIMIT;
    let mut region = ferret_abi::shm::RegionParams::default();
    let mut group = None;
    const USAGE: &str = "usage: ferretd [--socket PATH] [--session-limit N] [--rings N] [--ring-kib KIB] [--control-group GROUP]";
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
            Some("-h") | Some("--help") => {
                println!(
                    "{USAGE}\nRuns Ferret's session daemon in the foreground until SIGTERM or SIGINT.\n--session-limit: the most sessions RUNNING or STOPPING at once (default {})\n--rings, --ring-kib: rings per provider process and their size (default {} of {} KiB)\n--control-group: members of this group may control every session, and reach the socket",
                    ferret_session::DEFAULT_SESSION_LIMIT,
                    region.ring_count,
                    region.ring_capacity / 1024
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
    match ferret_daemon::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferretd: {e}");
            ExitCode::FAILURE
        }
    }
}
