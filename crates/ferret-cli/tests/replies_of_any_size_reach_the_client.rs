//! Every reply that grows with the number of sessions, providers or names
//! reaches the client, however large: `list`, `list --json`, `query` and
//! `providers` with thousands of sessions or long provider names, each
//! session exactly once, even while others come and go.

use ferret_testkit as util;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferret_abi::proto::{
    FileMode, MAX_MESSAGE, ProviderSpec, Request, Response, Role, SessionRef, SessionState,
    StartRequest, encoded_len,
};
use ferret_abi::{EnableFilter, Guid, Level};
use ferret_client::{Client, Conn};
use util::Env;

/// More stopped sessions than one message of the old, unpaged list held.
const SESSIONS: u32 = 2_300;

/// A session name of 200 bytes, so that the list is well past one message.
fn name(i: u32) -> String {
    format!("many-{i:05}-{}", "n".repeat(189))
}

fn request(name: String, providers: Vec<ProviderSpec>) -> StartRequest {
    StartRequest {
        name,
        providers,
        log_file: String::new(),
        buffer_kib: 4,
        max_buffers: 2,
        flush_timer_ms: 0,
        min_buffers: 1,
        file_mode: FileMode::RealTime,
        max_file_bytes: 0,
        realtime: true,
        // The longest description a controller may give, as the viewer's
        // and scripts' descriptions can be.
        controller: "c".repeat(256),
        no_loss: false,
        no_loss_wait_ms: 0,
    }
}

/// Starts and stops `n` sessions from `first`; returns their LoggerIDs.
fn start_stopped(client: &mut Client, first: u32, n: u32) -> Vec<u32> {
    (first..first + n)
        .map(|i| {
            let s = client
                .start(request(name(i), Vec::new()), None)
                .expect("start")
                .session;
            client
                .stop(&SessionRef::Id(s.logger_id), true)
                .expect("stop");
            s.logger_id
        })
        .collect()
}

#[test]
fn thousands_of_stopped_sessions_are_each_listed_once() {
    let env = Env::new();
    let mut client = env.client();
    let ids = start_stopped(&mut client, 0, SESSIONS);
    let listed = client.list().expect("list");
    // The whole list is far more than one message could hold.
    assert!(encoded_len(&listed).unwrap() > MAX_MESSAGE);
    assert_eq!(
        listed.iter().map(|s| s.logger_id).collect::<Vec<_>>(),
        ids,
        "every session once, by LoggerID"
    );
    assert!(listed.iter().all(|s| s.state == SessionState::Stopped));

    let json = env.json(&["list"]);
    let json = json.as_array().expect("array");
    assert_eq!(json.len(), SESSIONS as usize);
    let names: Vec<&str> = json.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, (0..SESSIONS).map(name).collect::<Vec<_>>());

    let text = env.ok(&["list"]);
    // A header line, then one line per session.
    assert_eq!(
        text.lines().count(),
        SESSIONS as usize + 1,
        "{}",
        &text[..200]
    );
    for i in 0..SESSIONS {
        assert_eq!(
            text.matches(&format!(" {} ", name(i))).count(),
            1,
            "session {i} once in the text list"
        );
    }
}

#[test]
fn a_list_taken_while_sessions_come_and_go_has_each_lasting_session_once() {
    let env = Env::new();
    let mut client = env.client();
    let lasting = start_stopped(&mut client, 0, 1_500);
    let lasting_set: BTreeSet<u32> = lasting.iter().copied().collect();
    let done = Arc::new(AtomicBool::new(false));
    // Another controller starts sessions and removes them again, so that
    // LoggerIDs are taken and given back while pages are read.
    let churn = {
        let socket = env.socket.clone();
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut c = Client::connect(&socket).expect("connect");
            let mut i = 10_000;
            let mut rounds = 0u32;
            while !done.load(Ordering::Relaxed) || rounds < 20 {
                let ids = start_stopped(&mut c, i, 20);
                for id in ids {
                    c.remove(&SessionRef::Id(id)).expect("remove");
                }
                i += 20;
                rounds += 1;
            }
            rounds
        })
    };
    for _ in 0..10 {
        let listed = client.list().expect("list");
        let ids: Vec<u32> = listed.iter().map(|s| s.logger_id).collect();
        let unique: BTreeSet<u32> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "no session listed twice");
        assert!(
            lasting_set.is_subset(&unique),
            "every session that existed throughout is listed"
        );
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "by LoggerID");
    }
    done.store(true, Ordering::Relaxed);
    assert!(churn.join().expect("churn") >= 20);
    assert_eq!(
        client
            .list()
            .expect("list")
            .iter()
            .map(|s| s.logger_id)
            .collect::<Vec<_>>(),
        lasting
    );
}

/// Provider names of 600 bytes, distinct in their first characters: 256
/// of them still make a start request shorter than the 208 KiB one packet
/// carries on a system with the default socket buffer.
fn provider(i: usize) -> String {
    format!("Long.P{i:04}.{}", "x".repeat(589))
}

/// Registers providers `from..to` on a provider connection of their own;
/// the connection stays open (and the providers registered) while it lives.
fn register(env: &Env, from: usize, to: usize) -> Conn {
    let mut conn = Conn::connect_to_daemon(&env.socket).expect("connect");
    let hello = Request::Hello(ferret_abi::proto::Hello {
        magic: ferret_abi::proto::PROTO_MAGIC,
        major: ferret_abi::shm::ABI_MAJOR,
        minor: ferret_abi::shm::ABI_MINOR,
        role: Role::Provider,
        client: "long names".into(),
    });
    conn.send(&hello, &[]).expect("hello");
    let (r, _fds) = conn.recv::<Response>().expect("region");
    assert!(matches!(r, Response::Region(_)), "{r:?}");
    for (slot, i) in (from..to).enumerate() {
        let name = provider(i);
        let req = Request::RegisterProvider {
            slot: slot as u32,
            guid: Guid::from_name(&name),
            name,
        };
        conn.send(&req, &[]).expect("register");
        let (r, _) = conn.recv::<Response>().expect("registered");
        assert!(matches!(r, Response::ProviderRegistered { .. }), "{r:?}");
    }
    conn
}

#[test]
fn sessions_of_256_long_provider_names_are_listed_queried_and_shown() {
    let env = Env::new();
    let mut client = env.client();
    // Two sessions of 256 providers of 600-byte names: 300 KiB of names,
    // more than one packet carries here or on most systems.
    let sessions: Vec<u32> = (0..2)
        .map(|k| {
            let providers = (0..256)
                .map(|i| ProviderSpec {
                    name: provider(k * 256 + i),
                    filter: EnableFilter::level(Level::Verbose),
                })
                .collect();
            let req = request(format!("long-{k}"), providers);
            client.start(req, None).expect("start").session.logger_id
        })
        .collect();
    // The 512 providers registered by one process.
    let _registered = register(&env, 0, 512);

    let listed = client.list().expect("list");
    assert_eq!(
        listed.iter().map(|s| s.logger_id).collect::<Vec<_>>(),
        sessions
    );
    assert!(listed.iter().all(|s| s.providers.len() == 256));
    assert!(encoded_len(&listed).unwrap() > ferret_client::transport::packet_limit());
    let json = env.json(&["list"]);
    assert_eq!(json.as_array().unwrap().len(), 2);
    let text = env.ok(&["list"]);
    assert_eq!(text.lines().count(), 3, "{text}");

    for (k, id) in sessions.iter().enumerate() {
        let q = client.query(&SessionRef::Id(*id)).expect("query");
        assert_eq!(q.providers.len(), 256);
        assert_eq!(q.providers[255].name, provider(k * 256 + 255));
        let j = env.json(&["query", &id.to_string()]);
        assert_eq!(j["providers"].as_array().unwrap().len(), 256, "{id}");
    }

    let providers = client.providers().expect("providers");
    assert!(encoded_len(&providers).unwrap() > ferret_client::transport::packet_limit());
    let names: Vec<String> = providers.iter().map(|p| p.name.clone()).collect();
    assert_eq!(names, (0..512).map(provider).collect::<Vec<_>>());
    // Each provider is enabled by the one session whose list holds it.
    for (i, p) in providers.iter().enumerate() {
        assert_eq!(p.sessions, vec![sessions[i / 256]], "{i}");
    }
    let json = env.json(&["providers"]);
    assert_eq!(json.as_array().unwrap().len(), 512);
    let text = env.ok(&["providers"]);
    for i in [0, 255, 256, 511] {
        assert_eq!(
            text.matches(&provider(i)).count(),
            1,
            "provider {i} in the text"
        );
    }
}

#[test]
fn a_request_longer_than_one_packet_is_refused_in_one_line() {
    let env = Env::new();
    let mut client = env.client();
    // 256 names of 1,000 bytes: a start request longer than one packet.
    let providers = (0..256)
        .map(|i| ProviderSpec {
            name: format!("Huge.P{i:04}.{}", "x".repeat(989)),
            filter: EnableFilter::level(Level::Verbose),
        })
        .collect();
    let err = client
        .start(request("huge".into(), providers), None)
        .expect_err("too long for one packet")
        .to_string();
    let limit = ferret_client::transport::packet_limit();
    if limit < MAX_MESSAGE {
        assert!(
            err.contains(&format!(
                "longer than one packet may be here ({limit} bytes"
            )),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1);
    }
    // The connection and the daemon serve on.
    assert_eq!(client.list().expect("list").len(), 0);
}
