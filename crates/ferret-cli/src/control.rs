//! The control verbs: start, stop, flush, query, list, remove, providers.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use ferret_abi::proto::{ProviderInfo, SessionInfo, SessionRef, StartRequest};
use ferret_decode::format_timestamp;

use crate::daemon;
use crate::spec::parse_provider;

#[derive(Args, Debug)]
pub struct StartArgs {
    /// The session's name (LoggerName); all-digit names are refused
    pub name: String,
    /// A provider to enable: NAME[:LEVEL[:KEYWORDS[:ALL]]], LEVEL 1-5 or a
    /// name (default verbose), KEYWORDS and ALL hex masks (default 0: all)
    #[arg(short = 'p', long = "provider", value_name = "SPEC")]
    pub providers: Vec<String>,
    /// The log file to write (must not exist unless --overwrite)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Replace the log file if it exists
    #[arg(long)]
    pub overwrite: bool,
    /// Seconds between timed flushes of partial buffers (0: only when full)
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub flush_timer: f64,
    /// Buffer size in KiB (4-16384)
    #[arg(long, value_name = "KIB", default_value_t = ferret_session::DEFAULT_BUFFER_KIB)]
    pub buffer_size: u32,
    /// The most buffers the session may hold in memory (2-65536)
    #[arg(long, value_name = "N", default_value_t = ferret_session::DEFAULT_MAX_BUFFERS)]
    pub max_buffers: u32,
    /// Print the session as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// LoggerID or LoggerName
    pub target: String,
    /// Return as soon as the session is STOPPING
    #[arg(long)]
    pub no_wait: bool,
    /// Print the session as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TargetArgs {
    /// LoggerID or LoggerName
    pub target: String,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct JsonArgs {
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
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
    serde_json::json!({
        "logger_id": s.logger_id,
        "name": s.name,
        "state": s.state.name(),
        "log_file": s.log_file,
        "events": c.events,
        "events_lost": c.events_lost,
        "lost_ring_full": c.lost_ring_full,
        "lost_no_buffer": c.lost_no_buffer,
        "lost_other": c.lost_other,
        "buffers_written": c.buffers_written,
        "log_buffers_lost": c.log_buffers_lost,
        "bytes_written": c.bytes_written,
        "buffers_in_use": c.buffers_in_use,
        "buffer_kib": s.buffer_kib,
        "max_buffers": s.max_buffers,
        "flush_timer_ms": s.flush_timer_ms,
        "clock": s.clock,
        "owner_uid": s.owner_uid,
        "started_unix_ns": s.started_unix_ns,
        "stopped_unix_ns": s.stopped_unix_ns,
        "last_error": s.last_error,
        "providers": providers,
    })
}

fn print_json(v: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// The properties and counters, one per line, as `tracelog -q` prints them.
pub fn print_properties(s: &SessionInfo) {
    let c = &s.counters;
    let providers: Vec<String> = s
        .providers
        .iter()
        .map(|p| {
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
        })
        .collect();
    let rows: Vec<(&str, String)> = vec![
        ("Logger Name", s.name.clone()),
        ("Logger Id", s.logger_id.to_string()),
        ("State", s.state.name().to_string()),
        ("Providers", providers.join(", ")),
        ("Log File", s.log_file.clone()),
        ("Log File Mode", "sequential".into()),
        ("Buffer Size", format!("{} KiB", s.buffer_kib)),
        ("Maximum Buffers", s.max_buffers.to_string()),
        ("Buffers In Use", c.buffers_in_use.to_string()),
        (
            "Flush Timer",
            if s.flush_timer_ms == 0 {
                "none".into()
            } else {
                format!("{} ms", s.flush_timer_ms)
            },
        ),
        ("Clock", s.clock.clone()),
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
        ("Buffers Written", c.buffers_written.to_string()),
        ("Log Buffers Lost", c.log_buffers_lost.to_string()),
        ("Bytes Written", c.bytes_written.to_string()),
        (
            "Last Error",
            s.last_error.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    for (k, v) in rows {
        println!("{k:<17}: {v}");
    }
}

fn open_log(path: &Path, overwrite: bool) -> Result<std::fs::File> {
    let mut opts = OpenOptions::new();
    opts.write(true).mode(0o640);
    // Never follow a symlink planted where the log should go.
    opts.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    if overwrite {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    opts.open(path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                "; choose another file or pass --overwrite to replace it".to_string()
            }
            std::io::ErrorKind::NotFound => "; create its directory first".to_string(),
            std::io::ErrorKind::PermissionDenied => "; choose a file you may write".to_string(),
            _ => String::new(),
        };
        anyhow::anyhow!("cannot create log file '{}': {e}{hint}", path.display())
    })
}

pub fn start(socket: &Path, a: StartArgs) -> Result<ExitCode> {
    ferret_abi::proto::validate_session_name(&a.name).map_err(anyhow::Error::msg)?;
    let providers = a
        .providers
        .iter()
        .map(|p| parse_provider(p))
        .collect::<Result<Vec<_>, String>>()
        .map_err(anyhow::Error::msg)?;
    if !(0.0..=86_400.0).contains(&a.flush_timer) || !a.flush_timer.is_finite() {
        bail!(
            "flush timer {} s is out of range; use 0 (none) to 86400 seconds",
            a.flush_timer
        );
    }
    let mut client = daemon::connect(socket)?;
    let file = open_log(&a.file, a.overwrite)?;
    // The daemon keeps the path for display; an absolute one is unambiguous.
    let shown = std::path::absolute(&a.file).unwrap_or_else(|_| a.file.clone());
    let req = StartRequest {
        name: a.name.clone(),
        providers,
        log_file: shown.display().to_string(),
        buffer_kib: a.buffer_size,
        max_buffers: a.max_buffers,
        flush_timer_ms: (a.flush_timer * 1000.0).round() as u32,
    };
    let created = !a.overwrite;
    match client.start(req, &file) {
        Ok(s) => {
            if a.json {
                print_json(&session_json(&s))?;
            } else {
                println!("{}", s.logger_id);
                eprintln!(
                    "ferret: session '{}' RUNNING as LoggerID {}, logging to {}",
                    s.name, s.logger_id, s.log_file
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            // Leave no empty file behind for a start that did not happen.
            if created {
                let _ = std::fs::remove_file(&a.file);
            }
            Err(e.into())
        }
    }
}

pub fn stop(socket: &Path, a: StopArgs) -> Result<ExitCode> {
    let mut client = daemon::connect(socket)?;
    let s = client.stop(&SessionRef::parse(&a.target), !a.no_wait)?;
    if a.json {
        print_json(&session_json(&s))?;
    } else {
        println!(
            "Session '{}' (LoggerID {}) is {}",
            s.name,
            s.logger_id,
            s.state.name()
        );
        print_properties(&s);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn flush(socket: &Path, a: TargetArgs) -> Result<ExitCode> {
    let mut client = daemon::connect(socket)?;
    let s = client.flush(&SessionRef::parse(&a.target))?;
    if a.json {
        print_json(&session_json(&s))?;
    } else {
        println!(
            "Flushed session '{}' (LoggerID {}): {} events, {} buffers written",
            s.name, s.logger_id, s.counters.events, s.counters.buffers_written
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn query(socket: &Path, a: TargetArgs) -> Result<ExitCode> {
    let mut client = daemon::connect(socket)?;
    let s = client.query(&SessionRef::parse(&a.target))?;
    if a.json {
        print_json(&session_json(&s))?;
    } else {
        print_properties(&s);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn remove(socket: &Path, a: TargetArgs) -> Result<ExitCode> {
    let mut client = daemon::connect(socket)?;
    let s = client.remove(&SessionRef::parse(&a.target))?;
    if a.json {
        print_json(&session_json(&s))?;
    } else {
        println!(
            "Removed session '{}' (LoggerID {}); its log file {} is kept",
            s.name, s.logger_id, s.log_file
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(socket: &Path, a: JsonArgs) -> Result<ExitCode> {
    let mut client = daemon::connect(socket)?;
    let sessions = client.list()?;
    if a.json {
        print_json(&serde_json::Value::Array(
            sessions.iter().map(session_json).collect(),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    if sessions.is_empty() {
        println!("No sessions. Start one with 'ferret start NAME -p PROVIDER -f FILE'.");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>3}  {:<20} {:<8} {:>12} {:>10} {:>8}  LOG FILE",
        "ID", "NAME", "STATE", "EVENTS", "LOST", "BUFFERS"
    );
    for s in &sessions {
        println!(
            "{:>3}  {:<20} {:<8} {:>12} {:>10} {:>8}  {}",
            s.logger_id,
            s.name,
            s.state.name(),
            s.counters.events,
            s.counters.events_lost,
            s.counters.buffers_written,
            s.log_file
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn providers(socket: &Path, a: JsonArgs) -> Result<ExitCode> {
    let mut client = daemon::connect(socket)?;
    let providers: Vec<ProviderInfo> = client.providers().context("listing providers")?;
    if a.json {
        let v: Vec<_> = providers
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "guid": p.guid.to_string(),
                    "pid": p.pid,
                    "process": p.process,
                    "sessions": p.sessions,
                    "level": p.level.map(|l| l.as_u8()),
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(v))?;
        return Ok(ExitCode::SUCCESS);
    }
    if providers.is_empty() {
        println!("No providers registered. Programs register them when they start.");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<30} {:<36} {:>8} {:<16} {:<8} SESSIONS",
        "PROVIDER", "GUID", "PID", "PROCESS", "LEVEL"
    );
    for p in &providers {
        let sessions: Vec<String> = p.sessions.iter().map(u32::to_string).collect();
        println!(
            "{:<30} {:<36} {:>8} {:<16} {:<8} {}",
            p.name,
            p.guid.to_string(),
            p.pid,
            p.process,
            p.level.map_or("-".to_string(), |l| l.name().to_string()),
            if sessions.is_empty() {
                "-".to_string()
            } else {
                sessions.join(",")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
