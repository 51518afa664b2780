//! A stopping session's way from STOPPING to STOPPED, decided with no I/O
//! and no clock of its own (the caller says what time it is).
//!
//! A stop disables the session's providers and drains what they committed;
//! the session is STOPPED once its writer has finished (and synced) its log
//! file and every real-time consumer has taken the end of its stream. A
//! consumer that never does holds the session STOPPING only for a grace
//! after the writer finished; its stream still ends after every event.

use std::time::{Duration, Instant};

/// Where one stopping session stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stopping {
    /// When the writer finished the log file.
    writer_done: Option<Instant>,
}

/// What a stopping session may do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopStep {
    /// Not yet: the writer or a consumer is still at work.
    Wait,
    /// Everything is written and every consumer has the end: STOPPED.
    Stopped,
    /// The writer finished `grace` ago and a consumer still has not taken
    /// the end: STOPPED anyway, and say so.
    StoppedPastGrace,
}

impl Stopping {
    /// The writer has finished the log file, at `now`.
    pub fn writer_done(&mut self, now: Instant) {
        self.writer_done.get_or_insert(now);
    }

    /// The next step, with `consumers_waiting` telling whether a consumer
    /// has yet to take the end of the stream.
    pub fn step(&self, consumers_waiting: bool, now: Instant, grace: Duration) -> StopStep {
        match self.writer_done {
            None => StopStep::Wait,
            Some(_) if !consumers_waiting => StopStep::Stopped,
            Some(at) if now.saturating_duration_since(at) >= grace => StopStep::StoppedPastGrace,
            Some(_) => StopStep::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_waits_for_the_writer_then_for_consumers_up_to_the_grace() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(60);
        let mut s = Stopping::default();
        assert_eq!(s.step(false, t0, grace), StopStep::Wait, "writer not done");
        assert_eq!(s.step(true, t0 + grace * 2, grace), StopStep::Wait);
        s.writer_done(t0);
        assert_eq!(s.step(false, t0, grace), StopStep::Stopped);
        assert_eq!(s.step(true, t0 + grace / 2, grace), StopStep::Wait);
        assert_eq!(s.step(true, t0 + grace, grace), StopStep::StoppedPastGrace);
        // A second report keeps the first time.
        s.writer_done(t0 + grace);
        assert_eq!(s.step(true, t0 + grace, grace), StopStep::StoppedPastGrace);
    }
}
