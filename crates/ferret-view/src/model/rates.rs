//! The event-rate history of one session row: events per second over the
//! last minute, built from the cumulative counter the watch feed reports,
//! and the sparkline the session list draws from it.

use std::collections::VecDeque;

/// Seconds of history behind each row's sparkline.
pub const RATE_SECONDS: usize = 60;

/// Events per second over the last minute, one bucket a second, built from
/// the cumulative event counter the watch feed reports each second.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateHistory {
    buckets: VecDeque<u64>,
    last_events: Option<u64>,
    last_second: u64,
}

impl RateHistory {
    /// Records the cumulative `events` seen at `second` (any monotonic
    /// count of seconds). The increase since the previous sample goes into
    /// the bucket of `second`; seconds with no sample become empty buckets.
    pub fn record(&mut self, second: u64, events: u64) {
        let Some(prev) = self.last_events else {
            // The first sample only sets the base: the events before it
            // happened at unknown times.
            self.last_events = Some(events);
            self.last_second = second;
            return;
        };
        // A counter that goes back means a new session reused the row's
        // identity; start counting from it.
        let delta = events.saturating_sub(prev);
        self.last_events = Some(events);
        if second <= self.last_second && !self.buckets.is_empty() {
            if let Some(b) = self.buckets.back_mut() {
                *b += delta;
            }
            return;
        }
        let gap = second.saturating_sub(self.last_second).max(1);
        for _ in 1..gap.min(RATE_SECONDS as u64) {
            self.push(0);
        }
        self.push(delta);
        self.last_second = second;
    }

    fn push(&mut self, v: u64) {
        if self.buckets.len() == RATE_SECONDS {
            self.buckets.pop_front();
        }
        self.buckets.push_back(v);
    }

    /// The newest bucket: events in the last second.
    pub fn rate(&self) -> u64 {
        self.buckets.back().copied().unwrap_or(0)
    }

    /// The buckets, oldest first (the sparkline reads them directly).
    #[cfg(test)]
    pub fn buckets(&self) -> impl Iterator<Item = u64> + '_ {
        self.buckets.iter().copied()
    }

    /// The newest `width` buckets as block characters scaled to their
    /// maximum, right-aligned in `width` cells so that time flows leftwards
    /// from the present at the right edge.
    pub fn sparkline(&self, width: usize) -> String {
        const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
        let n = self.buckets.len().min(width);
        let recent: Vec<u64> = self
            .buckets
            .iter()
            .skip(self.buckets.len() - n)
            .copied()
            .collect();
        let max = recent.iter().copied().max().unwrap_or(0);
        let mut s = " ".repeat(width - n);
        for v in recent {
            s.push(if max == 0 || v == 0 {
                ' '
            } else {
                // Any non-zero second shows at least the lowest bar, so a
                // trickle of events is still visible next to a burst.
                BARS[((v * 7) / max) as usize]
            });
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_history_makes_per_second_buckets_from_cumulative_counters() {
        let mut r = RateHistory::default();
        r.record(10, 100);
        assert_eq!(r.rate(), 0);
        r.record(11, 150);
        r.record(12, 450);
        assert_eq!(r.buckets().collect::<Vec<_>>(), [50, 300]);
        // Two samples in one second add up.
        r.record(12, 460);
        assert_eq!(r.rate(), 310);
        // A silent gap becomes empty buckets.
        r.record(15, 460);
        assert_eq!(r.buckets().collect::<Vec<_>>(), [50, 310, 0, 0, 0]);
        for s in 16..200 {
            r.record(s, 460 + s);
        }
        assert_eq!(r.buckets().count(), RATE_SECONDS);
        assert_eq!(r.rate(), 1);
    }

    #[test]
    fn sparkline_scales_to_the_maximum_and_fills_from_the_right() {
        let mut r = RateHistory::default();
        r.record(0, 0);
        for (s, total) in [(1, 10), (2, 10), (3, 90), (4, 100)] {
            r.record(s, total);
        }
        assert_eq!(r.sparkline(6), "  ▁ █▁");
        assert_eq!(RateHistory::default().sparkline(3), "   ");
    }
}
