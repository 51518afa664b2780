//! The provider's view of the shared-memory region the daemon granted.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use ferret_abi::record::{self, HEADER_LEN, kind};
use ferret_abi::shm::{
    ENABLE_TABLE_BYTES, MINOR_ACTIVITY_IDS, MINOR_COMPACT, RING_FREE, RING_OWNED, RegionHeader,
    RegionLayout, RingDesc,
};
use rustix::fs::SealFlags;
use rustix::mm::{MapFlags, ProtFlags};

use crate::Described;
use crate::link::FORK_EPOCH;

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
    /// True if the daemon reads compact event records.
    pub(crate) compact: bool,
    eventfd: Option<OwnedFd>,
    meta: Mutex<MetaState>,
    /// Rings whose threads have exited, still owned by this process, ready
    /// for the next thread that writes. Handing a ring over inside the
    /// process does not wait for the daemon to drain and free it, so threads
    /// that come and go faster than the drain runs keep finding rings; the
    /// THREAD record the next owner writes first tells the daemon whose
    /// records follow.
    spare: Mutex<Vec<u32>>,
    /// `spare.len()`, readable without the lock.
    spare_count: AtomicUsize,
    /// [`FORK_EPOCH`] when the region was mapped: a forked child sees a
    /// different value and leaves the region alone.
    fork_epoch: u64,
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
    /// Where the region is mapped and its length, for debuggers.
    pub(crate) fn mapping(&self) -> (usize, usize) {
        (self.base.as_ptr() as usize, self.len)
    }

    /// Maps the memfd and checks its header.
    pub(crate) fn map(
        memfd: &OwnedFd,
        size: u64,
        eventfd: Option<OwnedFd>,
    ) -> Result<Region, AttachError> {
        // A region that could shrink after it is mapped would kill the host
        // with SIGBUS on its next event: map only a memfd sealed as the
        // daemon seals it, against shrinking, growing and further seals.
        let required = SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL;
        match rustix::fs::fcntl_get_seals(memfd) {
            Ok(seals) if seals.contains(required) => {}
            Ok(seals) => {
                return Err(AttachError(format!(
                    "the daemon sent a region not sealed against shrinking and growing (seals {:#x}); refusing to map it",
                    seals.bits()
                )));
            }
            Err(e) => {
                return Err(AttachError(format!(
                    "the daemon sent a region whose seals cannot be read ({e}); refusing to map it"
                )));
            }
        }
        let stat = rustix::fs::fstat(memfd).map_err(|e| AttachError(format!("fstat: {e}")))?;
        if (stat.st_size as u64) < size || size < ferret_abi::shm::HEADER_BYTES as u64 {
            return Err(AttachError("region is smaller than announced".into()));
        }
        let len = size as usize;
        // SAFETY: a fresh shared mapping of a memfd sealed against shrinking
        // (checked above), so every page of it stays backed for the
        // mapping's life.
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
        // A forked child must never write into this process's rings: with
        // MADV_DONTFORK it does not even inherit them. (The link's fork
        // handler makes the child forget the region; this makes a mistake
        // fault in the child instead of corrupting the parent's events.)
        // SAFETY: advice on the mapping just made; it changes no contents.
        let _ = unsafe { rustix::mm::madvise(ptr, len, rustix::mm::Advice::LinuxDontFork) };
        // The daemon, another process, can write the header at any time, so
        // no reference to it is made: its fields are read once, by a volatile
        // copy, and the layout checked and used is that copy's, which nothing
        // can change between the check and the use.
        // SAFETY: the mapping is at least HEADER_BYTES long (checked above)
        // and page-aligned; RegionHeader's fields are integers and atomics,
        // valid for any bit pattern.
        let header = unsafe { std::ptr::read_volatile(base.as_ptr().cast::<RegionHeader>()) };
        let checked = RegionLayout::from_header(&header, size)
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
            compact: header.minor >= MINOR_COMPACT,
            eventfd,
            meta: Mutex::new(MetaState::default()),
            spare: Mutex::new(Vec::new()),
            spare_count: AtomicUsize::new(0),
            fork_epoch: FORK_EPOCH.load(Ordering::Relaxed),
        })
    }

    /// The header, by raw pointer: the daemon writes parts of it, so only
    /// its atomic words are ever referenced (see the accessors below).
    fn header(&self) -> *const RegionHeader {
        self.base.as_ptr().cast::<RegionHeader>()
    }

    /// 1 while the daemon's drain thread sleeps.
    fn drain_sleeping(&self) -> &AtomicU32 {
        // SAFETY: the header lies inside the mapping (checked in `map`) and
        // stays mapped while `self` lives; the field is an atomic, valid for
        // any bits, and only the atomic itself is referenced.
        unsafe { &*std::ptr::addr_of!((*self.header()).daemon.drain_sleeping) }
    }

    /// The word the daemon bumps each time it changes this region's enable
    /// table.
    pub(crate) fn enable_version(&self) -> &AtomicU32 {
        // SAFETY: as in `drain_sleeping`.
        unsafe { &*std::ptr::addr_of!((*self.header()).daemon.enable_version) }
    }

    /// The bytes this process has committed to the metadata area.
    fn meta_head(&self) -> &AtomicU64 {
        // SAFETY: as in `drain_sleeping`.
        unsafe { &*std::ptr::addr_of!((*self.header()).provider.meta_head) }
    }

    /// Events dropped for want of a free ring.
    pub(crate) fn lost_no_ring(&self) -> &AtomicU64 {
        // SAFETY: as in `drain_sleeping`.
        unsafe { &*std::ptr::addr_of!((*self.header()).provider.lost_no_ring) }
    }

    /// Events dropped because their type did not fit the metadata area.
    pub(crate) fn lost_no_metadata(&self) -> &AtomicU64 {
        // SAFETY: as in `drain_sleeping`.
        unsafe { &*std::ptr::addr_of!((*self.header()).provider.lost_no_metadata) }
    }

    /// Events dropped as too large or not matching their declared fields.
    pub(crate) fn lost_invalid(&self) -> &AtomicU64 {
        // SAFETY: as in `drain_sleeping`.
        unsafe { &*std::ptr::addr_of!((*self.header()).provider.lost_invalid) }
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

    /// Claims a ring for the calling thread: one an exited thread of this
    /// process left, else a free one. The ring's stream starts with a
    /// THREAD record naming the caller, so that the daemon attributes what
    /// follows to it.
    pub(crate) fn acquire_ring(&self, tid: u32) -> Option<RingHandle> {
        if let Some(ring) = self.acquire_spare(tid) {
            return Some(ring);
        }
        for i in 0..self.layout.params.ring_count as usize {
            let desc = self.ring_desc(i);
            if desc.state().load(Ordering::Relaxed) != RING_FREE {
                continue;
            }
            if desc
                .state()
                .compare_exchange(RING_FREE, RING_OWNED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                let mut ring = self.handle(i)?;
                if ring.push_thread(tid) {
                    return Some(ring);
                }
                // The daemon freed a ring it had not drained (it never
                // should): keep it for later rather than lose track of it.
                self.give_back(ring);
            }
        }
        None
    }

    /// Takes over a ring an exited thread left, if one has room for the
    /// THREAD record.
    pub(crate) fn acquire_spare(&self, tid: u32) -> Option<RingHandle> {
        if self.spare_count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        for k in (0..spare.len()).rev() {
            let Some(mut ring) = self.handle(spare[k] as usize) else {
                continue;
            };
            if ring.push_thread(tid) {
                spare.swap_remove(k);
                self.spare_count.store(spare.len(), Ordering::Relaxed);
                return Some(ring);
            }
        }
        None
    }

    /// True if this region was mapped by an ancestor of this process (it
    /// forked since): the region is not this process's to use.
    fn inherited(&self) -> bool {
        self.fork_epoch != FORK_EPOCH.load(Ordering::Relaxed)
    }

    /// Keeps the ring of an exiting thread for the next thread that writes.
    /// Its records stay where they are; the daemon drains them as usual.
    /// In a forked child the ring is the parent's, still in use there: the
    /// child just forgets it (and never touches the lock, which a thread
    /// that does not exist in the child may have held at the fork).
    pub(crate) fn give_back(&self, ring: RingHandle) {
        if self.inherited() {
            return;
        }
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        spare.push(ring.index);
        self.spare_count.store(spare.len(), Ordering::Relaxed);
    }

    /// True if an exited thread left a ring to take over.
    #[inline]
    pub(crate) fn has_spare(&self) -> bool {
        self.spare_count.load(Ordering::Relaxed) > 0
    }

    /// A handle on ring `i`, which this process owns, positioned at its head.
    fn handle(&self, i: usize) -> Option<RingHandle> {
        let desc = self.ring_desc(i);
        // The head is this process's own line: the last owner stored it
        // before handing the ring over (under the spare lock), or the
        // daemon's drain left it where the last owner stopped.
        let head = desc.head().load(Ordering::Acquire);
        let tail = desc.tail().load(Ordering::Acquire);
        Some(RingHandle {
            desc,
            data: NonNull::new(self.at(self.layout.ring_data_at(i)))?,
            index: i as u32,
            capacity: self.layout.params.ring_capacity,
            head,
            cached_tail: tail,
            check_at: head,
            // Half the clock's range away from now: the first record's delta
            // cannot fit 32 bits, so it gets the absolute time.
            last_ticks: crate::clock::now(self.clock).wrapping_add(1 << 63),
            stalled_at: None,
        })
    }

    fn ring_desc(&self, i: usize) -> DescPtr {
        let desc = self.at(self.layout.ring_desc_at(i)).cast::<RingDesc>();
        // SAFETY: i < ring_count, so the descriptor lies inside the
        // validated layout, 64-aligned like its offset; an address inside
        // the mapping is not null.
        DescPtr(unsafe { NonNull::new_unchecked(desc) })
    }

    /// Signals the drain thread if it sleeps.
    pub(crate) fn wake_drain(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.drain_sleeping().load(Ordering::Relaxed) != 0 {
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
        self.meta_head().store(meta.tail, Ordering::Release);
        meta.types.insert(key, type_id);
        Some(type_id)
    }

    pub(crate) fn count_no_ring(&self) {
        self.lost_no_ring().fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_invalid(&self) {
        self.lost_invalid().fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_no_metadata(&self) {
        self.lost_no_metadata().fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // A forked child did not inherit the mapping (MADV_DONTFORK), and
        // the range may hold one of its own mappings by now.
        if self.inherited() {
            return;
        }
        // SAFETY: the mapping was made in `map` with this base and length, and
        // the last Arc is going away, so no thread references it.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// A ring descriptor in the region, by raw pointer. The daemon writes its
/// consumer line; each word is reached as the atomic it is, which costs the
/// same as a field of a reference, so the provider needs no reference to
/// the whole descriptor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DescPtr(NonNull<RingDesc>);

impl DescPtr {
    /// The producer's commit position.
    #[inline]
    pub(crate) fn head(&self) -> &AtomicU64 {
        // SAFETY: the descriptor lies inside a region its holder keeps
        // mapped (a RingHandle sits next to its Region's Arc); the field is
        // an atomic, valid for any bits, and only it is referenced.
        unsafe { &*std::ptr::addr_of!((*self.0.as_ptr()).head) }
    }

    /// The daemon's consume position.
    #[inline]
    pub(crate) fn tail(&self) -> &AtomicU64 {
        // SAFETY: as in `head`.
        unsafe { &*std::ptr::addr_of!((*self.0.as_ptr()).tail) }
    }

    /// Free, owned or released.
    #[inline]
    fn state(&self) -> &AtomicU32 {
        // SAFETY: as in `head`.
        unsafe { &*std::ptr::addr_of!((*self.0.as_ptr()).state) }
    }

    /// The owning thread's id, for display.
    #[inline]
    fn tid(&self) -> &AtomicU32 {
        // SAFETY: as in `head`.
        unsafe { &*std::ptr::addr_of!((*self.0.as_ptr()).tid) }
    }
}

/// A thread's claim on one ring.
#[derive(Debug)]
pub(crate) struct RingHandle {
    pub(crate) desc: DescPtr,
    pub(crate) data: NonNull<u8>,
    /// The ring's number in the region.
    pub(crate) index: u32,
    pub(crate) capacity: u64,
    /// The next write position (bytes ever written); published to `desc.head` on commit.
    pub(crate) head: u64,
    /// The consumer position last read from `desc.tail`.
    pub(crate) cached_tail: u64,
    /// The head at which the writer next looks whether the drain needs
    /// waking.
    pub(crate) check_at: u64,
    /// The time of the last record written, which the next one's delta is
    /// from; before the first, a time 2^63 ticks from any the thread reads,
    /// so that one delta test covers a first record, a clock that went
    /// backwards and a gap too long for 32 bits.
    pub(crate) last_ticks: u64,
    /// The tail at which a no-loss wait last ran out: while the daemon has
    /// not moved past it, the writer drops at once instead of waiting again.
    pub(crate) stalled_at: Option<u64>,
}

impl RingHandle {
    /// The free bytes a record of `size` bytes needs: its size, plus the
    /// rest of the ring when it does not fit before the end and must start
    /// again at offset 0.
    #[inline]
    pub(crate) fn space_for(&self, size: u64) -> u64 {
        let contiguous = self.capacity - (self.head & (self.capacity - 1));
        if size <= contiguous {
            size
        } else {
            contiguous + size
        }
    }

    /// Where a record of `size` bytes starts, once [`RingHandle::space_for`]
    /// bytes are known to be free. A record that does not fit before the end
    /// of the ring starts again at offset 0, and the rest of the ring is
    /// marked as padding (fewer than three bytes need no mark).
    #[inline]
    pub(crate) fn place(&mut self, size: u64) -> usize {
        let pos = self.head & (self.capacity - 1);
        let contiguous = self.capacity - pos;
        if size <= contiguous {
            return pos as usize;
        }
        if contiguous as usize >= HEADER_LEN {
            let pad = [HEADER_LEN as u8, 0, kind::PAD];
            // SAFETY: at least HEADER_LEN bytes remain before the ring's end,
            // in space the caller checked free; only this thread writes the
            // ring, and the daemon reads only below the published head.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    pad.as_ptr(),
                    self.data.as_ptr().add(pos as usize),
                    HEADER_LEN,
                )
            };
        }
        self.head += contiguous;
        0
    }

    #[inline]
    pub(crate) fn desc(&self) -> DescPtr {
        self.desc
    }

    /// Starts this thread's stream in the ring with a THREAD record. False
    /// if the ring has no room for it (the previous owner's records are not
    /// drained yet).
    fn push_thread(&mut self, tid: u32) -> bool {
        if !self.push_raw(&record::thread_record(tid)) {
            return false;
        }
        // For display only: the daemon goes by the THREAD record.
        self.desc().tid().store(tid, Ordering::Relaxed);
        true
    }

    /// Appends one whole record and publishes it, padding to the end of the
    /// ring first if it does not fit before the end (as the event path does).
    fn push_raw(&mut self, rec: &[u8]) -> bool {
        let size = rec.len() as u64;
        self.cached_tail = self.desc().tail().load(Ordering::Acquire);
        if self
            .head
            .wrapping_add(self.space_for(size))
            .wrapping_sub(self.cached_tail)
            > self.capacity
        {
            return false;
        }
        let at = self.place(size);
        let data = self.data.as_ptr();
        // SAFETY: [at, at + size) lies inside the ring and inside the free
        // space checked above; the daemon reads only below the published head.
        unsafe { std::ptr::copy_nonoverlapping(rec.as_ptr(), data.add(at), rec.len()) };
        self.head += size;
        self.desc().head().store(self.head, Ordering::Release);
        true
    }
}
