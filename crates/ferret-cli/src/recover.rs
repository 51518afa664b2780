//! `ferret recover`: save the events a killed daemon left in its provider
//! rings, which its keeper process holds, to a log file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// The log file to write (it must not exist, unless --overwrite)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Replace the output file if it exists
    #[arg(long)]
    pub overwrite: bool,
    /// The keeper's socket, when more than one dead daemon left rings
    /// [default: the only SOCKET.recover-PID next to the control socket]
    #[arg(long, value_name = "PATH")]
    pub keeper: Option<PathBuf>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(socket: &Path, a: RecoverArgs) -> Result<ExitCode> {
    let keeper = match a.keeper {
        Some(k) => k,
        None => {
            let found = ferret_daemon::kept_daemons(socket);
            match found.len() {
                0 => bail!(
                    "no dead daemon's rings to recover for {}: a daemon killed with events in its rings leaves a keeper listening on {}.recover-PID",
                    socket.display(),
                    socket.display()
                ),
                1 => found.into_iter().next().expect("one"),
                _ => bail!(
                    "{} dead daemons left rings ({}); choose one with --keeper",
                    found.len(),
                    found
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    };
    let file = ferret_client::plan::open_log(&a.output, a.overwrite)?;
    let r = match ferret_daemon::recover(&keeper, &file) {
        Ok(r) => r,
        Err(e) => {
            // A refused recovery leaves no empty log behind that would
            // read as "nothing was left to save".
            drop(file);
            if !a.overwrite {
                let _ = std::fs::remove_file(&a.output);
            }
            bail!("{e}");
        }
    };
    if a.json {
        let v = serde_json::json!({
            "daemon_pid": r.daemon_pid,
            "processes": r.processes,
            "rings": r.rings,
            "events": r.events,
            "unusable": r.unusable,
            "buffers": r.buffers,
            "lapped_rings": r.lapped,
            "log_file": a.output.display().to_string(),
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!(
            "ferret: recovered {} events from {} ring(s) of {} process(es) that daemon pid {} had not drained, into {}",
            r.events,
            r.rings,
            r.processes,
            r.daemon_pid,
            a.output.display()
        );
        if r.lapped > 0 {
            outln!(
                "ferret: in {} ring(s) the program had overwritten events the daemon held but had not written; those are lost, the rest of each ring is recovered",
                r.lapped
            );
        }
        if r.unusable > 0 {
            outln!(
                "ferret: {} record(s) could not be used (no metadata, no time base or malformed); the log counts them as lost (corrupt)",
                r.unusable
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
