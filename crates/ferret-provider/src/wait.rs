//! No-loss mode: what a writer does when its ring is full and a session
//! that enables its provider would rather slow the program down than lose
//! events. It waits for the daemon to make room, bounded by the wait the
//! daemon published in the provider's enable slot, then drops and counts as
//! usual. None of this runs while the ring has room.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ferret_abi::shm::{EnableSlot, MAX_NO_LOSS_WAIT_US};

use crate::link::GENERATION;
use crate::region::{Region, RingHandle};

/// Rounds of spinning before yielding: the drain often frees room within
/// microseconds of being woken.
const SPINS: u32 = 64;
/// Rounds of yielding before sleeping.
const YIELDS: u32 = 16;
/// The first and the longest sleep between looks at the ring.
const FIRST_SLEEP: Duration = Duration::from_micros(20);
const LONGEST_SLEEP: Duration = Duration::from_millis(1);

/// Waits until `ring` has `need` bytes free behind its head, at most as long
/// as `words` allows. True if it has room now; false if the wait is off,
/// ran out, or became pointless (the daemon went away or the no-loss
/// session stopped), in which case the caller drops the event.
///
/// A ring whose wait ran out is not waited for again until the daemon has
/// moved its tail: a stalled daemon costs each writing thread one wait,
/// not one wait per event.
#[cold]
#[inline(never)]
pub(crate) fn for_room(
    region: &Region,
    ring: &mut RingHandle,
    words: &EnableSlot,
    need: u64,
    generation: u64,
) -> bool {
    let bound = words
        .no_loss_wait_us
        .load(Ordering::Relaxed)
        .min(MAX_NO_LOSS_WAIT_US);
    let cap = ring.capacity;
    // A record larger than the whole ring never fits, however long we wait.
    if bound == 0 || need > cap || ring.stalled_at == Some(ring.cached_tail) {
        return false;
    }
    let deadline = Instant::now() + Duration::from_micros(bound);
    let mut sleep = FIRST_SLEEP;
    region.wake_drain();
    let mut round = 0u32;
    loop {
        round = round.saturating_add(1);
        if round <= SPINS {
            std::hint::spin_loop();
        } else if round <= SPINS + YIELDS {
            std::thread::yield_now();
        } else {
            let left = deadline.saturating_duration_since(Instant::now());
            std::thread::sleep(sleep.min(left));
            sleep = (sleep * 2).min(LONGEST_SLEEP);
            // The drain may have gone to sleep since the last look.
            region.wake_drain();
        }
        ring.cached_tail = ring.desc().tail().load(Ordering::Acquire);
        if ring.head.wrapping_add(need).wrapping_sub(ring.cached_tail) <= cap {
            ring.stalled_at = None;
            return true;
        }
        // The daemon went away (the link bumps the generation and zeroes
        // the table) or no session asks for no loss any more.
        if GENERATION.load(Ordering::Acquire) != generation
            || words.no_loss_wait_us.load(Ordering::Relaxed) == 0
        {
            return false;
        }
        if Instant::now() >= deadline {
            ring.stalled_at = Some(ring.cached_tail);
            return false;
        }
    }
}
