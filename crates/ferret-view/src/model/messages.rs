//! The messages the pane shows: one line per event, the bounded store of
//! each session (a ring with sequence numbers, counting what it dropped and
//! what the source missed), and the model's keeping of those stores while
//! another session or a file is shown, within a cap on how many are kept.

use std::collections::VecDeque;

use super::{Model, RowKey};

/// The most messages the store keeps; older ones are dropped first, and
/// counted, so that a viewer left open on a busy session stays bounded.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// The most sessions whose messages are kept (and streamed) at once. With
/// [`DEFAULT_CAPACITY`] per session this bounds the viewer at 800,000
/// messages; the store of the session shown least recently goes first.
pub const DEFAULT_MAX_STORES: usize = 8;

/// One line of the message pane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub timestamp_ns: u64,
    pub provider: String,
    /// The event's name, or what the line reports (`LOST`, `ENDED`).
    pub event: String,
    /// 1 (critical) to 5 (verbose); 0 for lines that are not events.
    pub level: u8,
    pub pid: u32,
    pub tid: u32,
    /// `name=value` pairs, as `ferret fmt` prints them.
    pub fields: String,
}

/// A bounded ring of messages with sequence numbers, so that positions
/// (the cursor) stay valid while old messages are dropped.
#[derive(Clone, Debug)]
pub struct MessageStore {
    ring: VecDeque<Message>,
    capacity: usize,
    /// The sequence number of `ring[0]`.
    first_seq: u64,
    /// Events the source could not deliver (real-time loss), as reported.
    pub missed: u64,
    /// Messages dropped from the front to stay within the capacity.
    pub evicted: u64,
}

impl MessageStore {
    pub fn new(capacity: usize) -> MessageStore {
        MessageStore {
            ring: VecDeque::new(),
            capacity: capacity.max(1),
            first_seq: 0,
            missed: 0,
            evicted: 0,
        }
    }

    pub fn push(&mut self, m: Message) {
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
            self.first_seq += 1;
            self.evicted += 1;
        }
        self.ring.push_back(m);
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn get(&self, seq: u64) -> Option<&Message> {
        seq.checked_sub(self.first_seq)
            .and_then(|i| self.ring.get(i as usize))
    }

    /// Sequence numbers and messages, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, &Message)> {
        let first = self.first_seq;
        self.ring
            .iter()
            .enumerate()
            .map(move |(i, m)| (first + i as u64, m))
    }
}

// The stores are kept here, by the model, rather than by the I/O layer, so
// that switching rows is a plain value change the tests can drive.
impl Model {
    /// Shows messages from a new source that is no session (a file),
    /// forgetting the old ones; a session's store is kept for its return.
    pub fn set_source(&mut self, source: String) {
        self.park_shown();
        self.messages = MessageStore::new(self.capacity);
        self.source = source;
        self.cursor = None;
    }

    /// Shows a session's messages: what its store kept, if it has one, or
    /// an empty new store. Returns the sessions whose stores were dropped
    /// to make room, whose streams the caller should close.
    pub fn show_session(&mut self, key: RowKey, source: String) -> Vec<RowKey> {
        self.source = source;
        if self.shown.as_ref() == Some(&key) {
            self.touch(&key);
            return Vec::new();
        }
        self.park_shown();
        let (store, cursor) = self
            .parked
            .remove(&key)
            .unwrap_or_else(|| (MessageStore::new(self.capacity), None));
        self.messages = store;
        self.cursor = cursor;
        self.shown = Some(key.clone());
        self.touch(&key);
        let mut dropped = Vec::new();
        while self.recency.len() > self.max_stores.max(1) {
            // The shown session is the most recent, so never dropped here.
            let old = self.recency.remove(0);
            self.parked.remove(&old);
            self.stores_dropped += 1;
            dropped.push(old);
        }
        dropped
    }

    /// Whether the session's messages are kept, shown or not.
    pub fn has_store(&self, key: &RowKey) -> bool {
        self.shown.as_ref() == Some(key) || self.parked.contains_key(key)
    }

    /// Sessions with a store, the one shown least recently first.
    // Only the tests ask; the viewer learns of dropped stores from
    // `show_session`.
    #[cfg(test)]
    pub fn stored(&self) -> &[RowKey] {
        &self.recency
    }

    /// Drops a session's store (it left the list).
    pub fn forget(&mut self, key: &RowKey) {
        self.parked.remove(key);
        self.recency.retain(|k| k != key);
        if self.shown.as_ref() == Some(key) {
            // Its messages stay on screen until another row is chosen, but
            // are no longer the session's: nothing adds to them.
            self.shown = None;
        }
    }

    fn touch(&mut self, key: &RowKey) {
        self.recency.retain(|k| k != key);
        self.recency.push(key.clone());
    }

    fn park_shown(&mut self) {
        if let Some(key) = self.shown.take() {
            let store = std::mem::replace(&mut self.messages, MessageStore::new(1));
            self.parked.insert(key, (store, self.cursor));
        }
    }

    /// The store a session's messages go to, if it is kept.
    fn store_of(&mut self, key: &RowKey) -> Option<&mut MessageStore> {
        if self.shown.as_ref() == Some(key) {
            Some(&mut self.messages)
        } else {
            self.parked.get_mut(key).map(|(s, _)| s)
        }
    }

    /// Adds a session's messages to its store, shown or not; messages of a
    /// session without one are dropped.
    pub fn push_to(&mut self, key: &RowKey, batch: Vec<Message>, missed: u64) {
        if let Some(store) = self.store_of(key) {
            for m in batch {
                store.push(m);
            }
            store.missed = store.missed.max(missed);
        }
    }

    pub fn push_message(&mut self, m: Message) {
        self.messages.push(m);
    }

    /// Records the source's running total of missed events.
    pub fn set_missed(&mut self, total: u64) {
        self.messages.missed = self.messages.missed.max(total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{message, session};
    use ferret_abi::proto::{ChangeKind, SessionState};

    #[test]
    fn the_store_is_bounded_and_counts_what_it_dropped_and_missed() {
        let mut s = MessageStore::new(3);
        for i in 0..5 {
            s.push(message(i, "P", 4, &format!("seq={i}")));
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.evicted, 2);
        assert_eq!(s.get(1), None);
        assert_eq!(s.get(2).unwrap().fields, "seq=2");
        let mut m = Model::new(true);
        m.set_missed(10);
        m.set_missed(4);
        assert_eq!(m.messages.missed, 10);
    }

    fn key(id: u32) -> RowKey {
        RowKey::of(&session(id, "s", SessionState::Running))
    }

    #[test]
    fn each_session_keeps_its_messages_while_another_is_shown() {
        let mut m = Model::new(true);
        assert!(m.show_session(key(1), "live: a".into()).is_empty());
        m.push_to(&key(1), vec![message(0, "A", 4, "a0")], 0);
        m.toggle_follow();
        let paused_at = m.cursor;
        assert!(m.show_session(key(2), "live: b".into()).is_empty());
        assert_eq!(m.messages.len(), 0);
        assert!(m.following());
        // Messages of the session switched away from still arrive.
        m.push_to(&key(1), vec![message(1, "A", 4, "a1")], 3);
        m.push_to(&key(2), vec![message(0, "B", 4, "b0")], 0);
        assert_eq!(m.messages.len(), 1);
        m.show_session(key(1), "live: a".into());
        let fields: Vec<_> = m.messages.iter().map(|(_, x)| x.fields.clone()).collect();
        assert_eq!(fields, ["a0", "a1"]);
        assert_eq!(m.messages.missed, 3);
        assert_eq!(m.cursor, paused_at, "the pause is the session's own");
        assert_eq!(m.source, "live: a");
        // A file parks the session's store rather than dropping it.
        m.set_source("web.ferret".into());
        assert_eq!((m.messages.len(), m.shown.clone()), (0, None));
        assert!(m.has_store(&key(1)) && m.has_store(&key(2)));
        m.show_session(key(2), "live: b".into());
        assert_eq!(m.messages.len(), 1);
    }

    #[test]
    fn stores_are_bounded_per_session_and_in_number() {
        let mut m = Model::new(true);
        m.capacity = 2;
        m.max_stores = 2;
        m.show_session(key(1), "live: 1".into());
        m.push_to(
            &key(1),
            (0..5).map(|i| message(i, "A", 4, "x")).collect(),
            0,
        );
        assert_eq!((m.messages.len(), m.messages.evicted), (2, 3));
        m.show_session(key(2), "live: 2".into());
        // Showing 1 again makes 2 the least recent, so 3 displaces 2.
        m.show_session(key(1), "live: 1".into());
        assert_eq!(m.show_session(key(3), "live: 3".into()), [key(2)]);
        assert_eq!(m.stores_dropped, 1);
        assert_eq!(m.stored(), [key(1), key(3)]);
        // Messages for a dropped store go nowhere; the pane is untouched.
        m.push_to(&key(2), vec![message(9, "B", 4, "late")], 0);
        assert!(!m.has_store(&key(2)));
        assert_eq!(m.messages.len(), 0);
        m.show_session(key(1), "live: 1".into());
        assert_eq!(m.messages.evicted, 3);
    }

    #[test]
    fn a_removed_session_loses_its_store() {
        let mut m = Model::new(true);
        m.apply(
            ChangeKind::Present,
            session(1, "a", SessionState::Running),
            0,
        );
        m.apply(
            ChangeKind::Present,
            session(2, "b", SessionState::Running),
            0,
        );
        m.show_session(key(1), "live: a".into());
        m.show_session(key(2), "live: b".into());
        m.apply(
            ChangeKind::Removed,
            session(1, "a", SessionState::Stopped),
            0,
        );
        assert!(!m.has_store(&key(1)));
        assert_eq!(m.stored(), [key(2)]);
    }
}
