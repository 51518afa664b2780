//! `ferret fmt`: decode log files.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use ferret_decode::{FileDecoder, OutputFormat, Printer, write_summary};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// One line per event: time, pid.tid, provider/event, level, name=value fields
    Text,
    /// One JSON object per line
    Json,
    /// Comma-separated values with a header row
    Csv,
}

#[derive(Args, Debug)]
pub struct FmtArgs {
    /// Log files to decode, in order ('-' reads standard input)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Print what each file holds (counts, losses, damage) instead of events
    #[arg(long)]
    pub summary: bool,
}

pub fn run(a: FmtArgs) -> Result<ExitCode> {
    let format = match a.format {
        Format::Text => OutputFormat::Text,
        Format::Json => OutputFormat::Json,
        Format::Csv => OutputFormat::Csv,
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut failed = false;
    let mut printer = Printer::new(format, &mut out, std::io::stderr(), "");
    for path in &a.files {
        let name = path.display().to_string();
        let result = if name == "-" {
            decode(
                FileDecoder::new(std::io::stdin().lock()),
                &name,
                &mut printer,
                a.summary,
            )
        } else {
            decode(FileDecoder::open(path), &name, &mut printer, a.summary)
        };
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(e) => {
                eprintln!("ferret fmt: {name}: {e}");
                failed = true;
            }
        }
    }
    if let Err(e) = printer.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn decode<R: std::io::Read, W: Write, D: Write>(
    opened: Result<FileDecoder<R>, ferret_decode::FormatError>,
    name: &str,
    printer: &mut Printer<W, D>,
    summary: bool,
) -> std::io::Result<()> {
    let mut decoder = opened.map_err(|e| std::io::Error::other(e.to_string()))?;
    printer.set_source(name);
    if summary {
        decoder.count_per_event(true);
        // The summary prints no field values, so they are checked but not
        // kept.
        decoder.decode_values(false);
        decoder.for_each(|entry| match entry {
            ferret_decode::Entry::Corrupt(_) | ferret_decode::Entry::BadRecord { .. } => {
                printer.entry(&entry)
            }
            _ => Ok(()),
        })?;
        write_summary(
            printer.output(),
            name,
            decoder.header(),
            decoder.stats(),
            decoder.trailer(),
        )?;
        return Ok(());
    }
    decoder.for_each(|entry| printer.entry(&entry))
}
