//! A session name holds only what the refusal says it may: ASCII letters,
//! digits, '-', '_' and '.'; invisible and bidi characters that would make
//! one name look like another are refused in one line.

use ferret_testkit as util;

use util::{Env, one_line};

#[test]
fn invisible_and_bidi_characters_are_refused() {
    let env = Env::new();
    for name in ["net\u{202e}txt", "a\u{200b}b", "\u{feff}net"] {
        let err = env.fails(&["start", name, "-p", "P", "--mode", "in-memory"]);
        let line = one_line(&err);
        assert!(
            line.starts_with("ferret: session name ")
                && line.ends_with("; use ASCII letters, digits, '-', '_' and '.'"),
            "{name:?}: {err}"
        );
    }
    // Nothing was started.
    assert_eq!(env.client().list().unwrap().len(), 0);
    env.start_with("net-trace_1.a", &["-p", "P", "--mode", "in-memory"]);
}
