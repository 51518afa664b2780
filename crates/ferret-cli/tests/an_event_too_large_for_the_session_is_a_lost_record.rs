//! An event larger than a session's buffers cannot be logged by that
//! session; it is counted for the session and recorded in its log as a
//! LOST record (reason "invalid"), charged to its provider, while a
//! session with room for it logs it.

use ferret_testkit as util;

use ferret_abi::Value;
use ferret_provider::{Level, Provider};
use util::{Env, decode, lost_records};

const PROVIDER: &str = "E2E.TooLarge";

#[test]
fn an_event_larger_than_the_buffers_is_counted_and_recorded() {
    let env = Env::new();
    assert!(ferret_provider::configure(ferret_provider::Options {
        socket: env.socket.clone(),
        ..ferret_provider::Options::default()
    }));
    let small = env.path("small.ferret");
    let large = env.path("large.ferret");
    env.start("small", PROVIDER, &small, &["--buffer-size", "4"]);
    env.start("large", PROVIDER, &large, &["--buffer-size", "64"]);
    let provider = Provider::register(PROVIDER);
    util::wait_until(
        std::time::Duration::from_secs(20),
        "both sessions to enable the provider",
        || provider.enabled(Level::Information, 0),
    );
    // 8 KiB of text: more than a 4 KiB buffer holds, well within a record.
    let big = "x".repeat(8 * 1024);
    const BIG: u64 = 5;
    const SMALL: u64 = 20;
    for i in 0..BIG {
        provider
            .dynamic_event("Big", Level::Information, 0)
            .field("seq", Value::U64(i))
            .field("msg", Value::Str(&big))
            .write();
    }
    for i in 0..SMALL {
        provider
            .dynamic_event("Small", Level::Information, 0)
            .field("seq", Value::U64(i))
            .write();
    }
    env.wait_events("large", BIG + SMALL);
    util::wait_until(
        std::time::Duration::from_secs(20),
        "the small session to count every event",
        || {
            let c = env.session("small").counters;
            c.events + c.events_lost == BIG + SMALL
        },
    );
    let stopped = env.json(&["stop", "small"]);
    env.ok(&["stop", "large"]);

    let small_log = decode(&small);
    assert!(small_log.damage.is_empty(), "{:?}", small_log.damage);
    assert_eq!(small_log.events.len() as u64, SMALL);
    assert!(small_log.events.iter().all(|e| e.name == "Small"));
    assert_eq!(stopped["events_lost"], BIG, "{stopped}");
    assert_eq!(stopped["lost_other"], BIG, "{stopped}");
    assert_eq!(lost_records(&small), BIG, "every loss is a LOST record");

    let large_log = decode(&large);
    assert_eq!(large_log.events.len() as u64, BIG + SMALL);
    assert_eq!(lost_records(&large), 0);
}
