//! The protocol's defaults and limits, and the checks of a start or update
//! request that depend on nothing but the request: the controller runs them
//! before it opens a file or starts a daemon, and the daemon runs them again
//! on whatever it receives.

use crate::proto::{
    ErrorCode, ErrorReply, FileMode, MAX_SESSION_PROVIDERS, ProviderSpec, StartRequest,
    validate_provider_name, validate_session_name,
};

fn refuse(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        code,
        message: message.into(),
    }
}

/// The default buffer size, KiB.
pub const DEFAULT_BUFFER_KIB: u32 = 64;
/// The default most buffers a session holds.
pub const DEFAULT_MAX_BUFFERS: u32 = 64;
/// The default flush timer, milliseconds.
pub const DEFAULT_FLUSH_TIMER_MS: u32 = 1000;
/// The default limit on sessions that are RUNNING or STOPPING.
pub const DEFAULT_SESSION_LIMIT: usize = 64;
/// The default number of buffers allocated at start; the rest, up to the
/// maximum, are allocated as the session needs them.
pub const DEFAULT_MIN_BUFFERS: u32 = 4;
/// The largest buffer a real-time session may use: each buffer travels to
/// consumers as one packet, and a Unix socket's default send buffer
/// (208 KiB) caps the packet size.
pub const MAX_REALTIME_BUFFER_KIB: u32 = 128;
/// How long writers wait for ring space in a no-loss session unless told.
pub const DEFAULT_NO_LOSS_WAIT_MS: u32 = 1000;
/// The longest no-loss wait a session may ask for, in milliseconds.
pub const MAX_NO_LOSS_WAIT_MS: u32 = 60_000;
/// The fewest slots a circular or new-file log may have: two data slots and
/// the trailer's.
pub const MIN_FILE_SLOTS: u64 = 3;

/// The most memory one session's buffers may take.
const MAX_SESSION_MEMORY: u64 = 1 << 30;

/// Checks everything in a start request that does not depend on other sessions.
pub fn validate_start(req: &StartRequest) -> Result<(), ErrorReply> {
    validate_session_name(&req.name).map_err(|m| refuse(ErrorCode::Invalid, m))?;
    validate_providers(&req.providers)?;
    if !(4..=16384).contains(&req.buffer_kib) || req.buffer_kib % 4 != 0 {
        return Err(refuse(
            ErrorCode::Invalid,
            format!(
                "buffer size {} KiB is not valid; use a multiple of 4 from 4 to 16384",
                req.buffer_kib
            ),
        ));
    }
    validate_max_buffers(req.max_buffers, req.buffer_kib)?;
    validate_flush_timer(req.flush_timer_ms)?;
    if req.min_buffers > req.max_buffers {
        return Err(refuse(
            ErrorCode::Invalid,
            format!(
                "minimum buffers {} exceed maximum buffers {}; lower --min-buffers or raise --max-buffers",
                req.min_buffers, req.max_buffers
            ),
        ));
    }
    validate_log_path(&req.log_file)?;
    if req.controller.len() > 256 || req.controller.chars().any(char::is_control) {
        return Err(refuse(
            ErrorCode::Invalid,
            "controller description is longer than 256 bytes or holds control characters",
        ));
    }
    let buffer = req.buffer_kib as u64 * 1024;
    match req.file_mode {
        FileMode::Circular | FileMode::NewFile
            if req.max_file_bytes < MIN_FILE_SLOTS * buffer + 4096 =>
        {
            return Err(refuse(
                ErrorCode::Invalid,
                format!(
                    "{} mode needs a maximum file size of at least {} KiB (the header and {MIN_FILE_SLOTS} buffers of {} KiB); give --max-file-size",
                    req.file_mode.name(),
                    (MIN_FILE_SLOTS * buffer + 4096) / 1024,
                    req.buffer_kib
                ),
            ));
        }
        FileMode::Sequential | FileMode::Append
            if req.max_file_bytes != 0 && req.max_file_bytes < 2 * buffer + 4096 =>
        {
            return Err(refuse(
                ErrorCode::Invalid,
                format!(
                    "a maximum file size of {} bytes holds no buffer of {} KiB; give at least {} KiB",
                    req.max_file_bytes,
                    req.buffer_kib,
                    (2 * buffer + 4096) / 1024
                ),
            ));
        }
        FileMode::RealTime if !req.realtime => {
            return Err(refuse(
                ErrorCode::Invalid,
                "a session with no log file must be real-time; add --realtime or give a file",
            ));
        }
        FileMode::InMemory if req.max_buffers < 4 => {
            return Err(refuse(
                ErrorCode::Invalid,
                "an in-memory session needs at least 4 buffers; raise --max-buffers",
            ));
        }
        _ => {}
    }
    if req.realtime && req.buffer_kib > MAX_REALTIME_BUFFER_KIB {
        return Err(refuse(
            ErrorCode::Invalid,
            format!(
                "real-time sessions use buffers of at most {MAX_REALTIME_BUFFER_KIB} KiB (each travels as one socket packet); lower --buffer-size"
            ),
        ));
    }
    if req.no_loss && !(1..=MAX_NO_LOSS_WAIT_MS).contains(&req.no_loss_wait_ms) {
        return Err(refuse(
            ErrorCode::Invalid,
            format!(
                "a no-loss wait of {} ms is out of range; use 1 to {MAX_NO_LOSS_WAIT_MS} ms",
                req.no_loss_wait_ms
            ),
        ));
    }
    Ok(())
}

/// The most sessions listed at once, STOPPED ones included: each stays
/// until `remove`, so without a bound a controller that starts and stops
/// sessions in a loop would grow the daemon's table forever.
pub const MAX_LISTED_SESSIONS: usize = 4096;

/// The longest log file path a request may name (Linux's PATH_MAX).
pub const MAX_LOG_PATH: usize = 4096;

/// Checks a log file path as a controller names it. The daemon writes only
/// to the descriptor that comes with it, but shows the text to every user
/// (`list`, `query`, its log): it must be short and hold no control
/// characters, which could rewrite another user's terminal.
pub fn validate_log_path(path: &str) -> Result<(), ErrorReply> {
    if path.len() > MAX_LOG_PATH {
        return Err(refuse(
            ErrorCode::Invalid,
            format!(
                "log file path is {} bytes long; the limit is {MAX_LOG_PATH}",
                path.len()
            ),
        ));
    }
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(refuse(
            ErrorCode::Invalid,
            format!("log file path {path:?} contains the control character {c:?}; rename it"),
        ));
    }
    Ok(())
}

/// Checks a flush timer in milliseconds.
pub fn validate_flush_timer(ms: u32) -> Result<(), ErrorReply> {
    if ms > 86_400_000 {
        return Err(refuse(
            ErrorCode::Invalid,
            "flush timer is longer than a day; use 0 (none) to 86400 seconds",
        ));
    }
    Ok(())
}

/// Checks a maximum buffer count against the session's buffer size.
pub fn validate_max_buffers(max_buffers: u32, buffer_kib: u32) -> Result<(), ErrorReply> {
    if !(2..=65536).contains(&max_buffers) {
        return Err(refuse(
            ErrorCode::Invalid,
            format!("maximum buffers {max_buffers} is out of range; use 2 to 65536"),
        ));
    }
    if buffer_kib as u64 * 1024 * max_buffers as u64 > MAX_SESSION_MEMORY {
        return Err(refuse(
            ErrorCode::Resources,
            format!(
                "{max_buffers} buffers of {buffer_kib} KiB exceed the 1 GiB a session may hold; use fewer or smaller buffers"
            ),
        ));
    }
    Ok(())
}

/// Checks a provider list: names, count, no repeats.
pub fn validate_providers(providers: &[ProviderSpec]) -> Result<(), ErrorReply> {
    if providers.len() > MAX_SESSION_PROVIDERS {
        return Err(refuse(
            ErrorCode::Invalid,
            format!(
                "{} providers; a session may enable at most {MAX_SESSION_PROVIDERS}",
                providers.len()
            ),
        ));
    }
    for (i, p) in providers.iter().enumerate() {
        validate_provider_name(&p.name).map_err(|m| refuse(ErrorCode::Invalid, m))?;
        if providers[..i].iter().any(|q| q.name == p.name) {
            return Err(refuse(
                ErrorCode::Invalid,
                format!("provider '{}' is given twice; give it once", p.name),
            ));
        }
    }
    Ok(())
}

/// The bytes one unit of a size stands for, as every size Ferret reads is
/// written: no unit is MiB (as tracelog's sizes are), and K, M, G and T,
/// optionally followed by "iB" or "B", are binary units. `None` for any
/// other unit.
pub fn size_unit(unit: &str) -> Option<u64> {
    match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => Some(1 << 20),
        "k" | "kb" | "kib" => Some(1 << 10),
        "g" | "gb" | "gib" => Some(1 << 30),
        "t" | "tb" | "tib" => Some(1 << 40),
        _ => None,
    }
}

/// The largest size Ferret reads: 1024 TiB.
pub const MAX_SIZE: u64 = 1 << 50;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EnableFilter, Level};

    fn req(name: &str) -> StartRequest {
        StartRequest {
            name: name.into(),
            providers: vec![ProviderSpec {
                name: "P".into(),
                filter: EnableFilter::level(Level::Verbose),
            }],
            log_file: "/tmp/x".into(),
            buffer_kib: DEFAULT_BUFFER_KIB,
            max_buffers: DEFAULT_MAX_BUFFERS,
            flush_timer_ms: DEFAULT_FLUSH_TIMER_MS,
            min_buffers: 4,
            file_mode: FileMode::Sequential,
            max_file_bytes: 0,
            realtime: false,
            controller: "test".into(),
            no_loss: false,
            no_loss_wait_ms: 0,
        }
    }

    #[test]
    fn bad_start_requests_name_the_problem() {
        let mut r = req("123");
        assert!(
            validate_start(&r)
                .unwrap_err()
                .message
                .contains("all digits")
        );
        r = req("ok");
        r.buffer_kib = 1;
        assert!(
            validate_start(&r)
                .unwrap_err()
                .message
                .contains("buffer size")
        );
        r = req("ok");
        r.providers.push(r.providers[0].clone());
        assert!(validate_start(&r).unwrap_err().message.contains("twice"));
        r = req("ok");
        r.max_buffers = 65536;
        r.buffer_kib = 16384;
        assert_eq!(validate_start(&r).unwrap_err().code, ErrorCode::Resources);
        for wait in [0, MAX_NO_LOSS_WAIT_MS + 1] {
            r = req("ok");
            r.no_loss = true;
            r.no_loss_wait_ms = wait;
            assert!(
                validate_start(&r)
                    .unwrap_err()
                    .message
                    .contains("no-loss wait"),
                "{wait}"
            );
        }
        r.no_loss_wait_ms = MAX_NO_LOSS_WAIT_MS;
        assert!(validate_start(&r).is_ok());
    }
}
