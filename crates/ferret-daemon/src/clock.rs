//! The timestamp clock providers use, and how its ticks map to time.

use std::time::Duration;

use ferret_abi::shm::{CLOCK_MONOTONIC, CLOCK_TSC};
use ferret_format::ClockInfo;
use rustix::time::ClockId;

fn ns(id: ClockId) -> u64 {
    let t = rustix::time::clock_gettime(id);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

#[cfg(target_arch = "x86_64")]
fn tsc() -> u64 {
    // SAFETY: RDTSC has no preconditions.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn tsc() -> u64 {
    ns(ClockId::Monotonic)
}

/// The daemon's clock: which one providers read, and its rate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub(crate) kind: u32,
    /// An anchor taken at start-up.
    start: Anchor,
    /// Ticks per second measured at start-up.
    start_rate: u64,
}

/// A tick count taken together with CLOCK_MONOTONIC and CLOCK_REALTIME.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub(crate) ticks: u64,
    pub(crate) mono_ns: u64,
    pub(crate) unix_ns: u64,
}

/// True if this CPU has a time-stamp counter that runs at a constant rate in
/// every power state, which the kernel reports as `constant_tsc` and `nonstop_tsc`.
fn invariant_tsc() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return false;
    };
    let flags = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    has("constant_tsc") && has("nonstop_tsc")
}

impl Clock {
    /// Chooses the clock (the TSC when invariant, unless `FERRET_CLOCK=monotonic`)
    /// and measures the TSC's rate over a short interval.
    pub(crate) fn detect() -> Clock {
        let forced = std::env::var("FERRET_CLOCK").ok();
        let use_tsc = match forced.as_deref() {
            Some("monotonic") => false,
            Some("tsc") => cfg!(target_arch = "x86_64"),
            _ => invariant_tsc(),
        };
        let kind = if use_tsc { CLOCK_TSC } else { CLOCK_MONOTONIC };
        let mut clock = Clock {
            kind,
            start: Anchor {
                ticks: 0,
                mono_ns: 0,
                unix_ns: 0,
            },
            start_rate: 1_000_000_000,
        };
        clock.start = clock.anchor();
        if use_tsc {
            std::thread::sleep(Duration::from_millis(20));
            clock.start_rate = clock.rate_since(&clock.start).unwrap_or(1_000_000_000);
        }
        clock
    }

    /// The current time in this clock's ticks, as providers read it.
    pub(crate) fn now_ticks(&self) -> u64 {
        if self.kind == CLOCK_TSC {
            tsc()
        } else {
            ns(ClockId::Monotonic)
        }
    }

    /// "tsc" or "monotonic".
    pub(crate) fn name(&self) -> &'static str {
        if self.kind == CLOCK_TSC {
            "tsc"
        } else {
            "monotonic"
        }
    }

    /// Reads ticks, CLOCK_MONOTONIC and CLOCK_REALTIME as close together as it can.
    pub(crate) fn anchor(&self) -> Anchor {
        if self.kind != CLOCK_TSC {
            let mono = ns(ClockId::Monotonic);
            return Anchor {
                ticks: mono,
                mono_ns: mono,
                unix_ns: ns(ClockId::Realtime),
            };
        }
        // Take the tightest of a few tries, and the midpoint of the ticks
        // read around the two clock reads.
        let mut best: Option<(u64, Anchor)> = None;
        for _ in 0..5 {
            let t0 = tsc();
            let mono_ns = ns(ClockId::Monotonic);
            let unix_ns = ns(ClockId::Realtime);
            let t1 = tsc();
            let width = t1.wrapping_sub(t0);
            let a = Anchor {
                ticks: t0 + width / 2,
                mono_ns,
                unix_ns,
            };
            if best.is_none_or(|(w, _)| width < w) {
                best = Some((width, a));
            }
        }
        best.map(|(_, a)| a).unwrap_or(Anchor {
            ticks: tsc(),
            mono_ns: ns(ClockId::Monotonic),
            unix_ns: ns(ClockId::Realtime),
        })
    }

    fn rate_since(&self, from: &Anchor) -> Option<u64> {
        let now = self.anchor();
        let ticks = now.ticks.checked_sub(from.ticks)?;
        let nanos = now.mono_ns.checked_sub(from.mono_ns)?;
        if nanos == 0 {
            return None;
        }
        Some((ticks as u128 * 1_000_000_000 / nanos as u128) as u64)
    }

    /// A clock description for a new log file: a fresh anchor and the best
    /// rate known (measured over the daemon's whole life once it has run
    /// for a second).
    pub(crate) fn info(&self) -> ClockInfo {
        let a = self.anchor();
        let rate = if self.kind != CLOCK_TSC {
            1_000_000_000
        } else if a.mono_ns.saturating_sub(self.start.mono_ns) >= 1_000_000_000 {
            let ticks = a.ticks.saturating_sub(self.start.ticks) as u128;
            let nanos = (a.mono_ns - self.start.mono_ns) as u128;
            (ticks * 1_000_000_000 / nanos) as u64
        } else {
            self.start_rate
        };
        ClockInfo {
            kind: self.kind,
            anchor_ticks: a.ticks,
            anchor_mono_ns: a.mono_ns,
            anchor_unix_ns: a.unix_ns,
            ticks_per_sec: rate.max(1),
        }
    }
}

/// Nanoseconds since the UNIX epoch now.
pub(crate) fn unix_now_ns() -> u64 {
    ns(ClockId::Realtime)
}
