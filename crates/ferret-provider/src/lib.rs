//! What an application links to emit Ferret events.
//!
//! A *provider* is a named source of events, registered once per process;
//! its GUID is derived from its name as ETW's TraceLogging derives it.
//! Events are written in one of three ways:
//!
//! - [`write_event!`], the main way, in the spirit of TraceLogging's
//!   `TraceLoggingWrite`: the event's name, level, keywords and fields at
//!   the call site, field types checked at compile time, metadata static per
//!   call site, field expressions evaluated only when a session wants the
//!   event.
//! - [`EventDescriptor`] statics written with [`Provider::write`], for
//!   events declared once and written from many places.
//! - [`Provider::dynamic_event`] and [`EventShape`], for events whose shape
//!   is known only at run time (bindings, scripting); shapes are interned
//!   once per process.
//!
//! ```
//! use ferret_provider::{provider, write_event};
//!
//! provider!(static WEB = "MyCompany.Web");
//!
//! fn handle(path: &str) -> u16 {
//!     let status = 200u16;
//!     write_event!(WEB, "Request", level: Information, keywords: 0x1, path = path, status = status);
//!     status
//! }
//! # handle("/index.html");
//! ```
//!
//! Activities ([`start_activity!`], [`activity`]) give events ETW's
//! activity ids: every event a thread writes while an activity is current
//! carries its id, and the activity's start event names the activity it
//! started from.
//!
//! Checking whether an event is wanted is one relaxed atomic load from the
//! enable table the daemon keeps in shared memory. Writing copies the event
//! into the calling thread's ring in that shared memory: no lock, no
//! syscall, no allocation. The first time an event type is written in a
//! process its metadata (names and field types) goes to the daemon's
//! metadata area, so log files describe themselves.
//!
//! With no daemon running every call is a cheap no-op. A background thread
//! (`ferret-provider`) looks for a daemon and attaches when one appears;
//! registration waits a bounded time for the daemon's answer so a program
//! started after its session writes its first event into it.
//!
//! This crate never panics into its host and never blocks on the event path,
//! except for the bounded wait for ring space that a session started in
//! no-loss mode asks for. Threads may come and go freely (a ring passes
//! from an exiting thread to the next one), and a forked child becomes a
//! provider process of its own.
//!
//! It does not decode, store or filter events beyond the enable check; the
//! daemon does that.

// Ferret's gdb commands travel in every program that links this crate
// (.debug_gdb_scripts), so that `ferret stop` works in any debugger session
// that allows auto-loaded scripts.
#![debugger_visualizer(gdb_script_file = "../gdb/ferret.py")]
pub mod activity;
mod buffer;
mod clock;
mod debug;
mod dynamic;
mod field;
mod lazy;
mod link;
mod macros;
mod notify;
mod region;
mod wait;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};

pub use activity::{Activity, ActivityScope};
pub use buffer::FieldBuffer;
pub use dynamic::{
    DynamicCacheStats, DynamicEvent, EventShape, InternError, MAX_DYNAMIC_FIELDS, MAX_SHAPE_BYTES,
    MAX_SHAPES, dynamic_cache_stats,
};
pub use ferret_abi::record::{ActivityIds, FieldType};
pub use ferret_abi::shm::word_accepts;
pub use ferret_abi::{Guid, Level, Value};
pub use field::{FieldValue, WireValue};
pub use lazy::LazyProvider;
pub use link::{LinkStatus, Options, configure, link_status};
pub use notify::on_enable_change;

use ferret_abi::record::{EventTypeMeta, FieldMeta};
use field::FieldTuple;
use link::ProviderInner;
use writer::{Checked, Ids};

/// One declared field of an event: its name and type.
///
/// ```
/// use ferret_provider::{FieldDesc, FieldType};
///
/// const PATH: FieldDesc = FieldDesc::new("path", FieldType::Str);
/// assert_eq!(PATH.name, "path");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDesc {
    /// The field's name (at most 255 bytes).
    pub name: &'static str,
    /// The field's type.
    pub ty: FieldType,
}

impl FieldDesc {
    /// A field called `name` of type `ty`.
    ///
    /// ```
    /// use ferret_provider::{FieldDesc, FieldType};
    ///
    /// let f = FieldDesc::new("status", FieldType::U16);
    /// assert_eq!(f.ty, FieldType::U16);
    /// ```
    pub const fn new(name: &'static str, ty: FieldType) -> FieldDesc {
        FieldDesc { name, ty }
    }
}

/// ETW's standard opcodes: what an event says about the activity it
/// belongs to. Events carry the number (0 to 255); these are the named ones.
///
/// ```
/// use ferret_provider::Opcode;
///
/// assert_eq!(Opcode::Start as u8, 1);
/// assert_eq!(Opcode::Stop.as_u8(), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// 0: an event that is neither a start nor a stop.
    Info = 0,
    /// 1: an activity starts.
    Start = 1,
    /// 2: an activity ends.
    Stop = 2,
    /// 3: state at the start of a collection (rundown).
    DcStart = 3,
    /// 4: state at the end of a collection (rundown).
    DcStop = 4,
    /// 5: more data for an earlier event.
    Extension = 5,
    /// 6: a reply to a request.
    Reply = 6,
    /// 7: an activity resumes.
    Resume = 7,
    /// 8: an activity is suspended.
    Suspend = 8,
    /// 9: a message is sent to another component.
    Send = 9,
    /// 240: a message is received from another component.
    Receive = 240,
}

impl Opcode {
    /// The opcode's number.
    ///
    /// ```
    /// assert_eq!(ferret_provider::Opcode::Receive.as_u8(), 240);
    /// ```
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

const TYPE_BITS: u32 = 16;
const SLOT_BITS: u32 = 16;

/// The type id the current region gave an event, cached where the event is
/// declared, packed as generation (32 bits), provider slot (16 bits), type
/// id (16 bits); 0 when not registered.
#[derive(Debug)]
struct TypeCache(AtomicU64);

impl TypeCache {
    const fn new() -> TypeCache {
        TypeCache(AtomicU64::new(0))
    }

    fn pack(generation: u64, slot: u32) -> u64 {
        ((generation & 0xFFFF_FFFF) << (TYPE_BITS + SLOT_BITS))
            | (((slot as u64) & 0xFFFF) << TYPE_BITS)
    }

    #[inline]
    fn get(&self, generation: u64, slot: u32) -> Option<u16> {
        // Acquire pairs with the release in `set`, so an event that uses
        // this id is ordered after the metadata that defines it.
        let r = self.0.load(Ordering::Acquire);
        let key = TypeCache::pack(generation, slot);
        if r != 0 && r & !((1 << TYPE_BITS) - 1) == key {
            Some((r & ((1 << TYPE_BITS) - 1)) as u16)
        } else {
            None
        }
    }

    fn set(&self, generation: u64, slot: u32, type_id: u16) {
        let packed = TypeCache::pack(generation, slot) | type_id as u64;
        self.0.store(packed, Ordering::Release);
    }
}

/// What the writer needs from an event's declaration: where its type id is
/// cached, a key naming its metadata in the process, and the metadata
/// itself (built only when the type is first registered).
pub(crate) trait Described {
    /// The type id cached for this region generation and provider slot.
    fn cached_type(&self, generation: u64, slot: u32) -> Option<u16>;
    /// Caches the type id the region gave.
    fn cache_type(&self, generation: u64, slot: u32, type_id: u16);
    /// A key that two declarations share only if their metadata is equal.
    fn key(&self) -> (usize, u64);
    /// The EVENT_TYPE record's contents for provider slot `slot`.
    fn meta(&self, slot: u32) -> EventTypeMeta;
}

/// Declares one kind of event for [`Provider::write`]. Descriptors are
/// `static`s: their metadata is sent to the daemon once per process, and
/// each keeps the type id it was given there. [`write_event!`] declares
/// one for each call site itself.
///
/// ```
/// use ferret_provider::{EventDescriptor, FieldDesc, FieldType, Level, Opcode, Value};
///
/// static REQUEST: EventDescriptor = EventDescriptor::new(
///     1, "Request", Level::Information, 0x1, Opcode::Info as u8,
///     &[FieldDesc::new("path", FieldType::Str), FieldDesc::new("status", FieldType::U16)],
/// );
///
/// ferret_provider::provider!(static WEB = "MyCompany.Web");
/// WEB.write(&REQUEST, &[Value::Str("/index.html"), Value::U16(200)]);
/// ```
#[derive(Debug)]
pub struct EventDescriptor {
    /// The event id (as ETW's EVENT_DESCRIPTOR.Id).
    pub id: u16,
    /// The event's name.
    pub name: &'static str,
    /// The event's level.
    pub level: Level,
    /// The event's keyword mask.
    pub keywords: u64,
    /// The opcode ([`Opcode`]: 0 info, 1 start, 2 stop, ...).
    pub opcode: u8,
    /// The payload's fields, in order.
    pub fields: &'static [FieldDesc],
    registration: TypeCache,
}

impl EventDescriptor {
    /// Declares an event.
    ///
    /// ```
    /// use ferret_provider::{EventDescriptor, FieldDesc, FieldType, Level};
    ///
    /// static TICK: EventDescriptor =
    ///     EventDescriptor::new(2, "Tick", Level::Verbose, 0, 0, &[FieldDesc::new("n", FieldType::U64)]);
    /// assert_eq!(TICK.name, "Tick");
    /// ```
    pub const fn new(
        id: u16,
        name: &'static str,
        level: Level,
        keywords: u64,
        opcode: u8,
        fields: &'static [FieldDesc],
    ) -> EventDescriptor {
        EventDescriptor {
            id,
            name,
            level,
            keywords,
            opcode,
            fields,
            registration: TypeCache::new(),
        }
    }
}

impl Described for EventDescriptor {
    #[inline]
    fn cached_type(&self, generation: u64, slot: u32) -> Option<u16> {
        self.registration.get(generation, slot)
    }

    fn cache_type(&self, generation: u64, slot: u32, type_id: u16) {
        self.registration.set(generation, slot, type_id);
    }

    fn key(&self) -> (usize, u64) {
        (self as *const EventDescriptor as usize, 0)
    }

    fn meta(&self, slot: u32) -> EventTypeMeta {
        EventTypeMeta {
            source: 0,
            type_id: 0,
            provider: slot,
            event_id: self.id,
            level: self.level.as_u8(),
            opcode: self.opcode,
            keywords: self.keywords,
            name: self.name.to_string(),
            fields: self
                .fields
                .iter()
                .map(|f| FieldMeta {
                    name: f.name.to_string(),
                    ty: f.ty,
                })
                .collect(),
        }
    }
}

/// Declares an activity for [`Provider::start_activity`]: a start event
/// (opcode 1) with fields and a stop event (opcode 2) without, sharing
/// name, id, level and keywords, as TraceLogging's activities do.
///
/// ```
/// use ferret_provider::{ActivityDescriptor, FieldDesc, FieldType, Level, Value};
///
/// static JOB: ActivityDescriptor = ActivityDescriptor::new(
///     10, "Job", Level::Information, 0x2, &[FieldDesc::new("job", FieldType::U64)],
/// );
/// assert_eq!(JOB.start.opcode, 1);
/// assert_eq!(JOB.stop.opcode, 2);
///
/// ferret_provider::provider!(static APP = "Example.Jobs");
/// let _job = APP.start_activity(&JOB, &[Value::U64(7)]);
/// ```
#[derive(Debug)]
pub struct ActivityDescriptor {
    /// The start event.
    pub start: EventDescriptor,
    /// The stop event.
    pub stop: EventDescriptor,
}

impl ActivityDescriptor {
    /// Declares an activity whose start event has `fields`.
    ///
    /// ```
    /// use ferret_provider::{ActivityDescriptor, Level};
    ///
    /// static LOAD: ActivityDescriptor = ActivityDescriptor::new(3, "Load", Level::Verbose, 0, &[]);
    /// assert_eq!(LOAD.stop.name, "Load");
    /// ```
    pub const fn new(
        id: u16,
        name: &'static str,
        level: Level,
        keywords: u64,
        fields: &'static [FieldDesc],
    ) -> ActivityDescriptor {
        ActivityDescriptor {
            start: EventDescriptor::new(id, name, level, keywords, Opcode::Start as u8, fields),
            stop: EventDescriptor::new(id, name, level, keywords, Opcode::Stop as u8, &[]),
        }
    }
}

/// A registered provider. Cheap to copy; lives for the rest of the process.
/// Most programs declare one with [`provider!`] instead of registering it
/// by hand.
///
/// ```
/// use ferret_provider::Provider;
///
/// let p = Provider::register("MyCompany.Web");
/// assert_eq!(p.name(), "MyCompany.Web");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Provider {
    inner: &'static ProviderInner,
}

impl Provider {
    /// Registers the provider called `name` (or returns the one this process
    /// already registered under that name).
    ///
    /// If a daemon answers, this waits for it to confirm the registration,
    /// at most [`Options::register_timeout`]; with no daemon it returns at
    /// once. A name that is empty, too long or has control characters, or a
    /// process past 1024 providers, gets a provider that is never enabled.
    ///
    /// ```
    /// use ferret_provider::Provider;
    ///
    /// let a = Provider::register("MyCompany.Db");
    /// let b = Provider::register("MyCompany.Db");
    /// assert_eq!(a.guid(), b.guid());
    /// ```
    pub fn register(name: &str) -> Provider {
        let inner = match link::global() {
            Some(g) => g.register(name),
            None => Box::leak(Box::new(ProviderInner {
                name: name.to_string(),
                guid: Guid::from_name(name),
                slot: u32::MAX,
                words: &link::DISABLED_SLOT,
            })),
        };
        Provider { inner }
    }

    /// The provider's name.
    ///
    /// ```
    /// let p = ferret_provider::Provider::register("MyCompany.Name");
    /// assert_eq!(p.name(), "MyCompany.Name");
    /// ```
    pub fn name(&self) -> &'static str {
        &self.inner.name
    }

    /// The provider's GUID, derived from its name as ETW derives it.
    ///
    /// ```
    /// let p = ferret_provider::Provider::register("MyProvider");
    /// assert_eq!(p.guid().to_string(), "b3864c38-4273-58c5-545b-8b3608343471");
    /// ```
    pub fn guid(&self) -> Guid {
        self.inner.guid
    }

    /// True if some session may want an event of this level and keywords:
    /// one relaxed atomic load and a test.
    ///
    /// ```
    /// use ferret_provider::Level;
    ///
    /// ferret_provider::provider!(static APP = "Example.Enabled");
    /// if APP.enabled(Level::Verbose, 0x4) {
    ///     // Compute what only a verbose session needs.
    /// }
    /// ```
    #[inline(always)]
    pub fn enabled(&self, level: Level, keywords: u64) -> bool {
        let word = self.inner.words.levels[level as usize - 1].load(Ordering::Relaxed);
        word_accepts(word, keywords)
    }

    /// The most verbose level at which some session enables this provider,
    /// whatever its keywords, or `None` when no session does. Bridges that
    /// keep a global level filter (as `log` does) set it from this.
    ///
    /// ```
    /// use ferret_provider::Provider;
    ///
    /// let provider = Provider::register("MyCompany.Levels");
    /// match provider.max_level() {
    ///     Some(level) => println!("enabled up to {level:?}"),
    ///     None => println!("no session wants these events"),
    /// }
    /// ```
    pub fn max_level(&self) -> Option<Level> {
        Level::ALL
            .iter()
            .rev()
            .copied()
            .find(|&level| self.enabled(level, 0))
    }

    /// Events of this provider dropped in this process since it attached to
    /// the current daemon (ring full), plus the process's drops that belong
    /// to no one provider (no free ring, metadata area full, invalid events).
    /// The daemon charges the same drops to the sessions that wanted them.
    ///
    /// ```
    /// let p = ferret_provider::Provider::register("Example.Dropped");
    /// let before = p.events_dropped();
    /// assert!(p.events_dropped() >= before);
    /// ```
    pub fn events_dropped(&self) -> u64 {
        let Some(region) = link::global().and_then(|g| g.current_region()) else {
            return 0;
        };
        let own = if self.inner.slot == u32::MAX {
            0
        } else {
            region.lost_counter(self.inner.slot).load(Ordering::Relaxed)
        };
        own + region.lost_no_ring().load(Ordering::Relaxed)
            + region.lost_no_metadata().load(Ordering::Relaxed)
            + region.lost_invalid().load(Ordering::Relaxed)
    }

    /// Writes an event if a session wants it. `values` must match the
    /// descriptor's fields in number and type; an event that does not, or
    /// that is larger than 64 KiB, is dropped and counted. The event
    /// carries the thread's current activity id, if any.
    ///
    /// ```
    /// use ferret_provider::{EventDescriptor, FieldDesc, FieldType, Level, Value};
    ///
    /// static DONE: EventDescriptor =
    ///     EventDescriptor::new(5, "Done", Level::Information, 0, 0, &[FieldDesc::new("ms", FieldType::U32)]);
    /// ferret_provider::provider!(static APP = "Example.Write");
    /// APP.write(&DONE, &[Value::U32(12)]);
    /// ```
    #[inline]
    pub fn write(&self, desc: &'static EventDescriptor, values: &[Value<'_>]) {
        if self.enabled(desc.level, desc.keywords) {
            writer::write(self.inner, desc, &Checked::new(desc, values), Ids::Current);
        }
    }

    /// Writes an event with explicit activity ids, as ETW's
    /// `EventWriteTransfer`: `activity` replaces the thread's current
    /// activity (`None` keeps it), and `related` names the activity this
    /// event transfers from.
    ///
    /// ```
    /// use ferret_provider::{EventDescriptor, Level, activity};
    ///
    /// static HANDOFF: EventDescriptor = EventDescriptor::new(6, "Handoff", Level::Information, 0, 0, &[]);
    /// ferret_provider::provider!(static APP = "Example.Transfer");
    /// let (job, request) = (activity::new_id(), activity::new_id());
    /// APP.write_transfer(&HANDOFF, Some(job), Some(request), &[]);
    /// ```
    #[inline]
    pub fn write_transfer(
        &self,
        desc: &'static EventDescriptor,
        activity: Option<Guid>,
        related: Option<Guid>,
        values: &[Value<'_>],
    ) {
        if self.enabled(desc.level, desc.keywords) {
            let ids = activity::ids(activity, related);
            writer::write(
                self.inner,
                desc,
                &Checked::new(desc, values),
                Ids::Given(&ids),
            );
        }
    }

    /// Writes with the ids given; the caller has checked that the event is
    /// enabled.
    fn write_ids(&self, desc: &'static EventDescriptor, values: &[Value<'_>], ids: &ActivityIds) {
        writer::write(
            self.inner,
            desc,
            &Checked::new(desc, values),
            Ids::Given(ids),
        );
    }

    /// Starts an activity if a session wants its start event: writes the
    /// start event with a new activity id (and the current activity, if
    /// any, as related), makes the new activity current and returns the
    /// guard that writes the stop event. Otherwise returns an inert
    /// [`Activity`].
    ///
    /// ```
    /// use ferret_provider::{ActivityDescriptor, FieldDesc, FieldType, Level, Value};
    ///
    /// static REQUEST: ActivityDescriptor = ActivityDescriptor::new(
    ///     1, "Request", Level::Information, 0x1, &[FieldDesc::new("path", FieldType::Str)],
    /// );
    /// ferret_provider::provider!(static WEB = "Example.Activity");
    ///
    /// let request = WEB.start_activity(&REQUEST, &[Value::Str("/")]);
    /// // ... events written here carry the request's activity id ...
    /// drop(request);
    /// ```
    #[inline]
    pub fn start_activity(
        &self,
        desc: &'static ActivityDescriptor,
        values: &[Value<'_>],
    ) -> Activity {
        if self.enabled(desc.start.level, desc.start.keywords) {
            activity::start_descriptor(*self, &desc.start, &desc.stop, values, None, None)
        } else {
            Activity::inert()
        }
    }

    /// Begins an event whose shape (name, fields and their types) is known
    /// only at run time. Add fields and write it; each distinct shape is
    /// interned once per process (see [`DynamicEvent`]).
    ///
    /// ```
    /// use ferret_provider::{Level, Value};
    ///
    /// ferret_provider::provider!(static SCRIPT = "Example.Script");
    /// SCRIPT
    ///     .dynamic_event("UserEvent", Level::Information, 0x8)
    ///     .field("x", Value::U32(1))
    ///     .field("msg", Value::Str("hi"))
    ///     .write();
    /// ```
    #[inline]
    pub fn dynamic_event<'a>(
        &self,
        name: &'a str,
        level: Level,
        keywords: u64,
    ) -> DynamicEvent<'a> {
        DynamicEvent::new(*self, name, level, keywords)
    }
}

/// What the macros expand to. Not a stable API.
#[doc(hidden)]
pub mod __private {
    use std::sync::atomic::{AtomicU64, Ordering};

    use ferret_abi::record::{EventTypeMeta, FieldMeta, FieldType, MAX_FIELD_NAME};
    use ferret_abi::{Guid, Level};

    pub use crate::activity::start_site;
    pub use crate::field::{FieldTuple, signature};
    use crate::writer::Ids;
    use crate::{Described, LazyProvider, Provider, TypeCache};

    /// The static declaration a [`write_event!`](crate::write_event) call
    /// site makes: everything but the field types, which come from the
    /// field expressions' types when the site is compiled.
    #[derive(Debug)]
    pub struct EventSite {
        /// The event id.
        pub id: u16,
        /// The event's name.
        pub name: &'static str,
        /// The level.
        pub level: Level,
        /// The keyword mask.
        pub keywords: u64,
        /// The opcode.
        pub opcode: u8,
        /// The field names, in order.
        pub names: &'static [&'static str],
        /// The signature of the field types `registration` is for (0 until
        /// the site's first registration). A site in a generic function can
        /// have several; only the first uses the cache.
        owner: AtomicU64,
        registration: TypeCache,
    }

    impl EventSite {
        /// A call site's declaration. Evaluated at compile time (the site
        /// is a `static`), so the checks here are compile errors.
        pub const fn new(
            id: u16,
            name: &'static str,
            level: Level,
            keywords: u64,
            opcode: u8,
            names: &'static [&'static str],
        ) -> EventSite {
            assert!(
                name.len() <= ferret_abi::record::MAX_NAME,
                "an event name is at most 1024 bytes"
            );
            let mut i = 0;
            while i < names.len() {
                assert!(
                    names[i].len() <= MAX_FIELD_NAME,
                    "a field name is at most 255 bytes"
                );
                i += 1;
            }
            EventSite {
                id,
                name,
                level,
                keywords,
                opcode,
                names,
                owner: AtomicU64::new(0),
                registration: TypeCache::new(),
            }
        }
    }

    /// A call site with the field types of one instantiation.
    struct SiteTypes {
        site: &'static EventSite,
        types: &'static [FieldType],
        signature: u64,
    }

    impl Described for SiteTypes {
        #[inline]
        fn cached_type(&self, generation: u64, slot: u32) -> Option<u16> {
            if self.site.owner.load(Ordering::Relaxed) != self.signature {
                return None;
            }
            self.site.registration.get(generation, slot)
        }

        fn cache_type(&self, generation: u64, slot: u32, type_id: u16) {
            // The first instantiation to register owns the cache for good;
            // others find their type id in the region's table each time.
            let owner = match self.site.owner.compare_exchange(
                0,
                self.signature,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => self.signature,
                Err(current) => current,
            };
            if owner == self.signature {
                self.site.registration.set(generation, slot, type_id);
            }
        }

        fn key(&self) -> (usize, u64) {
            (self.site as *const EventSite as usize, self.signature)
        }

        fn meta(&self, slot: u32) -> EventTypeMeta {
            let s = self.site;
            EventTypeMeta {
                source: 0,
                type_id: 0,
                provider: slot,
                event_id: s.id,
                level: s.level.as_u8(),
                opcode: s.opcode,
                keywords: s.keywords,
                name: s.name.to_string(),
                fields: s
                    .names
                    .iter()
                    .zip(self.types)
                    .map(|(name, ty)| FieldMeta {
                        name: name.to_string(),
                        ty: *ty,
                    })
                    .collect(),
            }
        }
    }

    /// What a macro's provider argument may be.
    pub trait AsProvider {
        /// The provider.
        fn as_provider(&self) -> Provider;
    }

    impl AsProvider for Provider {
        #[inline(always)]
        fn as_provider(&self) -> Provider {
            *self
        }
    }

    impl AsProvider for LazyProvider {
        #[inline(always)]
        fn as_provider(&self) -> Provider {
            self.get()
        }
    }

    impl<T: AsProvider + ?Sized> AsProvider for &T {
        #[inline(always)]
        fn as_provider(&self) -> Provider {
            (**self).as_provider()
        }
    }

    /// The provider a macro writes to.
    #[inline(always)]
    pub fn provider<P: AsProvider + ?Sized>(p: &P) -> Provider {
        p.as_provider()
    }

    /// Writes a call site's event (the caller has checked that it is
    /// enabled). `activity` replaces the thread's current activity.
    #[inline]
    pub fn write_site<F: FieldTuple>(
        provider: Provider,
        site: &'static EventSite,
        fields: &F,
        activity: Option<Guid>,
        related: Option<Guid>,
    ) {
        match (activity, related) {
            (None, None) => write_site_ids(provider, site, fields, Ids::Current),
            _ => {
                let ids = crate::activity::ids(activity, related);
                write_site_ids(provider, site, fields, Ids::Given(&ids))
            }
        }
    }

    /// Writes a call site's event with the ids given.
    #[inline]
    pub(crate) fn write_site_ids<F: FieldTuple>(
        provider: Provider,
        site: &'static EventSite,
        fields: &F,
        ids: Ids<'_>,
    ) {
        let described = SiteTypes {
            site,
            types: F::TYPES,
            signature: F::SIGNATURE,
        };
        crate::writer::write(provider.inner, &described, &Typed(fields), ids);
    }

    /// A call site's fields: their values come from the same tuple as the
    /// types, through the sealed `WireValue`, so they always match, and
    /// each is encoded by code made for its type.
    struct Typed<'a, F>(&'a F);

    impl<F: FieldTuple> crate::writer::Payload for Typed<'_, F> {
        #[inline(always)]
        fn encoded_len(&self) -> Option<usize> {
            Some(self.0.encoded_len())
        }

        #[inline(always)]
        fn encode(&self, dst: &mut ferret_abi::shm::Span<'_>, at: usize) {
            self.0.encode(dst, at);
        }
    }
}
