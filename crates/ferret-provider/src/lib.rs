//! What an application links to emit Ferret events.
//!
//! A [`Provider`] is a named source of events, registered once per process;
//! its GUID is derived from its name as ETW's TraceLogging derives it. An
//! [`EventDescriptor`] declares one kind of event: id, name, level, keywords,
//! opcode and typed fields. Writing looks like this:
//!
//! ```
//! use ferret_provider::{EventDescriptor, FieldDesc, FieldType, Level, Provider, Value};
//!
//! static REQUEST: EventDescriptor = EventDescriptor::new(
//!     1, "Request", Level::Information, 0x1, 0,
//!     &[FieldDesc::new("path", FieldType::Str), FieldDesc::new("status", FieldType::U16)],
//! );
//!
//! let provider = Provider::register("MyCompany.Web");
//! if provider.enabled(REQUEST.level, REQUEST.keywords) {
//!     provider.write(&REQUEST, &[Value::Str("/index.html"), Value::U16(200)]);
//! }
//! ```
//!
//! `enabled` is one relaxed atomic load from the enable table the daemon
//! keeps in shared memory. `write` copies the event into the calling
//! thread's ring in that shared memory: no lock, no syscall, no allocation.
//! The first time an event type is written in a process its metadata (names
//! and field types) goes to the daemon's metadata area, so log files describe
//! themselves.
//!
//! With no daemon running every call is a cheap no-op. A background thread
//! (`ferret-provider`) looks for a daemon and attaches when one appears;
//! [`Provider::register`] waits a bounded time for the daemon's answer so a
//! program started after its session writes its first event into it.
//!
//! This crate never panics into its host and never blocks on the event path,
//! except for the bounded wait for ring space that a session started in
//! no-loss mode asks for. Threads may come and go freely (a ring passes
//! from an exiting thread to the next one), and a forked child becomes a
//! provider process of its own.
//!
//! It does not decode, store or filter events beyond the enable check; the
//! daemon does that.

mod clock;
mod link;
mod region;
mod wait;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};

pub use ferret_abi::record::FieldType;
pub use ferret_abi::shm::word_accepts;
pub use ferret_abi::{Guid, Level, Value};
pub use link::{LinkStatus, Options, configure, link_status};

use link::ProviderInner;

/// One declared field of an event: its name and type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDesc {
    /// The field's name (at most 255 bytes).
    pub name: &'static str,
    /// The field's type.
    pub ty: FieldType,
}

impl FieldDesc {
    /// A field called `name` of type `ty`.
    pub const fn new(name: &'static str, ty: FieldType) -> FieldDesc {
        FieldDesc { name, ty }
    }
}

/// Declares one kind of event. Descriptors are `static`s: their metadata is
/// sent to the daemon once per process, and each keeps the id it was given
/// there.
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
    /// The opcode (0 info, 1 start, 2 stop).
    pub opcode: u8,
    /// The payload's fields, in order.
    pub fields: &'static [FieldDesc],
    /// The type id the current region gave this descriptor, packed as
    /// generation (32 bits), provider slot (16 bits), type id (16 bits); 0
    /// when not registered.
    registration: AtomicU64,
}

const TYPE_BITS: u32 = 16;
const SLOT_BITS: u32 = 16;

impl EventDescriptor {
    /// Declares an event.
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
            registration: AtomicU64::new(0),
        }
    }

    fn pack(generation: u64, slot: u32) -> u64 {
        ((generation & 0xFFFF_FFFF) << (TYPE_BITS + SLOT_BITS))
            | (((slot as u64) & 0xFFFF) << TYPE_BITS)
    }

    #[inline]
    fn cached_type(&self, generation: u64, slot: u32) -> Option<u16> {
        // Acquire pairs with the release in `cache_type`, so an event that
        // uses this id is ordered after the metadata that defines it.
        let r = self.registration.load(Ordering::Acquire);
        let key = EventDescriptor::pack(generation, slot);
        if r != 0 && r & !((1 << TYPE_BITS) - 1) == key {
            Some((r & ((1 << TYPE_BITS) - 1)) as u16)
        } else {
            None
        }
    }

    fn cache_type(&self, generation: u64, slot: u32, type_id: u16) {
        let packed = EventDescriptor::pack(generation, slot) | type_id as u64;
        self.registration.store(packed, Ordering::Release);
    }
}

/// A registered provider. Cheap to copy; lives for the rest of the process.
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
    pub fn name(&self) -> &'static str {
        &self.inner.name
    }

    /// The provider's GUID.
    pub fn guid(&self) -> Guid {
        self.inner.guid
    }

    /// True if some session may want an event of this level and keywords:
    /// one relaxed atomic load and a test.
    #[inline(always)]
    pub fn enabled(&self, level: Level, keywords: u64) -> bool {
        let word = self.inner.words.levels[level as usize - 1].load(Ordering::Relaxed);
        word_accepts(word, keywords)
    }

    /// Events of this provider dropped in this process since it attached to
    /// the current daemon (ring full), plus the process's drops that belong
    /// to no one provider (no free ring, metadata area full, invalid events).
    /// The daemon charges the same drops to the sessions that wanted them.
    pub fn events_dropped(&self) -> u64 {
        let Some(region) = link::global().and_then(|g| g.current_region()) else {
            return 0;
        };
        let own = if self.inner.slot == u32::MAX {
            0
        } else {
            region.lost_counter(self.inner.slot).load(Ordering::Relaxed)
        };
        let p = &region.header().provider;
        own + p.lost_no_ring.load(Ordering::Relaxed)
            + p.lost_no_metadata.load(Ordering::Relaxed)
            + p.lost_invalid.load(Ordering::Relaxed)
    }

    /// Writes an event if a session wants it. `values` must match the
    /// descriptor's fields in number and type; an event that does not, or
    /// that is larger than 64 KiB, is dropped and counted.
    #[inline]
    pub fn write(&self, desc: &'static EventDescriptor, values: &[Value<'_>]) {
        if self.enabled(desc.level, desc.keywords) {
            writer::write(self.inner, desc, values);
        }
    }
}
