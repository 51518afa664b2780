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
    let r = into_new_log(&a.output, a.overwrite, |file| {
        ferret_daemon::recover(&keeper, file)
    })?;
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

/// Creates the log file `path` (with the rules of every log file) and
/// fills it with `write`; a write that fails leaves no empty log behind
/// that would read as "nothing was left to save".
fn into_new_log(
    path: &Path,
    overwrite: bool,
    write: impl FnOnce(&std::fs::File) -> Result<ferret_daemon::Recovered, ferret_daemon::RecoverError>,
) -> Result<ferret_daemon::Recovered> {
    let file = ferret_client::plan::open_log(path, overwrite)?;
    match write(&file) {
        Ok(r) => Ok(r),
        Err(e) => {
            drop(file);
            if !overwrite {
                let _ = std::fs::remove_file(path);
            }
            bail!("{e}");
        }
    }
}

/// `ferret dump-image`: what the gdb commands `ferret rings` and `ferret
/// dump` run on a region they copied out of a live process or a core file.
#[derive(Args, Debug)]
pub struct ImageArgs {
    /// The region image (the region's layout, holes where nothing was copied)
    pub image: PathBuf,
    /// The process's PROVIDER records (FERRET_DEBUG_PROVIDERS)
    #[arg(long, value_name = "FILE")]
    pub providers: Option<PathBuf>,
    /// The process id [default: the one the region's header names]
    #[arg(long, default_value_t = 0)]
    pub pid: u32,
    /// The process's name
    #[arg(long, default_value = "")]
    pub process: String,
    /// Write the records no log file has to this log file
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        conflicts_with = "rings"
    )]
    pub output: Option<PathBuf>,
    /// Replace the output file if it exists
    #[arg(long)]
    pub overwrite: bool,
    /// List the providers and the rings holding records no log file has
    #[arg(long)]
    pub rings: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run_image(a: ImageArgs) -> Result<ExitCode> {
    let image = std::fs::File::open(&a.image)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", a.image.display()))?;
    let providers = match &a.providers {
        Some(p) => {
            std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?
        }
        None => Vec::new(),
    };
    let region = ferret_daemon::RegionImage::open(&image, &providers, a.pid, &a.process)?;
    let Some(output) = a.output else {
        if !a.rings {
            bail!("give -o FILE to write the records no log file has, or --rings to list them");
        }
        let providers = region.providers();
        let rings = region.rings();
        if a.json {
            let v = serde_json::json!({
                "providers": providers.iter().map(|(slot, name)| serde_json::json!({"slot": slot, "name": name})).collect::<Vec<_>>(),
                "rings": rings.iter().map(|r| serde_json::json!({
                    "ring": r.ring, "tid": r.tid, "from": r.from, "head": r.head,
                    "unwritten_bytes": r.head.saturating_sub(r.from), "lapped": r.lapped,
                })).collect::<Vec<_>>(),
            });
            outln!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            for (slot, name) in &providers {
                outln!(
                    "provider {slot:<4} {}",
                    ferret_abi::text::printable_name(name)
                );
            }
            if rings.is_empty() {
                outln!("no ring holds records that no log file has");
            }
            for r in &rings {
                outln!(
                    "ring {:<4} tid {:<8} {} bytes no log file has (positions {} to {}){}",
                    r.ring,
                    r.tid,
                    r.head.saturating_sub(r.from),
                    r.from,
                    r.head,
                    if r.lapped {
                        ", lapped: older ones were overwritten"
                    } else {
                        ""
                    }
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    };
    let r = into_new_log(&output, a.overwrite, |file| region.write(file))?;
    if a.json {
        let v = serde_json::json!({
            "rings": r.rings,
            "events": r.events,
            "unusable": r.unusable,
            "buffers": r.buffers,
            "lapped_rings": r.lapped,
            "log_file": output.display().to_string(),
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!(
            "ferret: dumped {} events no log file has, from {} ring(s), into {}{}",
            r.events,
            r.rings,
            output.display(),
            if r.unusable > 0 {
                format!(" ({} records unusable, counted as lost)", r.unusable)
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
