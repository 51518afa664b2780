//! The daemon's side of a provider process's shared-memory region: creating
//! the sealed memfd, writing the enable table, and reading what the provider
//! wrote without trusting any of it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use ferret_abi::shm::{
    DaemonLine, ProviderLine, RegionHeader, RegionLayout, RegionParams, RingDesc,
};
use ferret_session::RegionId;
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

/// One provider process's region, mapped in the daemon.
#[derive(Debug)]
pub(crate) struct ShmRegion {
    pub(crate) id: RegionId,
    pub(crate) pid: u32,
    base: NonNull<u8>,
    len: usize,
    /// The daemon's own copy of the layout; the header in shared memory is
    /// never read back, since the provider could have changed it.
    pub(crate) layout: RegionLayout,
    memfd: OwnedFd,
    /// Producers write to it to wake a sleeping drain thread.
    pub(crate) eventfd: OwnedFd,
}

// SAFETY: the mapping is only accessed through atomics or copied out byte
// by byte (no Rust reference covers bytes that are not atomics); the
// pointer itself never changes after creation.
unsafe impl Send for ShmRegion {}
// SAFETY: as above.
unsafe impl Sync for ShmRegion {}

impl ShmRegion {
    /// Creates, seals, maps and initialises a region for process `pid`.
    pub(crate) fn create(
        id: RegionId,
        pid: u32,
        params: RegionParams,
        clock: &ferret_format::ClockInfo,
    ) -> io::Result<ShmRegion> {
        let layout = RegionLayout::new(params)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let memfd = rustix::fs::memfd_create(
            "ferret-region",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        rustix::fs::ftruncate(&memfd, layout.region_size)?;
        // Sealed against resizing so the provider cannot shrink the file
        // under the daemon's mapping and make it fault.
        rustix::fs::fcntl_add_seals(
            &memfd,
            SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
        )?;
        let len = layout.region_size as usize;
        let base = map_sealed(&memfd, len)?;
        // SAFETY: the mapping is page-aligned and larger than the header; no
        // provider has the memfd yet, so nothing reads concurrently.
        unsafe {
            base.as_ptr()
                .cast::<RegionHeader>()
                .write(layout.header(clock.kind, pid));
            base.as_ptr()
                .add(ferret_abi::shm::CLOCK_LINE_OFFSET)
                .cast::<[u64; 5]>()
                .write_unaligned(crate::keeper::clock_words(clock));
        };
        let eventfd = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        Ok(ShmRegion {
            id,
            pid,
            base,
            len,
            layout,
            memfd,
            eventfd,
        })
    }

    /// Maps, read and write, the region of a daemon that died, whose memfd
    /// a keeper held (see `keeper.rs`). `layout` is the one that daemon
    /// made, as the keeper recorded it; the region is checked to be at
    /// least that large, and its memfd was sealed against shrinking, so
    /// reading it cannot fault.
    pub(crate) fn adopt(
        id: RegionId,
        pid: u32,
        layout: RegionLayout,
        memfd: OwnedFd,
    ) -> io::Result<ShmRegion> {
        let size = rustix::fs::fstat(&memfd)?.st_size as u64;
        let seals = rustix::fs::fcntl_get_seals(&memfd)?;
        if size < layout.region_size || !seals.contains(SealFlags::SHRINK) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the kept region is smaller than its layout or not sealed",
            ));
        }
        let len = layout.region_size as usize;
        let base = map_sealed(&memfd, len)?;
        let eventfd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?;
        Ok(ShmRegion {
            id,
            pid,
            base,
            len,
            layout,
            memfd,
            eventfd,
        })
    }

    /// The memfd to send to the provider.
    pub(crate) fn memfd(&self) -> BorrowedFd<'_> {
        self.memfd.as_fd()
    }

    fn at(&self, offset: u64) -> *mut u8 {
        debug_assert!((offset as usize) < self.len);
        // SAFETY: offsets come from the daemon's own layout, inside the mapping.
        unsafe { self.base.as_ptr().add(offset as usize) }
    }

    /// The two live lines of the region's header. Not a `&RegionHeader`:
    /// the header's other fields are plain integers the provider could
    /// overwrite, and a Rust reference would promise that they do not
    /// change. The lines are atomics only, so references to them are sound.
    pub(crate) fn header(&self) -> HeaderLines<'_> {
        let h = self.base.as_ptr().cast::<RegionHeader>();
        // SAFETY: the header is at offset 0 of a mapping larger than it, so
        // both field pointers are in bounds and aligned (RegionHeader's
        // layout is fixed by repr(C) and asserted in ferret-abi); the lines
        // are atomics only, valid for any bits a provider writes, and live
        // as long as the mapping, which outlives `&self`.
        unsafe {
            HeaderLines {
                daemon: &*std::ptr::addr_of!((*h).daemon),
                provider: &*std::ptr::addr_of!((*h).provider),
            }
        }
    }

    /// Publishes the enable words of provider slot `slot`, and how long its
    /// writers may wait for ring space (microseconds, 0: not at all).
    pub(crate) fn set_enable(&self, slot: u32, words: [u64; 5], no_loss_wait_us: u64) {
        let p = self.at(self.layout.enable_slot_offset(slot as usize));
        // SAFETY: slot < ENABLE_SLOTS (checked by the registry), so the slot
        // lies inside the enable table; EnableSlot is atomics only.
        let slot = unsafe { &*p.cast::<ferret_abi::shm::EnableSlot>() };
        // The wait goes first: a writer that sees the new words may already
        // find its ring full.
        slot.no_loss_wait_us
            .store(no_loss_wait_us, Ordering::Release);
        let mut changed = false;
        for (w, v) in slot.levels.iter().zip(words) {
            // The daemon is the only writer of the table, so a swap tells
            // whether this store changed what providers see.
            changed |= w.swap(v, Ordering::Release) != v;
        }
        if changed {
            // Providers that watch for enable changes (the tracing and log
            // bridges) sleep on this word; wake them all. The wake is
            // harmless if nobody waits.
            let version = &self.header().daemon.enable_version;
            version.fetch_add(1, Ordering::Release);
            let _ = rustix::thread::futex::wake(
                version,
                rustix::thread::futex::Flags::empty(),
                i32::MAX as u32,
            );
        }
    }

    /// The provider's lost counter for `slot`.
    pub(crate) fn lost_counter(&self, slot: u32) -> u64 {
        let p = self.at(self.layout.lost_counter_offset(slot as usize));
        // SAFETY: inside the lost-counter array, 8-aligned, any bits valid.
        unsafe { &*p.cast::<AtomicU64>() }.load(Ordering::Relaxed)
    }

    /// Adds `n` to provider slot `slot`'s lost counter, as a provider that
    /// dropped events does.
    #[cfg(test)]
    pub(crate) fn add_lost(&self, slot: u32, n: u64) {
        let p = self.at(self.layout.lost_counter_offset(slot as usize));
        // SAFETY: inside the lost-counter array, 8-aligned, any bits valid.
        unsafe { &*p.cast::<AtomicU64>() }.fetch_add(n, Ordering::Relaxed);
    }

    /// Copies `bytes` into the region at `offset`, as a provider writes its
    /// rings and metadata.
    #[cfg(test)]
    pub(crate) fn write_at(&self, offset: u64, bytes: &[u8]) {
        assert!(offset as usize + bytes.len() <= self.len);
        // SAFETY: inside the mapping (checked above); tests write only what
        // the drain reads through `SharedBytes`, which tolerates any bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at(offset), bytes.len());
        }
    }

    /// Ring descriptor `i`.
    pub(crate) fn ring(&self, i: usize) -> &RingDesc {
        // SAFETY: i < ring_count from the daemon's layout; RingDesc is atomics
        // only, its padding included, so the provider's writes to any of its
        // bytes are writes to atomics; 64-aligned like its offset.
        unsafe { &*self.at(self.layout.ring_desc_at(i)).cast::<RingDesc>() }
    }

    /// The bytes of ring `i`, to be read through [`SharedBytes`].
    pub(crate) fn ring_bytes(&self, i: usize) -> SharedBytes<'_> {
        SharedBytes {
            ptr: self.at(self.layout.ring_data_at(i)),
            len: self.layout.params.ring_capacity as usize,
            _region: std::marker::PhantomData,
        }
    }

    /// The metadata area.
    pub(crate) fn meta_bytes(&self) -> SharedBytes<'_> {
        SharedBytes {
            ptr: self.at(self.layout.meta_offset),
            len: self.layout.params.meta_capacity as usize,
            _region: std::marker::PhantomData,
        }
    }
}

/// The atomic lines of a region's header, which is all the daemon reads of
/// it after creating it (its own `layout` holds the rest).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderLines<'a> {
    /// Written by the daemon.
    pub(crate) daemon: &'a DaemonLine,
    /// Written by the provider.
    pub(crate) provider: &'a ProviderLine,
}

/// Maps the first `len` bytes of `memfd` shared and writable. The caller
/// has sealed the memfd against shrinking (or checked that it is) and made
/// sure it is at least `len` bytes long, so no access to the mapping can
/// fault.
fn map_sealed(memfd: &OwnedFd, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a new shared mapping of a memfd at least `len` bytes long
    // that cannot shrink; nothing else refers to this address range yet.
    let ptr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            memfd,
            0,
        )?
    };
    NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))
}

impl Drop for ShmRegion {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `create`; the last reference is
        // going away.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// Bytes in shared memory that another process may change at any moment.
/// They are only ever copied out; the copy is what gets checked and parsed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SharedBytes<'a> {
    ptr: *mut u8,
    len: usize,
    _region: std::marker::PhantomData<&'a ShmRegion>,
}

/// Something the ring scanner can copy bytes out of.
pub(crate) trait ReadBytes {
    /// Bytes available.
    fn len(&self) -> usize;
    /// Copies `dst.len()` bytes from `offset`. Callers keep the range inside `len()`.
    fn copy_to(&self, offset: usize, dst: &mut [u8]);

    /// Copies the 16 bytes at `offset`, or as many as remain (the rest zero).
    #[inline]
    fn read16(&self, offset: usize) -> [u8; 16] {
        let mut out = [0u8; 16];
        let n = self.len().saturating_sub(offset).min(16);
        self.copy_to(offset, &mut out[..n]);
        out
    }
}

impl ReadBytes for SharedBytes<'_> {
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn read16(&self, offset: usize) -> [u8; 16] {
        if offset + 16 <= self.len {
            // SAFETY: the 16 bytes lie inside the mapping; an unaligned read
            // of plain bytes, which may be changing under a misbehaving
            // provider (the caller checks what it gets).
            unsafe { std::ptr::read_unaligned(self.ptr.add(offset).cast::<[u8; 16]>()) }
        } else {
            let mut out = [0u8; 16];
            self.copy_to(offset, &mut out[..self.len.saturating_sub(offset)]);
            out
        }
    }

    #[inline]
    fn copy_to(&self, offset: usize, dst: &mut [u8]) {
        assert!(offset <= self.len && dst.len() <= self.len - offset);
        // SAFETY: the range is inside the mapping (asserted); the source may
        // be written concurrently by a misbehaving provider, in which case
        // the copy holds arbitrary bytes, which every reader of it handles.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(offset), dst.as_mut_ptr(), dst.len()) }
    }
}

impl ReadBytes for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn copy_to(&self, offset: usize, dst: &mut [u8]) {
        dst.copy_from_slice(&self[offset..offset + dst.len()]);
    }
}
