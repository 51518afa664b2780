//! The provider's view of the shared-memory region the daemon granted.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ferret_abi::record;
use ferret_abi::shm::{
    ENABLE_TABLE_BYTES, MINOR_ACTIVITY_IDS, RING_FREE, RING_OWNED, RegionHeader, RegionLayout,
    RingDesc,
};
use rustix::mm::{MapFlags, ProtFlags};

use crate::Described;

/// A mapped region. Threads hold it through an `Arc` while they use one of
/// its rings, so it stays mapped until the last writer lets go, even after
/// the daemon has gone away.
#[derive(Debug)]
pub(crate) struct Region {
    base: NonNull<u8>,
    len: usize,
    pub(crate) layout: RegionLayout,
    pub(crate) clock: u32,
    /// True if the daemon reads event records with activity ids.
    pub(crate) activity_ids: bool,
    eventfd: Option<OwnedFd>,
    meta: Mutex<MetaState>,
}

#[derive(Debug, Default)]
struct MetaState {
    /// Bytes this process has written to the metadata area.
    tail: u64,
    /// Event types registered in this region, by the declaration's key
    /// ([`Described::key`]) and provider slot.
    types: HashMap<(usize, u64, u32), u16>,
}

// SAFETY: the mapping is shared memory accessed only through atomics (ring
// heads, counters) or by the one thread that owns a ring; `base` is never
// reassigned after construction.
unsafe impl Send for Region {}
// SAFETY: as above; the mutable metadata state is behind a Mutex.
unsafe impl Sync for Region {}

/// Why a region could not be used.
#[derive(Debug)]
pub(crate) struct AttachError(pub(crate) String);

impl Region {
    /// Maps the memfd and checks its header.
    pub(crate) fn map(
        memfd: &OwnedFd,
        size: u64,
        eventfd: Option<OwnedFd>,
    ) -> Result<Region, AttachError> {
        let stat = rustix::fs::fstat(memfd).map_err(|e| AttachError(format!("fstat: {e}")))?;
        if (stat.st_size as u64) < size || size < ferret_abi::shm::HEADER_BYTES as u64 {
            return Err(AttachError("region is smaller than announced".into()));
        }
        let len = size as usize;
        // SAFETY: a fresh shared mapping of a memfd the daemon sealed against
        // shrinking, so every page of it stays backed for the mapping's life.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                memfd,
                0,
            )
        }
        .map_err(|e| AttachError(format!("mmap: {e}")))?;
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| AttachError("null map".into()))?;
        // SAFETY: the mapping is at least HEADER_BYTES long (checked above)
        // and page-aligned; RegionHeader's fields are integers and atomics,
        // valid for any bit pattern.
        let header = unsafe { &*base.as_ptr().cast::<RegionHeader>() };
        let checked = RegionLayout::from_header(header, size)
            .map_err(|e| AttachError(format!("daemon sent a bad region: {e}")));
        let layout = match checked {
            Ok(layout) => layout,
            Err(e) => {
                // SAFETY: unmapping the mapping made just above, which nothing else references.
                let _ = unsafe { rustix::mm::munmap(ptr, len) };
                return Err(e);
            }
        };
        Ok(Region {
            base,
            len,
            layout,
            clock: header.clock,
            activity_ids: header.minor >= MINOR_ACTIVITY_IDS,
            eventfd,
            meta: Mutex::new(MetaState::default()),
        })
    }

    pub(crate) fn header(&self) -> &RegionHeader {
        // SAFETY: the mapping is at least HEADER_BYTES long (checked in
        // `map`), page-aligned, and RegionHeader's fields are integers and
        // atomics valid for any bit pattern.
        unsafe { &*self.base.as_ptr().cast::<RegionHeader>() }
    }

    fn at(&self, offset: u64) -> *mut u8 {
        debug_assert!((offset as usize) < self.len);
        // SAFETY: callers pass offsets from the validated layout, which lie
        // inside the mapping.
        unsafe { self.base.as_ptr().add(offset as usize) }
    }

    /// Maps the enable table over the process's fixed table address.
    pub(crate) fn map_enable_table(
        &self,
        memfd: &OwnedFd,
        table: *mut u8,
    ) -> Result<(), AttachError> {
        // SAFETY: `table` is the start of the ENABLE_TABLE_BYTES reservation
        // made at start-up and never unmapped; MAP_FIXED replaces exactly
        // that range. Readers of the table only use atomic loads, which see
        // either the old or the new page.
        unsafe {
            rustix::mm::mmap(
                table.cast(),
                ENABLE_TABLE_BYTES,
                ProtFlags::READ,
                MapFlags::SHARED | MapFlags::FIXED,
                memfd.as_fd(),
                self.layout.enable_offset,
            )
        }
        .map(|_| ())
        .map_err(|e| AttachError(format!("mmap enable table: {e}")))
    }

    /// The lost counter of provider slot `slot`.
    pub(crate) fn lost_counter(&self, slot: u32) -> &AtomicU64 {
        // SAFETY: slot < ENABLE_SLOTS (providers get no slot beyond that), the
        // offset is 8-aligned inside the mapping, and AtomicU64 is valid for
        // any bits.
        unsafe {
            &*self
                .at(self.layout.lost_counter_offset(slot as usize))
                .cast::<AtomicU64>()
        }
    }

    /// Claims a free ring for the calling thread.
    pub(crate) fn acquire_ring(&self, tid: u32) -> Option<RingHandle> {
        for i in 0..self.layout.params.ring_count as usize {
            let desc = self.ring_desc(i);
            if desc.state.load(Ordering::Relaxed) != RING_FREE {
                continue;
            }
            if desc
                .state
                .compare_exchange(RING_FREE, RING_OWNED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                desc.tid.store(tid, Ordering::Relaxed);
                let head = desc.head.load(Ordering::Relaxed);
                let tail = desc.tail.load(Ordering::Acquire);
                return Some(RingHandle {
                    desc: NonNull::from(desc),
                    data: NonNull::new(self.at(self.layout.ring_data_at(i)))?,
                    capacity: self.layout.params.ring_capacity,
                    head,
                    cached_tail: tail,
                    last_ticks: 0,
                    has_last: false,
                });
            }
        }
        None
    }

    fn ring_desc(&self, i: usize) -> &RingDesc {
        // SAFETY: i < ring_count, so the descriptor lies inside the validated
        // layout; RingDesc is 64-aligned like its offset, and all of its
        // fields are atomics or padding.
        unsafe { &*self.at(self.layout.ring_desc_at(i)).cast::<RingDesc>() }
    }

    /// Signals the drain thread if it sleeps.
    pub(crate) fn wake_drain(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.header().daemon.drain_sleeping.load(Ordering::Relaxed) != 0 {
            if let Some(fd) = &self.eventfd {
                let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
            }
        }
    }

    /// Registers an event type in the metadata area, or returns the type id
    /// it already has. `None` if the metadata area is full.
    pub(crate) fn register_type<D: Described + ?Sized>(&self, desc: &D, slot: u32) -> Option<u16> {
        let mut meta = self.meta.lock().unwrap_or_else(|e| e.into_inner());
        let (address, signature) = desc.key();
        let key = (address, signature, slot);
        if let Some(&t) = meta.types.get(&key) {
            return Some(t);
        }
        if meta.types.len() >= record::MAX_TYPES {
            return None;
        }
        let type_id = meta.types.len() as u16;
        let record = record::EventTypeMeta {
            type_id,
            ..desc.meta(slot)
        };
        let mut bytes = Vec::new();
        if record::encode_event_type(&record, &mut bytes).is_err() {
            return None;
        }
        let len = bytes.len() as u64;
        if meta.tail + len > self.layout.params.meta_capacity {
            return None;
        }
        let dst = self.at(self.layout.meta_offset + meta.tail);
        // SAFETY: [tail, tail + len) lies inside the metadata area (checked
        // above) and only this process writes it, under the `meta` lock; the
        // daemon reads only below meta_head, which moves after the copy.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
        meta.tail += len;
        self.header()
            .provider
            .meta_head
            .store(meta.tail, Ordering::Release);
        meta.types.insert(key, type_id);
        Some(type_id)
    }

    pub(crate) fn count_no_ring(&self) {
        self.header()
            .provider
            .lost_no_ring
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_invalid(&self) {
        self.header()
            .provider
            .lost_invalid
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_no_metadata(&self) {
        self.header()
            .provider
            .lost_no_metadata
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `map` with this base and length, and
        // the last Arc is going away, so no thread references it.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// A thread's claim on one ring.
#[derive(Debug)]
pub(crate) struct RingHandle {
    pub(crate) desc: NonNull<RingDesc>,
    pub(crate) data: NonNull<u8>,
    pub(crate) capacity: u64,
    /// The next write position (bytes ever written); published to `desc.head` on commit.
    pub(crate) head: u64,
    /// The consumer position last read from `desc.tail`.
    pub(crate) cached_tail: u64,
    /// The time of the last record written, which the next one's delta is from.
    pub(crate) last_ticks: u64,
    /// False until this thread writes its first record to the ring.
    pub(crate) has_last: bool,
}

impl RingHandle {
    pub(crate) fn desc(&self) -> &RingDesc {
        // SAFETY: the descriptor lives in a region the owning thread keeps
        // mapped (it holds the Region's Arc next to this handle).
        unsafe { self.desc.as_ref() }
    }
}

/// The ring state value for a thread that has exited.
pub(crate) fn release(ring: &RingHandle) {
    ring.desc()
        .state
        .store(ferret_abi::shm::RING_RELEASED, Ordering::Release);
}
