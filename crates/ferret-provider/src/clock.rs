//! Event timestamps.
//!
//! On x86-64 with an invariant time-stamp counter the daemon tells providers
//! to read the TSC (about 10 ns here, against about 23 ns for
//! `clock_gettime`); the log file records how ticks map to wall-clock time.
//! Elsewhere timestamps are CLOCK_MONOTONIC nanoseconds.

use ferret_abi::shm::CLOCK_TSC;

/// Reads the clock the region asked for.
#[inline(always)]
pub(crate) fn now(clock: u32) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if clock == CLOCK_TSC {
        // SAFETY: RDTSC has no preconditions; the daemon only selects the TSC
        // clock on x86-64 machines whose CPUs report an invariant TSC.
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
    let _ = clock;
    monotonic_ns()
}

/// CLOCK_MONOTONIC in nanoseconds.
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}
