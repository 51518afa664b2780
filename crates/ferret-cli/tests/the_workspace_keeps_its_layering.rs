//! The layering that docs/ARCHITECTURE.md describes, checked from the
//! manifests (`cargo metadata`) and the sources, so that a dependency
//! pointing the wrong way fails the suite instead of waiting for a reader
//! to notice. In the manner of rust-analyzer's tidy tests.
//!
//! Where the code still departs from a rule, the exception is listed here
//! by name, so that it can only shrink: a new edge of the same kind fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace root")
        .to_path_buf()
}

/// `cargo metadata` of the workspace, without its dependencies' packages.
fn metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("metadata JSON")
}

/// Every workspace package and the names of its normal (not dev or build)
/// dependencies.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let meta = metadata();
    let mut map = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let deps = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().expect("name").to_string())
            .collect();
        map.insert(p["name"].as_str().expect("name").to_string(), deps);
    }
    map
}

fn users_of(deps: &BTreeMap<String, BTreeSet<String>>, name: &str) -> Vec<String> {
    deps.iter()
        .filter(|(_, d)| d.contains(name))
        .map(|(p, _)| p.clone())
        .collect()
}

#[test]
fn command_line_crates_are_the_clis_and_terminal_crates_the_viewers() {
    let deps = dependencies();
    for name in ["clap", "indicatif"] {
        assert_eq!(
            users_of(&deps, name),
            ["ferret-cli"],
            "only the ferret binary parses command lines and shows progress ({name})"
        );
    }
    for name in ["ratatui", "crossterm"] {
        assert_eq!(
            users_of(&deps, name),
            ["ferret-view"],
            "only the viewer draws terminals ({name})"
        );
    }
}

#[test]
fn nothing_depends_on_the_binary_crate() {
    let deps = dependencies();
    assert_eq!(users_of(&deps, "ferret-cli"), Vec::<String>::new());
}

#[test]
fn test_support_is_never_shipped() {
    let deps = dependencies();
    assert_eq!(
        users_of(&deps, "ferret-testkit"),
        Vec::<String>::new(),
        "the test kit is only ever a dev-dependency"
    );
    let meta = metadata();
    let testkit = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "ferret-testkit")
        .expect("the ferret-testkit package");
    // `publish = false` reads as an empty list of registries.
    assert_eq!(
        testkit["publish"],
        serde_json::json!([]),
        "the test kit is never published"
    );
    // What `cargo install --path crates/ferret-cli` installs: the product's
    // binary and nothing a test needs.
    let cli = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "ferret-cli")
        .expect("the ferret-cli package");
    let bins: Vec<&str> = cli["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|t| t["kind"] == serde_json::json!(["bin"]))
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(bins, ["ferret"]);
}

#[test]
fn the_libraries_below_the_daemon_depend_only_downwards() {
    let deps = dependencies();
    let ours = |p: &str| -> BTreeSet<String> {
        deps[p]
            .iter()
            .filter(|d| d.starts_with("ferret-"))
            .cloned()
            .collect()
    };
    let set =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|s| s.to_string()).collect() };
    assert_eq!(ours("ferret-abi"), set(&[]), "the ABI is the bottom");
    assert_eq!(ours("ferret-format"), set(&["ferret-abi"]));
    assert_eq!(ours("ferret-session"), set(&["ferret-abi"]));
    assert_eq!(ours("ferret-transport"), set(&["ferret-abi"]));
    assert_eq!(
        ours("ferret-client"),
        set(&["ferret-abi", "ferret-transport"])
    );
    // A provider links the packet transport, never the controller client.
    assert_eq!(
        ours("ferret-provider"),
        set(&["ferret-abi", "ferret-transport"])
    );
    assert!(
        !ours("ferret-daemon").contains("ferret-client"),
        "the daemon serves controllers; it does not link their client"
    );
    assert!(
        !ours("ferret-decode").contains("ferret-daemon")
            && !ours("ferret-export").contains("ferret-daemon"),
        "readers of logs do not need the daemon"
    );
}

/// The Rust sources of a crate, as (path, text).
fn sources(krate: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &workspace_root().join("crates").join(krate).join("src"),
        &mut out,
    );
    out
}

#[test]
fn the_pure_libraries_touch_no_file_system_or_network() {
    // The ABI, the log format and the session logic decide; the daemon,
    // the client and the CLI do the I/O. `std::io` traits (Read, Write)
    // over caller-given streams are allowed.
    let forbidden = [
        "std::fs",
        "std::net",
        "std::os::unix::net",
        "rustix::fs",
        "rustix::net",
        "File::open",
        "File::create",
        "OpenOptions",
        "std::process::Command",
    ];
    let mut found = Vec::new();
    for krate in ["ferret-abi", "ferret-format", "ferret-session"] {
        for (path, text) in sources(krate) {
            for f in forbidden {
                if text.contains(f) {
                    found.push(format!("{}: {f}", path.display()));
                }
            }
        }
    }
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn the_session_library_builds_no_replies() {
    // ferret-session decides in its own words (`SessionError`); the daemon
    // turns sessions and refusals into replies at its boundary (wire.rs),
    // so the library can be tested and reused without the protocol's
    // answers. The protocol's vocabulary of requests (names, filters,
    // file modes) it may use.
    let replies = ["ErrorReply", "ErrorCode", "SessionInfo", "Response"];
    let mut found = Vec::new();
    for (path, text) in sources("ferret-session") {
        for r in replies {
            if text.contains(r) {
                found.push(format!("{}: {r}", path.display()));
            }
        }
    }
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn the_daemons_thread_modules_import_no_other_thread_module() {
    // What the threads hand each other lives in msg.rs, below them all, so
    // no thread module imports another to name a message. The control
    // thread alone uses three of them for what they own: the keeper's
    // handle, the socket's control group and the watchers' queues.
    let threads = ["control", "drain", "writer", "server", "keeper", "watch"];
    let known: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("control", &["keeper", "server", "watch"][..]),
        ("drain", &[][..]),
        ("writer", &[][..]),
        ("server", &[][..]),
        ("keeper", &[][..]),
        ("watch", &[][..]),
    ]);
    let src = workspace_root().join("crates/ferret-daemon/src");
    // A thread module is a file or a directory of files.
    let module_text = |t: &str| -> String {
        let file = src.join(format!("{t}.rs"));
        if file.exists() {
            return std::fs::read_to_string(file).expect("thread module");
        }
        let prefix = src.join(t);
        sources("ferret-daemon")
            .into_iter()
            .filter(|(path, _)| path.starts_with(&prefix))
            .map(|(_, text)| text)
            .collect()
    };
    let mut extra = Vec::new();
    for t in threads {
        let text = module_text(t);
        assert!(!text.is_empty(), "no sources for thread module {t}");
        for other in threads {
            let imports = text.contains(&format!("crate::{other}::"))
                || text.contains(&format!("crate::{other};"))
                || text.contains(&format!("crate::{{{other}"));
            if other != t && imports && !known[t].contains(&other) {
                extra.push(format!("{t} -> {other}"));
            }
        }
    }
    assert_eq!(
        extra,
        Vec::<String>::new(),
        "new imports between thread modules"
    );
}

#[test]
fn each_public_type_name_means_one_thing() {
    // A reader who meets `Event` or `Options` should not have to ask which
    // crate's: a public type, enum or trait name is used by one crate
    // only (private helpers inside a module may repeat names).
    let meta = metadata();
    let mut owners: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let krate = p["name"].as_str().expect("name");
        for (_, text) in sources(krate) {
            for line in text.lines() {
                let line = line.trim_start();
                for kind in ["pub struct ", "pub enum ", "pub trait ", "pub type "] {
                    if let Some(rest) = line.strip_prefix(kind) {
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        owners.entry(name).or_default().insert(krate.to_string());
                    }
                }
            }
        }
    }
    let shared: Vec<String> = owners
        .iter()
        .filter(|(_, crates)| crates.len() > 1)
        .map(|(name, crates)| format!("{name}: {crates:?}"))
        .collect();
    assert_eq!(shared, Vec::<String>::new(), "one name, several meanings");
}
