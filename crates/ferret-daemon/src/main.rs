//! `ferretd [--socket PATH] [OPTION VALUE]...`: runs Ferret's session
//! daemon in the foreground. The options are `ferret daemon`'s; both read
//! them into `ferret_daemon::DaemonOptions`, which says what each means.

use std::path::PathBuf;
use std::process::ExitCode;

use ferret_daemon::{DaemonOptions, OPTION_HELP};

fn usage() -> String {
    let mut text = String::from("usage: ferretd [--socket PATH]");
    for (flag, value, _) in OPTION_HELP {
        text.push_str(&format!(" [{flag} {value}]"));
    }
    text
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let mut socket: Option<PathBuf> = None;
    let mut options = DaemonOptions::default();
    while let Some(arg) = args.next() {
        let flag = arg.to_string_lossy().into_owned();
        if flag == "-h" || flag == "--help" {
            println!(
                "{}\nRuns Ferret's session daemon in the foreground until SIGTERM or SIGINT.",
                usage()
            );
            for (flag, value, help) in OPTION_HELP {
                println!("  {flag} {value}\n          {help}");
            }
            return ExitCode::SUCCESS;
        }
        let Some(value) = args.next() else {
            eprintln!("ferretd: {flag} needs a value; {}", usage());
            return ExitCode::from(2);
        };
        if flag == "--socket" {
            socket = Some(PathBuf::from(value));
            continue;
        }
        match options.set(&flag, &value.to_string_lossy()) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("ferretd: unexpected argument {arg:?}; {}", usage());
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("ferretd: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut config = match options.config(ferret_abi::paths::socket_path(socket)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferretd: {e}");
            return ExitCode::from(2);
        }
    };
    // This process has one thread so far: the keeper may be forked.
    config.keeper = true;
    match ferret_daemon::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferretd: {e}");
            ExitCode::FAILURE
        }
    }
}
