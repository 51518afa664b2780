//! Activity ids, as ETW has them: each thread has a *current activity*, and
//! every event it writes carries that activity's id, so that a consumer can
//! group the events of one piece of work (a request, a job) however many
//! threads and providers it crosses.
//!
//! An activity starts with a start event (opcode 1) that carries the new
//! activity's id and, as the *related* id, the activity that was current
//! when it started; it ends with a stop event (opcode 2). The guard
//! [`Activity`] (from [`start_activity!`](crate::start_activity),
//! [`Provider::start_activity`](crate::Provider::start_activity) or
//! [`DynamicEvent::start_activity`](crate::DynamicEvent::start_activity))
//! does all of this; the functions here are for handing an activity to
//! another thread and for reading or setting the current id directly.
//!
//! ```
//! use ferret_provider::activity;
//!
//! ferret_provider::provider!(static APP = "Example.Activities");
//!
//! assert_eq!(activity::current(), None);
//! {
//!     let job = ferret_provider::start_activity!(APP, "Job", level: Information, n = 1u32);
//!     // While the job is current, events carry its id (when the provider
//!     // is enabled; with no session the guard does nothing).
//!     assert_eq!(activity::current(), job.id());
//!     ferret_provider::write_event!(APP, "Step", level: Information, step = "parse");
//! }
//! assert_eq!(activity::current(), None);
//! ```

use std::cell::Cell;
use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use ferret_abi::record::ActivityIds;
use ferret_abi::{Guid, Value};

use crate::{__private::EventSite, EventDescriptor, FieldTuple, Provider};

/// The all-zero GUID, which ETW uses for "no activity".
const NONE: Guid = Guid([0; 16]);

thread_local! {
    /// The calling thread's current activity. Never `Some` of the zero GUID,
    /// which means none.
    static CURRENT: Cell<Option<Guid>> = const { Cell::new(None) };
    /// State for new activity ids: a random 64-bit part chosen once per
    /// thread and process, a counter (0 until the thread creates its first
    /// id), and the fork epoch the random part was chosen in.
    static IDS: Cell<(u64, u64, u64)> = const { Cell::new((0, 0, 0)) };
}

/// Bumped in the child of every `fork()`. The forking thread's id state is
/// copied into the child, which would then make the very ids its parent
/// makes next; a thread whose state was chosen under another epoch chooses
/// a new random part first.
static ID_EPOCH: AtomicU64 = AtomicU64::new(1);

extern "C" fn ids_after_fork_in_child() {
    ID_EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// Registers the fork handler above, once per process, before the first id.
fn watch_forks() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: the handler is an `extern "C"` function that only bumps an
        // atomic, which is async-signal-safe and cannot unwind.
        unsafe { libc::pthread_atfork(None, None, Some(ids_after_fork_in_child)) };
    });
}

/// The calling thread's current activity, if it has one.
///
/// ```
/// use ferret_provider::activity;
///
/// let id = activity::new_id();
/// let _scope = activity::enter(id);
/// assert_eq!(activity::current(), Some(id));
/// ```
#[inline]
pub fn current() -> Option<Guid> {
    CURRENT.try_with(Cell::get).unwrap_or(None)
}

/// Makes `id` the calling thread's current activity (`None` clears it) and
/// returns the one it replaces, as ETW's `EventActivityIdControl` with
/// `GET_SET` does. Prefer [`enter`], whose guard puts the previous one back.
///
/// ```
/// use ferret_provider::activity;
///
/// let id = activity::new_id();
/// let before = activity::set_current(Some(id));
/// assert_eq!(activity::current(), Some(id));
/// activity::set_current(before);
/// ```
pub fn set_current(id: Option<Guid>) -> Option<Guid> {
    let id = id.filter(|g| *g != NONE);
    CURRENT.try_with(|c| c.replace(id)).unwrap_or(None)
}

/// A new activity id, unique in practice across threads, processes and
/// machines: 60 bits chosen at random once per thread (and again in the
/// child of a `fork()`) and a count of the ids the thread made, laid out as
/// a version 4 GUID. Makes no system call after the thread's first id.
///
/// ```
/// let a = ferret_provider::activity::new_id();
/// let b = ferret_provider::activity::new_id();
/// assert_ne!(a, b);
/// ```
pub fn new_id() -> Guid {
    let (mut random, mut count, mut epoch) = IDS.try_with(Cell::get).unwrap_or((0, 0, 0));
    let now = ID_EPOCH.load(Ordering::Relaxed);
    if count == 0 || epoch != now {
        watch_forks();
        random = random_u64();
        count = 0;
        epoch = now;
    }
    count += 1;
    let _ = IDS.try_with(|c| c.set((random, count, epoch)));
    // The random part comes first and the count last (big-endian), so that
    // the registry form reads as the thread's prefix then a sequence
    // number: `1f0c9a2e-77d1-4b3e-8000-000000000005`.
    let mut b = [0u8; 16];
    b[0..8].copy_from_slice(&random.to_le_bytes());
    b[8..16].copy_from_slice(&count.to_be_bytes());
    // Version 4 in the high nibble of Data3 (byte 7 in the Windows layout)
    // and the RFC 4122 variant in byte 8.
    b[7] = (b[7] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    Guid(b)
}

/// 64 random bits. `RandomState` seeds its keys from the operating
/// system's entropy, so hashing this thread's identity with a fresh one
/// gives bits no other thread or process can predict or repeat.
fn random_u64() -> u64 {
    let state = std::collections::hash_map::RandomState::new();
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    state.hash_one((tid, std::process::id(), crate::clock::monotonic_ns()))
}

/// Makes `id` the calling thread's current activity until the returned
/// guard is dropped, which puts the previous one back. Writes no event:
/// this is how a thread takes over an activity another thread started, for
/// example a worker running a job queued inside a request.
///
/// ```
/// use ferret_provider::activity;
///
/// let request = activity::new_id();
/// let worker = std::thread::spawn(move || {
///     let _scope = activity::enter(request);
///     // Events written here carry the request's activity id.
///     activity::current()
/// });
/// assert_eq!(worker.join().unwrap(), Some(request));
/// ```
pub fn enter(id: Guid) -> ActivityScope {
    ActivityScope {
        previous: set_current(Some(id)),
        _thread: PhantomData,
    }
}

/// Restores the previous current activity when dropped; see [`enter`].
///
/// ```
/// use ferret_provider::activity;
///
/// let outer = activity::new_id();
/// let _a = activity::enter(outer);
/// {
///     let _b = activity::enter(activity::new_id());
/// }
/// assert_eq!(activity::current(), Some(outer));
/// ```
#[must_use = "the previous activity comes back when this guard is dropped"]
#[derive(Debug)]
pub struct ActivityScope {
    previous: Option<Guid>,
    /// The guard restores thread-local state, so it stays on its thread.
    _thread: PhantomData<*const ()>,
}

impl Drop for ActivityScope {
    fn drop(&mut self) {
        set_current(self.previous);
    }
}

/// The ids an event written now carries: `activity` if given, else the
/// thread's current activity; `related` as given.
#[inline]
pub(crate) fn ids(activity: Option<Guid>, related: Option<Guid>) -> ActivityIds {
    ActivityIds {
        activity: activity.or_else(current),
        related,
    }
}

/// The stop event an activity writes when it ends.
#[derive(Clone, Copy, Debug)]
enum StopEvent {
    Site(&'static EventSite),
    Descriptor(&'static EventDescriptor),
}

/// A running activity: while it lives it is the thread's current activity,
/// and dropping it writes its stop event and makes the activity that was
/// current before it current again.
///
/// An activity whose start event no session wanted is inert: it has no id,
/// writes nothing and leaves the current activity alone, so a disabled
/// activity costs one load. Activities are started by
/// [`start_activity!`](crate::start_activity),
/// [`Provider::start_activity`] and
/// [`DynamicEvent::start_activity`](crate::DynamicEvent::start_activity).
///
/// ```
/// use ferret_provider::{ActivityDescriptor, FieldDesc, FieldType, Level, Value};
///
/// static JOB: ActivityDescriptor = ActivityDescriptor::new(
///     10, "Job", Level::Information, 0x2, &[FieldDesc::new("job", FieldType::U64)],
/// );
/// ferret_provider::provider!(static APP = "Example.Jobs");
///
/// let job = APP.start_activity(&JOB, &[Value::U64(7)]);
/// // With no session enabling the provider the activity is inert.
/// if job.id().is_none() {
///     assert_eq!(ferret_provider::activity::current(), None);
/// }
/// drop(job); // writes the stop event if the start was written
/// ```
#[must_use = "the activity stops when this guard is dropped"]
#[derive(Debug)]
pub struct Activity {
    live: Option<Live>,
    /// The guard restores thread-local state, so it stays on its thread.
    _thread: PhantomData<*const ()>,
}

#[derive(Debug)]
struct Live {
    provider: Provider,
    stop: StopEvent,
    id: Guid,
    previous: Option<Guid>,
}

impl Activity {
    /// An activity that was not started: it has no id and does nothing
    /// when dropped.
    ///
    /// ```
    /// let a = ferret_provider::Activity::inert();
    /// assert_eq!(a.id(), None);
    /// ```
    pub const fn inert() -> Activity {
        Activity {
            live: None,
            _thread: PhantomData,
        }
    }

    /// The activity's id, or `None` if it is inert.
    ///
    /// ```
    /// ferret_provider::provider!(static APP = "Example.ActivityId");
    /// let a = ferret_provider::start_activity!(APP, "Work", level: Information);
    /// assert_eq!(a.id(), ferret_provider::activity::current());
    /// ```
    pub fn id(&self) -> Option<Guid> {
        self.live.as_ref().map(|l| l.id)
    }

    /// Ends the activity now; the same as dropping it.
    ///
    /// ```
    /// ferret_provider::provider!(static APP = "Example.ActivityStop");
    /// let a = ferret_provider::start_activity!(APP, "Work", level: Information);
    /// a.stop();
    /// assert_eq!(ferret_provider::activity::current(), None);
    /// ```
    pub fn stop(self) {}

    /// Starts an activity: `start` writes the start event with the given
    /// ids (the caller has checked that it is enabled); the activity
    /// becomes current.
    fn begin(
        provider: Provider,
        stop: StopEvent,
        id: Option<Guid>,
        related: Option<Guid>,
        start: impl FnOnce(&ActivityIds),
    ) -> Activity {
        let id = id.unwrap_or_else(new_id);
        let previous = current();
        start(&ActivityIds {
            activity: Some(id),
            related: related.or(previous),
        });
        set_current(Some(id));
        Activity {
            live: Some(Live {
                provider,
                stop,
                id,
                previous,
            }),
            _thread: PhantomData,
        }
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        let Some(live) = self.live.take() else {
            return;
        };
        let ids = ActivityIds {
            activity: Some(live.id),
            related: None,
        };
        match live.stop {
            StopEvent::Site(site) => {
                if live.provider.enabled(site.level, site.keywords) {
                    crate::__private::write_site_ids(
                        live.provider,
                        site,
                        &(),
                        crate::writer::Ids::Given(&ids),
                    );
                }
            }
            StopEvent::Descriptor(desc) => {
                if live.provider.enabled(desc.level, desc.keywords) {
                    live.provider.write_ids(desc, &[], &ids);
                }
            }
        }
        set_current(live.previous);
    }
}

/// Starts an activity from a macro call site (the caller has checked that
/// the start event is enabled).
#[doc(hidden)]
pub fn start_site<F: FieldTuple>(
    provider: Provider,
    start: &'static EventSite,
    fields: &F,
    stop: &'static EventSite,
    id: Option<Guid>,
    related: Option<Guid>,
) -> Activity {
    Activity::begin(provider, StopEvent::Site(stop), id, related, |ids| {
        crate::__private::write_site_ids(provider, start, fields, crate::writer::Ids::Given(ids))
    })
}

/// Starts an activity from descriptors (the caller has checked that the
/// start event is enabled). `id` and `related` replace the new id and the
/// current activity.
pub(crate) fn start_descriptor(
    provider: Provider,
    start: &'static EventDescriptor,
    stop: &'static EventDescriptor,
    values: &[Value<'_>],
    id: Option<Guid>,
    related: Option<Guid>,
) -> Activity {
    Activity::begin(provider, StopEvent::Descriptor(stop), id, related, |ids| {
        provider.write_ids(start, values, ids)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_guids_and_differ_across_threads() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.0[7] >> 4, 4);
        assert_eq!(a.0[8] & 0xC0, 0x80);
        let c = std::thread::spawn(new_id).join().unwrap();
        assert_ne!(a.0[..8], c.0[..8], "each thread draws its own random part");
        assert_eq!(a.0[..8], b.0[..8], "a thread keeps its random part");
        assert_eq!(a.to_string()[24..], *"000000000001");
    }

    #[test]
    fn scopes_nest_and_restore() {
        assert_eq!(current(), None);
        let a = new_id();
        let b = new_id();
        {
            let _sa = enter(a);
            {
                let _sb = enter(b);
                assert_eq!(current(), Some(b));
                assert_eq!(
                    ids(None, None),
                    ActivityIds {
                        activity: Some(b),
                        related: None
                    }
                );
            }
            assert_eq!(current(), Some(a));
        }
        assert_eq!(current(), None);
        assert_eq!(ids(None, None), ActivityIds::NONE);
    }
}
