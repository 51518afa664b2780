//! Chrome trace event JSON: `{"traceEvents":[...],"displayTimeUnit":"ns",
//! "metadata":{...}}`, which ui.perfetto.dev and chrome://tracing open.
//!
//! Each event is an instant event (`ph` "i", thread scope) named
//! `provider/event` with its fields as `args`. An activity is a nestable
//! async slice: its start event opens it (`ph` "b") and its stop event
//! closes it (`ph` "e"), both with an `id` made from the activity id, since an
//! activity may end on another thread than the one it started on; a stop
//! whose start is not in the trace is an instant event. Process and thread
//! names are metadata events (`ph` "M"). Losses are instant events of
//! process scope named "Lost events", and their totals are in `metadata`.
//!
//! `ts` is in microseconds from the trace's first timestamp, written with
//! three decimals so nanoseconds survive: absolute UNIX-epoch microseconds
//! have more digits than a double keeps. `metadata.trace_start_unix_ns`
//! says where zero is.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use ferret_abi::Guid;
use ferret_abi::payload::Value;

use crate::{Ticker, Trace, TraceItem, event_name, guid_text, hex};

/// Writes `trace` (ordered by [`Trace::finish`]) as Chrome trace event
/// JSON. `progress` is called now and then with the records written.
pub fn write_chrome(
    trace: &Trace,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> io::Result<()> {
    let start = trace.first_ns().unwrap_or(0);
    let mut line = String::with_capacity(512);
    out.write_all(b"{\"traceEvents\":[\n")?;
    let mut first = true;
    let mut emit = |out: &mut dyn Write, line: &str| -> io::Result<()> {
        if !first {
            out.write_all(b",\n")?;
        }
        first = false;
        out.write_all(line.as_bytes())
    };
    for (pid, name) in trace.processes() {
        line.clear();
        let _ = write!(
            line,
            "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":"
        );
        let shown = if name.is_empty() {
            format!("pid {pid}")
        } else {
            name.clone()
        };
        json_str(&mut line, &shown);
        line.push_str("}}");
        emit(out, &line)?;
    }
    for (pid, tid) in trace.threads() {
        line.clear();
        let _ = write!(
            line,
            "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":\"thread {tid}\"}}}}"
        );
        emit(out, &line)?;
    }
    // Each type's name, category and field names as JSON, escaped once
    // rather than for every event.
    let names: Vec<(String, String, Vec<String>)> = trace
        .types()
        .iter()
        .map(|ty| {
            let mut name = String::new();
            json_str(&mut name, &event_name(ty));
            let mut cat = String::new();
            json_str(&mut cat, &ty.provider.name);
            let keys = ty
                .fields
                .iter()
                .map(|f| {
                    let mut k = String::new();
                    json_str(&mut k, &f.name);
                    k.push(':');
                    k
                })
                .collect();
            (name, cat, keys)
        })
        .collect();
    // The open activities: id to their start event's type.
    let mut open: HashMap<Guid, usize> = HashMap::new();
    let mut ticker = Ticker::new(progress);
    trace.for_each(|record| {
        ticker.tick();
        line.clear();
        match record {
            TraceItem::Event(e) => {
                let Some((name, cat, keys)) = names.get(e.type_index) else {
                    return Ok(());
                };
                let (ph, slice_name) = match e.activity_id {
                    Some(id) if e.ty.opcode == crate::OPCODE_START => {
                        open.insert(id, e.type_index);
                        ("b", name)
                    }
                    Some(id) if e.ty.opcode == crate::OPCODE_STOP => {
                        match open.remove(&id).and_then(|t| names.get(t)) {
                            Some(start) => ("e", &start.0),
                            None => ("i", name),
                        }
                    }
                    _ => ("i", name),
                };
                line.push_str("{\"name\":");
                line.push_str(slice_name);
                line.push_str(",\"cat\":");
                line.push_str(cat);
                let _ = write!(line, ",\"ph\":\"{ph}\"");
                if ph == "i" {
                    line.push_str(",\"s\":\"t\"");
                } else if let Some(id) = e.activity_id {
                    let _ = write!(line, ",\"id\":\"{}\"", async_id(&id));
                }
                line.push_str(",\"ts\":");
                ts(&mut line, e.timestamp_ns, start);
                let _ = write!(line, ",\"pid\":{},\"tid\":{},\"args\":{{", e.pid, e.tid);
                let mut sep = "";
                for (k, v) in keys.iter().zip(&e.values) {
                    line.push_str(sep);
                    sep = ",";
                    line.push_str(k);
                    value(&mut line, v);
                }
                for (key, id) in [
                    ("activity_id", e.activity_id),
                    ("related_activity_id", e.related_activity_id),
                ] {
                    if let Some(id) = id {
                        if e.ty.fields.iter().all(|f| f.name != key) {
                            let _ = write!(line, "{sep}\"{key}\":\"{}\"", guid_text(&id));
                            sep = ",";
                        }
                    }
                }
                line.push_str("}}");
            }
            TraceItem::Lost {
                timestamp_ns,
                pid,
                provider,
                reason,
                count,
            } => {
                line.push_str("{\"name\":\"Lost events\",\"cat\":\"ferret\",\"ph\":\"i\",\"s\":\"p\",\"ts\":");
                ts(&mut line, timestamp_ns, start);
                let _ = write!(
                    line,
                    ",\"pid\":{pid},\"tid\":0,\"args\":{{\"count\":{count},\"reason\":\"{reason}\",\"provider\":"
                );
                json_str(&mut line, provider);
                line.push_str("}}");
            }
            TraceItem::ProcessEnd { timestamp_ns, pid } => {
                line.push_str(
                    "{\"name\":\"Process ended\",\"cat\":\"ferret\",\"ph\":\"i\",\"s\":\"p\",\"ts\":",
                );
                ts(&mut line, timestamp_ns, start);
                let _ = write!(line, ",\"pid\":{pid},\"tid\":0,\"args\":{{}}}}");
            }
        }
        emit(out, &line)
    })?;
    ticker.end();
    let s = trace.summary();
    line.clear();
    let _ = write!(
        line,
        "\n],\n\"displayTimeUnit\":\"ns\",\n\"metadata\":{{\"source\":\"ferret\",\"trace_start_unix_ns\":{start},\"files\":{},\"events\":{},\"lost_events\":{},\"lost_by_reason\":{{",
        s.files,
        s.events,
        s.lost_total()
    );
    let mut sep = "";
    for (reason, n) in &s.lost {
        let _ = write!(line, "{sep}\"{reason}\":{n}");
        sep = ",";
    }
    let _ = writeln!(
        line,
        "}},\"log_buffers_lost\":{},\"bad_records\":{},\"corrupt_stretches\":{},\"corrupt_bytes\":{}}}}}",
        s.log_buffers_lost, s.bad_records, s.corrupt_stretches, s.corrupt_bytes
    );
    out.write_all(line.as_bytes())?;
    out.flush()
}

/// The `id` of an activity's async slice: a 64-bit hash of its GUID in
/// hex, the form of id both viewers read as a number (the GUID itself is in
/// `args.activity_id`).
fn async_id(g: &Guid) -> String {
    // FNV-1a: every byte counts, so ids differing anywhere differ here.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &g.0 {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("0x{h:016x}")
}

/// Microseconds since `start`, with the nanoseconds as three decimals.
fn ts(out: &mut String, ns: u64, start: u64) {
    let d = ns.saturating_sub(start);
    let _ = write!(out, "{}.{:03}", d / 1000, d % 1000);
}

/// A field value as JSON: numbers as numbers, bytes as hex, GUIDs as
/// text, and floats JSON cannot hold ("NaN", "inf", "-inf") as strings.
fn value(out: &mut String, v: &Value<'_>) {
    let _ = match *v {
        Value::U8(x) => write!(out, "{x}"),
        Value::I8(x) => write!(out, "{x}"),
        Value::U16(x) => write!(out, "{x}"),
        Value::I16(x) => write!(out, "{x}"),
        Value::U32(x) => write!(out, "{x}"),
        Value::I32(x) => write!(out, "{x}"),
        Value::U64(x) => write!(out, "{x}"),
        Value::I64(x) => write!(out, "{x}"),
        Value::F64(x) if x.is_finite() => write!(out, "{x:?}"),
        Value::F64(x) => write!(out, "\"{x}\""),
        Value::Bool(x) => write!(out, "{x}"),
        Value::Str(s) => {
            json_str(out, s);
            Ok(())
        }
        Value::Bytes(b) => write!(out, "\"{}\"", hex(b)),
        Value::Guid(g) => write!(out, "\"{}\"", guid_text(&g)),
    };
}

/// Appends `s` as a JSON string: quotes, backslashes and every control
/// character escaped.
pub(crate) fn json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 || c == '\u{7f}' => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(esc);
        }
        plain = i + c.len_utf8();
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn control_characters_are_escaped() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\nd\u{1}e\u{1f}\u{7f}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001e\u001f\u007fé""#);
        assert_eq!(
            serde_json::from_str::<String>(&s).unwrap(),
            "a\"b\\c\nd\u{1}e\u{1f}\u{7f}é"
        );
    }

    proptest! {
        #[test]
        fn any_string_round_trips_and_has_no_raw_control_characters(text in any::<String>()) {
            let mut s = String::new();
            json_str(&mut s, &text);
            prop_assert!(!s.chars().any(|c| (c as u32) < 0x20));
            prop_assert_eq!(serde_json::from_str::<String>(&s).unwrap(), text);
        }
    }
}
