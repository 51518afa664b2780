//! Turning event timestamps (clock ticks) into wall-clock time.

use crate::header::ClockInfo;
use crate::trailer::Trailer;

/// Converts ticks to nanoseconds since the UNIX epoch.
///
/// With a trailer whose stop anchor is at least a second after the start
/// anchor, the tick rate is measured over the whole session (start and stop
/// anchors against CLOCK_MONOTONIC) rather than taken from the short
/// calibration done at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timebase {
    anchor_ticks: u64,
    anchor_unix_ns: u64,
    /// Nanoseconds per tick, `num / den`, as a whole part and a 64-bit
    /// fraction rounded up: a decoder converts every event's time, and a
    /// multiply costs a few cycles where a 128-bit division costs dozens.
    /// The result is exact when the ratio is (a nanosecond clock, or a rate
    /// dividing 10^9 by a power of two) and otherwise within a nanosecond of
    /// `ticks * num / den` rounded down.
    whole: u64,
    fraction: u64,
}

impl Timebase {
    /// A timebase from the header's clock and, when present, the trailer.
    pub fn new(clock: &ClockInfo, trailer: Option<&Trailer>) -> Timebase {
        let mut num = 1_000_000_000u128;
        let mut den = clock.ticks_per_sec.max(1) as u128;
        if let Some(t) = trailer {
            let ticks = t.end_ticks.wrapping_sub(clock.anchor_ticks);
            let ns = t.end_mono_ns.wrapping_sub(clock.anchor_mono_ns);
            let plausible =
                t.end_ticks > clock.anchor_ticks && t.end_mono_ns > clock.anchor_mono_ns;
            if plausible && ns >= 1_000_000_000 {
                num = ns as u128;
                den = ticks as u128;
            }
        }
        let whole = (num / den).min(u64::MAX as u128) as u64;
        // `num % den < den <= u64::MAX`, so the shift cannot overflow.
        let rest = (num % den) << 64;
        let fraction = (rest.div_ceil(den)).min(u64::MAX as u128) as u64;
        Timebase {
            anchor_ticks: clock.anchor_ticks,
            anchor_unix_ns: clock.anchor_unix_ns,
            whole,
            fraction,
        }
    }

    /// Nanoseconds since the UNIX epoch at `ticks`.
    pub fn unix_ns(&self, ticks: u64) -> u64 {
        let (delta, negative) = if ticks >= self.anchor_ticks {
            (ticks - self.anchor_ticks, false)
        } else {
            (self.anchor_ticks - ticks, true)
        };
        let ns = (delta as u128 * self.whole as u128
            + ((delta as u128 * self.fraction as u128) >> 64))
            .min(u64::MAX as u128) as u64;
        if negative {
            self.anchor_unix_ns.saturating_sub(ns)
        } else {
            self.anchor_unix_ns.saturating_add(ns)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> ClockInfo {
        ClockInfo {
            kind: 2,
            anchor_ticks: 1_000,
            anchor_mono_ns: 50,
            anchor_unix_ns: 1_700_000_000_000_000_000,
            ticks_per_sec: 2_000_000_000,
        }
    }

    #[test]
    fn ticks_convert_around_the_anchor() {
        let tb = Timebase::new(&clock(), None);
        assert_eq!(tb.unix_ns(1_000), 1_700_000_000_000_000_000);
        assert_eq!(tb.unix_ns(3_000), 1_700_000_000_000_001_000);
        assert_eq!(tb.unix_ns(0), 1_700_000_000_000_000_000 - 500);
    }

    proptest::proptest! {
        #[test]
        fn conversion_is_within_a_nanosecond_of_the_exact_ratio(
            rate in 1_000_000u64..10_000_000_000,
            delta in 0u64..(1 << 50),
        ) {
            let c = ClockInfo { ticks_per_sec: rate, ..clock() };
            let tb = Timebase::new(&c, None);
            let exact = (delta as u128 * 1_000_000_000 / rate as u128) as u64;
            let got = tb.unix_ns(c.anchor_ticks + delta) - c.anchor_unix_ns;
            proptest::prop_assert!(got == exact || got == exact + 1, "{} vs {}", got, exact);
        }
    }

    #[test]
    fn a_long_session_measures_its_own_rate() {
        let t = Trailer {
            end_ticks: 1_000 + 4_000_000_000,
            end_mono_ns: 50 + 2_000_000_100,
            ..Trailer::default()
        };
        let tb = Timebase::new(&clock(), Some(&t));
        assert_eq!(
            tb.unix_ns(1_000 + 4_000_000_000),
            1_700_000_000_000_000_000 + 2_000_000_100
        );
    }
}
