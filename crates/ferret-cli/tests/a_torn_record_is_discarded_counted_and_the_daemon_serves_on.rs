//! A provider process that dies in the middle of writing a record, having
//! already moved its ring's head past the record's start (a provider built
//! on another library, or one whose memory was damaged as it died), leaves
//! a torn record in its ring. The daemon takes every whole record before
//! it, discards the torn one, counts it as a corrupt loss that `query`, the
//! stop report and `ferret fmt` show, and goes on serving other providers.
//!
//! Ferret's own provider library never commits a record before it is
//! whole (a process killed mid-write leaves an uncommitted record, which
//! `a_killed_provider_leaves_everything_it_committed.rs` covers), so this
//! test is its own provider: it speaks the protocol and writes the shared
//! memory as docs/ABI.md describes.

use ferret_testkit as util;

use std::sync::atomic::Ordering;
use std::time::Duration;

use ferret_abi::Guid;
use ferret_abi::proto::{Hello, PROTO_MAGIC, Request, Response, Role};
use ferret_abi::record::{self, EventTypeMeta, FieldMeta, FieldType, Ticks};
use ferret_abi::shm::{ABI_MAJOR, ABI_MINOR, RING_OWNED, RegionHeader, RingDesc};
use ferret_client::Conn;
use util::{Env, wait_until};

const LIMIT: Duration = Duration::from_secs(30);
const PROVIDER: &str = "E2E.Torn";
const WHOLE: u64 = 10;

/// The process's region, mapped shared as a provider maps it.
struct Mapped {
    base: *mut u8,
    len: usize,
}

impl Mapped {
    fn header(&self) -> &RegionHeader {
        // SAFETY: the daemon wrote a RegionHeader at offset 0 of a region
        // at least a page long; the mapping lives as long as self.
        unsafe { &*(self.base as *const RegionHeader) }
    }

    fn at(&self, offset: u64) -> *mut u8 {
        assert!((offset as usize) < self.len, "offset inside the region");
        // SAFETY: checked to be inside the mapping just above.
        unsafe { self.base.add(offset as usize) }
    }

    fn write(&self, offset: u64, bytes: &[u8]) {
        assert!(offset as usize + bytes.len() <= self.len);
        // SAFETY: inside the mapping (checked), which this test alone
        // writes on the provider side.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at(offset), bytes.len()) }
    }

    fn ring(&self, i: u64) -> &RingDesc {
        let h = self.header();
        let at = h.ring_desc_offset + i * ferret_abi::shm::RING_DESC_BYTES as u64;
        // SAFETY: ring descriptors are 64-byte aligned RingDesc values in
        // the region at the offsets its header gives.
        unsafe { &*(self.at(at) as *const RingDesc) }
    }

    /// The enable table's level word for `level` (1 to 5) of slot 0.
    fn level_word(&self, level: usize) -> u64 {
        let at = self.header().enable_offset + (level as u64 - 1) * 8;
        // SAFETY: an aligned u64 inside the enable table, which the daemon
        // writes atomically.
        unsafe { (*(self.at(at) as *const std::sync::atomic::AtomicU64)).load(Ordering::Acquire) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: mapped in `attach` with this length; no reference into it
        // outlives self.
        unsafe {
            let _ = rustix::mm::munmap(self.base.cast(), self.len);
        }
    }
}

/// Says hello as a provider, maps the region and registers [`PROVIDER`]
/// in slot 0.
fn attach(env: &Env) -> (Conn, Mapped) {
    let mut conn = Conn::connect(&env.socket).expect("connect");
    conn.send(
        &Request::Hello(Hello {
            magic: PROTO_MAGIC,
            major: ABI_MAJOR,
            minor: ABI_MINOR,
            role: Role::Provider,
            client: "torn-writer".into(),
        }),
        &[],
    )
    .expect("hello");
    let (resp, fds) = conn.recv::<Response>().expect("region");
    let Response::Region(grant) = resp else {
        panic!("expected a region, got {resp:?}");
    };
    let memfd = fds.into_iter().next().expect("memfd");
    let len = grant.region_size as usize;
    // SAFETY: a fresh shared mapping of the memfd the daemon sized to
    // `region_size`; nothing else is mapped at the address the kernel picks.
    let base = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::SHARED,
            &memfd,
            0,
        )
    }
    .expect("map the region")
    .cast::<u8>();
    conn.send(
        &Request::RegisterProvider {
            slot: 0,
            name: PROVIDER.into(),
            guid: Guid::from_name(PROVIDER),
        },
        &[],
    )
    .expect("register");
    let (resp, _) = conn.recv::<Response>().expect("registered");
    assert!(
        matches!(resp, Response::ProviderRegistered { slot: 0 }),
        "{resp:?}"
    );
    (conn, Mapped { base, len })
}

/// The region clock's current ticks, as the provider library reads them.
fn now_ticks(clock: u32) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if clock == ferret_abi::shm::CLOCK_TSC {
        // SAFETY: the daemon chose the TSC clock, so the CPU has one.
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
    let _ = clock;
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

#[test]
fn a_torn_record_costs_one_counted_event_and_nothing_else() {
    let env = Env::new();
    let log = env.path("torn.ferret");
    env.start("torn", PROVIDER, &log, &[]);
    let (conn, region) = attach(&env);
    wait_until(LIMIT, "the session to enable the provider", || {
        region.level_word(4) != 0
    });

    // Metadata first, as the library publishes it: one event type with a
    // u64 field.
    let h = region.header();
    let meta = EventTypeMeta {
        source: 0,
        type_id: 0,
        provider: 0,
        event_id: 1,
        level: 4,
        opcode: 0,
        keywords: 0,
        name: "Sample".into(),
        fields: vec![FieldMeta {
            name: "seq".into(),
            ty: FieldType::U64,
        }],
    };
    let mut bytes = Vec::new();
    record::encode_event_type(&meta, &mut bytes).expect("metadata");
    region.write(h.meta_offset, &bytes);
    h.provider
        .meta_head
        .store(bytes.len() as u64, Ordering::Release);

    // Ring 0: the thread's name, WHOLE events, then the start of one more
    // whose head moves past its first bytes only: the writer died there.
    let ring = region.ring(0);
    ring.state.store(RING_OWNED, Ordering::Release);
    let mut stream = record::thread_record(std::process::id()).to_vec();
    for seq in 0..WHOLE {
        let mut ev = [0u8; record::EVENT_ABS_HEADER_LEN + 8];
        let size = ev.len();
        let at = record::encode_event_header(&mut ev, size, 0, Ticks::Absolute(now_ticks(h.clock)));
        ev[at..].copy_from_slice(&seq.to_le_bytes());
        stream.extend_from_slice(&ev);
    }
    let whole_end = stream.len() as u64;
    let mut torn = [0u8; record::EVENT_ABS_HEADER_LEN + 8];
    let size = torn.len();
    record::encode_event_header(&mut torn, size, 0, Ticks::Absolute(now_ticks(h.clock)));
    stream.extend_from_slice(&torn[..10]);
    region.write(h.ring_offset, &stream);
    ring.head.store(stream.len() as u64, Ordering::Release);

    // The daemon consumes the whole records and skips the torn one.
    wait_until(LIMIT, "the daemon to consume the ring", || {
        ring.tail.load(Ordering::Acquire) == stream.len() as u64
    });
    assert!(whole_end < stream.len() as u64);
    let s = env.session("torn");
    assert_eq!(s.counters.events, WHOLE, "{s:?}");
    assert_eq!(
        s.counters.lost_other, 1,
        "the torn record is counted: {s:?}"
    );
    assert_eq!(s.counters.events_lost, 1, "{s:?}");
    let query = env.ok(&["query", "torn"]);
    assert!(
        query.contains("Events Lost           : 1 (ring full 0, no buffer 0, other 1)"),
        "{query}"
    );

    // The process dies.
    drop(region);
    drop(conn);
    env.wait_no_providers();

    // The daemon serves on: another process writes into the same session.
    let after = env.emit(PROVIDER, 100, &[]);
    let after_pid = after["pid"].as_u64().unwrap();
    env.wait_no_providers();
    let stopped = env.json(&["stop", "torn"]);
    assert_eq!(stopped["events"], WHOLE + 100, "{stopped}");
    assert_eq!(stopped["events_lost"], 1, "{stopped}");
    assert_eq!(stopped["lost_other"], 1, "{stopped}");

    // The log has the whole records, the loss with its reason, and the
    // other process's events.
    let entries = env.fmt_json(&[&log]);
    let seqs_of = |pid: u64| -> Vec<u64> {
        entries
            .iter()
            .filter(|e| e.get("event").is_some() && e["pid"] == pid)
            .map(|e| e["fields"]["seq"].as_u64().unwrap())
            .collect()
    };
    let me = u64::from(std::process::id());
    assert_eq!(seqs_of(me), (0..WHOLE).collect::<Vec<_>>());
    assert_eq!(seqs_of(after_pid), (0..100).collect::<Vec<_>>());
    let lost: Vec<&serde_json::Value> =
        entries.iter().filter(|e| e.get("lost").is_some()).collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0]["lost"], 1);
    assert_eq!(lost[0]["reason"], "corrupt");
    assert_eq!(lost[0]["pid"], me);
    let summary = env.ok(&["fmt", "--summary", log.to_str().unwrap()]);
    assert!(summary.contains("corrupt"), "{summary}");
}
