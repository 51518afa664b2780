//! `ferret fmt --summary`: what a log holds, what was lost and what was damaged.

use std::io::{self, Write};

use ferret_format::{FileHeader, Trailer, mode};

use crate::decoder::Stats;
use crate::output::{format_timestamp, printable_name};

/// How the file's writing ended, as the summary says it: a clean stop, a
/// snapshot of a session that may have gone on, or no trailer at the end.
fn stopped_text(header: &FileHeader, stats: &Stats, trailer: Option<&Trailer>) -> String {
    match trailer {
        // A snapshot's trailer marks when the buffers were saved, not a
        // stop: the session was running then, or may have been.
        Some(t) if stats.buffers_after_trailer == 0 && header.log_mode == mode::SNAPSHOT => {
            format!(
                "snapshot saved at {} (the session may have run on after it)",
                format_timestamp(t.end_unix_ns)
            )
        }
        Some(t) if stats.buffers_after_trailer == 0 => {
            format!("{} (clean stop)", format_timestamp(t.end_unix_ns))
        }
        Some(t) => format!(
            "no trailer after the last {} buffers (still running, or the daemon did not stop cleanly); an earlier session stopped cleanly at {}",
            stats.buffers_after_trailer,
            format_timestamp(t.end_unix_ns)
        ),
        None => "no trailer (still running, or the daemon did not stop cleanly)".to_string(),
    }
}

/// The summary of one file as one JSON object, with the same facts as
/// [`write_summary`] prints (`ferret fmt --summary --format json`).
pub fn summary_json(
    source: &str,
    header: &FileHeader,
    stats: &Stats,
    trailer: Option<&Trailer>,
) -> serde_json::Value {
    let lost: serde_json::Map<String, serde_json::Value> = stats
        .lost
        .iter()
        .map(|(r, n)| (r.name().to_string(), (*n).into()))
        .collect();
    let mut per_event: Vec<_> = stats.per_event.iter().collect();
    per_event.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let per_event: Vec<serde_json::Value> = per_event
        .into_iter()
        .map(|((provider, event), n)| {
            serde_json::json!({"provider": provider, "event": event, "count": n})
        })
        .collect();
    serde_json::json!({
        "file": source,
        "session": header.session_name,
        "logger_id": header.logger_id,
        "host": header.host,
        "clock": header.clock.name(),
        "buffer_size": header.buffer_size,
        "mode": mode::name(header.log_mode),
        "started_unix_ns": header.start_unix_ns,
        "clean_stop": trailer.is_some()
            && stats.buffers_after_trailer == 0
            && header.log_mode != mode::SNAPSHOT,
        "stopped": stopped_text(header, stats, trailer),
        "sessions_with_trailer": stats.trailers,
        "notes": stats.notes,
        "first_event_unix_ns": stats.first_ns,
        "last_event_unix_ns": stats.last_ns,
        "buffers": stats.buffers,
        "damaged_stretches": stats.corrupt_stretches,
        "damaged_bytes": stats.corrupt_bytes,
        "events": stats.events,
        "undecodable_records": stats.bad_records,
        "lost": stats.lost_total(),
        "lost_by_reason": lost,
        "process_ends": stats.process_ends,
        "trailer": trailer.map(|t| serde_json::json!({
            "events": t.events,
            "events_lost": t.events_lost,
            "lost_ring_full": t.lost_ring_full,
            "lost_no_buffer": t.lost_no_buffer,
            "lost_other": t.lost_other,
            "buffers_written": t.buffers_written,
            "log_buffers_lost": t.log_buffers_lost,
            "end_unix_ns": t.end_unix_ns,
        })),
        "per_event": per_event,
    })
}

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
        printable_name(&header.session_name),
        header.logger_id,
        printable_name(&header.host),
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
    writeln!(out, "Stopped:    {}", stopped_text(header, stats, trailer))?;
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
            writeln!(
                out,
                "{n:>12}  {}/{}",
                printable_name(provider),
                printable_name(event)
            )?;
        }
    }
    Ok(())
}
