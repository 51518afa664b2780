//! The shared-memory region between one provider process and the daemon
//! (docs/ABI.md, "Shared memory").
//!
//! The daemon creates one region per provider process in a sealed memfd and
//! passes it over the control socket. The region holds, at page-aligned
//! offsets: a header, the enable table the daemon writes and providers read,
//! per-provider lost-event counters, one descriptor per ring, an append-only
//! metadata area, and the rings themselves (one single-producer ring per
//! writing thread).
//!
//! Both sides map the same bytes, and each side distrusts the other's
//! writes: the daemon validates every head, length and record it reads, and
//! the provider validates the header before it uses any offset.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicU32, AtomicU64};

use thiserror::Error;

use crate::level::EnableFilter;

/// The first 8 bytes of every region.
pub const REGION_MAGIC: [u8; 8] = *b"FERRETSH";
/// The page size regions are laid out in.
pub const PAGE: usize = 4096;
/// Provider slots in a region's enable table: the most providers one process may register.
pub const ENABLE_SLOTS: usize = 1024;
/// Bytes of one enable-table slot.
pub const SLOT_BYTES: usize = 64;
/// Bytes of the enable table (page-aligned, mapped at a fixed address by providers).
pub const ENABLE_TABLE_BYTES: usize = ENABLE_SLOTS * SLOT_BYTES;
/// Bytes of the region header (one page).
pub const HEADER_BYTES: usize = PAGE;
/// Bytes of one ring descriptor.
pub const RING_DESC_BYTES: usize = 192;

/// Timestamps are CLOCK_MONOTONIC nanoseconds.
pub const CLOCK_MONOTONIC: u32 = 1;
/// Timestamps are x86-64 time-stamp counter ticks (invariant TSC).
pub const CLOCK_TSC: u32 = 2;

/// A ring no thread owns.
pub const RING_FREE: u32 = 0;
/// A ring a live thread writes to.
pub const RING_OWNED: u32 = 1;
/// A ring whose thread has exited; the daemon frees it once drained.
pub const RING_RELEASED: u32 = 2;

/// The cache line of the header that only the daemon writes.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct DaemonLine {
    /// 1 while the drain thread sleeps; a producer that sees it and a ring
    /// past its watermark signals the region's eventfd.
    pub drain_sleeping: AtomicU32,
    /// Bumped (then futex-woken, as a shared futex) each time the daemon
    /// changes a word of this region's enable table, so that a provider can
    /// sleep until its enable state changes instead of polling it. Added in
    /// ABI 1.2.
    pub enable_version: AtomicU32,
    /// Reserved, zero. Spelled out as atomics, like the padding of every
    /// layout type here, so that a Rust reference to this line covers only
    /// memory that may change under it: the provider can write any byte of
    /// the region.
    pub reserved: [AtomicU32; 14],
}

/// The cache line of the header that only the provider writes.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct ProviderLine {
    /// Bytes committed to the metadata area.
    pub meta_head: AtomicU64,
    /// Events dropped because the process had more writing threads than rings.
    pub lost_no_ring: AtomicU64,
    /// Events dropped because their type did not fit in the metadata area.
    pub lost_no_metadata: AtomicU64,
    /// Events dropped because they were too large or did not match their
    /// declared fields.
    pub lost_invalid: AtomicU64,
    /// Reserved, zero (atomics, as in [`DaemonLine::reserved`]).
    pub reserved: [AtomicU64; 4],
}

/// The region header at offset 0. Every field before `daemon` is written by
/// the daemon before it sends the region and never changes afterwards.
///
/// Those leading fields are plain integers, which the provider could
/// overwrite at any moment, so no process forms a Rust reference to a
/// `RegionHeader` in shared memory: the daemon writes it once with
/// `ptr::write` before the provider has the memfd, the provider copies it
/// out with one volatile read and checks the copy, and both reach the two
/// live lines (atomics only) through raw field pointers.
#[repr(C)]
#[derive(Debug)]
pub struct RegionHeader {
    /// [`REGION_MAGIC`].
    pub magic: [u8; 8],
    /// ABI major version; a provider refuses a region of another major.
    pub major: u16,
    /// ABI minor version; fields are only ever appended within a major.
    pub minor: u16,
    /// Bytes of the header ([`HEADER_BYTES`]).
    pub header_len: u32,
    /// Bytes of the whole region.
    pub region_size: u64,
    /// [`CLOCK_MONOTONIC`] or [`CLOCK_TSC`]: how providers take timestamps.
    pub clock: u32,
    /// The provider's process id as the daemon saw it (SO_PEERCRED).
    pub pid: u32,
    /// Offset of the enable table.
    pub enable_offset: u64,
    /// Slots in the enable table.
    pub enable_slots: u32,
    /// Bytes per slot ([`SLOT_BYTES`]).
    pub slot_size: u32,
    /// Offset of the per-slot lost counters (one u64 per slot).
    pub lost_offset: u64,
    /// Offset of the metadata area.
    pub meta_offset: u64,
    /// Bytes of the metadata area.
    pub meta_capacity: u64,
    /// Offset of the ring descriptors.
    pub ring_desc_offset: u64,
    /// Number of rings.
    pub ring_count: u32,
    /// Bytes per ring descriptor ([`RING_DESC_BYTES`]).
    pub ring_desc_size: u32,
    /// Offset of the first ring's data.
    pub ring_offset: u64,
    /// Bytes of each ring's data (a power of two).
    pub ring_capacity: u64,
    /// Reserved, zero.
    pub reserved: [u64; 3],
    /// Written by the daemon while the region is live.
    pub daemon: DaemonLine,
    /// Written by the provider while the region is live.
    pub provider: ProviderLine,
}

/// One slot of the enable table: for each level L (index L-1), the union of
/// the match-any keyword masks of every session that enables this provider
/// at level L or more verbose (a mask of 0 is stored as all ones).
///
/// `enabled(level, keywords)` is then one relaxed load of `levels[level-1]`:
/// the event may be wanted if that word is non-zero and either the event's
/// keywords are 0 or they share a bit with the word. The word over-approximates
/// sessions that also use match-all masks; the daemon applies the exact filter.
///
/// `no_loss_wait_us` is read only when a writer finds its ring full: 0 means
/// drop the event and count it (the default); otherwise some session that
/// enables this provider asked for no loss, and the writer waits up to that
/// many microseconds for the daemon to make room before it drops.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct EnableSlot {
    /// One mask per level, Critical first.
    pub levels: [AtomicU64; 5],
    /// How long a writer may wait for ring space, in microseconds (0: no wait).
    pub no_loss_wait_us: AtomicU64,
    /// Reserved, zero (atomics, as in [`DaemonLine::reserved`]).
    pub reserved: [AtomicU64; 2],
}

/// The longest no-loss wait the daemon publishes, in microseconds (60 s):
/// the bound on how long one stalled daemon can hold up one writing thread.
pub const MAX_NO_LOSS_WAIT_US: u64 = 60_000_000;

/// The descriptor of one ring. Each line has one writer.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct RingDesc {
    /// Producer line: bytes committed, ever (the write position is `head % capacity`).
    pub head: AtomicU64,
    _p0: [AtomicU64; 7],
    /// Consumer line: bytes the daemon has consumed, ever.
    pub tail: AtomicU64,
    /// Consumer line (since ABI 1.3): the ring's time base at `tail`, the
    /// ticks of the last event consumed, or `u64::MAX` when not known.
    /// Stored before `tail`, so that `ferret recover` can time the delta
    /// events after the tail of a ring whose daemon died.
    pub tail_ticks: AtomicU64,
    /// Consumer line (since ABI 1.3): the position of the oldest record the
    /// daemon has taken into a session buffer it has not yet written (or
    /// `tail` when there is none), with the time base and thread before
    /// it. Providers never read these; `ferret recover` starts from here
    /// when the ring still holds those bytes.
    pub keep_from: AtomicU64,
    /// The time base at `keep_from`, or `u64::MAX` when not known.
    pub keep_ticks: AtomicU64,
    /// The thread that wrote the record at `keep_from`.
    pub keep_tid: AtomicU64,
    _p1: [AtomicU64; 3],
    /// Ownership: [`RING_FREE`], [`RING_OWNED`] or [`RING_RELEASED`].
    pub state: AtomicU32,
    /// The owning thread's id (for display only).
    pub tid: AtomicU32,
    _p2: [AtomicU32; 14],
}

const _: () = assert!(core::mem::size_of::<RingDesc>() == RING_DESC_BYTES);
const _: () = assert!(core::mem::size_of::<EnableSlot>() == SLOT_BYTES);
const _: () = assert!(core::mem::size_of::<RegionHeader>() <= HEADER_BYTES);
const _: () = assert!(core::mem::size_of::<DaemonLine>() == 64);
const _: () = assert!(core::mem::size_of::<ProviderLine>() == 64);
const _: () = assert!(core::mem::offset_of!(RegionHeader, daemon) == 128);
const _: () = assert!(core::mem::offset_of!(RegionHeader, provider) == 192);

/// Bytes an encoder may write but must not treat as Rust-owned memory: a
/// record being built in a ring that the daemon maps too, or an ordinary
/// buffer.
///
/// A `&mut [u8]` over ring space would promise the compiler that no one
/// else reads or writes those bytes while it lives, which a daemon that
/// broke the ABI could falsify; a `Span` is a pointer and a length, and
/// writes go through `ptr::copy_nonoverlapping` and `write_unaligned`, so
/// encoders never form a reference to shared memory. Every write is
/// checked against the length and panics when it would pass the end, as
/// slice indexing does: callers size the span first, so the check is a
/// compare and a predicted branch, and no write past the end ever happens.
///
/// ```
/// use ferret_abi::shm::Span;
///
/// let mut buf = [0u8; 6];
/// let mut span = Span::new(&mut buf);
/// span.put(0, &[1, 2]);
/// span.put_u32(2, 0x0605_0403);
/// assert_eq!(buf, [1, 2, 3, 4, 5, 6]);
/// ```
#[derive(Debug)]
pub struct Span<'a> {
    ptr: *mut u8,
    len: usize,
    _bytes: PhantomData<&'a mut [u8]>,
}

impl<'a> Span<'a> {
    /// A span over an ordinary buffer.
    #[inline(always)]
    pub fn new(bytes: &'a mut [u8]) -> Span<'a> {
        Span {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            _bytes: PhantomData,
        }
    }

    /// A span over `len` bytes at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for writes of `len` bytes for `'a`, and no Rust
    /// reference may cover those bytes while the span lives. Another
    /// process may write them at the same time: the span only ever writes
    /// them (and reads back bytes it wrote itself), so such a write can
    /// garble only the bytes themselves.
    #[inline(always)]
    pub unsafe fn from_raw(ptr: *mut u8, len: usize) -> Span<'a> {
        Span {
            ptr,
            len,
            _bytes: PhantomData,
        }
    }

    /// Bytes in the span.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the span holds no bytes.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes from `at` to the end, as a span of their own.
    ///
    /// # Panics
    ///
    /// If `at` is past the end.
    #[inline(always)]
    pub fn rest(&mut self, at: usize) -> Span<'_> {
        assert!(at <= self.len, "span offset past the end");
        Span {
            // SAFETY: at <= len, so the pointer stays inside (or one past) the span.
            ptr: unsafe { self.ptr.add(at) },
            len: self.len - at,
            _bytes: PhantomData,
        }
    }

    /// Writes `bytes` at `at`.
    ///
    /// # Panics
    ///
    /// If they would pass the end; nothing is written then.
    #[inline(always)]
    pub fn put(&mut self, at: usize, bytes: &[u8]) {
        self.check(at, bytes.len());
        // SAFETY: [at, at + len) is inside the span (checked), which the
        // constructor made valid for writes; `bytes` is Rust memory, which
        // cannot overlap bytes no reference covers.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(at), bytes.len()) }
    }

    /// Writes the `N` bytes of `bytes` at `at`, as one store where the
    /// compiler can.
    ///
    /// # Panics
    ///
    /// If they would pass the end; nothing is written then.
    #[inline(always)]
    pub fn put_array<const N: usize>(&mut self, at: usize, bytes: [u8; N]) {
        self.check(at, N);
        // SAFETY: as in `put`; an unaligned write of an array of bytes.
        unsafe { self.ptr.add(at).cast::<[u8; N]>().write_unaligned(bytes) }
    }

    /// Writes one byte at `at`.
    ///
    /// # Panics
    ///
    /// If `at` is past the end.
    #[inline(always)]
    pub fn put_u8(&mut self, at: usize, v: u8) {
        self.put_array(at, [v]);
    }

    /// Writes `v`, little-endian, at `at`.
    ///
    /// # Panics
    ///
    /// If it would pass the end.
    #[inline(always)]
    pub fn put_u16(&mut self, at: usize, v: u16) {
        self.put_array(at, v.to_le_bytes());
    }

    /// Writes `v`, little-endian, at `at`.
    ///
    /// # Panics
    ///
    /// If it would pass the end.
    #[inline(always)]
    pub fn put_u32(&mut self, at: usize, v: u32) {
        self.put_array(at, v.to_le_bytes());
    }

    /// Writes `v`, little-endian, at `at`.
    ///
    /// # Panics
    ///
    /// If it would pass the end.
    #[inline(always)]
    pub fn put_u64(&mut self, at: usize, v: u64) {
        self.put_array(at, v.to_le_bytes());
    }

    /// Sets the bits of `bits` in the byte at `at`, which this span wrote
    /// before. The byte is read back through the pointer, never through a
    /// reference: in shared memory a peer that broke the ABI may have
    /// changed it, which garbles only this byte.
    ///
    /// # Panics
    ///
    /// If `at` is past the end.
    #[inline(always)]
    pub fn or_u8(&mut self, at: usize, bits: u8) {
        self.check(at, 1);
        // SAFETY: `at` is inside the span (checked); any bits are a valid u8.
        unsafe {
            let p = self.ptr.add(at);
            p.write(p.read() | bits);
        }
    }

    /// Panics unless `n` bytes from `at` lie inside the span. The
    /// encoders of this crate check a whole field or header once with it
    /// and then write its parts unchecked, which keeps the event path to
    /// one compare per field.
    #[inline(always)]
    pub(crate) fn check(&self, at: usize, n: usize) {
        // Written so that neither side can overflow: `at <= len` first,
        // then the room after it.
        assert!(
            at <= self.len && n <= self.len - at,
            "write past the end of a span"
        );
    }

    /// Writes `bytes` at `at` without a check.
    ///
    /// # Safety
    ///
    /// `[at, at + bytes.len())` must lie inside the span (see `check`).
    #[inline(always)]
    pub(crate) unsafe fn put_unchecked(&mut self, at: usize, bytes: &[u8]) {
        debug_assert!(at <= self.len && bytes.len() <= self.len - at);
        // SAFETY: the range is inside the span (the caller's promise).
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(at), bytes.len()) }
    }

    /// Writes the `N` bytes of `bytes` at `at` without a check.
    ///
    /// # Safety
    ///
    /// `[at, at + N)` must lie inside the span (see `check`).
    #[inline(always)]
    pub(crate) unsafe fn put_array_unchecked<const N: usize>(&mut self, at: usize, bytes: [u8; N]) {
        debug_assert!(at <= self.len && N <= self.len - at);
        // SAFETY: the range is inside the span (the caller's promise).
        unsafe { self.ptr.add(at).cast::<[u8; N]>().write_unaligned(bytes) }
    }
}

/// The sizes a region is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionParams {
    /// Rings in the region: the most threads of the process that write at once.
    pub ring_count: u32,
    /// Bytes per ring, a power of two of at least one page.
    pub ring_capacity: u64,
    /// Bytes of the metadata area, a multiple of the page size.
    pub meta_capacity: u64,
}

impl Default for RegionParams {
    fn default() -> RegionParams {
        RegionParams {
            ring_count: 128,
            ring_capacity: 8 << 20,
            meta_capacity: 1 << 20,
        }
    }
}

/// Offsets of every part of a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionLayout {
    /// The sizes the layout was built from.
    pub params: RegionParams,
    /// Offset of the enable table.
    pub enable_offset: u64,
    /// Offset of the lost counters.
    pub lost_offset: u64,
    /// Offset of the ring descriptors.
    pub ring_desc_offset: u64,
    /// Offset of the metadata area.
    pub meta_offset: u64,
    /// Offset of the first ring.
    pub ring_offset: u64,
    /// Bytes of the region.
    pub region_size: u64,
}

const fn page_up(n: u64) -> u64 {
    (n + PAGE as u64 - 1) & !(PAGE as u64 - 1)
}

/// Why a region header cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum LayoutError {
    /// The magic is wrong.
    #[error("not a Ferret region (bad magic)")]
    BadMagic,
    /// The major version differs.
    #[error("region ABI version {0} is not supported (this library speaks {ABI_MAJOR})")]
    Version(u16),
    /// Parameters out of range or offsets that do not match.
    #[error("region layout is invalid: {0}")]
    Invalid(&'static str),
}

/// The ABI major version of regions and of the control protocol.
pub const ABI_MAJOR: u16 = 1;
/// The ABI minor version. 2: rings may carry THREAD records and event
/// records with activity ids (docs/FORMAT.md), enable slots carry the
/// no-loss wait, and the header's daemon line `enable_version`; a provider writes activity ids only into regions whose
/// header says 2 or later. 3: rings may carry compact event records
/// (kinds 0x80–0xFF), which a provider writes only into regions whose header
/// says 3 or later; ring descriptors' consumer lines carry the words
/// `ferret recover` reads; `SessionInfo` carries `files_synced`. 4: the
/// control protocol pages the session and provider lists (`ListPage`,
/// `ProvidersPage`) and tells a watch that fell behind (`WatchLagged`,
/// `WatchResynced`); regions are as in 3.
pub const ABI_MINOR: u16 = 5;

/// Offset in the region's header of the daemon's clock line (since 1.5):
/// five u64, the clock kind, the anchor's ticks, monotonic and real-time
/// nanoseconds, and ticks per second (docs/FORMAT.md's clock fields),
/// written once with the header. With it a region read from a core file
/// or a debugger converts its own timestamps, with no daemon to ask.
pub const CLOCK_LINE_OFFSET: usize = 256;
/// The first region minor version whose daemon reads event records with
/// activity ids.
pub const MINOR_ACTIVITY_IDS: u16 = 2;
/// The first region minor version whose daemon reads compact event records.
pub const MINOR_COMPACT: u16 = 3;

impl RegionLayout {
    /// Lays out a region for `params`.
    pub fn new(params: RegionParams) -> Result<RegionLayout, LayoutError> {
        if params.ring_count == 0 || params.ring_count > 4096 {
            return Err(LayoutError::Invalid("ring count must be 1 to 4096"));
        }
        let cap = params.ring_capacity;
        if !cap.is_power_of_two() || cap < PAGE as u64 || cap > 1 << 30 {
            return Err(LayoutError::Invalid(
                "ring capacity must be a power of two from 4 KiB to 1 GiB",
            ));
        }
        if params.meta_capacity == 0
            || params.meta_capacity % PAGE as u64 != 0
            || params.meta_capacity > 64 << 20
        {
            return Err(LayoutError::Invalid(
                "metadata capacity must be a page multiple up to 64 MiB",
            ));
        }
        let enable_offset = HEADER_BYTES as u64;
        let lost_offset = enable_offset + ENABLE_TABLE_BYTES as u64;
        let ring_desc_offset = page_up(lost_offset + 8 * ENABLE_SLOTS as u64);
        let meta_offset =
            page_up(ring_desc_offset + RING_DESC_BYTES as u64 * params.ring_count as u64);
        let ring_offset = meta_offset + params.meta_capacity;
        let region_size = ring_offset + cap * params.ring_count as u64;
        Ok(RegionLayout {
            params,
            enable_offset,
            lost_offset,
            ring_desc_offset,
            meta_offset,
            ring_offset,
            region_size,
        })
    }

    /// Checks a header the daemon wrote and returns its layout. Providers
    /// call this before using any offset from the region.
    pub fn from_header(h: &RegionHeader, mapped_len: u64) -> Result<RegionLayout, LayoutError> {
        if h.magic != REGION_MAGIC {
            return Err(LayoutError::BadMagic);
        }
        if h.major != ABI_MAJOR {
            return Err(LayoutError::Version(h.major));
        }
        let layout = RegionLayout::new(RegionParams {
            ring_count: h.ring_count,
            ring_capacity: h.ring_capacity,
            meta_capacity: h.meta_capacity,
        })?;
        let matches = h.header_len as usize == HEADER_BYTES
            && h.enable_offset == layout.enable_offset
            && h.enable_slots as usize == ENABLE_SLOTS
            && h.slot_size as usize == SLOT_BYTES
            && h.lost_offset == layout.lost_offset
            && h.ring_desc_offset == layout.ring_desc_offset
            && h.ring_desc_size as usize == RING_DESC_BYTES
            && h.meta_offset == layout.meta_offset
            && h.ring_offset == layout.ring_offset
            && h.region_size == layout.region_size
            && layout.region_size <= mapped_len;
        if !matches {
            return Err(LayoutError::Invalid(
                "offsets do not match the sizes or the mapping",
            ));
        }
        if h.clock != CLOCK_MONOTONIC && h.clock != CLOCK_TSC {
            return Err(LayoutError::Invalid("unknown clock"));
        }
        Ok(layout)
    }

    /// Offset of enable slot `slot`.
    pub fn enable_slot_offset(&self, slot: usize) -> u64 {
        self.enable_offset + (slot * SLOT_BYTES) as u64
    }

    /// Offset of the lost counter of slot `slot`.
    pub fn lost_counter_offset(&self, slot: usize) -> u64 {
        self.lost_offset + (slot * 8) as u64
    }

    /// Offset of ring descriptor `ring`.
    pub fn ring_desc_at(&self, ring: usize) -> u64 {
        self.ring_desc_offset + (ring * RING_DESC_BYTES) as u64
    }

    /// Offset of ring `ring`'s data.
    pub fn ring_data_at(&self, ring: usize) -> u64 {
        self.ring_offset + ring as u64 * self.params.ring_capacity
    }

    /// A header describing this layout, ready to be written at offset 0.
    pub fn header(&self, clock: u32, pid: u32) -> RegionHeader {
        RegionHeader {
            magic: REGION_MAGIC,
            major: ABI_MAJOR,
            minor: ABI_MINOR,
            header_len: HEADER_BYTES as u32,
            region_size: self.region_size,
            clock,
            pid,
            enable_offset: self.enable_offset,
            enable_slots: ENABLE_SLOTS as u32,
            slot_size: SLOT_BYTES as u32,
            lost_offset: self.lost_offset,
            meta_offset: self.meta_offset,
            meta_capacity: self.params.meta_capacity,
            ring_desc_offset: self.ring_desc_offset,
            ring_count: self.params.ring_count,
            ring_desc_size: RING_DESC_BYTES as u32,
            ring_offset: self.ring_offset,
            ring_capacity: self.params.ring_capacity,
            reserved: [0; 3],
            daemon: DaemonLine {
                drain_sleeping: AtomicU32::new(0),
                enable_version: AtomicU32::new(0),
                reserved: [const { AtomicU32::new(0) }; 14],
            },
            provider: ProviderLine {
                meta_head: AtomicU64::new(0),
                lost_no_ring: AtomicU64::new(0),
                lost_no_metadata: AtomicU64::new(0),
                lost_invalid: AtomicU64::new(0),
                reserved: [const { AtomicU64::new(0) }; 4],
            },
        }
    }
}

/// The five level words of an enable slot for the given session filters.
pub fn level_words<'a>(filters: impl IntoIterator<Item = &'a EnableFilter>) -> [u64; 5] {
    let mut words = [0u64; 5];
    for f in filters {
        for w in words.iter_mut().take(f.level.as_u8() as usize) {
            *w |= f.effective_any();
        }
    }
    words
}

/// The provider-side test on one level word (see [`EnableSlot`]).
///
/// ```
/// use ferret_abi::shm::word_accepts;
///
/// assert!(!word_accepts(0, 0x1), "no session");
/// assert!(word_accepts(0x3, 0x2));
/// assert!(word_accepts(0x3, 0), "keyword 0 is wanted by any session");
/// assert!(!word_accepts(0x3, 0x4));
/// ```
#[inline(always)]
pub const fn word_accepts(word: u64, keywords: u64) -> bool {
    word != 0 && (keywords == 0 || word & keywords != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Level;

    #[test]
    fn default_layout_is_page_aligned_and_valid() {
        let l = RegionLayout::new(RegionParams::default()).unwrap();
        for off in [
            l.enable_offset,
            l.lost_offset,
            l.ring_desc_offset,
            l.meta_offset,
            l.ring_offset,
        ] {
            assert_eq!(off % PAGE as u64, 0);
        }
        let h = l.header(CLOCK_TSC, 42);
        assert_eq!(RegionLayout::from_header(&h, l.region_size), Ok(l));
        assert!(RegionLayout::from_header(&h, l.region_size - 1).is_err());
        let mut bad = l.header(CLOCK_TSC, 42);
        bad.ring_offset += 8;
        assert!(RegionLayout::from_header(&bad, l.region_size).is_err());
    }

    /// Implemented only by atomics (and arrays of them): a field of this
    /// trait may change under a Rust reference without breaking its rules.
    trait Atomic {}
    impl Atomic for AtomicU32 {}
    impl Atomic for AtomicU64 {}
    impl<T: Atomic, const N: usize> Atomic for [T; N] {}

    fn atomic_bytes<T: Atomic>(_: &T) -> usize {
        core::mem::size_of::<T>()
    }

    /// The bytes of `$v` that its fields, each required to be atomic, cover.
    macro_rules! atomic_fields {
        ($v:expr, $($f:ident),+) => { 0 $(+ atomic_bytes(&$v.$f))+ };
    }

    #[test]
    fn every_byte_the_daemon_and_providers_reference_is_an_atomic() {
        // Both processes hold Rust references to these types in shared
        // memory, which the other process may write anywhere: that is sound
        // only if every byte, padding included, is inside an atomic. The
        // field list fails to compile if a field is not atomic, and the sum
        // falls short of the size if padding is left implicit.
        let h = RegionLayout::new(RegionParams::default())
            .unwrap()
            .header(CLOCK_TSC, 1);
        assert_eq!(
            atomic_fields!(h.daemon, drain_sleeping, enable_version, reserved),
            core::mem::size_of::<DaemonLine>()
        );
        assert_eq!(
            atomic_fields!(
                h.provider,
                meta_head,
                lost_no_ring,
                lost_no_metadata,
                lost_invalid,
                reserved
            ),
            core::mem::size_of::<ProviderLine>()
        );
        // SAFETY: all-zero bytes are valid atomics.
        let slot: EnableSlot = unsafe { core::mem::zeroed() };
        assert_eq!(
            atomic_fields!(slot, levels, no_loss_wait_us, reserved),
            SLOT_BYTES
        );
        // SAFETY: as above.
        let desc: RingDesc = unsafe { core::mem::zeroed() };
        assert_eq!(
            atomic_fields!(
                desc, head, _p0, tail, tail_ticks, keep_from, keep_ticks, keep_tid, _p1, state,
                tid, _p2
            ),
            RING_DESC_BYTES
        );
    }

    #[test]
    fn a_span_writes_inside_and_refuses_past_its_end() {
        let mut buf = [0xA5u8; 12];
        {
            // A span over the middle eight bytes: the guards either side
            // show that no write lands outside it.
            let mut span = Span::new(&mut buf[2..10]);
            assert_eq!(span.len(), 8);
            span.put_u64(0, 0x0807_0605_0403_0201);
            span.put_u8(7, 0x10);
            span.or_u8(7, 0x01);
            let mut rest = span.rest(6);
            assert_eq!(rest.len(), 2);
            rest.put_u16(0, 0xBBAA);
            assert!(span.rest(8).is_empty());
        }
        assert_eq!(buf, [0xA5, 0xA5, 1, 2, 3, 4, 5, 6, 0xAA, 0xBB, 0xA5, 0xA5]);
        let refused = |f: &dyn Fn(&mut Span<'_>)| {
            let mut buf = [0u8; 8];
            let mut span = Span::new(&mut buf[..4]);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut span)));
            assert!(r.is_err(), "a write past the end must panic");
            assert_eq!(buf, [0; 8], "and write nothing");
        };
        refused(&|s| s.put(1, &[1, 2, 3, 4]));
        refused(&|s| s.put(usize::MAX, &[1]));
        refused(&|s| s.put_u32(1, 7));
        refused(&|s| s.put_u64(0, 7));
        refused(&|s| s.put_u8(4, 7));
        refused(&|s| s.or_u8(4, 7));
        refused(&|s| {
            s.rest(5);
        });
        refused(&|s| s.rest(2).put_u32(0, 7));
        // The encoders check a whole field or header once and write its
        // parts unchecked: one a byte too long for its span is refused
        // before any of it is written.
        refused(&|s| {
            crate::Value::Str("abc").encode_at(s, 0);
        });
        refused(&|s| {
            crate::Value::U32(7).encode_at(s, 1);
        });
        refused(&|s| {
            crate::Value::Bytes(&[1; 12]).encode_at(s, 0);
        });
        refused(&|s| {
            crate::record::encode_event_header_at(s, 9, 1, crate::record::Ticks::Delta(0));
        });
        refused(&|s| {
            crate::record::encode_compact_header_at(&mut s.rest(1), 4, 1, 5);
        });
        refused(&|s| {
            crate::record::encode_compact_header_at(s, 6, 1, 20_000);
        });
        // Empty writes at the end are in bounds.
        let mut buf = [0u8; 4];
        let mut span = Span::new(&mut buf);
        span.put(4, &[]);
        span.put_array::<0>(4, []);
    }

    #[test]
    fn level_words_union_sessions() {
        let a = EnableFilter {
            level: Level::Warning,
            match_any: 0b01,
            match_all: 0,
        };
        let b = EnableFilter {
            level: Level::Error,
            match_any: 0,
            match_all: 0,
        };
        let w = level_words([&a, &b]);
        assert_eq!(w, [u64::MAX, u64::MAX, 0b01, 0, 0]);
        assert!(word_accepts(w[2], 0b01));
        assert!(!word_accepts(w[2], 0b10));
        assert!(word_accepts(w[2], 0));
        assert!(!word_accepts(w[3], 0));
    }
}
