//! A session as the drain sees it: its buffers (preallocated, rotated to the
//! writer, flushed early, handed to real-time consumers), what its stream
//! already describes, its recovery marks, and the losses it counts and
//! writes as LOST records, deferred to the next buffer when none has room.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ferret_abi::proto::Response;
use ferret_abi::record::{self, LostMeta, LostReason};
use ferret_format::{BUFFER_HEADER_LEN, BufferBuilder, buffer_kind};
use ferret_session::{RegionId, SessionCounters, SessionKey};

use super::marks::Mark;
use crate::msg::{Consumer, RT_QUEUE_LIMIT, SessionSetup, StreamItem, WriteCmd};

/// How long a session without a free buffer may hold events back in the
/// rings before it starts losing them, so that one slow log file cannot stop
/// every session that shares its providers.
const STALL_LIMIT: Duration = Duration::from_millis(500);

/// The same for a no-loss session: its providers wait for ring space, so
/// events held in the rings slow them down rather than get lost. The limit
/// is still finite, so that a log file that stopped taking writes cannot
/// hold every session sharing those rings for ever.
const NO_LOSS_STALL_LIMIT: Duration = Duration::from_secs(10);

/// A session as the drain sees it: its buffers and what its file already describes.
pub(super) struct DrainSession {
    pub(super) key: SessionKey,
    pub(super) counters: Arc<SessionCounters>,
    pub(super) buffer_size: usize,
    pub(super) max_buffers: usize,
    pub(super) flush_timer: Option<Duration>,
    pub(super) next_flush: Instant,
    pub(super) current: BufferBuilder,
    /// The slot number of `current`.
    pub(super) current_seq: u64,
    /// True if `current` has records the writer has not been sent.
    pub(super) dirty: bool,
    pub(super) free: Vec<BufferBuilder>,
    pub(super) allocated: usize,
    /// When the session first found no free buffer, while it still has none.
    pub(super) starved_since: Option<Instant>,
    /// The ring stream the current buffer's last run ended in: (region,
    /// ring, position). A run that starts there needs no CONTEXT record.
    pub(super) chain: Option<(RegionId, usize, u64)>,
    pub(super) described_types: HashSet<(RegionId, u16)>,
    pub(super) described_providers: HashSet<(RegionId, u32)>,
    /// The regions whose PROCESS record the stream has, by region rather
    /// than pid: a pid the kernel reused, or one shared by processes in
    /// other PID namespaces, is another process with another name.
    pub(super) described_processes: HashSet<RegionId>,
    /// Events and losses, counted here and published once per pass (the
    /// drain is the only thread that writes these counters).
    pub(super) events: u64,
    pub(super) lost_ring_full: u64,
    lost_no_buffer: u64,
    lost_other: u64,
    /// Events lost per provider name; `provider_lost_dirty` when it changed.
    provider_lost: Vec<(String, u64)>,
    provider_lost_dirty: bool,
    writes_file: bool,
    realtime_only: bool,
    describe_every: Option<u64>,
    /// Real-time consumers, and how much of `current` they were sent.
    pub(super) consumers: Vec<Consumer>,
    rt_sent: usize,
    rt_sent_records: u32,
    /// `events` when the last real-time chunk was made.
    rt_events_mark: u64,
    rt_buffers_lost: u64,
    /// Set when descriptions were forgotten: the drain must re-derive its
    /// cached routing words.
    pub(super) forgot: bool,
    /// How long the session may hold events in the rings without a buffer.
    pub(super) stall_limit: Duration,
    /// Whether the session may hold events back in the rings for want of
    /// a buffer: not while a command of another session waits for the
    /// rings to move on, which the session then pays for with counted
    /// losses rather than make the other wait.
    pub(super) may_stall: bool,
    /// The first run from each ring in `current`.
    pub(super) marks: Vec<Mark>,
    /// The marks of each buffer sent to the writer and not yet back, oldest
    /// first (the writer returns buffers in the order it gets them).
    pub(super) in_flight: VecDeque<Vec<Mark>>,
    /// Losses counted while no buffer had room for their LOST record, merged
    /// by source, provider, reason and process; they go first into the next
    /// buffer the session gets (and into the last one at stop), so that
    /// every loss the counters show is in the log too.
    pub(super) pending_lost: Vec<LostMeta>,
}

impl DrainSession {
    pub(super) fn new(setup: SessionSetup) -> DrainSession {
        // The minimum buffers are allocated up front (as ETW's
        // MinimumBuffers are), so that a burst at the start of a session
        // does not wait for the allocator; the rest, up to the maximum, are
        // allocated only when the session needs one (`rotate`). Either way
        // a buffer's memory becomes resident only as records fill it
        // (`BufferBuilder::new` writes nothing past its header), so a session
        // that may hold a lot but is sent little costs little: the price is
        // a page fault per page the first time a buffer fills.
        let prealloc = setup.min_buffers.clamp(1, setup.max_buffers.max(1));
        let free = (1..prealloc)
            .map(|_| BufferBuilder::new(setup.buffer_size))
            .collect();
        setup
            .counters
            .buffers_in_use
            .store(prealloc as u64, Ordering::Relaxed);
        DrainSession {
            key: setup.key,
            counters: setup.counters,
            buffer_size: setup.buffer_size,
            max_buffers: setup.max_buffers,
            flush_timer: setup.flush_timer,
            next_flush: Instant::now() + setup.flush_timer.unwrap_or(Duration::from_secs(3600)),
            current: BufferBuilder::new(setup.buffer_size),
            current_seq: setup.first_seq,
            dirty: false,
            free,
            allocated: prealloc,
            starved_since: None,
            chain: None,
            described_types: HashSet::new(),
            described_providers: HashSet::new(),
            described_processes: HashSet::new(),
            events: 0,
            lost_ring_full: 0,
            lost_no_buffer: 0,
            lost_other: 0,
            provider_lost: Vec::new(),
            provider_lost_dirty: false,
            writes_file: setup.writes_file,
            realtime_only: setup.realtime_only,
            describe_every: setup.describe_every,
            consumers: Vec::new(),
            rt_sent: 0,
            rt_sent_records: 0,
            rt_events_mark: 0,
            rt_buffers_lost: 0,
            forgot: false,
            may_stall: true,
            stall_limit: if setup.no_loss {
                NO_LOSS_STALL_LIMIT
            } else {
                STALL_LIMIT
            },
            marks: Vec::new(),
            in_flight: VecDeque::new(),
            pending_lost: Vec::new(),
        }
    }

    /// Writes as many pending LOST records as the current buffer holds.
    pub(super) fn push_pending_lost(&mut self) {
        let mut done = 0;
        for lost in &self.pending_lost {
            if !self.current.push(&record::lost_record(lost)) {
                break;
            }
            done += 1;
        }
        if done > 0 {
            self.pending_lost.drain(..done);
            self.dirty = true;
        }
    }

    /// Keeps a loss whose LOST record found no room for the next buffer.
    fn defer_lost(&mut self, lost: LostMeta) {
        let same = |l: &&mut LostMeta| {
            l.source == lost.source
                && l.provider == lost.provider
                && l.reason == lost.reason
                && l.pid == lost.pid
        };
        match self.pending_lost.iter_mut().find(same) {
            Some(l) => l.count = l.count.saturating_add(lost.count),
            None => self.pending_lost.push(lost),
        }
    }

    /// Forgets what the current buffer's stream has described, so that the
    /// next records are preceded by the metadata they need again.
    pub(super) fn forget_descriptions(&mut self) {
        self.described_types.clear();
        self.described_providers.clear();
        self.described_processes.clear();
        self.chain = None;
        self.forgot = true;
    }

    /// Sends the records added to `current` since the last chunk to every
    /// real-time consumer, as one sealed buffer. With `last`, consumers get
    /// it however far behind they are (the session is stopping).
    pub(super) fn rt_emit(&mut self, last: bool) {
        let records = self.current.records();
        if records == self.rt_sent_records {
            return;
        }
        let events = self.events.saturating_sub(self.rt_events_mark);
        if self.consumers.is_empty() {
            if self.realtime_only {
                self.rt_buffers_lost += 1;
            }
        } else {
            let bytes = &self.current.bytes()[BUFFER_HEADER_LEN + self.rt_sent..];
            let mut chunk = BufferBuilder::new(BUFFER_HEADER_LEN + bytes.len());
            if let Some(dst) = chunk.append(bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            chunk.add_records(records - self.rt_sent_records - 1);
            let buffer = chunk.seal(buffer_kind::DATA, self.current_seq).to_vec();
            let mut lost = 0;
            self.consumers.retain_mut(|c| {
                if !last && c.tx.len() >= RT_QUEUE_LIMIT {
                    c.missed_buffers += 1;
                    c.missed_events += events;
                    lost += 1;
                    return true;
                }
                let msg = Response::RtData {
                    buffer: buffer.clone(),
                    missed_buffers: c.missed_buffers,
                    missed_events: c.missed_events,
                };
                // A consumer whose connection is gone stops receiving.
                c.tx.send(StreamItem::Msg(Box::new(msg))).is_ok()
            });
            self.rt_buffers_lost += lost;
        }
        self.rt_sent = self.current.used();
        self.rt_sent_records = records;
        self.rt_events_mark = self.events;
        // The next records must not depend on a time base in this chunk.
        self.chain = None;
    }

    /// Counts `n` events lost for the provider called `name`.
    fn charge_provider(&mut self, name: &str, n: u64) {
        match self.provider_lost.iter_mut().find(|(p, _)| p == name) {
            Some((_, v)) => *v = v.saturating_add(n),
            None => self.provider_lost.push((name.to_string(), n)),
        }
        self.provider_lost_dirty = true;
    }

    /// Sends the current buffer to the writer whatever the buffer limit
    /// (for a file switch), taking a fresh one.
    pub(super) fn seal_current(&mut self, writer: &Sender<WriteCmd>) {
        if self.current.is_empty() {
            return;
        }
        if !self.rotate(writer) {
            self.allocated += 1;
            self.free.push(BufferBuilder::new(self.buffer_size));
            self.rotate(writer);
        }
    }

    /// Sends the current buffer to the writer and starts the next one.
    /// False (and nothing changes) if no buffer is free.
    pub(super) fn rotate(&mut self, writer: &Sender<WriteCmd>) -> bool {
        let next = match self.free.pop() {
            Some(b) => b,
            None if self.allocated < self.max_buffers => {
                self.allocated += 1;
                self.counters
                    .buffers_in_use
                    .store(self.allocated as u64, Ordering::Relaxed);
                BufferBuilder::new(self.buffer_size)
            }
            None => return false,
        };
        self.rt_emit(false);
        self.rt_sent = 0;
        self.rt_sent_records = 0;
        let mut full = std::mem::replace(&mut self.current, next);
        full.seal(buffer_kind::DATA, self.current_seq);
        self.in_flight.push_back(std::mem::take(&mut self.marks));
        let _ = writer.send(WriteCmd::Write {
            key: self.key,
            seq: self.current_seq,
            buffer: full,
        });
        self.current_seq += 1;
        self.dirty = false;
        self.chain = None;
        if self
            .describe_every
            .is_some_and(|n| n > 0 && self.current_seq % n == 0)
        {
            self.forget_descriptions();
        }
        // Losses that found no room before open the new buffer.
        self.push_pending_lost();
        true
    }

    /// True if a buffer is free or may still be allocated.
    pub(super) fn can_rotate(&self) -> bool {
        !self.free.is_empty() || self.allocated < self.max_buffers
    }

    /// Makes room for `n` bytes, rotating if needed. False if no buffer is free.
    pub(super) fn room_for(&mut self, n: usize, writer: &Sender<WriteCmd>) -> bool {
        n + BUFFER_HEADER_LEN <= self.buffer_size
            && (self.current.remaining() >= n || self.rotate(writer))
    }

    /// Appends a whole record (metadata or loss). False if it cannot be stored.
    pub(super) fn push_record(&mut self, bytes: &[u8], writer: &Sender<WriteCmd>) -> bool {
        if !self.room_for(bytes.len(), writer) {
            return false;
        }
        self.dirty = true;
        self.current.push(bytes)
    }

    /// Writes the current buffer's records so far, keeping the buffer to
    /// fill further (the later write replaces this one in the file).
    pub(super) fn flush_partial(&mut self, writer: &Sender<WriteCmd>) {
        self.push_pending_lost();
        self.rt_emit(false);
        if self.dirty && !self.current.is_empty() && self.writes_file {
            let bytes = self
                .current
                .seal(buffer_kind::DATA, self.current_seq)
                .to_vec();
            let _ = writer.send(WriteCmd::WriteCopy {
                key: self.key,
                seq: self.current_seq,
                bytes,
            });
            self.dirty = false;
        }
    }

    pub(super) fn publish(&self) {
        let c = &self.counters;
        c.events.store(self.events, Ordering::Relaxed);
        c.lost_ring_full
            .store(self.lost_ring_full, Ordering::Relaxed);
        c.lost_no_buffer
            .store(self.lost_no_buffer, Ordering::Relaxed);
        c.lost_other.store(self.lost_other, Ordering::Relaxed);
        c.rt_buffers_lost
            .store(self.rt_buffers_lost, Ordering::Relaxed);
        c.free_buffers
            .store(self.free.len() as u64, Ordering::Relaxed);
    }

    pub(super) fn publish_provider_lost(&mut self) {
        if self.provider_lost_dirty {
            self.counters.set_provider_lost(self.provider_lost.clone());
            self.provider_lost_dirty = false;
        }
    }

    /// Records a loss in the session's stream, so the decoder shows where
    /// it happened, and counts it.
    pub(super) fn lost(
        &mut self,
        lost: LostMeta,
        provider: Option<&str>,
        writer: &Sender<WriteCmd>,
    ) {
        if let Some(name) = provider {
            self.charge_provider(name, lost.count);
        }
        match lost.reason {
            // Counts that come from a provider's counters are not trusted
            // to stay small: saturate rather than overflow.
            LostReason::RingFull => {
                self.lost_ring_full = self.lost_ring_full.saturating_add(lost.count)
            }
            LostReason::NoBuffer => {
                self.lost_no_buffer = self.lost_no_buffer.saturating_add(lost.count)
            }
            _ => self.lost_other = self.lost_other.saturating_add(lost.count),
        }
        // Earlier losses go first, so that the log keeps their order.
        self.push_pending_lost();
        if !self.pending_lost.is_empty() || !self.push_record(&record::lost_record(&lost), writer) {
            self.defer_lost(lost);
        }
    }
}
