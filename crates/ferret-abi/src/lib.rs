//! Ferret's binary interfaces: the shared-memory region between a provider
//! process and the daemon, the record encoding shared by rings and log files,
//! and the control-protocol messages.
//!
//! This crate defines layouts and codecs only. It opens no files, sockets or
//! mappings; the daemon, the provider library and the client do that with
//! these definitions. docs/ABI.md and docs/FORMAT.md are the normative
//! descriptions; this code follows them.

pub mod guid;
pub mod level;
pub mod limits;
pub mod paths;
pub mod payload;
pub mod proto;
pub mod record;
pub mod shm;
pub mod text;

pub use guid::Guid;
pub use level::{EnableFilter, Level, ParseLevelError};
pub use payload::Value;
