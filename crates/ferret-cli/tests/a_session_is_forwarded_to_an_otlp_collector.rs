//! `ferret forward` against a real OpenTelemetry collector no one here
//! wrote: rotel-agent (PyPI's `rotel`, which `.ci/run` installs), on
//! loopback, printing what it receives. Every event of a session arrives
//! as one log record with its fields and their types; an endpoint where no
//! collector listens loses every record, counted, with a line that says
//! why and a failing exit status.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferret_testkit as util;

/// rotel-agent, from the Python package on PATH's python3; None (and the
/// test skipped) without it, unless FERRET_REQUIRE_TOOLS=1, as CI sets it.
fn rotel() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("FERRET_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "rotel (PyPI) is not installed, and FERRET_REQUIRE_TOOLS=1"
    );
    println!("skipped: rotel is not installed (pip install rotel)");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A collector printing every log record it receives into `out`.
struct Collector {
    child: Child,
    out: PathBuf,
    port: u16,
}

impl Collector {
    fn start(rotel: &PathBuf, dir: &std::path::Path) -> Collector {
        Collector::start_on(rotel, dir, free_port(), "rotel.out")
    }

    /// A collector on `port`, printing into `dir/out`.
    fn start_on(rotel: &PathBuf, dir: &std::path::Path, port: u16, out: &str) -> Collector {
        let grpc = free_port();
        let out = dir.join(out);
        let child = Command::new(rotel)
            .args(["start", "--otlp-grpc-endpoint"])
            .arg(format!("127.0.0.1:{grpc}"))
            .arg("--otlp-http-endpoint")
            .arg(format!("127.0.0.1:{port}"))
            .args([
                "--exporter",
                "blackhole",
                "--debug-log",
                "logs",
                "--debug-log-verbosity",
                "detailed",
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("rotel output"))
            .stderr(Stdio::null())
            .spawn()
            .expect("run rotel-agent");
        util::wait_until(Duration::from_secs(30), "the collector to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Collector { child, out, port }
    }

    fn printed(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.out) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        util::terminate(&mut self.child);
    }
}

/// Waits until the forwarder of session `name` is attached as its consumer.
fn wait_attached(env: &util::Env, name: &str) {
    util::wait_until(Duration::from_secs(30), "the forwarder to attach", || {
        env.session(name).consumers == 1
    });
}

/// The forwarder's JSON report, printed when its session ends.
fn final_report(forward: &mut util::Background) -> serde_json::Value {
    let lines = forward.read_to_end(Duration::from_secs(60));
    serde_json::from_str(&lines.join("\n")).expect("forward's JSON report")
}

#[test]
fn every_event_reaches_the_collector_with_its_fields_and_types() {
    let Some(rotel) = rotel() else { return };
    let env = util::Env::new();
    let collector = Collector::start(&rotel, env.dir.path());
    env.start_with("otlp", &["-p", "E2E.Otlp", "--mode", "real-time"]);
    let to = format!("http://127.0.0.1:{}", collector.port);
    let mut forward = env.spawn(&["forward", "otlp", "--to", &to, "--json"]);
    wait_attached(&env, "otlp");
    env.emit("E2E.Otlp", 100, &["--level", "warning"]);
    env.wait_events("otlp", 100);
    env.ok(&["stop", "otlp"]);
    let report = final_report(&mut forward);
    assert_eq!(report["events"], 100, "{report}");
    assert_eq!(report["delivered"], 100, "{report}");
    assert_eq!(report["lost"]["queue_full"], 0, "{report}");
    assert_eq!(report["missed_events"], 0, "{report}");
    assert!(forward.wait(Duration::from_secs(30)).success());

    // The collector printed one record per event, with the event's name,
    // severity, typed fields and the session on the resource.
    util::wait_until(
        Duration::from_secs(30),
        "the collector to print 100 records",
        || {
            collector
                .printed()
                .matches("EventName: E2E.Otlp/Sample")
                .count()
                == 100
        },
    );
    let printed = collector.printed();
    assert_eq!(printed_seqs(&printed), (0..100).collect::<Vec<u64>>());
    assert_eq!(
        printed
            .matches("SeverityNumber: SEVERITY_NUMBER_WARN(13)")
            .count(),
        100
    );
    assert!(printed.contains("-> msg: Str("), "{printed}");
    assert!(
        printed.contains("-> ferret.session.name: Str(otlp)"),
        "{printed}"
    );
    assert!(printed.contains("-> process.pid: Int("), "{printed}");
}

/// The seq fields of the records a collector printed, sorted.
fn printed_seqs(printed: &str) -> Vec<u64> {
    let mut seqs: Vec<u64> = printed
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-> seq: Int("))
        .map(|n| n.trim_end_matches(')').parse().expect("seq"))
        .collect();
    seqs.sort_unstable();
    seqs
}

#[test]
fn a_collector_restarted_mid_session_gets_what_it_missed() {
    let Some(rotel) = rotel() else { return };
    let env = util::Env::new();
    let first = Collector::start(&rotel, env.dir.path());
    let port = first.port;
    env.start_with("restart", &["-p", "E2E.Restart", "--mode", "real-time"]);
    let to = format!("http://127.0.0.1:{port}");
    let mut forward = env.spawn(&["forward", "restart", "--to", &to, "--json"]);
    wait_attached(&env, "restart");
    env.emit("E2E.Restart", 50, &[]);
    util::wait_until(
        Duration::from_secs(30),
        "the first collector to print 50 records",
        || printed_seqs(&first.printed()).len() == 50,
    );
    // The collector goes away; the next events wait in the forwarder,
    // retried, until one listens on the port again.
    drop(first);
    env.emit("E2E.Restart", 50, &[]);
    env.wait_events("restart", 100);
    let second = Collector::start_on(&rotel, env.dir.path(), port, "rotel-2.out");
    util::wait_until(
        Duration::from_secs(60),
        "the second collector to print the rest",
        || printed_seqs(&second.printed()) == (0..50).collect::<Vec<u64>>(),
    );
    env.ok(&["stop", "restart"]);
    let report = final_report(&mut forward);
    assert_eq!(report["delivered"], 100, "{report}");
    assert_eq!(report["lost"]["undeliverable"], 0, "{report}");
    assert!(forward.wait(Duration::from_secs(30)).success());
}

/// The timestamps of the records a collector printed, in the order printed.
fn printed_times(printed: &str) -> Vec<u64> {
    printed
        .lines()
        .filter_map(|l| l.strip_prefix("Timestamp: "))
        .map(|t| t.trim().parse().expect("timestamp"))
        .collect()
}

#[test]
fn what_the_queue_cannot_hold_waits_in_the_spool_and_arrives_in_order() {
    let Some(rotel) = rotel() else { return };
    let env = util::Env::new();
    let port = free_port();
    let spool = env.path("spool");
    // Small buffers: the stream comes in many chunks, each a request.
    env.start_with(
        "spooled",
        &[
            "-p",
            "E2E.Spool",
            "--mode",
            "real-time",
            "--buffer-size",
            "4",
        ],
    );
    let to = format!("http://127.0.0.1:{port}");
    let spool_arg = spool.to_str().expect("path").to_string();
    let mut forward = env.spawn(&[
        "forward", "spooled", "--to", &to, "--json", "--queue", "1", "--spool", &spool_arg,
    ]);
    wait_attached(&env, "spooled");
    // No collector yet: one request is retried, one waits in the queue and
    // the rest go to the spool.
    for i in 1..=3u64 {
        env.emit("E2E.Spool", 2000, &[]);
        env.wait_events("spooled", 2000 * i);
    }
    util::wait_until(Duration::from_secs(30), "requests in the spool", || {
        std::fs::read_dir(&spool).is_ok_and(|d| d.count() > 0)
    });
    let collector = Collector::start_on(&rotel, env.dir.path(), port, "rotel.out");
    util::wait_until(
        Duration::from_secs(60),
        "all 6000 records at the collector",
        || printed_seqs(&collector.printed()).len() == 6000,
    );
    env.ok(&["stop", "spooled"]);
    let report = final_report(&mut forward);
    assert_eq!(report["delivered"], 6000, "{report}");
    assert!(report["spooled"].as_u64().unwrap() > 0, "{report}");
    assert!(forward.wait(Duration::from_secs(30)).success());
    // In the order they were written, across queue and spool.
    let times = printed_times(&collector.printed());
    assert_eq!(times.len(), 6000);
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "records out of order"
    );
    assert_eq!(
        std::fs::read_dir(&spool).expect("spool").count(),
        0,
        "the spool is empty again"
    );
}

#[test]
fn past_the_spool_records_are_lost_exactly_as_counted() {
    let env = util::Env::new();
    let closed = free_port();
    let spool = env.path("spool");
    env.start_with(
        "full",
        &[
            "-p",
            "E2E.Full",
            "--mode",
            "real-time",
            "--buffer-size",
            "4",
        ],
    );
    let to = format!("http://127.0.0.1:{closed}");
    let spool_arg = spool.to_str().expect("path").to_string();
    let mut forward = env.spawn(&[
        "forward",
        "full",
        "--to",
        &to,
        "--json",
        "--queue",
        "1",
        "--spool",
        &spool_arg,
        "--spool-size",
        "1",
        "--drain-timeout",
        "1",
    ]);
    wait_attached(&env, "full");
    for i in 1..=3u64 {
        env.emit("E2E.Full", 2000, &[]);
        env.wait_events("full", 2000 * i);
    }
    env.ok(&["stop", "full"]);
    let report = final_report(&mut forward);
    let lost = &report["lost"];
    assert!(lost["spool_full"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(
        lost["spool_full"].as_u64().unwrap() + lost["undeliverable"].as_u64().unwrap(),
        6000,
        "{report}"
    );
    assert_eq!(report["delivered"], 0, "{report}");
    assert!(report["last_error"].is_string(), "{report}");
    assert_eq!(forward.wait(Duration::from_secs(30)).code(), Some(1));
}

#[test]
fn an_endpoint_with_no_collector_loses_every_record_counted() {
    let env = util::Env::new();
    let closed = free_port();
    env.start_with("nowhere", &["-p", "E2E.Nowhere", "--mode", "real-time"]);
    let to = format!("http://127.0.0.1:{closed}");
    let mut forward = env.spawn(&[
        "forward",
        "nowhere",
        "--to",
        &to,
        "--json",
        "--drain-timeout",
        "1",
    ]);
    wait_attached(&env, "nowhere");
    env.emit("E2E.Nowhere", 10, &[]);
    env.wait_events("nowhere", 10);
    env.ok(&["stop", "nowhere"]);
    let report = final_report(&mut forward);
    assert_eq!(report["delivered"], 0, "{report}");
    let lost = &report["lost"];
    let total = lost["queue_full"].as_u64().unwrap()
        + lost["rejected"].as_u64().unwrap()
        + lost["undeliverable"].as_u64().unwrap();
    assert_eq!(total, 10, "{report}");
    assert!(
        report["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach")),
        "{report}"
    );
    assert_eq!(forward.wait(Duration::from_secs(30)).code(), Some(1));
    let err = forward.stderr();
    assert!(err.contains("10 lost"), "{err}");
    // Where it could be known at start, it was said at start.
    assert!(
        err.lines()
            .next()
            .is_some_and(|l| l.starts_with("ferret: warning: no collector answers at")),
        "{err}"
    );
}

#[test]
fn bad_endpoints_are_refused_in_one_line() {
    let env = util::Env::new();
    env.start_with("bad", &["-p", "P", "--mode", "real-time"]);
    for (to, says) in [
        (
            "ftp://collector:4318",
            "is not an http://HOST:PORT or https://HOST:PORT endpoint",
        ),
        (
            "collector:4318",
            "is not an http://HOST:PORT or https://HOST:PORT endpoint",
        ),
        ("http://", "names no host"),
    ] {
        let e = env.fails(&["forward", "bad", "--to", to]);
        assert_eq!(util::one_line(&e), e.trim_end(), "{e}");
        assert!(e.contains(says), "{to}: {e}");
    }
}

/// A TLS front for the collector, as a load balancer would put before
/// one: Python's `ssl` terminates TLS with `cert`/`key` and relays the
/// bytes to `upstream`. Prints its port.
const TLS_RELAY: &str = r#"
import socket, ssl, sys, threading
cert, key, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
print(srv.getsockname()[1], flush=True)
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(conn):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError):
        conn.close()
        return
    up = socket.create_connection(("127.0.0.1", upstream))
    threading.Thread(target=pipe, args=(tls, up), daemon=True).start()
    pipe(up, tls)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

#[test]
fn an_https_endpoint_is_trusted_through_the_given_ca_only() {
    let Some(rotel) = rotel() else { return };
    let env = util::Env::new();
    let collector = Collector::start(&rotel, env.dir.path());
    // A CA of the test's own, and a server certificate for 127.0.0.1 it
    // signed, as a collector behind TLS would have.
    let p = |name: &str| env.path(name).to_str().expect("path").to_string();
    let (ca, ca_key, cert, key, csr, ext) = (
        p("ca.pem"),
        p("ca.key"),
        p("cert.pem"),
        p("key.pem"),
        p("server.csr"),
        p("server.ext"),
    );
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509", "-days", "1", "-subj", "/CN=ferret-test-ca"];
    args.extend(ec);
    args.extend(["-keyout", &ca_key, "-out", &ca]);
    openssl(&args);
    let mut args = vec!["req", "-subj", "/CN=127.0.0.1"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &csr]);
    openssl(&args);
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("extensions");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    let mut relay = Relay(
        Command::new("python3")
            .args(["-c", TLS_RELAY])
            .arg(&cert)
            .arg(&key)
            .arg(collector.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("TLS relay"),
    );
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(relay.0.stdout.take().expect("stdout")),
        &mut port,
    )
    .expect("the relay's port");
    let to = format!("https://127.0.0.1:{}", port.trim());

    // Trusted through --ca: every record arrives.
    env.start_with("tls", &["-p", "E2E.Tls", "--mode", "real-time"]);
    let mut forward = env.spawn(&["forward", "tls", "--to", &to, "--ca", &ca, "--json"]);
    wait_attached(&env, "tls");
    env.emit("E2E.Tls", 20, &[]);
    env.wait_events("tls", 20);
    env.ok(&["stop", "tls"]);
    let report = final_report(&mut forward);
    assert_eq!(report["delivered"], 20, "{report}");
    util::wait_until(
        Duration::from_secs(30),
        "the collector to print 20 records",
        || printed_seqs(&collector.printed()).len() == 20,
    );

    // Without it the system's roots do not know the certificate: nothing
    // is sent to a server that cannot prove who it is, and the reason says so.
    env.start_with("untrusted", &["-p", "E2E.Untrusted", "--mode", "real-time"]);
    let mut forward = env.spawn(&[
        "forward",
        "untrusted",
        "--to",
        &to,
        "--json",
        "--drain-timeout",
        "1",
    ]);
    wait_attached(&env, "untrusted");
    env.emit("E2E.Untrusted", 5, &[]);
    env.wait_events("untrusted", 5);
    env.ok(&["stop", "untrusted"]);
    let report = final_report(&mut forward);
    assert_eq!(report["delivered"], 0, "{report}");
    assert_eq!(report["lost"]["undeliverable"], 5, "{report}");
    let why = report["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        why.contains("certificate") || why.contains("issuer"),
        "{report}"
    );
    assert_eq!(
        printed_seqs(&collector.printed()).len(),
        20,
        "nothing more arrived"
    );
}

/// The TLS relay, stopped however the test ends.
struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        util::terminate(&mut self.0);
    }
}

/// Runs openssl with `args`, asserting success.
fn openssl(args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl")
        .success();
    assert!(ok, "openssl {args:?}");
}
