//! Notifications of enable changes, for code that caches what is enabled.
//!
//! The event path never needs this: `Provider::enabled` reads the enable
//! table directly. Bridges from other logging APIs do: `tracing` caches each
//! call site's interest and `log` keeps a global maximum level, and both must
//! be told when a session enables or disables their provider so that
//! disabled call sites stay free and enabled ones are not filtered out.
//!
//! One background thread (`ferret-enables`), started by the first
//! [`on_enable_change`], sleeps on the region's `enable_version` word as a
//! shared futex. The daemon bumps and wakes it whenever it changes a word of
//! the enable table; attaching to or detaching from a daemon changes what is
//! enabled too, and is noticed through the attach generation.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustix::thread::futex;

use crate::link::{GENERATION, global};

pub(crate) type Callback = Box<dyn Fn() + Send + Sync>;

static CALLBACKS: Mutex<Vec<Arc<Callback>>> = Mutex::new(Vec::new());

/// The process id the watcher thread runs in, or 0: a child made by
/// `fork` has no watcher thread even though its parent started one.
static WATCHER_PID: AtomicU32 = AtomicU32::new(0);

/// How long the watcher sleeps on the shared word before it looks again at
/// the attach generation; it bounds how late a detach is noticed.
const WATCH_TIMEOUT: Duration = Duration::from_secs(1);

/// How often the watcher looks for an attach while no daemon is attached.
const DETACHED_POLL: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A callback that panicked must not make every later call panic too.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls `f` whenever what the process's providers have enabled may have
/// changed: a session enabled, disabled or re-filtered one of them, or the
/// process attached to or detached from a daemon. `f` runs on a background
/// thread, also once soon after this call, and should be quick; it reads
/// the new state with [`Provider::enabled`](crate::Provider::enabled).
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use ferret_provider::{Level, Provider};
///
/// static VERBOSE: AtomicBool = AtomicBool::new(false);
/// let provider = Provider::register("MyCompany.Cache");
/// ferret_provider::on_enable_change(move || {
///     VERBOSE.store(provider.enabled(Level::Verbose, 0), Ordering::Relaxed);
/// });
/// ```
pub fn on_enable_change(f: impl Fn() + Send + Sync + 'static) {
    lock(&CALLBACKS).push(Arc::new(Box::new(f)));
    ensure_watcher();
}

/// Starts the watcher thread if this process has none.
pub(crate) fn ensure_watcher() {
    let pid = std::process::id();
    if WATCHER_PID.swap(pid, Ordering::AcqRel) == pid {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("ferret-enables".into())
        .spawn(watch);
    if spawned.is_err() {
        // Without a thread nobody is told of changes; let a later call try
        // again rather than pretend one runs.
        WATCHER_PID.store(0, Ordering::Release);
    }
}

/// The callbacks' lock, held across a `fork()` by the link's fork handlers,
/// so that the child never inherits it held by a thread it does not have.
pub(crate) fn lock_for_fork() -> MutexGuard<'static, Vec<Arc<Callback>>> {
    lock(&CALLBACKS)
}

/// Starts a watcher in a child made by `fork` if the parent had one: the
/// child's providers have callbacks registered but no thread to run them.
pub(crate) fn after_fork_in_child() {
    if WATCHER_PID.load(Ordering::Acquire) != 0 {
        ensure_watcher();
    }
}

/// Runs every callback. Callbacks are cloned out of the lock so that one
/// may register another without deadlocking.
fn notify_all() {
    let callbacks: Vec<Arc<Callback>> = lock(&CALLBACKS).clone();
    for f in callbacks {
        // A panicking callback must not end the watcher for the others.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f()));
    }
}

fn watch() {
    let Some(g) = global() else {
        return;
    };
    // None until the first pass, so that every callback runs once at start.
    let mut seen: Option<(u64, Option<u32>)> = None;
    loop {
        let region = g.current_region();
        let generation = GENERATION.load(Ordering::Acquire);
        let version = region
            .as_ref()
            .map(|r| r.enable_version().load(Ordering::Acquire));
        if seen != Some((generation, version)) {
            seen = Some((generation, version));
            notify_all();
        }
        match (region, version) {
            (Some(r), Some(v)) => {
                let timeout = rustix::time::Timespec {
                    tv_sec: WATCH_TIMEOUT.as_secs() as i64,
                    tv_nsec: 0,
                };
                // Returns at once if the daemon bumped the word since the
                // load above; a timeout or an interruption just loops.
                let _ = futex::wait(r.enable_version(), futex::Flags::empty(), v, Some(&timeout));
            }
            _ => std::thread::sleep(DETACHED_POLL),
        }
    }
}
