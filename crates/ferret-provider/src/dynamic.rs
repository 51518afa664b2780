//! Events whose shape is known only at run time, for bindings and scripting.
//!
//! A *shape* is everything an event type's metadata holds: name, id, level,
//! keywords, opcode, field names and field types. Each distinct shape gets
//! one [`EventDescriptor`], created the first time the process sees it and
//! kept (interned) for the rest of the process, so the daemon receives its
//! metadata once and its events are as compact as any others.
//!
//! What each event costs once its shape has been seen: a probe of a
//! 64-entry cache of the calling thread with a cheap key and a comparison of
//! the whole shape with the cached descriptor; no lock and no allocation. A thread meeting a shape that is
//! not in its cache takes a process-wide lock once to find it, and the
//! first use of a shape in the process allocates its descriptor.
//!
//! The interned descriptors are bounded: at most [`MAX_SHAPES`] shapes and
//! [`MAX_SHAPE_BYTES`] bytes of names and field lists. An event of a new
//! shape past either bound is dropped and counted (as a metadata loss, like
//! an event whose type does not fit the daemon's metadata area), never
//! allowed to grow memory without end. A program that builds shapes from
//! untrusted input should bound them itself.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::{Mutex, MutexGuard, OnceLock};

use ferret_abi::record::{FieldType, MAX_FIELD_NAME, MAX_FIELDS, MAX_NAME};
use ferret_abi::{Guid, Level, Value};

use crate::{Activity, EventDescriptor, FieldDesc, Opcode, Provider, activity, writer};

/// The most fields a [`DynamicEvent`] holds; an event given more is
/// dropped and counted as invalid.
///
/// ```
/// use ferret_provider::{Level, MAX_DYNAMIC_FIELDS, Value};
///
/// ferret_provider::provider!(static P = "Example.Many");
/// let names: Vec<String> = (0..MAX_DYNAMIC_FIELDS).map(|i| format!("f{i}")).collect();
/// let mut event = P.dynamic_event("Wide", Level::Verbose, 0);
/// for name in &names {
///     event.field(name, Value::U8(0));
/// }
/// event.write(); // at the limit: written if enabled
/// ```
pub const MAX_DYNAMIC_FIELDS: usize = 32;
/// The most shapes a process interns.
///
/// ```
/// assert!(ferret_provider::dynamic_cache_stats().shapes <= ferret_provider::MAX_SHAPES);
/// ```
pub const MAX_SHAPES: usize = 4096;
/// The most bytes of interned descriptors (names, field lists and the
/// descriptors themselves) a process keeps.
///
/// ```
/// assert!(ferret_provider::dynamic_cache_stats().bytes <= ferret_provider::MAX_SHAPE_BYTES);
/// ```
pub const MAX_SHAPE_BYTES: usize = 1 << 20;
/// Entries in each thread's cache of recently used shapes.
const RECENT: usize = 64;

/// An event being built field by field; see [`Provider::dynamic_event`].
///
/// The builder's methods take and return `&mut Self`, like
/// `std::process::Command`'s, so that a chain ending in
/// [`write`](DynamicEvent::write) works on the temporary and the builder's
/// field arrays are never moved. If no session wants the event when it is
/// begun, adding fields and writing do nothing. Field names and string
/// values are borrowed until the event is written; nothing is copied or
/// allocated for a shape the process has seen before. Writing twice writes
/// the event twice.
///
/// ```
/// use ferret_provider::{Level, Opcode, Value};
///
/// ferret_provider::provider!(static SCRIPT = "Example.Dynamic");
///
/// // A script's event, described by data the program got at run time.
/// let (name, fields) = ("Score", [("player", Value::Str("ada")), ("points", Value::I64(12))]);
/// let mut event = SCRIPT.dynamic_event(name, Level::Information, 0x1);
/// event.opcode(Opcode::Info).id(4);
/// for (field, value) in fields {
///     event.field(field, value);
/// }
/// event.write();
/// ```
pub struct DynamicEvent<'a> {
    provider: Provider,
    enabled: bool,
    name: &'a str,
    id: u16,
    level: Level,
    keywords: u64,
    opcode: u8,
    activity: Option<Guid>,
    related: Option<Guid>,
    /// Fields added; more than `MAX_DYNAMIC_FIELDS` marks an overflow.
    len: usize,
    /// The first `min(len, MAX_DYNAMIC_FIELDS)` entries are initialised.
    names: [MaybeUninit<&'a str>; MAX_DYNAMIC_FIELDS],
    /// As `names`.
    values: [MaybeUninit<Value<'a>>; MAX_DYNAMIC_FIELDS],
}

impl fmt::Debug for DynamicEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicEvent")
            .field("provider", &self.provider.name())
            .field("enabled", &self.enabled)
            .field("name", &self.name)
            .field("level", &self.level)
            .field("keywords", &self.keywords)
            .field("opcode", &self.opcode)
            .field("fields", &self.names())
            .finish()
    }
}

impl<'a> DynamicEvent<'a> {
    #[inline]
    pub(crate) fn new(provider: Provider, name: &'a str, level: Level, keywords: u64) -> Self {
        DynamicEvent {
            provider,
            enabled: provider.enabled(level, keywords),
            name,
            id: 0,
            level,
            keywords,
            opcode: Opcode::Info as u8,
            activity: None,
            related: None,
            len: 0,
            names: [const { MaybeUninit::uninit() }; MAX_DYNAMIC_FIELDS],
            values: [const { MaybeUninit::uninit() }; MAX_DYNAMIC_FIELDS],
        }
    }

    /// True if a session wanted the event when it was begun: a program can
    /// skip computing fields otherwise.
    ///
    /// ```
    /// use ferret_provider::{Level, Value};
    ///
    /// ferret_provider::provider!(static SCRIPT = "Example.DynamicEnabled");
    /// let mut event = SCRIPT.dynamic_event("Costly", Level::Verbose, 0);
    /// if event.is_enabled() {
    ///     let summary = String::from("expensive");
    ///     event.field("summary", Value::Str(&summary)).write();
    /// }
    /// ```
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Sets the event id (default 0).
    ///
    /// ```
    /// # use ferret_provider::Level;
    /// # ferret_provider::provider!(static P = "Example.DynamicId");
    /// P.dynamic_event("E", Level::Information, 0).id(12).write();
    /// ```
    #[inline]
    pub fn id(&mut self, id: u16) -> &mut Self {
        self.id = id;
        self
    }

    /// Sets the opcode (default [`Opcode::Info`]).
    ///
    /// ```
    /// # use ferret_provider::{Level, Opcode};
    /// # ferret_provider::provider!(static P = "Example.DynamicOpcode");
    /// P.dynamic_event("Reply", Level::Information, 0).opcode(Opcode::Reply).write();
    /// ```
    #[inline]
    pub fn opcode(&mut self, opcode: Opcode) -> &mut Self {
        self.opcode = opcode as u8;
        self
    }

    /// Writes `id` as the event's activity id instead of the thread's
    /// current activity; for [`DynamicEvent::start_activity`], the new
    /// activity's id.
    ///
    /// ```
    /// # use ferret_provider::Level;
    /// # ferret_provider::provider!(static P = "Example.DynamicActivity");
    /// let job = ferret_provider::activity::new_id();
    /// P.dynamic_event("Queued", Level::Information, 0).activity(job).write();
    /// ```
    #[inline]
    pub fn activity(&mut self, id: Guid) -> &mut Self {
        self.activity = Some(id);
        self
    }

    /// Writes `id` as the event's related activity id (ETW's transfer);
    /// for [`DynamicEvent::start_activity`], instead of the activity
    /// current until now.
    ///
    /// ```
    /// # use ferret_provider::Level;
    /// # ferret_provider::provider!(static P = "Example.DynamicRelated");
    /// let (job, request) = (ferret_provider::activity::new_id(), ferret_provider::activity::new_id());
    /// P.dynamic_event("Handoff", Level::Information, 0).activity(job).related(request).write();
    /// ```
    #[inline]
    pub fn related(&mut self, id: Guid) -> &mut Self {
        self.related = Some(id);
        self
    }

    /// Adds a field. Field names should be unique within an event; more
    /// than [`MAX_DYNAMIC_FIELDS`] fields make the event invalid.
    ///
    /// ```
    /// # use ferret_provider::{Level, Value};
    /// # ferret_provider::provider!(static P = "Example.DynamicField");
    /// P.dynamic_event("Sample", Level::Information, 0)
    ///     .field("ok", Value::Bool(true))
    ///     .field("data", Value::Bytes(&[1, 2, 3]))
    ///     .write();
    /// ```
    #[inline]
    pub fn field(&mut self, name: &'a str, value: Value<'a>) -> &mut Self {
        if self.enabled {
            if let (Some(n), Some(v)) =
                (self.names.get_mut(self.len), self.values.get_mut(self.len))
            {
                n.write(name);
                v.write(value);
            }
            self.len = self.len.saturating_add(1);
        }
        self
    }

    /// Writes the event if a session wanted it when it was begun. It
    /// carries the thread's current activity id unless
    /// [`DynamicEvent::activity`] gave another.
    ///
    /// ```
    /// # use ferret_provider::{Level, Value};
    /// # ferret_provider::provider!(static P = "Example.DynamicWrite");
    /// P.dynamic_event("Tick", Level::Verbose, 0).field("n", Value::U64(1)).write();
    /// ```
    #[inline]
    pub fn write(&mut self) {
        if self.enabled {
            self.write_enabled();
        }
    }

    /// Out of line, so that the disabled path stays a test.
    #[inline(never)]
    fn write_enabled(&self) {
        if self.len > MAX_DYNAMIC_FIELDS {
            count_drop(DropReason::Invalid);
            return;
        }
        match intern(&self.shape(self.opcode, true)) {
            Ok(desc) => writer::write(
                self.provider.inner,
                desc,
                &writer::Checked::new(desc, self.values()),
                writer::Ids::Given(&activity::ids(self.activity, self.related)),
            ),
            Err(_) => count_drop(DropReason::NoMetadata),
        }
    }

    /// Starts an activity with this event as its start event (opcode
    /// [`Opcode::Start`], whatever [`DynamicEvent::opcode`] said): as
    /// [`start_activity!`](crate::start_activity), with a stop event of the
    /// same name, id, level and keywords and no fields when the returned
    /// guard is dropped. Inert if no session wanted the event.
    ///
    /// ```
    /// use ferret_provider::{Level, Value};
    ///
    /// ferret_provider::provider!(static SCRIPT = "Example.DynamicJob");
    /// let job = SCRIPT
    ///     .dynamic_event("ScriptRun", Level::Information, 0x1)
    ///     .field("script", Value::Str("main.lua"))
    ///     .start_activity();
    /// // ... events of the run carry its activity id ...
    /// drop(job);
    /// ```
    pub fn start_activity(&mut self) -> Activity {
        if !self.enabled {
            return Activity::inert();
        }
        if self.len > MAX_DYNAMIC_FIELDS {
            count_drop(DropReason::Invalid);
            return Activity::inert();
        }
        let start = intern(&self.shape(Opcode::Start as u8, true));
        let stop = intern(&self.shape(Opcode::Stop as u8, false));
        match (start, stop) {
            (Ok(start), Ok(stop)) => activity::start_descriptor(
                self.provider,
                start,
                stop,
                self.values(),
                self.activity,
                self.related,
            ),
            _ => {
                count_drop(DropReason::NoMetadata);
                Activity::inert()
            }
        }
    }

    fn names(&self) -> &[&'a str] {
        let n = self.len.min(MAX_DYNAMIC_FIELDS);
        // SAFETY: `field` initialised the first `n` entries (it writes
        // entry `len` before counting it, and never past the array).
        unsafe { std::slice::from_raw_parts(self.names.as_ptr().cast::<&'a str>(), n) }
    }

    fn values(&self) -> &[Value<'a>] {
        let n = self.len.min(MAX_DYNAMIC_FIELDS);
        // SAFETY: as in `names`.
        unsafe { std::slice::from_raw_parts(self.values.as_ptr().cast::<Value<'a>>(), n) }
    }

    fn shape(&self, opcode: u8, with_fields: bool) -> Shape<'_> {
        Shape {
            name: self.name,
            id: self.id,
            level: self.level,
            keywords: self.keywords,
            opcode,
            names: if with_fields { self.names() } else { &[] },
            types: Types::Values(if with_fields { self.values() } else { &[] }),
        }
    }
}

/// A shape built by hand, to intern once and write many times with
/// [`Provider::write`]: the fastest way to write events whose shape a
/// program learns at run time (a binding declaring an event type).
///
/// ```
/// use ferret_provider::{EventShape, FieldType, Level, Opcode, Value};
///
/// let desc = EventShape::new("Request", Level::Information)
///     .keywords(0x1)
///     .opcode(Opcode::Info)
///     .id(3)
///     .field("path", FieldType::Str)
///     .field("status", FieldType::U16)
///     .intern()
///     .expect("a valid shape, within the process's bounds");
///
/// ferret_provider::provider!(static WEB = "Example.Shape");
/// WEB.write(desc, &[Value::Str("/"), Value::U16(200)]);
///
/// // The same shape is the same descriptor.
/// let again = EventShape::new("Request", Level::Information)
///     .keywords(0x1).id(3).field("path", FieldType::Str).field("status", FieldType::U16)
///     .intern().unwrap();
/// assert!(std::ptr::eq(desc, again));
/// ```
#[derive(Clone, Debug)]
pub struct EventShape<'a> {
    name: &'a str,
    id: u16,
    level: Level,
    keywords: u64,
    opcode: u8,
    names: Vec<&'a str>,
    types: Vec<FieldType>,
}

impl<'a> EventShape<'a> {
    /// A shape called `name` at `level`, with no keywords, opcode info, id
    /// 0 and no fields.
    ///
    /// ```
    /// use ferret_provider::{EventShape, Level};
    /// let shape = EventShape::new("Ping", Level::Verbose);
    /// assert_eq!(shape.intern().unwrap().name, "Ping");
    /// ```
    pub fn new(name: &'a str, level: Level) -> Self {
        EventShape {
            name,
            id: 0,
            level,
            keywords: 0,
            opcode: Opcode::Info as u8,
            names: Vec::new(),
            types: Vec::new(),
        }
    }

    /// Sets the keyword mask.
    ///
    /// ```
    /// # use ferret_provider::{EventShape, Level};
    /// let d = EventShape::new("Net", Level::Verbose).keywords(0x10).intern().unwrap();
    /// assert_eq!(d.keywords, 0x10);
    /// ```
    pub fn keywords(mut self, keywords: u64) -> Self {
        self.keywords = keywords;
        self
    }

    /// Sets the opcode.
    ///
    /// ```
    /// # use ferret_provider::{EventShape, Level, Opcode};
    /// let d = EventShape::new("Open", Level::Verbose).opcode(Opcode::Start).intern().unwrap();
    /// assert_eq!(d.opcode, 1);
    /// ```
    pub fn opcode(mut self, opcode: Opcode) -> Self {
        self.opcode = opcode as u8;
        self
    }

    /// Sets the event id.
    ///
    /// ```
    /// # use ferret_provider::{EventShape, Level};
    /// let d = EventShape::new("Seven", Level::Verbose).id(7).intern().unwrap();
    /// assert_eq!(d.id, 7);
    /// ```
    pub fn id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }

    /// Adds a field.
    ///
    /// ```
    /// # use ferret_provider::{EventShape, FieldType, Level};
    /// let d = EventShape::new("Sized", Level::Verbose).field("len", FieldType::U64).intern().unwrap();
    /// assert_eq!(d.fields[0].name, "len");
    /// ```
    pub fn field(mut self, name: &'a str, ty: FieldType) -> Self {
        self.names.push(name);
        self.types.push(ty);
        self
    }

    /// The process's descriptor for this shape, created the first time.
    /// Fails if a name is too long (event names 1024 bytes, field names
    /// 255), there are more than 128 fields, or the process's interned
    /// shapes are at their bound.
    ///
    /// ```
    /// use ferret_provider::{EventShape, InternError, Level};
    ///
    /// let long = "x".repeat(2000);
    /// assert!(matches!(EventShape::new(&long, Level::Verbose).intern(), Err(InternError::Invalid(_))));
    /// ```
    pub fn intern(&self) -> Result<&'static EventDescriptor, InternError> {
        intern(&Shape {
            name: self.name,
            id: self.id,
            level: self.level,
            keywords: self.keywords,
            opcode: self.opcode,
            names: &self.names,
            types: Types::Listed(&self.types),
        })
    }
}

/// Why a shape could not be interned.
///
/// ```
/// use ferret_provider::InternError;
/// let e = InternError::Invalid("an event name is at most 1024 bytes");
/// assert!(e.to_string().contains("1024"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InternError {
    /// The shape is not one the log format can describe.
    Invalid(&'static str),
    /// The process already holds [`MAX_SHAPES`] shapes or
    /// [`MAX_SHAPE_BYTES`] bytes of them.
    Full,
}

impl fmt::Display for InternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InternError::Invalid(why) => write!(f, "invalid event shape: {why}"),
            InternError::Full => write!(
                f,
                "the process already holds {MAX_SHAPES} event shapes or {MAX_SHAPE_BYTES} bytes of them"
            ),
        }
    }
}

impl std::error::Error for InternError {}

/// The process's interned shapes.
///
/// ```
/// use ferret_provider::{EventShape, Level, dynamic_cache_stats};
///
/// EventShape::new("Counted", Level::Verbose).intern().unwrap();
/// let stats = dynamic_cache_stats();
/// assert!(stats.shapes >= 1 && stats.bytes > 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DynamicCacheStats {
    /// Shapes interned.
    pub shapes: usize,
    /// Bytes they take (names, field lists, descriptors).
    pub bytes: usize,
    /// Shapes refused because the bounds were reached (events of them were
    /// dropped and counted).
    pub refused: u64,
}

/// How many shapes the process has interned, and refused.
///
/// ```
/// let before = ferret_provider::dynamic_cache_stats();
/// assert!(before.shapes <= ferret_provider::MAX_SHAPES);
/// ```
pub fn dynamic_cache_stats() -> DynamicCacheStats {
    interner().lock().unwrap_or_else(|e| e.into_inner()).stats()
}

/// Field types of a shape: given, or those of the values.
#[derive(Clone, Copy)]
enum Types<'s> {
    Listed(&'s [FieldType]),
    Values(&'s [Value<'s>]),
}

/// A shape borrowed from a builder.
struct Shape<'s> {
    name: &'s str,
    id: u16,
    level: Level,
    keywords: u64,
    opcode: u8,
    names: &'s [&'s str],
    types: Types<'s>,
}

impl Shape<'_> {
    fn ty(&self, i: usize) -> FieldType {
        match self.types {
            Types::Listed(t) => t[i],
            Types::Values(v) => v[i].field_type(),
        }
    }

    /// A hash of everything the shape holds, eight bytes at a time (a
    /// byte-at-a-time hash costs a dependent multiply per byte, which is
    /// most of a dynamic event's cost). Each name's length is mixed in, so
    /// names cannot run into each other.
    fn hash(&self) -> u64 {
        let mut h = WordHash(0);
        h.bytes(self.name.as_bytes());
        h.word(u64::from(self.id) | (self.level as u64) << 16 | u64::from(self.opcode) << 24);
        h.word(self.keywords);
        for (i, name) in self.names.iter().enumerate() {
            h.word(self.ty(i) as u64);
            h.bytes(name.as_bytes());
        }
        h.0
    }

    /// A cheap key for the thread's cache: the name's length and its first
    /// and last eight bytes, the field count and types, level, opcode and
    /// keywords. Shapes that share it are told apart by `matches`.
    #[inline]
    fn probe(&self) -> u64 {
        let name = self.name.as_bytes();
        let edge = |b: &[u8]| {
            let mut w = [0u8; 8];
            w[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(w)
        };
        let mut types = 0u64;
        for i in 0..self.names.len().min(16) {
            types = types << 4 | self.ty(i) as u64;
        }
        let mut h = WordHash(0);
        h.word(
            name.len() as u64
                | (self.names.len() as u64) << 16
                | (self.level as u64) << 32
                | u64::from(self.opcode) << 40,
        );
        h.word(edge(&name[..name.len().min(8)]));
        h.word(edge(&name[name.len().saturating_sub(8)..]));
        h.word(types);
        h.word(self.keywords ^ u64::from(self.id));
        h.0
    }

    fn matches(&self, d: &EventDescriptor) -> bool {
        d.name == self.name
            && d.id == self.id
            && d.level == self.level
            && d.keywords == self.keywords
            && d.opcode == self.opcode
            && d.fields.len() == self.names.len()
            && d.fields
                .iter()
                .enumerate()
                .all(|(i, f)| f.name == self.names[i] && f.ty == self.ty(i))
    }

    fn check(&self) -> Result<(), InternError> {
        if self.name.len() > MAX_NAME {
            return Err(InternError::Invalid("an event name is at most 1024 bytes"));
        }
        if self.names.len() > MAX_FIELDS {
            return Err(InternError::Invalid("an event has at most 128 fields"));
        }
        if self.names.iter().any(|n| n.len() > MAX_FIELD_NAME) {
            return Err(InternError::Invalid("a field name is at most 255 bytes"));
        }
        Ok(())
    }

    /// Bytes an interned copy takes.
    fn cost(&self) -> usize {
        std::mem::size_of::<EventDescriptor>()
            + self.name.len()
            + self.names.len() * std::mem::size_of::<FieldDesc>()
            + self.names.iter().map(|n| n.len()).sum::<usize>()
    }

    /// A descriptor for the rest of the process.
    fn leak(&self) -> &'static EventDescriptor {
        let fields: Vec<FieldDesc> = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| FieldDesc::new(leak_str(n), self.ty(i)))
            .collect();
        Box::leak(Box::new(EventDescriptor::new(
            self.id,
            leak_str(self.name),
            self.level,
            self.keywords,
            self.opcode,
            Box::leak(fields.into_boxed_slice()),
        )))
    }
}

/// A multiply-rotate hash over 64-bit words (as rustc's FxHash).
struct WordHash(u64);

impl WordHash {
    #[inline]
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(26) ^ w).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }

    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        self.word(b.len() as u64);
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last));
        }
    }
}

fn leak_str(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// Interned shapes, bounded in number and bytes.
#[derive(Debug)]
struct Interner {
    by_hash: HashMap<u64, Vec<&'static EventDescriptor>>,
    shapes: usize,
    bytes: usize,
    refused: u64,
    max_shapes: usize,
    max_bytes: usize,
}

impl Interner {
    fn new(max_shapes: usize, max_bytes: usize) -> Interner {
        Interner {
            by_hash: HashMap::new(),
            shapes: 0,
            bytes: 0,
            refused: 0,
            max_shapes,
            max_bytes,
        }
    }

    /// The descriptor for `shape`, whose hash is `h`, created if new and
    /// within the bounds.
    fn find_or_add(
        &mut self,
        shape: &Shape<'_>,
        h: u64,
    ) -> Result<&'static EventDescriptor, InternError> {
        let found = self
            .by_hash
            .get(&h)
            .and_then(|list| list.iter().copied().find(|d| shape.matches(d)));
        if let Some(d) = found {
            return Ok(d);
        }
        shape.check()?;
        let cost = shape.cost();
        if self.shapes >= self.max_shapes || self.bytes + cost > self.max_bytes {
            self.refused += 1;
            return Err(InternError::Full);
        }
        let d = shape.leak();
        self.by_hash.entry(h).or_default().push(d);
        self.shapes += 1;
        self.bytes += cost;
        Ok(d)
    }

    fn stats(&self) -> DynamicCacheStats {
        DynamicCacheStats {
            shapes: self.shapes,
            bytes: self.bytes,
            refused: self.refused,
        }
    }
}

static INTERNER: OnceLock<Mutex<Interner>> = OnceLock::new();

fn interner() -> &'static Mutex<Interner> {
    INTERNER.get_or_init(|| Mutex::new(Interner::new(MAX_SHAPES, MAX_SHAPE_BYTES)))
}

/// The interning table's lock, held across a `fork()` by the link's fork
/// handlers: a thread that held it at the moment of the fork does not exist
/// in the child, which would otherwise wait for it forever on its first
/// dynamic event.
pub(crate) struct InternerForkGuard(#[allow(dead_code)] MutexGuard<'static, Interner>);

/// Takes the interning table's lock for a fork, creating the table first
/// if need be. Taking it only if it existed left a window: another thread
/// could create the table and lock it between this check and the fork (or
/// be inside the creation itself), and the child then waited forever on
/// its first dynamic event (1 hung child in about 30 runs of 50 forks).
pub(crate) fn lock_for_fork() -> Option<InternerForkGuard> {
    Some(InternerForkGuard(
        interner().lock().unwrap_or_else(|e| e.into_inner()),
    ))
}

thread_local! {
    /// Shapes this thread used recently, by hash (direct-mapped).
    static RECENT_SHAPES: RefCell<[Option<(u64, &'static EventDescriptor)>; RECENT]> =
        const { RefCell::new([None; RECENT]) };
}

/// The descriptor for `shape`: from the thread's cache, else the process's
/// table, else created if the bounds allow.
fn intern(shape: &Shape<'_>) -> Result<&'static EventDescriptor, InternError> {
    // The thread's cache is probed with a cheap key and confirmed by
    // comparing the whole shape; only a miss hashes everything.
    let probe = shape.probe();
    let slot = (probe % RECENT as u64) as usize;
    let cached = RECENT_SHAPES
        .try_with(|r| r.try_borrow().ok().and_then(|r| r[slot]))
        .ok()
        .flatten();
    if let Some((key, d)) = cached {
        if key == probe && shape.matches(d) {
            return Ok(d);
        }
    }
    let desc = interner()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .find_or_add(shape, shape.hash())?;
    let _ = RECENT_SHAPES.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            r[slot] = Some((probe, desc));
        }
    });
    Ok(desc)
}

/// Why a dynamic event was dropped before reaching the writer.
enum DropReason {
    Invalid,
    NoMetadata,
}

/// Counts a dropped dynamic event where the daemon reads process-wide
/// losses, so the sessions that wanted it see it lost.
#[cold]
fn count_drop(why: DropReason) {
    if let Some(region) = crate::link::global().and_then(|g| g.current_region()) {
        match why {
            DropReason::Invalid => region.count_invalid(),
            DropReason::NoMetadata => region.count_no_metadata(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape<'s>(name: &'s str, names: &'s [&'s str], types: &'s [FieldType]) -> Shape<'s> {
        Shape {
            name,
            id: 0,
            level: Level::Information,
            keywords: 1,
            opcode: 0,
            names,
            types: Types::Listed(types),
        }
    }

    #[test]
    fn equal_shapes_intern_once_and_different_ones_apart() {
        let a = intern(&shape("T.A", &["x"], &[FieldType::U32])).unwrap();
        let values = [Value::U32(5)];
        let from_values = intern(&Shape {
            types: Types::Values(&values),
            ..shape("T.A", &["x"], &[])
        })
        .unwrap();
        assert!(std::ptr::eq(a, from_values));
        // A thread with an empty cache finds the same descriptor.
        let other = std::thread::spawn(|| {
            intern(&shape("T.A", &["x"], &[FieldType::U32])).unwrap() as *const _ as usize
        })
        .join()
        .unwrap();
        assert_eq!(other, a as *const _ as usize);
        for different in [
            shape("T.B", &["x"], &[FieldType::U32]),
            shape("T.A", &["y"], &[FieldType::U32]),
            shape("T.A", &["x"], &[FieldType::I32]),
            shape("T.A", &[], &[]),
        ] {
            assert!(!std::ptr::eq(a, intern(&different).unwrap()));
        }
    }

    #[test]
    fn invalid_shapes_are_refused() {
        let long = "n".repeat(256);
        assert!(matches!(
            intern(&shape("T.Long", &[&long], &[FieldType::U8])),
            Err(InternError::Invalid(_))
        ));
    }

    #[test]
    fn the_bounds_hold_and_refusals_are_counted() {
        // A table of its own, so that filling it does not refuse the
        // shapes of other tests.
        let mut table = Interner::new(3, MAX_SHAPE_BYTES);
        let add = |t: &mut Interner, name: &str| {
            let s = shape(name, &[], &[]);
            t.find_or_add(&s, s.hash())
        };
        let first = add(&mut table, "T.Bound.0").unwrap();
        add(&mut table, "T.Bound.1").unwrap();
        add(&mut table, "T.Bound.2").unwrap();
        assert_eq!(add(&mut table, "T.Bound.3").err(), Some(InternError::Full));
        assert_eq!(add(&mut table, "T.Bound.4").err(), Some(InternError::Full));
        let stats = table.stats();
        assert_eq!((stats.shapes, stats.refused), (3, 2));
        // Shapes already interned are still found.
        assert!(std::ptr::eq(first, add(&mut table, "T.Bound.0").unwrap()));

        // The byte bound holds too.
        let big = "b".repeat(200);
        let mut table = Interner::new(MAX_SHAPES, 1000);
        let mut added = 0;
        while add(&mut table, &format!("{big}{added}")).is_ok() {
            added += 1;
        }
        assert!(added >= 1 && table.stats().bytes <= 1000);
    }
}
