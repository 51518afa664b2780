//! Text, JSON-lines and CSV output of decoded entries.

use std::fmt::Write as _;
use std::io::{self, Write};

use ferret_abi::Level;
use ferret_abi::payload::Value;
use ferret_abi::record::LostReason;
pub use ferret_abi::text::{format_timestamp, printable_name};

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

/// ETW's names for the standard opcodes; `None` for 0 (no word) and for
/// opcodes without a name, which text output shows as `opcode=N`.
fn opcode_name(opcode: u8) -> Option<&'static str> {
    Some(match opcode {
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
        _ => return None,
    })
}

/// The two-digit numbers 00 to 99, for writing decimals two digits a step.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends the decimal digits of `n`. Text output writes millions of
/// numbers, and going through `core::fmt` for each costs several times more
/// than this loop, which writes two digits a step from the end.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + n as u8;
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends the decimal form of `n`, with a minus sign when negative.
/// `unsigned_abs` keeps `i64::MIN` exact.
fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` exactly as `{s:?}` writes it. Strings of printable ASCII
/// other than `"` and `\` are written verbatim between quotes by `Debug`,
/// so only those take the fast path; anything else goes through `Debug`
/// itself, which keeps its escaping rules the single source of truth.
fn push_debug_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{s:?}");
    }
}

/// Appends one field value as text output shows it.
fn push_value_text(out: &mut Vec<u8>, v: &Value<'_>) {
    match *v {
        Value::U8(x) => push_u64(out, x.into()),
        Value::I8(x) => push_i64(out, x.into()),
        Value::U16(x) => push_u64(out, x.into()),
        Value::I16(x) => push_i64(out, x.into()),
        Value::U32(x) => push_u64(out, x.into()),
        Value::I32(x) => push_i64(out, x.into()),
        Value::U64(x) => push_u64(out, x),
        Value::I64(x) => push_i64(out, x),
        // Floats keep `Display`'s shortest round-trip form, which a
        // hand-written formatter would be unlikely to match exactly.
        Value::F64(x) => {
            let _ = write!(out, "{x}");
        }
        Value::Bool(x) => out.extend_from_slice(if x { b"true" } else { b"false" }),
        Value::Str(s) => push_debug_str(out, s),
        Value::Bytes(b) => {
            out.reserve(2 + 2 * b.len());
            out.extend_from_slice(b"0x");
            for &byte in b {
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 15)]);
            }
        }
        Value::Guid(g) => {
            let _ = write!(out, "{g}");
        }
    }
}

/// Appends the fields as `name=value` pairs separated by spaces.
fn push_fields_text(out: &mut Vec<u8>, e: &Event<'_>) {
    for (i, (f, v)) in e.ty.fields.iter().zip(e.values).enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(printable_name(&f.name).as_bytes());
        out.push(b'=');
        push_value_text(out, v);
    }
}

/// Appends what text output prints after the level (see [`details_text`]).
fn push_details(out: &mut Vec<u8>, e: &Event<'_>) {
    let start = out.len();
    let opcode = e.ty.opcode;
    if opcode != 0 {
        match opcode_name(opcode) {
            Some(name) => out.extend_from_slice(name.as_bytes()),
            None => {
                out.extend_from_slice(b"opcode=");
                push_u64(out, opcode.into());
            }
        }
    }
    if let Some(a) = e.activity_id {
        if out.len() > start {
            out.push(b' ');
        }
        let _ = write!(out, "activity={a}");
    }
    if let Some(r) = e.related_activity_id {
        if out.len() > start {
            out.push(b' ');
        }
        let _ = write!(out, "related={r}");
    }
    // Fields print nothing when there are none, and then no space either.
    if !e.ty.fields.is_empty() && !e.values.is_empty() {
        if out.len() > start {
            out.push(b' ');
        }
        push_fields_text(out, e);
    }
}

/// Text that was appended to a byte buffer by the functions above, which
/// write only UTF-8.
fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn fields_text(e: &Event<'_>) -> String {
    let mut s = Vec::new();
    push_fields_text(&mut s, e);
    into_string(s)
}

/// What text output prints after the level: the opcode's name when it is
/// not 0, `activity=` and `related=` when the event carries them, then the
/// fields. Empty parts leave no extra space. Public so that other views
/// of events (the terminal viewer) show them exactly as text output does.
pub fn details_text(e: &Event<'_>) -> String {
    let mut s = Vec::new();
    push_details(&mut s, e);
    into_string(s)
}

/// Text output's timestamps with the part up to the seconds remembered:
/// events come in time order, so consecutive lines nearly always share it,
/// and only the nanoseconds need formatting.
#[derive(Debug, Default)]
struct TimestampCache {
    /// The whole seconds `prefix` is for, when it is not empty.
    secs: u64,
    /// `2026-11-23T08:15:02.` for `secs`.
    prefix: Vec<u8>,
}

impl TimestampCache {
    /// Appends `unix_ns` exactly as [`format_timestamp`] writes it.
    fn push(&mut self, out: &mut Vec<u8>, unix_ns: u64) {
        let secs = unix_ns / 1_000_000_000;
        if self.prefix.is_empty() || secs != self.secs {
            self.prefix.clear();
            let full = format_timestamp(secs * 1_000_000_000);
            // Everything before the nine digits of nanoseconds and the `Z`.
            let keep = full.len() - 10;
            self.prefix.extend_from_slice(&full.as_bytes()[..keep]);
            self.secs = secs;
        }
        out.extend_from_slice(&self.prefix);
        // Nine digits, zero-padded (four pairs from the end, then one), and
        // the `Z`: ten bytes of known size.
        let mut nanos = (unix_ns % 1_000_000_000) as usize;
        let mut digits = [b'0'; 10];
        digits[9] = b'Z';
        let mut at = 9;
        for _ in 0..4 {
            let pair = nanos % 100 * 2;
            nanos /= 100;
            at -= 2;
            digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        digits[0] = b'0' + nanos as u8;
        out.extend_from_slice(&digits);
    }
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
    /// The text line being built, kept between events so that printing one
    /// allocates nothing.
    line: Vec<u8>,
    /// Text output's timestamp prefix.
    clock: TimestampCache,
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
            line: Vec::with_capacity(256),
            clock: TimestampCache::default(),
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
            // The line is built in a reused buffer and written at once:
            // `time pid.tid provider/event level details`, where the space
            // before the details is there even when they are empty.
            OutputFormat::Text => {
                let line = &mut self.line;
                line.clear();
                self.clock.push(line, e.timestamp_ns);
                line.push(b' ');
                push_u64(line, e.pid.into());
                line.push(b'.');
                push_u64(line, e.tid.into());
                line.push(b' ');
                line.extend_from_slice(printable_name(&ty.provider.name).as_bytes());
                line.push(b'/');
                line.extend_from_slice(printable_name(&ty.name).as_bytes());
                line.push(b' ');
                line.extend_from_slice(level_name(ty.level).as_bytes());
                line.push(b' ');
                push_details(line, e);
                line.push(b'\n');
                self.out.write_all(line)
            }
            OutputFormat::Json => {
                let mut fields = serde_json::Map::new();
                for (f, v) in ty.fields.iter().zip(e.values) {
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
                csv_field(&printable_name(&ty.provider.name)),
                csv_field(&printable_name(&ty.name)),
                ty.event_id,
                ty.level,
                ty.keywords,
                ty.opcode,
                e.pid,
                e.tid,
                csv_field(&printable_name(e.process)),
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
        let shown = printable_name(provider);
        match self.format {
            OutputFormat::Text => writeln!(
                self.out,
                "{} {pid} LOST {count} events of {shown} ({})",
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
                "{}: {}: {count} events of {shown} from pid {pid} lost ({})",
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
                "{} {pid} ENDED process {}",
                format_timestamp(ts),
                printable_name(process)
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

    /// The cached prefix must give what `format_timestamp` gives, also
    /// across second, minute, day and year boundaries and going backwards
    /// (events from several threads are not strictly ordered).
    #[test]
    fn cached_timestamps_match_format_timestamp() {
        let mut cache = TimestampCache::default();
        let end_of_2026 = 1_798_761_599_999_999_999u64;
        let times = [
            0,
            999_999_999,
            1_000_000_000,
            1_795_426_502_123_456_789,
            1_795_426_502_999_999_999,
            1_795_426_503_000_000_000,
            1_795_426_502_000_000_001,
            1_795_426_502_000_000_010,
            1_795_426_502_100_000_000,
            1_795_426_502_012_345_678,
            end_of_2026,
            end_of_2026 + 1,
            951_782_400_000_000_001,
            u64::MAX,
        ];
        for t in times {
            let mut out = Vec::new();
            cache.push(&mut out, t);
            assert_eq!(String::from_utf8(out).unwrap(), format_timestamp(t), "{t}");
        }
    }

    /// Every value type prints as its `Display` form (strings: `Debug`,
    /// bytes: `0x` and lowercase hex), as text output always has.
    #[test]
    fn values_print_as_their_std_forms() {
        let g = ferret_abi::Guid([
            0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0x4e, 0x80, 0x01, 0x02, 0x03, 0x04, 0x05,
            0x06, 0xff,
        ]);
        let cases: Vec<(Value<'_>, String)> = vec![
            (Value::U8(0), "0".into()),
            (Value::U8(u8::MAX), u8::MAX.to_string()),
            (Value::I8(i8::MIN), i8::MIN.to_string()),
            (Value::I8(-1), "-1".into()),
            (Value::U16(u16::MAX), u16::MAX.to_string()),
            (Value::I16(i16::MIN), i16::MIN.to_string()),
            (Value::U32(u32::MAX), u32::MAX.to_string()),
            (Value::I32(i32::MIN), i32::MIN.to_string()),
            (Value::U64(u64::MAX), u64::MAX.to_string()),
            (Value::U64(10), "10".into()),
            (Value::I64(i64::MIN), i64::MIN.to_string()),
            (Value::I64(i64::MAX), i64::MAX.to_string()),
            (Value::F64(1.5), format!("{}", 1.5f64)),
            (Value::F64(f64::NAN), format!("{}", f64::NAN)),
            (Value::F64(-0.0), format!("{}", -0.0f64)),
            (Value::Bool(true), "true".into()),
            (Value::Bool(false), "false".into()),
            (Value::Str(""), "\"\"".into()),
            (
                Value::Str("plain text ~!"),
                format!("{:?}", "plain text ~!"),
            ),
            (Value::Str("q\"b\\"), format!("{:?}", "q\"b\\")),
            (
                Value::Str("tab\tnl\n\u{7f}\u{0}"),
                format!("{:?}", "tab\tnl\n\u{7f}\u{0}"),
            ),
            (
                Value::Str("héllo \u{301}✓"),
                format!("{:?}", "héllo \u{301}✓"),
            ),
            (Value::Bytes(&[]), "0x".into()),
            (Value::Bytes(&[0, 0x0f, 0xa0, 0xff]), "0x000fa0ff".into()),
            (Value::Guid(g), g.to_string()),
        ];
        for (v, want) in cases {
            let mut out = Vec::new();
            push_value_text(&mut out, &v);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{v:?}");
        }
    }

    #[test]
    fn integers_print_in_decimal() {
        for n in [
            0u64,
            1,
            9,
            10,
            11,
            99,
            100,
            101,
            999,
            1000,
            12_345,
            99_999,
            1 << 32,
            u64::MAX - 1,
            u64::MAX,
        ] {
            // Appended after what the line holds, and nothing more.
            let mut out = b"x=".to_vec();
            push_u64(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), format!("x={n}"));
        }
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a"), "a");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
