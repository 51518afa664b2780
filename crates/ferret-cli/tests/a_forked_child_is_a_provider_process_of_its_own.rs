//! A provider process that forks: the child never writes into the parent's
//! rings; it attaches to the daemon as a process of its own, and its events
//! appear under its own pid, while the parent's stream goes on intact.

use ferret_testkit as util;

use std::collections::BTreeMap;

use util::{Env, decode};

#[test]
fn parent_and_child_both_write_and_each_keeps_its_own_events() {
    let env = Env::new();
    let log = env.path("fork.ferret");
    env.start("fork", "E2E.Fork", &log, &[]);
    // The parent's main thread writes a share, two threads write the rest,
    // and the main thread forks while they write; the child then writes
    // 20000 events on its main thread, which held a ring of the parent's.
    let out = env.ok(&[
        "emit",
        "--provider",
        "E2E.Fork",
        "--count",
        "20000",
        "--threads",
        "2",
        "--rate",
        "20000",
        "--fork",
        "--json",
    ]);
    let reports: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(reports.len(), 2, "{out}");
    let (child, parent) = (&reports[0], &reports[1]);
    assert_eq!(child["role"], "child", "{out}");
    assert_eq!(parent["role"], "parent", "{out}");
    assert_eq!(parent["child_pid"], child["pid"]);
    assert_eq!(parent["child_exit_code"], 0, "{out}");
    for r in &reports {
        assert_eq!(r["enabled_events"], 20_000, "{r}");
        assert_eq!(r["dropped"], 0, "{r}");
    }
    let parent_pid = parent["pid"].as_u64().unwrap() as u32;
    let child_pid = child["pid"].as_u64().unwrap() as u32;

    env.wait_no_providers();
    let stopped = env.json(&["stop", "fork"]);
    assert_eq!(stopped["events"], 40_000, "{stopped}");
    assert_eq!(stopped["events_lost"], 0, "{stopped}");

    let d = decode(&log);
    assert!(d.damage.is_empty(), "{:?}", d.damage);
    assert_eq!(d.events.len(), 40_000);
    // Per process and thread, the sequence numbers in order.
    let mut streams: BTreeMap<(u32, u32), Vec<u64>> = BTreeMap::new();
    for e in &d.events {
        assert_eq!(e.msg.as_deref(), Some("hello"));
        streams
            .entry((e.pid, e.tid))
            .or_default()
            .push(e.seq.expect("seq"));
    }
    let of = |pid: u32| -> Vec<(u32, &Vec<u64>)> {
        streams
            .iter()
            .filter(|((p, _), _)| *p == pid)
            .map(|((_, t), s)| (*t, s))
            .collect()
    };
    // The child: its main thread (tid = pid), all 20000 events in order.
    let c = of(child_pid);
    assert_eq!(c.len(), 1, "{:?}", streams.keys());
    assert_eq!(c[0].0, child_pid);
    assert_eq!(*c[0].1, (0..20_000).collect::<Vec<_>>());
    // The parent: its main thread and two others, each stream whole and in
    // order, 20000 in all; nothing of the child's is among them.
    let p = of(parent_pid);
    assert_eq!(p.len(), 3, "{:?}", streams.keys());
    assert!(p.iter().any(|(t, _)| *t == parent_pid));
    let mut total = 0;
    for (tid, seqs) in &p {
        assert_eq!(
            **seqs,
            (0..seqs.len() as u64).collect::<Vec<_>>(),
            "thread {tid}"
        );
        total += seqs.len();
    }
    assert_eq!(total, 20_000);
    assert_eq!(streams.len(), 4, "no other process or thread");

    // Both processes ended, each on its own.
    let ended: Vec<u64> = env
        .fmt_json(&[&log])
        .iter()
        .filter(|e| e["process_end"] == true)
        .map(|e| e["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert!(ended.contains(&(parent_pid as u64)) && ended.contains(&(child_pid as u64)));
}
