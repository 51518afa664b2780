//! `ferret`: the command line for Ferret. Thin glue: argument parsing here,
//! the work in `ferret-client`, `ferret-decode`, `ferret-provider` and
//! `ferret-daemon`.
//!
//! Exit codes: 0 success; 1 the request failed (the message says why);
//! 2 the command line is malformed. A reader that closes standard output
//! early (`ferret list | head -1`) ends any command quietly with 0.

/// `println!` that returns the write's error instead of panicking, so that a
/// closed standard output (`ferret list | head -1`) ends the command through
/// `main`, which treats a broken pipe as a normal end.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod control;
mod daemon;
mod demo;
mod emit;
mod export;
mod fanout;
mod fmt;
mod forward;
mod pull;
mod recover;
mod tail;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "ferret",
    version,
    about = "Event tracing for Linux in the model of Windows ETW",
    long_about = "Event tracing for Linux in the model of Windows ETW: programs declare providers \
                  and write events; sessions enable providers by level and keywords and collect \
                  their events into log files."
)]
struct Cli {
    /// The daemon's control socket [default: $FERRET_SOCKET, else a per-user path]
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Control the daemon of another host: ssh://[user@]host[:port][/socket];
    /// again for several at once, or @FILE for a file of them [default: $FERRET_TARGET]
    // Its own id: several verbs name their session argument `target`.
    #[arg(
        long = "target",
        id = "remote_target",
        global = true,
        value_name = "URL"
    )]
    remote_target: Vec<String>,

    #[command(subcommand)]
    command: Command,
}

/// `ferret view`'s arguments; the viewer itself is the ferret-view crate.
#[derive(clap::Args, Debug)]
struct ViewArgs {
    /// Log files to show instead of the live session list
    files: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a session that enables providers and writes a log file or feeds consumers
    Start(control::StartArgs),
    /// Stop a session: disable its providers, write every unsent event, close its log
    Stop(control::StopArgs),
    /// Change a running session: flush timer, maximum buffers, log file, providers
    Update(control::UpdateArgs),
    /// Enable a provider in a running session, or change its level and keywords
    Enable(control::EnableArgs),
    /// Stop a running session from enabling a provider
    Disable(control::DisableArgs),
    /// Save an in-memory session's newest buffers to a log file without stopping it
    Snapshot(control::SnapshotArgs),
    /// Print every session change as it happens, until interrupted
    Watch(control::JsonArgs),
    /// Print a session's events live, as a real-time consumer
    Tail(tail::TailArgs),
    /// Write a running session's buffered events to its log file now
    Flush(control::TargetArgs),
    /// Show a session's properties and counters
    Query(control::TargetArgs),
    /// List every session
    List(control::JsonArgs),
    /// Take a stopped session off the list (its log file stays)
    Remove(control::TargetArgs),
    /// List the providers registered by running processes
    Providers(control::JsonArgs),
    /// Decode log files as text, JSON lines or CSV, or summarise them
    Fmt(fmt::FmtArgs),
    /// Write log files as a Perfetto, Chrome JSON or CTF trace for other viewers
    Export(export::ExportArgs),
    /// Save the events a killed daemon left in its provider rings to a log file
    Recover(recover::RecoverArgs),
    /// Write sample events as a real provider process (load generator)
    Emit(emit::EmitArgs),
    /// Run a session end to end and show what happens
    Demo(demo::DemoArgs),
    /// Run the session daemon in the foreground
    Daemon(daemon::DaemonArgs),
    /// The live trace viewer: sessions on top, their messages below; or log files
    View(ViewArgs),
    /// Send a real-time session's events, live, to an OpenTelemetry collector (OTLP/HTTP)
    Forward(forward::ForwardArgs),
    /// Bring a log file of a --target home, so that fmt and export read it here
    Pull(pull::PullArgs),
    /// Read a region a debugger copied out of a program (what the gdb commands ferret rings and ferret dump run)
    #[command(hide = true)]
    DumpImage(recover::ImageArgs),
    /// Relay a controller's SSH channel to this host's daemon (what --target runs on the target)
    #[command(hide = true)]
    Bridge,
}

/// A command-line error as one line: clap's message and what it lists,
/// without the usage block that follows.
fn one_line_usage_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect();
    let joined = parts.join(" ");
    let joined = joined.strip_prefix("error: ").unwrap_or(&joined);
    format!("ferret: {joined}; see 'ferret --help'")
}

/// An error and its causes on one line, each said once. Library errors
/// often show their cause in their own message as well as giving it as
/// their source, so printing every cause of the chain (`{:#}`) said
/// "the peer closed the connection" two or three times over.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// Whether an error is, at its root, a write to a closed pipe.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The targets of `--target` (each a URL, or @FILE of URLs one per line,
/// `#` starting a comment), else `$FERRET_TARGET`.
fn targets(given: Vec<String>) -> Result<Vec<ferret_client::remote::Target>, String> {
    use ferret_client::remote::{TARGET_ENV, Target};
    let given = if given.is_empty() {
        std::env::var(TARGET_ENV)
            .ok()
            .filter(|t| !t.is_empty())
            .into_iter()
            .collect()
    } else {
        given
    };
    let mut out = Vec::new();
    for g in given {
        match g.strip_prefix('@') {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("cannot read the targets in {file}: {e}"))?;
                for line in text.lines() {
                    let line = line.split('#').next().unwrap_or("").trim();
                    if !line.is_empty() {
                        out.push(Target::parse(line).map_err(|e| format!("{file}: {e}"))?);
                    }
                }
                if out.is_empty() {
                    return Err(format!("{file} names no target"));
                }
            }
            None => out.push(Target::parse(&g)?),
        }
    }
    Ok(out)
}

/// Runs a control or consumer verb on every target at once.
fn fan_out(
    command: &Command,
    targets: &[ferret_client::remote::Target],
) -> anyhow::Result<ExitCode> {
    let args = fanout::args_without_targets();
    let json = args.iter().enumerate().any(|(i, a)| {
        a == "--json"
            || a == "--format=json"
            || (a == "--format" && args.get(i + 1).is_some_and(|f| f == "json"))
    });
    let shape = match command {
        Command::Watch(_) | Command::Tail(_) if json => fanout::Shape::JsonLines,
        _ if json => fanout::Shape::Document,
        _ => fanout::Shape::Text,
    };
    let verb = match command {
        Command::View(_) => "view",
        Command::Fmt(_) => "fmt",
        Command::Export(_) => "export",
        Command::Recover(_) => "recover",
        Command::Emit(_) => "emit",
        Command::Demo(_) => "demo",
        Command::Daemon(_) => "daemon",
        Command::Bridge => "bridge",
        Command::Pull(_) => "pull",
        Command::DumpImage(_) => "dump-image",
        _ => return fanout::run(targets, &args, shape),
    };
    anyhow::bail!(
        "'ferret {verb}' takes at most one --target ({} given)",
        targets.len()
    )
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            eprintln!("{}", one_line_usage_error(&e));
            return ExitCode::from(2);
        }
    };
    let socket = ferret_abi::paths::socket_path(cli.socket);
    let targets = match targets(cli.remote_target) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ferret: {e}");
            return ExitCode::from(2);
        }
    };
    if targets.len() > 1 {
        return match fan_out(&cli.command, &targets) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("ferret: {}", error_line(&e));
                ExitCode::FAILURE
            }
        };
    }
    let at = match targets.into_iter().next() {
        None => daemon::Endpoint::Local(socket),
        Some(t) => daemon::Endpoint::Target(t),
    };
    let result = match cli.command {
        Command::Start(a) => control::start(&at, a),
        Command::Stop(a) => control::stop(&at, a),
        Command::Update(a) => control::update(&at, a),
        Command::Enable(a) => control::enable(&at, a),
        Command::Disable(a) => control::disable(&at, a),
        Command::Snapshot(a) => control::snapshot(&at, a),
        Command::Watch(a) => watch::run(&at, a),
        Command::Tail(a) => tail::run(&at, a),
        Command::Flush(a) => control::flush(&at, a),
        Command::Query(a) => control::query(&at, a),
        Command::List(a) => control::list(&at, a),
        Command::Remove(a) => control::remove(&at, a),
        Command::Providers(a) => control::providers(&at, a),
        Command::Fmt(a) => at.local("fmt").and_then(|_| fmt::run(a)),
        Command::Export(a) => at.local("export").and_then(|_| export::run(a)),
        Command::Recover(a) => at.local("recover").and_then(|s| recover::run(s, a)),
        Command::Emit(a) => at.local("emit").and_then(|s| emit::run(s, a)),
        Command::Demo(a) => at.local("demo").and_then(|s| demo::run(s, a)),
        Command::Daemon(a) => at
            .local("daemon")
            .and_then(|s| daemon::run_foreground(s.to_path_buf(), a)),
        Command::Bridge => at.local("bridge").and_then(daemon::bridge),
        Command::Pull(a) => pull::run(&at, a),
        Command::Forward(a) => forward::run(&at, a),
        Command::DumpImage(a) => at.local("dump-image").and_then(|_| recover::run_image(a)),
        Command::View(a) => {
            let at = at.clone();
            ferret_view::run(std::sync::Arc::new(move || daemon::connect(&at)), a.files)
        }
    };
    match result {
        Ok(code) => code,
        // A reader that closed our standard output wants no more: that ends
        // the command quietly and successfully, as `head` expects.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferret: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}
