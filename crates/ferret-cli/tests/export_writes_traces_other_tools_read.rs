//! `ferret export` writes traces that readers no one here wrote decode
//! right: babeltrace2 for CTF, the perfetto package's own protobuf
//! descriptors for Perfetto, and the trace event format's documented rules
//! for Chrome JSON. A hand-built log whose every record is known checks
//! each value, the activity slices and the carried-over loss; a program
//! traced by the real daemon checks that a real log exports whole.
//!
//! When a reader is not installed the test says "skipped: ..." and
//! passes, unless FERRET_REQUIRE_TOOLS=1 (CI sets it) makes that a failure.

#[path = "export/shop_log.rs"]
mod shop_log;
use ferret_testkit as util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferret_provider::{Guid, Level, provider, start_activity, write_event};
use serde_json::{Value as Json, json};
use shop_log::{JOB, LOST, PARENT, STRAY, T0, TRICKY};
use util::{Env, one_line, wait_until};

/// Whether `program args` runs successfully; when it does not, says the
/// test is skipped, or fails it when FERRET_REQUIRE_TOOLS=1.
fn have(what: &str, program: &str, args: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("FERRET_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{what} is not installed, and FERRET_REQUIRE_TOOLS=1"
        );
        println!("skipped: {what} is not installed");
    }
    ok
}

fn have_babeltrace() -> bool {
    have("babeltrace2", "babeltrace2", &["--version"])
}

fn have_perfetto_python() -> bool {
    have(
        "python3 with the perfetto and protobuf packages",
        "python3",
        &[
            "-c",
            "import google.protobuf; from perfetto.protos.perfetto.trace import perfetto_trace_pb2",
        ],
    )
}

fn shop_log(env: &Env) -> PathBuf {
    let log = env.path("shop.ferret");
    std::fs::write(&log, shop_log::bytes()).unwrap();
    log
}

/// `ferret export LOG --to FORMAT -o OUT`; returns OUT and export's
/// stderr line.
fn export(env: &Env, logs: &[&Path], to: &str, out: &str) -> (PathBuf, String) {
    let out = env.path(out);
    let mut args = vec!["export"];
    args.extend(logs.iter().map(|l| l.to_str().unwrap()));
    args.extend(["--to", to, "-o", out.to_str().unwrap()]);
    let o = env.run(&args);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "export failed: {stderr}");
    (out, stderr)
}

/// `babeltrace2 --clock-seconds DIR`: its event lines as (UNIX ns, the
/// text after the time), and its other lines.
fn babeltrace(dir: &Path) -> (Vec<(u64, String)>, Vec<String>) {
    let o = Command::new("babeltrace2")
        .arg("--clock-seconds")
        .arg(dir)
        .output()
        .expect("babeltrace2");
    let stdout = String::from_utf8(o.stdout).expect("utf-8");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "babeltrace2 failed: {stderr}\n{stdout}");
    let mut events = Vec::new();
    let mut other = Vec::new();
    for line in stdout.lines().chain(stderr.lines()) {
        let Some(rest) = line.strip_prefix('[') else {
            other.push(line.to_string());
            continue;
        };
        let (time, rest) = rest.split_once("] (+").expect("a time and a delta");
        let (secs, nanos) = time.split_once('.').expect("seconds.nanoseconds");
        assert_eq!(nanos.len(), 9, "{line}");
        let ns = secs.parse::<u64>().unwrap() * 1_000_000_000 + nanos.parse::<u64>().unwrap();
        let (_, text) = rest.split_once(") ").expect("the delta's end");
        events.push((ns, text.to_string()));
    }
    (events, other)
}

/// babeltrace2's text for the shop log's Checkout number `n`.
fn checkout_text(n: u32, activity: &str) -> String {
    let user = if n == 2 {
        r#""bob \"b\" \\ é\n""#
    } else {
        "\"ann\""
    };
    format!(
        "Shop.Cart/Checkout: {{ pid = 42, tid = 43, activity_id = \"{activity}\", related_activity_id = \"\" }}, \
         {{ items = {n}, total = 19.5, user__name = {user}, ok = {ok}, blob_len = 2, blob = [ [0] = 222, [1] = 173 ], \
         delta = -{n}, small = 200, tiny = -5, mid = 60000, neg = -30000, big = 18446744073709551615, \
         i32v = -2000000000, cart = \"{cart}\", string = \"kw\" }}",
        ok = u8::from(n % 2 == 0),
        cart = Guid::from_name("cart"),
    )
}

#[test]
fn ctf_decodes_in_babeltrace2_with_every_event_field_and_loss() {
    if !have_babeltrace() {
        return;
    }
    let env = Env::without_daemon();
    let log = shop_log(&env);
    let (out, line) = export(&env, &[&log], "ctf", "shop.ctf");
    assert!(
        line.contains("6 events") && line.contains("17 events the logs record as lost"),
        "{line}"
    );
    assert!(out.join("metadata").is_file() && out.join("stream").is_file());
    let (events, other) = babeltrace(&out);
    let job = JOB.to_string();
    let expected = vec![
        (T0 + 1_500, checkout_text(1, "")),
        (T0 + 2_500, checkout_text(2, "")),
        (
            T0 + 4_000,
            format!(
                "Shop.Cart/Payment: {{ pid = 42, tid = 44, activity_id = \"{job}\", related_activity_id = \"{PARENT}\" }}, {{ order = 77 }}"
            ),
        ),
        (T0 + 9_000, checkout_text(3, &job)),
        (
            T0 + 11_000,
            format!(
                "Shop.Cart/Payment: {{ pid = 42, tid = 43, activity_id = \"{job}\", related_activity_id = \"\" }}, {{ }}"
            ),
        ),
        (
            T0 + 12_000,
            format!(
                "Shop.Cart/Payment: {{ pid = 42, tid = 43, activity_id = \"{STRAY}\", related_activity_id = \"\" }}, {{ }}"
            ),
        ),
        (
            T0 + 19_000,
            "ferret/process_end: { pid = 42, tid = 0, activity_id = \"\", related_activity_id = \"\" }, { }".into(),
        ),
    ];
    assert_eq!(events, expected);
    // The loss is counted, between the packet that ends with the event
    // before it and the next.
    let warning = other
        .iter()
        .find(|l| l.contains("discarded"))
        .unwrap_or_else(|| panic!("no discarded events in {other:?}"));
    assert!(
        warning.contains(&format!(
            "Tracer discarded {LOST} events between [1795426500.000004000]"
        )),
        "{warning}"
    );
}

/// Runs the perfetto_dump.py reader on a Perfetto trace.
fn perfetto_dump(trace: &Path) -> Json {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export/perfetto_dump.py");
    let o = Command::new("python3")
        .arg(script)
        .arg(trace)
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "perfetto_dump.py failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("JSON from perfetto_dump.py")
}

fn checkout_annotations(n: u64, activity: Option<Guid>) -> Json {
    let mut a = json!({
        "items": n, "total": {"double": 19.5}, "user, name": if n == 2 { TRICKY } else { "ann" },
        "ok": n % 2 == 0, "blob": "dead", "delta": -(n as i64), "small": 200, "tiny": -5,
        "mid": 60000, "neg": -30000, "big": u64::MAX, "i32v": -2_000_000_000,
        "cart": Guid::from_name("cart").to_string(), "string": "kw",
    });
    if let Some(id) = activity {
        a["activity_id"] = json!(id.to_string());
    }
    a
}

#[test]
fn perfetto_parses_with_perfettos_own_descriptors() {
    if !have_perfetto_python() {
        return;
    }
    let env = Env::without_daemon();
    let log = shop_log(&env);
    let (out, _) = export(&env, &[&log], "perfetto", "shop.pftrace");
    let d = perfetto_dump(&out);
    // A clock packet, a process and two thread tracks, a track for the
    // activity, six events, the loss, the process end, the summary's
    // track and the summary.
    assert_eq!(d["packets"], 15, "{d:#}");
    assert_eq!(
        d["clocks"],
        json!([{"primary": 1, "clocks": [[1, T0], [3, 1_000]], "default_clock": 1}]),
        "REALTIME is the trace's clock and every timestamp is on it; the log's \
         anchor relates it to MONOTONIC"
    );
    let tracks = d["tracks"].as_array().unwrap();
    let track = |pred: &dyn Fn(&Json) -> bool| -> u64 {
        let found: Vec<_> = tracks.iter().filter(|t| pred(t)).collect();
        assert_eq!(found.len(), 1, "{tracks:#?}");
        found[0]["uuid"].as_u64().unwrap()
    };
    let process = track(&|t| t["process_name"] == "app" && t["pid"] == 42);
    let t43 = track(&|t| t["tid"] == 43 && t["parent"] == process);
    let t44 = track(&|t| t["tid"] == 44 && t["parent"] == process);
    let activity = track(&|t| t["name"] == "Shop.Cart/Payment" && t["parent"] == process);
    let summary = track(&|t| t["name"] == "Ferret export");
    let events: Vec<_> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["needs_state"], true, "{e}");
            (
                e["ts"].as_u64().unwrap(),
                e["type"].as_str().unwrap().to_string(),
                e["track"].as_u64().unwrap(),
                e["name"].as_str().unwrap().to_string(),
                e["categories"].clone(),
                e["annotations"].clone(),
            )
        })
        .collect();
    let cat = json!(["Shop.Cart"]);
    let ferret = json!(["ferret"]);
    let instant = "TYPE_INSTANT".to_string();
    let checkout = "Shop.Cart/Checkout".to_string();
    let payment = "Shop.Cart/Payment".to_string();
    let expected = vec![
        (
            T0 + 1_500,
            instant.clone(),
            t43,
            checkout.clone(),
            cat.clone(),
            checkout_annotations(1, None),
        ),
        (
            T0 + 2_500,
            instant.clone(),
            t43,
            checkout.clone(),
            cat.clone(),
            checkout_annotations(2, None),
        ),
        (
            T0 + 4_000,
            "TYPE_SLICE_BEGIN".into(),
            activity,
            payment.clone(),
            cat.clone(),
            json!({"order": 77, "activity_id": JOB.to_string(), "related_activity_id": PARENT.to_string()}),
        ),
        (
            T0 + 4_000,
            instant.clone(),
            process,
            "Lost events".into(),
            ferret.clone(),
            json!({"count": LOST, "reason": "ring-full", "provider": "Shop.Cart"}),
        ),
        (
            T0 + 9_000,
            instant.clone(),
            t43,
            checkout.clone(),
            cat.clone(),
            checkout_annotations(3, Some(JOB)),
        ),
        (
            T0 + 11_000,
            "TYPE_SLICE_END".into(),
            activity,
            payment.clone(),
            cat.clone(),
            json!({"activity_id": JOB.to_string()}),
        ),
        // A stop with no start in the trace ends no slice.
        (
            T0 + 12_000,
            instant.clone(),
            t43,
            payment.clone(),
            cat.clone(),
            json!({"activity_id": STRAY.to_string()}),
        ),
        (
            T0 + 19_000,
            instant.clone(),
            process,
            "Process ended".into(),
            ferret.clone(),
            json!({}),
        ),
        (
            T0 + 19_000,
            instant.clone(),
            summary,
            "Export summary".into(),
            ferret.clone(),
            json!({"files": 1, "events": 6, "lost_events": LOST, "ring-full": LOST,
                   "log_buffers_lost": 0, "bad_records": 0, "corrupt_bytes": 0}),
        ),
    ];
    assert_eq!(events, expected);
    let _ = t44;
}

/// Checks one trace event against the trace event format's rules for its
/// phase: the keys it must have and their types.
fn check_trace_event(e: &Json) {
    let ph = e["ph"].as_str().unwrap_or_else(|| panic!("ph in {e}"));
    assert!(e["name"].is_string(), "name in {e}");
    assert!(e["pid"].is_u64(), "pid in {e}");
    assert!(e["tid"].is_u64(), "tid in {e}");
    assert!(e["args"].is_object(), "args in {e}");
    match ph {
        "M" => {
            assert!(
                ["process_name", "thread_name"].contains(&e["name"].as_str().unwrap()),
                "{e}"
            );
            assert!(e["args"]["name"].is_string(), "{e}");
        }
        "i" | "b" | "e" => {
            let ts = e["ts"].as_f64().unwrap_or_else(|| panic!("ts in {e}"));
            assert!(ts >= 0.0, "{e}");
            assert!(e["cat"].is_string(), "cat in {e}");
            if ph == "i" {
                assert!(
                    ["g", "p", "t"].contains(&e["s"].as_str().unwrap()),
                    "s in {e}"
                );
            } else {
                assert!(e["id"].is_string(), "id in {e}");
            }
        }
        other => panic!("unexpected phase {other} in {e}"),
    }
}

/// Reads a Chrome JSON export and checks the file's and every event's
/// shape; returns the document.
fn chrome(path: &Path) -> Json {
    let doc: Json = serde_json::from_slice(&std::fs::read(path).unwrap()).expect("valid JSON");
    assert_eq!(doc["displayTimeUnit"], "ns");
    assert!(doc["metadata"].is_object());
    for e in doc["traceEvents"].as_array().expect("traceEvents") {
        check_trace_event(e);
    }
    doc
}

#[test]
fn chrome_json_follows_the_trace_event_format() {
    let env = Env::without_daemon();
    let log = shop_log(&env);
    let (out, _) = export(&env, &[&log], "chrome", "shop.json");
    let doc = chrome(&out);
    let events = doc["traceEvents"].as_array().unwrap();
    let meta: Vec<_> = events.iter().filter(|e| e["ph"] == "M").collect();
    assert_eq!(
        meta,
        [
            &json!({"ph": "M", "name": "process_name", "pid": 42, "tid": 0, "args": {"name": "app"}}),
            &json!({"ph": "M", "name": "thread_name", "pid": 42, "tid": 43, "args": {"name": "thread 43"}}),
            &json!({"ph": "M", "name": "thread_name", "pid": 42, "tid": 44, "args": {"name": "thread 44"}}),
        ]
    );
    // ts is in microseconds from the first event, nanoseconds kept.
    let rest: Vec<(String, &str, f64, Json)> = events
        .iter()
        .filter(|e| e["ph"] != "M")
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["ph"].as_str().unwrap(),
                e["ts"].as_f64().unwrap(),
                e["args"].clone(),
            )
        })
        .collect();
    let with_job = |mut a: Json| {
        a["activity_id"] = json!(JOB.to_string());
        a
    };
    let plain = |n: u64| {
        let mut a = checkout_annotations(n, None);
        a["total"] = json!(19.5);
        a
    };
    assert_eq!(
        rest,
        vec![
            ("Shop.Cart/Checkout".into(), "i", 0.0, plain(1)),
            ("Shop.Cart/Checkout".into(), "i", 1.0, plain(2)),
            (
                "Shop.Cart/Payment".into(),
                "b",
                2.5,
                json!({"order": 77, "activity_id": JOB.to_string(), "related_activity_id": PARENT.to_string()})
            ),
            (
                "Lost events".into(),
                "i",
                2.5,
                json!({"count": LOST, "reason": "ring-full", "provider": "Shop.Cart"})
            ),
            ("Shop.Cart/Checkout".into(), "i", 7.5, with_job(plain(3))),
            ("Shop.Cart/Payment".into(), "e", 9.5, with_job(json!({}))),
            (
                "Shop.Cart/Payment".into(),
                "i",
                10.5,
                json!({"activity_id": STRAY.to_string()})
            ),
            ("Process ended".into(), "i", 17.5, json!({})),
        ]
    );
    // The slice's ends share an id: a 64-bit number in hex.
    let ids: Vec<&str> = events
        .iter()
        .filter(|e| e["ph"] == "b" || e["ph"] == "e")
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    assert!(
        ids[0].len() == 18
            && ids[0].starts_with("0x")
            && u64::from_str_radix(&ids[0][2..], 16).is_ok(),
        "{ids:?}"
    );
    assert_eq!(
        doc["metadata"],
        json!({"source": "ferret", "trace_start_unix_ns": T0 + 1_500, "files": 1, "events": 6,
               "lost_events": LOST, "lost_by_reason": {"ring-full": LOST}, "log_buffers_lost": 0,
               "bad_records": 0, "corrupt_stretches": 0, "corrupt_bytes": 0})
    );
}

provider!(static APP = "E2E.Export");

/// Writes nested activities, one continued on a worker thread, and events
/// inside them; returns the activities' ids by name.
fn run_program() -> BTreeMap<&'static str, Guid> {
    let mut ids = BTreeMap::new();
    write_event!(APP, "Hello", level: Information, n = 0u32, text = "a \"quoted\"\tword");
    {
        let request = start_activity!(APP, "Request", level: Information, path = "/cart");
        ids.insert("Request", request.id().expect("the session wants Request"));
        write_event!(APP, "Step", level: Information, n = 1u32);
        {
            let query = start_activity!(APP, "Query", level: Information, table = "items");
            ids.insert("Query", query.id().expect("the session wants Query"));
            write_event!(APP, "Step", level: Information, n = 2u32);
        }
        let request_id = ids["Request"];
        std::thread::spawn(move || {
            let _scope = ferret_provider::activity::enter(request_id);
            write_event!(APP, "Step", level: Information, n = 3u32);
        })
        .join()
        .expect("worker");
    }
    ids
}

#[test]
fn a_traced_programs_log_exports_whole_in_every_format() {
    let env = Env::new();
    ferret_provider::configure(ferret_provider::Options {
        socket: env.socket.clone(),
        ..ferret_provider::Options::default()
    });
    let log = env.path("program.ferret");
    env.start("program", "E2E.Export:verbose", &log, &[]);
    APP.get();
    wait_until(
        Duration::from_secs(10),
        "the session to enable the provider",
        || APP.enabled(Level::Verbose, 0),
    );
    let ids = run_program();
    let stopped = env.json(&["stop", "program"]);
    assert_eq!(stopped["events_lost"], 0, "{stopped}");
    let decoded = env.fmt_json(&[&log]);
    // Hello, two starts, three steps, two stops.
    assert_eq!(decoded.len(), 8, "{decoded:#?}");
    let mut by_time = decoded.clone();
    by_time.sort_by_key(|e| e["timestamp_ns"].as_u64().unwrap());
    let names: Vec<String> = by_time
        .iter()
        .map(|e| format!("E2E.Export/{}", e["event"].as_str().unwrap()))
        .collect();

    // Chrome: each activity is one b/e pair under its id, every event is
    // there once, in time order.
    let (json_out, _) = export(&env, &[&log], "chrome", "program.json");
    let doc = chrome(&json_out);
    let events: Vec<&Json> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] != "M")
        .collect();
    let chrome_names: Vec<String> = events
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(chrome_names, names);
    for (name, id) in [("Request", ids["Request"]), ("Query", ids["Query"])] {
        let ends: Vec<(&str, &str)> = events
            .iter()
            .filter(|e| e["ph"] != "i" && e["args"]["activity_id"] == id.to_string())
            .map(|e| (e["ph"].as_str().unwrap(), e["id"].as_str().unwrap()))
            .collect();
        assert_eq!(ends.len(), 2, "{name}: {ends:?}");
        assert_eq!((ends[0].0, ends[1].0), ("b", "e"), "{name}");
        assert_eq!(ends[0].1, ends[1].1, "{name}: one id for both ends");
    }
    let hello = events[0];
    assert_eq!(hello["args"], json!({"n": 0, "text": "a \"quoted\"\tword"}));

    // Perfetto: a slice per activity on a track of its own.
    if have_perfetto_python() {
        let (out, _) = export(&env, &[&log], "perfetto", "program.pftrace");
        let d = perfetto_dump(&out);
        let events: Vec<&Json> = d["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["categories"] == json!(["E2E.Export"]))
            .collect();
        let pf_names: Vec<String> = events
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(pf_names, names);
        let ts: Vec<u64> = events.iter().map(|e| e["ts"].as_u64().unwrap()).collect();
        let fmt_ts: Vec<u64> = by_time
            .iter()
            .map(|e| e["timestamp_ns"].as_u64().unwrap())
            .collect();
        assert_eq!(ts, fmt_ts, "timestamps are the log's, to the nanosecond");
        for name in ["Request", "Query"] {
            let slice: Vec<(&str, u64)> = events
                .iter()
                .filter(|e| e["type"] != "TYPE_INSTANT")
                .filter(|e| e["name"] == format!("E2E.Export/{name}"))
                .map(|e| (e["type"].as_str().unwrap(), e["track"].as_u64().unwrap()))
                .collect();
            assert_eq!(slice.len(), 2, "{name}: {slice:?}");
            assert_eq!(slice[0].0, "TYPE_SLICE_BEGIN");
            assert_eq!(slice[1].0, "TYPE_SLICE_END");
            assert_eq!(
                slice[0].1, slice[1].1,
                "{name} begins and ends on one track"
            );
        }
    }

    // CTF: every event, in time order, with its values.
    if have_babeltrace() {
        let (out, _) = export(&env, &[&log], "ctf", "program.ctf");
        let (events, _) = babeltrace(&out);
        let got: Vec<(u64, String)> = events
            .iter()
            .map(|(ts, text)| (*ts, text.split(':').next().unwrap().to_string()))
            .collect();
        let want: Vec<(u64, String)> = by_time
            .iter()
            .zip(&names)
            .map(|(e, n)| (e["timestamp_ns"].as_u64().unwrap(), n.clone()))
            .collect();
        assert_eq!(got, want);
        assert!(
            events[0]
                .1
                .ends_with(r#"{ n = 0, text = "a \"quoted\"\tword" }"#),
            "{}",
            events[0].1
        );
    }
}

#[test]
fn two_logs_merge_by_time() {
    let env = Env::without_daemon();
    let a = shop_log(&env);
    let b = env.path("again.ferret");
    std::fs::copy(&a, &b).unwrap();
    let (out, line) = export(&env, &[&a, &b], "chrome", "two.json");
    assert!(line.contains("12 events from 2 file(s)"), "{line}");
    let doc = chrome(&out);
    let ts: Vec<f64> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] != "M")
        .map(|e| e["ts"].as_f64().unwrap())
        .collect();
    assert_eq!(ts.len(), 16);
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
    assert_eq!(doc["metadata"]["lost_events"], 2 * LOST);
}

#[test]
fn bad_input_or_an_existing_output_gets_one_line_and_leaves_no_file() {
    let env = Env::without_daemon();
    let log = shop_log(&env);
    let log = log.to_str().unwrap();
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(env.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };

    // An existing output is kept unless --force.
    let out = env.path("t.json");
    std::fs::write(&out, "keep me").unwrap();
    let err = env.fails(&["export", log, "--to", "chrome", "-o", out.to_str().unwrap()]);
    assert!(
        one_line(&err).contains("already exists (use --force to replace it)"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    env.ok(&[
        "export",
        log,
        "--to",
        "chrome",
        "-o",
        out.to_str().unwrap(),
        "--force",
    ]);
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .starts_with("{\"traceEvents\"")
    );

    // Input that is not a log, or not there: one line, no output.
    let junk = env.path("junk.ferret");
    std::fs::write(&junk, b"this is not a ferret log at all, not even close").unwrap();
    let before = listing();
    for (input, to) in [
        (junk.to_str().unwrap(), "perfetto"),
        (env.path("missing.ferret").to_str().unwrap(), "ctf"),
    ] {
        let target = env.path("bad.out");
        let err = env.fails(&[
            "export",
            log,
            input,
            "--to",
            to,
            "-o",
            target.to_str().unwrap(),
        ]);
        let line = one_line(&err);
        assert!(
            line.starts_with("ferret: ") && line.contains(input),
            "{line}"
        );
        assert_eq!(listing(), before, "nothing is left behind");
    }
}

#[test]
fn a_large_log_exports_to_ctf_in_many_packets_with_every_event() {
    if !have_babeltrace() {
        return;
    }
    let env = Env::new();
    let log = env.path("many.ferret");
    env.start("many", "E2E.ExportMany", &log, &[]);
    env.emit("E2E.ExportMany", 20_000, &["--threads", "2"]);
    env.wait_no_providers();
    env.ok(&["stop", "many"]);
    let (out, line) = export(&env, &[&log], "ctf", "many.ctf");
    assert!(line.contains("20000 events"), "{line}");
    // Packets hold at most 64 KiB of events, so these take several.
    let stream = std::fs::read(out.join("stream")).unwrap();
    let magic = 0xC1FC_1FC1u32.to_le_bytes();
    let (mut at, mut packets) = (0, 0);
    while at < stream.len() {
        assert_eq!(stream[at..at + 4], magic, "a packet starts at {at}");
        let size = u64::from_le_bytes(stream[at + 48..at + 56].try_into().unwrap()) as usize / 8;
        assert!(size <= 64 + 64 * 1024 + 256, "packet of {size} bytes");
        at += size;
        packets += 1;
    }
    assert!(packets > 3, "{packets} packets");
    let (events, _) = babeltrace(&out);
    let mut seqs: Vec<u64> = events
        .iter()
        .filter(|(_, text)| text.starts_with("E2E.ExportMany/Sample:"))
        .map(|(_, text)| {
            let at = text.find("seq = ").expect("seq") + 6;
            let digits: String = text[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().unwrap()
        })
        .collect();
    assert!(events.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
    assert_eq!(seqs.len(), 20_000);
    seqs.sort_unstable();
    seqs.dedup();
    // Each of the two threads numbers its own events.
    assert_eq!(seqs, (0..10_000).collect::<Vec<u64>>());
    assert!(
        events
            .iter()
            .any(|(_, t)| t.starts_with("ferret/process_end:")),
        "the emit process's end is there"
    );
}

#[test]
fn a_damaged_log_exports_what_is_left_and_says_what_was_skipped() {
    let env = Env::without_daemon();
    let mut bytes = shop_log::bytes();
    // Damage the second buffer's records: its checksum no longer matches.
    let second = shop_log::second_slot() + 100;
    bytes[second] ^= 0xff;
    let log = env.path("damaged.ferret");
    std::fs::write(&log, bytes).unwrap();
    let (out, line) = export(&env, &[&log], "chrome", "damaged.json");
    assert!(line.contains("3 events"), "{line}");
    assert!(
        line.contains("skipped 0 undecodable records and 4096 damaged bytes"),
        "{line}"
    );
    let doc = chrome(&out);
    assert_eq!(doc["metadata"]["corrupt_stretches"], 1);
    assert_eq!(doc["metadata"]["corrupt_bytes"], 4096);
    assert_eq!(doc["metadata"]["lost_events"], LOST);
}
