//! The session daemon's logic, with no I/O: the session table (LoggerNames,
//! LoggerIDs, states, properties, owners), the provider registry, the
//! counters every session keeps, and the routes that say which session wants
//! which provider's events.
//!
//! The daemon crate owns threads, sockets, memfds and files and calls into
//! this crate to decide; everything here is testable without a daemon.

mod authz;
mod budget;
mod counters;
mod error;
mod registry;
mod routes;
mod stop;
mod table;

pub use authz::{Asker, Refusal, may_control, started_by};
pub use budget::{
    BufferBudget, DEFAULT_USER_BUFFER_MEMORY, MIN_BUFFER_MEMORY, mem_total, parse_memory,
    reservation,
};
pub use counters::SessionCounters;
pub use error::{SessionError, Why};
pub use ferret_abi::limits::{
    DEFAULT_BUFFER_KIB, DEFAULT_FLUSH_TIMER_MS, DEFAULT_MAX_BUFFERS, DEFAULT_MIN_BUFFERS,
    DEFAULT_NO_LOSS_WAIT_MS, DEFAULT_SESSION_LIMIT, MAX_LISTED_SESSIONS, MAX_LOG_PATH,
    MAX_NO_LOSS_WAIT_MS, MAX_REALTIME_BUFFER_KIB, MIN_FILE_SLOTS, validate_flush_timer,
    validate_log_path, validate_max_buffers, validate_providers, validate_start,
};
pub use registry::{ProviderEntry, Registry};
pub use routes::{RegionSlots, RouteTable, SlotIter, SlotRoutes, enable_words, no_loss_wait_us};
pub use stop::{StopStep, Stopping};
pub use table::{MAX_CONSUMERS_PER_SESSION, Session, SessionKey, SessionTable};
/// Identifies one provider process's shared-memory region for the life of the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionId(pub u64);
