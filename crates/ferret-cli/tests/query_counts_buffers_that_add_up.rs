//! `ferret query` of a running session shows buffer figures that add up:
//! the buffers holding events and the free ones together are the buffers
//! the session has, never more than its maximum.

use ferret_testkit as util;

use std::time::Duration;

use util::{Env, wait_until};

#[test]
fn in_use_and_free_buffers_add_up_to_those_allocated() {
    let env = Env::new();
    let log = env.path("buf.ferret");
    env.start(
        "buf",
        "E2E.Buffers",
        &log,
        &["--min-buffers", "4", "--max-buffers", "8"],
    );
    // The free count is published by the drain; wait until it has been.
    wait_until(Duration::from_secs(10), "free buffers published", || {
        env.json(&["query", "buf"])["free_buffers"] == 3
    });
    let v = env.json(&["query", "buf"]);
    assert_eq!(v["buffers_allocated"], 4, "{v}");
    assert_eq!(v["buffers_in_use"], 1, "{v}");
    assert_eq!(v["free_buffers"], 3, "{v}");

    let text = env.ok(&["query", "buf"]);
    let row = |name: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .split(": ")
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(row("Buffers In Use "), "1");
    assert_eq!(row("Free Buffers "), "3");
    assert_eq!(row("Maximum Buffers "), "8");
}
