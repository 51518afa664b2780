//! A watch client that stops reading while thousands of changes happen
//! costs the daemon a bounded amount of memory: the daemon keeps serving,
//! skips (and counts) the changes that do not fit the watch's queue, and
//! once the client reads again sends it the number skipped and every
//! session's current state, which `ferret watch` says in a line.

use ferret_testkit as util;

use std::time::Duration;

use ferret_abi::proto::{
    ChangeKind, FileMode, ProviderSpec, SessionInfo, SessionRef, StartRequest, UpdateRequest,
};
use ferret_abi::{EnableFilter, Level};
use ferret_client::{Client, WatchEvent};
use util::{Env, wait_until};

const LIMIT: Duration = Duration::from_secs(20);

/// Changes made while the watch does not read.
const CHANGES: u32 = 3_000;

/// The daemon's growth allowed while the watch does not read: its queue
/// (4 MiB of changes), the change its connection is sending (one message,
/// at most 1 MiB) and 11 MiB for the allocator's slack and the requests'
/// own buffers. Each change here is about 40 KB, so holding the 3,000 of
/// them (120 MB) would exceed it thirty times over.
const RSS_MARGIN_KIB: u64 = 16 * 1024;

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// A real-time session whose every change is about 40 KB: 64 providers
/// of 600-byte names.
fn start_big(client: &mut Client, name: &str) -> u32 {
    let providers = (0..64)
        .map(|i| ProviderSpec {
            name: format!("Big.P{i:02}.{}", "x".repeat(592)),
            filter: EnableFilter::level(Level::Verbose),
        })
        .collect();
    let req = StartRequest {
        name: name.into(),
        providers,
        log_file: String::new(),
        buffer_kib: 4,
        max_buffers: 2,
        flush_timer_ms: 0,
        min_buffers: 1,
        file_mode: FileMode::RealTime,
        max_file_bytes: 0,
        realtime: true,
        controller: "watch test".into(),
        no_loss: false,
        no_loss_wait_ms: 0,
    };
    client.start(req, None).expect("start").session.logger_id
}

fn set_flush_timer(client: &mut Client, id: u32, ms: u32) -> SessionInfo {
    let update = UpdateRequest {
        flush_timer_ms: Some(ms),
        max_buffers: None,
        log_file: None,
        providers: None,
    };
    client
        .update(&SessionRef::Id(id), update, None)
        .expect("update")
}

#[test]
fn a_watch_that_stops_reading_is_bounded_then_told_what_it_missed() {
    let env = Env::new();
    let pid = env.daemon_pid();
    let mut client = env.client();
    let id = start_big(&mut client, "big");
    let mut watch = env.client().watch().expect("watch");
    watch.set_timeout(Some(LIMIT)).expect("timeout");
    // The watch has begun once its first change arrives; from now on the
    // client reads nothing.
    assert!(matches!(
        watch.next().expect("present"),
        WatchEvent::Change(ChangeKind::Present, ref s) if s.logger_id == id
    ));
    let baseline = vm_rss_kib(pid);
    let mut peak = baseline;
    for i in 0..CHANGES {
        let s = set_flush_timer(&mut client, id, 100 + i);
        assert_eq!(s.flush_timer_ms, 100 + i);
        if i % 100 == 0 {
            peak = peak.max(vm_rss_kib(pid));
            // Everyone else is still served.
            assert_eq!(client.list().expect("list").len(), 1);
        }
    }
    peak = peak.max(vm_rss_kib(pid));
    eprintln!(
        "daemon VmRSS: {baseline} KiB when the watch stopped reading, at most {peak} KiB after {CHANGES} changes"
    );
    assert!(
        peak <= baseline + RSS_MARGIN_KIB,
        "the daemon grew from {baseline} KiB to {peak} KiB while a watch did not read"
    );

    // The client reads again: the changes that fit, then how many were
    // skipped, then every session as it is now.
    let mut delivered = 0u64;
    let skipped = loop {
        match watch.next().expect("next") {
            WatchEvent::Change(ChangeKind::Updated, _) => delivered += 1,
            WatchEvent::Change(ChangeKind::Counters, _) => {}
            WatchEvent::Lagged { skipped } => break skipped,
            other => panic!("unexpected before the resync: {other:?}"),
        }
    };
    assert!(skipped > 0);
    assert_eq!(
        delivered + skipped,
        u64::from(CHANGES),
        "every change delivered or counted"
    );
    let mut present = Vec::new();
    loop {
        match watch.next().expect("resync") {
            WatchEvent::Change(ChangeKind::Present, s) => present.push(s),
            WatchEvent::Change(ChangeKind::Counters, _) => {}
            WatchEvent::Resynced => break,
            other => panic!("unexpected during the resync: {other:?}"),
        }
    }
    assert_eq!(present.len(), 1);
    assert_eq!(present[0].logger_id, id);
    assert_eq!(
        present[0].flush_timer_ms,
        100 + CHANGES - 1,
        "the current state"
    );

    // Back in step: the next change comes as it happens.
    set_flush_timer(&mut client, id, 7);
    loop {
        match watch.next().expect("after the resync") {
            WatchEvent::Change(ChangeKind::Updated, s) => {
                assert_eq!(s.flush_timer_ms, 7);
                break;
            }
            WatchEvent::Change(ChangeKind::Counters, _) => {}
            other => panic!("unexpected after the resync: {other:?}"),
        }
    }
}

#[test]
fn a_session_removed_while_the_watch_lagged_is_reported_removed() {
    let env = Env::new();
    let mut client = env.client();
    let big = start_big(&mut client, "big");
    let gone = start_big(&mut client, "gone");
    let mut watch = env.client().watch().expect("watch");
    watch.set_timeout(Some(LIMIT)).expect("timeout");
    for _ in 0..2 {
        assert!(matches!(
            watch.next().expect("present"),
            WatchEvent::Change(ChangeKind::Present, _)
        ));
    }
    for i in 0..CHANGES {
        set_flush_timer(&mut client, big, 100 + i);
    }
    client.stop(&SessionRef::Id(gone), true).expect("stop");
    client.remove(&SessionRef::Id(gone)).expect("remove");
    let mut removed = Vec::new();
    let mut lagged = false;
    loop {
        match watch.next().expect("next") {
            WatchEvent::Lagged { .. } => lagged = true,
            WatchEvent::Change(ChangeKind::Removed, s) => removed.push(s.logger_id),
            WatchEvent::Resynced => break,
            WatchEvent::Change(..) => {}
        }
    }
    assert!(lagged);
    // The removal itself was skipped; the resync reports it.
    assert_eq!(removed, vec![gone]);
}

#[test]
fn ferret_watch_says_how_many_changes_it_missed() {
    let env = Env::new();
    let mut client = env.client();
    let id = start_big(&mut client, "big");
    let mut watch = env.spawn(&["watch"]);
    watch.wait_for_line(LIMIT, "big present", |l| {
        l.contains(" present ") && l.contains(" big ")
    });
    // Freeze the watch: it reads nothing from the daemon until it goes on.
    let watch_pid = rustix::process::Pid::from_raw(watch.child.id() as i32).expect("pid");
    rustix::process::kill_process(watch_pid, rustix::process::Signal::STOP).expect("stop");
    for i in 0..CHANGES {
        set_flush_timer(&mut client, id, 100 + i);
    }
    rustix::process::kill_process(watch_pid, rustix::process::Signal::CONT).expect("cont");
    let mut updated = 0u64;
    let line = watch.wait_for_line(LIMIT, "lagged", |l| {
        if l.contains(" updated ") {
            updated += 1;
        }
        l.contains(" lagged ")
    });
    let skipped: u64 = line
        .split("skipped ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(
        line.ends_with(&format!(
            " lagged   this watch read too slowly: the daemon skipped {skipped} changes; every session's current state follows"
        )),
        "{line}"
    );
    assert_eq!(updated + skipped, u64::from(CHANGES));
    watch.wait_for_line(LIMIT, "big present again", |l| {
        l.contains(" present ") && l.contains(" big ")
    });
    watch.wait_for_line(LIMIT, "resynced", |l| l.contains(" resynced "));
    wait_until(LIMIT, "the daemon still answers", || {
        client.query(&SessionRef::Id(id)).is_ok()
    });
}

#[test]
fn ferret_watch_json_says_how_many_changes_it_missed() {
    let env = Env::new();
    let mut client = env.client();
    let id = start_big(&mut client, "big");
    let mut watch = env.spawn(&["watch", "--json"]);
    let parse = |l: &str| -> serde_json::Value {
        serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}"))
    };
    watch.wait_for_line(LIMIT, "big present", |l| parse(l)["change"] == "present");
    let watch_pid = rustix::process::Pid::from_raw(watch.child.id() as i32).expect("pid");
    rustix::process::kill_process(watch_pid, rustix::process::Signal::STOP).expect("stop");
    for i in 0..CHANGES {
        set_flush_timer(&mut client, id, 100 + i);
    }
    rustix::process::kill_process(watch_pid, rustix::process::Signal::CONT).expect("cont");
    let mut updated = 0u64;
    let line = watch.wait_for_line(LIMIT, "lagged", |l| {
        let v = parse(l);
        if v["change"] == "updated" {
            updated += 1;
        }
        v["change"] == "lagged"
    });
    let skipped = parse(&line)["skipped"].as_u64().expect("skipped");
    assert_eq!(updated + skipped, u64::from(CHANGES));
    let present = watch.wait_for_line(LIMIT, "big present again", |l| {
        parse(l)["change"] == "present"
    });
    assert_eq!(
        parse(&present)["session"]["flush_timer_ms"],
        100 + CHANGES - 1,
        "{present}"
    );
    let resynced = watch.wait_for_line(LIMIT, "resynced", |l| parse(l)["change"] == "resynced");
    assert_eq!(
        parse(&resynced),
        serde_json::json!({ "change": "resynced" })
    );
}
