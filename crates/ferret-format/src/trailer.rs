//! The trailer: a session's final counters (docs/FORMAT.md, "Trailer").

/// The counters a clean stop records, in TRAILER record order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trailer {
    /// Events written to the session's buffers.
    pub events: u64,
    /// Events lost, all reasons.
    pub events_lost: u64,
    /// Lost because a provider ring was full.
    pub lost_ring_full: u64,
    /// Lost because no buffer was free.
    pub lost_no_buffer: u64,
    /// Lost for other reasons.
    pub lost_other: u64,
    /// Data buffers written (the trailer not included).
    pub buffers_written: u64,
    /// Buffers that failed to be written.
    pub log_buffers_lost: u64,
    /// Clock ticks at the stop anchor.
    pub end_ticks: u64,
    /// CLOCK_MONOTONIC nanoseconds at the stop anchor.
    pub end_mono_ns: u64,
    /// Nanoseconds since the UNIX epoch at the stop anchor.
    pub end_unix_ns: u64,
}

impl Trailer {
    /// The values in record order.
    pub fn to_values(&self) -> Vec<u64> {
        vec![
            self.events,
            self.events_lost,
            self.lost_ring_full,
            self.lost_no_buffer,
            self.lost_other,
            self.buffers_written,
            self.log_buffers_lost,
            self.end_ticks,
            self.end_mono_ns,
            self.end_unix_ns,
        ]
    }

    /// Adds the trailer of a later session that wrote into the same file
    /// (an appended file holds one trailer per session that stopped
    /// cleanly): counters add up, saturating because they come from the
    /// file, and the stop anchor becomes the later session's.
    pub fn add_session(&mut self, later: &Trailer) {
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut self.events, later.events);
        add(&mut self.events_lost, later.events_lost);
        add(&mut self.lost_ring_full, later.lost_ring_full);
        add(&mut self.lost_no_buffer, later.lost_no_buffer);
        add(&mut self.lost_other, later.lost_other);
        add(&mut self.buffers_written, later.buffers_written);
        add(&mut self.log_buffers_lost, later.log_buffers_lost);
        self.end_ticks = later.end_ticks;
        self.end_mono_ns = later.end_mono_ns;
        self.end_unix_ns = later.end_unix_ns;
    }

    /// Reads the values of a TRAILER record; missing values read as 0 and
    /// values this version does not know are ignored.
    pub fn from_values(v: &[u64]) -> Trailer {
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Trailer {
            events: at(0),
            events_lost: at(1),
            lost_ring_full: at(2),
            lost_no_buffer: at(3),
            lost_other: at(4),
            buffers_written: at(5),
            log_buffers_lost: at(6),
            end_ticks: at(7),
            end_mono_ns: at(8),
            end_unix_ns: at(9),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_add_their_counters_and_keep_the_last_stop() {
        let mut sum = Trailer {
            events: 5,
            events_lost: u64::MAX - 1,
            buffers_written: 2,
            end_unix_ns: 10,
            ..Trailer::default()
        };
        sum.add_session(&Trailer {
            events: 7,
            events_lost: 9,
            buffers_written: 3,
            end_ticks: 1,
            end_mono_ns: 2,
            end_unix_ns: 20,
            ..Trailer::default()
        });
        assert_eq!(sum.events, 12);
        assert_eq!(sum.events_lost, u64::MAX);
        assert_eq!(sum.buffers_written, 5);
        assert_eq!(
            (sum.end_ticks, sum.end_mono_ns, sum.end_unix_ns),
            (1, 2, 20)
        );
    }
}
