//! Events a thread writes while its writer is busy (from a signal handler
//! that interrupted a write, or from code that runs inside one) or after
//! its writer is gone (from a thread-local destructor at thread exit) are
//! never lost silently: every event that passed the enable test is in the
//! log or counted lost, in the session's counters and as LOST records.
//!
//! This test program is the provider. Its allocator raises SIGUSR1 on each
//! allocation while armed, and the first write of each event type allocates
//! inside the writer (to record the type's metadata), so the signal handler
//! writes while the thread's writer is busy, at a known place and every
//! time.

use ferret_testkit as util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ferret_provider::{EventDescriptor, FieldDesc, FieldType, Level, Options, Provider, Value};
use util::{Env, decode, lost_records, wait_until};

struct RaisingAllocator;

/// True while allocations raise SIGUSR1.
static ARMED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// True while this thread's allocation hook runs, so that what the
    /// signal handler allocates raises nothing more.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for RaisingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) && !IN_HOOK.with(Cell::get) {
            IN_HOOK.with(|h| h.set(true));
            // SAFETY: raising a signal whose handler is installed below.
            unsafe { libc::raise(libc::SIGUSR1) };
            IN_HOOK.with(|h| h.set(false));
        }
        // SAFETY: as the caller asked.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, which is System's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: RaisingAllocator = RaisingAllocator;

static PROVIDER: OnceLock<Provider> = OnceLock::new();
/// Events that passed the enable test, wherever they were written.
static PASSED: AtomicU64 = AtomicU64::new(0);
/// Signal-handler writes, to show that the signal fired inside writes.
static SIGNALLED: AtomicU64 = AtomicU64::new(0);

static FROM_SIGNAL: EventDescriptor = EventDescriptor::new(
    1,
    "FromSignal",
    Level::Information,
    0,
    0,
    &[FieldDesc::new("n", FieldType::U64)],
);
static AT_EXIT: EventDescriptor = EventDescriptor::new(
    2,
    "AtExit",
    Level::Information,
    0,
    0,
    &[FieldDesc::new("n", FieldType::U64)],
);

/// Writes `desc` if a session wants it, counting it as passed.
fn write_counted(desc: &'static EventDescriptor, n: u64) {
    let Some(p) = PROVIDER.get() else { return };
    if p.enabled(desc.level, desc.keywords) {
        PASSED.fetch_add(1, Ordering::Relaxed);
        p.write(desc, &[Value::U64(n)]);
    }
}

extern "C" fn on_sigusr1(_: libc::c_int) {
    let n = SIGNALLED.fetch_add(1, Ordering::Relaxed);
    write_counted(&FROM_SIGNAL, n);
}

/// Writes events from its destructor, which runs after the thread's writer
/// was destroyed (thread-locals are destroyed in reverse order of first use).
struct WritesAtExit;

impl Drop for WritesAtExit {
    fn drop(&mut self) {
        for n in 0..100 {
            write_counted(&AT_EXIT, n);
        }
    }
}

thread_local! {
    static AT_EXIT_GUARD: Cell<Option<WritesAtExit>> = const { Cell::new(None) };
}

#[test]
fn busy_and_exiting_writers_lose_nothing_silently() {
    let env = Env::new();
    let log = env.path("reentrant.ferret");
    env.start("re", "E2E.Reentrant", &log, &[]);
    assert!(ferret_provider::configure(Options {
        socket: env.socket.clone(),
        ..Options::default()
    }));
    let p = Provider::register("E2E.Reentrant");
    assert!(p.enabled(Level::Information, 0), "the session enables it");
    PROVIDER.set(p).expect("set once");
    // SAFETY: installing a handler that only touches atomics and the
    // provider, which is built for writes from signal handlers.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }

    // Each dynamic event below has a name of its own, so each is a new type
    // whose first write allocates inside the writer.
    const OUTER: u64 = 50;
    let names: Vec<String> = (0..OUTER).map(|i| format!("Outer{i}")).collect();
    ARMED.store(true, Ordering::Relaxed);
    for (i, name) in names.iter().enumerate() {
        let mut e = p.dynamic_event(name, Level::Information, 0);
        PASSED.fetch_add(1, Ordering::Relaxed);
        e.field("i", Value::U64(i as u64)).write();
    }
    ARMED.store(false, Ordering::Relaxed);
    assert!(
        SIGNALLED.load(Ordering::Relaxed) >= OUTER,
        "the signal fired at least once per new type"
    );

    // A thread that writes, then writes again from a destructor that runs
    // after its writer is gone.
    std::thread::spawn(|| {
        AT_EXIT_GUARD.with(|g| g.set(Some(WritesAtExit)));
        write_counted(&AT_EXIT, 1000);
    })
    .join()
    .expect("thread");

    let passed = PASSED.load(Ordering::Relaxed);
    wait_until(
        Duration::from_secs(10),
        "every passed event to be logged or counted lost",
        || {
            let c = env.session("re").counters;
            c.events + c.events_lost >= passed
        },
    );
    let stopped = env.json(&["stop", "re"]);
    let events = stopped["events"].as_u64().expect("events");
    let lost = stopped["events_lost"].as_u64().expect("events_lost");
    eprintln!(
        "passed {passed}, signalled {}, logged {events}, lost {lost}",
        SIGNALLED.load(Ordering::Relaxed)
    );
    assert_eq!(events + lost, passed, "{stopped}");

    // The log holds the same: the events, and LOST records for the rest.
    let d = decode(&log);
    assert!(d.damage.is_empty(), "{:?}", d.damage);
    assert_eq!(d.events.len() as u64, events);
    let at_exit = d.events.iter().filter(|e| e.name == "AtExit").count();
    assert_eq!(at_exit, 101, "every write of the exiting thread is logged");
    assert_eq!(lost_records(&log), lost, "every loss is a LOST record");
}
