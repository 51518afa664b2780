//! `ferretd [--socket PATH]`: runs Ferret's session daemon in the foreground.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let mut socket: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--socket") => match args.next() {
                Some(p) => socket = Some(PathBuf::from(p)),
                None => {
                    eprintln!("ferretd: --socket needs a path");
                    return ExitCode::from(2);
                }
            },
            Some("-h") | Some("--help") => {
                println!(
                    "usage: ferretd [--socket PATH]\nRuns Ferret's session daemon in the foreground until SIGTERM or SIGINT."
                );
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("ferretd: unexpected argument {arg:?}; usage: ferretd [--socket PATH]");
                return ExitCode::from(2);
            }
        }
    }
    let config = ferret_daemon::Config::new(ferret_abi::paths::socket_path(socket));
    match ferret_daemon::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferretd: {e}");
            ExitCode::FAILURE
        }
    }
}
