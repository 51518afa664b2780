//! A program instrumented with `tracing` is traced by adding
//! `ferret_tracing::layer`: here the program is this test process running a
//! real web server from the registry, axum with tower-http's `TraceLayer`,
//! which makes a span per request and events as it starts and finishes
//! each. Spans become activities (start and stop events with one activity
//! id, which every event inside carries), fields keep their types, and call
//! sites no session wants are disabled in `tracing` itself, then enabled
//! again when a session asks for them.

use ferret_testkit as util;

use std::time::Duration;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::prelude::*;
use util::TypedEvent;
use util::inprocess::InProcess;

const LIMIT: Duration = Duration::from_secs(30);

async fn hello() -> &'static str {
    // An event of the program's own, inside the request's span.
    tracing::info!(user = "ada", attempt = 1u32, "handling hello");
    "hello"
}

/// Serves the app on a loopback port from a thread of its own.
fn serve() -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let app = axum::Router::new()
                .route("/hello", axum::routing::get(hello))
                .layer(tower_http::trace::TraceLayer::new_for_http());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr").port())
                .expect("send port");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    rx.recv_timeout(LIMIT).expect("the server's port")
}

/// The same call site each time, so that its cached interest is what
/// decides whether it is recorded.
fn probe(n: u64) {
    tracing::info!(n, "probe");
}

#[test]
fn axum_requests_become_activities_with_typed_fields_and_disabled_sites_stay_off() {
    let env = InProcess::new();
    assert!(ferret_provider::configure(ferret_provider::Options {
        socket: env.socket.clone(),
        ..ferret_provider::Options::default()
    }));
    tracing_subscriber::registry()
        .with(ferret_tracing::layer("E2E.Tracing"))
        .init();

    // No session enables the provider: tracing's own level filter is off,
    // so every call site is skipped before its fields are looked at.
    util::wait_until(LIMIT, "tracing's max level to be OFF", || {
        LevelFilter::current() == LevelFilter::OFF
    });
    probe(0);

    let log = env.path("web.ferret");
    env.start("web", "E2E.Tracing:verbose", &log);
    util::wait_until(LIMIT, "tracing's max level to be TRACE", || {
        LevelFilter::current() == LevelFilter::TRACE
    });
    // The probe's call site was cached as never interesting; the enable
    // change rebuilt that cache.
    probe(1);

    let port = serve();
    let requests = 3;
    for _ in 0..requests {
        let body = ureq::get(&format!("http://127.0.0.1:{port}/hello"))
            .call()
            .expect("request")
            .body_mut()
            .read_to_string()
            .expect("body");
        assert_eq!(body, "hello");
    }

    // A request's span closes (its stop event) when the server has
    // finished with the response, which may be just after the client has
    // read it: wait for the probe and five events per request.
    env.wait_events("web", 1 + 5 * requests as u64);
    env.stop("web");
    util::wait_until(LIMIT, "tracing's max level to be OFF again", || {
        LevelFilter::current() == LevelFilter::OFF
    });
    probe(2);

    let events = util::typed_events(&log);
    let probes: Vec<&str> = events
        .iter()
        .filter(|e| e.field("message") == Some("Str(\"probe\")"))
        .filter_map(|e| e.field("n"))
        .collect();
    assert_eq!(probes, ["U64(1)"], "only the probe written while enabled");

    // One activity per request: a start event of the span "request" with
    // its fields, events inside carrying its id, a stop event.
    let starts: Vec<&TypedEvent> = events
        .iter()
        .filter(|e| e.name == "request" && e.opcode == 1)
        .collect();
    assert_eq!(starts.len(), requests, "{events:#?}");
    let mut ids = Vec::new();
    for start in &starts {
        assert_eq!(start.level, 5, "tower-http's spans are DEBUG: verbose");
        assert_eq!(
            start.keywords,
            ferret_tracing::KEYWORD_SPAN | ferret_tracing::KEYWORD_DEBUG
        );
        assert_eq!(start.field("method"), Some("Str(\"GET\")"));
        assert_eq!(start.field("uri"), Some("Str(\"/hello\")"));
        assert_eq!(start.field("version"), Some("Str(\"HTTP/1.1\")"));
        assert_eq!(
            start.field("target"),
            Some("Str(\"tower_http::trace::make_span\")")
        );
        let id = start.activity.expect("a start event has its activity id");
        assert_eq!(start.related, None, "requests have no parent activity");
        ids.push(id);
    }
    ids.sort_by_key(|g| g.0);
    ids.dedup();
    assert_eq!(ids.len(), requests, "each request its own activity");

    for id in &ids {
        let of = |pred: &dyn Fn(&TypedEvent) -> bool| -> Vec<&TypedEvent> {
            events
                .iter()
                .filter(|e| e.activity == Some(*id) && pred(e))
                .collect()
        };
        let started = of(&|e| e.field("message") == Some("Str(\"started processing request\")"));
        assert_eq!(started.len(), 1, "{id:?}");
        let handled = of(&|e| e.field("message") == Some("Str(\"handling hello\")"));
        assert_eq!(handled.len(), 1, "{id:?}");
        assert_eq!(handled[0].level, 4);
        assert_eq!(handled[0].keywords, 0);
        assert_eq!(handled[0].field("user"), Some("Str(\"ada\")"));
        assert_eq!(handled[0].field("attempt"), Some("U64(1)"));
        let finished = of(&|e| e.field("message") == Some("Str(\"finished processing request\")"));
        assert_eq!(finished.len(), 1, "{id:?}");
        assert_eq!(finished[0].field("status"), Some("I64(200)"));
        let latency = finished[0].field("latency").expect("latency");
        assert!(latency.ends_with(" ms\")"), "{latency}");
        let stops = of(&|e| e.name == "request" && e.opcode == 2);
        assert_eq!(stops.len(), 1, "{id:?}");
    }
}
