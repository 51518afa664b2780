//! Why the session library refused a request: a kind the daemon answers by
//! (each kind maps to one protocol error code at the daemon's boundary) and
//! one line for the user that says what to do next.

use crate::Refusal;

/// The kind of refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// No session by that LoggerID or LoggerName.
    NotFound,
    /// A session by that name exists.
    AlreadyExists,
    /// A value is out of range or malformed.
    Invalid,
    /// The session is not in a state that allows this.
    WrongState,
    /// The asker may not act on the session.
    Denied,
    /// A limit is reached (sessions, buffer memory, consumers).
    Resources,
}

/// A refusal from the session library, in one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SessionError {
    /// The kind of refusal.
    pub why: Why,
    /// One line for the user: what failed and what to do next.
    pub message: String,
}

impl SessionError {
    /// A refusal of kind `why`.
    pub fn new(why: Why, message: impl Into<String>) -> SessionError {
        SessionError {
            why,
            message: message.into(),
        }
    }
}

impl From<Refusal> for SessionError {
    fn from(r: Refusal) -> SessionError {
        SessionError::new(Why::Denied, r.to_string())
    }
}
