//! Writing a log file's first header is file I/O too: a start, or an
//! `update -f`, whose file stalls (an LD_PRELOAD shim holds the daemon's
//! writes to it, as a hung mount would) waits for it alone, while every
//! other request is answered at once.

use ferret_testkit as util;

use ferret_abi::proto::SessionState;
use ferret_provider::{provider, write_event};
use util::stall::{LIMIT, VERB, quick, stalling_env, within};
use util::{decode, wait_until};

provider!(static OPENED = "E2E.StallOpened");

/// Writing a log file's first header is file I/O too: a start, or an
/// `update -f`, whose file stalls waits for it, while every other request
/// is answered at once and the stalled start takes nothing from anyone.
#[test]
fn a_file_that_stalls_at_start_or_switch_holds_up_no_other_request() {
    let (env, flag, _tmp) = stalling_env("-stalled.ferret");
    let other_log = env.path("other.ferret");
    env.start("other", "E2E.StallOpened", &other_log, &[]);
    std::fs::write(&flag, b"").expect("stall flag");

    // A start whose header write hangs.
    let hung_log = env.path("hung-stalled.ferret");
    let hung = hung_log.to_str().expect("path");
    let mut hung_start = env.spawn(&["start", "hung", "-p", "E2E.StallOpened", "-f", hung]);
    wait_until(LIMIT, "the hung start to reach the daemon", || {
        let out = within(&env, &["query", "hung"], VERB);
        String::from_utf8_lossy(&out.stderr).contains("still opening its log file")
    });
    // An update whose new file's header write hangs.
    let switched_log = env.path("other2-stalled.ferret");
    let switched = switched_log.to_str().expect("path");
    let mut hung_update = env.spawn(&["update", "other", "-f", switched]);

    // Everything else is answered at once.
    for seq in 0..1000u64 {
        write_event!(OPENED, "Sample", level: Information, seq = seq);
    }
    quick(&env, &["flush", "other"]);
    let list = quick(&env, &["list"]);
    assert!(
        !list.contains("hung"),
        "a session still opening its file is not listed:\n{list}"
    );
    let refused = within(&env, &["stop", "hung"], VERB);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(said.contains("still opening its log file"), "{said}");
    let third_log = env.path("third.ferret");
    let third = third_log.to_str().expect("path");
    quick(
        &env,
        &["start", "third", "-p", "E2E.StallOpened", "-f", third],
    );
    quick(&env, &["stop", "third"]);
    assert_eq!(decode(&third_log).trailer.map(|t| t.events_lost), Some(0));
    assert_eq!(hung_start.child.try_wait().expect("try_wait"), None);
    assert_eq!(hung_update.child.try_wait().expect("try_wait"), None);

    // Once the file system answers, both finish as asked.
    std::fs::remove_file(&flag).expect("unstall");
    assert!(hung_start.wait(LIMIT).success(), "{}", hung_start.stderr());
    assert!(
        hung_update.wait(LIMIT).success(),
        "{}",
        hung_update.stderr()
    );
    assert_eq!(env.session("hung").state, SessionState::Running);
    assert!(
        env.session("other")
            .log_file
            .ends_with("other2-stalled.ferret")
    );
    for seq in 1000..1500u64 {
        write_event!(OPENED, "Sample", level: Information, seq = seq);
    }
    quick(&env, &["stop", "hung"]);
    quick(&env, &["stop", "other"]);
    let before = decode(&other_log);
    let after = decode(&switched_log);
    assert_eq!(before.events.len() + after.events.len(), 1500);
    assert_eq!(decode(&hung_log).events.len(), 500);
    for log in [&before, &after] {
        assert!(log.damage.is_empty(), "{:?}", log.damage);
        assert_eq!(log.trailer.as_ref().map(|t| t.events_lost), Some(0));
    }
}
