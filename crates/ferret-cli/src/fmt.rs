//! `ferret fmt`: decode log files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
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
    let json = matches!(a.format, Format::Json);
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut failed = false;
    let mut printer = Printer::new(format, &mut out, std::io::stderr(), "");
    for path in &a.files {
        let name = path.display().to_string();
        let result = if name == "-" {
            match seekable_stdin() {
                Ok(file) => decode(
                    FileDecoder::new_seekable(file),
                    &name,
                    &mut printer,
                    a.summary,
                    json,
                ),
                Err(e) => Err(e),
            }
        } else {
            decode(
                FileDecoder::open(path),
                &name,
                &mut printer,
                a.summary,
                json,
            )
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

/// Standard input as a seekable file, so that `ferret fmt - < F` and `cat F
/// | ferret fmt -` decode exactly as `ferret fmt F` does: the trailer at the
/// end refines the timestamps and a circular log is read oldest first, and
/// both need the end of the file before the first event is printed. A
/// redirected file is used as it is; a pipe is copied into an unnamed
/// temporary file first.
fn seekable_stdin() -> std::io::Result<File> {
    use std::io::{Seek, SeekFrom};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let mut file = File::from(stdin.as_fd().try_clone_to_owned()?);
    if file.metadata()?.is_file() && file.seek(SeekFrom::Start(0)).is_ok() {
        return Ok(file);
    }
    let mut spool = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(std::env::temp_dir())
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot make a temporary file in {} to read standard input into ({e}); give the log as a file instead",
                    std::env::temp_dir().display()
                ),
            )
        })?;
    std::io::copy(&mut stdin.lock(), &mut spool)?;
    spool.seek(SeekFrom::Start(0))?;
    Ok(spool)
}

fn decode<R: std::io::Read, W: Write, D: Write>(
    opened: Result<FileDecoder<R>, ferret_decode::FormatError>,
    name: &str,
    printer: &mut Printer<W, D>,
    summary: bool,
    json: bool,
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
        if json {
            let v = ferret_decode::summary_json(
                name,
                decoder.header(),
                decoder.stats(),
                decoder.trailer(),
            );
            writeln!(printer.output(), "{v}")?;
        } else {
            write_summary(
                printer.output(),
                name,
                decoder.header(),
                decoder.stats(),
                decoder.trailer(),
            )?;
        }
        return Ok(());
    }
    decoder.for_each(|entry| printer.entry(&entry))
}
