//! Log files, through `ferret_decode::FileDecoder` (and so
//! `ferret_format::LogReader`, record framing and payload decoding).
//!
//! Each input is decoded three times:
//!
//! 1. As the file's bytes, unchanged. Random bytes seldom get past the
//!    header's CRC-32C, so this mostly exercises header validation.
//! 2. Framed: a valid file header (clock values taken from the input) and
//!    buffers with correct checksums around the input's bytes, so mutations
//!    reach the records, the metadata tables, payload decoding, timestamp
//!    conversion and the text/JSON/CSV printers and the summary that
//!    `ferret fmt` runs on whatever file it is given.
//! 3. The framed buffers fed one by one to a `StreamDecoder`, as
//!    `ferret tail` receives them.
//!
//! Framed layout: a flags byte (bits 0-1: output format; bit 2 set and bit 4
//! clear: decode via `FileDecoder::open` from a temporary file, which also
//! reads the trailer slot; bit 3: corrupt the last buffer's CRC; bit 5: a
//! circular file of 8 slots, decoded seekably so its buffers are put in
//! sequence order, with buffer k numbered (k + bits 6-7) mod 8), 36 bytes of
//! clock (kind u32, anchor ticks, anchor monotonic ns, anchor unix ns, ticks
//! per second, all little-endian), then buffers, each a u16 length (capped
//! at 4064), a kind byte (odd: TRAILER, even: DATA) and that many bytes of
//! records. The eighth buffer takes all that is left (up to 4064 bytes), so
//! a small input never becomes a large file.
#![no_main]

use std::io;
use std::ops::Range;
use std::sync::OnceLock;

use ferret_decode::{FileDecoder, FileHeader, OutputFormat, Printer, StreamDecoder, write_summary};
use ferret_format::{BUFFER_HEADER_LEN, BUFFER_MAGIC, ClockInfo, buffer_crc, buffer_kind, mode};
use libfuzzer_sys::fuzz_target;

const BUFFER_SIZE: usize = 4096;
/// The most buffers a framed file gets.
const MAX_BUFFERS: u64 = 8;

/// Reads little-endian integers, yielding zeros past the end.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn le<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        let s = self.bytes(N);
        b[..s.len()].copy_from_slice(s);
        b
    }
    fn u8(&mut self) -> u8 {
        self.le::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.le())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.le())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.le())
    }
}

struct Framed {
    file: Vec<u8>,
    format: OutputFormat,
    via_open: bool,
    circular: bool,
    /// Where each buffer lies in `file`.
    buffers: Vec<Range<usize>>,
}

fn frame(data: &[u8]) -> Framed {
    let mut input = Input(data);
    let flags = input.u8();
    let circular = flags & 0x20 != 0;
    let rotation = u64::from(flags >> 6);
    let clock = ClockInfo {
        kind: input.u32(),
        anchor_ticks: input.u64(),
        anchor_mono_ns: input.u64(),
        anchor_unix_ns: input.u64(),
        // Zero is refused by the header check; path 1 covers that.
        ticks_per_sec: input.u64().max(1),
    };
    let header = FileHeader {
        session_name: "fuzz".into(),
        host: "host".into(),
        logger_id: 1,
        buffer_size: BUFFER_SIZE as u32,
        log_mode: if circular {
            mode::CIRCULAR
        } else {
            mode::SEQUENTIAL
        },
        start_unix_ns: clock.anchor_unix_ns,
        clock,
        daemon_pid: 1,
        slot_count: if circular { MAX_BUFFERS as u32 } else { 0 },
        file_index: 0,
    };
    let mut file = header.encode();
    let mut sequence = 0u64;
    let mut last_crc_at = None;
    let mut buffers = Vec::new();
    while !input.0.is_empty() {
        let mut len = input.u16() as usize;
        if sequence + 1 == MAX_BUFFERS {
            len = usize::MAX;
        }
        let len = len.min(BUFFER_SIZE - BUFFER_HEADER_LEN);
        let kind = if input.u8() & 1 == 1 {
            buffer_kind::TRAILER
        } else {
            buffer_kind::DATA
        };
        let records = input.bytes(len);
        let mut head = [0u8; BUFFER_HEADER_LEN];
        head[0..4].copy_from_slice(&BUFFER_MAGIC);
        head[4..6].copy_from_slice(&kind.to_le_bytes());
        head[6..8].copy_from_slice(&(BUFFER_HEADER_LEN as u16).to_le_bytes());
        let number = if circular {
            (sequence + rotation) % MAX_BUFFERS
        } else {
            sequence
        };
        head[8..16].copy_from_slice(&number.to_le_bytes());
        head[16..20].copy_from_slice(&(records.len() as u32).to_le_bytes());
        let crc = buffer_crc(&head, records);
        head[20..24].copy_from_slice(&crc.to_le_bytes());
        let start = file.len();
        last_crc_at = Some(start + 20);
        file.extend_from_slice(&head);
        file.extend_from_slice(records);
        buffers.push(start..file.len());
        sequence += 1;
        if sequence == MAX_BUFFERS {
            break;
        }
        if !input.0.is_empty() {
            // Every slot but the last is full-sized.
            file.resize(start + BUFFER_SIZE, 0);
        }
    }
    if flags & 8 != 0
        && let Some(at) = last_crc_at
    {
        file[at] ^= 1;
    }
    Framed {
        file,
        format: match flags & 3 {
            0 => OutputFormat::Text,
            1 => OutputFormat::Json,
            _ => OutputFormat::Csv,
        },
        via_open: flags & 0x14 == 0x04,
        circular,
        buffers,
    }
}

fn print_all<R: io::Read>(decoder: &mut FileDecoder<R>, format: OutputFormat) {
    decoder.count_per_event(true);
    let mut printer = Printer::new(format, io::sink(), io::sink(), "fuzz.ferret");
    decoder
        .for_each(|e| printer.entry(&e))
        .expect("decoding from memory and printing to a sink cannot fail");
    printer.flush().expect("flushing a sink cannot fail");
    write_summary(
        &mut io::sink(),
        "fuzz.ferret",
        decoder.header(),
        decoder.stats(),
        decoder.trailer(),
    )
    .expect("summarising to a sink cannot fail");
}

/// A per-process scratch file for the `FileDecoder::open` path.
fn scratch_path() -> &'static std::path::Path {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!(
            "ferret-fuzz-log-reader-{}.ferret",
            std::process::id()
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    // 1. The bytes as they are.
    if let Ok(mut decoder) = FileDecoder::new(data) {
        decoder
            .for_each(|_| Ok(()))
            .expect("decoding from memory cannot fail");
    }

    // 2. The bytes framed as a well-formed file.
    let framed = frame(data);
    if framed.via_open {
        let path = scratch_path();
        std::fs::write(path, &framed.file).expect("write the scratch file");
        let mut decoder = FileDecoder::open(path).expect("a framed file has a valid header");
        let _ = std::fs::remove_file(path);
        print_all(&mut decoder, framed.format);
    } else if framed.circular {
        let mut decoder = FileDecoder::new_seekable(io::Cursor::new(&framed.file[..]))
            .expect("a framed file has a valid header");
        print_all(&mut decoder, framed.format);
    } else {
        let mut decoder =
            FileDecoder::new(&framed.file[..]).expect("a framed file has a valid header");
        print_all(&mut decoder, framed.format);
    }

    // 3. The framed buffers as a real-time stream.
    let mut stream =
        StreamDecoder::from_header_bytes(&framed.file).expect("a framed file has a valid header");
    let mut printer = Printer::new(framed.format, io::sink(), io::sink(), "fuzz stream");
    for range in framed.buffers {
        stream
            .feed(&framed.file[range], |e| printer.entry(&e))
            .expect("printing to a sink cannot fail");
    }
});
