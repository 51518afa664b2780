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
