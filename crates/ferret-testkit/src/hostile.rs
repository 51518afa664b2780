//! The hostile provider (see [`crate::programs`]): a provider process that attacks the daemon it
//! attaches to, for the end-to-end test that shows the daemon survives it
//! (crates/ferret-cli/tests/a_hostile_provider_loses_only_its_own_events.rs).
//! It is not part of Ferret's user interface.
//!
//! It speaks the provider protocol itself rather than through
//! `ferret-provider`, so that it can break every rule of docs/ABI.md:
//!
//! 1. registers `--provider` and `Hostile.Own` in its region, then floods
//!    registrations: every other slot, slots out of range, a taken slot
//!    under another name and names whose GUID does not match;
//! 2. fills its metadata area with event types (thousands of them);
//! 3. writes records with lying lengths and kinds, and heads behind the
//!    tail or far past it, waiting each time until the daemon moved on;
//! 4. races the daemon: one thread publishes well-formed events while
//!    another keeps rewriting their sizes and kinds;
//! 5. writes random bytes over its whole region, ring positions, headers
//!    and enable table included, waking the drain each time;
//! 6. opens `--connections` more provider connections and keeps them open.
//!
//! It prints one JSON line with what it did and what was refused.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferret_abi::Guid;
use ferret_abi::proto::{Hello, PROTO_MAGIC, Request, Response, Role};
use ferret_abi::record::{self, EventTypeMeta, FieldMeta, FieldType, Ticks, kind};
use ferret_abi::shm::{ABI_MAJOR, ABI_MINOR, ENABLE_SLOTS, RING_OWNED, RegionHeader, RegionLayout};
use ferret_client::Conn;

struct Args {
    socket: PathBuf,
    provider: String,
    seconds: f64,
    connections: usize,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        socket: ferret_abi::paths::socket_path(None),
        provider: "Hostile.Shared".into(),
        seconds: 2.0,
        connections: 0,
    };
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--socket" => args.socket = PathBuf::from(value()?),
            "--provider" => args.provider = value()?,
            "--seconds" => args.seconds = value()?.parse().map_err(|_| "bad --seconds")?,
            "--connections" => {
                args.connections = value()?.parse().map_err(|_| "bad --connections")?
            }
            _ => return Err(format!("unexpected argument '{a}'")),
        }
    }
    Ok(args)
}

/// Small, fast, seedable randomness (xorshift64*); no quality needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The region, mapped read-write like a provider maps it.
#[derive(Clone, Copy)]
struct Region {
    base: *mut u8,
    len: usize,
    layout: RegionLayout,
}

// SAFETY: the mapping lives until the process exits; every access is a
// volatile or atomic access to shared memory that others change anyway.
unsafe impl Send for Region {}

impl Region {
    fn write(&self, offset: u64, bytes: &[u8]) {
        let offset = offset as usize;
        if offset >= self.len {
            return;
        }
        let n = bytes.len().min(self.len - offset);
        // SAFETY: the range lies inside the mapping (clamped above).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(offset), n) };
    }
    fn u64_at(&self, offset: u64) -> &AtomicU64 {
        // SAFETY: callers pass 8-aligned offsets of the layout, inside the
        // mapping; any bits are a valid AtomicU64.
        unsafe { &*self.base.add(offset as usize).cast::<AtomicU64>() }
    }
    fn head(&self, ring: usize) -> &AtomicU64 {
        self.u64_at(self.layout.ring_desc_at(ring))
    }
    fn tail(&self, ring: usize) -> &AtomicU64 {
        self.u64_at(self.layout.ring_desc_at(ring) + 64)
    }
    fn claim(&self, ring: usize) {
        let state = self.u64_at(self.layout.ring_desc_at(ring) + 128);
        state.store(
            RING_OWNED as u64 | ((std::process::id() as u64) << 32),
            Ordering::Release,
        );
    }
    fn ring_offset(&self, ring: usize, position: u64) -> u64 {
        self.layout.ring_data_at(ring) + (position % self.layout.params.ring_capacity)
    }
    fn meta_head(&self) -> &AtomicU64 {
        self.u64_at(192)
    }
}

fn hello() -> Request {
    Request::Hello(Hello {
        magic: PROTO_MAGIC,
        major: ABI_MAJOR,
        minor: ABI_MINOR,
        role: Role::Provider,
        client: "ferret-hostile-provider".into(),
    })
}

/// Connects as a provider: the connection and its region's descriptors, or
/// the daemon's refusal.
fn attach(socket: &std::path::Path) -> Result<(Conn, Vec<OwnedFd>, u64), String> {
    let mut conn = Conn::connect(socket).map_err(|e| format!("connect: {e}"))?;
    conn.set_timeouts(Some(Duration::from_secs(10)), Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    conn.send(&hello(), &[])
        .map_err(|e| format!("hello: {e}"))?;
    match conn.recv::<Response>() {
        Ok((Response::Region(g), fds)) => Ok((conn, fds, g.region_size)),
        Ok((Response::Error(e), _)) => Err(format!("refused: {}", e.message)),
        Ok((other, _)) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(format!("no answer: {e}")),
    }
}

fn map(fds: &[OwnedFd], size: u64) -> Result<Region, String> {
    let memfd = fds.first().ok_or("no memfd")?;
    // SAFETY: a new shared mapping of the memfd the daemon sent.
    let ptr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            size as usize,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::SHARED,
            memfd,
            0,
        )
    }
    .map_err(|e| format!("mmap: {e}"))?;
    // SAFETY: the header is at offset 0 of the mapping, which is larger.
    let header = unsafe { &*ptr.cast::<RegionHeader>() };
    let layout = RegionLayout::from_header(header, size).map_err(|e| e.to_string())?;
    Ok(Region {
        base: ptr.cast(),
        len: size as usize,
        layout,
    })
}

/// Sends one registration; true if the daemon accepted it.
fn register(conn: &mut Conn, slot: u32, name: &str, guid: Guid) -> bool {
    let req = Request::RegisterProvider {
        slot,
        name: name.into(),
        guid,
    };
    if conn.send(&req, &[]).is_err() {
        return false;
    }
    matches!(
        conn.recv::<Response>(),
        Ok((Response::ProviderRegistered { .. }, _))
    )
}

fn wake(eventfd: &OwnedFd) {
    let _ = rustix::io::write(eventfd, &1u64.to_ne_bytes());
}

/// Waits (up to a second) for the daemon to consume ring `ring` to `head`.
fn wait_consumed(region: &Region, ring: usize, head: u64, eventfd: &OwnedFd) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if region.tail(ring).load(Ordering::Acquire) == head {
            return true;
        }
        wake(eventfd);
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// An event record of type `type_id` with `payload` bytes of payload.
fn event(type_id: u16, payload: usize, absolute: bool) -> Vec<u8> {
    let (ticks, header) = if absolute {
        (Ticks::Absolute(1), record::EVENT_ABS_HEADER_LEN)
    } else {
        (Ticks::Delta(1), record::EVENT_HEADER_LEN)
    };
    let mut b = vec![0x5a; header + payload];
    let size = b.len();
    record::encode_event_header(&mut b, size, type_id, ticks);
    b
}

#[derive(Default)]
struct Report {
    registered: u64,
    registrations_refused: u64,
    event_types: u64,
    lying_writes: u64,
    race_events: u64,
    race_rewrites: u64,
    scribbles: u64,
    connections: u64,
    connections_refused: u64,
    refusal: String,
}

/// Runs the program with `args` (its command line after the program's
/// name); returns its exit status.
pub fn main(args: impl Iterator<Item = String>) -> i32 {
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ferret-hostile-provider: {e}");
            return 2;
        }
    };
    match run(&args) {
        Ok(r) => {
            let line = format!(
                "{{\"pid\":{},\"registered\":{},\"registrations_refused\":{},\"event_types\":{},\"lying_writes\":{},\"race_events\":{},\"race_rewrites\":{},\"scribbles\":{},\"connections\":{},\"connections_refused\":{},\"refusal\":{:?}}}",
                std::process::id(),
                r.registered,
                r.registrations_refused,
                r.event_types,
                r.lying_writes,
                r.race_events,
                r.race_rewrites,
                r.scribbles,
                r.connections,
                r.connections_refused,
                r.refusal,
            );
            let _ = writeln!(std::io::stdout(), "{line}");
            0
        }
        Err(e) => {
            eprintln!("ferret-hostile-provider: {e}");
            1
        }
    }
}

fn run(args: &Args) -> Result<Report, String> {
    let mut report = Report::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64);
    let (mut conn, fds, size) = attach(&args.socket)?;
    let region = map(&fds, size)?;
    let eventfd = fds.get(1).ok_or("no eventfd")?;

    // 1. Registrations: two real ones, then a flood.
    for (slot, name) in [(0, args.provider.as_str()), (1, "Hostile.Own")] {
        if !register(&mut conn, slot, name, Guid::from_name(name)) {
            return Err(format!("registering '{name}' was refused"));
        }
        report.registered += 1;
    }
    for slot in 2..ENABLE_SLOTS as u32 + 64 {
        let name = format!("Hostile.Flood{slot}");
        if register(&mut conn, slot, &name, Guid::from_name(&name)) {
            report.registered += 1;
        } else {
            report.registrations_refused += 1;
        }
    }
    for (slot, name, guid) in [
        (0, "Hostile.Thief", Guid::from_name("Hostile.Thief")),
        (5, "Hostile.Flood5", Guid::from_name("Someone.Else")),
        (7, "Bad\nName", Guid::from_name("Bad\nName")),
    ] {
        if register(&mut conn, slot, name, guid) {
            report.registered += 1;
        } else {
            report.registrations_refused += 1;
        }
    }

    // 2. Event types until the metadata area is full: type 0 of the shared
    // provider, the rest of `Hostile.Own`.
    let meta_cap = region.layout.params.meta_capacity;
    let mut meta_at = 0u64;
    let mut bytes = Vec::new();
    for type_id in 0..=u16::MAX {
        bytes.clear();
        let meta = EventTypeMeta {
            source: 0,
            type_id,
            provider: u32::from(type_id != 0),
            event_id: type_id,
            level: 4,
            opcode: 0,
            keywords: 0,
            name: format!("HostileType{type_id}"),
            fields: vec![FieldMeta {
                name: "junk".into(),
                ty: FieldType::U32,
            }],
        };
        if record::encode_event_type(&meta, &mut bytes).is_err()
            || meta_at + bytes.len() as u64 > meta_cap
        {
            break;
        }
        region.write(region.layout.meta_offset + meta_at, &bytes);
        meta_at += bytes.len() as u64;
        report.event_types += 1;
    }
    region.meta_head().store(meta_at, Ordering::Release);

    // 3. Lies on ring 0: each write is published, then the daemon is woken
    // and given time to skip it.
    region.claim(0);
    let mut head = 0u64;
    let cap = region.layout.params.ring_capacity;
    for round in 0..64u64 {
        let mut rec = event((round % 3) as u16, 4, true);
        let len = rec.len() as u64;
        match round % 8 {
            0 => rec[0..2].copy_from_slice(&u16::MAX.to_le_bytes()), // past the head
            1 => rec[0..2].copy_from_slice(&2u16.to_le_bytes()),     // shorter than a header
            2 => rec[2] = 0x7f,                                      // unknown kind
            3 => rec[2] = kind::CONTEXT,                             // not a ring kind
            4 => rec[0..2].copy_from_slice(&0u16.to_le_bytes()),     // zero size
            5 => rec[3..5].copy_from_slice(&u16::MAX.to_le_bytes()), // undescribed type
            _ => {}
        }
        region.write(region.ring_offset(0, head), &rec);
        head = match round % 8 {
            6 => head.wrapping_sub(1 << 20), // behind the tail
            7 => head.wrapping_add(cap * 4), // more than a ring ahead
            _ => head.wrapping_add(len),
        };
        region.head(0).store(head, Ordering::Release);
        // The lost counters too: huge and wrapping.
        region
            .u64_at(region.layout.lost_counter_offset((round % 4) as usize))
            .store(u64::MAX - round, Ordering::Relaxed);
        wait_consumed(&region, 0, head, eventfd);
        head = region.tail(0).load(Ordering::Acquire);
        report.lying_writes += 1;
    }

    // 4. The race: batches of well-formed events are published on ring 1
    // while another thread keeps flipping the size of each batch's last
    // record between the truth and a lie that would swallow whatever
    // follows it in a session buffer.
    let stop = Arc::new(AtomicBool::new(false));
    let rewrites = Arc::new(AtomicU64::new(0));
    // Ring offset of the last record published, plus one (0: none yet).
    let last = Arc::new(AtomicU64::new(0));
    region.claim(1);
    const RACE_RECORD: usize = record::EVENT_ABS_HEADER_LEN + 4;
    let racer = {
        let stop = stop.clone();
        let rewrites = rewrites.clone();
        let last = last.clone();
        std::thread::spawn(move || {
            let lie = 4000u16.to_le_bytes();
            let truth = (RACE_RECORD as u16).to_le_bytes();
            while !stop.load(Ordering::Relaxed) {
                let at = last.load(Ordering::Acquire);
                if at == 0 {
                    std::hint::spin_loop();
                    continue;
                }
                region.write(at - 1, &lie);
                region.write(at - 1, &truth);
                rewrites.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let half = Duration::from_secs_f64(args.seconds / 2.0);
    let until = Instant::now() + half;
    let mut head = region.tail(1).load(Ordering::Acquire);
    while Instant::now() < until {
        let tail = region.tail(1).load(Ordering::Acquire);
        let rec = event(0, 4, true);
        debug_assert_eq!(rec.len(), RACE_RECORD);
        let mut batch_last = None;
        for _ in 0..8 {
            let len = rec.len() as u64;
            let pos = head % cap;
            if cap - pos < len {
                head = head.wrapping_add(cap - pos);
            }
            if head.wrapping_add(len).wrapping_sub(tail) > cap {
                break;
            }
            let at = region.ring_offset(1, head);
            region.write(at, &rec);
            batch_last = Some(at);
            head = head.wrapping_add(len);
            report.race_events += 1;
        }
        region.head(1).store(head, Ordering::Release);
        if let Some(at) = batch_last {
            last.store(at + 1, Ordering::Release);
        }
        wake(eventfd);
        // Give the drain time to frame and copy the batch while the racer
        // flips its last record.
        let pause = Instant::now() + Duration::from_micros(300);
        while Instant::now() < pause {
            std::hint::spin_loop();
        }
        last.store(0, Ordering::Release);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = racer.join();
    report.race_rewrites = rewrites.load(Ordering::Relaxed);

    // 5. Random bytes over everything, again and again.
    let until = Instant::now() + half;
    let mut page = vec![0u8; 4096];
    while Instant::now() < until {
        let mut at = 0u64;
        while at < region.len as u64 {
            for b in page.iter_mut() {
                *b = rng.next() as u8;
            }
            region.write(at, &page);
            at += 4096;
        }
        wake(eventfd);
        report.scribbles += 1;
        std::thread::sleep(Duration::from_millis(20));
    }

    // 6. More connections than the daemon allows one user; each is kept
    // open until the end, its region's descriptors closed.
    let mut kept = Vec::new();
    for _ in 0..args.connections {
        match attach(&args.socket) {
            Ok((c, _fds, _)) => {
                kept.push(c);
                report.connections += 1;
            }
            Err(e) => {
                report.connections_refused += 1;
                if report.refusal.is_empty() {
                    report.refusal = e;
                }
            }
        }
    }
    // The first connection still works after all of it.
    if !register(
        &mut conn,
        0,
        &args.provider,
        Guid::from_name(&args.provider),
    ) {
        return Err("the daemon stopped answering the first connection".into());
    }
    drop(kept);
    let _ = eventfd.as_fd();
    Ok(report)
}
