//! `ferret watch`: every session change, one line or JSON object each, as
//! the daemon reports it.

use std::io::{ErrorKind, Write};
use std::process::ExitCode;

use anyhow::{Result, bail};
use ferret_abi::proto::{ChangeKind, SessionInfo};
use ferret_client::{ClientError, TransportError, WatchEvent};
use ferret_decode::format_timestamp;

use crate::control::JsonArgs;
use crate::daemon;
use crate::daemon::Endpoint;
use ferret_client::output::session_json;

/// `HH:MM:SS.mmm` (UTC) of now, to stamp each text line.
fn clock_now() -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // format_timestamp gives `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`; a watcher
    // wants the time of day to the millisecond.
    let full = format_timestamp(ns);
    full.get(11..23).unwrap_or(&full).to_string()
}

fn line(kind: ChangeKind, s: &SessionInfo) -> String {
    let c = &s.counters;
    let mut text = format!(
        "{} {:<8} {:>3} {} {} events={} lost={}",
        clock_now(),
        kind.name(),
        s.logger_id,
        s.name,
        s.state.name(),
        c.events,
        c.events_lost
    );
    if c.rt_buffers_lost > 0 {
        text.push_str(&format!(" rt-buffers-lost={}", c.rt_buffers_lost));
    }
    if s.realtime {
        text.push_str(&format!(" consumers={}", s.consumers));
    }
    text
}

pub fn run(at: &Endpoint, a: JsonArgs) -> Result<ExitCode> {
    let client = daemon::connect(at)?;
    let mut watch = client.watch()?;
    let stdout = std::io::stdout();
    loop {
        let event = match watch.next() {
            Ok(event) => event,
            // The daemon went away: the feed ended before the user ended
            // it, and a script watching must be able to tell that from an
            // interrupt, so it is a failure.
            Err(ClientError::Transport(TransportError::Closed)) => {
                bail!(
                    "the daemon closed the watch connection (it stopped or was killed); run 'ferret watch' again once it runs"
                );
            }
            Err(e) => return Err(e.into()),
        };
        let text = match event {
            WatchEvent::Change(kind, s) if a.json => serde_json::json!({
                "change": kind.name(),
                "session": session_json(&s),
            })
            .to_string(),
            WatchEvent::Change(kind, s) => line(kind, &s),
            // The daemon's queue for this watch filled up: say how much was
            // missed, so that nobody takes the next lines for every change.
            WatchEvent::Lagged { skipped } if a.json => serde_json::json!({
                "change": "lagged",
                "skipped": skipped,
            })
            .to_string(),
            WatchEvent::Lagged { skipped } => format!(
                "{} lagged   this watch read too slowly: the daemon skipped {skipped} changes; every session's current state follows",
                clock_now()
            ),
            WatchEvent::Resynced if a.json => {
                serde_json::json!({ "change": "resynced" }).to_string()
            }
            WatchEvent::Resynced => format!(
                "{} resynced every session's current state has been shown; changes follow as they happen",
                clock_now()
            ),
        };
        // Flush every line: readers (people and tests) follow the stream
        // through pipes, and a change is news only when it arrives.
        let mut out = stdout.lock();
        let written = writeln!(out, "{text}").and_then(|()| out.flush());
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
            Err(e) => return Err(e.into()),
        }
    }
}
