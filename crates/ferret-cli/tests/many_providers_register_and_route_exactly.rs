//! Many providers from several processes register at once, are all enabled
//! by the sessions that name them, and every event each one writes reaches
//! exactly the session that enables it: 8 processes of 1,024 providers each
//! (the most one process may register), 4 sessions of 256 providers each
//! (the most one session may enable). How fast registration is belongs to
//! benches/registration.sh; this test waits for the processes with the
//! same deadline as every other wait in these tests.

use ferret_testkit as util;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::Duration;

use util::programs::{self, Program};
use util::{Env, wait_until};

const LIMIT: Duration = Duration::from_secs(30);
const PROCESSES: usize = 8;
const PROVIDERS: u64 = 1024;
const SESSIONS: u64 = 4;
const PER_SESSION: u64 = PROVIDERS / SESSIONS;
const EVENTS: u64 = 2;

fn spawn_providers(env: &Env) -> Child {
    let socket = env.socket.to_str().expect("socket path");
    Program::ManyProviders
        .command(&[
            "--socket",
            socket,
            "--prefix",
            "Many.P",
            "--providers",
            &PROVIDERS.to_string(),
            "--events",
            &EVENTS.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferret-many-providers")
}

#[test]
fn eight_processes_of_1024_providers_are_all_enabled_and_every_event_is_logged_once() {
    let env = Env::new();
    let logs: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let log = env.path(&format!("many{i}.ferret"));
            let mut args = vec!["-f".to_string(), log.to_str().expect("path").to_string()];
            for p in i * PER_SESSION..(i + 1) * PER_SESSION {
                args.push("-p".into());
                args.push(format!("Many.P{p}"));
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            env.start_with(&format!("many{i}"), &args);
            log
        })
        .collect();

    let mut children: Vec<Child> = (0..PROCESSES).map(|_| spawn_providers(&env)).collect();
    wait_until(
        LIMIT,
        "every provider process to register and write",
        || {
            children
                .iter_mut()
                .all(|c| c.try_wait().expect("try_wait").is_some())
        },
    );
    let mut pids = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("provider output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "ferret-many-providers failed: {stderr}"
        );
        let report = programs::report(&out.stdout);
        assert_eq!(report["registered"], PROVIDERS, "{report}");
        assert_eq!(report["enabled"], PROVIDERS, "{report}");
        assert_eq!(report["written"], PROVIDERS * EVENTS, "{report}");
        assert_eq!(report["dropped"], 0, "{report}");
        pids.push(report["pid"].as_u64().expect("pid") as u32);
    }
    env.wait_no_providers();

    for (i, log) in logs.iter().enumerate() {
        let name = format!("many{i}");
        env.ok(&["stop", &name]);
        let decoded = util::decode(log);
        assert!(decoded.damage.is_empty(), "{name}: {:?}", decoded.damage);
        assert_eq!(util::lost_records(log), 0, "{name} lost events");
        // Every (process, provider) the session enables wrote seq 0 and 1,
        // and nothing else reached it.
        let mut got: BTreeMap<(u32, String), Vec<u64>> = BTreeMap::new();
        for e in &decoded.events {
            got.entry((e.pid, e.provider.clone()))
                .or_default()
                .push(e.seq.expect("seq"));
        }
        let i = i as u64;
        let want: BTreeMap<(u32, String), Vec<u64>> = pids
            .iter()
            .flat_map(|&pid| {
                (i * PER_SESSION..(i + 1) * PER_SESSION)
                    .map(move |p| ((pid, format!("Many.P{p}")), (0..EVENTS).collect()))
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{name}: providers logged");
        assert!(got == want, "{name}: events by process and provider differ");
        assert_eq!(
            decoded.events.len() as u64,
            PROCESSES as u64 * PER_SESSION * EVENTS
        );
    }
}

/// Not a test: the entry through which this test binary runs itself as the
/// many-providers program (see `ferret_testkit::programs`); it returns at
/// once in a test run.
#[test]
fn test_program() {
    programs::serve();
}
