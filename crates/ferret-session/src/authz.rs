//! Who may control a session: a decision with no I/O, made from what the
//! kernel says about the peer (its uid, whether it is in the daemon's
//! control group) and what the session records (its owner, the token of
//! the controller that started it).

use crate::Session;

/// The peer asking, as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asker {
    pub uid: u32,
    /// A member of the daemon's control group (`--control-group`).
    pub in_control_group: bool,
}

/// Why a peer may not act on a session, in one line that says who may.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Neither the owner, root, nor a member of the control group.
    #[error("session '{session}' belongs to uid {owner_uid}; only {who} may control it")]
    NotOwner {
        session: String,
        owner_uid: u32,
        who: String,
    },
    /// A controller that stops only its own sessions (the viewer) asked to
    /// stop one another controller started.
    #[error(
        "session '{session}' (LoggerID {logger_id}) was started elsewhere ({controller}); stop it from the command line with 'ferret stop {session}'"
    )]
    NotStarter {
        session: String,
        logger_id: u32,
        controller: String,
    },
}

/// Whether `asker` may control `session`: its owner, root and members of
/// the control group (named `group`, if the daemon has one) may.
pub fn may_control(asker: Asker, session: &Session, group: Option<&str>) -> Result<(), Refusal> {
    if asker.uid == 0 || asker.uid == session.owner_uid || asker.in_control_group {
        return Ok(());
    }
    Err(Refusal::NotOwner {
        session: session.name.clone(),
        owner_uid: session.owner_uid,
        who: match group {
            Some(g) => format!("its owner, root or members of group '{g}'"),
            None => "its owner or root".to_string(),
        },
    })
}

/// Whether a controller holding `token` started `session`, for a stop
/// that asks to stop only the caller's own sessions.
pub fn started_by(session: &Session, token: u64) -> Result<(), Refusal> {
    if session.controller_token == token {
        return Ok(());
    }
    Err(Refusal::NotStarter {
        session: session.name.clone(),
        logger_id: session.logger_id,
        controller: if session.controller.is_empty() {
            "another controller".to_string()
        } else {
            session.controller.clone()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionTable;
    use ferret_abi::proto::{FileMode, StartRequest};

    fn session(table: &mut SessionTable, owner: u32, token: u64) -> &Session {
        let req = StartRequest {
            name: "net".into(),
            providers: Vec::new(),
            log_file: String::new(),
            buffer_kib: 64,
            max_buffers: 64,
            flush_timer_ms: 1000,
            min_buffers: 4,
            file_mode: FileMode::RealTime,
            max_file_bytes: 0,
            realtime: true,
            controller: "ferret view pid 7".into(),
            no_loss: false,
            no_loss_wait_ms: 0,
        };
        table.insert(&req, owner, "tsc", 0, token).unwrap()
    }

    #[test]
    fn owners_root_and_the_control_group_may_control_and_no_one_else() {
        let mut t = SessionTable::new(4);
        let s = session(&mut t, 1000, 9);
        let asker = |uid, in_control_group| Asker {
            uid,
            in_control_group,
        };
        assert_eq!(may_control(asker(1000, false), s, None), Ok(()));
        assert_eq!(may_control(asker(0, false), s, None), Ok(()));
        assert_eq!(may_control(asker(1001, true), s, Some("tracing")), Ok(()));
        let e = may_control(asker(1001, false), s, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "session 'net' belongs to uid 1000; only its owner or root may control it"
        );
        let e = may_control(asker(1001, false), s, Some("tracing")).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("only its owner, root or members of group 'tracing' may control it")
        );
    }

    #[test]
    fn only_the_starting_controller_passes_the_token_check() {
        let mut t = SessionTable::new(4);
        let s = session(&mut t, 1000, 9);
        assert_eq!(started_by(s, 9), Ok(()));
        assert_eq!(
            started_by(s, 8).unwrap_err().to_string(),
            "session 'net' (LoggerID 1) was started elsewhere (ferret view pid 7); stop it from the command line with 'ferret stop net'"
        );
    }
}
