//! The daemon's boundary with the protocol: the session library decides in
//! its own types, and this turns its sessions and refusals into the replies
//! the protocol sends, in one place.

use std::sync::atomic::Ordering;

use ferret_abi::proto::{ErrorCode, ErrorReply, SessionInfo};
use ferret_session::{Session, SessionError, Why};

/// The wire form of `s`, as `query`, `list` and the watch feed show it.
pub(crate) fn session_info(s: &Session) -> SessionInfo {
    SessionInfo {
        logger_id: s.logger_id,
        name: s.name.clone(),
        state: s.state,
        providers: s.providers.clone(),
        log_file: s.log_file.clone(),
        buffer_kib: s.buffer_kib,
        max_buffers: s.max_buffers,
        flush_timer_ms: s.flush_timer_ms,
        clock: s.clock.clone(),
        owner_uid: s.owner_uid,
        started_unix_ns: s.started_unix_ns,
        stopped_unix_ns: s.stopped_unix_ns,
        counters: s.counters.snapshot(),
        last_error: s.counters.error(),
        min_buffers: s.min_buffers,
        file_mode: s.file_mode,
        max_file_bytes: s.max_file_bytes,
        realtime: s.realtime,
        consumers: s.consumers,
        controller: s.controller.clone(),
        provider_lost: s.counters.provider_lost(),
        no_loss: s.no_loss,
        no_loss_wait_ms: s.no_loss_wait_ms,
        files_synced: s.counters.files_synced.load(Ordering::Relaxed),
    }
}

/// The reply for a refusal of the session library: its line, under the
/// protocol's code for its kind.
pub(crate) fn refused(e: SessionError) -> ErrorReply {
    ErrorReply {
        code: match e.why {
            Why::NotFound => ErrorCode::NotFound,
            Why::AlreadyExists => ErrorCode::AlreadyExists,
            Why::Invalid => ErrorCode::Invalid,
            Why::WrongState => ErrorCode::WrongState,
            Why::Denied => ErrorCode::Permission,
            Why::Resources => ErrorCode::Resources,
        },
        message: e.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_refusal_keeps_its_line_under_its_own_code() {
        let kinds = [
            (Why::NotFound, ErrorCode::NotFound),
            (Why::AlreadyExists, ErrorCode::AlreadyExists),
            (Why::Invalid, ErrorCode::Invalid),
            (Why::WrongState, ErrorCode::WrongState),
            (Why::Denied, ErrorCode::Permission),
            (Why::Resources, ErrorCode::Resources),
        ];
        for (why, code) in kinds {
            let r = refused(SessionError::new(why, "the line"));
            assert_eq!(
                r,
                ErrorReply {
                    code,
                    message: "the line".into()
                }
            );
        }
    }
}
