//! The per-thread ring writer: the path every enabled event takes.
//!
//! Each writing thread claims one single-producer ring in the region and
//! keeps it in thread-local storage. Writing an event reserves space behind
//! the ring's head, copies the record in, and publishes the new head with
//! one release store: no lock, no syscall, no allocation. The only syscalls
//! are a rare wake-up of a sleeping drain thread when the ring fills up,
//! and, when the ring is full and a no-loss session enables the provider,
//! the bounded wait for room in `wait.rs`.
//!
//! A thread that exits hands its ring to the next thread of the process
//! that writes (see `Region::give_back`); that thread starts its stream in
//! the ring with a THREAD record.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use ferret_abi::Value;
use ferret_abi::record::{
    self, ACTIVITY_ID_LEN, ActivityIds, COMPACT_TYPES, EVENT_ABS_HEADER_LEN, EVENT_HEADER_LEN,
    MAX_RECORD, Ticks,
};
use ferret_abi::shm::Span;

use crate::Described;
use crate::clock;
use crate::link::{GENERATION, ProviderInner, global};
use crate::region::{Region, RingHandle};
use crate::wait;

/// The activity ids an event carries.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ids<'a> {
    /// The thread's current activity, if any: what most events carry.
    Current,
    /// These.
    Given(&'a ActivityIds),
}

/// An event's field values as the writer takes them: their encoded length
/// (which sizes the record) and their encoding. A call site's typed fields
/// know both at compile time; values given as a slice are checked against
/// the declared fields first.
pub(crate) trait Payload {
    /// The encoded length; `None` if the values do not match the event's
    /// declared fields, which would make the record undecodable.
    fn encoded_len(&self) -> Option<usize>;
    /// Writes exactly [`Payload::encoded_len`] bytes into `dst` from `at`.
    fn encode(&self, dst: &mut Span<'_>, at: usize);
}

/// Values given as a slice, with the field types they must have.
pub(crate) struct Checked<'a, 'v> {
    pub(crate) fields: &'a [crate::FieldDesc],
    pub(crate) values: &'a [Value<'v>],
}

impl<'a, 'v> Checked<'a, 'v> {
    /// `values` for the fields `desc` declares.
    #[inline]
    pub(crate) fn new(desc: &'a crate::EventDescriptor, values: &'a [Value<'v>]) -> Self {
        Checked {
            fields: desc.fields,
            values,
        }
    }
}

impl Payload for Checked<'_, '_> {
    #[inline]
    fn encoded_len(&self) -> Option<usize> {
        if self.values.len() != self.fields.len() {
            return None;
        }
        let mut len = 0;
        for (v, f) in self.values.iter().zip(self.fields) {
            if v.field_type() != f.ty {
                return None;
            }
            len += v.encoded_len();
        }
        Some(len)
    }

    #[inline]
    fn encode(&self, dst: &mut Span<'_>, at: usize) {
        let mut off = at;
        for v in self.values {
            off += v.encode_at(dst, off);
        }
    }
}

/// Writes after a failed ring claim before trying again.
const RING_RETRY: u32 = 4096;

struct ThreadWriter {
    generation: u64,
    region: Option<Arc<Region>>,
    ring: Option<RingHandle>,
    clock: u32,
    /// Writes left before the next attempt to claim a ring.
    retry_in: u32,
    /// The thread's id, once known (0 before).
    tid: u32,
}

impl ThreadWriter {
    const fn new() -> ThreadWriter {
        ThreadWriter {
            generation: 0,
            region: None,
            ring: None,
            clock: 0,
            retry_in: 0,
            tid: 0,
        }
    }

    /// Hands the thread's ring back to its region, for the next thread
    /// that writes (see [`Region::give_back`]).
    fn give_back_ring(&mut self) {
        if let (Some(ring), Some(region)) = (self.ring.take(), &self.region) {
            region.give_back(ring);
        }
    }

    #[cold]
    fn reattach(&mut self, generation: u64) {
        self.give_back_ring();
        // After a fork this thread has a new id, so ask again.
        self.tid = 0;
        self.generation = generation;
        let region = global().and_then(|g| g.current_region());
        // The new region is published to re-entrant writes before the old
        // one is let go, so that the pointer they read always names a
        // region this writer still holds.
        set_in_use(region.as_deref());
        self.region = region;
        self.retry_in = 0;
        self.claim();
    }

    #[cold]
    fn claim(&mut self) {
        if let Some(region) = &self.region {
            self.clock = region.clock;
            if self.tid == 0 {
                self.tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
            }
            self.ring = region.acquire_ring(self.tid);
            if self.ring.is_none() {
                self.retry_in = RING_RETRY;
            }
        }
    }

    /// A thread without a ring: takes over one an exited thread left as
    /// soon as there is one (cheap), and scans the region for a free ring
    /// (not cheap) only every [`RING_RETRY`] writes.
    #[cold]
    fn retry_claim(&mut self) {
        let Some(region) = &self.region else {
            return;
        };
        if self.retry_in == 0 {
            self.claim();
        } else {
            self.retry_in -= 1;
            if region.has_spare() && self.tid != 0 {
                self.ring = region.acquire_spare(self.tid);
            }
        }
    }

    #[inline]
    fn write<D: Described + ?Sized, P: Payload + ?Sized>(
        &mut self,
        p: &ProviderInner,
        desc: &D,
        values: &P,
        ids: Ids<'_>,
    ) {
        let generation = GENERATION.load(Ordering::Acquire);
        if generation != self.generation {
            self.reattach(generation);
        }
        if self.ring.is_none() {
            self.retry_claim();
        }
        let Some(region) = self.region.as_deref() else {
            return;
        };
        let Some(ring) = self.ring.as_mut() else {
            region.count_no_ring();
            return;
        };
        let type_id = match desc.cached_type(generation, p.slot) {
            Some(t) => t,
            None => match region.register_type(desc, p.slot) {
                Some(t) => {
                    desc.cache_type(generation, p.slot, t);
                    t
                }
                None => {
                    region.count_no_metadata();
                    return;
                }
            },
        };
        // The payload must match the declared fields; a mismatch would make
        // the record undecodable, so it is dropped and counted instead.
        let Some(payload) = values.encoded_len() else {
            region.count_invalid();
            return;
        };
        // Most events are written outside any activity: for them this is
        // one thread-local load and a test.
        let current;
        let (ids, mut id_count) = match ids {
            Ids::Given(ids) => (ids, ids.count()),
            Ids::Current => match crate::activity::current() {
                None => (&ActivityIds::NONE, 0),
                Some(id) => {
                    current = ActivityIds {
                        activity: Some(id),
                        related: None,
                    };
                    (&current, 1)
                }
            },
        };
        // A daemon older than activity ids would find the records
        // malformed: it gets the event without them.
        if !region.activity_ids {
            id_count = 0;
        }
        let now = clock::now(self.clock);
        // Deltas keep event records small; the first record of a ring, a
        // clock that went backwards across cores, or a gap too long for 32
        // bits get the absolute time instead. A clock that went backwards
        // wraps the delta past 32 bits, and so does the first record (see
        // `RingHandle::last_ticks`), so one test covers all three.
        let delta = now.wrapping_sub(ring.last_ticks);
        let ticks = if delta <= u32::MAX as u64 {
            Ticks::Delta(delta as u32)
        } else {
            Ticks::Absolute(now)
        };
        // An event of one of the process's first 128 types, outside any
        // activity, with a delta time (most events of a busy program) gets
        // the compact header: 4 bytes in a burst instead of 9.
        let compact = match ticks {
            Ticks::Delta(d) if id_count == 0 && type_id < COMPACT_TYPES && region.compact => {
                Some(d)
            }
            _ => None,
        };
        let header_len = match (compact, ticks) {
            (Some(d), _) => record::compact_header_len(d),
            (None, Ticks::Delta(_)) => EVENT_HEADER_LEN,
            (None, Ticks::Absolute(_)) => EVENT_ABS_HEADER_LEN,
        } + id_count * ACTIVITY_ID_LEN;
        let size = header_len + payload;
        if size > MAX_RECORD {
            region.count_invalid();
            return;
        }
        let size64 = size as u64;
        let cap = ring.capacity;
        // Most records fit before the ring's end; one that does not starts
        // again at offset 0 and needs the rest of the ring as well.
        let pos = ring.head & (cap - 1);
        let fits = size64 <= cap - pos;
        let need = if fits { size64 } else { ring.space_for(size64) };
        if ring.head.wrapping_add(need).wrapping_sub(ring.cached_tail) > cap {
            ring.cached_tail = ring.desc().tail().load(Ordering::Acquire);
            if ring.head.wrapping_add(need).wrapping_sub(ring.cached_tail) > cap
                && !wait::for_room(region, ring, p.words, need, generation)
            {
                region.lost_counter(p.slot).fetch_add(1, Ordering::Relaxed);
                region.wake_drain();
                return;
            }
        }
        let at = if fits {
            pos as usize
        } else {
            ring.place(size64)
        };
        let data = ring.data.as_ptr();
        // SAFETY: [at, at + size) lies inside the ring (`place` wrapped to
        // 0 if it did not fit before the end) and inside the space checked
        // free above. Unlike the descriptors and the header, these bytes
        // are this thread's alone until the head store below publishes
        // them: no other thread writes this ring, and the ABI lets the
        // daemon read only below the published head and write no ring
        // data. Still, the daemon maps these bytes, so they are never made
        // a `&mut [u8]` (which would promise the compiler that nobody else
        // touches them): the encoders write through a `Span`, by pointer,
        // and read back only a kind byte they wrote, so a daemon that broke
        // the ABI could garble only the record it then reads, not this
        // process.
        let mut dst = unsafe { Span::from_raw(data.add(at), size) };
        let off = match compact {
            Some(d) => record::encode_compact_header_at(&mut dst, size, type_id, d),
            None => {
                let off = record::encode_event_header_at(&mut dst, size, type_id, ticks);
                if id_count != 0 {
                    record::encode_activity_ids_at(&mut dst, off, ids)
                } else {
                    off
                }
            }
        };
        values.encode(&mut dst, off);
        ring.head += size64;
        ring.last_ticks = now;
        ring.desc().head().store(ring.head, Ordering::Release);
        // The drain is woken when an eighth of the ring waits for it. The
        // check reads the daemon's tail (a cache line the other core
        // writes) and may fence, so it runs once per sixteenth of the ring
        // written, not after every record of a burst the drain lags behind.
        if ring.head >= ring.check_at {
            ring.check_at = ring.head + cap / 16;
            ring.cached_tail = ring.desc().tail().load(Ordering::Acquire);
            if ring.head.wrapping_sub(ring.cached_tail) > cap / 8 {
                region.wake_drain();
            }
        }
    }
}

impl Drop for ThreadWriter {
    fn drop(&mut self) {
        // A signal handler that writes while the ring is handed back must
        // not take the spare lock this thread holds: it finds the thread
        // busy and counts its event against the region, still held here.
        let was_busy = EXIT_BUSY.with(|b| b.swap(true, Ordering::Acquire));
        // The thread is exiting: its ring goes to the next thread that
        // writes; the daemon drains what is left in it meanwhile.
        self.give_back_ring();
        EXIT_BUSY.with(|b| b.store(was_busy, Ordering::Release));
        // Cleared last: the region is let go only after this returns, when
        // the fields drop.
        set_in_use(None);
    }
}

thread_local! {
    static WRITER: RefCell<ThreadWriter> = const { RefCell::new(ThreadWriter::new()) };
    /// The region the thread's writer holds, for a write that finds the
    /// writer busy: it has no other way to reach the region's counters,
    /// and may run in a signal handler, where it can take no lock. Neither
    /// this nor `EXIT_BUSY` needs dropping, so both stay readable while the
    /// thread's other thread-locals are destroyed.
    static IN_USE: AtomicPtr<Region> = const { AtomicPtr::new(std::ptr::null_mut()) };
    /// True while a write of an exiting thread (whose writer is gone) or the
    /// writer's own hand-back runs on this thread; see [`write_exiting`].
    static EXIT_BUSY: AtomicBool = const { AtomicBool::new(false) };
}

/// Publishes the region the thread's writer now holds (or none).
fn set_in_use(region: Option<&Region>) {
    let ptr = region.map_or(std::ptr::null_mut(), |r| (r as *const Region).cast_mut());
    IN_USE.with(|p| p.store(ptr, Ordering::Release));
}

/// Counts an event that passed the enable test but found this thread's
/// writer busy: a write from a signal handler that interrupted a write, or
/// from code that runs inside one (an allocator that logs). It is counted
/// where the daemon reads ring-full losses, against the event's provider,
/// so that the sessions that wanted it see it lost; only atomics are
/// touched, which is safe in a signal handler.
#[cold]
#[inline(never)]
fn count_busy(p: &ProviderInner) {
    let region = IN_USE.with(|r| r.load(Ordering::Acquire));
    if region.is_null() || p.slot as usize >= ferret_abi::shm::ENABLE_SLOTS {
        // No region (the process is attached to no daemon) or no slot (the
        // provider is registered with none): no session wanted the event.
        return;
    }
    // SAFETY: `IN_USE` names a region only while a writer of this thread
    // holds its Arc (set before the Arc is stored, cleared before it is
    // let go); that writer is the one this write interrupted or runs
    // inside, so it cannot let go until this returns.
    let region = unsafe { &*region };
    region.lost_counter(p.slot).fetch_add(1, Ordering::Relaxed);
}

/// Writes an event from a thread whose writer is already gone: a write from
/// a thread-local destructor during thread exit. A writer made for this one
/// event takes a ring (one an exited thread left, usually), writes, and
/// hands the ring back; it is slow, but the event is not lost.
#[cold]
#[inline(never)]
fn write_exiting<D: Described + ?Sized, P: Payload + ?Sized>(
    p: &ProviderInner,
    desc: &D,
    values: &P,
    ids: Ids<'_>,
) {
    // A write that interrupted this one (a signal handler) must not take
    // the locks the interrupted write may hold: it is counted instead.
    if EXIT_BUSY.with(|b| b.swap(true, Ordering::Acquire)) {
        count_busy(p);
        return;
    }
    let mut w = ThreadWriter::new();
    w.write(p, desc, values, ids);
    drop(w);
    EXIT_BUSY.with(|b| b.store(false, Ordering::Release));
}

/// Writes one event from the calling thread, with the activity ids given.
/// `Ids::Current` reads the thread's current activity only once the event
/// is known to be written.
#[inline]
pub(crate) fn write<D: Described + ?Sized, P: Payload + ?Sized>(
    p: &ProviderInner,
    desc: &D,
    values: &P,
    ids: Ids<'_>,
) {
    let done = WRITER.try_with(|cell| {
        // A write from a signal handler that interrupted another write on
        // this thread finds the writer busy; it is dropped and counted
        // rather than corrupting the ring.
        match cell.try_borrow_mut() {
            Ok(mut w) => w.write(p, desc, values, ids),
            Err(_) => count_busy(p),
        }
    });
    if done.is_err() {
        write_exiting(p, desc, values, ids);
    }
}
