//! A [`log::Log`] that writes every log record as a Ferret event, so that a
//! program (or a library it uses) that logs through the `log` crate becomes a
//! Ferret provider by installing one logger.
//!
//! ```no_run
//! // At the start of main: records go to the provider "MyCompany.App".
//! ferret_log::init("MyCompany.App").expect("no other logger was installed");
//! log::info!(target: "startup", "listening on {}", 8080);
//! ```
//!
//! Then `ferret start app -p MyCompany.App:verbose -f app.ferret` records
//! them. Nothing is formatted or written while no session enables the
//! provider: the logger keeps [`log::set_max_level`] in step with the most
//! verbose level any session enables (it is `Off` when none does), so a
//! disabled `log::debug!` costs what it costs with no logger at all.
//!
//! # Events
//!
//! Each record becomes one event of the provider, named `Log`, with fields
//! `message` (the formatted text), `target`, `module`, `file` and `line`
//! (the last three when the record has them), followed by the record's
//! structured key-values (the `kv` feature of `log`) with their types:
//! integers, floats, booleans and text keep their type, anything else is
//! written as its `Display` text.
//!
//! Levels map to ETW levels: `Error` → Error (2), `Warn` → Warning (3),
//! `Info` → Information (4), `Debug` and `Trace` → Verbose (5). ETW has no
//! level below Verbose, so `Debug` records carry the keyword
//! [`KEYWORD_DEBUG`] and `Trace` ones [`KEYWORD_TRACE`], and the others no
//! keyword (which every keyword filter accepts): a session that enables the
//! provider at verbose with keywords `0x1` gets every record but the trace
//! ones.
//!
//! One provider for the whole program, with the target as a field, rather
//! than a provider per target: targets are module paths, unbounded in
//! number and unknown to an operator before they see them, while a provider
//! is what an operator names to start tracing. `ferret fmt` shows the
//! target of every record, and filtering by target after the fact is one
//! `grep` or `jq` away.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use ferret_provider::{FieldBuffer, Level, Provider, Value};
use log::kv::{Key, VisitSource};

/// Keyword of `Debug` records, to tell them from `Trace` ones (both are
/// ETW's Verbose level): `ferret start s -p MyCompany.App:verbose:0x1`
/// takes every record but the trace ones.
pub const KEYWORD_DEBUG: u64 = 0x1;
/// Keyword of `Trace` records: `ferret start s -p MyCompany.App:verbose:0x2`
/// takes trace records and those of levels Information and above.
pub const KEYWORD_TRACE: u64 = 0x2;

/// The event name of every record, as `ferret fmt` shows it:
/// `MyCompany.App/Log`.
pub const EVENT_NAME: &str = "Log";

/// The ETW level and keywords of a `log` level.
///
/// ```
/// use ferret_provider::Level;
///
/// assert_eq!(ferret_log::level_and_keywords(log::Level::Warn), (Level::Warning, 0));
/// assert_eq!(
///     ferret_log::level_and_keywords(log::Level::Trace),
///     (Level::Verbose, ferret_log::KEYWORD_TRACE)
/// );
/// ```
pub fn level_and_keywords(level: log::Level) -> (Level, u64) {
    match level {
        log::Level::Error => (Level::Error, 0),
        log::Level::Warn => (Level::Warning, 0),
        log::Level::Info => (Level::Information, 0),
        log::Level::Debug => (Level::Verbose, KEYWORD_DEBUG),
        log::Level::Trace => (Level::Verbose, KEYWORD_TRACE),
    }
}

/// The `log` level filter that lets through what some session of
/// `provider` wants: the most verbose enabled level, `Off` when none is.
///
/// ```
/// let provider = ferret_provider::Provider::register("Example.LogLevels");
/// // With no session enabling the provider, `log` needs to let nothing by.
/// assert_eq!(ferret_log::max_level_filter(provider), log::LevelFilter::Off);
/// ```
pub fn max_level_filter(provider: Provider) -> log::LevelFilter {
    match provider.max_level() {
        None => log::LevelFilter::Off,
        Some(Level::Critical | Level::Error) => log::LevelFilter::Error,
        Some(Level::Warning) => log::LevelFilter::Warn,
        Some(Level::Information) => log::LevelFilter::Info,
        Some(Level::Verbose) => {
            // Verbose covers both Debug and Trace; let Trace records through
            // only if some session's keywords accept them.
            if provider.enabled(Level::Verbose, KEYWORD_TRACE) {
                log::LevelFilter::Trace
            } else {
                log::LevelFilter::Debug
            }
        }
    }
}

/// The logger: writes records to one provider (see [`FerretLogger::new`]).
#[derive(Debug, Clone, Copy)]
pub struct FerretLogger {
    provider: Provider,
}

static MAX_LEVEL_SYNC: AtomicBool = AtomicBool::new(false);

impl FerretLogger {
    /// A logger writing to the provider called `provider_name` (registered
    /// now). Install it with [`log::set_boxed_logger`] and call
    /// [`keep_max_level_in_step`], or use [`init`], which does both.
    ///
    /// ```no_run
    /// let logger = ferret_log::FerretLogger::new("MyCompany.App");
    /// let provider = logger.provider();
    /// log::set_boxed_logger(Box::new(logger)).expect("the only logger");
    /// ferret_log::keep_max_level_in_step(provider);
    /// ```
    pub fn new(provider_name: &str) -> FerretLogger {
        FerretLogger {
            provider: Provider::register(provider_name),
        }
    }

    /// The provider records go to.
    ///
    /// ```
    /// let logger = ferret_log::FerretLogger::new("Example.LogProvider");
    /// assert_eq!(logger.provider().name(), "Example.LogProvider");
    /// ```
    pub fn provider(&self) -> Provider {
        self.provider
    }
}

/// Installs a [`FerretLogger`] for `provider_name` as the process's logger
/// and keeps `log`'s maximum level in step with the sessions that enable
/// the provider, from now on.
///
/// # Errors
///
/// Fails if the process already has a logger; `log` allows only one.
///
/// ```no_run
/// ferret_log::init("MyCompany.App").expect("no other logger was installed");
/// log::warn!("disk {}% full", 91);
/// ```
pub fn init(provider_name: &str) -> Result<(), log::SetLoggerError> {
    let logger = FerretLogger::new(provider_name);
    log::set_boxed_logger(Box::new(logger))?;
    keep_max_level_in_step(logger.provider);
    Ok(())
}

/// Sets `log::set_max_level` from `provider`'s sessions now and whenever
/// they change. Call it once, after installing a [`FerretLogger`] by hand
/// (see [`FerretLogger::new`]).
///
/// ```
/// let provider = ferret_provider::Provider::register("Example.LogSync");
/// ferret_log::keep_max_level_in_step(provider);
/// // No session enables the provider, so `log` filters everything out.
/// assert_eq!(log::max_level(), log::LevelFilter::Off);
/// ```
pub fn keep_max_level_in_step(provider: Provider) {
    log::set_max_level(max_level_filter(provider));
    if !MAX_LEVEL_SYNC.swap(true, Ordering::AcqRel) {
        ferret_provider::on_enable_change(move || {
            log::set_max_level(max_level_filter(provider));
        });
    }
}

thread_local! {
    /// Fields of the record being written, reused across records.
    static FIELDS: RefCell<FieldBuffer> = const { RefCell::new(FieldBuffer::new()) };
}

/// Copies a record's key-values into the buffer, keeping their types.
struct KeyValues<'b>(&'b mut FieldBuffer);

impl<'kvs> VisitSource<'kvs> for KeyValues<'_> {
    fn visit_pair(
        &mut self,
        key: Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let name = key.as_str();
        if let Some(v) = value.to_u64() {
            self.0.push(name, Value::U64(v));
        } else if let Some(v) = value.to_i64() {
            self.0.push(name, Value::I64(v));
        } else if let Some(v) = value.to_f64() {
            self.0.push(name, Value::F64(v));
        } else if let Some(v) = value.to_bool() {
            self.0.push(name, Value::Bool(v));
        } else if let Some(s) = value.to_borrowed_str() {
            self.0.push(name, Value::Str(s));
        } else {
            self.0.push_display(name, &value);
        }
        Ok(())
    }
}

impl FerretLogger {
    fn write(&self, record: &log::Record<'_>, fields: &mut FieldBuffer) {
        let (level, keywords) = level_and_keywords(record.level());
        let mut event = self.provider.dynamic_event(EVENT_NAME, level, keywords);
        if !event.is_enabled() {
            return;
        }
        fields.clear();
        fields.push_display("message", record.args());
        fields.push("target", Value::Str(record.target()));
        if let Some(module) = record.module_path() {
            fields.push("module", Value::Str(module));
        }
        if let Some(file) = record.file() {
            fields.push("file", Value::Str(file));
        }
        if let Some(line) = record.line() {
            fields.push("line", Value::U32(line));
        }
        // A source that fails part way keeps the pairs it gave.
        let _ = record.key_values().visit(&mut KeyValues(fields));
        fields.add_to(&mut event);
        event.write();
    }
}

impl log::Log for FerretLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let (level, keywords) = level_and_keywords(metadata.level());
        self.provider.enabled(level, keywords)
    }

    fn log(&self, record: &log::Record<'_>) {
        let _ = FIELDS.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut fields) => self.write(record, &mut fields),
            // A record logged while formatting another one on this thread
            // (a Display impl that logs) gets a buffer of its own.
            Err(_) => self.write(record, &mut FieldBuffer::new()),
        });
    }

    fn flush(&self) {}
}
