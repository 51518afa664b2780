//! The writer thread: writes sealed buffers into their slots in each
//! session's log file, writes the trailer and syncs at stop.
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

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use ferret_abi::record;
use ferret_format::{BufferBuilder, Trailer, buffer_kind};
use ferret_session::{SessionCounters, SessionKey};

use crate::clock::Clock;
use crate::control::Event;

/// What the drain thread (and the control thread, for `Open`) asks the writer.
#[derive(Debug)]
pub(crate) enum WriteCmd {
    /// A session's log file, its header already written.
    Open {
        key: SessionKey,
        file: File,
        data_offset: u64,
        buffer_size: u64,
        counters: Arc<SessionCounters>,
    },
    /// A full buffer, sealed; it goes back to the drain afterwards.
    Write {
        key: SessionKey,
        seq: u64,
        buffer: BufferBuilder,
    },
    /// A copy of a partly filled buffer, sealed.
    WriteCopy {
        key: SessionKey,
        seq: u64,
        bytes: Vec<u8>,
    },
    /// Everything sent before this is written: tell the control thread.
    Flushed { key: SessionKey, token: u64 },
    /// Write the trailer in slot `seq`, sync, close, and tell the control thread.
    Finish { key: SessionKey, seq: u64 },
}

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
}

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
            let result = self.file.write_all_at(&stage.buf.as_mut()[..len], offset);
            match result {
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
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
        let result = self.file.write_all_at(bytes, self.slot_offset(first));
        self.account(first, count, bytes.len(), result);
    }

    fn account(&mut self, first: u64, count: u64, len: usize, result: std::io::Result<()>) {
        match result {
            Ok(()) => {
                self.next_new_slot = self.next_new_slot.max(first + count);
                self.end = self.end.max(self.slot_offset(first) + len as u64);
                self.counters
                    .bytes_written
                    .store(self.end, Ordering::Relaxed);
            }
            Err(e) => {
                self.counters
                    .log_buffers_lost
                    .fetch_add(count, Ordering::Relaxed);
                self.counters.set_error(format!(
                    "writing buffers {first}..{} failed: {e}",
                    first + count
                ));
            }
        }
    }

    /// Data slots written, as the trailer and counters report them.
    fn publish(&self) {
        self.counters
            .buffers_written
            .store(self.next_new_slot, Ordering::Relaxed);
    }
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

/// Runs the writer until its command channel closes.
pub(crate) fn run(
    cmds: Receiver<WriteCmd>,
    returned: Sender<(SessionKey, BufferBuilder)>,
    events: Sender<Event>,
    clock: Clock,
) {
    crate::drain::raise_priority();
    let mut logs: HashMap<SessionKey, OpenLog> = HashMap::new();
    loop {
        let cmd = match cmds.try_recv() {
            Ok(cmd) => cmd,
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {
                // Nothing more queued: write what is staged before waiting.
                for log in logs.values_mut() {
                    log.flush();
                    log.publish();
                }
                match cmds.recv() {
                    Ok(cmd) => cmd,
                    Err(_) => return,
                }
            }
        };
        match cmd {
            WriteCmd::Open {
                key,
                file,
                data_offset,
                buffer_size,
                counters,
            } => {
                logs.insert(key, OpenLog::new(file, data_offset, buffer_size, counters));
            }
            WriteCmd::Write { key, seq, buffer } => {
                if let Some(log) = logs.get_mut(&key) {
                    log.put(seq, buffer.bytes());
                }
                let _ = returned.send((key, buffer));
            }
            WriteCmd::WriteCopy { key, seq, bytes } => {
                if let Some(log) = logs.get_mut(&key) {
                    log.put(seq, &bytes);
                }
            }
            WriteCmd::Flushed { key, token } => {
                if let Some(log) = logs.get_mut(&key) {
                    log.flush();
                    log.publish();
                }
                let _ = events.send(Event::Flushed { key, token });
            }
            WriteCmd::Finish { key, seq } => {
                if let Some(mut log) = logs.remove(&key) {
                    finish(&mut log, seq, &clock);
                }
                let _ = events.send(Event::Stopped { key });
            }
        }
    }
}

/// Writes the trailer after everything else and syncs the file.
fn finish(log: &mut OpenLog, seq: u64, clock: &Clock) {
    log.flush();
    log.publish();
    let end = clock.anchor();
    let c = log.counters.snapshot();
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
    let mut buffer = BufferBuilder::new(log.buffer_size as usize);
    if record::encode_trailer(&trailer.to_values(), &mut rec).is_ok() && buffer.push(&rec) {
        let bytes = buffer.seal(buffer_kind::TRAILER, seq).to_vec();
        log.put(seq, &bytes);
        log.flush();
    }
    // What `stop` reports as written must survive power loss.
    if let Err(e) = log.file.sync_all() {
        log.counters
            .set_error(format!("syncing the log file failed: {e}"));
    }
    log.counters.buffers_in_use.store(0, Ordering::Relaxed);
}
