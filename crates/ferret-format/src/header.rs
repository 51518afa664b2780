//! The file header (docs/FORMAT.md, "File header").

use crate::FormatError;

/// The first 8 bytes of every Ferret log file.
pub const FILE_MAGIC: [u8; 8] = *b"FERRETLG";
/// The format's major version: readers refuse other majors.
pub const FORMAT_MAJOR: u16 = 1;
/// The format's minor version: fields and record kinds are appended within
/// a major. 1 added the log modes' header fields; 2 added event records
/// with activity ids and PROCESS_END records; 3 added compact event
/// records. Readers decode every kind they know whatever minor a header
/// says, since an appended file keeps its first session's header.
pub const FORMAT_MINOR: u16 = 3;
/// Bytes of the fixed part of the header.
pub const FIXED_HEADER_LEN: usize = 128;
/// Buffers start at a multiple of this.
pub const DATA_ALIGN: u32 = 4096;
/// The smallest buffer size.
pub const MIN_BUFFER_SIZE: u32 = 4096;
/// The largest buffer size.
pub const MAX_BUFFER_SIZE: u32 = 16 << 20;
/// The longest session name or host name stored.
pub const MAX_HEADER_NAME: usize = 1024;

const CRC_AT: usize = 120;

/// Log file modes.
pub mod mode {
    /// Buffers are written in order, slot k holding buffer k (relative to
    /// the file's first); the file grows up to its maximum size, if any.
    /// Files appended to keep this mode.
    pub const SEQUENTIAL: u32 = 1;
    /// A fixed number of slots (`slot_count`) reused in turn: the last slot
    /// holds the trailer, the others the newest data buffers. Readers order
    /// buffers by sequence number.
    pub const CIRCULAR: u32 = 2;
    /// One file of a series rotated at a maximum size (`file_index` counts
    /// from 1); each file is sequential and decodes alone.
    pub const NEW_FILE: u32 = 3;
    /// A snapshot of an in-memory session's buffers, in sequence order.
    pub const SNAPSHOT: u32 = 4;

    /// The name `query` and `fmt` show for a mode number.
    pub fn name(mode: u32) -> &'static str {
        match mode {
            SEQUENTIAL => "sequential",
            CIRCULAR => "circular",
            NEW_FILE => "new-file",
            SNAPSHOT => "snapshot",
            _ => "unknown",
        }
    }
}

/// How timestamps in event records turn into wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockInfo {
    /// 1: CLOCK_MONOTONIC nanoseconds; 2: time-stamp counter ticks.
    pub kind: u32,
    /// A tick count sampled together with the two times below.
    pub anchor_ticks: u64,
    /// CLOCK_MONOTONIC in nanoseconds at the anchor.
    pub anchor_mono_ns: u64,
    /// CLOCK_REALTIME in nanoseconds since the UNIX epoch at the anchor.
    pub anchor_unix_ns: u64,
    /// Ticks per second, as calibrated when the session started.
    pub ticks_per_sec: u64,
}

impl ClockInfo {
    /// The name shown by `query`: "monotonic" or "tsc".
    pub fn name(&self) -> &'static str {
        match self.kind {
            2 => "tsc",
            _ => "monotonic",
        }
    }
}

/// Everything in the file header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHeader {
    /// The LoggerName.
    pub session_name: String,
    /// The host the session ran on.
    pub host: String,
    /// The LoggerID.
    pub logger_id: u32,
    /// Bytes per buffer slot, buffer header included.
    pub buffer_size: u32,
    /// One of [`mode`].
    pub log_mode: u32,
    /// Session start, nanoseconds since the UNIX epoch.
    pub start_unix_ns: u64,
    /// The timestamp clock.
    pub clock: ClockInfo,
    /// The daemon's process id.
    pub daemon_pid: u32,
    /// Circular files: the number of slots, the trailer's included; else 0.
    pub slot_count: u32,
    /// New-file series: this file's number, from 1; else 0.
    pub file_index: u32,
}

impl FileHeader {
    /// Bytes of the encoded header (fixed part, names).
    pub fn header_len(&self) -> usize {
        FIXED_HEADER_LEN
            + self.session_name.len().min(MAX_HEADER_NAME)
            + self.host.len().min(MAX_HEADER_NAME)
    }

    /// The offset of the first buffer: the header length rounded up to [`DATA_ALIGN`].
    pub fn data_offset(&self) -> u64 {
        let a = DATA_ALIGN as u64;
        (self.header_len() as u64).div_ceil(a) * a
    }

    /// The header bytes, padded with zeros up to [`FileHeader::data_offset`].
    pub fn encode(&self) -> Vec<u8> {
        let name = truncate(&self.session_name);
        let host = truncate(&self.host);
        let header_len = FIXED_HEADER_LEN + name.len() + host.len();
        let data_offset = self.data_offset() as usize;
        let mut b = vec![0u8; data_offset];
        b[0..8].copy_from_slice(&FILE_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_MAJOR.to_le_bytes());
        b[10..12].copy_from_slice(&FORMAT_MINOR.to_le_bytes());
        b[12..16].copy_from_slice(&(header_len as u32).to_le_bytes());
        b[16..20].copy_from_slice(&(data_offset as u32).to_le_bytes());
        b[20..24].copy_from_slice(&self.buffer_size.to_le_bytes());
        b[24..28].copy_from_slice(&self.logger_id.to_le_bytes());
        b[28..32].copy_from_slice(&self.log_mode.to_le_bytes());
        b[32..40].copy_from_slice(&self.start_unix_ns.to_le_bytes());
        b[40..44].copy_from_slice(&self.clock.kind.to_le_bytes());
        // 44..48: flags, zero.
        b[48..56].copy_from_slice(&self.clock.anchor_ticks.to_le_bytes());
        b[56..64].copy_from_slice(&self.clock.anchor_mono_ns.to_le_bytes());
        b[64..72].copy_from_slice(&self.clock.anchor_unix_ns.to_le_bytes());
        b[72..80].copy_from_slice(&self.clock.ticks_per_sec.to_le_bytes());
        b[80..84].copy_from_slice(&self.daemon_pid.to_le_bytes());
        b[84..88].copy_from_slice(&self.slot_count.to_le_bytes());
        b[88..92].copy_from_slice(&self.file_index.to_le_bytes());
        // 92..120: reserved, zero.
        b[124..126].copy_from_slice(&(name.len() as u16).to_le_bytes());
        b[126..128].copy_from_slice(&(host.len() as u16).to_le_bytes());
        b[128..128 + name.len()].copy_from_slice(name.as_bytes());
        b[128 + name.len()..header_len].copy_from_slice(host.as_bytes());
        let crc = crc32c::crc32c(&b[..header_len]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads a header. `bytes` must start at offset 0 of the file and hold at
    /// least the fixed part; it is untrusted.
    ///
    /// Returns the header and its data offset.
    pub fn decode_untrusted(bytes: &[u8]) -> Result<(FileHeader, u64), FormatError> {
        if bytes.len() < 8 || bytes[0..8] != FILE_MAGIC {
            return Err(FormatError::NotALog);
        }
        if bytes.len() < FIXED_HEADER_LEN {
            return Err(FormatError::HeaderTruncated {
                need: FIXED_HEADER_LEN,
                have: bytes.len(),
            });
        }
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let u64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(a)
        };
        let major = u16_at(8);
        if major != FORMAT_MAJOR {
            return Err(FormatError::Version(major));
        }
        let header_len = u32_at(12) as usize;
        let data_offset = u32_at(16) as u64;
        let name_len = u16_at(124) as usize;
        let host_len = u16_at(126) as usize;
        if name_len > MAX_HEADER_NAME
            || host_len > MAX_HEADER_NAME
            || header_len < FIXED_HEADER_LEN + name_len + host_len
            || data_offset < header_len as u64
            || data_offset % DATA_ALIGN as u64 != 0
        {
            return Err(FormatError::BadHeader("lengths and offsets do not agree"));
        }
        if bytes.len() < header_len {
            return Err(FormatError::HeaderTruncated {
                need: header_len,
                have: bytes.len(),
            });
        }
        let stored_crc = u32_at(CRC_AT);
        let mut scratch = bytes[..header_len].to_vec();
        scratch[CRC_AT..CRC_AT + 4].fill(0);
        let crc = crc32c::crc32c(&scratch);
        if crc != stored_crc {
            return Err(FormatError::HeaderCrc {
                stored: stored_crc,
                computed: crc,
            });
        }
        let buffer_size = u32_at(20);
        if !(MIN_BUFFER_SIZE..=MAX_BUFFER_SIZE).contains(&buffer_size) {
            return Err(FormatError::BadHeader("buffer size out of range"));
        }
        let text = |from: usize, len: usize| {
            String::from_utf8_lossy(&bytes[from..from + len]).into_owned()
        };
        let header = FileHeader {
            session_name: text(FIXED_HEADER_LEN, name_len),
            host: text(FIXED_HEADER_LEN + name_len, host_len),
            logger_id: u32_at(24),
            buffer_size,
            log_mode: u32_at(28),
            start_unix_ns: u64_at(32),
            clock: ClockInfo {
                kind: u32_at(40),
                anchor_ticks: u64_at(48),
                anchor_mono_ns: u64_at(56),
                anchor_unix_ns: u64_at(64),
                ticks_per_sec: u64_at(72),
            },
            daemon_pid: u32_at(80),
            slot_count: u32_at(84),
            file_index: u32_at(88),
        };
        if header.log_mode == mode::CIRCULAR && header.slot_count < 2 {
            return Err(FormatError::BadHeader(
                "circular file with fewer than 2 slots",
            ));
        }
        if header.clock.ticks_per_sec == 0 {
            return Err(FormatError::BadHeader("ticks per second is zero"));
        }
        Ok((header, data_offset))
    }
}

fn truncate(s: &str) -> &str {
    let mut n = s.len().min(MAX_HEADER_NAME);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}
