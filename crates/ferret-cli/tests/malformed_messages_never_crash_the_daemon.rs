//! Garbage on the control socket gets an error answer; the daemon keeps
//! serving every other client.

use ferret_testkit as util;

use ferret_abi::proto::{ErrorCode, Request, Response};
use ferret_client::Conn;
use util::Env;

fn error_code(conn: &mut Conn) -> ErrorCode {
    match conn.recv::<Response>().expect("an answer").0 {
        Response::Error(e) => e.code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn garbage_packets_get_errors_and_the_daemon_serves_on() {
    let env = Env::new();
    // The first packet of a connection must be a hello: anything else is
    // answered with an error, and the connection is then closed (see
    // idle_and_foreign_connections_are_bounded_and_served.rs), so each
    // case gets a connection of its own.
    let refused = |packet: &[u8]| {
        let mut conn = Conn::connect(&env.socket).expect("connect");
        conn.send_bytes(packet, &[]).expect("send");
        error_code(&mut conn)
    };
    for junk in [&b"\xff\xff\xff\xff\xff"[..], &b"\x00"[..], &[7u8; 4096][..]] {
        assert_eq!(refused(junk), ErrorCode::BadRequest);
    }
    // A well-formed request before hello is refused too.
    let list = ferret_abi::proto::encode(&Request::List).expect("encode");
    assert_eq!(refused(&list), ErrorCode::BadRequest);
    // A packet over the size limit.
    let big = vec![0u8; ferret_abi::proto::MAX_MESSAGE + 10];
    let mut conn = Conn::connect(&env.socket).expect("connect");
    if conn.send_bytes(&big, &[]).is_ok() {
        assert_eq!(error_code(&mut conn), ErrorCode::BadRequest);
    }
    drop(conn);

    // A hello with the wrong magic, and one from a future major version.
    let mut hello = ferret_abi::proto::Hello {
        magic: 0x1234,
        major: ferret_abi::shm::ABI_MAJOR,
        minor: 0,
        role: ferret_abi::proto::Role::Controller,
        client: "test".into(),
    };
    let packet = ferret_abi::proto::encode(&Request::Hello(hello.clone())).expect("encode");
    assert_eq!(refused(&packet), ErrorCode::BadRequest);
    hello.magic = ferret_abi::proto::PROTO_MAGIC;
    hello.major = 99;
    let packet = ferret_abi::proto::encode(&Request::Hello(hello)).expect("encode");
    assert_eq!(refused(&packet), ErrorCode::Version);

    // Everyone else is still served.
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 0);
    env.start("after", "E2E.After", &env.path("after.ferret"), &[]);
    env.ok(&["stop", "after"]);
}

/// A start request that the daemon accepts; each case changes one thing.
fn good_start(name: &str) -> ferret_abi::proto::StartRequest {
    ferret_abi::proto::StartRequest {
        name: name.into(),
        providers: vec![spec("E2E.Crafted")],
        log_file: String::new(),
        buffer_kib: 64,
        max_buffers: 16,
        flush_timer_ms: 1000,
        min_buffers: 4,
        file_mode: ferret_abi::proto::FileMode::RealTime,
        max_file_bytes: 0,
        realtime: true,
        controller: "crafted".into(),
        no_loss: false,
        no_loss_wait_ms: 0,
    }
}

fn spec(name: &str) -> ferret_abi::proto::ProviderSpec {
    ferret_abi::proto::ProviderSpec {
        name: name.into(),
        filter: ferret_abi::EnableFilter::level(ferret_abi::Level::Verbose),
    }
}

/// Requests that decode but carry bad values, sent straight to the socket
/// as a client that skips the CLI's own checks would: each is refused with
/// one line naming the problem, nothing is created, and the daemon serves on.
#[test]
fn well_framed_requests_with_bad_values_are_refused_in_one_line() {
    use ferret_abi::proto::{FileMode, SessionRef, UpdateRequest};
    use std::fs::File;
    use std::os::fd::{AsFd, OwnedFd};

    let env = Env::new();
    let mut client = env.client();
    client
        .start(good_start("target"), None)
        .expect("a good start is accepted");
    let target = || SessionRef::Name("target".into());

    let dir: OwnedFd = File::open(env.dir.path()).unwrap().into();
    let readonly_path = env.path("ro.ferret");
    std::fs::write(&readonly_path, b"").unwrap();
    let readonly: OwnedFd = File::open(&readonly_path).unwrap().into();
    let full_path = env.path("full.ferret");
    std::fs::write(&full_path, b"not empty").unwrap();
    let full: OwnedFd = std::fs::OpenOptions::new()
        .write(true)
        .open(&full_path)
        .unwrap()
        .into();
    let fresh = |n: &str| -> OwnedFd {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(env.path(n))
            .unwrap()
            .into()
    };
    let seq = |name: &str, path: &str| {
        let mut r = good_start(name);
        r.file_mode = FileMode::Sequential;
        r.realtime = false;
        r.log_file = path.into();
        r
    };
    let with = |f: &dyn Fn(&mut ferret_abi::proto::StartRequest)| {
        let mut r = good_start("crafted");
        f(&mut r);
        Request::Start(r)
    };
    let f1 = fresh("f1.ferret");
    let f2 = fresh("f2.ferret");
    let f3 = fresh("f3.ferret");

    let cases: Vec<(Request, Vec<std::os::fd::BorrowedFd<'_>>, ErrorCode, &str)> = vec![
        // Names: length and characters.
        (
            with(&|r| r.name.clear()),
            vec![],
            ErrorCode::Invalid,
            "session name is empty",
        ),
        (
            with(&|r| r.name = "n".repeat(300)),
            vec![],
            ErrorCode::Invalid,
            "the limit is 256",
        ),
        (
            with(&|r| r.name = "a\x1b[2Jb".into()),
            vec![],
            ErrorCode::Invalid,
            "contains '\\u{1b}'",
        ),
        (
            with(&|r| r.name = "12345".into()),
            vec![],
            ErrorCode::Invalid,
            "all digits",
        ),
        (
            with(&|r| r.providers = vec![spec("P\nQ")]),
            vec![],
            ErrorCode::Invalid,
            "contains a control character",
        ),
        (
            with(&|r| r.providers = vec![spec("")]),
            vec![],
            ErrorCode::Invalid,
            "provider name is empty",
        ),
        (
            with(&|r| r.providers = vec![spec(&"p".repeat(2000))]),
            vec![],
            ErrorCode::Invalid,
            "provider name is 2000 bytes long",
        ),
        (
            with(&|r| r.providers = vec![spec("A"), spec("A")]),
            vec![],
            ErrorCode::Invalid,
            "given twice",
        ),
        (
            with(&|r| r.providers = (0..300).map(|i| spec(&format!("P{i}"))).collect()),
            vec![],
            ErrorCode::Invalid,
            "a session may enable at most 256",
        ),
        (
            with(&|r| r.controller = "\x1b]0;owned\x07".into()),
            vec![],
            ErrorCode::Invalid,
            "controller description",
        ),
        // Sizes, counts and intervals.
        (
            with(&|r| r.buffer_kib = 0),
            vec![],
            ErrorCode::Invalid,
            "buffer size 0 KiB is not valid",
        ),
        (
            with(&|r| r.buffer_kib = 6),
            vec![],
            ErrorCode::Invalid,
            "buffer size 6 KiB is not valid",
        ),
        (
            with(&|r| r.buffer_kib = u32::MAX),
            vec![],
            ErrorCode::Invalid,
            "is not valid",
        ),
        (
            with(&|r| r.max_buffers = 1),
            vec![],
            ErrorCode::Invalid,
            "maximum buffers 1 is out of range",
        ),
        (
            with(&|r| r.max_buffers = u32::MAX),
            vec![],
            ErrorCode::Invalid,
            "out of range",
        ),
        (
            with(&|r| {
                r.buffer_kib = 16384;
                r.realtime = false;
                r.file_mode = FileMode::InMemory;
                r.max_buffers = 65536;
            }),
            vec![],
            ErrorCode::Resources,
            "exceed the 1 GiB a session may hold",
        ),
        (
            with(&|r| r.min_buffers = 17),
            vec![],
            ErrorCode::Invalid,
            "minimum buffers 17 exceed maximum buffers 16",
        ),
        (
            with(&|r| r.flush_timer_ms = u32::MAX),
            vec![],
            ErrorCode::Invalid,
            "longer than a day",
        ),
        (
            with(&|r| {
                r.no_loss = true;
                r.no_loss_wait_ms = 60_001;
            }),
            vec![],
            ErrorCode::Invalid,
            "a no-loss wait of 60001 ms is out of range",
        ),
        (
            with(&|r| r.realtime = false),
            vec![],
            ErrorCode::Invalid,
            "must be real-time",
        ),
        (
            with(&|r| r.buffer_kib = 1024),
            vec![],
            ErrorCode::Invalid,
            "real-time sessions use buffers of at most 128 KiB",
        ),
        // Paths and descriptors.
        (
            Request::Start(seq("p1", "a\nb")),
            vec![f1.as_fd()],
            ErrorCode::Invalid,
            "control character",
        ),
        (
            Request::Start(seq("p2", &"d/".repeat(3000))),
            vec![f1.as_fd()],
            ErrorCode::Invalid,
            "log file path is 6000 bytes long",
        ),
        (
            Request::Start(seq("p3", "/x")),
            vec![],
            ErrorCode::BadRequest,
            "exactly one log file descriptor",
        ),
        (
            Request::Start(seq("p4", "/x")),
            vec![f1.as_fd(), f2.as_fd()],
            ErrorCode::BadRequest,
            "exactly one log file descriptor",
        ),
        (
            Request::Start(seq("p5", "/dir")),
            vec![dir.as_fd()],
            ErrorCode::Invalid,
            "not a regular file",
        ),
        (
            Request::Start(seq("p6", "/ro")),
            vec![readonly.as_fd()],
            ErrorCode::Invalid,
            "not open for writing",
        ),
        (
            Request::Start(seq("p7", "/full")),
            vec![full.as_fd()],
            ErrorCode::Invalid,
            "the file is not empty",
        ),
        (
            Request::Start({
                let mut r = seq("p8", "/nf");
                r.file_mode = FileMode::NewFile;
                r.max_file_bytes = 1 << 20;
                r
            }),
            vec![f3.as_fd()],
            ErrorCode::Invalid,
            "was not opened as a directory",
        ),
        (
            with(&|_| ()),
            vec![f1.as_fd()],
            ErrorCode::BadRequest,
            "real-time sessions take no log file",
        ),
        (
            Request::Start({
                let mut r = seq("p9", "/c");
                r.file_mode = FileMode::Circular;
                r
            }),
            vec![f1.as_fd()],
            ErrorCode::Invalid,
            "circular mode needs a maximum file size",
        ),
        // Changes to a running session.
        (
            Request::Update {
                target: target(),
                update: UpdateRequest {
                    max_buffers: Some(0),
                    ..UpdateRequest::default()
                },
            },
            vec![],
            ErrorCode::Invalid,
            "maximum buffers 0 is out of range",
        ),
        (
            Request::Update {
                target: target(),
                update: UpdateRequest {
                    flush_timer_ms: Some(u32::MAX),
                    ..UpdateRequest::default()
                },
            },
            vec![],
            ErrorCode::Invalid,
            "longer than a day",
        ),
        (
            Request::Update {
                target: target(),
                update: UpdateRequest {
                    providers: Some(vec![spec("A"), spec("A")]),
                    ..UpdateRequest::default()
                },
            },
            vec![],
            ErrorCode::Invalid,
            "given twice",
        ),
        (
            Request::Update {
                target: target(),
                update: UpdateRequest {
                    log_file: Some("x\ny".into()),
                    ..UpdateRequest::default()
                },
            },
            vec![f2.as_fd()],
            ErrorCode::Invalid,
            "control character",
        ),
        (
            Request::Enable {
                target: target(),
                provider: spec("Bad\u{7}Name"),
            },
            vec![],
            ErrorCode::Invalid,
            "contains a control character",
        ),
        (
            Request::Disable {
                target: target(),
                provider: "Bad\nName".into(),
            },
            vec![],
            ErrorCode::Invalid,
            "contains a control character",
        ),
        (
            Request::Snapshot {
                target: target(),
                path: "snap\n".into(),
            },
            vec![f2.as_fd()],
            ErrorCode::Invalid,
            "control character",
        ),
        // Session names no session can have, echoed safely.
        (
            Request::Query {
                target: SessionRef::Name("two\nlines".into()),
            },
            vec![],
            ErrorCode::NotFound,
            "session \"two\\nlines\" not found",
        ),
        (
            Request::Tail {
                target: SessionRef::Name("t".repeat(100_000)),
            },
            vec![],
            ErrorCode::NotFound,
            "not found",
        ),
        (
            Request::RegisterProvider {
                slot: 0,
                name: "P".into(),
                guid: ferret_abi::Guid::from_name("P"),
            },
            vec![],
            ErrorCode::BadRequest,
            "only provider connections register providers",
        ),
    ];
    for (req, fds, code, expected) in &cases {
        let err = match client.call(req, fds) {
            Err(ferret_client::ClientError::Daemon(e)) => e,
            other => panic!("{req:?}: expected a refusal, got {other:?}"),
        };
        assert_eq!(err.code, *code, "{}", err.message);
        assert!(
            !err.message.contains('\n'),
            "not one line: {:?}",
            err.message
        );
        assert!(
            err.message.contains(expected),
            "'{}' lacks '{expected}'",
            err.message
        );
    }
    // Nothing was created or changed, and the daemon serves on.
    let list = env.json(&["list"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["name"], "target");
    assert_eq!(list[0]["flush_timer_ms"], 1000);
    assert_eq!(list[0]["providers"].as_array().unwrap().len(), 1);
    env.ok(&["stop", "target"]);
}

/// Real-time consumers are bounded per session, as each holds a queue of
/// chunks in the daemon; the one past the bound is refused with the reason.
#[test]
fn a_session_serves_at_most_16_real_time_consumers() {
    let env = Env::new();
    env.client()
        .start(good_start("streamed"), None)
        .expect("start");
    let tail = || {
        let mut conn = Conn::connect(&env.socket).expect("connect");
        conn.send(
            &Request::Hello(ferret_abi::proto::Hello {
                magic: ferret_abi::proto::PROTO_MAGIC,
                major: ferret_abi::shm::ABI_MAJOR,
                minor: ferret_abi::shm::ABI_MINOR,
                role: ferret_abi::proto::Role::Controller,
                client: "consumer".into(),
            }),
            &[],
        )
        .expect("hello");
        conn.recv::<Response>().expect("hello answer");
        conn.send(
            &Request::Tail {
                target: ferret_abi::proto::SessionRef::Name("streamed".into()),
            },
            &[],
        )
        .expect("tail");
        let answer = conn.recv::<Response>().expect("tail answer").0;
        (conn, answer)
    };
    let mut kept = Vec::new();
    for i in 0..16 {
        let (conn, answer) = tail();
        assert!(
            matches!(answer, Response::RtStart { .. }),
            "consumer {i}: {answer:?}"
        );
        kept.push(conn);
    }
    match tail().1 {
        Response::Error(e) => {
            assert_eq!(e.code, ErrorCode::Resources);
            assert!(
                e.message.contains("already has 16 real-time consumers"),
                "{}",
                e.message
            );
        }
        Response::RtStart { .. } => panic!("a 17th consumer was served"),
        other => panic!("unexpected answer to a 17th consumer: {other:?}"),
    }
    // Once one goes, another may come.
    drop(kept.pop());
    util::wait_until(
        std::time::Duration::from_secs(10),
        "a consumer to leave",
        || env.session("streamed").consumers == 15,
    );
    assert!(matches!(tail().1, Response::RtStart { .. }));
    env.ok(&["stop", "streamed"]);
}
