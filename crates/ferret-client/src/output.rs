//! A session as controllers show it: the JSON object scripts read
//! (`--json`) and the property list `query` prints and the viewer's
//! properties panel shows, in one place so that every controller says the
//! same.

use ferret_abi::proto::{ProviderSpec, SessionInfo};
use ferret_abi::text::format_timestamp;

/// A provider spec as `NAME:LEVEL:0xANY[:0xALL]`.
pub fn provider_text(p: &ProviderSpec) -> String {
    format!(
        "{}:{}:0x{:x}{}",
        p.name,
        p.filter.level.as_u8(),
        p.filter.match_any,
        if p.filter.match_all != 0 {
            format!(":0x{:x}", p.filter.match_all)
        } else {
            String::new()
        }
    )
}

/// The buffers that hold events now (the one filling, and those waiting to
/// be written). The daemon counts the buffers it has allocated and, of those,
/// the free ones; showing the allocated count as "in use" next to the free
/// count read as 64 in use and 63 free of 64.
fn buffers_busy(c: &ferret_abi::proto::Counters) -> u64 {
    c.buffers_in_use.saturating_sub(c.free_buffers)
}

/// The JSON form of a session: the counters and identity at the top level,
/// as scripts expect them.
pub fn session_json(s: &SessionInfo) -> serde_json::Value {
    let c = &s.counters;
    let providers: Vec<_> = s
        .providers
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "level": p.filter.level.as_u8(),
                "match_any": format!("0x{:x}", p.filter.match_any),
                "match_all": format!("0x{:x}", p.filter.match_all),
            })
        })
        .collect();
    let provider_lost: serde_json::Map<String, serde_json::Value> = s
        .provider_lost
        .iter()
        .map(|(name, n)| (name.clone(), serde_json::Value::from(*n)))
        .collect();
    serde_json::json!({
        "logger_id": s.logger_id,
        "name": s.name,
        "state": s.state.name(),
        "log_file": s.log_file,
        "log_file_mode": s.file_mode.name(),
        "max_file_bytes": s.max_file_bytes,
        "realtime": s.realtime,
        "consumers": s.consumers,
        "no_loss": s.no_loss,
        "no_loss_wait_ms": s.no_loss_wait_ms,
        "events": c.events,
        "events_lost": c.events_lost,
        "lost_ring_full": c.lost_ring_full,
        "lost_no_buffer": c.lost_no_buffer,
        "lost_other": c.lost_other,
        "provider_lost": provider_lost,
        "buffers_written": c.buffers_written,
        "log_buffers_lost": c.log_buffers_lost,
        "rt_buffers_lost": c.rt_buffers_lost,
        "buffers_overwritten": c.buffers_overwritten,
        "bytes_written": c.bytes_written,
        "files": c.files,
        "files_synced": s.files_synced,
        "buffers_allocated": c.buffers_in_use,
        "buffers_in_use": buffers_busy(c),
        "free_buffers": c.free_buffers,
        "buffer_kib": s.buffer_kib,
        "min_buffers": s.min_buffers,
        "max_buffers": s.max_buffers,
        "flush_timer_ms": s.flush_timer_ms,
        "clock": s.clock,
        "controller": s.controller,
        "owner_uid": s.owner_uid,
        "started_unix_ns": s.started_unix_ns,
        "stopped_unix_ns": s.stopped_unix_ns,
        "last_error": s.last_error,
        "providers": providers,
    })
}

/// `1.5 MiB` for a byte count, exact below 1 KiB.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {} ({n} bytes)", UNITS[unit])
}

/// Every property and counter as (name, value), in `query`'s order; the
/// viewer's properties panel shows the same list.
pub fn properties(s: &SessionInfo) -> Vec<(&'static str, String)> {
    let c = &s.counters;
    let providers: Vec<String> = s.providers.iter().map(provider_text).collect();
    let provider_lost: Vec<String> = s
        .provider_lost
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    vec![
        ("Logger Name", s.name.clone()),
        ("Logger Id", s.logger_id.to_string()),
        ("State", s.state.name().to_string()),
        ("Providers", providers.join(", ")),
        (
            "Log File",
            if s.file_mode.has_file() {
                s.log_file.clone()
            } else {
                "-".into()
            },
        ),
        ("Log File Mode", s.file_mode.name().to_string()),
        (
            "Maximum File Size",
            if s.max_file_bytes == 0 {
                "none".into()
            } else {
                human_bytes(s.max_file_bytes)
            },
        ),
        (
            "Real Time",
            if s.realtime {
                format!("yes, {} consumer(s) attached", s.consumers)
            } else {
                "no".into()
            },
        ),
        (
            "No Loss",
            if s.no_loss {
                format!(
                    "yes, writers wait up to {} ms for ring space",
                    s.no_loss_wait_ms
                )
            } else {
                "no".into()
            },
        ),
        ("Buffer Size", format!("{} KiB", s.buffer_kib)),
        ("Minimum Buffers", s.min_buffers.to_string()),
        ("Maximum Buffers", s.max_buffers.to_string()),
        ("Buffers In Use", buffers_busy(c).to_string()),
        ("Free Buffers", c.free_buffers.to_string()),
        (
            "Flush Timer",
            if s.flush_timer_ms == 0 {
                "none".into()
            } else {
                format!("{} ms", s.flush_timer_ms)
            },
        ),
        ("Clock", s.clock.clone()),
        ("Controller", s.controller.clone()),
        ("Owner Uid", s.owner_uid.to_string()),
        ("Started", format_timestamp(s.started_unix_ns)),
        (
            "Stopped",
            if s.stopped_unix_ns == 0 {
                "-".into()
            } else {
                format_timestamp(s.stopped_unix_ns)
            },
        ),
        ("Events", c.events.to_string()),
        (
            "Events Lost",
            format!(
                "{} (ring full {}, no buffer {}, other {})",
                c.events_lost, c.lost_ring_full, c.lost_no_buffer, c.lost_other
            ),
        ),
        (
            "Lost By Provider",
            if provider_lost.is_empty() {
                "-".into()
            } else {
                provider_lost.join(", ")
            },
        ),
        ("Buffers Written", c.buffers_written.to_string()),
        ("Log Buffers Lost", c.log_buffers_lost.to_string()),
        ("Real-Time Buffers Lost", c.rt_buffers_lost.to_string()),
        ("Buffers Overwritten", c.buffers_overwritten.to_string()),
        ("Files", c.files.to_string()),
        ("Files Synced", s.files_synced.to_string()),
        ("Bytes Written", c.bytes_written.to_string()),
        (
            "Last Error",
            s.last_error.clone().unwrap_or_else(|| "-".into()),
        ),
    ]
}
