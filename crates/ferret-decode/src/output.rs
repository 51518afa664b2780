//! Text, JSON-lines and CSV output of decoded entries.

use std::fmt::Write as _;
use std::io::{self, Write};

use ferret_abi::Level;
use ferret_abi::payload::Value;
use ferret_abi::record::LostReason;

use crate::decoder::{Entry, Event};

/// How `ferret fmt` prints events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One line per event: time, pid.tid, provider/event, level, fields.
    Text,
    /// One JSON object per line.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

/// `2026-11-23T08:15:02.123456789Z` for nanoseconds since the UNIX epoch.
pub fn format_timestamp(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let nanos = unix_ns % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The short level name used in text output.
pub fn level_name(level: u8) -> &'static str {
    match Level::from_u8(level) {
        Some(Level::Critical) => "crit",
        Some(Level::Error) => "error",
        Some(Level::Warning) => "warn",
        Some(Level::Information) => "info",
        Some(Level::Verbose) => "verbose",
        None => "level?",
    }
}

/// The word text output adds after the level for an event with a non-zero
/// opcode: ETW's names for the standard opcodes, else `opcode=N`.
fn opcode_text(opcode: u8) -> Option<String> {
    let name = match opcode {
        0 => return None,
        1 => "start",
        2 => "stop",
        3 => "dc_start",
        4 => "dc_stop",
        5 => "extension",
        6 => "reply",
        7 => "resume",
        8 => "suspend",
        9 => "send",
        240 => "receive",
        n => return Some(format!("opcode={n}")),
    };
    Some(name.to_string())
}

fn write_value_text(out: &mut String, v: &Value<'_>) {
    let _ = match v {
        Value::U8(x) => write!(out, "{x}"),
        Value::I8(x) => write!(out, "{x}"),
        Value::U16(x) => write!(out, "{x}"),
        Value::I16(x) => write!(out, "{x}"),
        Value::U32(x) => write!(out, "{x}"),
        Value::I32(x) => write!(out, "{x}"),
        Value::U64(x) => write!(out, "{x}"),
        Value::I64(x) => write!(out, "{x}"),
        Value::F64(x) => write!(out, "{x}"),
        Value::Bool(x) => write!(out, "{x}"),
        Value::Str(s) => write!(out, "{s:?}"),
        Value::Bytes(b) => {
            out.push_str("0x");
            for byte in *b {
                let _ = write!(out, "{byte:02x}");
            }
            Ok(())
        }
        Value::Guid(g) => write!(out, "{g}"),
    };
}

fn fields_text(e: &Event<'_>) -> String {
    let mut s = String::new();
    for (i, (f, v)) in e.ty.fields.iter().zip(&e.values).enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&f.name);
        s.push('=');
        write_value_text(&mut s, v);
    }
    s
}

/// What text output prints after the level: the opcode's name when it is
/// not 0, `activity=` and `related=` when the event carries them, then the
/// fields. Empty parts leave no extra space. Public so that other views
/// of events (the terminal viewer) show them exactly as text output does.
pub fn details_text(e: &Event<'_>) -> String {
    let mut parts = Vec::with_capacity(4);
    if let Some(op) = opcode_text(e.ty.opcode) {
        parts.push(op);
    }
    if let Some(a) = e.activity_id {
        parts.push(format!("activity={a}"));
    }
    if let Some(r) = e.related_activity_id {
        parts.push(format!("related={r}"));
    }
    let fields = fields_text(e);
    if !fields.is_empty() {
        parts.push(fields);
    }
    parts.join(" ")
}

fn value_json(v: &Value<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match *v {
        Value::U8(x) => J::from(x),
        Value::I8(x) => J::from(x),
        Value::U16(x) => J::from(x),
        Value::I16(x) => J::from(x),
        Value::U32(x) => J::from(x),
        Value::I32(x) => J::from(x),
        Value::U64(x) => J::from(x),
        Value::I64(x) => J::from(x),
        Value::F64(x) => serde_json::Number::from_f64(x).map_or(J::Null, J::Number),
        Value::Bool(x) => J::from(x),
        Value::Str(s) => J::from(s),
        Value::Bytes(b) => {
            let mut hex = String::with_capacity(b.len() * 2);
            for byte in b {
                let _ = write!(hex, "{byte:02x}");
            }
            J::from(hex)
        }
        Value::Guid(g) => J::from(g.to_string()),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes entries in one format. Problems (corruption, undecodable records)
/// go to `diag` as one line each, so the output stays machine-readable.
#[derive(Debug)]
pub struct Printer<W, D> {
    format: OutputFormat,
    out: W,
    diag: D,
    /// The program named at the start of each diagnostic line.
    program: String,
    source: String,
    wrote_header: bool,
}

impl<W: Write, D: Write> Printer<W, D> {
    /// A printer for entries from the file named `source`.
    pub fn new(format: OutputFormat, out: W, diag: D, source: &str) -> Printer<W, D> {
        Printer {
            format,
            out,
            diag,
            program: "ferret fmt".to_string(),
            source: source.to_string(),
            wrote_header: false,
        }
    }

    /// Names the program at the start of diagnostic lines ("ferret fmt"
    /// unless set), so that `ferret tail` prints entries exactly as
    /// `ferret fmt` does but names itself in its diagnostics.
    pub fn set_program(&mut self, program: &str) {
        self.program = program.to_string();
    }

    /// Names the file the next entries come from.
    pub fn set_source(&mut self, source: &str) {
        self.source = source.to_string();
    }

    /// Writes one entry.
    pub fn entry(&mut self, e: &Entry<'_>) -> io::Result<()> {
        if self.format == OutputFormat::Csv && !self.wrote_header {
            writeln!(
                self.out,
                "timestamp,timestamp_ns,provider,event,event_id,level,keywords,opcode,pid,tid,process,fields,activity_id,related_activity_id"
            )?;
            self.wrote_header = true;
        }
        match e {
            Entry::Event(ev) => self.event(ev),
            Entry::Lost {
                timestamp_ns,
                pid,
                provider,
                reason,
                count,
            } => self.lost(*timestamp_ns, *pid, provider, *reason, *count),
            Entry::ProcessEnd {
                timestamp_ns,
                pid,
                process,
            } => self.process_end(*timestamp_ns, *pid, process),
            Entry::Corrupt(c) => writeln!(self.diag, "{}: {}: {c}", self.program, self.source),
            Entry::BadRecord {
                buffer_offset,
                error,
            } => writeln!(
                self.diag,
                "{}: {}: buffer at offset {buffer_offset}: {error}",
                self.program, self.source
            ),
            Entry::Note(note) => writeln!(self.diag, "{}: {}: {note}", self.program, self.source),
            Entry::Trailer(_) => Ok(()),
        }
    }

    fn event(&mut self, e: &Event<'_>) -> io::Result<()> {
        let ty = e.ty;
        match self.format {
            OutputFormat::Text => writeln!(
                self.out,
                "{} {}.{} {}/{} {} {}",
                format_timestamp(e.timestamp_ns),
                e.pid,
                e.tid,
                ty.provider.name,
                ty.name,
                level_name(ty.level),
                details_text(e)
            ),
            OutputFormat::Json => {
                let mut fields = serde_json::Map::new();
                for (f, v) in ty.fields.iter().zip(&e.values) {
                    fields.insert(f.name.clone(), value_json(v));
                }
                let mut obj = serde_json::json!({
                    "timestamp": format_timestamp(e.timestamp_ns),
                    "timestamp_ns": e.timestamp_ns,
                    "provider": ty.provider.name,
                    "event": ty.name,
                    "event_id": ty.event_id,
                    "level": ty.level,
                    "keywords": format!("0x{:x}", ty.keywords),
                    "opcode": ty.opcode,
                    "pid": e.pid,
                    "tid": e.tid,
                    "process": e.process,
                    "fields": fields,
                });
                // The ids appear only on events that carry them, as in the
                // text output.
                if let Some(map) = obj.as_object_mut() {
                    if let Some(a) = e.activity_id {
                        map.insert("activity_id".into(), a.to_string().into());
                    }
                    if let Some(r) = e.related_activity_id {
                        map.insert("related_activity_id".into(), r.to_string().into());
                    }
                }
                writeln!(self.out, "{obj}")
            }
            OutputFormat::Csv => writeln!(
                self.out,
                "{},{},{},{},{},{},0x{:x},{},{},{},{},{},{},{}",
                format_timestamp(e.timestamp_ns),
                e.timestamp_ns,
                csv_field(&ty.provider.name),
                csv_field(&ty.name),
                ty.event_id,
                ty.level,
                ty.keywords,
                ty.opcode,
                e.pid,
                e.tid,
                csv_field(e.process),
                csv_field(&fields_text(e)),
                e.activity_id.map(|g| g.to_string()).unwrap_or_default(),
                e.related_activity_id
                    .map(|g| g.to_string())
                    .unwrap_or_default()
            ),
        }
    }

    fn lost(
        &mut self,
        ts: u64,
        pid: u32,
        provider: &str,
        reason: LostReason,
        count: u64,
    ) -> io::Result<()> {
        let provider = if provider.is_empty() { "?" } else { provider };
        match self.format {
            OutputFormat::Text => writeln!(
                self.out,
                "{} {pid} LOST {count} events of {provider} ({})",
                format_timestamp(ts),
                reason.name()
            ),
            OutputFormat::Json => {
                let obj = serde_json::json!({
                    "timestamp": format_timestamp(ts),
                    "timestamp_ns": ts,
                    "lost": count,
                    "reason": reason.name(),
                    "pid": pid,
                    "provider": provider,
                });
                writeln!(self.out, "{obj}")
            }
            OutputFormat::Csv => writeln!(
                self.diag,
                "{}: {}: {count} events of {provider} from pid {pid} lost ({})",
                self.program,
                self.source,
                reason.name()
            ),
        }
    }

    /// A provider process ended. CSV rows are events only, and an end is
    /// no problem to report on standard error, so CSV leaves it out.
    fn process_end(&mut self, ts: u64, pid: u32, process: &str) -> io::Result<()> {
        let process = if process.is_empty() { "?" } else { process };
        match self.format {
            OutputFormat::Text => writeln!(
                self.out,
                "{} {pid} ENDED process {process}",
                format_timestamp(ts)
            ),
            OutputFormat::Json => {
                let obj = serde_json::json!({
                    "timestamp": format_timestamp(ts),
                    "timestamp_ns": ts,
                    "process_end": true,
                    "pid": pid,
                    "process": process,
                });
                writeln!(self.out, "{obj}")
            }
            OutputFormat::Csv => Ok(()),
        }
    }

    /// The output stream, for writing summaries between entries.
    pub fn output(&mut self) -> &mut W {
        &mut self.out
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.diag.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_iso8601_with_nanoseconds() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_timestamp(1_795_426_502_123_456_789),
            "2026-11-23T09:35:02.123456789Z"
        );
        assert_eq!(
            format_timestamp(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a"), "a");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
