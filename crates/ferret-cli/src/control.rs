//! The control verbs: start, stop, update, enable, disable, snapshot,
//! flush, query, list, remove, providers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use ferret_abi::proto::{FileMode, ProviderInfo, SessionInfo, SessionRef, UpdateRequest};
use ferret_decode::printable_name;

use crate::daemon;
use crate::daemon::Endpoint;
use ferret_client::output::{human_bytes, properties, provider_text, session_json};
use ferret_client::plan::{
    FileRequest, Opened, StartPlan, flush_timer_ms, parse_provider, parse_size, shown_path,
};
use ferret_client::{Client, Opening};

/// The log file modes as the command line names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// One file; writing stops at --max-file-size (if given) and the rest is counted as lost
    Sequential,
    /// One file of --max-file-size whose oldest buffers are overwritten
    Circular,
    /// After the buffers of an existing Ferret log (created if absent)
    Append,
    /// Files of at most --max-file-size: -f is a pattern, NAME_1, NAME_2, ... (or %d in it)
    NewFile,
    /// No file: events go to real-time consumers (ferret tail) only
    RealTime,
    /// No file: the newest buffers stay in memory until 'ferret snapshot' saves them
    InMemory,
}

impl ModeArg {
    fn file_mode(self) -> FileMode {
        match self {
            ModeArg::Sequential => FileMode::Sequential,
            ModeArg::Circular => FileMode::Circular,
            ModeArg::Append => FileMode::Append,
            ModeArg::NewFile => FileMode::NewFile,
            ModeArg::RealTime => FileMode::RealTime,
            ModeArg::InMemory => FileMode::InMemory,
        }
    }
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// The session's name (LoggerName); all-digit names are refused
    pub name: String,
    /// A provider to enable: NAME[:LEVEL[:KEYWORDS[:ALL]]], LEVEL 1-5 or a
    /// name (default verbose), KEYWORDS and ALL hex masks (default 0: all)
    #[arg(short = 'p', long = "provider", value_name = "SPEC")]
    pub providers: Vec<String>,
    /// The log file to write (must not exist unless --overwrite); in
    /// new-file mode, the pattern the files are named after
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The log file mode
    #[arg(long, value_enum, default_value = "sequential")]
    pub mode: ModeArg,
    /// The largest log file: a number of MiB, or with a K, M or G suffix
    /// (binary units); 0 for no limit. Circular and new-file modes need one
    #[arg(long, value_name = "SIZE")]
    pub max_file_size: Option<String>,
    /// Buffers allocated at start; the rest, up to --max-buffers, are
    /// allocated as the session needs them [default: 4, or --max-buffers if fewer]
    #[arg(long, value_name = "N")]
    pub min_buffers: Option<u32>,
    /// The most buffers the session may hold in memory (2-65536)
    #[arg(long, value_name = "N", default_value_t = ferret_abi::limits::DEFAULT_MAX_BUFFERS)]
    pub max_buffers: u32,
    /// Buffer size in KiB (4-16384; at most 128 for real-time sessions)
    #[arg(long, value_name = "KIB", default_value_t = ferret_abi::limits::DEFAULT_BUFFER_KIB)]
    pub buffer_size: u32,
    /// Seconds between timed flushes of partial buffers (0: only when full)
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub flush_timer: f64,
    /// Also deliver events to real-time consumers (ferret tail)
    #[arg(long)]
    pub realtime: bool,
    /// Replace the log file if it exists
    #[arg(long)]
    pub overwrite: bool,
    /// No-loss mode: a provider thread whose ring is full waits for room
    /// (see --no-loss-wait-ms) instead of dropping the event at once, so
    /// programs slow down rather than lose events
    #[arg(long)]
    pub no_loss: bool,
    /// With --no-loss: the longest a writer waits for ring space, in
    /// milliseconds (1-60000), before it drops the event and counts it
    #[arg(long, value_name = "MS", requires = "no_loss")]
    pub no_loss_wait_ms: Option<u32>,
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
pub struct UpdateArgs {
    /// LoggerID or LoggerName
    pub target: String,
    /// A new flush timer, in seconds (0: only when buffers fill)
    #[arg(long, value_name = "SECONDS")]
    pub flush_timer: Option<f64>,
    /// A new maximum number of buffers
    #[arg(long, value_name = "N")]
    pub max_buffers: Option<u32>,
    /// Switch to this new log file (must not exist unless --overwrite)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Replace the new log file if it exists
    #[arg(long, requires = "file")]
    pub overwrite: bool,
    /// The new provider list, replacing the whole old one (repeat for each
    /// provider): NAME[:LEVEL[:KEYWORDS[:ALL]]]
    #[arg(short = 'p', long = "provider", value_name = "SPEC")]
    pub providers: Vec<String>,
    /// Print the session as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct EnableArgs {
    /// LoggerID or LoggerName
    pub target: String,
    /// NAME[:LEVEL[:KEYWORDS[:ALL]]]: LEVEL 1-5 or a name (default
    /// verbose); KEYWORDS the hex match-any mask and ALL the hex match-all
    /// mask (default 0: every keyword)
    #[arg(value_name = "PROVIDER")]
    pub provider: String,
    /// Print the session as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DisableArgs {
    /// LoggerID or LoggerName
    pub target: String,
    /// The provider's name
    #[arg(value_name = "PROVIDER")]
    pub provider: String,
    /// Print the session as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// LoggerID or LoggerName of an in-memory session
    pub target: String,
    /// The log file to save the buffers to (must not exist unless --overwrite)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Replace the file if it exists
    #[arg(long)]
    pub overwrite: bool,
    /// Print the result as JSON
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

/// The path a request names, as the daemon will show it: absolute here;
/// on a target as given, since it is the target's (the bridge refuses a
/// relative one).
fn shown_path_at(client: &Client, path: &std::path::Path) -> String {
    match client.target() {
        None => shown_path(path),
        Some(_) => path.display().to_string(),
    }
}

fn print_json(v: &serde_json::Value) -> Result<()> {
    // Rendered first, so that a closed standard output reaches `main` as the
    // plain I/O error it is rather than inside a serde error.
    let text = serde_json::to_string_pretty(v)?;
    outln!("{text}");
    Ok(())
}

/// The width of the property names in `query` output.
const KEY_WIDTH: usize = 22;

/// The properties and counters, one per line, as `tracelog -q` prints them.
pub fn print_properties(s: &SessionInfo) -> Result<()> {
    for (k, v) in properties(s) {
        outln!("{k:<KEY_WIDTH$}: {v}");
    }
    Ok(())
}

pub fn start(at: &Endpoint, a: StartArgs) -> Result<ExitCode> {
    let mut plan = StartPlan::new(&a.name, format!("ferret start pid {}", std::process::id()));
    plan.providers = a
        .providers
        .iter()
        .map(|p| parse_provider(p))
        .collect::<Result<Vec<_>, String>>()
        .map_err(anyhow::Error::msg)?;
    plan.flush_timer_ms = flush_timer_ms(a.flush_timer)?;
    plan.mode = a.mode.file_mode();
    plan.file = a.file.clone();
    plan.overwrite = a.overwrite;
    plan.realtime = a.realtime;
    plan.buffer_kib = a.buffer_size;
    plan.max_buffers = a.max_buffers;
    plan.min_buffers = a.min_buffers;
    plan.no_loss = a.no_loss;
    plan.no_loss_wait_ms = a.no_loss_wait_ms;
    // Parsed here rather than by clap, so that a bad size is refused in one
    // line like every other problem.
    if let Some(text) = &a.max_file_size {
        plan.max_file_bytes = parse_size(text).map_err(|e| anyhow!("--max-file-size: {e}"))?;
    }
    // Everything the daemon would refuse about the values themselves is
    // refused here first, before a file is created or a daemon started.
    plan.request()?;
    let mut client = daemon::connect(at)?;
    let result = client.start_plan(&plan);
    match result {
        Ok(started) => {
            let s = started.session;
            if a.json {
                print_json(&session_json(&s))?;
            } else {
                outln!("{}", s.logger_id);
                let dest = match s.file_mode {
                    FileMode::RealTime => "to real-time consumers only ('ferret tail')".to_string(),
                    FileMode::InMemory => {
                        "in memory ('ferret snapshot' saves the newest buffers)".to_string()
                    }
                    FileMode::NewFile => format!("to files named after {}", s.log_file),
                    m => format!(
                        "to {} ({}{})",
                        s.log_file,
                        m.name(),
                        if s.realtime { ", real-time too" } else { "" }
                    ),
                };
                eprintln!(
                    "ferret: session '{}' RUNNING as LoggerID {}, logging {dest}",
                    s.name, s.logger_id
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn stop(at: &Endpoint, a: StopArgs) -> Result<ExitCode> {
    let mut client = daemon::connect(at)?;
    let s = client.stop(&SessionRef::parse(&a.target), !a.no_wait)?;
    if a.json {
        print_json(&session_json(&s))?;
    } else {
        outln!(
            "Session '{}' (LoggerID {}) is {}",
            s.name,
            s.logger_id,
            s.state.name()
        );
        print_properties(&s)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn update(at: &Endpoint, a: UpdateArgs) -> Result<ExitCode> {
    let target = SessionRef::parse(&a.target);
    let mut update = UpdateRequest {
        flush_timer_ms: a.flush_timer.map(flush_timer_ms).transpose()?,
        max_buffers: a.max_buffers,
        ..UpdateRequest::default()
    };
    if !a.providers.is_empty() {
        let providers = a
            .providers
            .iter()
            .map(|p| parse_provider(p))
            .collect::<Result<Vec<_>, String>>()
            .map_err(anyhow::Error::msg)?;
        update.providers = Some(providers);
    }
    if update == UpdateRequest::default() && a.file.is_none() {
        bail!(
            "nothing to update; give --flush-timer, --max-buffers, -f NEWFILE or -p PROVIDER (see 'ferret update --help')"
        );
    }
    let mut client = daemon::connect(at)?;
    // The kind of descriptor to pass depends on the session's mode, so look
    // before opening anything.
    let opened = match &a.file {
        None => Opening::Here(Opened::None),
        Some(path) => {
            let s = client.query(&target)?;
            update.log_file = Some(shown_path_at(&client, path));
            match s.file_mode {
                FileMode::RealTime | FileMode::InMemory => bail!(
                    "session '{}' is {} and writes no log file; -f applies to sessions started with one",
                    s.name,
                    s.file_mode.name()
                ),
                mode => client.open_file(&FileRequest::Switch {
                    mode,
                    path: path.clone(),
                    overwrite: a.overwrite,
                })?,
            }
        }
    };
    let s = match client.update(&target, update, opened.fd()) {
        Ok(s) => s,
        Err(e) => {
            opened.undo();
            return Err(e.into());
        }
    };
    if a.json {
        print_json(&session_json(&s))?;
    } else {
        outln!("Updated session '{}' (LoggerID {})", s.name, s.logger_id);
        print_properties(&s)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn enable(at: &Endpoint, a: EnableArgs) -> Result<ExitCode> {
    let spec = parse_provider(&a.provider).map_err(anyhow::Error::msg)?;
    let shown = provider_text(&spec);
    let mut client = daemon::connect(at)?;
    let s = client.enable(&SessionRef::parse(&a.target), spec)?;
    if a.json {
        print_json(&session_json(&s))?;
    } else {
        outln!(
            "Session '{}' (LoggerID {}) enables {shown}",
            s.name,
            s.logger_id
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn disable(at: &Endpoint, a: DisableArgs) -> Result<ExitCode> {
    ferret_abi::proto::validate_provider_name(&a.provider)
        .map_err(|e| anyhow!("{e}; give the name as 'ferret query {}' lists it", a.target))?;
    let mut client = daemon::connect(at)?;
    let s = client.disable(&SessionRef::parse(&a.target), &a.provider)?;
    if a.json {
        print_json(&session_json(&s))?;
    } else {
        outln!(
            "Session '{}' (LoggerID {}) no longer enables {}",
            s.name,
            s.logger_id,
            a.provider
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn snapshot(at: &Endpoint, a: SnapshotArgs) -> Result<ExitCode> {
    let mut client = daemon::connect(at)?;
    let file = client.open_file(&FileRequest::Snapshot {
        path: a.file.clone(),
        overwrite: a.overwrite,
    })?;
    let shown = shown_path_at(&client, &a.file);
    let (s, buffers, bytes) =
        match client.snapshot(&SessionRef::parse(&a.target), &shown, file.fd()) {
            Ok(r) => r,
            Err(e) => {
                file.undo();
                return Err(e.into());
            }
        };
    if a.json {
        print_json(&serde_json::json!({
            "file": shown,
            "buffers": buffers,
            "bytes": bytes,
            "session": session_json(&s),
        }))?;
    } else {
        outln!(
            "Saved {buffers} buffers, {}, of session '{}' (LoggerID {}, {}) to {shown}",
            human_bytes(bytes),
            s.name,
            s.logger_id,
            s.state.name()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn flush(at: &Endpoint, a: TargetArgs) -> Result<ExitCode> {
    let mut client = daemon::connect(at)?;
    let s = client.flush(&SessionRef::parse(&a.target))?;
    if a.json {
        print_json(&session_json(&s))?;
    } else {
        outln!(
            "Flushed session '{}' (LoggerID {}): {} events, {} buffers written",
            s.name,
            s.logger_id,
            s.counters.events,
            s.counters.buffers_written
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn query(at: &Endpoint, a: TargetArgs) -> Result<ExitCode> {
    let mut client = daemon::connect(at)?;
    let s = client.query(&SessionRef::parse(&a.target))?;
    if a.json {
        print_json(&session_json(&s))?;
    } else {
        print_properties(&s)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn remove(at: &Endpoint, a: TargetArgs) -> Result<ExitCode> {
    let mut client = daemon::connect(at)?;
    let s = client.remove(&SessionRef::parse(&a.target))?;
    if a.json {
        print_json(&session_json(&s))?;
    } else if s.file_mode.has_file() {
        outln!(
            "Removed session '{}' (LoggerID {}); its log file {} is kept",
            s.name,
            s.logger_id,
            s.log_file
        );
    } else {
        outln!("Removed session '{}' (LoggerID {})", s.name, s.logger_id);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(at: &Endpoint, a: JsonArgs) -> Result<ExitCode> {
    let mut client = daemon::connect(at)?;
    let sessions = client.list()?;
    if a.json {
        print_json(&serde_json::Value::Array(
            sessions.iter().map(session_json).collect(),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    if sessions.is_empty() {
        outln!("No sessions. Start one with 'ferret start NAME -p PROVIDER -f FILE'.");
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:>3}  {:<20} {:<8} {:<10} {:>4} {:>12} {:>10} {:>8}  LOG FILE",
        "ID",
        "NAME",
        "STATE",
        "MODE",
        "RT",
        "EVENTS",
        "LOST",
        "BUFFERS"
    );
    for s in &sessions {
        // Consumers attached for real-time sessions, "-" for the others.
        let rt = if s.realtime {
            s.consumers.to_string()
        } else {
            "-".to_string()
        };
        outln!(
            "{:>3}  {:<20} {:<8} {:<10} {:>4} {:>12} {:>10} {:>8}  {}",
            s.logger_id,
            s.name,
            s.state.name(),
            s.file_mode.name(),
            rt,
            s.counters.events,
            s.counters.events_lost,
            s.counters.buffers_written,
            if s.file_mode.has_file() {
                s.log_file.as_str()
            } else {
                "-"
            }
        );
        // A write error is the one thing in `query` a user must not miss:
        // the session goes on, but buffers are being lost.
        if let Some(e) = &s.last_error {
            outln!("     error: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One provider name with every process that registered it.
struct ProviderRow<'a> {
    first: &'a ProviderInfo,
    pids: Vec<u32>,
    processes: Vec<&'a str>,
    sessions: Vec<u32>,
    level: Option<ferret_abi::Level>,
}

/// Groups the daemon's per-process registrations by provider name: users
/// think of a provider by name, as ETW does by GUID.
fn provider_rows(providers: &[ProviderInfo]) -> Vec<ProviderRow<'_>> {
    let mut rows: BTreeMap<&str, ProviderRow<'_>> = BTreeMap::new();
    for p in providers {
        let row = rows.entry(p.name.as_str()).or_insert_with(|| ProviderRow {
            first: p,
            pids: Vec::new(),
            processes: Vec::new(),
            sessions: Vec::new(),
            level: None,
        });
        row.pids.push(p.pid);
        row.processes.push(p.process.as_str());
        row.sessions.extend(&p.sessions);
        row.level = row.level.max(p.level);
    }
    let mut rows: Vec<ProviderRow<'_>> = rows.into_values().collect();
    for row in &mut rows {
        row.sessions.sort_unstable();
        row.sessions.dedup();
        // Keep pids and process names paired while sorting by pid.
        let mut pairs: Vec<(u32, &str)> = row
            .pids
            .iter()
            .copied()
            .zip(row.processes.iter().copied())
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        row.pids = pairs.iter().map(|p| p.0).collect();
        row.processes = pairs.iter().map(|p| p.1).collect();
    }
    rows
}

fn id_list(ids: &[u32]) -> String {
    if ids.is_empty() {
        return "-".to_string();
    }
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

pub fn providers(at: &Endpoint, a: JsonArgs) -> Result<ExitCode> {
    let mut client = daemon::connect(at)?;
    let providers: Vec<ProviderInfo> = client.providers().context("listing providers")?;
    let rows = provider_rows(&providers);
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.first.name,
                    "guid": r.first.guid.to_string(),
                    "pids": r.pids,
                    "processes": r.processes,
                    "sessions": r.sessions,
                    "level": r.level.map(|l| l.as_u8()),
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(v))?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        outln!("No providers registered. Programs register them when they start.");
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<30} {:<36} {:<8} {:<16} {:<24} SESSIONS",
        "PROVIDER",
        "GUID",
        "LEVEL",
        "PIDS",
        "PROCESSES"
    );
    for r in &rows {
        // Provider and process names come from other programs: they are
        // shown escaped, so that none can send the terminal a sequence.
        let mut processes: Vec<String> = r
            .processes
            .iter()
            .map(|p| printable_name(p).into_owned())
            .collect();
        processes.sort_unstable();
        processes.dedup();
        outln!(
            "{:<30} {:<36} {:<8} {:<16} {:<24} {}",
            printable_name(&r.first.name),
            r.first.guid.to_string(),
            r.level.map_or("-".to_string(), |l| l.name().to_string()),
            id_list(&r.pids),
            processes.join(","),
            id_list(&r.sessions)
        );
    }
    Ok(ExitCode::SUCCESS)
}
