//! Buffers: the unit of writing, checksumming and delivery (docs/FORMAT.md, "Buffers").

/// The first 4 bytes of every buffer.
pub const BUFFER_MAGIC: [u8; 4] = *b"FBUF";
/// Bytes of a buffer header.
pub const BUFFER_HEADER_LEN: usize = 32;

const CRC_AT: usize = 20;

/// Buffer kinds.
pub mod buffer_kind {
    /// Events and metadata.
    pub const DATA: u16 = 1;
    /// The trailer with the session's final counters.
    pub const TRAILER: u16 = 2;
}

/// A buffer header as read from a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferHeader {
    /// One of [`buffer_kind`].
    pub kind: u16,
    /// The buffer's number in the session, from 0.
    pub sequence: u64,
    /// Bytes of records after the header.
    pub used: u32,
    /// CRC-32C of the header (with this field zero) and the records.
    pub crc: u32,
    /// Records in the buffer.
    pub records: u32,
}

impl BufferHeader {
    /// Reads the 32 header bytes; checks only the magic and header length.
    pub fn decode(b: &[u8; BUFFER_HEADER_LEN]) -> Option<BufferHeader> {
        if b[0..4] != BUFFER_MAGIC || u16::from_le_bytes([b[6], b[7]]) as usize != BUFFER_HEADER_LEN
        {
            return None;
        }
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[8..16]);
        Some(BufferHeader {
            kind: u16::from_le_bytes([b[4], b[5]]),
            sequence: u64::from_le_bytes(seq),
            used: u32_at(16),
            crc: u32_at(CRC_AT),
            records: u32_at(24),
        })
    }
}

/// The CRC of a buffer given its header bytes (CRC field included; it is
/// treated as zero) and its records.
pub fn buffer_crc(header: &[u8; BUFFER_HEADER_LEN], records: &[u8]) -> u32 {
    let mut h = *header;
    h[CRC_AT..CRC_AT + 4].fill(0);
    let crc = crc32c::crc32c(&h);
    crc32c::crc32c_append(crc, records)
}

/// A buffer being filled in memory: a header's worth of space, then records.
///
/// The daemon appends records, then [`BufferBuilder::seal`]s it to get the
/// bytes to write. A sealed buffer can take more records and be sealed again;
/// the later write replaces the earlier one in the same slot.
#[derive(Debug)]
pub struct BufferBuilder {
    /// Reserved for `size` bytes but only as long as the furthest byte ever
    /// appended: memory a buffer was never filled to is never written, so
    /// the kernel does not map it and a session's unused buffer space costs
    /// no resident memory. Bytes past `len` are stale and never written out.
    data: Vec<u8>,
    /// Bytes in use: the header and the records.
    len: usize,
    size: usize,
    records: u32,
}

impl BufferBuilder {
    /// An empty buffer of `size` bytes (header included), whose memory is
    /// touched only as records fill it.
    pub fn new(size: usize) -> BufferBuilder {
        let size = size.max(BUFFER_HEADER_LEN);
        let mut data = Vec::with_capacity(size);
        data.resize(BUFFER_HEADER_LEN, 0);
        BufferBuilder {
            data,
            len: BUFFER_HEADER_LEN,
            size,
            records: 0,
        }
    }

    /// Bytes of memory this buffer has been filled to at some time (what it
    /// may hold resident), header included.
    pub fn touched(&self) -> usize {
        self.data.len()
    }

    /// Empties the buffer for reuse.
    pub fn clear(&mut self) {
        self.len = BUFFER_HEADER_LEN;
        self.records = 0;
    }

    /// The buffer's size, header included.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes of records so far.
    pub fn used(&self) -> usize {
        self.len - BUFFER_HEADER_LEN
    }

    /// True if no record was appended.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Records so far.
    pub fn records(&self) -> u32 {
        self.records
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.size - self.len
    }

    /// Appends one record of `n` bytes and returns the space to fill, or
    /// `None` if it does not fit.
    #[inline]
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.remaining() {
            return None;
        }
        let at = self.len;
        self.len += n;
        self.records += 1;
        if self.data.len() < self.len {
            // Within the capacity reserved at creation: no reallocation.
            self.data.resize(self.len, 0);
        }
        Some(&mut self.data[at..at + n])
    }

    /// Takes back what was appended since [`BufferBuilder::used`] was
    /// `used` and [`BufferBuilder::records`] was `records` (both no more
    /// than they are now).
    pub fn rewind(&mut self, used: usize, records: u32) {
        self.len = (BUFFER_HEADER_LEN + used).min(self.len);
        self.records = records.min(self.records);
    }

    /// Counts `n` more records appended through [`BufferBuilder::append`]
    /// as one block of bytes.
    pub fn add_records(&mut self, n: u32) {
        self.records += n;
    }

    /// Appends one record's bytes; false if they do not fit.
    #[inline]
    pub fn push(&mut self, record: &[u8]) -> bool {
        match self.append(record.len()) {
            Some(dst) => {
                dst.copy_from_slice(record);
                true
            }
            None => false,
        }
    }

    /// The header and records as of the last [`BufferBuilder::seal`].
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// Fills in the header for buffer number `sequence` and returns the bytes
    /// to write: the header and the records, without the unused tail.
    pub fn seal(&mut self, kind: u16, sequence: u64) -> &[u8] {
        let used = self.used() as u32;
        let h = &mut self.data[..BUFFER_HEADER_LEN];
        h[0..4].copy_from_slice(&BUFFER_MAGIC);
        h[4..6].copy_from_slice(&kind.to_le_bytes());
        h[6..8].copy_from_slice(&(BUFFER_HEADER_LEN as u16).to_le_bytes());
        h[8..16].copy_from_slice(&sequence.to_le_bytes());
        h[16..20].copy_from_slice(&used.to_le_bytes());
        h[20..24].fill(0);
        h[24..28].copy_from_slice(&self.records.to_le_bytes());
        h[28..32].fill(0);
        let crc = crc32c::crc32c(&self.data[..self.len]);
        self.data[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        &self.data[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_buffer_touches_only_what_records_fill() {
        let mut b = BufferBuilder::new(1 << 20);
        assert_eq!(b.touched(), BUFFER_HEADER_LEN);
        let start = b.data.as_ptr();
        assert!(b.push(&[7u8; 100]));
        assert_eq!(b.touched(), BUFFER_HEADER_LEN + 100);
        // Filling within the reserved size never moves the buffer.
        while b.push(&[1u8; 4000]) {}
        assert_eq!(b.data.as_ptr(), start);
        assert!(b.remaining() < 4000);
        // Reused after clearing, it keeps what it touched and appends
        // without zero-filling again.
        let high = b.touched();
        b.clear();
        assert!(b.push(&[9u8; 8]));
        assert_eq!(b.touched(), high);
        assert_eq!(
            &b.seal(buffer_kind::DATA, 1)[BUFFER_HEADER_LEN..],
            &[9u8; 8]
        );
    }

    #[test]
    fn rewinding_and_sealing_stay_within_what_was_appended() {
        let mut b = BufferBuilder::new(256);
        assert!(b.push(&[1u8; 50]));
        assert!(b.push(&[2u8; 50]));
        b.rewind(50, 1);
        assert_eq!(b.seal(buffer_kind::DATA, 0).len(), BUFFER_HEADER_LEN + 50);
        assert!(b.push(&[3u8; 150]));
        assert!(!b.push(&[4u8; 100]));
        assert_eq!(b.used(), 200);
    }
}
