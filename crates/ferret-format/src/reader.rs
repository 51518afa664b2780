//! The streaming reader (docs/FORMAT.md, "Reading and resynchronising").

use std::io::{self, Read};

use crate::FormatError;
use crate::buffer::{BUFFER_HEADER_LEN, BufferHeader, buffer_crc};
use crate::header::{FIXED_HEADER_LEN, FileHeader, MAX_HEADER_NAME};

/// Why a stretch of a file was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorruptionReason {
    /// The slot does not start with a buffer header.
    BadMagic,
    /// The slot is all zeros (never written).
    EmptySlot,
    /// The header claims more record bytes than a buffer holds.
    BadLength(u32),
    /// The checksum does not match.
    CrcMismatch {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes read.
        computed: u32,
    },
    /// The file ends inside the buffer (a torn tail).
    Truncated {
        /// Bytes the buffer needs.
        need: u64,
        /// Bytes the file has.
        have: u64,
    },
    /// A record inside a checksummed buffer is malformed.
    BadRecord(String),
}

impl std::fmt::Display for CorruptionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CorruptionReason::BadMagic => f.write_str("no buffer header"),
            CorruptionReason::EmptySlot => f.write_str("buffer slot never written"),
            CorruptionReason::BadLength(n) => write!(f, "buffer claims {n} bytes of records"),
            CorruptionReason::CrcMismatch { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:08x}, computed {computed:08x})"
            ),
            CorruptionReason::Truncated { need, have } => {
                write!(
                    f,
                    "file ends inside a buffer ({have} of {need} bytes present)"
                )
            }
            CorruptionReason::BadRecord(e) => write!(f, "malformed record: {e}"),
        }
    }
}

/// A stretch of the file the reader skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// File offset where the bad stretch starts.
    pub offset: u64,
    /// Bytes skipped.
    pub skipped: u64,
    /// Why.
    pub reason: CorruptionReason,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "skipped {} bytes at offset {}: {}",
            self.skipped, self.offset, self.reason
        )
    }
}

/// One good buffer, borrowed from the reader until the next call.
#[derive(Debug)]
pub struct BufferRef<'a> {
    /// Its header.
    pub header: BufferHeader,
    /// File offset of its slot.
    pub offset: u64,
    /// Its records.
    pub records: &'a [u8],
}

/// What the reader found next.
#[derive(Debug)]
pub enum Item<'a> {
    /// A buffer whose checksum is good.
    Buffer(BufferRef<'a>),
    /// A stretch that had to be skipped; reading goes on at the next slot.
    Corrupt(Corruption),
}

/// Reads a log file buffer by buffer from any [`Read`] (a file or a pipe).
///
/// Buffers sit in fixed-size slots, so after a bad buffer the reader goes on
/// at the next slot; each skipped stretch is reported once with its offset,
/// size and reason.
#[derive(Debug)]
pub struct LogReader<R> {
    inner: R,
    header: FileHeader,
    /// File offset of the next slot.
    pos: u64,
    slot: Vec<u8>,
    done: bool,
}

impl<R: Read> LogReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut inner: R) -> Result<LogReader<R>, FormatError> {
        let mut fixed = vec![0u8; FIXED_HEADER_LEN];
        let n = read_full(&mut inner, &mut fixed)?;
        fixed.truncate(n);
        if n < FIXED_HEADER_LEN {
            // Let the decoder say whether it is a log at all.
            FileHeader::decode_untrusted(&fixed)?;
            return Err(FormatError::HeaderTruncated {
                need: FIXED_HEADER_LEN,
                have: n,
            });
        }
        let names = u16::from_le_bytes([fixed[124], fixed[125]]) as usize
            + u16::from_le_bytes([fixed[126], fixed[127]]) as usize;
        let mut rest = vec![0u8; names.min(2 * MAX_HEADER_NAME)];
        let m = read_full(&mut inner, &mut rest)?;
        fixed.extend_from_slice(&rest[..m]);
        let (header, data_offset) = FileHeader::decode_untrusted(&fixed)?;
        // Skip the padding up to the first buffer.
        let consumed = fixed.len() as u64;
        let pad = data_offset - consumed;
        let skipped = io::copy(&mut (&mut inner).take(pad), &mut io::sink())?;
        let buffer_size = header.buffer_size as usize;
        Ok(LogReader {
            inner,
            header,
            pos: consumed + skipped,
            slot: Vec::with_capacity(buffer_size),
            done: skipped < pad,
        })
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// The next buffer or skipped stretch; `None` at the end of the file.
    /// An I/O error ends reading and is returned once.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<io::Result<Item<'_>>> {
        if self.done {
            return None;
        }
        let size = self.header.buffer_size as usize;
        let offset = self.pos;
        self.slot.resize(size, 0);
        let got = match read_full(&mut self.inner, &mut self.slot) {
            Ok(n) => n,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        self.pos += got as u64;
        if got < size {
            // The last slot may end early: the writer writes only the used part.
            self.done = true;
            if got == 0 {
                return None;
            }
        }
        let slot = &self.slot[..got];
        let corrupt = |reason| {
            Some(Ok(Item::Corrupt(Corruption {
                offset,
                skipped: got as u64,
                reason,
            })))
        };
        let Some(head) = slot.first_chunk::<BUFFER_HEADER_LEN>() else {
            return corrupt(CorruptionReason::Truncated {
                need: BUFFER_HEADER_LEN as u64,
                have: got as u64,
            });
        };
        let Some(header) = BufferHeader::decode(head) else {
            let reason = if slot.iter().all(|&b| b == 0) {
                CorruptionReason::EmptySlot
            } else {
                CorruptionReason::BadMagic
            };
            return corrupt(reason);
        };
        let used = header.used as usize;
        if used > size - BUFFER_HEADER_LEN {
            return corrupt(CorruptionReason::BadLength(header.used));
        }
        let end = BUFFER_HEADER_LEN + used;
        if end > got {
            return corrupt(CorruptionReason::Truncated {
                need: end as u64,
                have: got as u64,
            });
        }
        let records = &slot[BUFFER_HEADER_LEN..end];
        let computed = buffer_crc(head, records);
        if computed != header.crc {
            return corrupt(CorruptionReason::CrcMismatch {
                stored: header.crc,
                computed,
            });
        }
        Some(Ok(Item::Buffer(BufferRef {
            header,
            offset,
            records,
        })))
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
