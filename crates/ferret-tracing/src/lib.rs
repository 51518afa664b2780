//! A [`tracing_subscriber`] layer that writes `tracing` events as Ferret
//! events and `tracing` spans as Ferret activities, so that a program
//! instrumented with `tracing` becomes a Ferret provider by adding one layer.
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//!
//! tracing_subscriber::registry()
//!     .with(ferret_tracing::layer("MyCompany.App"))
//!     .init();
//! tracing::info!(port = 8080u16, "listening");
//! ```
//!
//! Then `ferret start app -p MyCompany.App:verbose -f app.ferret` records
//! the program's events and spans. The layer composes with the program's
//! other layers (a `fmt` layer printing to the terminal keeps working): it
//! carries its own per-layer filter, so what Ferret's sessions enable
//! changes nothing for the other layers.
//!
//! # Disabled call sites stay free
//!
//! The filter tells `tracing` that a call site is *always* or *never*
//! interesting, from what the sessions enable when the call site is first
//! hit, and reports the most verbose enabled level as its
//! [`max_level_hint`](tracing_subscriber::layer::Filter::max_level_hint).
//! When a session enables, disables or re-filters the provider, the daemon
//! wakes the process and the layer calls
//! [`tracing_core::callsite::rebuild_interest_cache`], so a call site no
//! session wants is skipped by `tracing`'s own checks (a static level
//! compare or one cached interest load) before any field is evaluated.
//!
//! # Events
//!
//! * **Provider.** One provider for the layer, named by the program, with
//!   each event's `tracing` target as its `target` field. A provider is
//!   what an operator names to start tracing; targets are module paths,
//!   unbounded in number and unknown to an operator before they see them.
//!   Filtering by target after the fact is one `grep` or `jq` away.
//! * **Event name.** The `tracing` metadata name: for events, what the
//!   program gave with `name:` or `tracing`'s default `event FILE:LINE`;
//!   for spans, the span's name.
//! * **Fields** keep their types: integers (64-bit; 128-bit ones as text
//!   when they do not fit), floats, booleans and strings are written as
//!   such; errors and `?`/`%` values as text. The message is the field
//!   `message`. Each event also has `target`.
//! * **Levels**: `ERROR` → Error (2), `WARN` → Warning (3), `INFO` →
//!   Information (4), `DEBUG` and `TRACE` → Verbose (5). Keywords tell what
//!   ETW's levels cannot: [`KEYWORD_SPAN`] on span start and stop events,
//!   [`KEYWORD_DEBUG`] on `DEBUG` and [`KEYWORD_TRACE`] on `TRACE` ones, and
//!   none on the rest (which every keyword filter accepts).
//! * **Spans** become activities: when a span is created, a start event
//!   (opcode 1) with a new activity id, the parent span's activity (or the
//!   thread's current one) as related id, and the span's fields; while the
//!   span is entered, its activity is the thread's current activity, so
//!   every event inside carries its id; when the span closes, a stop event
//!   (opcode 2) with the same id. Values recorded into a span after it was
//!   created are written as an event named after the span, opcode Info,
//!   carrying the span's activity id.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use ferret_provider::{FieldBuffer, Guid, Level, Opcode, Provider, Value, activity};
use tracing_core::field::{Field, Visit};
use tracing_core::span::{self, Attributes, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

/// Keyword of span start and stop events (and of values recorded into a
/// span later): `ferret start s -p MyCompany.App:verbose:0x1` takes spans
/// and the events of levels Information and above.
pub const KEYWORD_SPAN: u64 = 0x1;
/// Keyword of `DEBUG` events and spans, to tell them from `TRACE` ones
/// (both are ETW's Verbose level).
pub const KEYWORD_DEBUG: u64 = 0x2;
/// Keyword of `TRACE` events and spans: a session whose keywords leave
/// this bit out gets no `TRACE` call site.
pub const KEYWORD_TRACE: u64 = 0x4;

/// The ETW level and keywords of a call site.
///
/// ```
/// use ferret_provider::Level;
///
/// tracing::subscriber::with_default(tracing_subscriber::registry(), || {
///     let span = tracing::debug_span!("work");
///     let meta = span.metadata().expect("the registry enables every span");
///     assert_eq!(
///         ferret_tracing::level_and_keywords(meta),
///         (Level::Verbose, ferret_tracing::KEYWORD_SPAN | ferret_tracing::KEYWORD_DEBUG)
///     );
/// });
/// ```
pub fn level_and_keywords(meta: &Metadata<'_>) -> (Level, u64) {
    let span = if meta.is_span() { KEYWORD_SPAN } else { 0 };
    let (level, keywords) = match *meta.level() {
        tracing_core::Level::ERROR => (Level::Error, 0),
        tracing_core::Level::WARN => (Level::Warning, 0),
        tracing_core::Level::INFO => (Level::Information, 0),
        tracing_core::Level::DEBUG => (Level::Verbose, KEYWORD_DEBUG),
        _ => (Level::Verbose, KEYWORD_TRACE),
    };
    (level, keywords | span)
}

/// The layer returned by [`layer`]: the event writer with its filter,
/// for programs that name the layer's type (in a struct field, say).
///
/// ```
/// use tracing_subscriber::Registry;
///
/// let layer: ferret_tracing::FerretLayer<Registry> = ferret_tracing::layer("Example.Typed");
/// # drop(layer);
/// ```
pub type FerretLayer<S> = Filtered<EventWriter, ProviderFilter, S>;

/// A layer writing to the provider called `provider_name` (registered now),
/// with the filter that follows the provider's sessions.
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
///
/// tracing_subscriber::registry()
///     .with(ferret_tracing::layer("MyCompany.App"))
///     .init();
/// let _request = tracing::info_span!("request", path = "/").entered();
/// tracing::info!(status = 200u16, "done");
/// ```
pub fn layer<S>(provider_name: &str) -> FerretLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let provider = Provider::register(provider_name);
    EventWriter { provider }.with_filter(ProviderFilter::new(provider))
}

static REBUILD_ON_CHANGE: AtomicBool = AtomicBool::new(false);

/// The per-layer filter: a call site is wanted when some session enables
/// the provider at its level and keywords.
#[derive(Debug, Clone, Copy)]
pub struct ProviderFilter {
    provider: Provider,
}

impl ProviderFilter {
    /// The filter for `provider`. From now on, every change to what the
    /// provider's sessions enable rebuilds `tracing`'s interest cache.
    /// [`layer`] makes one; this is for putting the filter on a layer of
    /// the program's own.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    ///
    /// let provider = ferret_provider::Provider::register("Example.Filter");
    /// let filter = ferret_tracing::ProviderFilter::new(provider);
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(tracing_subscriber::layer::Identity::new().with_filter(filter));
    /// # drop(subscriber);
    /// ```
    pub fn new(provider: Provider) -> ProviderFilter {
        if !REBUILD_ON_CHANGE.swap(true, Ordering::AcqRel) {
            ferret_provider::on_enable_change(tracing_core::callsite::rebuild_interest_cache);
        }
        ProviderFilter { provider }
    }

    fn wants(&self, meta: &Metadata<'_>) -> bool {
        let (level, keywords) = level_and_keywords(meta);
        self.provider.enabled(level, keywords)
    }
}

impl<S> Filter<S> for ProviderFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        self.wants(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        // Cached by tracing until the next rebuild, which every enable
        // change triggers.
        if self.wants(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match self.provider.max_level() {
            None => LevelFilter::OFF,
            Some(Level::Critical | Level::Error) => LevelFilter::ERROR,
            Some(Level::Warning) => LevelFilter::WARN,
            Some(Level::Information) => LevelFilter::INFO,
            Some(Level::Verbose) => {
                if self.provider.enabled(Level::Verbose, KEYWORD_TRACE) {
                    LevelFilter::TRACE
                } else {
                    LevelFilter::DEBUG
                }
            }
        })
    }
}

/// Writes events and spans; see the crate documentation for their shape.
/// [`layer`] pairs it with its [`ProviderFilter`]; without the filter it
/// would see every call site some other layer wants.
#[derive(Debug, Clone, Copy)]
pub struct EventWriter {
    provider: Provider,
}

/// The activity of a span, kept in the span's extensions.
#[derive(Debug, Clone, Copy)]
struct SpanActivity(Guid);

thread_local! {
    /// Fields of the event being written, reused across events.
    static FIELDS: RefCell<FieldBuffer> = const { RefCell::new(FieldBuffer::new()) };
    /// For each span entered on this thread and not yet exited: its id and
    /// the activity that was current before it.
    static ENTERED: RefCell<Vec<(span::Id, Option<Guid>)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the thread's field buffer, emptied; with a fresh one if an
/// event is written while another is being formatted on this thread.
fn with_fields(f: impl FnOnce(&mut FieldBuffer)) {
    let mut f = Some(f);
    let _ = FIELDS.try_with(|cell| {
        if let Ok(mut fields) = cell.try_borrow_mut() {
            fields.clear();
            if let Some(f) = f.take() {
                f(&mut fields);
            }
        }
    });
    if let Some(f) = f {
        f(&mut FieldBuffer::new());
    }
}

/// Copies `tracing` field values into a buffer, keeping their types.
struct Fields<'b>(&'b mut FieldBuffer);

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.push(field.name(), Value::F64(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push(field.name(), Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push(field.name(), Value::U64(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.0.push(field.name(), Value::I64(v)),
            Err(_) => self.0.push_display(field.name(), &value),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(v) => self.0.push(field.name(), Value::U64(v)),
            Err(_) => self.0.push_display(field.name(), &value),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.push(field.name(), Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push(field.name(), Value::Str(value));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.0.push(field.name(), Value::Bytes(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.push_display(field.name(), &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` arrives here as a Debug wrapper that prints Display, and
        // the message as `format_args!`, whose Debug is its text.
        self.0.push_debug(field.name(), value);
    }
}

impl EventWriter {
    /// Writes one event named after `meta` with the fields `record` adds.
    fn write(
        &self,
        meta: &Metadata<'_>,
        opcode: Opcode,
        activity: Option<Guid>,
        related: Option<Guid>,
        record: impl FnOnce(&mut Fields<'_>),
    ) {
        let (level, keywords) = level_and_keywords(meta);
        if !self.provider.enabled(level, keywords) {
            return;
        }
        with_fields(|fields| {
            fields.push("target", Value::Str(meta.target()));
            record(&mut Fields(fields));
            let mut event = self.provider.dynamic_event(meta.name(), level, keywords);
            event.opcode(opcode);
            if let Some(id) = activity {
                event.activity(id);
            }
            if let Some(id) = related {
                event.related(id);
            }
            fields.add_to(&mut event);
            event.write();
        });
    }
}

impl<S> Layer<S> for EventWriter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        // The event carries the thread's current activity: the innermost
        // entered span's, set in `on_enter`.
        self.write(event.metadata(), Opcode::Info, None, None, |v| {
            event.record(v)
        });
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<SpanActivity>().map(|a| a.0))
            .or_else(activity::current);
        let activity = activity::new_id();
        span.extensions_mut().insert(SpanActivity(activity));
        self.write(
            attrs.metadata(),
            Opcode::Start,
            Some(activity),
            parent,
            |v| attrs.record(v),
        );
    }

    fn on_record(&self, id: &span::Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let activity = span.extensions().get::<SpanActivity>().map(|a| a.0);
        self.write(span.metadata(), Opcode::Info, activity, None, |v| {
            values.record(v)
        });
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        let Some(activity) = ctx
            .span(id)
            .and_then(|s| s.extensions().get::<SpanActivity>().map(|a| a.0))
        else {
            return;
        };
        let previous = activity::set_current(Some(activity));
        let _ = ENTERED.try_with(|e| {
            if let Ok(mut e) = e.try_borrow_mut() {
                e.push((id.clone(), previous));
            }
        });
    }

    fn on_exit(&self, id: &span::Id, _ctx: Context<'_, S>) {
        let _ = ENTERED.try_with(|e| {
            let Ok(mut e) = e.try_borrow_mut() else {
                return;
            };
            // Spans normally exit in the reverse order of entering; if one
            // does not, its entry is still the one to undo.
            if let Some(i) = e.iter().rposition(|(entered, _)| entered == id) {
                let (_, previous) = e.remove(i);
                activity::set_current(previous);
            }
        });
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(activity) = span.extensions().get::<SpanActivity>().map(|a| a.0) else {
            return;
        };
        self.write(span.metadata(), Opcode::Stop, Some(activity), None, |_| {});
    }
}
