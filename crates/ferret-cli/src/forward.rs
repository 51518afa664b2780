//! `ferret forward`: a real-time consumer that sends a session's events,
//! live, to an OpenTelemetry collector as OTLP log records over HTTP
//! (protobuf), the collector's default receiver. The mapping is
//! ferret-export's `otlp` (docs/OTLP.md).
//!
//! Reading never waits for the collector: requests go through a bounded
//! queue to a sender thread that retries with backoff, so a slow or absent
//! collector costs counted losses (queue full, rejected, undeliverable),
//! never a stalled stream; and the stream's own misses, if this consumer
//! falls behind the session, are counted as for `ferret tail`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Args;
use ferret_abi::proto::SessionRef;
use ferret_client::TailItem;
use ferret_decode::{Entry, StreamDecoder};
use ferret_export::otlp::{Batch, Origin};

use crate::daemon::{self, Endpoint};

#[derive(Args, Debug)]
pub struct ForwardArgs {
    /// LoggerID or LoggerName of a real-time session
    pub target: String,
    /// The collector's OTLP/HTTP endpoint, http://HOST:PORT[/PATH] (/v1/logs when no path is given)
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The CA certificate(s), PEM, to trust for an https endpoint [default:
    /// the system's roots]
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// A header for every request (an API key, say), NAME=VALUE; may be repeated
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// The most records in one request
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub batch: u32,
    /// Requests held in memory while the collector is slow or away
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub queue: u32,
    /// A directory for requests that do not fit the queue, sent in order
    /// when the collector takes them again [default: none: they are dropped
    /// and counted]
    #[arg(long, value_name = "DIR")]
    pub spool: Option<std::path::PathBuf>,
    /// The most bytes the spool holds (K, M, G suffixes)
    #[arg(long, value_name = "SIZE", default_value = "256M")]
    pub spool_size: String,
    /// How long the end of the session waits for queued records to be
    /// delivered, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub drain_timeout: u64,
    /// Print the final counts as JSON
    #[arg(long)]
    pub json: bool,
}

/// What became of the records.
#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    queue_full: AtomicU64,
    spool_full: AtomicU64,
    spooled: AtomicU64,
    rejected: AtomicU64,
    undeliverable: AtomicU64,
    requests: AtomicU64,
    /// Bytes of the requests the collector accepted.
    bytes: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Counts {
    fn error(&self, e: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }
}

/// The endpoint URL with the logs path when none is given.
fn endpoint(to: &str) -> Result<String> {
    let (scheme, rest) = match to.split_once("://") {
        Some((s @ ("http" | "https"), rest)) => (s, rest),
        _ => bail!("--to {to} is not an http://HOST:PORT or https://HOST:PORT endpoint"),
    };
    if rest.is_empty() || rest.starts_with('/') {
        bail!("--to {to} names no host");
    }
    Ok(match rest.find('/') {
        None => format!("{to}/v1/logs"),
        Some(i) if &rest[i..] == "/" => format!("{scheme}://{}/v1/logs", &rest[..i]),
        Some(_) => to.to_string(),
    })
}

/// The roots an https endpoint is checked against: the certificates of
/// `ca`, or the platform's.
fn tls(ca: Option<&std::path::Path>) -> Result<ureq::tls::TlsConfig> {
    use ureq::tls::{PemItem, RootCerts, TlsConfig};
    let roots = match ca {
        None => RootCerts::PlatformVerifier,
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                bail!("{} holds no PEM certificate", path.display());
            }
            RootCerts::Specific(Arc::new(certs))
        }
    };
    Ok(TlsConfig::builder().root_certs(roots).build())
}

/// Whether something accepts connections at the endpoint now: where a
/// wrong address can be known at start, the user hears of it at start.
fn probe(url: &str) -> Result<(), String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addrs: Vec<_> = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .collect();
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    Err(last)
}

fn headers(given: &[String]) -> Result<Vec<(String, String)>> {
    given
        .iter()
        .map(|h| match h.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !h.contains(['\r', '\n']) => {
                Ok((k.trim().to_string(), v.to_string()))
            }
            _ => bail!("--header {h:?} is not NAME=VALUE"),
        })
        .collect()
}

/// Requests on disk, oldest first: once one is there, every later request
/// goes there too until the sender has sent them all, so that the
/// collector gets records in the order they came.
struct Spool {
    dir: std::path::PathBuf,
    limit: u64,
    state: Mutex<SpoolState>,
}

#[derive(Default)]
struct SpoolState {
    /// (file index, records, bytes), oldest first.
    files: std::collections::VecDeque<(u64, u64, u64)>,
    next: u64,
    bytes: u64,
}

impl Spool {
    fn open(dir: &std::path::Path, limit: u64) -> Result<Spool> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the spool {}", dir.display()))?;
        if std::fs::read_dir(dir)?.next().is_some() {
            bail!(
                "the spool {} is not empty; give an empty directory (another forwarder may be using it)",
                dir.display()
            );
        }
        Ok(Spool {
            dir: dir.to_path_buf(),
            limit,
            state: Mutex::new(SpoolState::default()),
        })
    }

    fn path(&self, index: u64) -> std::path::PathBuf {
        self.dir.join(format!("{index:012}.otlp"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SpoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether requests must go to disk now to keep the order.
    fn active(&self) -> bool {
        !self.lock().files.is_empty()
    }

    /// Stores a request; Err with the reason if it does not fit or cannot
    /// be written.
    fn push(&self, body: &[u8], records: u64) -> Result<(), String> {
        let mut st = self.lock();
        if st.bytes + body.len() as u64 > self.limit {
            return Err(format!(
                "the spool {} is full ({} bytes)",
                self.dir.display(),
                self.limit
            ));
        }
        let index = st.next;
        std::fs::write(self.path(index), body)
            .map_err(|e| format!("cannot write to the spool {}: {e}", self.dir.display()))?;
        st.next += 1;
        st.bytes += body.len() as u64;
        st.files.push_back((index, records, body.len() as u64));
        Ok(())
    }

    /// The oldest request on disk, if any, without taking it off.
    fn oldest(&self) -> Option<(u64, Vec<u8>, u64)> {
        let (index, records, _) = *self.lock().files.front()?;
        let body = std::fs::read(self.path(index)).unwrap_or_default();
        Some((index, body, records))
    }

    /// Takes the oldest request off, once it is sent or given up.
    fn pop(&self, index: u64) {
        let mut st = self.lock();
        if st.files.front().is_some_and(|f| f.0 == index) {
            if let Some((_, _, bytes)) = st.files.pop_front() {
                st.bytes -= bytes;
            }
            let _ = std::fs::remove_file(self.path(index));
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Posts each request, retrying what may succeed later with backoff until
/// it is delivered or, once `ended` is set, the drain deadline passes.
fn send_loop(
    url: String,
    tls: ureq::tls::TlsConfig,
    headers: Vec<(String, String)>,
    rx: Receiver<(Vec<u8>, u64)>,
    counts: Arc<Counts>,
    deadline: Arc<Mutex<Option<Instant>>>,
    spool: Option<Arc<Spool>>,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .tls_config(tls)
        .build()
        .into();
    let past_deadline = || {
        deadline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|d| Instant::now() >= d)
    };
    // Posts one request until it is delivered, refused for good, or the
    // drain deadline passes.
    let send = |body: &[u8], records: u64| {
        let mut wait = Duration::from_millis(100);
        loop {
            if past_deadline() {
                counts.undeliverable.fetch_add(records, Ordering::Relaxed);
                return;
            }
            let mut req = agent
                .post(&url)
                .header("Content-Type", "application/x-protobuf");
            for (k, v) in &headers {
                req = req.header(k, v);
            }
            counts.requests.fetch_add(1, Ordering::Relaxed);
            let retry = match req.send(body) {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if (200..300).contains(&status) {
                        counts.delivered.fetch_add(records, Ordering::Relaxed);
                        counts.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                        return;
                    }
                    counts.error(format!("the collector answered HTTP {status}"));
                    // OTLP/HTTP: 429, 502, 503 and 504 may be retried; any
                    // other refusal will not change.
                    matches!(status, 429 | 502 | 503 | 504)
                }
                Err(e) => {
                    counts.error(format!("cannot reach {url}: {e}"));
                    true
                }
            };
            if !retry {
                counts.rejected.fetch_add(records, Ordering::Relaxed);
                return;
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    };
    // The queue holds what came before anything was spooled, so it goes
    // first; then the spool, oldest first; the order is the stream's.
    let mut open = true;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok((body, records)) => {
                send(&body, records);
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => open = false,
        }
        match spool.as_deref().and_then(Spool::oldest) {
            Some((index, body, records)) => {
                send(&body, records);
                if let Some(sp) = spool.as_deref() {
                    sp.pop(index);
                }
            }
            None if !open => return,
            None => {}
        }
    }
}

pub fn run(at: &Endpoint, a: ForwardArgs) -> Result<ExitCode> {
    let url = endpoint(&a.to)?;
    let tls = tls(a.ca.as_deref())?;
    let headers = headers(&a.headers)?;
    if let Err(why) = probe(&url) {
        eprintln!(
            "ferret: warning: no collector answers at {url} ({why}); forwarding anyway: requests wait and are retried, and what cannot be delivered is counted"
        );
    }
    let client = daemon::connect(at)?;
    let mut tail = client.tail(&SessionRef::parse(&a.target))?;
    let name = tail.session.name.clone();
    let mut decoder = StreamDecoder::from_header_bytes(&tail.header)
        .with_context(|| format!("the daemon sent a bad stream header for session '{name}'"))?;
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let mut batch = Batch::new(Origin {
        host,
        session: name.clone(),
        logger_id: tail.session.logger_id,
    });
    let spool = match &a.spool {
        Some(dir) => {
            let limit = ferret_client::plan::parse_size(&a.spool_size)
                .map_err(|e| anyhow::anyhow!("--spool-size: {e}"))?;
            Some(Arc::new(Spool::open(dir, limit)?))
        }
        None => None,
    };
    let counts = Arc::new(Counts::default());
    let deadline = Arc::new(Mutex::new(None));
    let (tx, rx): (SyncSender<(Vec<u8>, u64)>, _) = std::sync::mpsc::sync_channel(a.queue as usize);
    let sender = {
        let (url, counts, deadline) = (url.clone(), Arc::clone(&counts), Arc::clone(&deadline));
        let spool = spool.clone();
        std::thread::spawn(move || send_loop(url, tls, headers, rx, counts, deadline, spool))
    };
    let queue = |batch: &mut Batch| {
        if batch.is_empty() {
            return;
        }
        let records = batch.len() as u64;
        let body = batch.take_request();
        // Once anything is spooled, later requests follow it to disk.
        let body = match &spool {
            Some(sp) if sp.active() => body,
            _ => match tx.try_send((body, records)) {
                Ok(()) => return,
                Err(TrySendError::Full((body, _))) | Err(TrySendError::Disconnected((body, _))) => {
                    body
                }
            },
        };
        match &spool {
            Some(sp) => match sp.push(&body, records) {
                Ok(()) => {
                    counts.spooled.fetch_add(records, Ordering::Relaxed);
                }
                Err(e) => {
                    counts.spool_full.fetch_add(records, Ordering::Relaxed);
                    counts.error(e);
                }
            },
            None => {
                counts.queue_full.fetch_add(records, Ordering::Relaxed);
                counts.error(
                    "the collector is slower than the session: requests were dropped (give --spool DIR to keep them)"
                        .into(),
                );
            }
        }
    };
    let (mut events, mut missed) = (0u64, 0u64);
    let finish = loop {
        let item = tail
            .next()
            .with_context(|| format!("the stream of session '{name}' broke off"))?;
        match item {
            Some(TailItem::Data {
                buffer,
                missed_events,
                ..
            }) => {
                missed = missed.max(missed_events);
                let observed = now_ns();
                decoder.feed(&buffer, |entry| {
                    match entry {
                        Entry::Event(e) => {
                            batch.push_event(&e, observed);
                            events += 1;
                        }
                        Entry::Lost {
                            timestamp_ns,
                            pid,
                            provider,
                            reason,
                            count,
                        } => batch.push_lost(timestamp_ns, pid, provider, reason, count, observed),
                        _ => {}
                    }
                    if batch.len() >= a.batch as usize {
                        queue(&mut batch);
                    }
                    Ok(())
                })?;
                // Each chunk the daemon sends is sent on at once: chunks
                // come as buffers fill or the flush timer fires.
                queue(&mut batch);
            }
            Some(TailItem::End {
                session,
                missed_events,
                ..
            }) => {
                missed = missed.max(missed_events);
                break session;
            }
            None => bail!("the stream of session '{name}' ended without its end message"),
        }
    };
    queue(&mut batch);
    drop(tx);
    *deadline.lock().unwrap_or_else(|p| p.into_inner()) =
        Some(Instant::now() + Duration::from_secs(a.drain_timeout));
    let _ = sender.join();
    let c = &counts;
    let (delivered, queue_full, spool_full, rejected, undeliverable) = (
        c.delivered.load(Ordering::Relaxed),
        c.queue_full.load(Ordering::Relaxed),
        c.spool_full.load(Ordering::Relaxed),
        c.rejected.load(Ordering::Relaxed),
        c.undeliverable.load(Ordering::Relaxed),
    );
    let last_error = c
        .last_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let lost = queue_full + spool_full + rejected + undeliverable;
    if a.json {
        let v = serde_json::json!({
            "session": finish.name,
            "state": finish.state.name(),
            "endpoint": url,
            "events": events,
            "delivered": delivered,
            "requests": c.requests.load(Ordering::Relaxed),
            "bytes": c.bytes.load(Ordering::Relaxed),
            "spooled": c.spooled.load(Ordering::Relaxed),
            "lost": {
                "queue_full": queue_full,
                "spool_full": spool_full,
                "rejected": rejected,
                "undeliverable": undeliverable,
            },
            "missed_events": missed,
            "last_error": last_error,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
    }
    eprintln!(
        "ferret: session '{}' {}: {events} events received, {delivered} records delivered to {url}, {lost} lost ({queue_full} queue full, {spool_full} spool full, {rejected} rejected, {undeliverable} undeliverable), {missed} events missed{}",
        finish.name,
        finish.state.name(),
        last_error
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default()
    );
    // Anything not delivered is a failure a script must see.
    Ok(if lost > 0 || missed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_the_logs_path_when_they_have_none() {
        assert_eq!(
            endpoint("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/logs"
        );
        assert_eq!(endpoint("http://c:4318/").unwrap(), "http://c:4318/v1/logs");
        assert_eq!(
            endpoint("http://c:4318/otlp/v1/logs").unwrap(),
            "http://c:4318/otlp/v1/logs"
        );
        assert_eq!(endpoint("https://c").unwrap(), "https://c/v1/logs");
        assert!(endpoint("ftp://c").is_err());
        assert!(endpoint("c:4318").is_err());
        assert!(endpoint("http://").is_err());
    }

    #[test]
    fn headers_are_name_value_pairs() {
        assert_eq!(
            headers(&["api-key=s3cret".into()]).unwrap(),
            vec![("api-key".into(), "s3cret".into())]
        );
        assert!(headers(&["nokey".into()]).is_err());
        assert!(headers(&["a=b\r\nX: y".into()]).is_err());
    }
}
