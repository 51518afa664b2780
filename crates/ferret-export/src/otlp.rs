//! Events as OpenTelemetry log records (OTLP, the protocol every collector
//! accepts), one `LogRecord` per event, in `ExportLogsServiceRequest`
//! batches encoded as protobuf. The mapping is docs/OTLP.md.
//!
//! The messages are declared by hand with prost's derive, as the Perfetto
//! ones are: the few fields used here, with the tags of
//! opentelemetry-proto's `logs/v1`, `common/v1` and `resource/v1`, rather
//! than a generated crate and the gRPC stack it brings.

use std::collections::BTreeMap;

use ferret_abi::Value;
use ferret_abi::record::LostReason;
use ferret_decode::Event;
use prost::Message;

/// `opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct ExportLogsServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_logs: Vec<ResourceLogs>,
}

/// `logs.v1.ResourceLogs`.
#[derive(Clone, PartialEq, Message)]
pub struct ResourceLogs {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_logs: Vec<ScopeLogs>,
}

/// `resource.v1.Resource`.
#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

/// `logs.v1.ScopeLogs`.
#[derive(Clone, PartialEq, Message)]
pub struct ScopeLogs {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    pub log_records: Vec<LogRecord>,
}

/// `common.v1.InstrumentationScope`.
#[derive(Clone, PartialEq, Message)]
pub struct InstrumentationScope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `logs.v1.LogRecord`.
#[derive(Clone, PartialEq, Message)]
pub struct LogRecord {
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    #[prost(int32, tag = "2")]
    pub severity_number: i32,
    #[prost(string, tag = "3")]
    pub severity_text: String,
    #[prost(message, optional, tag = "5")]
    pub body: Option<AnyValue>,
    #[prost(message, repeated, tag = "6")]
    pub attributes: Vec<KeyValue>,
    #[prost(bytes = "vec", tag = "9")]
    pub trace_id: Vec<u8>,
    #[prost(fixed64, tag = "11")]
    pub observed_time_unix_nano: u64,
    #[prost(string, tag = "12")]
    pub event_name: String,
}

/// `common.v1.KeyValue`.
#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `common.v1.AnyValue`.
#[derive(Clone, PartialEq, Message)]
pub struct AnyValue {
    #[prost(oneof = "any_value::Kind", tags = "1, 2, 3, 4, 7")]
    pub value: Option<any_value::Kind>,
}

/// The members of `AnyValue`'s `value` oneof.
pub mod any_value {
    /// One value.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(string, tag = "1")]
        StringValue(String),
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        #[prost(int64, tag = "3")]
        IntValue(i64),
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        #[prost(bytes = "vec", tag = "7")]
        BytesValue(Vec<u8>),
    }
}

fn string(s: impl Into<String>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Kind::StringValue(s.into())),
    }
}

fn int(n: i64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Kind::IntValue(n)),
    }
}

fn kv(key: impl Into<String>, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(value),
    }
}

/// An event field as an OTLP value of its own type: integers as ints (a
/// u64 above i64's range as its decimal text, since OTLP ints are signed),
/// doubles, booleans, strings, bytes, and GUIDs as their text.
pub fn any_value(v: &Value<'_>) -> AnyValue {
    use any_value::Kind as V;
    let value = match *v {
        Value::U8(n) => V::IntValue(n.into()),
        Value::I8(n) => V::IntValue(n.into()),
        Value::U16(n) => V::IntValue(n.into()),
        Value::I16(n) => V::IntValue(n.into()),
        Value::U32(n) => V::IntValue(n.into()),
        Value::I32(n) => V::IntValue(n.into()),
        Value::U64(n) => match i64::try_from(n) {
            Ok(i) => V::IntValue(i),
            Err(_) => V::StringValue(n.to_string()),
        },
        Value::I64(n) => V::IntValue(n),
        Value::F64(x) => V::DoubleValue(x),
        Value::Bool(b) => V::BoolValue(b),
        Value::Str(s) => V::StringValue(s.to_string()),
        Value::Bytes(b) => V::BytesValue(b.to_vec()),
        Value::Guid(g) => V::StringValue(g.to_string()),
    };
    AnyValue { value: Some(value) }
}

/// OTLP's severity number and text for an ETW level (1 critical to 5
/// verbose).
pub fn severity(level: u8) -> (i32, &'static str) {
    match level {
        1 => (21, "Critical"),
        2 => (17, "Error"),
        3 => (13, "Warning"),
        4 => (9, "Information"),
        5 => (5, "Verbose"),
        _ => (0, ""),
    }
}

/// Who the records come from, for every resource of a batch.
#[derive(Clone, Debug)]
pub struct Origin {
    /// `host.name`.
    pub host: String,
    /// The session's LoggerName.
    pub session: String,
    /// Its LoggerID.
    pub logger_id: u32,
}

/// Records gathered into one request: a resource per provider process
/// (`service.name` its command name), one scope (`ferret`).
#[derive(Debug)]
pub struct Batch {
    origin: Origin,
    /// By (pid, process name).
    processes: BTreeMap<(u32, String), Vec<LogRecord>>,
    records: usize,
}

impl Batch {
    /// An empty batch.
    pub fn new(origin: Origin) -> Batch {
        Batch {
            origin,
            processes: BTreeMap::new(),
            records: 0,
        }
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records
    }

    /// True if it holds none.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    fn push(&mut self, pid: u32, process: &str, record: LogRecord) {
        self.processes
            .entry((pid, process.to_string()))
            .or_default()
            .push(record);
        self.records += 1;
    }

    /// Adds one event as a log record.
    pub fn push_event(&mut self, e: &Event<'_>, observed_ns: u64) {
        let (severity_number, severity_text) = severity(e.ty.level);
        let mut attributes: Vec<KeyValue> =
            e.ty.fields
                .iter()
                .zip(e.values)
                .map(|(f, v)| kv(f.name.clone(), any_value(v)))
                .collect();
        attributes.push(kv("ferret.provider", string(e.ty.provider.name.clone())));
        attributes.push(kv("ferret.keywords", int(e.ty.keywords as i64)));
        attributes.push(kv("ferret.opcode", int(e.ty.opcode.into())));
        attributes.push(kv("process.pid", int(e.pid.into())));
        attributes.push(kv("thread.id", int(e.tid.into())));
        if let Some(r) = e.related_activity_id {
            attributes.push(kv("ferret.related_activity_id", string(r.to_string())));
        }
        let record = LogRecord {
            time_unix_nano: e.timestamp_ns,
            observed_time_unix_nano: observed_ns,
            severity_number,
            severity_text: severity_text.to_string(),
            body: None,
            attributes,
            trace_id: e.activity_id.map(|g| g.0.to_vec()).unwrap_or_default(),
            event_name: format!("{}/{}", e.ty.provider.name, e.ty.name),
        };
        self.push(e.pid, e.process, record);
    }

    /// Adds a loss as a record of its own (`event_name` `ferret/lost`),
    /// so that a query finds what a session did not collect.
    pub fn push_lost(
        &mut self,
        timestamp_ns: u64,
        pid: u32,
        provider: &str,
        reason: LostReason,
        count: u64,
        observed_ns: u64,
    ) {
        let record = LogRecord {
            time_unix_nano: timestamp_ns,
            observed_time_unix_nano: observed_ns,
            severity_number: 13,
            severity_text: "Warning".into(),
            body: Some(string(format!("{count} events lost ({})", reason.name()))),
            attributes: vec![
                kv("ferret.lost.count", int(count.min(i64::MAX as u64) as i64)),
                kv("ferret.lost.reason", string(reason.name())),
                kv("ferret.provider", string(provider)),
                kv("process.pid", int(pid.into())),
            ],
            trace_id: Vec::new(),
            event_name: "ferret/lost".into(),
        };
        self.push(pid, "", record);
    }

    /// The batch as an encoded `ExportLogsServiceRequest`; the batch is left
    /// empty.
    pub fn take_request(&mut self) -> Vec<u8> {
        let o = &self.origin;
        let resource_logs = std::mem::take(&mut self.processes)
            .into_iter()
            .map(|((pid, process), log_records)| {
                let mut attributes = vec![
                    kv("host.name", string(o.host.clone())),
                    kv("ferret.session.name", string(o.session.clone())),
                    kv("ferret.session.logger_id", int(o.logger_id.into())),
                    kv("process.pid", int(pid.into())),
                ];
                if !process.is_empty() {
                    attributes.push(kv("service.name", string(process)));
                }
                ResourceLogs {
                    resource: Some(Resource { attributes }),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: "ferret".into(),
                            version: env!("CARGO_PKG_VERSION").into(),
                        }),
                        log_records,
                    }],
                }
            })
            .collect();
        self.records = 0;
        ExportLogsServiceRequest { resource_logs }.encode_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_values_keep_their_types() {
        use any_value::Kind as V;
        let cases = [
            (Value::U8(7), V::IntValue(7)),
            (Value::I32(-3), V::IntValue(-3)),
            (Value::U64(u64::MAX), V::StringValue(u64::MAX.to_string())),
            (Value::U64(5), V::IntValue(5)),
            (Value::F64(1.5), V::DoubleValue(1.5)),
            (Value::Bool(true), V::BoolValue(true)),
            (Value::Str("hi"), V::StringValue("hi".into())),
            (Value::Bytes(&[1, 2]), V::BytesValue(vec![1, 2])),
        ];
        for (v, want) in cases {
            assert_eq!(any_value(&v).value, Some(want), "{v:?}");
        }
    }

    #[test]
    fn levels_map_to_otlp_severities() {
        assert_eq!(severity(1), (21, "Critical"));
        assert_eq!(severity(4), (9, "Information"));
        assert_eq!(severity(5), (5, "Verbose"));
    }

    #[test]
    fn a_batch_groups_records_by_process_and_decodes_back() {
        let mut b = Batch::new(Origin {
            host: "h".into(),
            session: "web".into(),
            logger_id: 3,
        });
        b.push_lost(10, 42, "P", LostReason::RingFull, 5, 11);
        assert_eq!(b.len(), 1);
        let bytes = b.take_request();
        assert!(b.is_empty());
        let req = ExportLogsServiceRequest::decode(bytes.as_slice()).expect("decodes");
        let r = &req.resource_logs[0];
        assert_eq!(r.scope_logs[0].log_records[0].event_name, "ferret/lost");
        assert!(
            r.resource
                .as_ref()
                .expect("resource")
                .attributes
                .contains(&kv("ferret.session.logger_id", int(3)))
        );
    }
}
