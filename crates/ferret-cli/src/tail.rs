//! `ferret tail`: a real-time consumer that prints a session's events as
//! `ferret fmt` prints them from a file.

use std::io::{BufWriter, ErrorKind};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use ferret_abi::proto::SessionRef;
use ferret_client::TailItem;
use ferret_decode::{Entry, OutputFormat, Printer, StreamDecoder};

use crate::daemon;
use crate::daemon::Endpoint;
use crate::fmt::Format;

#[derive(Args, Debug)]
pub struct TailArgs {
    /// LoggerID or LoggerName of a real-time session
    pub target: String,
    /// Output format, as for 'ferret fmt'
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// What this consumer reports about itself on stderr as it goes.
#[derive(Default)]
struct Progress {
    events: u64,
    missed_buffers: u64,
    missed_events: u64,
}

impl Progress {
    /// Tells the user at once when the count of missed buffers grows, so a
    /// gap in the output is never silent.
    fn missed(&mut self, buffers: u64, events: u64) {
        if buffers > self.missed_buffers {
            eprintln!(
                "ferret: missed {buffers} buffers ({events} events): this consumer fell behind"
            );
        }
        self.missed_buffers = self.missed_buffers.max(buffers);
        self.missed_events = self.missed_events.max(events);
    }
}

pub fn run(at: &Endpoint, a: TailArgs) -> Result<ExitCode> {
    let format = match a.format {
        Format::Text => OutputFormat::Text,
        Format::Json => OutputFormat::Json,
        Format::Csv => OutputFormat::Csv,
    };
    let client = daemon::connect(at)?;
    let mut tail = client.tail(&SessionRef::parse(&a.target))?;
    let name = tail.session.name.clone();
    let mut decoder = StreamDecoder::from_header_bytes(&tail.header)
        .with_context(|| format!("the daemon sent a bad stream header for session '{name}'"))?;
    let stdout = std::io::stdout();
    let out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut printer = Printer::new(format, out, std::io::stderr(), &name);
    let mut progress = Progress::default();
    let finish = loop {
        let item = tail
            .next()
            .with_context(|| format!("the stream of session '{name}' broke off"))?;
        match item {
            Some(TailItem::Data {
                buffer,
                missed_buffers,
                missed_events,
            }) => {
                progress.missed(missed_buffers, missed_events);
                let fed = decoder.feed(&buffer, |entry| {
                    if let Entry::Event(_) = entry {
                        progress.events += 1;
                    }
                    printer.entry(&entry)
                });
                // Flush per buffer: a live view is only useful if it is live,
                // and readers follow it through pipes.
                match fed.and_then(|()| printer.flush()) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                        return Ok(ExitCode::SUCCESS);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Some(TailItem::End {
                session,
                missed_buffers,
                missed_events,
            }) => {
                progress.missed(missed_buffers, missed_events);
                break session;
            }
            None => anyhow::bail!("the stream of session '{name}' ended without its end message"),
        }
    };
    match printer.flush() {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e.into()),
    }
    eprintln!(
        "ferret: session '{}' {}: {} events received, {} missed",
        finish.name,
        finish.state.name(),
        progress.events,
        progress.missed_events
    );
    Ok(ExitCode::SUCCESS)
}
