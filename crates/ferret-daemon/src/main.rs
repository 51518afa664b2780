//! `ferretd [--socket PATH] [--session-limit N]`: runs Ferret's session
//! daemon in the foreground.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let mut socket: Option<PathBuf> = None;
    let mut limit = ferret_session::DEFAULT_SESSION_LIMIT;
    const USAGE: &str = "usage: ferretd [--socket PATH] [--session-limit N]";
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
            Some("-h") | Some("--help") => {
                println!(
                    "{USAGE}\nRuns Ferret's session daemon in the foreground until SIGTERM or SIGINT.\n--session-limit: the most sessions RUNNING or STOPPING at once (default {})",
                    ferret_session::DEFAULT_SESSION_LIMIT
                );
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("ferretd: unexpected argument {arg:?}; {USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let mut config = ferret_daemon::Config::new(ferret_abi::paths::socket_path(socket));
    config.session_limit = limit;
    match ferret_daemon::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferretd: {e}");
            ExitCode::FAILURE
        }
    }
}
