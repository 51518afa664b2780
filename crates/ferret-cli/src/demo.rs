//! `ferret demo`: one session end to end, narrated.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use ferret_abi::proto::{FileMode, ProviderSpec, SessionRef, SessionState, StartRequest};
use ferret_abi::{EnableFilter, Level};
use ferret_decode::{Entry, FileDecoder, OutputFormat, Printer};
use indicatif::{ProgressBar, ProgressStyle};

use crate::daemon;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Events the sample provider writes
    #[arg(long, default_value_t = 2_000_000)]
    pub count: u64,
    /// Threads it writes from
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// Events per second in all (0: as fast as possible)
    #[arg(long, default_value_t = 1_000_000.0)]
    pub rate: f64,
    /// Where to put the log file [default: a new directory under the temp dir]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

const PROVIDER: &str = "Ferret.Demo";

pub fn run(socket: &Path, a: DemoArgs) -> Result<ExitCode> {
    outln!(
        "Ferret demo: a provider process writes events, a session collects them, stop flushes them, fmt decodes them.\n"
    );

    let mut client = daemon::connect_local(socket)?;
    outln!(
        "1. Session daemon: pid {} on {}",
        client.daemon_pid(),
        socket.display()
    );

    let dir = match a.dir {
        Some(d) => d,
        None => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            std::env::temp_dir().join(format!("ferret-demo-{stamp}"))
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = dir.join("demo.ferret");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&log)
        .with_context(|| format!("creating {}", log.display()))?;
    let name = format!("demo-{}", std::process::id());
    let min_buffers =
        ferret_abi::limits::DEFAULT_MIN_BUFFERS.min(ferret_abi::limits::DEFAULT_MAX_BUFFERS);
    let session = client
        .start(
            StartRequest {
                name: name.clone(),
                providers: vec![ProviderSpec {
                    name: PROVIDER.into(),
                    filter: EnableFilter::level(Level::Verbose),
                }],
                log_file: log.display().to_string(),
                buffer_kib: ferret_abi::limits::DEFAULT_BUFFER_KIB,
                max_buffers: ferret_abi::limits::DEFAULT_MAX_BUFFERS,
                flush_timer_ms: ferret_abi::limits::DEFAULT_FLUSH_TIMER_MS,
                min_buffers,
                file_mode: FileMode::Sequential,
                max_file_bytes: 0,
                realtime: false,
                controller: format!("ferret demo pid {}", std::process::id()),
                no_loss: false,
                no_loss_wait_ms: 0,
            },
            Some(file.as_fd()),
        )?
        .session;
    drop(file);
    let target = SessionRef::Id(session.logger_id);
    outln!(
        "2. Started session '{name}' as LoggerID {}: provider {PROVIDER} at every level, log file {}",
        session.logger_id,
        log.display()
    );

    outln!(
        "3. Running 'ferret emit': {} events from {} threads{}",
        a.count,
        a.threads,
        if a.rate > 0.0 {
            format!(" at {} events/s", a.rate)
        } else {
            String::new()
        }
    );
    let mut emit = Command::new(std::env::current_exe()?)
        .arg("--socket")
        .arg(socket)
        .args(["emit", "--provider", PROVIDER])
        .args(["--count", &a.count.to_string()])
        .args(["--threads", &a.threads.to_string()])
        .args(["--rate", &a.rate.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting 'ferret emit'")?;
    let bar = ProgressBar::new(a.count);
    bar.set_style(
        ProgressStyle::with_template("   {bar:40} {pos}/{len} events  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let status = loop {
        if let Some(status) = emit.try_wait()? {
            break status;
        }
        let s = client.query(&target)?;
        bar.set_position(s.counters.events.min(a.count));
        bar.set_message(format!(
            "{}  lost {}  buffers written {}",
            s.state.name(),
            s.counters.events_lost,
            s.counters.buffers_written
        ));
        std::thread::sleep(Duration::from_millis(100));
    };
    bar.finish_and_clear();
    let before = client.query(&target)?;
    outln!(
        "   session {}: {} events so far, {} lost",
        before.state.name(),
        before.counters.events,
        before.counters.events_lost
    );
    let output = emit.wait_with_output()?;
    if !status.success() {
        bail!(
            "'ferret emit' failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    outln!(
        "   emit: {}",
        String::from_utf8_lossy(&output.stdout).trim()
    );

    outln!("4. Stopping: providers disabled, unsent events drained and written");
    outln!("   {:>7.1} ms  {}", 0.0, before.state.name());
    let t0 = Instant::now();
    let mut s = client.stop(&target, false)?;
    let mut last = Some(before.state);
    loop {
        if last != Some(s.state) {
            outln!(
                "   {:>7.1} ms  {}",
                t0.elapsed().as_secs_f64() * 1e3,
                s.state.name()
            );
            last = Some(s.state);
        }
        if s.state == SessionState::Stopped {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
        s = client.query(&target)?;
    }
    let c = &s.counters;
    outln!(
        "5. Counters: {} events, {} lost (ring full {}, no buffer {}, other {}), {} buffers written, {} bytes",
        c.events,
        c.events_lost,
        c.lost_ring_full,
        c.lost_no_buffer,
        c.lost_other,
        c.buffers_written,
        c.bytes_written
    );

    outln!("6. The first events, decoded from the log file:");
    let mut decoder = FileDecoder::open(&log)?;
    let mut shown = 0;
    let mut decoded = 0u64;
    let mut out = Vec::new();
    {
        let mut printer = Printer::new(OutputFormat::Text, &mut out, std::io::stderr(), "demo");
        decoder.for_each(|e| {
            if let Entry::Event(_) = e {
                decoded += 1;
                if shown < 10 {
                    shown += 1;
                    printer.entry(&e)?;
                }
            }
            Ok(())
        })?;
    }
    for line in String::from_utf8_lossy(&out).lines() {
        outln!("   {line}");
    }
    outln!(
        "   ... {decoded} events decoded in all ({})",
        if decoded == c.events {
            "every event the session counted"
        } else {
            "NOT the number the session counted"
        }
    );
    outln!(
        "\nNext: 'ferret fmt {}' decodes it all, 'ferret list' shows the STOPPED session,",
        log.display()
    );
    outln!("'ferret remove {name}' takes it off the list (the log file stays).");
    Ok(ExitCode::SUCCESS)
}
