//! `ferret pull`: brings a target's log file home through the target's
//! bridge, so that `fmt` and `export` read it here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use ferret_client::output::human_bytes;
use ferret_client::plan::{open_log, shown_path};

use crate::daemon::{self, Endpoint};

#[derive(Args, Debug)]
pub struct PullArgs {
    /// The file on the target (an absolute path there)
    pub file: String,
    /// Where to write it here [default: its name, in this directory]
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace the local file if it exists
    #[arg(long)]
    pub overwrite: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(at: &Endpoint, a: PullArgs) -> Result<ExitCode> {
    let Endpoint::Target(target) = at else {
        bail!(
            "'ferret pull' brings a file from a --target; {} is on this host already",
            a.file
        );
    };
    let local = match a.output {
        Some(p) => p,
        None => match std::path::Path::new(&a.file).file_name() {
            Some(name) => PathBuf::from(name),
            None => bail!("'{}' names no file; give -o FILE", a.file),
        },
    };
    let mut client = daemon::connect(at)?;
    // Created with the rules of every log file here (0640, never through a
    // link, kept unless --overwrite), and removed again if the copy fails.
    let mut file = open_log(&local, a.overwrite)?;
    let copied = client
        .fetch(&a.file, &mut file)
        .map_err(anyhow::Error::from)
        .and_then(|n| {
            file.sync_all()?;
            Ok(n)
        });
    let bytes = match copied {
        Ok(n) => n,
        Err(e) => {
            drop(file);
            if !a.overwrite {
                let _ = std::fs::remove_file(&local);
            }
            return Err(e);
        }
    };
    let shown = shown_path(&local);
    if a.json {
        let v = serde_json::json!({
            "target": target.to_string(),
            "file": a.file,
            "output": shown,
            "bytes": bytes,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!(
            "Pulled {} ({}) from {target} to {shown}",
            a.file,
            human_bytes(bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}
