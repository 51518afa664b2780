//! The drain thread: moves committed records from every provider ring into
//! the buffers of every session that wants them, and hands full buffers to
//! the writer thread.
//!
//! Records keep the form the provider wrote (type ids and time deltas are
//! scoped by the CONTEXT record before them), so the drain copies runs of
//! consecutive wanted records with one copy each and writes one CONTEXT
//! record where a run does not continue the previous one. It owns the
//! session buffers and its own copy of the routes, so this path takes no
//! lock. Commands from the control thread arrive on a channel and are
//! taken between passes, in order. Those that mean "after everything
//! committed so far" (flush, stop, a switch of log file, a snapshot, a
//! narrowing of the routes, a provider process gone) wait in a queue
//! (`held.rs`) until the rings they depend on have been consumed up to where
//! they stood, so that a session without buffers holds up only its own
//! commands: a stop's final pass therefore uses the routes that were in
//! force when the stop was asked.
//!
//! This file holds the thread's top level: its state, its commands and its
//! passes. The copying out of the rings is `copy.rs`, a session's buffers
//! `session.rs`, the metadata a stream needs `describe.rs`, loss charging
//! `losses.rs` and recovery marks `marks.rs`.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use ferret_abi::record::{self, ProcessEndMeta};
use ferret_abi::shm::{RING_FREE, RING_OWNED};
use ferret_format::{BufferBuilder, buffer_kind};
use ferret_session::{RegionId, RouteTable, SessionCounters, SessionKey};
use rustix::event::{PollFd, PollFlags};

use crate::clock::Clock;
use crate::held::{HeldQueue, RingMark};
use crate::msg::{DrainCmd, StreamItem, WriteCmd};

mod copy;
mod describe;
mod losses;
mod marks;
mod session;

use copy::{DrainRegion, Plan, RingCursor, Run, listeners_of};
use describe::describe_process;
use session::DrainSession;

/// How long a stopping session waits for writers that tested the enable
/// words before the stop to commit: it ends as soon as every ring a thread
/// owned at the stop has moved on, so this is paid only for rings whose
/// threads write nothing more.
const STOP_GRACE: Duration = Duration::from_millis(100);

/// A stopping session waiting for writers that may still commit for it.
struct Finishing {
    key: SessionKey,
    deadline: Instant,
    /// (region, ring, tail at the stop) of each owned ring not yet moved on.
    waits: Vec<(RegionId, usize, u64)>,
}

/// The drain thread's state.
pub(crate) struct Drain {
    cmds: Receiver<DrainCmd>,
    wake: Arc<OwnedFd>,
    writer: Sender<WriteCmd>,
    returned: Receiver<(SessionKey, BufferBuilder)>,
    regions: Vec<DrainRegion>,
    sessions: Vec<DrainSession>,
    routes: Arc<RouteTable>,
    /// Bumped when routes or the session list change; cached routes follow it.
    epoch: u64,
    runs: Vec<Option<Run>>,
    plans: Vec<Plan>,
    /// Set by a pass in which some session ran out of buffers.
    stalled: bool,
    /// When the oldest records left for a bigger batch must be taken.
    next_due: Option<Instant>,
    /// The clock providers stamp events with, for the records the drain
    /// writes itself.
    clock: Clock,
    /// Regions whose rings' recovery marks may have moved because a
    /// buffer with records from them came back or a session went.
    marks_stale: Vec<RegionId>,
    /// Stopping sessions waiting for late writers.
    finishing: Vec<Finishing>,
    /// What every route table retired since some ring last had an event
    /// took (see `RingCursor::late`).
    late: Option<Arc<RouteTable>>,
    /// Commands waiting for the rings to be consumed up to where they
    /// stood when the commands came.
    held: HeldQueue<DrainCmd>,
    /// Sessions finished while retired routes may still route a late event
    /// to them (see `RingCtx::deliver_late`), with their counters.
    stopped: Vec<Stopped>,
    /// Stopping sessions, with the clock when their stop came.
    stop_asked: Vec<(SessionKey, u64)>,
}

/// A finished session that a writer held past [`STOP_GRACE`] may still
/// have committed an event for.
struct Stopped {
    key: SessionKey,
    counters: Arc<SessionCounters>,
    /// The clock when the drain was asked to stop it, after its providers
    /// were disabled: an event stamped later was written for another
    /// session, not held across the stop.
    stop_ticks: u64,
    /// Late events counted for it.
    late: u64,
}

/// The most finished sessions kept for late events: as many as may be
/// listed, so that only sessions already gone from `list` are forgotten.
const STOPPED_KEPT: usize = ferret_session::DEFAULT_SESSION_LIMIT;

impl Drain {
    pub(crate) fn new(
        cmds: Receiver<DrainCmd>,
        wake: Arc<OwnedFd>,
        writer: Sender<WriteCmd>,
        returned: Receiver<(SessionKey, BufferBuilder)>,
        clock: Clock,
    ) -> Drain {
        Drain {
            cmds,
            wake,
            writer,
            returned,
            regions: Vec::new(),
            sessions: Vec::new(),
            routes: Arc::new(RouteTable::default()),
            epoch: 1,
            runs: Vec::new(),
            plans: Vec::new(),
            stalled: false,
            next_due: None,
            clock,
            marks_stale: Vec::new(),
            finishing: Vec::new(),
            late: None,
            held: HeldQueue::default(),
            stopped: Vec::new(),
            stop_asked: Vec::new(),
        }
    }

    /// Runs until the command channel closes.
    pub(crate) fn run(mut self) {
        crate::msg::raise_priority();
        let mut idle_sleep = Duration::from_micros(20);
        loop {
            loop {
                match self.cmds.try_recv() {
                    Ok(cmd) => self.command(cmd),
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => return,
                }
            }
            self.reclaim();
            self.stalled = false;
            // Held commands wait for complete passes: every ring is read
            // now, not only those with a batch ready.
            let moved = self.pass(!self.held.is_empty());
            self.apply_held();
            self.finish_stops();
            let next_flush = self.flush_timers();
            if self.stalled {
                // A session is out of buffers: wait for the writer to hand
                // one back rather than spin over rings that cannot move.
                if let Ok((key, buffer)) = self.returned.recv_timeout(Duration::from_millis(1)) {
                    self.give_back(key, buffer);
                }
                continue;
            }
            if moved > 0 {
                idle_sleep = Duration::from_micros(20);
                continue;
            }
            // Nothing worth a pass: sleep until a producer passes its
            // watermark, a command arrives, a flush timer or a small batch
            // comes due, or the back-off ends.
            for r in &self.regions {
                r.shm
                    .header()
                    .daemon
                    .drain_sleeping
                    .store(1, Ordering::SeqCst);
            }
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.pass(false) == 0 && self.cmds.is_empty() {
                let now = Instant::now();
                let mut timeout = idle_sleep.min(next_flush.saturating_duration_since(now));
                if let Some(due) = self.next_due {
                    timeout = timeout.min(due.saturating_duration_since(now));
                }
                if let Some(f) = self.finishing.iter().map(|f| f.deadline).min() {
                    timeout = timeout.min(f.saturating_duration_since(now));
                }
                if !self.held.is_empty() {
                    timeout = timeout.min(Duration::from_millis(1));
                }
                self.sleep(timeout);
                idle_sleep = (idle_sleep * 2).min(Duration::from_millis(20));
            }
            for r in &self.regions {
                r.shm
                    .header()
                    .daemon
                    .drain_sleeping
                    .store(0, Ordering::Relaxed);
            }
        }
    }

    fn sleep(&self, timeout: Duration) {
        let mut fds = Vec::with_capacity(self.regions.len() + 1);
        fds.push(PollFd::new(self.wake.as_ref(), PollFlags::IN));
        for r in &self.regions {
            fds.push(PollFd::new(&r.shm.eventfd, PollFlags::IN));
        }
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as i64,
        };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        let mut sink = [0u8; 8];
        let _ = rustix::io::read(self.wake.as_fd(), &mut sink);
        for r in &self.regions {
            let _ = rustix::io::read(r.shm.eventfd.as_fd(), &mut sink);
        }
    }

    fn session_index(&self, key: SessionKey) -> Option<usize> {
        self.sessions.iter().position(|s| s.key == key)
    }

    fn command(&mut self, cmd: DrainCmd) {
        match cmd {
            DrainCmd::AddRegion { region, process } => {
                let rings = region.layout.params.ring_count as usize;
                self.regions.push(DrainRegion {
                    shm: region,
                    process,
                    rings: vec![RingCursor::default(); rings],
                    types: Vec::new(),
                    route_words: Vec::new(),
                    meta_tail: 0,
                    meta_broken: false,
                    listeners: Vec::new(),
                    listeners_epoch: 0,
                    lost_seen: Vec::new(),
                    process_lost_seen: [0; 3],
                    marks_scratch: vec![None; rings],
                    marks_published: vec![(0, u64::MAX, 0); rings],
                });
            }
            DrainCmd::CloseRegion(id) => {
                // What the process committed goes in first, with the routes
                // in force, to the sessions that take from it.
                let sessions = listeners_of(id, &self.routes, &self.sessions)
                    .into_iter()
                    .map(|i| self.sessions[i].key)
                    .collect();
                let waits = self.marks(|r| r.shm.id == id);
                self.held
                    .hold(waits, sessions, false, DrainCmd::CloseRegion(id));
            }
            DrainCmd::Routes(routes) => self.new_routes(routes),
            DrainCmd::AddSession(setup) => {
                self.sessions.push(DrainSession::new(setup));
                self.epoch += 1;
            }
            cmd @ DrainCmd::Flush { key, .. } => self.hold_for(key, cmd),
            cmd @ DrainCmd::Stop { key } => {
                // Bounded like `stopped`, in case a stop never finishes a
                // session (one the drain never had).
                if self.stop_asked.len() >= STOPPED_KEPT {
                    self.stop_asked.remove(0);
                }
                self.stop_asked.push((key, self.clock.now_ticks()));
                self.hold_for(key, cmd)
            }
            DrainCmd::Attach { key, consumer } => {
                let Some(i) = self.session_index(key) else {
                    // Stopped meanwhile: the consumer's stream just ends.
                    return;
                };
                let s = &mut self.sessions[i];
                // Existing consumers get what came before; the new one
                // starts at a point from which the session describes every
                // provider and event type again.
                s.rt_emit(false);
                s.forget_descriptions();
                s.forgot = false;
                s.consumers.push(consumer);
                self.epoch += 1;
            }
            DrainCmd::Detach { key, conn } => {
                if let Some(i) = self.session_index(key) {
                    self.sessions[i].consumers.retain(|c| c.conn != conn);
                }
            }
            DrainCmd::Update {
                key,
                flush_timer,
                max_buffers,
            } => {
                let Some(i) = self.session_index(key) else {
                    return;
                };
                let s = &mut self.sessions[i];
                if let Some(timer) = flush_timer {
                    s.flush_timer = timer;
                    s.next_flush = Instant::now() + timer.unwrap_or(Duration::from_secs(3600));
                }
                if let Some(max) = max_buffers {
                    s.max_buffers = max;
                    // Free buffers above the new limit go now; buffers in
                    // use go when they come back.
                    while s.allocated > max && s.free.pop().is_some() {
                        s.allocated -= 1;
                    }
                    s.counters
                        .buffers_in_use
                        .store(s.allocated as u64, Ordering::Relaxed);
                }
            }
            // A switch of log file and a snapshot take what was committed
            // before them.
            cmd @ (DrainCmd::Switch { key, .. } | DrainCmd::Snapshot { key, .. }) => {
                self.hold_for(key, cmd)
            }
        }
    }

    /// The ring marks of every ring that may hold records, in the regions
    /// `which` selects.
    fn marks(&self, which: impl Fn(&DrainRegion) -> bool) -> Vec<RingMark> {
        let mut marks = Vec::new();
        for r in self.regions.iter().filter(|r| which(r)) {
            for (ring, cursor) in r.rings.iter().enumerate() {
                if r.shm.ring(ring).state.load(Ordering::Acquire) != RING_FREE {
                    marks.push(RingMark {
                        region: r.shm.id,
                        ring,
                        passes: cursor.passes,
                    });
                }
            }
        }
        marks
    }

    /// Holds a command of session `key` until every ring of every region
    /// it takes events from has been consumed up to where it stands now.
    fn hold_for(&mut self, key: SessionKey, action: DrainCmd) {
        let routes = self.routes.clone();
        let waits = self.marks(|r| {
            routes
                .region(r.shm.id)
                .iter()
                .any(|slot| slot.sessions.iter().any(|(k, _)| *k == key))
        });
        self.held.hold(waits, vec![key], false, action);
    }

    /// Takes a new route table. One that only widens what the routes in
    /// force take applies at once: every event committed so far meets a
    /// route that accepts it. One that narrows them applies only after the
    /// rings of the regions it narrows have been consumed with the union of
    /// both (as a stop does), and then routes each ring's first event after
    /// the change by both, since its writer may have tested the old enable
    /// words and committed only now (see `RingCursor::late`). Meanwhile a
    /// narrowed session may get events its new filter no longer takes, never
    /// fewer than its old one did.
    fn new_routes(&mut self, routes: Arc<RouteTable>) {
        // Drops counted so far happened under the routes in force (or an
        // earlier change still held, which they include): they are charged
        // now, before a widening could charge them to a session that did
        // not yet enable their provider.
        self.charge_drops();
        let mut narrowed: Vec<SessionKey> = Vec::new();
        let mut regions: Vec<RegionId> = Vec::new();
        for r in &self.regions {
            let id = r.shm.id;
            for old in self.routes.region(id) {
                let next = routes.slot(id, old.slot);
                for entry in &old.sessions {
                    if !next.is_some_and(|n| n.sessions.contains(entry)) {
                        if !narrowed.contains(&entry.0) {
                            narrowed.push(entry.0);
                        }
                        if !regions.contains(&id) {
                            regions.push(id);
                        }
                    }
                }
            }
        }
        let routes_held = self
            .held
            .actions()
            .any(|a| matches!(a, DrainCmd::Routes(_)));
        self.epoch += 1;
        if narrowed.is_empty() && !routes_held {
            self.routes = routes;
            return;
        }
        self.routes = Arc::new(self.routes.union(&routes, routes.epoch));
        let waits = self.marks(|r| regions.contains(&r.shm.id));
        self.held
            .hold(waits, narrowed, true, DrainCmd::Routes(routes));
    }

    /// Applies every held command whose rings have moved on.
    fn apply_held(&mut self) {
        loop {
            let regions = &self.regions;
            let ready = self.held.pop_ready(|id, ring| {
                regions
                    .iter()
                    .find(|r| r.shm.id == id)
                    .and_then(|r| r.rings.get(ring))
                    .map(|c| c.passes)
            });
            match ready {
                Some(action) => self.apply(action),
                None => return,
            }
        }
    }

    /// Applies a held command (only the kinds `command` holds come here).
    fn apply(&mut self, action: DrainCmd) {
        match action {
            DrainCmd::CloseRegion(id) => {
                // The process is gone: what its counters say it dropped is
                // final, and goes to the sessions that took from it.
                self.charge_drops();
                self.charge_unconsumed(id);
                self.record_end(id);
                self.regions.retain(|r| r.shm.id != id);
            }
            DrainCmd::Routes(target) => {
                // Drops counted until now go to the routes about to be
                // retired, which still include the narrowed sessions.
                self.charge_drops();
                // The routes in force become these, with those of every
                // route change still held (they are still to be retired).
                let previous = self.routes.clone();
                let mut in_force = target;
                for a in self.held.actions() {
                    if let DrainCmd::Routes(t) = a {
                        in_force = Arc::new(in_force.union(t, t.epoch));
                    }
                }
                self.routes = in_force;
                let pending = self.regions.iter().any(|r| r.rings.iter().any(|c| c.late));
                self.late = Some(match (&self.late, pending) {
                    (Some(late), true) => Arc::new(late.union(&previous, previous.epoch)),
                    _ => previous,
                });
                for r in &mut self.regions {
                    for c in &mut r.rings {
                        c.late = true;
                    }
                }
                self.epoch += 1;
            }
            DrainCmd::Flush { key, token } => {
                if let Some(i) = self.session_index(key) {
                    self.sessions[i].flush_partial(&self.writer);
                }
                let _ = self.writer.send(WriteCmd::Flushed { key, token });
            }
            DrainCmd::Stop { key } => {
                // Everything committed before the stop, including what
                // providers wrote before they saw the session disabled, is in.
                let Some(i) = self.session_index(key) else {
                    return;
                };
                // A writer that tested the enable words before the stop
                // may commit only now. The session stays until every ring
                // that a thread owns and that could hold such an event has
                // had its next record consumed (that record is routed by
                // the routes before the stop too, see `late`), or until
                // [`STOP_GRACE`] has passed.
                let waits = self.owned_rings_of(key);
                if waits.is_empty() {
                    self.finish(i);
                } else {
                    self.finishing.push(Finishing {
                        key,
                        deadline: Instant::now() + STOP_GRACE,
                        waits,
                    });
                }
            }
            DrainCmd::Switch {
                key,
                file,
                data_offset,
            } => {
                let Some(i) = self.session_index(key) else {
                    return;
                };
                let s = &mut self.sessions[i];
                s.seal_current(&self.writer);
                // Everything drained so far belongs to the old file, whose
                // trailer counts it.
                s.publish();
                let at_switch = s.counters.snapshot();
                // The old file's trailer takes one sequence number; the new
                // file starts describing from scratch.
                let trailer_seq = s.current_seq;
                s.current_seq += 1;
                s.forget_descriptions();
                s.forgot = false;
                self.epoch += 1;
                let _ = self.writer.send(WriteCmd::Switch {
                    key,
                    seq: trailer_seq,
                    file,
                    data_offset,
                    first_seq: s.current_seq,
                    at_switch,
                });
            }
            DrainCmd::Snapshot {
                key,
                file,
                header,
                token,
            } => {
                let Some(i) = self.session_index(key) else {
                    let _ = self.writer.send(WriteCmd::Snapshot {
                        key,
                        file,
                        header,
                        partial: None,
                        next_seq: 0,
                        token,
                    });
                    return;
                };
                let s = &mut self.sessions[i];
                s.rt_emit(false);
                let partial = (!s.current.is_empty())
                    .then(|| s.current.seal(buffer_kind::DATA, s.current_seq).to_vec());
                let _ = self.writer.send(WriteCmd::Snapshot {
                    key,
                    file,
                    header,
                    partial,
                    next_seq: s.current_seq + 1,
                    token,
                });
            }
            // `command` applies every other kind at once.
            DrainCmd::AddRegion { .. }
            | DrainCmd::AddSession(_)
            | DrainCmd::Attach { .. }
            | DrainCmd::Detach { .. }
            | DrainCmd::Update { .. } => {}
        }
    }

    /// Ends session `i`: its consumers get the end of the stream, the last
    /// buffer and the trailer go to the writer.
    fn finish(&mut self, i: usize) {
        // Drops counted while the session may still have been routed are
        // charged before it leaves, so that they reach its log and trailer
        // rather than only the sessions that stay.
        self.charge_drops();
        let mut s = self.sessions.swap_remove(i);
        let key = s.key;
        for m in s.marks.iter().chain(s.in_flight.iter().flatten()) {
            if !self.marks_stale.contains(&m.0) {
                self.marks_stale.push(m.0);
            }
        }
        self.epoch += 1;
        // Consumers get every event before the end, however far
        // behind they are; the session stays STOPPING until they
        // have taken it.
        s.rt_emit(true);
        for c in s.consumers.drain(..) {
            let _ = c.tx.send(StreamItem::Done {
                key,
                missed_buffers: c.missed_buffers,
                missed_events: c.missed_events,
            });
        }
        // Losses still waiting for room get a buffer of their own if
        // the last one is full.
        s.push_pending_lost();
        if !s.pending_lost.is_empty() {
            s.seal_current(&self.writer);
        }
        s.publish_provider_lost();
        let trailer_seq = if s.current.is_empty() {
            s.current_seq
        } else {
            s.current.seal(buffer_kind::DATA, s.current_seq);
            let buffer = std::mem::replace(&mut s.current, BufferBuilder::new(0));
            let _ = self.writer.send(WriteCmd::Write {
                key,
                seq: s.current_seq,
                buffer,
            });
            s.current_seq + 1
        };
        s.publish();
        let _ = self.writer.send(WriteCmd::Finish {
            key,
            seq: trailer_seq,
        });
        // Kept until no retired routes are left to name it (see `pass`):
        // the narrowing that retires its routes may still be held.
        let stop_ticks = match self.stop_asked.iter().position(|(k, _)| *k == key) {
            Some(at) => self.stop_asked.swap_remove(at).1,
            None => self.clock.now_ticks(),
        };
        if self.stopped.len() >= STOPPED_KEPT {
            self.stopped.remove(0);
        }
        self.stopped.push(Stopped {
            key,
            counters: s.counters.clone(),
            stop_ticks,
            late: 0,
        });
    }

    /// The rings that a thread owns in every region from which session
    /// `key` takes events, with their heads: a writer in one of them may
    /// have tested the enable words before the session was disabled and not
    /// committed yet.
    fn owned_rings_of(&self, key: SessionKey) -> Vec<(RegionId, usize, u64)> {
        let mut waits = Vec::new();
        for r in &self.regions {
            let id = r.shm.id;
            let takes = self
                .routes
                .region(id)
                .iter()
                .any(|slot| slot.sessions.iter().any(|(k, _)| *k == key));
            if !takes {
                continue;
            }
            for i in 0..r.shm.layout.params.ring_count as usize {
                let desc = r.shm.ring(i);
                if desc.state.load(Ordering::Acquire) == RING_OWNED {
                    waits.push((id, i, r.rings[i].tail));
                }
            }
        }
        waits
    }

    /// Finishes the stopping sessions whose rings have all moved on since
    /// the stop, or whose grace has passed.
    fn finish_stops(&mut self) {
        if self.finishing.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut k = 0;
        while k < self.finishing.len() {
            let regions = &self.regions;
            let f = &mut self.finishing[k];
            f.waits.retain(|&(id, ring, at)| {
                regions.iter().find(|r| r.shm.id == id).is_some_and(|r| {
                    r.shm.ring(ring).state.load(Ordering::Acquire) == RING_OWNED
                        && r.rings[ring].tail == at
                })
            });
            if f.waits.is_empty() || now >= f.deadline {
                let key = self.finishing.swap_remove(k).key;
                if let Some(i) = self.session_index(key) {
                    self.finish(i);
                }
            } else {
                k += 1;
            }
        }
    }

    /// Writes a PROCESS_END record into every session that takes events
    /// from region `id`, whose rings the drain has just consumed: the log
    /// then says the process ended and that nothing of it is missing after
    /// this point. The routes still include the region (the control thread
    /// sends the close before the routes without it).
    fn record_end(&mut self, id: RegionId) {
        let Some(region) = self.regions.iter().find(|r| r.shm.id == id) else {
            return;
        };
        let end = ProcessEndMeta {
            source: id.0 as u32,
            pid: region.shm.pid,
            ticks: self.clock.now_ticks(),
        };
        for si in listeners_of(id, &self.routes, &self.sessions) {
            let s = &mut self.sessions[si];
            // Room for both records first, so that a new buffer does not
            // separate the end from the PROCESS record that names it.
            s.room_for(
                record::PROCESS_END_LEN + 64 + region.process.len(),
                &self.writer,
            );
            describe_process(s, region, &self.writer);
            s.push_record(&record::process_end_record(&end), &self.writer);
        }
        for s in &mut self.sessions {
            s.publish();
        }
    }

    /// Takes back buffers the writer has finished with.
    fn reclaim(&mut self) {
        while let Ok((key, buffer)) = self.returned.try_recv() {
            self.give_back(key, buffer);
        }
    }

    fn give_back(&mut self, key: SessionKey, mut buffer: BufferBuilder) {
        if let Some(i) = self.session_index(key) {
            let s = &mut self.sessions[i];
            // Its records are written (or the session does not keep them):
            // the rings need not keep them for recovery any more.
            for m in s.in_flight.pop_front().unwrap_or_default() {
                if !self.marks_stale.contains(&m.0) {
                    self.marks_stale.push(m.0);
                }
            }
            if s.allocated > s.max_buffers {
                // `update` lowered the limit: let this one go.
                s.allocated -= 1;
                s.counters
                    .buffers_in_use
                    .store(s.allocated as u64, Ordering::Relaxed);
                return;
            }
            buffer.clear();
            s.free.push(buffer);
        }
    }

    /// Runs due flush timers; returns when the next one is due.
    fn flush_timers(&mut self) -> Instant {
        let now = Instant::now();
        let mut next = now + Duration::from_secs(3600);
        for s in &mut self.sessions {
            let Some(period) = s.flush_timer else {
                continue;
            };
            if now >= s.next_flush {
                s.flush_partial(&self.writer);
                s.next_flush = now + period;
            }
            next = next.min(s.next_flush);
        }
        next
    }

    /// One pass over every ring of every region. Returns the bytes consumed.
    ///
    /// Unless `all`, a ring is drained only once it holds a batch
    /// (`copy::batch_bytes`) or its oldest record has waited
    /// `copy::MAX_AGE`: reading close behind a busy producer would pull
    /// cache lines away from it while it still writes them, slowing both
    /// sides.
    fn pass(&mut self, all: bool) -> u64 {
        let mut moved: u64 = 0;
        self.next_due = None;
        let now = Instant::now();
        for s in &mut self.sessions {
            s.may_stall = !self.held.waits_for_others_than(s.key);
        }
        for ri in 0..self.regions.len() {
            moved = moved.saturating_add(self.drain_region(ri, all, now));
        }
        self.marks_stale.clear();
        if self.late.is_some() && !self.regions.iter().any(|r| r.rings.iter().any(|c| c.late)) {
            self.late = None;
        }
        // Finished sessions are forgotten once no retired routes, in force
        // as late routes or still to be retired, can name them.
        if !self.stopped.is_empty()
            && self.late.is_none()
            && !self
                .held
                .actions()
                .any(|a| matches!(a, DrainCmd::Routes(_)))
        {
            self.stopped.clear();
        }
        for s in &mut self.sessions {
            s.publish();
            s.publish_provider_lost();
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferret_abi::proto::{FileMode, ProviderSpec, StartRequest};
    use ferret_abi::record::{EventTypeMeta, Ticks};
    use ferret_abi::{EnableFilter, Guid, Level};
    use ferret_session::{ProviderEntry, Registry, SessionTable};

    use crate::msg::SessionSetup;
    use crate::shm::ShmRegion;

    /// A drain with one provider process (region 1, provider "P" in slot 0)
    /// and what it sends to the writer. The tests of the drain's other
    /// files use it too, so that every test drives the drain as the control
    /// thread does.
    pub(super) struct Rig {
        pub(super) drain: Drain,
        sessions: SessionTable,
        registry: Registry,
        pub(super) region: Arc<ShmRegion>,
        epoch: u64,
        _cmds: Sender<DrainCmd>,
        _writes: Receiver<WriteCmd>,
        _returned: Sender<(SessionKey, BufferBuilder)>,
    }

    impl Rig {
        pub(super) fn new() -> Rig {
            let (cmds_tx, cmds) = crossbeam_channel::unbounded();
            let (writer, writes) = crossbeam_channel::unbounded();
            let (returned_tx, returned) = crossbeam_channel::unbounded();
            let wake = Arc::new(
                rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).expect("eventfd"),
            );
            let clock = Clock::detect();
            let params = ferret_abi::shm::RegionParams {
                ring_count: 2,
                ring_capacity: 64 << 10,
                meta_capacity: 64 << 10,
            };
            let region = Arc::new(
                ShmRegion::create(RegionId(1), 4242, params, &clock.info()).expect("region"),
            );
            let mut drain = Drain::new(cmds, wake, writer, returned, clock);
            drain.command(DrainCmd::AddRegion {
                region: region.clone(),
                process: "app".into(),
            });
            let mut registry = Registry::default();
            let entry = ProviderEntry {
                name: "P".into(),
                guid: Guid::from_name("P"),
                pid: 4242,
                process: "app".into(),
            };
            registry.register(RegionId(1), 0, entry).expect("register");
            Rig {
                drain,
                sessions: SessionTable::new(16),
                registry,
                region,
                epoch: 1,
                _cmds: cmds_tx,
                _writes: writes,
                _returned: returned_tx,
            }
        }

        /// Starts a session on "P" as the control thread does: the session,
        /// then the routes that include it. Returns its key.
        pub(super) fn start(&mut self, name: &str) -> SessionKey {
            let req = StartRequest {
                name: name.into(),
                providers: vec![ProviderSpec {
                    name: "P".into(),
                    filter: EnableFilter::level(Level::Verbose),
                }],
                log_file: String::new(),
                buffer_kib: 64,
                max_buffers: 4,
                flush_timer_ms: 0,
                min_buffers: 1,
                file_mode: FileMode::RealTime,
                max_file_bytes: 0,
                realtime: true,
                controller: String::new(),
                no_loss: false,
                no_loss_wait_ms: 0,
            };
            let s = self
                .sessions
                .insert(&req, 0, "monotonic", 0, 1)
                .expect("insert");
            let (key, counters) = (s.key, s.counters.clone());
            self.drain.command(DrainCmd::AddSession(SessionSetup {
                key,
                buffer_size: 64 << 10,
                max_buffers: 4,
                flush_timer: None,
                counters,
                min_buffers: 1,
                writes_file: false,
                realtime_only: false,
                describe_every: None,
                first_seq: 0,
                no_loss: false,
            }));
            self.publish();
            key
        }

        /// Stops a session as the control thread does: the stop, then the
        /// routes without it.
        fn stop(&mut self, key: SessionKey) {
            self.drain.command(DrainCmd::Stop { key });
            self.sessions.by_key_mut(key).expect("session").state =
                ferret_abi::proto::SessionState::Stopping;
            self.publish();
        }

        fn publish(&mut self) {
            self.epoch += 1;
            let table = RouteTable::build(self.epoch, &self.sessions, &self.registry);
            self.drain.command(DrainCmd::Routes(Arc::new(table)));
        }

        /// Passes until no command is held and no session is finishing
        /// (which may take the stop grace).
        pub(super) fn settle(&mut self) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                self.drain.pass(true);
                self.drain.apply_held();
                self.drain.finish_stops();
                if self.drain.held.is_empty() && self.drain.finishing.is_empty() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            panic!("the drain did not settle");
        }

        /// Describes event type 0 of provider slot 0 in the metadata area.
        fn define_type(&self) {
            let meta = EventTypeMeta {
                source: 0,
                type_id: 0,
                provider: 0,
                event_id: 1,
                level: 4,
                opcode: 0,
                keywords: 1,
                name: "E".into(),
                fields: vec![],
            };
            let mut bytes = Vec::new();
            record::encode_event_type(&meta, &mut bytes).unwrap();
            self.region.write_at(self.region.layout.meta_offset, &bytes);
            self.region
                .header()
                .provider
                .meta_head
                .store(bytes.len() as u64, Ordering::Release);
        }

        /// Commits one event of type 0 stamped `at` to ring 0, owned by
        /// thread 9.
        fn commit_at(&self, at: u64) {
            let desc = self.region.ring(0);
            desc.state.store(RING_OWNED, Ordering::Release);
            let head = desc.head.load(Ordering::Acquire);
            let mut bytes = Vec::new();
            if head == 0 {
                bytes.extend_from_slice(&record::thread_record(9));
            }
            let ticks = Ticks::Absolute(at);
            let mut ev = vec![0u8; record::event_header_len(ticks, &Default::default())];
            let size = ev.len();
            record::encode_event_header(&mut ev, size, 0, ticks);
            bytes.extend_from_slice(&ev);
            self.region
                .write_at(self.region.layout.ring_data_at(0) + head, &bytes);
            desc.head
                .store(head + bytes.len() as u64, Ordering::Release);
        }

        /// Commits one event stamped now.
        fn commit(&self) {
            self.commit_at(self.drain.clock.now_ticks());
        }

        fn ring_full(&self, key: SessionKey) -> u64 {
            match self.drain.sessions.iter().find(|s| s.key == key) {
                Some(s) => s.lost_ring_full,
                None => panic!("session {key:?} is gone"),
            }
        }
    }

    #[test]
    fn an_event_committed_after_the_stop_grace_is_counted_for_its_stopped_session() {
        let mut rig = Rig::new();
        rig.define_type();
        let a = rig.start("a");
        rig.settle();
        rig.commit();
        rig.settle();
        assert_eq!(rig.drain.sessions[0].events, 1);
        let counters = rig.sessions.by_key(a).unwrap().counters.clone();
        // The ring's thread tested the enable words (and stamped its event)
        // before the stop and commits only after the stop grace, once the
        // session finished.
        let before_stop = rig.drain.clock.now_ticks();
        rig.stop(a);
        rig.settle();
        assert!(rig.drain.session_index(a).is_none());
        assert_eq!(counters.lost_other.load(Ordering::Relaxed), 0);
        rig.commit_at(before_stop);
        rig.settle();
        assert_eq!(counters.events.load(Ordering::Relaxed), 1);
        assert_eq!(
            counters.lost_other.load(Ordering::Relaxed),
            1,
            "a late event for a stopped session went uncounted"
        );
        // The ring's next event is the new routes' alone.
        rig.commit();
        rig.settle();
        assert_eq!(counters.lost_other.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_event_stamped_after_the_stop_is_not_counted_for_the_stopped_session() {
        // A thread that wrote nothing during the stop grace and then writes
        // for the sessions that enable the provider now.
        let mut rig = Rig::new();
        rig.define_type();
        let a = rig.start("a");
        rig.settle();
        rig.commit();
        rig.settle();
        let counters = rig.sessions.by_key(a).unwrap().counters.clone();
        rig.stop(a);
        rig.settle();
        rig.commit();
        rig.settle();
        assert_eq!(counters.lost_other.load(Ordering::Relaxed), 0);
        assert_eq!(counters.events.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn drops_are_charged_to_the_routes_in_force_when_they_were_counted() {
        let mut rig = Rig::new();
        let a = rig.start("a");
        rig.settle();
        // Drops while only A enables the provider, not yet read when B's
        // start reaches the drain (B's session and its widening routes
        // arrive between two passes).
        rig.region.add_lost(0, 5);
        let b = rig.start("b");
        rig.settle();
        assert_eq!(rig.ring_full(a), 5);
        assert_eq!(
            rig.ring_full(b),
            0,
            "B was charged drops from before it started"
        );
        // Drops while both enable it go to both.
        rig.region.add_lost(0, 7);
        rig.settle();
        assert_eq!((rig.ring_full(a), rig.ring_full(b)), (12, 7));
        // Drops counted while A is stopping are A's as well as B's; once A
        // has gone, they are B's alone.
        rig.region.add_lost(0, 2);
        let counters = rig.sessions.by_key(a).expect("a").counters.clone();
        rig.stop(a);
        rig.settle();
        assert_eq!(counters.lost_ring_full.load(Ordering::Relaxed), 14);
        rig.region.add_lost(0, 3);
        rig.settle();
        assert_eq!(rig.ring_full(b), 12);
    }
}
