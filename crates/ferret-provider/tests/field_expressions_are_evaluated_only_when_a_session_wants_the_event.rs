//! `write_event!` and `start_activity!` evaluate their field expressions
//! only when a session wants the event: with no session, at a level or
//! keyword no session takes, and after the session stops, the expressions
//! never run; when a session wants the event they run exactly once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Daemon, wait_until};
use ferret_provider::{Level, activity, provider, start_activity, write_event};

static EVALUATED: AtomicUsize = AtomicUsize::new(0);

/// A field value whose computation is observable.
fn counted(v: u32) -> u32 {
    EVALUATED.fetch_add(1, Ordering::SeqCst);
    v
}

fn evaluated() -> usize {
    EVALUATED.load(Ordering::SeqCst)
}

provider!(static LAZY = "Test.LazyFields");

/// Writes one event or activity of each kind at `level` and `keywords`.
fn write_all(level_info: bool, keywords_match: bool) {
    match (level_info, keywords_match) {
        (true, true) => {
            write_event!(LAZY, "E", level: Information, keywords: 0x1, x = counted(1));
            let _a = start_activity!(LAZY, "A", level: Information, keywords: 0x1, x = counted(2));
        }
        (true, false) => {
            write_event!(LAZY, "E", level: Information, keywords: 0x2, x = counted(1));
            let _a = start_activity!(LAZY, "A", level: Information, keywords: 0x2, x = counted(2));
        }
        (false, _) => {
            write_event!(LAZY, "E", level: Verbose, keywords: 0x1, x = counted(1));
            let _a = start_activity!(LAZY, "A", level: Verbose, keywords: 0x1, x = counted(2));
        }
    }
}

#[test]
fn field_expressions_run_only_for_wanted_events() {
    let daemon = Daemon::start();
    daemon.configure_providers();
    LAZY.get();

    // No session at all.
    write_all(true, true);
    write_all(false, true);
    assert_eq!(evaluated(), 0, "no session: nothing evaluated");
    assert_eq!(activity::current(), None, "a disabled activity is inert");

    daemon.start_session("lazy", "Test.LazyFields", Level::Information, 0x1, None);
    wait_until(
        Duration::from_secs(10),
        "the session to enable the provider",
        || LAZY.enabled(Level::Information, 0x1),
    );

    // Levels and keywords no session takes.
    write_all(false, true);
    write_all(true, false);
    assert_eq!(
        evaluated(),
        0,
        "unwanted level or keywords: nothing evaluated"
    );

    // Wanted: each expression runs once.
    write_all(true, true);
    assert_eq!(
        evaluated(),
        2,
        "one event and one activity, each evaluated once"
    );

    daemon.stop_session("lazy");
    wait_until(
        Duration::from_secs(10),
        "the stop to disable the provider",
        || !LAZY.enabled(Level::Information, 0x1),
    );
    write_all(true, true);
    assert_eq!(evaluated(), 2, "after stop: nothing evaluated");
}
