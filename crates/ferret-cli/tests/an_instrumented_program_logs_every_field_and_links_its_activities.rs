//! A program instrumented with the provider library (this test process:
//! `write_event!`, a call site in a generic function, the dynamic API, an
//! interned shape, nested activities, an activity taken over by a worker
//! thread, a transfer) is traced by a real `ferret daemon` through a session
//! started with `ferret start`; `ferret fmt` shows every field value as
//! written, and the activity ids link each start event, the events inside
//! the activity and its stop event.

use ferret_testkit as util;

use std::collections::BTreeMap;
use std::time::Duration;

use ferret_provider::{
    EventShape, FieldType, FieldValue, Guid, Level, Value, activity, provider, start_activity,
    write_event,
};
use serde_json::{Value as Json, json};
use util::{Env, wait_until};

provider!(static APP = "E2E.Instrumented");

/// A call site in a generic function: each instantiation has its own field
/// type, and each must decode as what it wrote.
fn generic<T: FieldValue>(which: &str, value: T) {
    write_event!(APP, "Generic", level: Information, which = which, value = value);
}

/// Writes everything the test then looks for in the log. Returns the ids
/// of the activities it started, by name.
fn run_program() -> BTreeMap<&'static str, Guid> {
    let mut ids = BTreeMap::new();
    // Every field type, outside any activity.
    write_event!(APP, "AllTypes", level: Information, keywords: 0x1, id: 11,
        u8v = 200u8, i8v = -5i8, u16v = 60000u16, i16v = -30000i16,
        u32v = 4_000_000_000u32, i32v = -2_000_000_000i32,
        u64v = u64::MAX, i64v = i64::MIN, usizev = 12usize, isizev = -12isize,
        f64v = 3.25f64, f32v = 1.5f32, boolv = true,
        s = "héllo", string = String::from("owned"), bytes = &[0u8, 255][..],
        array = [1u8, 2, 3], vec = vec![9u8], guid = Guid::from_name("E2E"),
        "spaced, name" = 7u32);
    generic("u32", 5u32);
    generic("str", "five");

    {
        let request = start_activity!(APP, "Request", level: Information, path = "/cart");
        ids.insert("Request", request.id().expect("the session wants Request"));
        write_event!(APP, "Step", level: Information, n = 1u32);
        {
            let query = start_activity!(APP, "Query", level: Information, table = "items");
            ids.insert("Query", query.id().expect("the session wants Query"));
            write_event!(APP, "Step", level: Information, n = 2u32);
            APP.dynamic_event("Dyn", Level::Information, 0)
                .field("x", Value::U32(1))
                .field("msg", Value::Str("hi"))
                .write();
        }
        write_event!(APP, "Step", level: Information, n = 3u32);

        // A worker takes the request over and runs a job of its own.
        let request_id = ids["Request"];
        let job_id = std::thread::spawn(move || {
            let _scope = activity::enter(request_id);
            write_event!(APP, "Step", level: Information, n = 4u32);
            let job = APP
                .dynamic_event("Job", Level::Information, 0)
                .field("job", Value::U64(99))
                .start_activity();
            let id = job.id().expect("the session wants Job");
            write_event!(APP, "Step", level: Information, n = 5u32);
            id
        })
        .join()
        .expect("worker");
        ids.insert("Job", job_id);
    }

    // A shape built at run time, written through a descriptor.
    let shape = EventShape::new("Shaped", Level::Warning)
        .keywords(0x2)
        .id(21)
        .field("path", FieldType::Str)
        .field("status", FieldType::U16)
        .intern()
        .expect("shape");
    APP.write(shape, &[Value::Str("/x"), Value::U16(404)]);

    // A transfer: explicit activity and related ids.
    let (to, from) = (activity::new_id(), activity::new_id());
    ids.insert("TransferTo", to);
    ids.insert("TransferFrom", from);
    write_event!(APP, "Transfer", level: Information, activity: to, related: from, n = 6u32);
    ids
}

fn guid(id: Guid) -> Json {
    Json::from(id.to_string())
}

fn find<'a>(events: &'a [Json], name: &str, opcode: u64) -> Vec<&'a Json> {
    events
        .iter()
        .filter(|e| e["event"] == name && e["opcode"] == opcode)
        .collect()
}

fn one<'a>(events: &'a [Json], name: &str, opcode: u64) -> &'a Json {
    let found = find(events, name, opcode);
    assert_eq!(found.len(), 1, "one {name}/{opcode} in {events:#?}");
    found[0]
}

fn step(events: &[Json], n: u64) -> &Json {
    let found: Vec<_> = find(events, "Step", 0)
        .into_iter()
        .filter(|e| e["fields"]["n"] == n)
        .collect();
    assert_eq!(found.len(), 1, "one Step n={n}");
    found[0]
}

#[test]
fn fields_and_activity_links_survive_the_whole_path() {
    let env = Env::new();
    ferret_provider::configure(ferret_provider::Options {
        socket: env.socket.clone(),
        ..ferret_provider::Options::default()
    });
    let log = env.path("instrumented.ferret");
    env.start("instrumented", "E2E.Instrumented:verbose", &log, &[]);
    APP.get();
    wait_until(
        Duration::from_secs(10),
        "the session to enable the provider",
        || APP.enabled(Level::Verbose, 0),
    );

    let ids = run_program();
    assert_eq!(activity::current(), None, "every activity has ended");
    assert_eq!(APP.events_dropped(), 0);

    let stopped = env.json(&["stop", "instrumented"]);
    assert_eq!(stopped["events_lost"], 0, "{stopped}");
    let events = env.fmt_json(&[&log]);
    assert_eq!(stopped["events"], events.len() as u64, "{stopped}");
    assert_eq!(events.len(), 17, "{events:#?}");

    // Every field value as written.
    let all = one(&events, "AllTypes", 0);
    assert_eq!(all["event_id"], 11);
    assert_eq!(all["keywords"], "0x1");
    assert_eq!(
        all["fields"],
        json!({
            "u8v": 200, "i8v": -5, "u16v": 60000, "i16v": -30000,
            "u32v": 4_000_000_000u32, "i32v": -2_000_000_000,
            "u64v": u64::MAX, "i64v": i64::MIN, "usizev": 12, "isizev": -12,
            "f64v": 3.25, "f32v": 1.5, "boolv": true,
            "s": "héllo", "string": "owned", "bytes": "00ff",
            "array": "010203", "vec": "09", "guid": Guid::from_name("E2E").to_string(),
            "spaced, name": 7,
        })
    );
    let generic: Vec<_> = find(&events, "Generic", 0)
        .into_iter()
        .map(|e| e["fields"].clone())
        .collect();
    assert_eq!(
        generic,
        vec![
            json!({"which": "u32", "value": 5}),
            json!({"which": "str", "value": "five"})
        ]
    );
    let shaped = one(&events, "Shaped", 0);
    assert_eq!(shaped["fields"], json!({"path": "/x", "status": 404}));
    assert_eq!(
        (&shaped["level"], &shaped["event_id"], &shaped["keywords"]),
        (&json!(3), &json!(21), &json!("0x2"))
    );
    assert_eq!(
        one(&events, "Dyn", 0)["fields"],
        json!({"x": 1, "msg": "hi"})
    );

    // Events outside any activity carry no ids.
    for e in [all, shaped] {
        assert!(e.get("activity_id").is_none(), "{e}");
        assert!(e.get("related_activity_id").is_none(), "{e}");
    }
    for e in find(&events, "Generic", 0) {
        assert!(e.get("activity_id").is_none(), "{e}");
    }

    // The request: started with no activity current, so no related id.
    let (request, query, job) = (ids["Request"], ids["Query"], ids["Job"]);
    let start = one(&events, "Request", 1);
    assert_eq!(start["activity_id"], guid(request));
    assert!(start.get("related_activity_id").is_none(), "{start}");
    assert_eq!(start["fields"], json!({"path": "/cart"}));
    for n in [1, 3, 4] {
        assert_eq!(step(&events, n)["activity_id"], guid(request), "step {n}");
    }
    // The query, nested: related to the request.
    let qstart = one(&events, "Query", 1);
    assert_eq!(qstart["activity_id"], guid(query));
    assert_eq!(qstart["related_activity_id"], guid(request));
    assert_eq!(qstart["fields"], json!({"table": "items"}));
    assert_eq!(step(&events, 2)["activity_id"], guid(query));
    assert_eq!(one(&events, "Dyn", 0)["activity_id"], guid(query));
    let qstop = one(&events, "Query", 2);
    assert_eq!(qstop["activity_id"], guid(query));
    assert!(qstop.get("related_activity_id").is_none(), "{qstop}");
    assert_eq!(qstop["fields"], json!({}));
    // The worker's job: related to the request it took over.
    let jstart = one(&events, "Job", 1);
    assert_eq!(jstart["activity_id"], guid(job));
    assert_eq!(jstart["related_activity_id"], guid(request));
    assert_eq!(jstart["fields"], json!({"job": 99}));
    assert_ne!(jstart["tid"], start["tid"], "the job ran on the worker");
    assert_eq!(step(&events, 5)["activity_id"], guid(job));
    assert_eq!(one(&events, "Job", 2)["activity_id"], guid(job));
    // The request's stop comes last of its events on its thread.
    let stop = one(&events, "Request", 2);
    assert_eq!(stop["activity_id"], guid(request));
    assert!(stop["timestamp_ns"].as_u64() >= step(&events, 3)["timestamp_ns"].as_u64());
    // The transfer.
    let t = one(&events, "Transfer", 0);
    assert_eq!(t["activity_id"], guid(ids["TransferTo"]));
    assert_eq!(t["related_activity_id"], guid(ids["TransferFrom"]));
    assert_eq!(t["fields"], json!({"n": 6}));

    // Text output names the ids only where they exist.
    let text = env.ok(&["fmt", log.to_str().expect("path")]);
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle} in\n{text}"))
    };
    assert!(!line("/AllTypes").contains("activity="));
    assert!(line("/Query info start").contains(&format!(
        "activity={query} related={request} table=\"items\""
    )));
    assert!(line("/Query info stop").ends_with(&format!("activity={query}")));
}
