//! The connections that watch the session list, and what each may queue.
//!
//! A watch's changes wait in a queue between the control thread and the
//! connection's thread, which sends them as fast as the client reads. A
//! client that stops reading must not make the daemon hold changes without
//! end, so each queue is bounded in bytes (the encoded size of what waits
//! plus a fixed cost per message for its boxes and strings). A change that
//! does not fit is skipped and counted, and the watch is *lagged*: it gets
//! no change until its queue has drained to half, then one
//! [`Response::WatchLagged`] with the count, the current state of every
//! session as [`ChangeKind::Present`] changes, and [`Response::WatchResynced`].
//! So a slow watcher ends up with the truth and is told what it missed.
//!
//! The session list itself (at the start of a watch, after a lag, and the
//! counters every second) is sent a part at a time, never filling more than
//! half of the queue, so that a list of thousands of sessions neither breaks
//! the bound nor leaves no room for the changes that come meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender};
use ferret_abi::proto::{self, ChangeKind, Response, SessionInfo};

use crate::msg::{ConnId, StreamItem};

/// The most bytes one watch may have waiting in the daemon (besides the
/// one message its connection thread is sending, and the socket's own
/// buffer, which the kernel bounds).
pub(crate) const WATCH_QUEUE_BYTES: usize = 4 << 20;

/// What a queued message costs besides its encoded bytes: its box and the
/// allocations of its strings and vectors, rounded up.
const ITEM_OVERHEAD: usize = 512;

/// The part of the queue the session list may fill; the rest is kept for
/// the changes that happen while it is sent.
const LISTING_BYTES: usize = WATCH_QUEUE_BYTES / 2;

/// Sessions sent as a list, a part at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Listing {
    /// How each session is reported: `Present` or `Counters`.
    kind: ChangeKind,
    /// The LoggerID the next session follows; `None` before the first.
    after: Option<u32>,
    /// End with `WatchResynced` (the list after a lag).
    resync: bool,
}

struct Watcher {
    conn: ConnId,
    tx: Sender<StreamItem>,
    /// Bytes waiting for this watch; the connection thread subtracts each
    /// message's cost once it has handed the message to the socket.
    queued: Arc<AtomicUsize>,
    /// While lagged: the changes skipped so far.
    skipped: Option<u64>,
    /// The list being sent, if any.
    listing: Option<Listing>,
    /// False once the connection's thread has gone.
    alive: bool,
}

impl Watcher {
    /// Queues `msg` if it fits under `limit` bytes; false if it does not
    /// (or the connection is gone).
    fn offer(&mut self, msg: Response, limit: usize) -> bool {
        let cost = proto::encoded_len(&msg)
            .unwrap_or(proto::MAX_MESSAGE)
            .saturating_add(ITEM_OVERHEAD);
        if self.queued.load(Ordering::Acquire).saturating_add(cost) > limit {
            return false;
        }
        self.queued.fetch_add(cost, Ordering::AcqRel);
        let item = StreamItem::Charged {
            msg: Box::new(msg),
            cost,
            queued: Arc::clone(&self.queued),
        };
        if self.tx.send(item).is_err() {
            self.alive = false;
            return false;
        }
        true
    }

    /// Sends as much of the pending resync or list as the queue has room
    /// for. `next_after(id)` is the first session whose LoggerID is
    /// greater than `id` (the first of all for `None`).
    fn pump(&mut self, next_after: &dyn Fn(Option<u32>) -> Option<SessionInfo>) {
        if let Some(skipped) = self.skipped {
            if self.queued.load(Ordering::Acquire) > WATCH_QUEUE_BYTES / 2 {
                return;
            }
            if !self.offer(Response::WatchLagged { skipped }, WATCH_QUEUE_BYTES) {
                return;
            }
            self.skipped = None;
            self.listing = Some(Listing {
                kind: ChangeKind::Present,
                after: None,
                resync: true,
            });
        }
        while let Some(mut l) = self.listing {
            match next_after(l.after) {
                Some(session) => {
                    let id = session.logger_id;
                    let change = Response::Change {
                        kind: l.kind,
                        session,
                    };
                    if !self.offer(change, LISTING_BYTES) {
                        return;
                    }
                    l.after = Some(id);
                    self.listing = Some(l);
                }
                None => {
                    if l.resync && !self.offer(Response::WatchResynced, WATCH_QUEUE_BYTES) {
                        return;
                    }
                    self.listing = None;
                }
            }
        }
    }
}

/// Every watch of the session list.
#[derive(Default)]
pub(crate) struct Watchers {
    list: Vec<Watcher>,
}

impl Watchers {
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Starts a watch on `conn`: the session list first, as `Present`
    /// changes, then every change. Returns what the connection forwards.
    pub(crate) fn add(
        &mut self,
        conn: ConnId,
        next_after: &dyn Fn(Option<u32>) -> Option<SessionInfo>,
    ) -> Receiver<StreamItem> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut w = Watcher {
            conn,
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            skipped: None,
            listing: Some(Listing {
                kind: ChangeKind::Present,
                after: None,
                resync: false,
            }),
            alive: true,
        };
        w.pump(next_after);
        self.list.push(w);
        rx
    }

    /// Forgets the watch on `conn` (the client hung up).
    pub(crate) fn remove(&mut self, conn: ConnId) {
        self.list.retain(|w| w.conn != conn);
    }

    /// Tells every watch about one change, or counts it as skipped for
    /// those with no room; then sends what the lists pending have room for.
    pub(crate) fn notify(
        &mut self,
        kind: ChangeKind,
        session: &SessionInfo,
        next_after: &dyn Fn(Option<u32>) -> Option<SessionInfo>,
    ) {
        for w in &mut self.list {
            if let Some(n) = &mut w.skipped {
                // Counted, and shown by the resync, which sends the state
                // after this change.
                *n = n.saturating_add(1);
            } else {
                let change = Response::Change {
                    kind,
                    session: session.clone(),
                };
                if !w.offer(change, WATCH_QUEUE_BYTES) && w.alive {
                    // The list in progress is superseded by the resync,
                    // which sends every session again.
                    w.skipped = Some(1);
                    w.listing = None;
                }
            }
            w.pump(next_after);
        }
        self.list.retain(|w| w.alive);
    }

    /// Once a second: every session's counters, to each watch that is not
    /// still sending a list (a watch that has not taken the last second's
    /// counters yet gets the rest of those, which are as new), and progress
    /// on pending lists for watches whose clients read again.
    pub(crate) fn tick(&mut self, next_after: &dyn Fn(Option<u32>) -> Option<SessionInfo>) {
        for w in &mut self.list {
            if w.skipped.is_none() && w.listing.is_none() {
                w.listing = Some(Listing {
                    kind: ChangeKind::Counters,
                    after: None,
                    resync: false,
                });
            }
            w.pump(next_after);
        }
        self.list.retain(|w| w.alive);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferret_abi::proto::{Counters, FileMode, SessionState};

    fn session(id: u32, name_len: usize) -> SessionInfo {
        SessionInfo {
            logger_id: id,
            name: "s".repeat(name_len.max(1)),
            state: SessionState::Stopped,
            providers: Vec::new(),
            log_file: String::new(),
            buffer_kib: 64,
            max_buffers: 8,
            flush_timer_ms: 0,
            clock: "monotonic".into(),
            owner_uid: 0,
            started_unix_ns: 0,
            stopped_unix_ns: 0,
            counters: Counters::default(),
            last_error: None,
            min_buffers: 1,
            file_mode: FileMode::RealTime,
            max_file_bytes: 0,
            realtime: false,
            consumers: 0,
            controller: String::new(),
            provider_lost: Vec::new(),
            no_loss: false,
            no_loss_wait_ms: 0,
            files_synced: 0,
        }
    }

    /// Sessions 1..=n, each of about `bytes` encoded bytes.
    fn table(n: u32, bytes: usize) -> impl Fn(Option<u32>) -> Option<SessionInfo> {
        move |after| {
            let id = after.map_or(1, |a| a + 1);
            (id <= n).then(|| session(id, bytes))
        }
    }

    /// What the client would read: everything queued, with each cost
    /// given back as the connection thread gives it back.
    fn drain(rx: &Receiver<StreamItem>) -> Vec<Response> {
        let mut out = Vec::new();
        while let Ok(item) = rx.try_recv() {
            if let StreamItem::Charged { msg, cost, queued } = item {
                queued.fetch_sub(cost, Ordering::AcqRel);
                out.push(*msg);
            }
        }
        out
    }

    fn present_ids(msgs: &[Response]) -> Vec<u32> {
        msgs.iter()
            .filter_map(|m| match m {
                Response::Change {
                    kind: ChangeKind::Present,
                    session,
                } => Some(session.logger_id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_watch_that_stops_reading_holds_at_most_its_budget_and_then_resyncs() {
        let sessions = table(3000, 200);
        let mut w = Watchers::default();
        let rx = w.add(1, &sessions);
        // The first list is sent in parts: no more than the listing share.
        let queued = |w: &Watchers| w.list[0].queued.load(Ordering::Acquire);
        assert!(queued(&w) <= LISTING_BYTES);
        // The client reads nothing while 100,000 changes happen.
        for i in 0..100_000u32 {
            w.notify(ChangeKind::Updated, &session(1 + i % 3000, 200), &sessions);
            assert!(queued(&w) <= WATCH_QUEUE_BYTES);
        }
        let first = drain(&rx);
        let taken = first.len() as u64;
        assert!(
            first.iter().all(|m| matches!(m, Response::Change { .. })),
            "no marker before the resync starts"
        );
        // The client reads again: the next tick starts the resync with the
        // number skipped; queued plus skipped is every change and list entry.
        w.tick(&sessions);
        let mut msgs = drain(&rx);
        let Some(Response::WatchLagged { skipped }) = msgs.first().cloned() else {
            panic!("resync starts with WatchLagged: {:?}", msgs.first());
        };
        let listed_before = present_ids(&first).len() as u64;
        assert_eq!(taken - listed_before + skipped, 100_000);
        while !matches!(msgs.last(), Some(Response::WatchResynced)) {
            w.tick(&sessions);
            let more = drain(&rx);
            assert!(!more.is_empty(), "the resync makes progress");
            msgs.extend(more);
        }
        assert_eq!(present_ids(&msgs), (1..=3000).collect::<Vec<_>>());
        // Lagged again, then the client reads: the next change itself
        // starts the resync, without waiting for a tick, and is counted.
        let mut n = 0u64;
        while w.list[0].skipped.is_none() {
            w.notify(ChangeKind::Updated, &session(1, 200), &sessions);
            n += 1;
        }
        let queued_changes = drain(&rx).len() as u64;
        w.notify(ChangeKind::Updated, &session(1, 200), &sessions);
        let msgs = drain(&rx);
        assert_eq!(
            msgs.first(),
            Some(&Response::WatchLagged { skipped: 2 }),
            "the change that lagged it and the one after"
        );
        assert_eq!(queued_changes + 2, n + 1);
        let mut msgs = msgs;
        while !matches!(msgs.last(), Some(Response::WatchResynced)) {
            w.tick(&sessions);
            msgs.extend(drain(&rx));
        }
        // Back to normal: the next change is queued as it is.
        w.notify(ChangeKind::State, &session(7, 10), &sessions);
        let next = drain(&rx);
        assert!(matches!(
            next.first(),
            Some(Response::Change {
                kind: ChangeKind::State,
                ..
            })
        ));
    }

    #[test]
    fn a_reading_watch_gets_the_whole_list_once_and_every_change() {
        let sessions = table(5000, 300);
        let mut w = Watchers::default();
        let rx = w.add(1, &sessions);
        let mut msgs = drain(&rx);
        let mut changes = 0;
        while present_ids(&msgs).len() < 5000 {
            w.notify(ChangeKind::Updated, &session(1, 300), &sessions);
            changes += 1;
            msgs.extend(drain(&rx));
        }
        let updates = msgs
            .iter()
            .filter(|m| {
                matches!(
                    m,
                    Response::Change {
                        kind: ChangeKind::Updated,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(updates, changes);
        assert_eq!(present_ids(&msgs), (1..=5000).collect::<Vec<_>>());
        assert!(
            !msgs
                .iter()
                .any(|m| matches!(m, Response::WatchLagged { .. }))
        );
    }

    #[test]
    fn a_watch_whose_client_went_away_is_dropped() {
        let sessions = table(2, 10);
        let mut w = Watchers::default();
        let rx = w.add(1, &sessions);
        drop(rx);
        // The next message to send finds the connection gone.
        w.tick(&sessions);
        assert!(w.is_empty());
    }
}
