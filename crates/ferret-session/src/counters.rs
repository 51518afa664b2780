//! A session's counters, shared by the threads that move its events.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ferret_abi::proto::Counters;

/// Counters one session keeps. The drain thread writes the event and loss
/// counters, the writer thread the buffer and byte counters; the control
/// thread reads them for `query`, `list` and the trailer. Each counter has
/// one writing thread, so relaxed stores suffice.
#[derive(Debug, Default)]
pub struct SessionCounters {
    /// Events written into buffers.
    pub events: AtomicU64,
    /// Lost: a provider ring was full.
    pub lost_ring_full: AtomicU64,
    /// Lost: no free buffer.
    pub lost_no_buffer: AtomicU64,
    /// Lost: any other reason.
    pub lost_other: AtomicU64,
    /// Data buffers written to the log file.
    pub buffers_written: AtomicU64,
    /// Buffer writes that failed.
    pub log_buffers_lost: AtomicU64,
    /// Bytes written to the log file.
    pub bytes_written: AtomicU64,
    /// Buffers allocated now.
    pub buffers_in_use: AtomicU64,
    /// Allocated buffers free for new events.
    pub free_buffers: AtomicU64,
    /// Buffers real-time consumers could not take.
    pub rt_buffers_lost: AtomicU64,
    /// Buffers replaced by newer ones in circular and in-memory modes.
    pub buffers_overwritten: AtomicU64,
    /// Log files written.
    pub files: AtomicU64,
    /// Log files synced to stable storage (fsync succeeded after the last
    /// write to them).
    pub files_synced: AtomicU64,
    /// Events lost per provider name (written by the drain).
    pub provider_lost: Mutex<Vec<(String, u64)>>,
    /// The last error writing the log file.
    pub last_error: Mutex<Option<String>>,
}

impl SessionCounters {
    /// Records a write error.
    pub fn set_error(&self, e: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    /// The last write error, if any.
    pub fn error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Events lost per provider name.
    pub fn provider_lost(&self) -> Vec<(String, u64)> {
        self.provider_lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the per-provider loss counts.
    pub fn set_provider_lost(&self, lost: Vec<(String, u64)>) {
        *self.provider_lost.lock().unwrap_or_else(|p| p.into_inner()) = lost;
    }

    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self) -> Counters {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let ring = get(&self.lost_ring_full);
        let buffer = get(&self.lost_no_buffer);
        let other = get(&self.lost_other);
        Counters {
            events: get(&self.events),
            events_lost: ring.saturating_add(buffer).saturating_add(other),
            lost_ring_full: ring,
            lost_no_buffer: buffer,
            lost_other: other,
            buffers_written: get(&self.buffers_written),
            log_buffers_lost: get(&self.log_buffers_lost),
            bytes_written: get(&self.bytes_written),
            buffers_in_use: get(&self.buffers_in_use),
            free_buffers: get(&self.free_buffers),
            rt_buffers_lost: get(&self.rt_buffers_lost),
            buffers_overwritten: get(&self.buffers_overwritten),
            files: get(&self.files),
        }
    }
}
