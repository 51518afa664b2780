//! `ferret export`: write log files as a Perfetto, Chrome JSON or CTF trace.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use ferret_export::Trace;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum To {
    /// Perfetto protobuf (.pftrace): ui.perfetto.dev, trace_processor
    Perfetto,
    /// Chrome trace event JSON: ui.perfetto.dev, chrome://tracing
    Chrome,
    /// CTF 1.8, a directory: babeltrace2, Trace Compass
    Ctf,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Log files to export; their events are merged by time
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The trace format to write
    #[arg(long, value_enum)]
    pub to: To,
    /// Where to write the trace (a directory for CTF)
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// Replace OUT if it exists
    #[arg(long)]
    pub force: bool,
}

/// A progress bar on standard error, only when it is a terminal, so that
/// scripts and logs never see one.
fn bar(len: Option<u64>, what: &'static str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let b = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} records ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {pos} records")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    b.set_message(what);
    b.enable_steady_tick(Duration::from_millis(200));
    Some(b)
}

pub fn run(a: ExportArgs) -> Result<ExitCode> {
    let out = &a.output;
    if !a.force && std::fs::symlink_metadata(out).is_ok() {
        bail!(
            "{} already exists (use --force to replace it)",
            out.display()
        );
    }
    let mut trace = Trace::new();
    let reading = bar(None, "reading");
    for path in &a.files {
        let before = trace.len() as u64;
        let mut progress = |n: u64| {
            if let Some(b) = &reading {
                b.set_position(before + n);
            }
        };
        trace
            .add_file(path, &mut progress)
            .with_context(|| format!("{}", path.display()))?;
    }
    if let Some(b) = reading {
        b.finish_and_clear();
    }
    trace.finish();

    let writing = bar(Some(trace.len() as u64), "writing");
    let mut progress = |n: u64| {
        if let Some(b) = &writing {
            b.set_position(n);
        }
    };
    let temp = temp_path(out);
    let written = match a.to {
        To::Perfetto | To::Chrome => write_file(&temp, |w| {
            if a.to == To::Perfetto {
                ferret_export::write_perfetto(&trace, w, &mut progress)
            } else {
                ferret_export::write_chrome(&trace, w, &mut progress)
            }
        }),
        To::Ctf => std::fs::create_dir(&temp)
            .and_then(|()| ferret_export::write_ctf(&trace, &temp, &mut progress)),
    };
    if let Some(b) = writing {
        b.finish_and_clear();
    }
    let placed = written.and_then(|()| {
        if a.force {
            remove(out)?;
        }
        std::fs::rename(&temp, out)
    });
    if let Err(e) = placed {
        // A failed export leaves nothing behind, not half a trace.
        let _ = remove(&temp);
        bail!("writing {}: {e}", out.display());
    }

    let s = trace.summary();
    for (file, note) in &s.notes {
        eprintln!("ferret export: {file}: {note}");
    }
    let mut line = format!(
        "ferret export: {} events from {} file(s) to {}",
        s.events,
        s.files,
        out.display()
    );
    if s.lost_total() > 0 {
        line += &format!("; {} events the logs record as lost", s.lost_total());
    }
    if s.log_buffers_lost > 0 {
        line += &format!(
            "; {} buffers the sessions could not write",
            s.log_buffers_lost
        );
    }
    if s.bad_records > 0 || s.corrupt_stretches > 0 {
        line += &format!(
            "; skipped {} undecodable records and {} damaged bytes",
            s.bad_records, s.corrupt_bytes
        );
    }
    eprintln!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// A name next to `out` for the trace being written, renamed to `out`
/// once complete.
fn temp_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map_or_else(|| "trace".into(), |n| n.to_string_lossy().into_owned());
    out.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

fn write_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 16, File::create(path)?);
    write(&mut w)?;
    w.flush()?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// Removes a file or a directory, if there is one.
fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
