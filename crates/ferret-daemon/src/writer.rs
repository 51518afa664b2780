//! The writer threads: one per session writes sealed buffers into their
//! slots in the session's log file, writes the trailer and syncs at stop;
//! a router in front hands each session's commands to its thread, so that
//! one stalled file holds up only its own session.
//!
//! It writes only to descriptors controllers opened and passed in. Keeping
//! file I/O off the drain thread means a slow disk delays buffers, not the
//! draining of provider rings.
//!
//! Log files are written with direct I/O where the file system allows it:
//! consecutive buffers are gathered into one aligned staging area and
//! written with a single large write, each buffer padded to its full slot.
//! That avoids copying trace data through the page cache (the costliest
//! part of writing here, measured at about 300 MB/s against 1.5 GB/s direct)
//! and keeps trace files from crowding the traced programs' cache. Where
//! direct I/O is refused, buffers are written through the page cache,
//! without their unused tails.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use ferret_abi::proto::{Counters, rotated_file_name};
use ferret_abi::record;
use ferret_format::{BufferBuilder, Trailer, buffer_kind};
use ferret_session::{SessionCounters, SessionKey};

use crate::clock::Clock;
use crate::msg::{ControlEvent, FileLayout, Series, SinkSetup, WriteCmd};

/// Alignment for direct I/O: the largest logical block size in common use.
const DIRECT_ALIGN: usize = 4096;
/// Bytes gathered before one direct write.
const STAGE_BYTES: usize = 1 << 20;

/// A zeroed, page-aligned byte area for direct I/O.
struct AlignedBuf {
    ptr: std::ptr::NonNull<u8>,
    layout: std::alloc::Layout,
}

impl AlignedBuf {
    fn new(len: usize) -> Option<AlignedBuf> {
        let layout = std::alloc::Layout::from_size_align(len, DIRECT_ALIGN).ok()?;
        // SAFETY: the layout has a non-zero size (callers pass at least one slot).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let mut buf = AlignedBuf {
            ptr: std::ptr::NonNull::new(ptr)?,
            layout,
        };
        // Touch every page now rather than on the first burst.
        for b in buf.as_mut().iter_mut().step_by(4096) {
            *b = 0;
        }
        Some(buf)
    }

    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: the allocation is `layout.size()` bytes, zero-initialised,
        // and owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Box<[u8]>.
unsafe impl Send for AlignedBuf {}

/// Consecutive slots waiting to be written with one direct write.
struct Stage {
    buf: AlignedBuf,
    /// The first slot staged.
    first: u64,
    /// Slots staged.
    count: u64,
}

struct OpenLog {
    file: File,
    data_offset: u64,
    buffer_size: u64,
    counters: Arc<SessionCounters>,
    /// Set while the file accepts direct I/O.
    stage: Option<Stage>,
    /// Slots below this one have been written at least once.
    next_new_slot: u64,
    end: u64,
    /// The last write failure, until a write succeeds again.
    failure: Option<String>,
    /// Slots counted in `log_buffers_lost` (the newest [`LOST_SLOTS_KEPT`]).
    /// A slot is written more than once when a flush writes a copy of the
    /// buffer being filled: if the copy failed and the whole buffer is
    /// written later, the slot is not missing any more and is uncounted.
    lost_slots: std::collections::BTreeSet<u64>,
}

/// How many lost slots a log remembers for uncounting. Only a slot a flush
/// copied is written again, and that is the newest one, so a few suffice;
/// the bound keeps a long failure from growing memory.
const LOST_SLOTS_KEPT: usize = 64;

impl OpenLog {
    fn new(
        file: File,
        data_offset: u64,
        buffer_size: u64,
        counters: Arc<SessionCounters>,
    ) -> OpenLog {
        let aligned =
            buffer_size as usize % DIRECT_ALIGN == 0 && data_offset as usize % DIRECT_ALIGN == 0;
        let stage = if aligned && enable_direct(&file) {
            let slots = (STAGE_BYTES / buffer_size as usize).max(1);
            AlignedBuf::new(slots * buffer_size as usize).map(|buf| Stage {
                buf,
                first: 0,
                count: 0,
            })
        } else {
            None
        };
        OpenLog {
            file,
            data_offset,
            buffer_size,
            counters,
            stage,
            next_new_slot: 0,
            end: data_offset,
            failure: None,
            lost_slots: std::collections::BTreeSet::new(),
        }
    }

    fn slot_offset(&self, seq: u64) -> u64 {
        self.data_offset + seq * self.buffer_size
    }

    /// Writes (or stages) the bytes of slot `seq`.
    fn put(&mut self, seq: u64, bytes: &[u8]) {
        let size = self.buffer_size as usize;
        let Some(stage) = &mut self.stage else {
            self.write_at(seq, 1, bytes);
            return;
        };
        let capacity = (stage.buf.layout.size() / size) as u64;
        if stage.count > 0 && (seq != stage.first + stage.count || stage.count == capacity) {
            self.flush();
        }
        let Some(stage) = &mut self.stage else {
            self.write_at(seq, 1, bytes);
            return;
        };
        if stage.count == 0 {
            stage.first = seq;
        }
        let at = (stage.count as usize) * size;
        let n = bytes.len().min(size);
        let area = stage.buf.as_mut();
        area[at..at + n].copy_from_slice(&bytes[..n]);
        area[at + n..at + size].fill(0);
        stage.count += 1;
    }

    /// Writes the staged slots.
    fn flush(&mut self) {
        let Some(mut stage) = self.stage.take() else {
            return;
        };
        if stage.count > 0 {
            let len = stage.count as usize * self.buffer_size as usize;
            let first = stage.first;
            let count = stage.count;
            stage.count = 0;
            let offset = self.slot_offset(first);
            let result = write_counted(&self.file, &stage.buf.as_mut()[..len], offset);
            match result {
                (0, Some(e))
                    if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) =>
                {
                    // The file system takes O_DIRECT but not these
                    // alignments: go on through the page cache.
                    disable_direct(&self.file);
                    let bytes = stage.buf.as_mut()[..len].to_vec();
                    self.write_at(first, count, &bytes);
                    return;
                }
                other => self.account(first, count, len, other),
            }
        }
        self.stage = Some(stage);
    }

    fn write_at(&mut self, first: u64, count: u64, bytes: &[u8]) {
        let result = write_counted(&self.file, bytes, self.slot_offset(first));
        self.account(first, count, bytes.len(), result);
    }

    /// Counts the outcome of writing `count` slots from slot `first`
    /// (`len` bytes). A write that fails part way (a full disk, a file size
    /// limit) may have written some whole slots first: those count as
    /// written, the rest as log buffers lost. The session goes on either
    /// way; the error stays in `last_error` and is marked as past once a
    /// later write succeeds, so that `query` shows both that buffers were
    /// lost and that writing works again.
    fn account(
        &mut self,
        first: u64,
        count: u64,
        len: usize,
        result: (usize, Option<std::io::Error>),
    ) {
        let (done, error) = result;
        let whole = if error.is_none() {
            count
        } else {
            (done as u64 / self.buffer_size).min(count)
        };
        if whole > 0 {
            let rewritten = self.lost_slots.range(first..first + whole).count();
            if rewritten > 0 {
                self.lost_slots
                    .retain(|s| !(first..first + whole).contains(s));
                self.counters
                    .log_buffers_lost
                    .fetch_sub(rewritten as u64, Ordering::Relaxed);
            }
            self.next_new_slot = self.next_new_slot.max(first + whole);
            let written = if whole == count {
                len as u64
            } else {
                whole * self.buffer_size
            };
            self.end = self.end.max(self.slot_offset(first) + written);
        }
        match error {
            None => {
                if let Some(failure) = self.failure.take() {
                    self.counters.set_error(format!(
                        "{failure} (past: writing resumed at buffer {first})"
                    ));
                }
            }
            Some(e) => {
                // A slot already counted (a copy that failed before) is
                // counted once.
                let mut lost = 0;
                for slot in first + whole..first + count {
                    if self.lost_slots.insert(slot) {
                        lost += 1;
                    }
                }
                while self.lost_slots.len() > LOST_SLOTS_KEPT {
                    self.lost_slots.pop_first();
                }
                self.counters
                    .log_buffers_lost
                    .fetch_add(lost, Ordering::Relaxed);
                let failure = format!(
                    "writing buffers {}..{} failed: {e}",
                    first + whole,
                    first + count
                );
                self.counters.set_error(failure.clone());
                self.failure = Some(failure);
            }
        }
    }
}

/// Writes all of `bytes` at `offset`, as far as it can. Returns the bytes
/// written and the error that stopped it, if any, so that a write cut short
/// by a full disk still counts the slots it did write.
fn write_counted(file: &File, bytes: &[u8], offset: u64) -> (usize, Option<std::io::Error>) {
    let mut done = 0;
    while done < bytes.len() {
        match file.write_at(&bytes[done..], offset + done as u64) {
            Ok(0) => return (done, Some(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

fn enable_direct(file: &File) -> bool {
    use rustix::fs::OFlags;
    match rustix::fs::fcntl_getfl(file) {
        Ok(flags) => rustix::fs::fcntl_setfl(file, flags | OFlags::DIRECT).is_ok(),
        Err(_) => false,
    }
}

fn disable_direct(file: &File) {
    use rustix::fs::OFlags;
    if let Ok(flags) = rustix::fs::fcntl_getfl(file) {
        let _ = rustix::fs::fcntl_setfl(file, flags - OFlags::DIRECT);
    }
}

/// A session's sink as the writer keeps it.
struct SessionSink {
    counters: Arc<SessionCounters>,
    kind: SinkKind,
    /// Data buffers handed to log files, counted once per sequence number.
    buffers_written: u64,
    /// Sequence numbers below this one have been seen.
    next_new_seq: u64,
    /// Bytes of the files already finished (rotation, switch).
    bytes_finished: u64,
}

enum SinkKind {
    File(Box<FileSink>),
    Memory {
        held: VecDeque<BufferBuilder>,
        keep: usize,
    },
    Discard,
}

struct FileSink {
    /// None once a new file of a series could not be created.
    log: Option<OpenLog>,
    layout: FileLayout,
    first_seq: u64,
    first_slot: u64,
    series: Option<Box<Series>>,
    buffer_size: u64,
    /// Why the last file of the series could not be created, until a later
    /// one takes a buffer: the error then reads as past.
    create_failure: Option<String>,
}

impl FileSink {
    /// The slot buffer `seq` goes in, or None if the file has no room for it.
    fn slot_for(&self, seq: u64) -> Option<u64> {
        let rel = seq.checked_sub(self.first_seq)?;
        self.log.as_ref()?;
        match self.layout {
            FileLayout::Sequential { data_slots } => match data_slots {
                Some(n) if rel >= n => None,
                _ => Some(self.first_slot + rel),
            },
            FileLayout::Circular { data_slots } => Some(rel % data_slots),
        }
    }

    /// The slot for the trailer: after the last data slot written, or the
    /// slot reserved for it.
    fn trailer_slot(&self, next_new_seq: u64) -> u64 {
        let written = next_new_seq.saturating_sub(self.first_seq);
        match self.layout {
            FileLayout::Sequential { data_slots } => {
                self.first_slot + written.min(data_slots.unwrap_or(u64::MAX))
            }
            FileLayout::Circular { data_slots } => data_slots,
        }
    }

    /// Goes on in a fresh `file`, whose first buffer is `first_seq`.
    fn begin(
        &mut self,
        file: File,
        data_offset: u64,
        first_seq: u64,
        counters: &Arc<SessionCounters>,
    ) {
        self.log = Some(OpenLog::new(
            file,
            data_offset,
            self.buffer_size,
            counters.clone(),
        ));
        self.first_seq = first_seq;
        self.first_slot = 0;
        counters.files.fetch_add(1, Ordering::Relaxed);
    }
}

impl SessionSink {
    fn new(setup: SinkSetup, counters: Arc<SessionCounters>) -> SessionSink {
        let (kind, first_seq) = match setup {
            SinkSetup::File {
                file,
                data_offset,
                buffer_size,
                layout,
                first_seq,
                first_slot,
                series,
            } => {
                counters.files.store(1, Ordering::Relaxed);
                let log = OpenLog::new(file, data_offset, buffer_size, counters.clone());
                let sink = FileSink {
                    log: Some(log),
                    layout,
                    first_seq,
                    first_slot,
                    create_failure: None,
                    series,
                    buffer_size,
                };
                (SinkKind::File(Box::new(sink)), first_seq)
            }
            SinkSetup::Memory { keep } => (
                SinkKind::Memory {
                    held: VecDeque::new(),
                    keep,
                },
                0,
            ),
            SinkSetup::Discard => (SinkKind::Discard, 0),
        };
        SessionSink {
            counters,
            kind,
            buffers_written: 0,
            next_new_seq: first_seq,
            bytes_finished: 0,
        }
    }

    /// Takes a full buffer; returns it when the sink is done with it.
    fn write(&mut self, seq: u64, buffer: BufferBuilder, clock: &Clock) -> Option<BufferBuilder> {
        match &mut self.kind {
            SinkKind::Memory { held, keep } => {
                held.push_back(buffer);
                if held.len() > *keep {
                    self.counters
                        .buffers_overwritten
                        .fetch_add(1, Ordering::Relaxed);
                    return held.pop_front();
                }
                None
            }
            SinkKind::Discard => Some(buffer),
            SinkKind::File(_) => {
                self.put(seq, buffer.bytes(), clock);
                Some(buffer)
            }
        }
    }

    /// Writes (a copy of) buffer `seq` to the log file, if there is one.
    fn put(&mut self, seq: u64, bytes: &[u8], clock: &Clock) {
        let SinkKind::File(f) = &mut self.kind else {
            return;
        };
        if let (
            Some(series),
            FileLayout::Sequential {
                data_slots: Some(n),
            },
        ) = (&f.series, f.layout)
        {
            if seq >= f.first_seq + n && series.index < u32::MAX {
                self.next_file(seq, clock);
            }
        }
        let SinkKind::File(f) = &mut self.kind else {
            return;
        };
        let first_time = seq >= self.next_new_seq;
        self.next_new_seq = self.next_new_seq.max(seq + 1);
        match f.slot_for(seq) {
            Some(slot) => {
                if let Some(log) = &mut f.log {
                    log.put(slot, bytes);
                }
                if first_time {
                    self.buffers_written += 1;
                    if let FileLayout::Circular { data_slots } = f.layout {
                        if seq - f.first_seq >= data_slots {
                            self.counters
                                .buffers_overwritten
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            None if first_time => {
                self.counters
                    .log_buffers_lost
                    .fetch_add(1, Ordering::Relaxed);
                if f.log.is_some() {
                    self.counters.set_error(
                        "the log file reached its maximum size; later buffers are counted as log buffers lost".into(),
                    );
                }
            }
            None => {}
        }
    }

    /// Writes staged buffers and publishes the counters.
    fn flush(&mut self) {
        if let SinkKind::File(f) = &mut self.kind {
            if let Some(log) = &mut f.log {
                log.flush();
            }
        }
        self.publish();
    }

    fn publish(&self) {
        let c = &self.counters;
        c.buffers_written
            .store(self.buffers_written, Ordering::Relaxed);
        let current = match &self.kind {
            SinkKind::File(f) => f.log.as_ref().map_or(0, |l| l.end),
            _ => 0,
        };
        c.bytes_written
            .store(self.bytes_finished + current, Ordering::Relaxed);
    }

    /// Writes the trailer (sequence `seq`) of the current file and syncs it.
    /// It reports `at_end`'s event and loss counts if given (a switch), the
    /// counters as they are now otherwise.
    fn finish_file(&mut self, seq: u64, clock: &Clock, at_end: Option<Counters>) {
        let next_new_seq = self.next_new_seq;
        let SinkKind::File(f) = &mut self.kind else {
            return;
        };
        let slot = f.trailer_slot(next_new_seq);
        let Some(mut log) = f.log.take() else {
            return;
        };
        log.flush();
        // The trailer reports the counters as they are now.
        self.counters
            .buffers_written
            .store(self.buffers_written, Ordering::Relaxed);
        let now = self.counters.snapshot();
        let counters = match at_end {
            // Buffers are counted here, in order: those of the old file are
            // exactly the ones written so far.
            Some(c) => Counters {
                buffers_written: now.buffers_written,
                log_buffers_lost: now.log_buffers_lost,
                ..c
            },
            None => now,
        };
        finish(&mut log, slot, seq, clock, &counters);
        self.bytes_finished += log.end;
    }

    /// Moves a new-file series on to its next file, whose first buffer is `seq`.
    fn next_file(&mut self, seq: u64, clock: &Clock) {
        self.finish_file(seq, clock, None);
        let SinkKind::File(f) = &mut self.kind else {
            return;
        };
        let Some(series) = &mut f.series else {
            return;
        };
        series.index += 1;
        match open_series_file(series) {
            Ok((file, data_offset)) => {
                f.begin(file, data_offset, seq, &self.counters);
                // The series goes on after a file it could not create: the
                // first buffer this file takes makes that error read as past.
                if let Some(log) = &mut f.log {
                    log.failure = f.create_failure.take();
                }
            }
            Err(e) => {
                let failure = format!(
                    "cannot create log file {}: {e}; later buffers are counted as log buffers lost",
                    rotated_file_name(&series.pattern, series.index)
                );
                self.counters.set_error(failure.clone());
                f.create_failure = Some(failure);
                // The buffers this file would have held are lost (counted
                // as they come), and the next file starts where it would
                // have: the drain describes everything again in each
                // file's first buffer, so a file started one buffer later
                // would hold events whose types it never describes.
                f.first_seq = seq;
            }
        }
    }

    /// Finishes the current file and goes on in `file`.
    fn switch(&mut self, seq: u64, file: File, first: (u64, u64), at: Counters, clock: &Clock) {
        let (data_offset, first_seq) = first;
        self.finish_file(seq, clock, Some(at));
        if let SinkKind::File(f) = &mut self.kind {
            f.begin(file, data_offset, first_seq, &self.counters);
        }
    }
}

/// Creates the current file of a series (never through a symlink, never
/// over an existing file) and writes its header.
pub(crate) fn open_series_file(series: &Series) -> std::io::Result<(File, u64)> {
    use rustix::fs::{Mode, OFlags};
    let path = rotated_file_name(&series.pattern, series.index);
    let name = path.rsplit('/').next().unwrap_or(&path);
    // The daemon may be root; it creates a file only where the controller
    // could have, checked again for every file of the series.
    let st = rustix::fs::fstat(&series.dir)?;
    if !series
        .controller
        .may_write_dir(st.st_uid, st.st_gid, st.st_mode)
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "uid {} may not create files in the log directory",
                series.controller.uid
            ),
        ));
    }
    let fd = rustix::fs::openat(
        &series.dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o640),
    )?;
    if let Some((uid, gid)) = series.owner {
        // A root daemon creates the files of a user's session: they belong
        // to that user, as the first file (which the user created) does.
        // A file the daemon could not give away would be root's, in the
        // user's directory, out of the user's reach: it is removed, and
        // the failure stops the series as any other failure to create.
        // std's fchown goes through the C library (rustix makes the system
        // call itself), so that this failure can be provoked where it
        // cannot happen for real, with a shim preloaded into the daemon.
        if let Err(e) = std::os::unix::fs::fchown(&fd, Some(uid), Some(gid)) {
            let _ = rustix::fs::unlinkat(&series.dir, name, rustix::fs::AtFlags::empty());
            return Err(std::io::Error::new(
                e.kind(),
                format!("cannot give the new log file to uid {uid}: {e}"),
            ));
        }
    }
    // The name must survive a power loss as the data synced at the file's
    // end does; a directory that refuses fsync is as durable as it gets.
    let _ = rustix::fs::fsync(&series.dir);
    let file = File::from(fd);
    let mut header = series.header.clone();
    header.file_index = series.index;
    let bytes = header.encode();
    file.write_all_at(&bytes, 0)?;
    Ok((file, header.data_offset()))
}

/// Writes an in-memory session's kept buffers and its current one to a
/// snapshot file. Returns the buffers and bytes written.
fn snapshot(
    sink: &SessionSink,
    file: &File,
    header: &[u8],
    partial: Option<&[u8]>,
    next_seq: u64,
    clock: &Clock,
) -> std::io::Result<(u64, u64)> {
    let SinkKind::Memory { held, .. } = &sink.kind else {
        return Err(std::io::Error::other(
            "the session keeps no buffers in memory",
        ));
    };
    file.write_all_at(header, 0)?;
    let (h, data_offset) = ferret_format::FileHeader::decode_untrusted(header)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let size = h.buffer_size as u64;
    let mut slot = 0u64;
    let mut end = data_offset;
    for bytes in held.iter().map(BufferBuilder::bytes).chain(partial) {
        let at = data_offset + slot * size;
        file.write_all_at(bytes, at)?;
        end = at + bytes.len() as u64;
        slot += 1;
    }
    let buffers = slot;
    if let Some(bytes) = trailer_bytes(&sink.counters.snapshot(), size, next_seq, clock) {
        let at = data_offset + slot * size;
        file.write_all_at(&bytes, at)?;
        end = at + bytes.len() as u64;
    }
    file.sync_all()?;
    Ok((buffers, end))
}

/// How long a session's writer may spend on one command before the
/// session's `last_error` says that its log file is stalled.
const STALL_REPORT: Duration = Duration::from_secs(1);

/// How `last_error` begins while a session's file is stalled.
const STALLED: &str = "writing the log file has not returned";

/// One session's writer thread, as the router sees it.
struct SessionWriter {
    cmds: Sender<WriteCmd>,
    counters: Arc<SessionCounters>,
    /// Partial-buffer copies sent and not yet written.
    copies_queued: Arc<AtomicU64>,
    /// When the command being handled began (ms since `epoch`, plus one),
    /// 0 while the thread waits for work.
    busy_since: Arc<AtomicU64>,
    /// Set once the stall has been reported in `last_error`.
    stall_reported: Arc<AtomicBool>,
}

/// Runs the writer router until its command channel closes.
///
/// The router does no file I/O: it hands each session's commands to that
/// session's own writer thread, so that a log file whose writes hang (a
/// hung mount, a stalled disk) holds up only its own session. The queue to
/// a session's writer stays bounded without ever blocking the drain: full
/// buffers come from the session's fixed pool (when none is free the drain
/// counts the events it cannot place as `no-buffer` losses, with LOST
/// records), at most one partial-buffer copy is queued (a later copy of the
/// same buffer, or the buffer written whole, supersedes a skipped one, so
/// skipping loses nothing), and the rest are control commands.
pub(crate) fn run(
    cmds: Receiver<WriteCmd>,
    returned: Sender<(SessionKey, BufferBuilder)>,
    events: Sender<ControlEvent>,
    clock: Clock,
) {
    let epoch = Instant::now();
    let mut writers: HashMap<SessionKey, SessionWriter> = HashMap::new();
    loop {
        let cmd = match cmds.recv_timeout(STALL_REPORT / 2) {
            Ok(cmd) => Some(cmd),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        report_stalls(&writers, epoch);
        let Some(cmd) = cmd else { continue };
        let key = match &cmd {
            WriteCmd::Open { key, .. }
            | WriteCmd::Write { key, .. }
            | WriteCmd::WriteCopy { key, .. }
            | WriteCmd::Flushed { key, .. }
            | WriteCmd::Switch { key, .. }
            | WriteCmd::Snapshot { key, .. }
            | WriteCmd::Finish { key, .. } => *key,
        };
        match cmd {
            WriteCmd::Open {
                key,
                sink,
                counters,
            } => {
                let (tx, rx) = crossbeam_channel::unbounded();
                let w = SessionWriter {
                    cmds: tx,
                    counters: counters.clone(),
                    copies_queued: Arc::new(AtomicU64::new(0)),
                    busy_since: Arc::new(AtomicU64::new(0)),
                    stall_reported: Arc::new(AtomicBool::new(false)),
                };
                let thread = SessionThread {
                    cmds: rx,
                    sink: SessionSink::new(sink, counters),
                    returned: returned.clone(),
                    events: events.clone(),
                    clock,
                    copies_queued: w.copies_queued.clone(),
                    busy_since: w.busy_since.clone(),
                    stall_reported: w.stall_reported.clone(),
                    epoch,
                };
                let spawned = std::thread::Builder::new()
                    .name(format!("ferretd-writer-{}", key.0))
                    .spawn(move || thread.run());
                match spawned {
                    Ok(_) => {
                        writers.insert(key, w);
                    }
                    Err(e) => {
                        // Without a thread the session has no sink: its
                        // buffers go back unwritten, as for a session
                        // that has stopped, and the error says so.
                        w.counters.set_error(format!(
                            "cannot start the session's writer thread: {e}; no buffer of this session is written"
                        ));
                    }
                }
            }
            WriteCmd::Write { key, seq, buffer } => match writers.get(&key) {
                Some(w) => {
                    let _ = w.cmds.send(WriteCmd::Write { key, seq, buffer });
                }
                None => {
                    let _ = returned.send((key, buffer));
                }
            },
            WriteCmd::WriteCopy { key, seq, bytes } => {
                if let Some(w) = writers.get(&key) {
                    // A copy still queued means the file is behind: this
                    // copy would only queue more memory behind it.
                    if w.copies_queued.load(Ordering::Acquire) == 0 {
                        w.copies_queued.fetch_add(1, Ordering::AcqRel);
                        let _ = w.cmds.send(WriteCmd::WriteCopy { key, seq, bytes });
                    }
                }
            }
            WriteCmd::Flushed { key, token } => match writers.get(&key) {
                Some(w) => {
                    let _ = w.cmds.send(WriteCmd::Flushed { key, token });
                }
                None => {
                    let _ = events.send(ControlEvent::Flushed { key, token });
                }
            },
            WriteCmd::Snapshot { token, .. } if !writers.contains_key(&key) => {
                let _ = events.send(ControlEvent::Snapshotted {
                    token,
                    result: Err("the session has stopped".into()),
                });
            }
            WriteCmd::Finish { key, seq } => match writers.remove(&key) {
                // The thread ends after the finish; dropping the sender
                // here lets it see the channel close.
                Some(w) => {
                    let _ = w.cmds.send(WriteCmd::Finish { key, seq });
                }
                None => {
                    let _ = events.send(ControlEvent::Stopped { key });
                }
            },
            other => {
                if let Some(w) = writers.get(&key) {
                    let _ = w.cmds.send(other);
                }
            }
        }
    }
}

/// Marks in `last_error` each session whose writer has spent longer than
/// [`STALL_REPORT`] on one command, since the stalled thread itself cannot.
fn report_stalls(writers: &HashMap<SessionKey, SessionWriter>, epoch: Instant) {
    let now = epoch.elapsed().as_millis() as u64 + 1;
    for w in writers.values() {
        let since = w.busy_since.load(Ordering::Acquire);
        if since != 0
            && now.saturating_sub(since) >= STALL_REPORT.as_millis() as u64
            && !w.stall_reported.swap(true, Ordering::AcqRel)
        {
            w.counters.set_error(format!(
                "{STALLED} for {} ms (a stalled file system?); events that find no free buffer meanwhile are counted as lost",
                now - since
            ));
        }
    }
}

/// What one session's writer thread owns.
struct SessionThread {
    cmds: Receiver<WriteCmd>,
    sink: SessionSink,
    returned: Sender<(SessionKey, BufferBuilder)>,
    events: Sender<ControlEvent>,
    clock: Clock,
    copies_queued: Arc<AtomicU64>,
    busy_since: Arc<AtomicU64>,
    stall_reported: Arc<AtomicBool>,
    epoch: Instant,
}

impl SessionThread {
    /// Handles the session's commands until its `Finish` (or the router's
    /// end).
    fn run(mut self) {
        crate::msg::raise_priority();
        loop {
            let cmd = match self.cmds.try_recv() {
                Ok(cmd) => cmd,
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => {
                    // Nothing more queued: write what is staged before waiting.
                    self.busy(|t| t.sink.flush());
                    match self.cmds.recv() {
                        Ok(cmd) => cmd,
                        Err(_) => return,
                    }
                }
            };
            if !self.busy(|t| t.handle(cmd)) {
                return;
            }
        }
    }

    /// Runs `f` with the thread marked busy, so that the router can see a
    /// stall; when a reported stall ends, `last_error` says so.
    fn busy<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let start = self.epoch.elapsed().as_millis() as u64 + 1;
        self.busy_since.store(start, Ordering::Release);
        let r = f(self);
        self.busy_since.store(0, Ordering::Release);
        if self.stall_reported.swap(false, Ordering::AcqRel) {
            let took = self.epoch.elapsed().as_millis() as u64 + 1 - start;
            // A write that failed after its stall has said so instead.
            if let Some(e) = self.sink.counters.error().filter(|e| e.contains(STALLED)) {
                self.sink
                    .counters
                    .set_error(format!("{e} (past: the write returned after {took} ms)"));
            }
        }
        r
    }

    /// Handles one command; false once the session is finished.
    fn handle(&mut self, cmd: WriteCmd) -> bool {
        let clock = &self.clock;
        let sink = &mut self.sink;
        match cmd {
            WriteCmd::Open { .. } => {}
            WriteCmd::Write { key, seq, buffer } => {
                if let Some(buffer) = sink.write(seq, buffer, clock) {
                    let _ = self.returned.send((key, buffer));
                }
            }
            WriteCmd::WriteCopy { seq, bytes, .. } => {
                sink.put(seq, &bytes, clock);
                self.copies_queued.fetch_sub(1, Ordering::AcqRel);
            }
            WriteCmd::Flushed { key, token } => {
                sink.flush();
                let _ = self.events.send(ControlEvent::Flushed { key, token });
            }
            WriteCmd::Switch {
                seq,
                file,
                data_offset,
                first_seq,
                at_switch,
                ..
            } => {
                sink.switch(seq, file, (data_offset, first_seq), at_switch, clock);
            }
            WriteCmd::Snapshot {
                file,
                header,
                partial,
                next_seq,
                token,
                ..
            } => {
                let result = snapshot(sink, &file, &header, partial.as_deref(), next_seq, clock)
                    .map_err(|e| e.to_string());
                let _ = self
                    .events
                    .send(ControlEvent::Snapshotted { token, result });
            }
            WriteCmd::Finish { key, seq } => {
                sink.finish_file(seq, clock, None);
                sink.publish();
                sink.counters.buffers_in_use.store(0, Ordering::Relaxed);
                sink.counters.free_buffers.store(0, Ordering::Relaxed);
                let _ = self.events.send(ControlEvent::Stopped { key });
                return false;
            }
        }
        true
    }
}

/// The trailer buffer with a session's counters `c`.
fn trailer_bytes(c: &Counters, buffer_size: u64, seq: u64, clock: &Clock) -> Option<Vec<u8>> {
    let end = clock.anchor();
    let trailer = Trailer {
        events: c.events,
        events_lost: c.events_lost,
        lost_ring_full: c.lost_ring_full,
        lost_no_buffer: c.lost_no_buffer,
        lost_other: c.lost_other,
        buffers_written: c.buffers_written,
        log_buffers_lost: c.log_buffers_lost,
        end_ticks: end.ticks,
        end_mono_ns: end.mono_ns,
        end_unix_ns: end.unix_ns,
    };
    let mut rec = Vec::new();
    let mut buffer = BufferBuilder::new(buffer_size as usize);
    if record::encode_trailer(&trailer.to_values(), &mut rec).is_ok() && buffer.push(&rec) {
        Some(buffer.seal(buffer_kind::TRAILER, seq).to_vec())
    } else {
        None
    }
}

/// Writes the trailer in `slot` after everything else and syncs the file.
fn finish(log: &mut OpenLog, slot: u64, seq: u64, clock: &Clock, counters: &Counters) {
    log.flush();
    if let Some(bytes) = trailer_bytes(counters, log.buffer_size, seq, clock) {
        log.put(slot, &bytes);
        log.flush();
    }
    // What `stop` reports as written must survive power loss: the session
    // becomes STOPPED only after this returns, and `files_synced` shows
    // that it succeeded.
    match log.file.sync_all() {
        Ok(()) => {
            log.counters.files_synced.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => log
            .counters
            .set_error(format!("syncing the log file failed: {e}")),
    }
}
