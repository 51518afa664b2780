//! The per-thread ring writer: the path every enabled event takes.
//!
//! Each writing thread claims one single-producer ring in the region and
//! keeps it in thread-local storage. Writing an event reserves space behind
//! the ring's head, copies the record in, and publishes the new head with
//! one release store: no lock, no syscall, no allocation. The only syscall
//! is a rare wake-up of a sleeping drain thread when the ring passes half
//! full.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ferret_abi::Value;
use ferret_abi::record::{self, ActivityIds, HEADER_LEN, MAX_RECORD, Ticks, kind};

use crate::Described;
use crate::clock;
use crate::link::{GENERATION, ProviderInner, global};
use crate::region::{Region, RingHandle, release};

/// Writes after a failed ring claim before trying again.
const RING_RETRY: u32 = 4096;

struct ThreadWriter {
    generation: u64,
    region: Option<Arc<Region>>,
    ring: Option<RingHandle>,
    clock: u32,
    /// Writes left before the next attempt to claim a ring.
    retry_in: u32,
}

impl ThreadWriter {
    const fn new() -> ThreadWriter {
        ThreadWriter {
            generation: 0,
            region: None,
            ring: None,
            clock: 0,
            retry_in: 0,
        }
    }

    #[cold]
    fn reattach(&mut self, generation: u64) {
        if let Some(ring) = self.ring.take() {
            release(&ring);
        }
        self.generation = generation;
        self.region = global().and_then(|g| g.current_region());
        self.retry_in = 0;
        self.claim();
    }

    #[cold]
    fn claim(&mut self) {
        if let Some(region) = &self.region {
            self.clock = region.clock;
            let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
            self.ring = region.acquire_ring(tid);
            if self.ring.is_none() {
                self.retry_in = RING_RETRY;
            }
        }
    }

    #[inline]
    fn write<D: Described + ?Sized>(
        &mut self,
        p: &ProviderInner,
        desc: &D,
        values: &[Value<'_>],
        ids: &ActivityIds,
    ) {
        let generation = GENERATION.load(Ordering::Acquire);
        if generation != self.generation {
            self.reattach(generation);
        }
        if self.ring.is_none() && self.region.is_some() {
            if self.retry_in == 0 {
                self.claim();
            } else {
                self.retry_in -= 1;
            }
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
        if !desc.accepts(values) {
            region.count_invalid();
            return;
        }
        let payload: usize = values.iter().map(Value::encoded_len).sum();
        // A daemon older than activity ids would find the records
        // malformed: it gets the event without them.
        let ids = if region.activity_ids {
            ids
        } else {
            &ActivityIds::NONE
        };
        let now = clock::now(self.clock);
        // Deltas keep event records small; the first record of a ring, a
        // clock that went backwards across cores, or a gap too long for 32
        // bits get the absolute time instead.
        let delta = now.wrapping_sub(ring.last_ticks);
        let ticks = if ring.has_last && now >= ring.last_ticks && delta <= u32::MAX as u64 {
            Ticks::Delta(delta as u32)
        } else {
            Ticks::Absolute(now)
        };
        let size = record::event_header_len(ticks, ids) + payload;
        if size > MAX_RECORD {
            region.count_invalid();
            return;
        }
        let size64 = size as u64;
        let cap = ring.capacity;
        let pos = ring.head & (cap - 1);
        let contiguous = cap - pos;
        let need = if size64 <= contiguous {
            size64
        } else {
            contiguous + size64
        };
        if ring.head.wrapping_add(need).wrapping_sub(ring.cached_tail) > cap {
            ring.cached_tail = ring.desc().tail.load(Ordering::Acquire);
            if ring.head.wrapping_add(need).wrapping_sub(ring.cached_tail) > cap {
                region.lost_counter(p.slot).fetch_add(1, Ordering::Relaxed);
                region.wake_drain();
                return;
            }
        }
        let data = ring.data.as_ptr();
        let mut at = pos as usize;
        if size64 > contiguous {
            // The record does not fit before the end of the ring: mark the
            // rest as padding (fewer than three bytes need no mark) and
            // start again at offset 0.
            if contiguous as usize >= HEADER_LEN {
                let pad = [HEADER_LEN as u8, 0, kind::PAD];
                // SAFETY: at least HEADER_LEN bytes remain before the ring's
                // end, inside the space reserved above for this thread alone.
                unsafe { std::ptr::copy_nonoverlapping(pad.as_ptr(), data.add(at), HEADER_LEN) };
            }
            ring.head += contiguous;
            at = 0;
        }
        // SAFETY: [at, at + size) lies inside the ring (size <= contiguous,
        // or at = 0 after wrapping) and inside the space reserved above; no
        // other thread writes this ring and the daemon reads only below the
        // published head.
        let dst = unsafe { std::slice::from_raw_parts_mut(data.add(at), size) };
        let mut off = record::encode_event_header_ids(dst, size, type_id, ticks, ids);
        for v in values {
            off += v.encode(&mut dst[off..]);
        }
        ring.head += size64;
        ring.last_ticks = now;
        ring.has_last = true;
        ring.desc().head.store(ring.head, Ordering::Release);
        if ring.head - ring.cached_tail > cap / 8 {
            ring.cached_tail = ring.desc().tail.load(Ordering::Acquire);
            if ring.head.wrapping_sub(ring.cached_tail) > cap / 8 {
                region.wake_drain();
            }
        }
    }
}

impl Drop for ThreadWriter {
    fn drop(&mut self) {
        // The thread is exiting: hand the ring back so the daemon can drain
        // what is left in it and give it to another thread.
        if let Some(ring) = self.ring.take() {
            release(&ring);
        }
    }
}

thread_local! {
    static WRITER: RefCell<ThreadWriter> = const { RefCell::new(ThreadWriter::new()) };
}

/// Writes one event from the calling thread, with the activity ids given.
#[inline]
pub(crate) fn write<D: Described + ?Sized>(
    p: &ProviderInner,
    desc: &D,
    values: &[Value<'_>],
    ids: &ActivityIds,
) {
    let _ = WRITER.try_with(|cell| {
        // A write from a signal handler that interrupted another write on
        // this thread finds the writer busy; it is dropped rather than
        // corrupting the ring.
        if let Ok(mut w) = cell.try_borrow_mut() {
            w.write(p, desc, values, ids);
        }
    });
}
