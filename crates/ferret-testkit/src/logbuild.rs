//! Log files built record by record, for tests that need a log whose every
//! byte is known: the decoder's snapshots, the log modes, the exports.
//! It depends only on the ABI's record encoders and the format's buffers
//! and header, so a fixture is built exactly as the daemon builds a log.

use ferret_abi::record::{
    self, ActivityIds, ContextMeta, EventTypeMeta, FieldMeta, FieldType, ProcessMeta, ProviderMeta,
    Ticks,
};
use ferret_abi::{Guid, Value};
use ferret_format::{BufferBuilder, ClockInfo, FileHeader, Trailer, buffer_kind, mode};

/// A sequential log's header for session `name` with `buffer_size`-byte
/// buffers: LoggerID 4, host `testhost`, daemon pid 1, and a nanosecond
/// clock whose tick `anchor_ticks` is UNIX time `anchor_unix_ns` (and
/// monotonic time `anchor_ticks`). Tests change what else they need.
pub fn header(name: &str, buffer_size: u32, anchor_ticks: u64, anchor_unix_ns: u64) -> FileHeader {
    FileHeader {
        session_name: name.into(),
        host: "testhost".into(),
        logger_id: 4,
        buffer_size,
        log_mode: mode::SEQUENTIAL,
        start_unix_ns: anchor_unix_ns,
        clock: ClockInfo {
            kind: 1,
            anchor_ticks,
            anchor_mono_ns: anchor_ticks,
            anchor_unix_ns,
            ticks_per_sec: 1_000_000_000,
        },
        daemon_pid: 1,
        slot_count: 0,
        file_index: 0,
    }
}

/// A log file being built: its header, then buffers sealed in order, each
/// in a slot of the header's buffer size.
#[derive(Debug)]
pub struct LogBuilder {
    header: FileHeader,
    file: Vec<u8>,
    buffer: BufferBuilder,
    buffers: u64,
}

impl LogBuilder {
    /// A log that starts with `header`.
    pub fn new(header: FileHeader) -> LogBuilder {
        let file = header.encode();
        let buffer = BufferBuilder::new(header.buffer_size as usize);
        LogBuilder {
            header,
            file,
            buffer,
            buffers: 0,
        }
    }

    /// Adds `record` to the open buffer; panics if it does not fit, since a
    /// fixture that silently lost a record would test nothing.
    pub fn push(&mut self, record: &[u8]) -> &mut LogBuilder {
        assert!(
            self.buffer.push(record),
            "a {}-byte record does not fit in buffer {}",
            record.len(),
            self.buffers
        );
        self
    }

    /// Seals the open buffer as a data buffer with the next sequence
    /// number, in a slot of its own.
    pub fn seal(&mut self) -> &mut LogBuilder {
        self.seal_as(buffer_kind::DATA)
    }

    fn seal_as(&mut self, kind: u16) -> &mut LogBuilder {
        let sealed = self.buffer.seal(kind, self.buffers);
        self.file.extend_from_slice(sealed);
        self.buffers += 1;
        let end = self.header.data_offset() as usize
            + self.buffers as usize * self.header.buffer_size as usize;
        self.file.resize(end, 0);
        self.buffer.clear();
        self
    }

    /// Seals `trailer` in a buffer of its own and returns the whole file.
    pub fn finish(mut self, trailer: &Trailer) -> Vec<u8> {
        let mut rec = Vec::new();
        record::encode_trailer(&trailer.to_values(), &mut rec).expect("a trailer record");
        self.push(&rec);
        let sealed = self.buffer.seal(buffer_kind::TRAILER, self.buffers);
        self.file.extend_from_slice(sealed);
        self.file
    }

    /// The file so far, without a trailer, as a killed daemon leaves it.
    pub fn unfinished(self) -> Vec<u8> {
        self.file
    }

    /// Where the slot of buffer `n` (counting from 0) starts in the file.
    pub fn slot_offset(&self, n: u64) -> usize {
        self.header.data_offset() as usize + n as usize * self.header.buffer_size as usize
    }
}

/// A field called `name` of type `ty`.
pub fn field(name: &str, ty: FieldType) -> FieldMeta {
    FieldMeta {
        name: name.into(),
        ty,
    }
}

/// The metadata records that describe process `pid` called `process`, its
/// provider 0 of source `source` called `provider`, and `types` (each with
/// `provider: 0` and `source` set here), in one run of records as the
/// drain writes them before first use.
pub fn metadata(
    source: u32,
    pid: u32,
    process: &str,
    provider: &str,
    types: Vec<EventTypeMeta>,
) -> Vec<u8> {
    let mut out = Vec::new();
    record::encode_process(
        &ProcessMeta {
            pid,
            name: process.into(),
            source: None,
        },
        &mut out,
    )
    .expect("a process record");
    record::encode_provider(
        &ProviderMeta {
            source,
            provider: 0,
            pid,
            guid: Guid::from_name(provider),
            name: provider.into(),
        },
        &mut out,
    )
    .expect("a provider record");
    for ty in types {
        record::encode_event_type(
            &EventTypeMeta {
                source,
                provider: 0,
                ..ty
            },
            &mut out,
        )
        .expect("an event type record");
    }
    out
}

/// A CONTEXT record: what follows is thread `tid` of process `pid`
/// (source `source`), its ticks counted from `base_ticks`.
pub fn context(source: u32, pid: u32, tid: u32, base_ticks: u64) -> Vec<u8> {
    record::context_record(&ContextMeta {
        source,
        pid,
        tid,
        base_ticks,
    })
    .to_vec()
}

/// An event of type `type_id` at `ticks` with activity ids `ids` and
/// `values`, encoded as a provider writes it.
pub fn event(type_id: u16, ticks: Ticks, ids: ActivityIds, values: &[Value<'_>]) -> Vec<u8> {
    let header = record::event_header_len(ticks, &ids);
    let size = header + values.iter().map(Value::encoded_len).sum::<usize>();
    let mut b = vec![0u8; size];
    let mut at = record::encode_event_header_ids(&mut b, size, type_id, ticks, &ids);
    for v in values {
        at += v.encode(&mut b[at..]);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_log_reads_back_record_for_record() {
        let mut log = LogBuilder::new(header("t", 4096, 0, 1_000));
        let ty = EventTypeMeta {
            source: 0,
            type_id: 0,
            provider: 0,
            event_id: 1,
            level: 4,
            opcode: 0,
            keywords: 1,
            name: "Tick".into(),
            fields: vec![field("seq", FieldType::U64)],
        };
        log.push(&metadata(1, 42, "app", "Clock", vec![ty]))
            .push(&context(1, 42, 43, 0))
            .push(&event(
                0,
                Ticks::Delta(10),
                ActivityIds::NONE,
                &[Value::U64(7)],
            ))
            .seal();
        assert_eq!(log.slot_offset(1), log.header.data_offset() as usize + 4096);
        let bytes = log.finish(&Trailer {
            events: 1,
            buffers_written: 1,
            ..Trailer::default()
        });
        let mut reader = ferret_format::LogReader::new(&bytes[..]).expect("a header");
        let mut buffers = Vec::new();
        while let Some(item) = reader.next() {
            match item.expect("readable") {
                ferret_format::Item::Buffer(b) => buffers.push((
                    b.header.kind,
                    b.header.sequence,
                    ferret_format::Records::new(b.records).count(),
                )),
                ferret_format::Item::Corrupt(c) => panic!("damage: {c:?}"),
            }
        }
        // Three metadata records (process, provider, event type), a
        // CONTEXT and the event; then the trailer on its own.
        assert_eq!(
            buffers,
            vec![(buffer_kind::DATA, 0, 5), (buffer_kind::TRAILER, 1, 1)]
        );
    }
}
