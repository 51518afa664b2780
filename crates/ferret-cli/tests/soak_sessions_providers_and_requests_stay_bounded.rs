//! Load: one daemon runs 64 sessions while 50 provider processes start,
//! register, write a known number of events and exit, a few at a time, and
//! controllers send 10,000 requests (list, query, providers, flush, update)
//! over connections that come and go. Afterwards the daemon's memory and
//! descriptors are back within a margin of what they were once the sessions
//! ran, and for every session the events written plus the events lost equal
//! the events its providers wrote, and its log file holds exactly the
//! events written.

use ferret_testkit as util;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferret_abi::proto::{SessionRef, SessionState, UpdateRequest};
use ferret_client::Client;
use util::{Env, decode, ferret_bin, wait_until};

const SESSIONS: usize = 64;
/// Provider names; session `i` enables provider `i % PROVIDERS`, so each
/// provider's events go to four sessions.
const PROVIDERS: usize = 16;
const PROCESSES: usize = 50;
/// Provider processes alive at once.
const CONCURRENT: usize = 6;
const EVENTS_PER_PROCESS: u64 = 20_000;
const CONTROL_REQUESTS: u64 = 10_000;
const CONTROLLERS: u64 = 4;
/// Requests a controller sends on one connection before it reconnects.
const REQUESTS_PER_CONNECTION: u64 = 50;

/// Growth allowed over the baseline once everything has ended: the
/// sessions may have grown their buffers up to their maximum (64 sessions
/// of 16 buffers of 16 KiB: 16 MiB) under the load, plus 16 MiB for the
/// allocator's own slack. A leak of 4 KiB per request (40 MiB over 10,000)
/// would exceed it.
const RSS_MARGIN_KIB: u64 = (SESSIONS as u64 * 16 * 16) + 16 * 1024;
const FD_MARGIN: u64 = 4;
/// Growth allowed while providers and controllers are connected: each
/// provider process costs the daemon its connection, region and wake-up
/// descriptors, each controller its connection.
const FD_PER_PEER: u64 = 4;

fn provider_name(p: usize) -> String {
    format!("Soak.P{p}")
}

/// VmRSS in KiB and the number of open descriptors of process `pid`.
fn usage(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .count() as u64;
    (rss, fds)
}

/// Runs `ferret emit` for provider `p`; returns (events written, dropped).
fn emit(socket: &Path, p: usize) -> (u64, u64) {
    let out = Command::new(ferret_bin())
        .arg("--socket")
        .arg(socket)
        .args(["emit", "--provider", &provider_name(p), "--json"])
        .args(["--count", &EVENTS_PER_PROCESS.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run emit");
    assert!(
        out.status.success(),
        "emit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("emit JSON");
    assert_eq!(v["connected"], true, "{v}");
    (
        v["enabled_events"].as_u64().unwrap(),
        v["dropped"].as_u64().unwrap(),
    )
}

/// One controller's share of the requests: every kind a user sends
/// while sessions run, each of which must succeed.
fn control(socket: PathBuf, who: u64, sent: Arc<AtomicU64>) {
    let mut client = Client::connect(&socket).expect("connect");
    for i in 0..CONTROL_REQUESTS / CONTROLLERS {
        if i > 0 && i % REQUESTS_PER_CONNECTION == 0 {
            client = Client::connect(&socket).expect("reconnect");
        }
        let session = ((who * 17 + i) % SESSIONS as u64) as u32 + 1;
        let target = SessionRef::Id(session);
        match i % 5 {
            0 => assert_eq!(client.list().expect("list").len(), SESSIONS),
            1 => assert_eq!(
                client.query(&target).expect("query").state,
                SessionState::Running
            ),
            2 => {
                client.providers().expect("providers");
            }
            3 => {
                client.flush(&target).expect("flush");
            }
            _ => {
                let update = UpdateRequest {
                    flush_timer_ms: Some(200 + (i % 3) as u32 * 100),
                    max_buffers: None,
                    log_file: None,
                    providers: None,
                };
                client.update(&target, update, None).expect("update");
            }
        }
        sent.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn sixty_four_sessions_fifty_providers_and_ten_thousand_requests() {
    let env = Env::with_daemon_args(&["--session-limit", &SESSIONS.to_string()]);
    let pid = env.daemon_pid();
    let mut logs = Vec::new();
    for i in 0..SESSIONS {
        let log = env.path(&format!("s{i}.ferret"));
        let id = env.start(
            &format!("s{i}"),
            &provider_name(i % PROVIDERS),
            &log,
            &["--buffer-size", "16", "--max-buffers", "16"],
        );
        assert_eq!(id, i as u64 + 1);
        logs.push(log);
    }
    // One provider process of every name has come and gone, so that the
    // baseline includes what the daemon keeps once it has seen a provider.
    let mut written = [0u64; PROVIDERS];
    let mut dropped = 0;
    for (p, w) in written.iter_mut().enumerate() {
        let (n, d) = emit(&env.socket, p);
        *w += n;
        dropped += d;
    }
    env.wait_no_providers();
    let (base_rss, base_fds) = usage(pid);

    // Watch the daemon for the whole run.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(Mutex::new((base_rss, base_fds)));
    let watcher = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let (rss, fds) = usage(pid);
                let mut p = peak.lock().unwrap();
                *p = (p.0.max(rss), p.1.max(fds));
                drop(p);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // Provider churn and control requests at the same time.
    let sent = Arc::new(AtomicU64::new(0));
    let controllers: Vec<_> = (0..CONTROLLERS)
        .map(|who| {
            let (socket, sent) = (env.socket.clone(), sent.clone());
            std::thread::spawn(move || control(socket, who, sent))
        })
        .collect();
    let next = Arc::new(AtomicU64::new(0));
    let results = Arc::new(Mutex::new(Vec::new()));
    let churn: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let (socket, next, results) = (env.socket.clone(), next.clone(), results.clone());
            std::thread::spawn(move || {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if k >= PROCESSES {
                        return;
                    }
                    let p = k % PROVIDERS;
                    let (n, d) = emit(&socket, p);
                    results.lock().unwrap().push((p, n, d));
                }
            })
        })
        .collect();
    for t in churn {
        t.join().expect("churn thread");
    }
    for t in controllers {
        t.join().expect("controller thread");
    }
    assert_eq!(sent.load(Ordering::Relaxed), CONTROL_REQUESTS);
    let results = results.lock().unwrap().clone();
    assert_eq!(results.len(), PROCESSES);
    for (p, n, d) in results {
        written[p] += n;
        dropped += d;
    }
    // No event went unwanted: every process found its four sessions.
    let expected_per_provider: Vec<u64> = (0..PROVIDERS)
        .map(|p| {
            EVENTS_PER_PROCESS * (1 + (0..PROCESSES).filter(|k| k % PROVIDERS == p).count() as u64)
        })
        .collect();
    for p in 0..PROVIDERS {
        assert_eq!(written[p], expected_per_provider[p], "provider {p}");
    }

    env.wait_no_providers();
    done.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher");
    let (peak_rss, peak_fds) = *peak.lock().unwrap();
    // Let the daemon finish what the last requests started (flushes queued
    // to the writer), then measure again.
    let mut end = usage(pid);
    wait_until(
        Duration::from_secs(10),
        "the daemon's descriptors to return to the baseline",
        || {
            end = usage(pid);
            end.1 <= base_fds + FD_MARGIN
        },
    );
    let (end_rss, end_fds) = end;
    eprintln!(
        "soak: daemon RSS {base_rss} KiB at start, {peak_rss} KiB at peak, {end_rss} KiB at end; \
         descriptors {base_fds} at start, {peak_fds} at peak, {end_fds} at end; \
         {dropped} events dropped by providers"
    );
    assert!(
        end_rss <= base_rss + RSS_MARGIN_KIB,
        "the daemon grew from {base_rss} KiB to {end_rss} KiB"
    );
    let peers = (CONCURRENT as u64) + CONTROLLERS;
    assert!(
        peak_fds <= base_fds + FD_MARGIN + peers * FD_PER_PEER,
        "the daemon held {peak_fds} descriptors (baseline {base_fds})"
    );

    // Every event is accounted for: in each session, written + lost equals
    // what its provider's processes wrote (and lost nothing here beyond
    // what the providers themselves counted), and the log file holds
    // exactly the events the session says it wrote.
    let mut client = env.client();
    for (i, log) in logs.iter().enumerate() {
        let s = client
            .stop(&SessionRef::Name(format!("s{i}")), true)
            .expect("stop");
        assert_eq!(s.state, SessionState::Stopped);
        let emitted = written[i % PROVIDERS];
        let c = &s.counters;
        assert_eq!(
            c.events + c.events_lost,
            emitted,
            "session s{i}: written + lost = emitted: {c:?}"
        );
        assert_eq!(c.log_buffers_lost, 0, "session s{i}: {c:?}");
        assert_eq!(s.files_synced, 1, "session s{i}");
        let d = decode(log);
        assert!(d.damage.is_empty(), "s{i}: {:?}", d.damage);
        assert_eq!(d.events.len() as u64, c.events, "session s{i}'s log");
        assert_eq!(d.trailer.expect("trailer").events, c.events);
    }
    assert_eq!(dropped, 0, "providers dropped events");
}
