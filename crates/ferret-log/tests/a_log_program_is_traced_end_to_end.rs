//! A program that logs through the `log` crate is traced by installing
//! `ferret_log`: here the program is this test process, and what logs is
//! `ureq`, a real HTTP client from the registry, fetching from a local
//! server. Its records reach the session's log with their text, target,
//! file and line; structured key-values keep their types; and `log`'s
//! maximum level follows what the sessions enable, `Off` when none does.

use ferret_testkit as util;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use util::TypedEvent;
use util::inprocess::InProcess;

const LIMIT: Duration = Duration::from_secs(30);

/// A one-request-per-connection HTTP server on a loopback port, serving
/// `count` requests from a thread.
fn serve(count: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            // Read the request head up to its blank line.
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    break;
                }
                line.clear();
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    port
}

#[test]
fn ureq_logs_reach_the_session_with_their_fields_and_the_max_level_follows_the_sessions() {
    let env = InProcess::new();
    assert!(ferret_provider::configure(ferret_provider::Options {
        socket: env.socket.clone(),
        ..ferret_provider::Options::default()
    }));
    ferret_log::init("E2E.Log").expect("the only logger");
    // No session enables the provider: `log` filters everything out before
    // a record is even formatted.
    util::wait_until(LIMIT, "log's max level to be Off", || {
        log::max_level() == log::LevelFilter::Off
    });
    log::error!(target: "e2e", "before any session");

    // An information-level session lets through information and above.
    let info_log = env.path("info.ferret");
    env.start("info", "E2E.Log:information", &info_log);
    util::wait_until(LIMIT, "log's max level to be Info", || {
        log::max_level() == log::LevelFilter::Info
    });
    // A verbose session whose keywords take debug records but not trace
    // ones raises it to Debug only.
    let debug_log = env.path("debug.ferret");
    env.start("debug", "E2E.Log:verbose:0x1", &debug_log);
    util::wait_until(LIMIT, "log's max level to be Debug", || {
        log::max_level() == log::LevelFilter::Debug
    });
    // A verbose session with no keyword filter takes everything.
    let all_log = env.path("all.ferret");
    env.start("all", "E2E.Log:verbose", &all_log);
    util::wait_until(LIMIT, "log's max level to be Trace", || {
        log::max_level() == log::LevelFilter::Trace
    });

    // The program's real work: ureq fetching three times, a new
    // connection each time.
    let requests = 3;
    let port = serve(requests);
    let url = format!("http://127.0.0.1:{port}/hello");
    for _ in 0..requests {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .max_idle_connections(0)
            .build()
            .into();
        let mut resp = agent.get(&url).call().expect("request");
        assert_eq!(resp.body_mut().read_to_string().expect("body"), "ok");
    }
    // Structured key-values keep their types.
    log::info!(target: "e2e", count = 3u64, delta = -2i64, ratio = 0.5f64, ok = true, who = "ferret"; "kv record {}", 7);
    log::trace!(target: "e2e", "a trace record");

    for name in ["info", "debug", "all"] {
        env.stop(name);
    }
    // With every session stopped, `log` is back to filtering everything.
    util::wait_until(LIMIT, "log's max level to be Off again", || {
        log::max_level() == log::LevelFilter::Off
    });

    let all = util::typed_events(&all_log);
    assert!(
        all.iter()
            .all(|e| e.provider == "E2E.Log" && e.name == "Log")
    );
    assert!(
        all.iter()
            .all(|e| e.field("message") != Some("Str(\"before any session\")")),
        "nothing is recorded before a session enables the provider"
    );
    // ureq says, at debug level, each connection it makes.
    let connected = format!("Str(\"Connected TcpStream to 127.0.0.1:{port}\")");
    let connects: Vec<&TypedEvent> = all
        .iter()
        .filter(|e| e.field("message") == Some(connected.as_str()))
        .collect();
    assert_eq!(connects.len(), requests, "one record per connection");
    for e in &connects {
        assert_eq!(e.level, 5, "debug is ETW's verbose");
        assert_eq!(e.keywords, ferret_log::KEYWORD_DEBUG);
        assert_eq!(
            e.field("target"),
            Some("Str(\"ureq::unversioned::transport::tcp\")")
        );
        assert_eq!(
            e.field("module"),
            Some("Str(\"ureq::unversioned::transport::tcp\")")
        );
        let file = e.field("file").expect("file");
        assert!(file.contains("tcp.rs"), "{file}");
        let line = e.field("line").expect("line");
        assert!(line.starts_with("U64("), "{line}");
    }
    let kv = all
        .iter()
        .find(|e| e.field("message") == Some("Str(\"kv record 7\")"))
        .expect("the key-value record");
    assert_eq!(kv.level, 4);
    assert_eq!(kv.field("target"), Some("Str(\"e2e\")"));
    assert_eq!(kv.field("count"), Some("U64(3)"));
    assert_eq!(kv.field("delta"), Some("I64(-2)"));
    assert_eq!(kv.field("ratio"), Some("F64(0.5)"));
    assert_eq!(kv.field("ok"), Some("Bool(true)"));
    assert_eq!(kv.field("who"), Some("Str(\"ferret\")"));
    let trace = all
        .iter()
        .find(|e| e.field("message") == Some("Str(\"a trace record\")"))
        .expect("the trace record");
    assert_eq!(trace.keywords, ferret_log::KEYWORD_TRACE);

    // Each other session got exactly what its filter accepts.
    let info = util::typed_events(&info_log);
    assert!(!info.is_empty());
    assert!(
        info.iter().all(|e| e.level <= 4),
        "information and above only"
    );
    assert!(
        info.iter()
            .any(|e| e.field("message") == Some("Str(\"kv record 7\")"))
    );
    let debug = util::typed_events(&debug_log);
    assert_eq!(
        debug
            .iter()
            .filter(|e| e.field("message") == Some(connected.as_str()))
            .count(),
        requests
    );
    assert!(
        debug
            .iter()
            .all(|e| e.keywords != ferret_log::KEYWORD_TRACE),
        "the debug session's keywords exclude trace records"
    );
}
