//! Ferret's log file format, version 1 (docs/FORMAT.md): the file header,
//! fixed-size checksummed buffers of records, and the trailer with a
//! session's final counters; a builder the daemon fills buffers with, and a
//! streaming reader that reports corruption and resynchronises at the next
//! buffer (and reads a circular file's buffers oldest first when it can
//! seek).
//!
//! This crate does no filesystem work of its own: it encodes to bytes and
//! reads from any [`std::io::Read`] (and [`std::io::Seek`], where given). Record encoding (events, metadata) lives
//! in `ferret_abi::record`, shared with provider rings.

mod buffer;
mod clock;
mod header;
mod reader;
mod trailer;

pub use buffer::{
    BUFFER_HEADER_LEN, BUFFER_MAGIC, BufferBuilder, BufferHeader, buffer_crc, buffer_kind,
};
pub use clock::Timebase;
pub use header::{
    ClockInfo, DATA_ALIGN, FILE_MAGIC, FIXED_HEADER_LEN, FORMAT_MAJOR, FORMAT_MINOR, FileHeader,
    MAX_BUFFER_SIZE, MIN_BUFFER_SIZE, mode,
};
pub use reader::{
    BufferRef, Corruption, CorruptionReason, Item, LogReader, MAX_ORDERED_SLOTS, check_buffer,
};
pub use trailer::Trailer;

use ferret_abi::record::{Record, RecordError, parse_untrusted};

/// Why a file cannot be read as a Ferret log at all.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The magic is missing.
    #[error("not a Ferret log file (no FERRETLG magic at offset 0)")]
    NotALog,
    /// Another major version.
    #[error("log format version {0} is not supported (this reader reads version {FORMAT_MAJOR})")]
    Version(u16),
    /// The file ends inside the header.
    #[error("file header is truncated ({have} of {need} bytes)")]
    HeaderTruncated {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// The header's checksum does not match.
    #[error("file header checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    HeaderCrc {
        /// Stored CRC.
        stored: u32,
        /// Computed CRC.
        computed: u32,
    },
    /// The header's fields contradict each other.
    #[error("file header is invalid: {0}")]
    BadHeader(&'static str),
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Iterates over the records of one buffer. After a malformed record it
/// yields that error once and stops: the rest of the buffer cannot be framed.
#[derive(Debug)]
pub struct Records<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Records<'a> {
    /// The records in `bytes` (a buffer's record area).
    pub fn new(bytes: &'a [u8]) -> Records<'a> {
        Records {
            rest: bytes,
            failed: false,
        }
    }

    /// Bytes not yet parsed.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match parse_untrusted(self.rest) {
            Ok((Record::Pad, _)) => {
                // Padding belongs in rings only; in a buffer it ends the records.
                self.rest = &[];
                None
            }
            Ok((record, size)) => {
                self.rest = &self.rest[size..];
                Some(Ok(record))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
