//! Garbage on the control socket gets an error answer; the daemon keeps
//! serving every other client.

mod util;

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
    let mut conn = Conn::connect(&env.socket).expect("connect");
    for junk in [&b"\xff\xff\xff\xff\xff"[..], &b"\x00"[..], &[7u8; 4096][..]] {
        conn.send_bytes(junk, &[]).expect("send");
        assert_eq!(error_code(&mut conn), ErrorCode::BadRequest);
    }
    // A well-formed request before hello is refused too.
    conn.send(&Request::List, &[]).expect("send");
    assert_eq!(error_code(&mut conn), ErrorCode::BadRequest);
    // A packet over the size limit.
    let big = vec![0u8; ferret_abi::proto::MAX_MESSAGE + 10];
    if conn.send_bytes(&big, &[]).is_ok() {
        assert_eq!(error_code(&mut conn), ErrorCode::BadRequest);
    }
    drop(conn);

    // A hello with the wrong magic, and one from a future major version.
    let mut conn = Conn::connect(&env.socket).expect("connect");
    let mut hello = ferret_abi::proto::Hello {
        magic: 0x1234,
        major: ferret_abi::shm::ABI_MAJOR,
        minor: 0,
        role: ferret_abi::proto::Role::Controller,
        client: "test".into(),
    };
    conn.send(&Request::Hello(hello.clone()), &[]).unwrap();
    assert_eq!(error_code(&mut conn), ErrorCode::BadRequest);
    hello.magic = ferret_abi::proto::PROTO_MAGIC;
    hello.major = 99;
    conn.send(&Request::Hello(hello), &[]).unwrap();
    assert_eq!(error_code(&mut conn), ErrorCode::Version);
    drop(conn);

    // Everyone else is still served.
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 0);
    env.start("after", "E2E.After", &env.path("after.ferret"), &[]);
    env.ok(&["stop", "after"]);
}
