//! `ferret recover`: takes the regions a dead daemon's keeper held (see
//! `keeper.rs`) and writes every committed record its drain had not taken
//! into a Ferret log, with the metadata needed to decode it.
//!
//! The rings are untrusted bytes, as they are for the drain: they are
//! framed by the same scanner (`ring::scan`), the metadata area is parsed
//! with the same caps, and a record that cannot be used is counted (a LOST
//! record with reason `corrupt`) rather than trusted.
//!
//! What a killed daemon had already taken from the rings but not yet
//! written (its session buffers, in its own memory) died with it; see
//! docs/RELIABILITY.md, "Recovering a killed daemon's rings".

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use ferret_abi::Guid;
use ferret_abi::record::{
    self, CONTEXT_LEN, ContextMeta, EventTypeMeta, LostMeta, LostReason, ProcessMeta, ProviderMeta,
    Record, Ticks,
};
use ferret_abi::shm::{RegionLayout, RegionParams};
use ferret_format::{BufferBuilder, FileHeader, Trailer, buffer_kind, mode};
use ferret_session::RegionId;
use ferret_transport::Conn;

use crate::keeper::{KeeperMsg, RECOVER_SUFFIX, clock_from_words};
use crate::ring::{RingEvent, RingSink, TimeBase};
use crate::shm::{ReadBytes, SharedBytes, ShmRegion};

/// Buffers of the recovered log: room for the largest record (64 KiB) and
/// its CONTEXT record.
const BUFFER_SIZE: usize = 256 * 1024;

/// What a recovery found and wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The dead daemon's process id.
    pub daemon_pid: u32,
    /// Provider processes whose rings held records.
    pub processes: u64,
    /// Rings that held records.
    pub rings: u64,
    /// Events written to the log.
    pub events: u64,
    /// Records that could not be used (no metadata for their type, no time
    /// base, malformed), counted as corrupt losses in the log.
    pub unusable: u64,
    /// Data buffers written.
    pub buffers: u64,
    /// Rings whose producer had overwritten records the daemon held in
    /// buffers it had not written: those records are lost; the rest of the
    /// ring (from the daemon's tail) is recovered.
    pub lapped: u64,
}

/// Why a recovery failed.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The keeper could not be reached or sent something unexpected.
    #[error("keeper {path}: {message}")]
    Keeper {
        /// Its socket.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Writing the log failed.
    #[error("writing the recovered log: {0}")]
    Write(#[from] std::io::Error),
    /// A region image is not one this version reads.
    #[error("{0}")]
    Image(String),
}

/// One ring of a region image, as `ferret rings` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingState {
    /// Its index in the region.
    pub ring: u32,
    /// The thread writing where the unwritten records start.
    pub tid: u32,
    /// The position the unwritten records start at.
    pub from: u64,
    /// The producer's head.
    pub head: u64,
    /// True if the producer lapped records the daemon had not written.
    pub lapped: bool,
}

/// A region as a debugger copied it out of a live process or a core file:
/// the region's layout in a file, holes where nothing was copied, and the
/// process's PROVIDER records (`FERRET_DEBUG_PROVIDERS`, docs/ABI.md).
pub struct RegionImage {
    region: Region,
    clock: ferret_format::ClockInfo,
}

impl std::fmt::Debug for RegionImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionImage")
            .field("pid", &self.region.shm.pid)
            .finish_non_exhaustive()
    }
}

/// Reads the field of `len` bytes at `at` of a header copy.
fn field(h: &[u8], at: usize, len: usize) -> u64 {
    let mut b = [0u8; 8];
    b[..len].copy_from_slice(&h[at..at + len]);
    u64::from_le_bytes(b)
}

impl RegionImage {
    /// Opens an image; `pid` 0 takes the pid its header names. Everything
    /// in it is untrusted, as a live region is.
    pub fn open(
        image: &File,
        providers: &[u8],
        pid: u32,
        process: &str,
    ) -> Result<RegionImage, RecoverError> {
        use ferret_abi::shm::{ABI_MAJOR, CLOCK_LINE_OFFSET, HEADER_BYTES, REGION_MAGIC};
        let bad = |why: &str| RecoverError::Image(format!("not a Ferret region image: {why}"));
        let mut h = vec![0u8; HEADER_BYTES];
        image
            .read_exact_at(&mut h, 0)
            .map_err(|_| bad("shorter than a header"))?;
        if h[..8] != REGION_MAGIC || field(&h, 8, 2) != u64::from(ABI_MAJOR) {
            return Err(bad("no region magic of this major version"));
        }
        let params = RegionParams {
            ring_count: field(&h, 80, 4) as u32,
            ring_capacity: field(&h, 96, 8),
            meta_capacity: field(&h, 64, 8),
        };
        let layout = RegionLayout::new(params).map_err(|e| bad(&e.to_string()))?;
        let size = image.metadata()?.len();
        if field(&h, 16, 8) != layout.region_size || size < layout.region_size {
            return Err(bad("its size does not match its layout"));
        }
        let mut w = [0u64; 5];
        for (i, word) in w.iter_mut().enumerate() {
            *word = field(&h, CLOCK_LINE_OFFSET + 8 * i, 8);
        }
        if w[0] == 0 {
            return Err(RecoverError::Image(
                "the region has no clock line (its daemon predates ABI 1.5), so its times cannot be read".into(),
            ));
        }
        let clock = clock_from_words(w);
        let pid = if pid == 0 {
            field(&h, 28, 4) as u32
        } else {
            pid
        };
        let memfd = copy_to_memfd(image, layout.region_size)?;
        let shm = ShmRegion::adopt(RegionId(1), pid, layout, memfd)?;
        let mut names = BTreeMap::new();
        let mut at = 0;
        while at < providers.len() {
            match record::parse_untrusted(&providers[at..]) {
                Ok((Record::Provider(p), n)) => {
                    names.insert(p.provider, (p.name, p.guid));
                    at += n;
                }
                _ => break,
            }
        }
        Ok(RegionImage {
            region: Region {
                shm,
                process: process.to_string(),
                providers: names,
            },
            clock,
        })
    }

    /// The process's providers, by slot.
    pub fn providers(&self) -> Vec<(u32, String)> {
        self.region
            .providers
            .iter()
            .map(|(slot, (name, _))| (*slot, name.clone()))
            .collect()
    }

    /// The rings holding records no log file has.
    pub fn rings(&self) -> Vec<RingState> {
        (0..self.region.shm.layout.params.ring_count as usize)
            .filter_map(|i| {
                let s = span(&self.region.shm, i)?;
                Some(RingState {
                    ring: i as u32,
                    tid: s.tid,
                    from: s.from,
                    head: s.head,
                    lapped: s.lapped,
                })
            })
            .collect()
    }

    /// Writes the records no log file has to `out` (an empty file) as a
    /// sequential log of a session called `dump-PID`.
    pub fn write(&self, out: &File) -> Result<Recovered, RecoverError> {
        let pid = self.region.shm.pid;
        let regions = BTreeMap::from([(1u64, &self.region)]);
        let name = format!("dump-{pid}");
        write_log_of(&regions, 0, self.clock, &name, out)
    }
}

/// Copies the data of `image` (its holes stay holes) into a memfd sealed
/// as the daemon seals regions, so that it can be mapped like one.
fn copy_to_memfd(image: &File, size: u64) -> Result<std::os::fd::OwnedFd, RecoverError> {
    use rustix::fs::{MemfdFlags, SealFlags, SeekFrom};
    let memfd = rustix::fs::memfd_create(
        "ferret-image",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(std::io::Error::from)?;
    rustix::fs::ftruncate(&memfd, size).map_err(std::io::Error::from)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < size {
        let start = match rustix::fs::seek(image, SeekFrom::Data(pos)) {
            Ok(s) => s,
            // ENXIO: no data after `pos`.
            Err(_) => break,
        };
        if start >= size {
            break;
        }
        let end = rustix::fs::seek(image, SeekFrom::Hole(start))
            .map_err(std::io::Error::from)?
            .min(size);
        let mut at = start;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            image.read_exact_at(&mut buf[..n], at)?;
            rustix::io::pwrite(&memfd, &buf[..n], at).map_err(std::io::Error::from)?;
            at += n as u64;
        }
        pos = end;
    }
    rustix::fs::fcntl_add_seals(
        &memfd,
        SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
    )
    .map_err(std::io::Error::from)?;
    Ok(memfd)
}

/// The sockets of keepers waiting to hand over the rings of a daemon that
/// served `socket` and died (`SOCKET.recover-PID`), oldest daemon first.
pub fn kept_daemons(socket: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}{RECOVER_SUFFIX}", name.to_string_lossy());
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let pid = n.strip_prefix(&prefix)?.parse().ok()?;
            Some((pid, e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

struct Region {
    shm: ShmRegion,
    process: String,
    providers: BTreeMap<u32, (String, Guid)>,
}

/// Takes the regions from the keeper at `keeper` and writes their
/// undrained records to `out` (an empty file) as a sequential log.
pub fn recover(keeper: &Path, out: &File) -> Result<Recovered, RecoverError> {
    let fail = |message: String| RecoverError::Keeper {
        path: keeper.to_path_buf(),
        message,
    };
    let mut conn = Conn::connect(keeper).map_err(|e| fail(e.to_string()))?;
    conn.set_timeouts(
        Some(std::time::Duration::from_secs(10)),
        Some(std::time::Duration::from_secs(10)),
    )
    .map_err(|e| fail(e.to_string()))?;
    let mut daemon = None;
    let mut regions: BTreeMap<u64, Region> = BTreeMap::new();
    loop {
        let (msg, mut fds) = conn.recv::<KeeperMsg>().map_err(|e| fail(e.to_string()))?;
        match msg {
            KeeperMsg::Daemon { pid, clock } => daemon = Some((pid, clock_from_words(clock))),
            KeeperMsg::Region {
                id,
                pid,
                process,
                ring_count,
                ring_capacity,
                meta_capacity,
            } => {
                let params = RegionParams {
                    ring_count,
                    ring_capacity,
                    meta_capacity,
                };
                let layout = RegionLayout::new(params).map_err(|e| fail(e.to_string()))?;
                let memfd = fds
                    .pop()
                    .ok_or_else(|| fail("a region came without its memfd".into()))?;
                let shm = ShmRegion::adopt(RegionId(id), pid, layout, memfd)
                    .map_err(|e| fail(format!("region of pid {pid}: {e}")))?;
                regions.insert(
                    id,
                    Region {
                        shm,
                        process,
                        providers: BTreeMap::new(),
                    },
                );
            }
            KeeperMsg::Provider {
                id,
                slot,
                name,
                guid,
            } => {
                if let Some(r) = regions.get_mut(&id) {
                    r.providers.insert(slot, (name, guid));
                }
            }
            KeeperMsg::End => break,
            KeeperMsg::Forget { .. } | KeeperMsg::Bye => {}
        }
    }
    let (daemon_pid, clock) = daemon.ok_or_else(|| fail("no daemon description".into()))?;

    let regions: BTreeMap<u64, &Region> = regions.iter().map(|(k, r)| (*k, r)).collect();
    write_log_of(
        &regions,
        daemon_pid,
        clock,
        &format!("recovered-{daemon_pid}"),
        out,
    )
}

/// Writes the undrained records of `regions` to `out` (an empty file) as a
/// sequential log whose session is called `name`.
fn write_log_of(
    regions: &BTreeMap<u64, &Region>,
    daemon_pid: u32,
    clock: ferret_format::ClockInfo,
    name: &str,
    out: &File,
) -> Result<Recovered, RecoverError> {
    let header = FileHeader {
        session_name: name.to_string(),
        host: rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        logger_id: 0,
        buffer_size: BUFFER_SIZE as u32,
        log_mode: mode::SEQUENTIAL,
        start_unix_ns: clock.anchor_unix_ns,
        clock,
        daemon_pid,
        slot_count: 0,
        file_index: 0,
    };
    let bytes = header.encode();
    out.write_all_at(&bytes, 0)?;
    let mut log = Log {
        file: out,
        data_offset: header.data_offset(),
        buffer: BufferBuilder::new(BUFFER_SIZE),
        seq: 0,
        chain: None,
    };
    let mut report = Recovered {
        daemon_pid,
        ..Recovered::default()
    };
    for region in regions.values() {
        recover_region(region, &mut log, &mut report)?;
    }
    log.seal()?;
    report.buffers = log.seq;

    // The trailer: the counts, and an end anchor from this process's clock
    // when it is the daemon's kind, so that the reader times events with
    // the rate measured over the whole span.
    let now = crate::clock::Clock::detect();
    if now.kind == clock.kind {
        let end = now.anchor();
        let trailer = Trailer {
            events: report.events,
            events_lost: report.unusable,
            lost_ring_full: 0,
            lost_no_buffer: 0,
            lost_other: report.unusable,
            buffers_written: report.buffers,
            log_buffers_lost: 0,
            end_ticks: end.ticks,
            end_mono_ns: end.mono_ns,
            end_unix_ns: end.unix_ns,
        };
        let mut rec = Vec::new();
        let mut buffer = BufferBuilder::new(BUFFER_SIZE);
        if record::encode_trailer(&trailer.to_values(), &mut rec).is_ok() && buffer.push(&rec) {
            let at = log.data_offset + log.seq * BUFFER_SIZE as u64;
            out.write_all_at(buffer.seal(buffer_kind::TRAILER, log.seq), at)?;
        }
    }
    out.sync_all()?;
    Ok(report)
}

/// The recovered log being written: sequential buffers after the header.
struct Log<'a> {
    file: &'a File,
    data_offset: u64,
    buffer: BufferBuilder,
    seq: u64,
    /// (source, ring, position, tid) the last event copied ended at: the
    /// next one continues its time base without a CONTEXT record.
    chain: Option<(u64, usize, u64, u32)>,
}

impl Log<'_> {
    /// Writes the current buffer, if it holds anything.
    fn seal(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let at = self.data_offset + self.seq * BUFFER_SIZE as u64;
        self.file
            .write_all_at(self.buffer.seal(buffer_kind::DATA, self.seq), at)?;
        self.seq += 1;
        self.buffer.clear();
        self.chain = None;
        Ok(())
    }

    /// Makes room for `n` bytes in the current buffer.
    fn room(&mut self, n: usize) -> std::io::Result<()> {
        if self.buffer.remaining() < n {
            self.seal()?;
        }
        Ok(())
    }

    fn push(&mut self, record: &[u8]) -> std::io::Result<()> {
        self.room(record.len())?;
        // A record larger than a whole buffer cannot be stored; metadata
        // records are far smaller, so this only drops a hostile one.
        let _ = self.buffer.push(record);
        Ok(())
    }
}

/// Writes one region's metadata and the undrained records of its rings.
fn recover_region(
    region: &Region,
    log: &mut Log<'_>,
    report: &mut Recovered,
) -> std::io::Result<()> {
    let shm = &region.shm;
    let source = shm.id.0;
    let types = read_types(shm);
    let mut unusable = 0u64;
    let mut described = false;
    let mut rings = 0u64;
    let mut events = 0u64;
    for i in 0..shm.layout.params.ring_count as usize {
        let Some(span) = span(shm, i) else {
            continue;
        };
        report.lapped += u64::from(span.lapped);
        if span.head == span.from {
            continue;
        }
        if !described {
            describe(region, &types, log)?;
            described = true;
        }
        rings += 1;
        let mut time = TimeBase {
            ticks: if span.ticks == u64::MAX {
                0
            } else {
                span.ticks
            },
            known: span.ticks != u64::MAX,
        };
        let mut sink = Sink {
            log: &mut *log,
            types: &types,
            source,
            pid: shm.pid,
            ring: i,
            tid: span.tid,
            bytes: shm.ring_bytes(i),
            events: 0,
            unusable: 0,
            error: None,
        };
        let cap = shm.layout.params.ring_capacity;
        let outcome = crate::ring::scan(
            &shm.ring_bytes(i),
            cap,
            span.from,
            span.head,
            &mut time,
            &mut sink,
        );
        if let Some(e) = sink.error.take() {
            return Err(e);
        }
        events += sink.events;
        unusable += sink.unusable + u64::from(outcome.fault.is_some());
    }
    if unusable > 0 {
        log.push(&record::lost_record(&LostMeta {
            source: source as u32,
            provider: u32::MAX,
            reason: LostReason::Corrupt,
            pid: shm.pid,
            count: unusable,
        }))?;
        log.chain = None;
    }
    if rings > 0 {
        report.processes += 1;
    }
    report.rings += rings;
    report.events += events;
    report.unusable += unusable;
    Ok(())
}

/// The stretch of a ring a recovery reads.
pub(crate) struct Span {
    /// Where to start: a record boundary.
    pub(crate) from: u64,
    /// True if the kept position was lapped, so `from` is the tail.
    pub(crate) lapped: bool,
    /// The producer's head.
    pub(crate) head: u64,
    /// The time base at `from` (`u64::MAX`: unknown).
    pub(crate) ticks: u64,
    /// The thread writing at `from`.
    pub(crate) tid: u32,
}

/// What of ring `i` a recovery reads, or None if nothing: from the oldest
/// record the daemon held in a session buffer it had not written
/// (`keep_from`) when the ring still holds it, else from the tail; to the
/// head. The positions come from shared memory a provider could have
/// written, so they are only trusted as far as the scanner checks them.
pub(crate) fn span(shm: &ShmRegion, i: usize) -> Option<Span> {
    let desc = shm.ring(i);
    let capacity = shm.layout.params.ring_capacity;
    let head = desc.head.load(Ordering::Acquire);
    let tail = desc.tail.load(Ordering::Acquire);
    let keep = desc.keep_from.load(Ordering::Acquire);
    let kept = keep <= tail && tail <= head && head - keep <= capacity;
    let span = if kept {
        Span {
            lapped: false,
            from: keep,
            head,
            ticks: desc.keep_ticks.load(Ordering::Relaxed),
            tid: desc.keep_tid.load(Ordering::Relaxed) as u32,
        }
    } else {
        Span {
            lapped: keep != tail,
            from: tail,
            head,
            ticks: desc.tail_ticks.load(Ordering::Relaxed),
            tid: desc.tid.load(Ordering::Relaxed),
        }
    };
    (span.head != span.from || span.lapped).then_some(span)
}

/// The event types in a region's metadata area, parsed as the drain does:
/// in order, well formed, within the area; the first bad record ends it.
fn read_types(shm: &ShmRegion) -> Vec<EventTypeMeta> {
    let capacity = shm.layout.params.meta_capacity;
    let head = shm
        .header()
        .provider
        .meta_head
        .load(Ordering::Acquire)
        .min(capacity);
    let mut bytes = vec![0u8; head as usize];
    shm.meta_bytes().copy_to(0, &mut bytes);
    let mut types = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match record::parse_untrusted(&bytes[at..]) {
            Ok((Record::EventType(meta), size)) if meta.type_id as usize == types.len() => {
                types.push(meta);
                at += size;
            }
            _ => break,
        }
    }
    types
}

/// Writes the PROCESS, PROVIDER and EVENT_TYPE records of a region.
fn describe(region: &Region, types: &[EventTypeMeta], log: &mut Log<'_>) -> std::io::Result<()> {
    let shm = &region.shm;
    let source = shm.id.0 as u32;
    let mut bytes = Vec::new();
    let process = ProcessMeta {
        pid: shm.pid,
        name: region.process.clone(),
        source: Some(source),
    };
    if record::encode_process(&process, &mut bytes).is_ok() {
        log.push(&bytes)?;
    }
    let slots: std::collections::BTreeSet<u32> = types.iter().map(|t| t.provider).collect();
    for slot in slots {
        let (name, guid) = region.providers.get(&slot).cloned().unwrap_or_else(|| {
            // The keeper never heard of the slot: name it, so its events
            // still decode.
            let name = format!("slot-{slot}");
            let guid = Guid::from_name(&name);
            (name, guid)
        });
        bytes.clear();
        let meta = ProviderMeta {
            source,
            provider: slot,
            pid: shm.pid,
            guid,
            name,
        };
        if record::encode_provider(&meta, &mut bytes).is_ok() {
            log.push(&bytes)?;
        }
    }
    for t in types {
        bytes.clear();
        let meta = EventTypeMeta {
            source,
            ..t.clone()
        };
        if record::encode_event_type(&meta, &mut bytes).is_ok() {
            log.push(&bytes)?;
        }
    }
    log.chain = None;
    Ok(())
}

/// Copies the events of one ring into the log.
struct Sink<'a, 'b> {
    log: &'a mut Log<'b>,
    types: &'a [EventTypeMeta],
    source: u64,
    pid: u32,
    ring: usize,
    tid: u32,
    bytes: SharedBytes<'a>,
    events: u64,
    unusable: u64,
    error: Option<std::io::Error>,
}

impl RingSink for Sink<'_, '_> {
    fn event(&mut self, e: RingEvent) -> bool {
        if self.error.is_some() {
            return true;
        }
        let untimed = matches!(e.ticks, Ticks::Delta(_)) && !e.base.known;
        if untimed || e.type_id as usize >= self.types.len() {
            self.unusable += 1;
            self.log.chain = None;
            return true;
        }
        let continues = self.log.chain == Some((self.source, self.ring, e.position, self.tid));
        let need = e.size + CONTEXT_LEN;
        let result = (|| {
            let mut continues = continues;
            if self.log.buffer.remaining() < if continues { e.size } else { need } {
                self.log.seal()?;
                continues = false;
            }
            let (used, records) = (self.log.buffer.used(), self.log.buffer.records());
            if !continues {
                let ctx = ContextMeta {
                    source: self.source as u32,
                    pid: self.pid,
                    tid: self.tid,
                    base_ticks: e.base.ticks,
                };
                self.log.buffer.push(&record::context_record(&ctx));
            }
            if let Some(dst) = self.log.buffer.append(e.size) {
                self.bytes.copy_to(e.offset, dst);
                if !crate::ring::frames_as_events(dst, 1) {
                    // A producer still alive rewrote the record after the
                    // scan framed it; kept, the copy could misframe the
                    // records after it in the log, as in the drain. The
                    // event is unusable and counted as such.
                    self.log.buffer.rewind(used, records);
                    self.unusable += 1;
                    self.log.chain = None;
                    return Ok(());
                }
                self.events += 1;
                self.log.chain =
                    Some((self.source, self.ring, e.position + e.size as u64, self.tid));
            } else {
                self.unusable += 1;
                self.log.chain = None;
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.error = Some(e);
        }
        true
    }

    fn thread(&mut self, tid: u32) {
        self.tid = tid;
        self.log.chain = None;
    }
}

/// A one-ring region (a 4096-byte ring holding `ring` from offset 0, a
/// metadata area holding `meta`, and the given positions), as a dead
/// daemon's keeper would hand it to `ferret recover`.
fn one_ring_region(
    id: RegionId,
    ring: &[u8],
    meta: &[u8],
    tail: u64,
    head: u64,
    keep: u64,
) -> std::io::Result<ShmRegion> {
    use ferret_abi::shm::{CLOCK_MONOTONIC, RING_OWNED};
    const CAPACITY: u64 = 4096;
    let params = RegionParams {
        ring_count: 1,
        ring_capacity: CAPACITY,
        meta_capacity: 4096,
    };
    let clock = ferret_format::ClockInfo {
        kind: CLOCK_MONOTONIC,
        anchor_ticks: 0,
        anchor_mono_ns: 0,
        anchor_unix_ns: 0,
        ticks_per_sec: 1_000_000_000,
    };
    let shm = ShmRegion::create(id, 42, params, &clock)?;
    let fd = shm.memfd();
    rustix::io::pwrite(
        fd,
        &ring[..ring.len().min(CAPACITY as usize)],
        shm.layout.ring_data_at(0),
    )?;
    rustix::io::pwrite(fd, &meta[..meta.len().min(4096)], shm.layout.meta_offset)?;
    shm.header()
        .provider
        .meta_head
        .store(meta.len() as u64, Ordering::Release);
    let d = shm.ring(0);
    d.state.store(RING_OWNED, Ordering::Release);
    d.head.store(head, Ordering::Release);
    d.tail.store(tail, Ordering::Release);
    d.tail_ticks.store(u64::MAX, Ordering::Release);
    d.keep_from.store(keep, Ordering::Release);
    d.keep_ticks.store(7, Ordering::Release);
    Ok(shm)
}

/// An unnamed file in memory for a recovered log, for tests and fuzzing.
fn memory_file() -> std::io::Result<File> {
    Ok(File::from(rustix::fs::memfd_create(
        "ferret-recover-test",
        rustix::fs::MemfdFlags::CLOEXEC,
    )?))
}

impl<'a> Log<'a> {
    /// An empty recovered log in `file`, its data after a 4096-byte header.
    fn new(file: &'a File) -> Log<'a> {
        Log {
            file,
            data_offset: 4096,
            buffer: BufferBuilder::new(BUFFER_SIZE),
            seq: 0,
            chain: None,
        }
    }
}

/// Recovers a one-ring region (a 4096-byte ring holding `ring` from offset
/// 0, a metadata area holding `meta`, and the given positions) into a log in
/// memory, as `ferret recover` does: for tests and fuzzing.
pub(crate) fn recover_one_ring(
    ring: &[u8],
    meta: &[u8],
    tail: u64,
    head: u64,
    keep: u64,
) -> std::io::Result<Recovered> {
    let shm = one_ring_region(RegionId(1), ring, meta, tail, head, keep)?;
    let region = Region {
        shm,
        process: "test".into(),
        providers: BTreeMap::new(),
    };
    let file = memory_file()?;
    let mut log = Log::new(&file);
    let mut report = Recovered::default();
    recover_region(&region, &mut log, &mut report)?;
    log.seal()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferret_abi::record::{FieldMeta, FieldType};
    use proptest::prelude::*;

    const CAPACITY: u64 = 4096;

    fn run(ring: &[u8], meta: &[u8], tail: u64, head: u64, keep: u64) -> Recovered {
        recover_one_ring(ring, meta, tail, head, keep).expect("recover")
    }

    fn one_type() -> Vec<u8> {
        let meta = EventTypeMeta {
            source: 0,
            type_id: 0,
            provider: 0,
            event_id: 1,
            level: 4,
            opcode: 0,
            keywords: 0,
            name: "E".into(),
            fields: vec![FieldMeta {
                name: "n".into(),
                ty: FieldType::U64,
            }],
        };
        let mut bytes = Vec::new();
        record::encode_event_type(&meta, &mut bytes).expect("metadata");
        bytes
    }

    /// A THREAD record and `n` events, the first absolute, the rest deltas.
    fn stream(n: u64) -> Vec<u8> {
        let mut out = record::thread_record(9).to_vec();
        for i in 0..n {
            let ticks = if i == 0 {
                Ticks::Absolute(1000)
            } else {
                Ticks::Delta(10)
            };
            let mut ev = vec![0u8; record::event_header_len(ticks, &Default::default()) + 8];
            let size = ev.len();
            let at = record::encode_event_header(&mut ev, size, 0, ticks);
            ev[at..].copy_from_slice(&i.to_le_bytes());
            out.extend_from_slice(&ev);
        }
        out
    }

    #[test]
    fn a_record_rewritten_between_the_scan_and_the_copy_is_counted_not_copied() {
        // The scan frames the records of one ring; the copy reads another
        // whose second event claims 8 bytes more, as a producer still alive
        // could rewrite it in between. Kept, that size would swallow the
        // next record of the log.
        let bytes = stream(3);
        let len = bytes.len() as u64;
        let mut rewritten = bytes.clone();
        let first = record::thread_record(9).len();
        let (first_size, _) = record::peek_header(&bytes[first..]).expect("first event");
        let at = first + first_size;
        let (size, _) = record::peek_header(&bytes[at..]).expect("second event");
        rewritten[at..at + 2].copy_from_slice(&((size + 8) as u16).to_le_bytes());
        let scanned =
            one_ring_region(RegionId(1), &bytes, &one_type(), len, len, 0).expect("region");
        let copied = one_ring_region(RegionId(2), &rewritten, &[], len, len, 0).expect("region");
        let types = read_types(&scanned);
        let file = memory_file().expect("memfd");
        let mut log = Log::new(&file);
        let mut sink = Sink {
            log: &mut log,
            types: &types,
            source: 1,
            pid: 42,
            ring: 0,
            tid: 9,
            bytes: copied.ring_bytes(0),
            events: 0,
            unusable: 0,
            error: None,
        };
        let mut time = TimeBase {
            ticks: 0,
            known: false,
        };
        let outcome = crate::ring::scan(
            &scanned.ring_bytes(0),
            CAPACITY,
            0,
            len,
            &mut time,
            &mut sink,
        );
        assert!(outcome.fault.is_none());
        assert!(sink.error.is_none());
        assert_eq!((sink.events, sink.unusable), (2, 1));
        // What was kept frames as exactly its records: two events, each
        // after a CONTEXT record (the chain restarts after the bad one).
        let kept = log.buffer.records();
        assert_eq!(kept, 4, "two CONTEXT records and two events");
    }

    #[test]
    fn recovers_from_the_kept_position_and_falls_back_to_the_tail_when_lapped() {
        let bytes = stream(20);
        let len = bytes.len() as u64;
        let meta = one_type();
        // Everything from the start: the daemon kept it all.
        let r = run(&bytes, &meta, len, len, 0);
        assert_eq!((r.events, r.unusable, r.lapped), (20, 0, 0));
        // Nothing kept and nothing undrained.
        assert_eq!(run(&bytes, &meta, len, len, len).events, 0);
        // A keep position the producer has lapped is not used.
        let r = run(&bytes, &meta, CAPACITY + len, CAPACITY + len, 0);
        assert_eq!((r.events, r.lapped), (0, 1));
        // Events whose type the metadata lacks are counted, not written.
        let r = run(&bytes, &[], len, len, 0);
        assert_eq!((r.events, r.unusable), (0, 20));
    }

    proptest! {
        #[test]
        fn hostile_rings_and_positions_never_panic(
            ring in proptest::collection::vec(any::<u8>(), 0..4096),
            meta_garbage in proptest::collection::vec(any::<u8>(), 0..64),
            tail in 0u64..3 * CAPACITY,
            head in 0u64..3 * CAPACITY,
            keep in 0u64..3 * CAPACITY,
            good_meta in any::<bool>(),
        ) {
            let meta = if good_meta { one_type() } else { meta_garbage };
            let r = run(&ring, &meta, tail, head, keep);
            prop_assert!(r.events + r.unusable <= 3 * CAPACITY);
        }
    }
}
