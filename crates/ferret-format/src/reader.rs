//! The streaming reader (docs/FORMAT.md, "Reading and resynchronising").

use std::io::{self, Read, Seek, SeekFrom};

use crate::FormatError;
use crate::buffer::{BUFFER_HEADER_LEN, BufferHeader, buffer_crc, buffer_kind};
use crate::header::{FIXED_HEADER_LEN, FileHeader, MAX_HEADER_NAME, mode};

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

/// Checks one buffer as it sits in a slot of `buffer_size` bytes (or as a
/// real-time consumer receives it): `bytes` starts with the buffer header
/// and holds at least its `used` record bytes; anything after them is
/// ignored, as the unused tail of a slot is.
///
/// Returns the header and the records, or why the bytes are not a good
/// buffer. The checks and their order are those of docs/FORMAT.md,
/// "Reading and resynchronising".
pub fn check_buffer(
    bytes: &[u8],
    buffer_size: u32,
) -> Result<(BufferHeader, &[u8]), CorruptionReason> {
    let have = bytes.len() as u64;
    let Some(head) = bytes.first_chunk::<BUFFER_HEADER_LEN>() else {
        return Err(CorruptionReason::Truncated {
            need: BUFFER_HEADER_LEN as u64,
            have,
        });
    };
    let Some(header) = BufferHeader::decode(head) else {
        return Err(if bytes.iter().all(|&b| b == 0) {
            CorruptionReason::EmptySlot
        } else {
            CorruptionReason::BadMagic
        });
    };
    let capacity = (buffer_size as usize).saturating_sub(BUFFER_HEADER_LEN);
    let used = header.used as usize;
    if used > capacity {
        return Err(CorruptionReason::BadLength(header.used));
    }
    let end = BUFFER_HEADER_LEN + used;
    let Some(records) = bytes.get(BUFFER_HEADER_LEN..end) else {
        return Err(CorruptionReason::Truncated {
            need: end as u64,
            have,
        });
    };
    let computed = buffer_crc(head, records);
    if computed != header.crc {
        return Err(CorruptionReason::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok((header, records))
}

/// The most slots a reader puts in sequence order. Ordering keeps 16 bytes
/// per slot while it sorts (1/256 of the file at the smallest buffer size),
/// so a larger file is read in file order instead of risking that much
/// memory.
pub const MAX_ORDERED_SLOTS: u64 = 1 << 24;

/// Moves a seekable input to a file offset. Stored as a plain function
/// pointer so that [`LogReader::next`] can seek without requiring
/// [`Seek`] of every input it reads.
type SeekFn<R> = fn(&mut R, u64) -> io::Result<()>;

fn seek_to<R: Seek>(r: &mut R, offset: u64) -> io::Result<()> {
    r.seek(SeekFrom::Start(offset)).map(|_| ())
}

/// Reads a log file buffer by buffer from any [`Read`] (a file or a pipe).
///
/// Buffers sit in fixed-size slots, so after a bad buffer the reader goes on
/// at the next slot; each skipped stretch is reported once with its offset,
/// size and reason.
///
/// [`LogReader::new`] reads slots in file order. [`LogReader::new_seekable`]
/// reads a circular file's buffers oldest first instead (see
/// [`LogReader::by_sequence`]).
#[derive(Debug)]
pub struct LogReader<R> {
    inner: R,
    header: FileHeader,
    data_offset: u64,
    /// File offset of the next slot, when reading in file order.
    pos: u64,
    slot: Vec<u8>,
    done: bool,
    /// Set when reading in sequence order: how to reach a slot.
    seek: Option<SeekFn<R>>,
    /// The slots to read, in order, when reading in sequence order.
    order: Vec<u32>,
    /// Index into `order` of the next slot to read.
    next_in_order: usize,
}

impl<R: Read> LogReader<R> {
    /// Reads and checks the file header. Slots are then read in file order.
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
            data_offset,
            pos: consumed + skipped,
            slot: Vec::with_capacity(buffer_size),
            done: skipped < pad,
            seek: None,
            order: Vec::new(),
            next_in_order: 0,
        })
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// True when buffers come oldest first (by sequence number, trailers
    /// last) rather than in file order: for a circular file read through
    /// [`LogReader::new_seekable`] with at most [`MAX_ORDERED_SLOTS`] slots.
    pub fn by_sequence(&self) -> bool {
        self.seek.is_some()
    }

    /// The next buffer or skipped stretch; `None` at the end of the file.
    /// An I/O error ends reading and is returned once.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<io::Result<Item<'_>>> {
        let (offset, header) = loop {
            if self.done {
                return None;
            }
            let (offset, got) = match self.fill_slot() {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            match check_buffer(&self.slot[..got], self.header.buffer_size) {
                Ok((header, _)) => break (offset, header),
                // A circular file that has not wrapped yet has slots that
                // were never written: they are expected, not damage.
                Err(CorruptionReason::EmptySlot) if self.by_sequence() => {}
                Err(reason) => {
                    return Some(Ok(Item::Corrupt(Corruption {
                        offset,
                        skipped: got as u64,
                        reason,
                    })));
                }
            }
        };
        // `check_buffer` found the records right after the header; slicing
        // them again here keeps the borrow of `self.slot` out of the loop.
        let end = BUFFER_HEADER_LEN + header.used as usize;
        Some(Ok(Item::Buffer(BufferRef {
            header,
            offset,
            records: &self.slot[BUFFER_HEADER_LEN..end],
        })))
    }

    /// Reads the next slot into `self.slot`; returns its file offset and the
    /// bytes read, or `None` when there was nothing to read there (and
    /// `done` is set when nothing follows either).
    fn fill_slot(&mut self) -> io::Result<Option<(u64, usize)>> {
        let size = self.header.buffer_size as usize;
        self.slot.resize(size, 0);
        if let Some(seek) = self.seek {
            let Some(&index) = self.order.get(self.next_in_order) else {
                self.done = true;
                return Ok(None);
            };
            self.next_in_order += 1;
            let offset = self.data_offset + u64::from(index) * size as u64;
            seek(&mut self.inner, offset)?;
            let got = read_full(&mut self.inner, &mut self.slot)?;
            // Nothing there means the file shrank after it was scanned;
            // the slots still to come may hold something, so go on.
            return Ok((got > 0).then_some((offset, got)));
        }
        let offset = self.pos;
        let got = read_full(&mut self.inner, &mut self.slot)?;
        self.pos += got as u64;
        if got < size {
            // The last slot may end early: the writer writes only the used part.
            self.done = true;
        }
        Ok((got > 0).then_some((offset, got)))
    }
}

impl<R: Read + Seek> LogReader<R> {
    /// Reads and checks the header of a seekable input (starting at its
    /// offset 0, wherever it is positioned now).
    ///
    /// A circular file's slots hold its newest buffers out of order, so for
    /// one the reader first reads every slot's 32-byte buffer header (the
    /// full check comes when the buffer is read) and then yields data
    /// buffers oldest first by sequence number, then trailers; slots whose
    /// header is unreadable are reported first, and slots never written are
    /// skipped. Other files, and circular files with more than
    /// [`MAX_ORDERED_SLOTS`] slots, are read in file order.
    pub fn new_seekable(mut inner: R) -> Result<LogReader<R>, FormatError> {
        inner.seek(SeekFrom::Start(0))?;
        let mut reader = LogReader::new(inner)?;
        if reader.header.log_mode == mode::CIRCULAR {
            reader.order_by_sequence()?;
        }
        Ok(reader)
    }

    fn order_by_sequence(&mut self) -> io::Result<()> {
        let len = self.inner.seek(SeekFrom::End(0))?;
        let size = u64::from(self.header.buffer_size);
        let slots = len.saturating_sub(self.data_offset).div_ceil(size);
        if slots > MAX_ORDERED_SLOTS {
            // Left in file order; `by_sequence` tells the caller.
            return self.inner.seek(SeekFrom::Start(self.pos)).map(|_| ());
        }
        // Sort keys: unreadable slots first (in slot order, so damage is
        // reported where it lies), then data buffers, then trailers, each by
        // sequence number. A slot number makes every key unique.
        const UNREADABLE: u8 = 0;
        const DATA: u8 = 1;
        const TRAILER: u8 = 2;
        let mut keys: Vec<(u8, u64, u32)> = Vec::with_capacity(slots as usize);
        let mut head = [0u8; BUFFER_HEADER_LEN];
        for index in 0..slots as u32 {
            self.inner
                .seek(SeekFrom::Start(self.data_offset + u64::from(index) * size))?;
            let got = read_full(&mut self.inner, &mut head)?;
            let decoded = (got == BUFFER_HEADER_LEN)
                .then(|| BufferHeader::decode(&head))
                .flatten();
            keys.push(match decoded {
                Some(h) if h.kind == buffer_kind::TRAILER => (TRAILER, h.sequence, index),
                // Kinds a later minor may add are ordered with the data.
                Some(h) => (DATA, h.sequence, index),
                None => (UNREADABLE, 0, index),
            });
        }
        keys.sort_unstable();
        self.order = keys.into_iter().map(|(_, _, index)| index).collect();
        self.next_in_order = 0;
        self.seek = Some(seek_to::<R>);
        Ok(())
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
