//! Commands that the drain applies only once the rings they depend on have
//! been consumed up to where they stood when the command came.
//!
//! A flush, a stop, a switch of log file, a snapshot, a narrowing of the
//! routes and the close of a provider's region all mean "after everything
//! committed so far". The drain used to get there by draining every ring at
//! once, waiting for buffers where a session had none; one session whose log
//! file stalled then held every command of every session for up to its
//! stall limit. Instead, each such command records, for each ring that can
//! hold records it depends on, how many complete passes the drain had made
//! over that ring, and waits in this queue until each of those rings has had
//! one more. Commands wait only for their own rings, and only behind earlier
//! commands that concern one of the same sessions (or, for route changes,
//! behind earlier route changes), so that each session sees its commands in
//! the order they were sent and nobody waits for a session that is not
//! theirs.

use std::collections::VecDeque;

use ferret_session::{RegionId, SessionKey};

/// A ring, and how many complete passes the drain had made over it when a
/// command came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RingMark {
    pub(crate) region: RegionId,
    pub(crate) ring: usize,
    pub(crate) passes: u64,
}

/// One held command.
struct Held<A> {
    /// Rings that must have had another complete pass.
    waits: Vec<RingMark>,
    /// The sessions the command concerns.
    sessions: Vec<SessionKey>,
    /// Whether it changes the routes: route changes apply in order.
    routes: bool,
    action: A,
}

impl<A> Held<A> {
    /// Whether `self`, which came first, must be applied before `later`.
    fn precedes(&self, later: &Held<A>) -> bool {
        (self.routes && later.routes) || self.sessions.iter().any(|k| later.sessions.contains(k))
    }
}

/// Held commands in the order they came.
pub(crate) struct HeldQueue<A> {
    items: VecDeque<Held<A>>,
}

impl<A> Default for HeldQueue<A> {
    fn default() -> Self {
        HeldQueue {
            items: VecDeque::new(),
        }
    }
}

impl<A> HeldQueue<A> {
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Holds `action` until every ring in `waits` has had another pass and
    /// every earlier command it must follow has been applied.
    pub(crate) fn hold(
        &mut self,
        waits: Vec<RingMark>,
        sessions: Vec<SessionKey>,
        routes: bool,
        action: A,
    ) {
        self.items.push_back(Held {
            waits,
            sessions,
            routes,
            action,
        });
    }

    /// The actions still held, oldest first.
    pub(crate) fn actions(&self) -> impl Iterator<Item = &A> {
        self.items.iter().map(|h| &h.action)
    }

    /// Whether a command that does not concern session `key` is waiting.
    pub(crate) fn waits_for_others_than(&self, key: SessionKey) -> bool {
        self.items.iter().any(|h| !h.sessions.contains(&key))
    }

    /// Takes the oldest command that may be applied now. `passes` gives a
    /// ring's complete passes so far, or `None` when its region is gone
    /// (nothing more can come from it).
    pub(crate) fn pop_ready(
        &mut self,
        passes: impl Fn(RegionId, usize) -> Option<u64>,
    ) -> Option<A> {
        for i in 0..self.items.len() {
            let item = &self.items[i];
            let moved_on = item
                .waits
                .iter()
                .all(|m| passes(m.region, m.ring).is_none_or(|p| p > m.passes));
            if moved_on && !self.items.iter().take(i).any(|e| e.precedes(item)) {
                return self.items.remove(i).map(|h| h.action);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn mark(region: u64, ring: usize, passes: u64) -> RingMark {
        RingMark {
            region: RegionId(region),
            ring,
            passes,
        }
    }

    fn drain_ready(
        q: &mut HeldQueue<&'static str>,
        passes: &HashMap<(u64, usize), u64>,
    ) -> Vec<&'static str> {
        let mut out = Vec::new();
        while let Some(a) = q.pop_ready(|r, i| passes.get(&(r.0, i)).copied()) {
            out.push(a);
        }
        out
    }

    #[test]
    fn a_command_waits_only_for_its_own_rings() {
        let mut q = HeldQueue::default();
        let mut passes = HashMap::from([((1, 0), 5), ((2, 0), 7)]);
        // Session 1's flush waits on a ring of region 1 that is stalled;
        // session 2's flush, sent after it, waits on region 2 only.
        q.hold(vec![mark(1, 0, 5)], vec![SessionKey(1)], false, "flush 1");
        q.hold(vec![mark(2, 0, 7)], vec![SessionKey(2)], false, "flush 2");
        assert!(drain_ready(&mut q, &passes).is_empty());
        passes.insert((2, 0), 8);
        assert_eq!(drain_ready(&mut q, &passes), ["flush 2"]);
        passes.insert((1, 0), 6);
        assert_eq!(drain_ready(&mut q, &passes), ["flush 1"]);
        assert!(q.is_empty());
    }

    #[test]
    fn commands_of_one_session_apply_in_order() {
        let mut q = HeldQueue::default();
        let mut passes = HashMap::from([((1, 0), 0), ((2, 0), 0)]);
        q.hold(vec![mark(1, 0, 0)], vec![SessionKey(1)], false, "flush");
        // The stop needs nothing more than region 2, which has moved on,
        // but it must not overtake the flush of the same session.
        q.hold(vec![mark(2, 0, 0)], vec![SessionKey(1)], false, "stop");
        passes.insert((2, 0), 1);
        assert!(drain_ready(&mut q, &passes).is_empty());
        passes.insert((1, 0), 1);
        assert_eq!(drain_ready(&mut q, &passes), ["flush", "stop"]);
    }

    #[test]
    fn route_changes_apply_in_order_whatever_sessions_they_concern() {
        let mut q = HeldQueue::default();
        let mut passes = HashMap::from([((1, 0), 0)]);
        q.hold(vec![mark(1, 0, 0)], vec![SessionKey(1)], true, "narrow 1");
        q.hold(vec![], vec![SessionKey(2)], true, "narrow 2");
        q.hold(vec![], vec![SessionKey(3)], false, "flush 3");
        assert_eq!(drain_ready(&mut q, &passes), ["flush 3"]);
        passes.insert((1, 0), 1);
        assert_eq!(drain_ready(&mut q, &passes), ["narrow 1", "narrow 2"]);
    }

    #[test]
    fn a_gone_region_holds_nothing_back() {
        let mut q = HeldQueue::default();
        let passes = HashMap::new();
        q.hold(vec![mark(9, 3, 100)], vec![SessionKey(1)], false, "close");
        assert_eq!(drain_ready(&mut q, &passes), ["close"]);
    }

    #[test]
    fn only_commands_of_other_sessions_count_as_waiting_for_others() {
        let mut q: HeldQueue<&str> = HeldQueue::default();
        assert!(!q.waits_for_others_than(SessionKey(1)));
        q.hold(vec![], vec![SessionKey(1)], false, "flush 1");
        assert!(!q.waits_for_others_than(SessionKey(1)));
        assert!(q.waits_for_others_than(SessionKey(2)));
    }

    #[test]
    fn held_actions_are_listed_oldest_first() {
        let mut q = HeldQueue::default();
        q.hold(vec![mark(1, 0, 0)], vec![], true, "a");
        q.hold(vec![mark(1, 0, 0)], vec![], true, "b");
        assert_eq!(q.actions().copied().collect::<Vec<_>>(), ["a", "b"]);
    }
}
