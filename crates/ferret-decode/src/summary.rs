//! `ferret fmt --summary`: what a log holds, what was lost and what was damaged.

use std::io::{self, Write};

use ferret_format::{FileHeader, Trailer, mode};

use crate::decoder::Stats;
use crate::output::format_timestamp;

/// How the file was written: its log mode and what goes with it.
fn mode_text(header: &FileHeader) -> String {
    let name = mode::name(header.log_mode);
    match header.log_mode {
        mode::CIRCULAR => format!("{name}, {} slots", header.slot_count),
        mode::NEW_FILE => format!("{name}, file {} of a series", header.file_index),
        mode::SEQUENTIAL | mode::SNAPSHOT => name.to_string(),
        other => format!("{name} ({other})"),
    }
}

/// Writes the summary of one file. `trailer` is the file's trailers added
/// up, as [`crate::FileDecoder::trailer`] gives it; `stats` says how many
/// there were.
pub fn write_summary(
    out: &mut impl Write,
    source: &str,
    header: &FileHeader,
    stats: &Stats,
    trailer: Option<&Trailer>,
) -> io::Result<()> {
    writeln!(out, "File:       {source}")?;
    writeln!(
        out,
        "Session:    {} (LoggerID {}) on {}, clock {}, {} KiB buffers",
        header.session_name,
        header.logger_id,
        header.host,
        header.clock.name(),
        header.buffer_size / 1024
    )?;
    writeln!(out, "Mode:       {}", mode_text(header))?;
    writeln!(
        out,
        "Started:    {}",
        format_timestamp(header.start_unix_ns)
    )?;
    if stats.trailers > 1 {
        writeln!(
            out,
            "Sessions:   {} wrote into this file, each with a trailer; the trailer counts below are their sums",
            stats.trailers
        )?;
    }
    match trailer {
        Some(t) if stats.buffers_after_trailer == 0 => writeln!(
            out,
            "Stopped:    {} (clean stop)",
            format_timestamp(t.end_unix_ns)
        )?,
        Some(t) => writeln!(
            out,
            "Stopped:    no trailer after the last {} buffers (still running, or the daemon did not stop cleanly); an earlier session stopped cleanly at {}",
            stats.buffers_after_trailer,
            format_timestamp(t.end_unix_ns)
        )?,
        None => writeln!(
            out,
            "Stopped:    no trailer (still running, or the daemon did not stop cleanly)"
        )?,
    }
    for note in &stats.notes {
        writeln!(out, "Note:       {note}")?;
    }
    if let (Some(a), Some(b)) = (stats.first_ns, stats.last_ns) {
        writeln!(
            out,
            "Events from {} to {}",
            format_timestamp(a),
            format_timestamp(b)
        )?;
    }
    writeln!(
        out,
        "Buffers:    {} read, {} damaged ({} bytes skipped)",
        stats.buffers, stats.corrupt_stretches, stats.corrupt_bytes
    )?;
    writeln!(
        out,
        "Events:     {} decoded, {} undecodable records",
        stats.events, stats.bad_records
    )?;
    let mut reasons: Vec<String> = stats
        .lost
        .iter()
        .map(|(r, n)| format!("{} {n}", r.name()))
        .collect();
    reasons.sort();
    let detail = if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", reasons.join(", "))
    };
    writeln!(out, "Lost:       {}{detail}", stats.lost_total())?;
    if stats.process_ends > 0 {
        writeln!(
            out,
            "Processes:  {} ended while the session ran",
            stats.process_ends
        )?;
    }
    if let Some(t) = trailer {
        writeln!(
            out,
            "Trailer:    events {}, events lost {} (ring-full {}, no-buffer {}, other {}), buffers written {}, buffers lost {}",
            t.events,
            t.events_lost,
            t.lost_ring_full,
            t.lost_no_buffer,
            t.lost_other,
            t.buffers_written,
            t.log_buffers_lost
        )?;
    }
    if !stats.per_event.is_empty() {
        let mut rows: Vec<_> = stats.per_event.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        writeln!(out, "{:>12}  provider/event", "count")?;
        for ((provider, event), n) in rows {
            writeln!(out, "{n:>12}  {provider}/{event}")?;
        }
    }
    Ok(())
}
