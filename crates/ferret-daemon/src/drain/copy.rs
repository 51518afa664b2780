//! Copying records out of a provider's rings: the drain's per-ring cursors,
//! the region state they live in, and the scan of each ring that routes its
//! events to the sessions that want them (`listeners_of`), copying runs of
//! consecutive wanted records with one copy each and writing a CONTEXT
//! record where a run does not continue the previous one.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ferret_abi::record::{self, CONTEXT_LEN, ContextMeta, LostMeta, LostReason, Ticks};
use ferret_abi::shm::{RING_FREE, RING_RELEASED};
use ferret_format::BUFFER_HEADER_LEN;
use ferret_session::{RegionId, RouteTable};

use super::describe::{META_ROOM, TypeSlot, describe_type, read_metadata};
use super::losses::{charge_region, check_lost};
use super::marks::publish_recovery_marks;
use super::session::DrainSession;
use super::{Drain, STOP_GRACE, Stopped};
use crate::msg::WriteCmd;
use crate::ring::{self, RingEvent, RingSink, TimeBase};
use crate::shm::{ReadBytes, SharedBytes, ShmRegion};

/// Per-ring state the daemon keeps; never read back from shared memory.
#[derive(Clone, Copy, Default)]
pub(super) struct RingCursor {
    pub(super) tail: u64,
    /// The time of the last record consumed, which the next delta is from.
    pub(super) time: TimeBase,
    /// When the drain first saw records it left for a bigger batch.
    pending_since: Option<Instant>,
    /// The thread writing the ring, from the last THREAD record consumed
    /// (the ring passes from thread to thread inside the process).
    pub(super) tid: Option<u32>,
    /// Set when the routes changed after the ring's last event. A thread
    /// writes its ring in order, testing the enable words before each
    /// event, so only its next event may have been tested against the words
    /// of the routes before the change: that one is routed by those routes
    /// too (`Drain::late`), every later one by the new routes alone.
    pub(super) late: bool,
    /// Complete passes over the ring: each time the drain consumed
    /// everything the ring held when it looked, except what a session held
    /// back for want of a buffer. Held commands wait for the next one.
    pub(super) passes: u64,
}

/// A region as the drain sees it.
pub(super) struct DrainRegion {
    pub(super) shm: Arc<ShmRegion>,
    pub(super) process: String,
    pub(super) rings: Vec<RingCursor>,
    /// Event types parsed from the metadata area, by type id.
    pub(super) types: Vec<TypeSlot>,
    /// Per type id: the routes epoch (with its top bit set) when the type
    /// goes to the region's single listener, which has it described; else 0.
    /// One load decides the common case on the event path.
    pub(super) route_words: Vec<u64>,
    pub(super) meta_tail: u64,
    /// Set when the metadata area held something malformed; no more is read.
    pub(super) meta_broken: bool,
    /// Indexes of the sessions that take any event from this region.
    pub(super) listeners: Vec<usize>,
    pub(super) listeners_epoch: u64,
    /// Last values seen of the per-slot lost counters, by slot.
    pub(super) lost_seen: Vec<u64>,
    /// Last values seen of the process-wide lost counters.
    pub(super) process_lost_seen: [u64; 3],
    /// Scratch for `publish_recovery_marks`: per ring, the oldest recovery
    /// mark.
    pub(super) marks_scratch: Vec<Option<(u64, u64, u32)>>,
    /// Per ring, what `publish_recovery_marks` last stored, so that it
    /// stores only changes.
    pub(super) marks_published: Vec<(u64, u64, u32)>,
}

/// How long records may wait in a ring for a bigger batch.
const MAX_AGE: Duration = Duration::from_millis(10);

/// The bytes a ring must hold before the drain reads it early.
fn batch_bytes(shm: &ShmRegion) -> u64 {
    shm.layout.params.ring_capacity / 64
}

/// What one listener does with one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Plan {
    /// The session does not want it.
    Skip,
    /// It continues the session's pending run.
    Extend,
    /// It starts a new run, after a CONTEXT record if `context`.
    Start { context: bool },
    /// It is lost, for this reason: the session has no buffer and has
    /// waited too long, the event is larger than a buffer, or its type's
    /// metadata could not be written.
    Lose(LostReason),
    /// The session has no buffer: leave the event in the ring for now.
    Stall,
}

/// A run of consecutive ring records bound for one session, copied in one go.
#[derive(Clone, Copy)]
pub(super) struct Run {
    offset: usize,
    len: usize,
    /// Bytes the session's buffer can still take for this run.
    room: usize,
    events: u64,
    /// The ring position just after the run.
    end_position: u64,
    /// The time base before the run's first event (`u64::MAX`: unknown).
    base: u64,
}

/// The sessions (by index) that take any event from `region`.
///
/// The table keeps each region's set of sessions as its slots change, so
/// this costs the listeners, not the region's providers.
pub(super) fn listeners_of(
    region: RegionId,
    routes: &RouteTable,
    sessions: &[DrainSession],
) -> Vec<usize> {
    routes
        .listeners(region)
        .filter_map(|key| sessions.iter().position(|s| s.key == key))
        .collect()
}

impl Drain {
    /// One region's share of a pass: drains each of its rings that holds
    /// a batch (or every ring with `all`), then charges the region's
    /// counted drops and republishes its recovery marks. Returns the bytes
    /// consumed.
    pub(super) fn drain_region(&mut self, ri: usize, all: bool, now: Instant) -> u64 {
        let Drain {
            regions,
            sessions,
            routes,
            writer,
            epoch,
            runs,
            plans,
            stalled,
            next_due,
            marks_stale,
            late,
            stopped,
            ..
        } = self;
        let region = &mut regions[ri];
        read_metadata(region);
        if region.listeners_epoch != *epoch {
            region.listeners = listeners_of(region.shm.id, routes, sessions);
            region.listeners_epoch = *epoch;
        }
        let shm = region.shm.clone();
        let mut moved: u64 = 0;
        let mut epoch_stale = false;
        for i in 0..shm.layout.params.ring_count as usize {
            let desc = shm.ring(i);
            let state = desc.state.load(Ordering::Acquire);
            if state == RING_FREE {
                region.rings[i].passes += 1;
                continue;
            }
            let head = desc.head.load(Ordering::Acquire);
            let tail = region.rings[i].tail;
            let pending = head.wrapping_sub(tail);
            let released = state == RING_RELEASED;
            if !all && !released && pending > 0 && pending < batch_bytes(&shm) {
                let cursor = &mut region.rings[i];
                let since = *cursor.pending_since.get_or_insert(now);
                let due = since + MAX_AGE;
                if now < due {
                    *next_due = Some(next_due.map_or(due, |d| d.min(due)));
                    continue;
                }
            }
            region.rings[i].pending_since = None;
            let mut ring_stalled = false;
            if head != tail {
                let stalled_before = std::mem::take(&mut *stalled);
                // The stream names its writer in THREAD records; the
                // descriptor's tid is only for a provider that writes none.
                let tid = region.rings[i]
                    .tid
                    .unwrap_or_else(|| desc.tid.load(Ordering::Relaxed));
                runs.clear();
                runs.resize(region.listeners.len(), None);
                let bytes = shm.ring_bytes(i);
                let mut time = region.rings[i].time;
                let ring_late = region.rings[i].late;
                let mut ctx = RingCtx {
                    late: late.as_deref().filter(|_| ring_late),
                    stopped: &mut stopped[..],
                    sessions: &mut sessions[..],
                    routes,
                    writer,
                    epoch: *epoch,
                    runs: &mut *runs,
                    plans: &mut *plans,
                    stalled: &mut *stalled,
                    epoch_stale: &mut epoch_stale,
                    ring: i,
                    tid,
                    bytes,
                    bad: 0,
                    fast_word: *epoch | (1 << 63),
                    region: &mut *region,
                };
                let cap = shm.layout.params.ring_capacity;
                let outcome = ring::scan(&bytes, cap, tail, head, &mut time, &mut ctx);
                ctx.flush_all();
                ring_stalled = *ctx.stalled;
                *ctx.stalled |= stalled_before;
                let bad = ctx.bad;
                let tid = ctx.tid;
                let still_late = ctx.late.is_some();
                region.rings[i].tid = Some(tid);
                region.rings[i].late = still_late;
                // Nothing after a bad length can be framed, and the next
                // delta has no known base.
                time.known &= outcome.fault.is_none();
                region.rings[i].time = time;
                let faults = bad + u64::from(outcome.fault.is_some());
                if faults > 0 {
                    charge_region(
                        region,
                        sessions,
                        writer,
                        LostReason::Corrupt,
                        faults,
                        u32::MAX,
                    );
                }
                region.rings[i].tail = outcome.tail;
                desc.tail_ticks.store(
                    if time.known { time.ticks } else { u64::MAX },
                    Ordering::Relaxed,
                );
                desc.tail.store(outcome.tail, Ordering::Release);
                // A producer's head can be anything, and a bad one moves the
                // tail as far: the sum saturates rather than overflow.
                moved = moved.saturating_add(outcome.tail.wrapping_sub(tail));
                for s in sessions.iter_mut() {
                    epoch_stale |= std::mem::take(&mut s.forgot);
                }
                if std::mem::take(&mut epoch_stale) {
                    *epoch += 1;
                    region.listeners = listeners_of(region.shm.id, routes, sessions);
                    region.listeners_epoch = *epoch;
                }
            }
            if !ring_stalled {
                region.rings[i].passes += 1;
            }
            if state == RING_RELEASED && region.rings[i].tail == head {
                // The thread has exited and everything it wrote is consumed:
                // the ring can go to another thread, which starts its own
                // time base.
                region.rings[i].time.known = false;
                region.rings[i].tid = None;
                let _ = desc.state.compare_exchange(
                    RING_RELEASED,
                    RING_FREE,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
        }
        check_lost(region, sessions, routes, writer);
        if moved > 0 || marks_stale.contains(&region.shm.id) {
            publish_recovery_marks(region, sessions);
        }
        moved
    }
}

/// Everything the per-event routing needs, borrowed for one ring.
struct RingCtx<'a> {
    region: &'a mut DrainRegion,
    sessions: &'a mut [DrainSession],
    routes: &'a RouteTable,
    writer: &'a Sender<WriteCmd>,
    epoch: u64,
    runs: &'a mut Vec<Option<Run>>,
    plans: &'a mut Vec<Plan>,
    stalled: &'a mut bool,
    /// Set when cached routing words must be re-derived after this ring.
    epoch_stale: &'a mut bool,
    ring: usize,
    tid: u32,
    bytes: SharedBytes<'a>,
    /// Records that could not be used (unknown type, unknown time base).
    bad: u64,
    /// The route word meaning "fast path" in this epoch.
    fast_word: u64,
    /// While the ring's first event since a change of routes is still to
    /// come: what the retired routes took (see `RingCursor::late`).
    late: Option<&'a RouteTable>,
    /// Sessions already finished that the retired routes may name.
    stopped: &'a mut [Stopped],
}

impl RingSink for RingCtx<'_> {
    #[inline]
    fn event(&mut self, e: RingEvent) -> bool {
        RingCtx::event(self, e)
    }

    /// Another thread of the process took the ring over: its records need
    /// a CONTEXT record of their own. Ending every pending run here does
    /// that, since a run that ends before the THREAD record does not
    /// continue into what follows it.
    fn thread(&mut self, tid: u32) {
        self.flush_all();
        self.tid = tid;
    }
}

impl RingCtx<'_> {
    /// Routes one event to every listener that wants it. Returns false to
    /// leave it in the ring when a session that wants it has no free buffer
    /// (for at most `session::STALL_LIMIT`; after that the session loses
    /// events instead of holding up the ring for everyone).
    #[inline]
    fn event(&mut self, e: RingEvent) -> bool {
        // The common case, first: one session, this type already routed
        // and described, continuing the run.
        if self.late.is_none()
            && self.region.route_words.get(e.type_id as usize) == Some(&self.fast_word)
        {
            if let Some(Some(run)) = self.runs.first_mut() {
                if run.offset + run.len == e.offset && run.len + e.size <= run.room {
                    run.len += e.size;
                    run.events += 1;
                    run.end_position = e.position + e.size as u64;
                    return true;
                }
            }
        }
        self.event_slow(e)
    }

    #[cold]
    fn event_slow(&mut self, e: RingEvent) -> bool {
        let consumed = self.route(e);
        if consumed {
            if let Some(late) = self.late.take() {
                self.deliver_late(e, late);
            }
        }
        consumed
    }

    /// Gives the ring's first event since a change of routes to every
    /// session that the retired routes (`late`) gave it to and the current
    /// ones do not: its writer may have tested the enable words before the
    /// change. (With a session that still enables the provider, the event
    /// may also have been written for that session after the change; the
    /// narrowed session then gets one event more than its new filter
    /// takes, at most one per ring and change, rather than lose one.)
    fn deliver_late(&mut self, e: RingEvent, late: &RouteTable) {
        let region_id = self.region.shm.id;
        let Some(t) = self.region.types.get(e.type_id as usize) else {
            return;
        };
        let (slot, level, keywords) = (t.meta.provider, t.meta.level, t.meta.keywords);
        let written_at = match e.ticks {
            Ticks::Absolute(t) => Some(t),
            Ticks::Delta(d) => e.base.known.then(|| e.base.ticks.wrapping_add(d as u64)),
        };
        let mut extra: Vec<usize> = Vec::new();
        for key in late.takers(region_id, slot, level, keywords) {
            if self
                .routes
                .takers(region_id, slot, level, keywords)
                .any(|k| k == key)
            {
                continue;
            }
            if let Some(si) = self.sessions.iter().position(|s| s.key == key) {
                if !extra.contains(&si) {
                    extra.push(si);
                }
            } else if let Some(st) = self
                .stopped
                .iter_mut()
                .find(|st| st.key == key && written_at.is_some_and(|t| t <= st.stop_ticks))
            {
                // Stamped before the stop, so its writer tested the enable
                // words before the session stopped, and it committed only
                // after the stop grace, once the session's trailer was
                // written. It cannot reach the log any more; it is counted
                // for the session (`query` shows it in lost_other, one more
                // than the trailer's) and said here. (An event stamped
                // after the stop was written for the sessions that enable
                // the provider now.)
                st.counters.lost_other.fetch_add(1, Ordering::Relaxed);
                st.late += 1;
                if st.late.is_power_of_two() {
                    let name = self
                        .routes
                        .slot(region_id, slot)
                        .or_else(|| late.slot(region_id, slot))
                        .map_or("?", |r| r.name.as_str());
                    eprintln!(
                        "ferretd: {} event(s) of provider {name} (pid {}) committed more than {} ms after their session stopped are not in its log; they are counted in its lost_other",
                        st.late,
                        self.region.shm.pid,
                        STOP_GRACE.as_millis()
                    );
                }
            }
        }
        if extra.is_empty() {
            return;
        }
        // The current routes skip the event for these sessions, so none of
        // them has a run open: each gets its own copy here.
        for si in extra {
            self.deliver_one(si, e, slot);
        }
        if self.sessions.iter().any(|s| s.forgot) {
            // A new buffer must describe everything again: cached words go.
            *self.epoch_stale = true;
            self.region.route_words.fill(0);
            for t in &mut self.region.types {
                t.epoch = 0;
            }
        }
    }

    /// Copies event `e` alone into session `si`'s buffer, with its metadata
    /// and a CONTEXT record; counts it lost if there is no room.
    fn deliver_one(&mut self, si: usize, e: RingEvent, slot: u32) {
        let region_id = self.region.shm.id;
        let s = &mut self.sessions[si];
        let lost = |reason| LostMeta {
            source: region_id.0 as u32,
            provider: slot,
            reason,
            pid: self.region.shm.pid,
            count: 1,
        };
        let name = self.routes.slot(region_id, slot).map(|r| r.name.clone());
        if e.size + CONTEXT_LEN + BUFFER_HEADER_LEN > s.buffer_size {
            s.lost(lost(LostReason::Invalid), name.as_deref(), self.writer);
            return;
        }
        let ready = s.described_types.contains(&(region_id, e.type_id));
        let need = e.size + CONTEXT_LEN + if ready { 0 } else { META_ROOM };
        if s.current.remaining() < need && !s.rotate(self.writer) {
            s.lost(lost(LostReason::NoBuffer), name.as_deref(), self.writer);
            return;
        }
        if !describe_type(s, self.region, self.routes, e.type_id, self.writer) {
            s.lost(lost(LostReason::NoMetadata), name.as_deref(), self.writer);
            return;
        }
        if s.current.remaining() < e.size + CONTEXT_LEN && !s.rotate(self.writer) {
            s.lost(lost(LostReason::NoBuffer), name.as_deref(), self.writer);
            return;
        }
        let ctx = ContextMeta {
            source: region_id.0 as u32,
            pid: self.region.shm.pid,
            tid: self.tid,
            base_ticks: e.base.ticks,
        };
        let (used, records) = (s.current.used(), s.current.records());
        s.current.push(&record::context_record(&ctx));
        let Some(dst) = s.current.append(e.size) else {
            s.current.rewind(used, records);
            s.lost(lost(LostReason::NoBuffer), name.as_deref(), self.writer);
            return;
        };
        self.bytes.copy_to(e.offset, dst);
        if !ring::frames_as_events(dst, 1) {
            s.current.rewind(used, records);
            s.chain = None;
            s.lost(lost(LostReason::Corrupt), None, self.writer);
            return;
        }
        if !s.marks.iter().any(|m| m.0 == region_id && m.1 == self.ring) {
            let base = if e.base.known { e.base.ticks } else { u64::MAX };
            s.marks
                .push((region_id, self.ring, e.position, base, self.tid));
        }
        s.events += 1;
        s.dirty = true;
        s.chain = Some((region_id, self.ring, e.position + e.size as u64));
    }

    /// Routes one event by the current routes (see `event`).
    fn route(&mut self, e: RingEvent) -> bool {
        let region_id = self.region.shm.id;
        let type_id = e.type_id as usize;
        if type_id >= self.region.types.len() {
            // The producer published the metadata before this event (see
            // docs/ABI.md), so a re-read finds it unless the producer lies.
            read_metadata(self.region);
        }
        let delta_without_base = matches!(e.ticks, Ticks::Delta(_)) && !e.base.known;
        if delta_without_base || type_id >= self.region.types.len() {
            self.bad += 1;
            self.flush_all();
            return true;
        }
        let listeners = self.region.listeners.len();
        let t = &mut self.region.types[type_id];
        if t.epoch != self.epoch {
            t.wants.clear();
            t.ready.clear();
            let slot = self.routes.slot(region_id, t.meta.provider);
            t.routed = slot.is_some();
            for &si in &self.region.listeners {
                let key = self.sessions[si].key;
                let wants = slot.is_some_and(|r| {
                    r.sessions
                        .iter()
                        .any(|(k, f)| *k == key && f.accepts(t.meta.level, t.meta.keywords))
                });
                t.wants.push(wants);
                let ready = self.sessions[si]
                    .described_types
                    .contains(&(region_id, e.type_id));
                t.ready.push(ready);
            }
            t.epoch = self.epoch;
        }
        if !t.routed {
            // Every registered provider has routes, so this one's
            // registration has not reached the drain yet: the control thread
            // sets a provider's enable word (after which it writes) and then
            // sends the routes that include it, and this pass may have begun
            // in between. Consuming the record now would drop it unseen, so
            // it stays in the ring until the routes arrive, without holding
            // up a held command (which counts the ring as passed over).
            self.flush_all();
            return false;
        }
        // First decide for every listener, so that a stall leaves no
        // listener holding this record in a run.
        self.plans.clear();
        for j in 0..listeners {
            let plan = self.plan(j, e);
            if plan == Plan::Stall {
                self.flush_all();
                return false;
            }
            self.plans.push(plan);
        }
        for j in 0..listeners {
            let s = &mut self.sessions[self.region.listeners[j]];
            match self.plans[j] {
                Plan::Skip => {}
                Plan::Lose(reason) => {
                    // Counted and recorded: a LOST record that finds no
                    // room waits for the next buffer (merged with the
                    // drops before it).
                    let provider = self.region.types[type_id].meta.provider;
                    let lost = LostMeta {
                        source: region_id.0 as u32,
                        provider,
                        reason,
                        pid: self.region.shm.pid,
                        count: 1,
                    };
                    let name = self
                        .routes
                        .slot(region_id, provider)
                        .map(|r| r.name.as_str());
                    s.lost(lost, name, self.writer);
                }
                Plan::Extend => {
                    if let Some(run) = &mut self.runs[j] {
                        run.len += e.size;
                        run.events += 1;
                        run.end_position = e.position + e.size as u64;
                    }
                }
                Plan::Start { context } => {
                    if context {
                        let ctx = ContextMeta {
                            source: region_id.0 as u32,
                            pid: self.region.shm.pid,
                            tid: self.tid,
                            base_ticks: e.base.ticks,
                        };
                        s.current.push(&record::context_record(&ctx));
                    }
                    self.runs[j] = Some(Run {
                        offset: e.offset,
                        len: e.size,
                        room: s.current.remaining(),
                        events: 1,
                        end_position: e.position + e.size as u64,
                        base: if e.base.known { e.base.ticks } else { u64::MAX },
                    });
                }
                Plan::Stall => unreachable!("stalls return above"),
            }
        }
        // A listener that started a buffer which must describe everything
        // again invalidates every cached fast-path word.
        if self
            .region
            .listeners
            .iter()
            .any(|&si| self.sessions[si].forgot)
        {
            for &si in &self.region.listeners {
                self.sessions[si].forgot = false;
            }
            // Other regions' words follow once the epoch moves on after this ring.
            *self.epoch_stale = true;
            self.region.route_words.fill(0);
            for t in &mut self.region.types {
                t.epoch = 0;
            }
            return true;
        }
        // With one listener that takes this type and has it described, the
        // next event of the type can take the fast path.
        let t = &self.region.types[type_id];
        let fast = listeners == 1 && t.wants[0] && t.ready[0];
        self.region.route_words[type_id] = if fast { self.fast_word } else { 0 };
        true
    }

    /// Decides what listener `j` does with event `e`, making room in its
    /// buffer (and writing the type's metadata) if needed.
    fn plan(&mut self, j: usize, e: RingEvent) -> Plan {
        let type_id = e.type_id as usize;
        if !self.region.types[type_id].wants[j] {
            self.flush(j);
            return Plan::Skip;
        }
        if let Some(run) = &self.runs[j] {
            // An event may join the run only if its type is described in
            // the session's stream already: the first event of a new type
            // ends the run, so that the type's metadata lands before it.
            // (`ready` is exact while a run is open: a buffer that must
            // describe everything again starts only after a flush.)
            let described = self.region.types[type_id].ready[j];
            if described && run.offset + run.len == e.offset && run.len + e.size <= run.room {
                return Plan::Extend;
            }
        }
        self.flush(j);
        let region_id = self.region.shm.id;
        let si = self.region.listeners[j];
        let s = &mut self.sessions[si];
        // Metadata records and the event must both fit; a whole free buffer
        // always holds them. The session's own record of what it described
        // decides (not the cached flag): a new buffer may have to describe
        // everything again.
        let described = |s: &DrainSession| s.described_types.contains(&(region_id, e.type_id));
        let mut ready = described(s);
        let need = e.size + CONTEXT_LEN + if ready { 0 } else { META_ROOM };
        if e.size + CONTEXT_LEN + BUFFER_HEADER_LEN > s.buffer_size {
            return Plan::Lose(LostReason::Invalid);
        }
        if s.current.remaining() < need {
            if !s.can_rotate() {
                let since = *s.starved_since.get_or_insert_with(Instant::now);
                if s.may_stall && since.elapsed() < s.stall_limit {
                    *self.stalled = true;
                    return Plan::Stall;
                }
                return Plan::Lose(LostReason::NoBuffer);
            }
            // Rotate before describing, so that the metadata lands in the
            // buffer that holds the event.
            if !s.rotate(self.writer) {
                return Plan::Lose(LostReason::NoBuffer);
            }
            ready = described(s);
        }
        s.starved_since = None;
        if !ready {
            if !describe_type(s, self.region, self.routes, e.type_id, self.writer) {
                return Plan::Lose(LostReason::NoMetadata);
            }
            self.region.types[type_id].ready[j] = true;
        }
        let s = &mut self.sessions[si];
        let continues = s.chain == Some((region_id, self.ring, e.position));
        let need = e.size + if continues { 0 } else { CONTEXT_LEN };
        if s.current.remaining() < need && !s.rotate(self.writer) {
            return Plan::Lose(LostReason::NoBuffer);
        }
        // Rotating starts a buffer with no context.
        Plan::Start {
            context: s.chain != Some((region_id, self.ring, e.position)),
        }
    }

    /// Copies listener `j`'s pending run into its session's buffer.
    fn flush(&mut self, j: usize) {
        let Some(run) = self.runs[j].take() else {
            return;
        };
        // A run's events are lost together, charged to the process that
        // wrote them (not to one provider: a run may hold several).
        let run_lost = |reason| LostMeta {
            source: self.region.shm.id.0 as u32,
            provider: u32::MAX,
            reason,
            pid: self.region.shm.pid,
            count: run.events,
        };
        let s = &mut self.sessions[self.region.listeners[j]];
        let (used, records) = (s.current.used(), s.current.records());
        if let Some(dst) = s.current.append(run.len) {
            self.bytes.copy_to(run.offset, dst);
            if !ring::frames_as_events(dst, run.events) {
                // The producer rewrote these records after the scan framed
                // them. Keeping the copy could misframe other processes'
                // records in this buffer, so its events are lost instead,
                // charged to the process that wrote them.
                s.current.rewind(used, records);
                // The buffer's last CONTEXT is now this producer's, which
                // the next run must not continue under: it starts afresh.
                s.chain = None;
                s.lost(run_lost(LostReason::Corrupt), None, self.writer);
                return;
            }
            let region_id = self.region.shm.id;
            if !s.marks.iter().any(|m| m.0 == region_id && m.1 == self.ring) {
                let start = run.end_position - run.len as u64;
                s.marks
                    .push((region_id, self.ring, start, run.base, self.tid));
            }
            // `append` counted one record; the run holds `events` of them.
            s.current.add_records(run.events as u32 - 1);
            s.events += run.events;
            s.dirty = true;
            s.chain = Some((self.region.shm.id, self.ring, run.end_position));
        } else {
            s.lost(run_lost(LostReason::NoBuffer), None, self.writer);
        }
    }

    fn flush_all(&mut self) {
        for j in 0..self.runs.len() {
            self.flush(j);
        }
    }
}
