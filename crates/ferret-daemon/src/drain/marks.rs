//! Recovery marks: where each session buffer's records from a ring begin,
//! and publishing, per ring descriptor, the oldest of them over every buffer
//! not yet written, so that `ferret recover` can find in a killed daemon's
//! rings every record it held but had not written.

use std::sync::atomic::Ordering;

use ferret_session::RegionId;

use super::copy::DrainRegion;
use super::session::DrainSession;

/// Where a session buffer's records from one ring begin: (region, ring,
/// position, time base before it, thread). The oldest of these over every
/// buffer not yet written is what a killed daemon's rings must keep for
/// `ferret recover` (see `publish_recovery_marks`).
pub(super) type Mark = (RegionId, usize, u64, u64, u32);

/// Publishes, in each ring descriptor of `region`, where a recovery must
/// start so as to find every record the daemon holds in a session buffer it
/// has not written yet: the oldest mark of that ring over every session's
/// current and in-flight buffers, or the tail when there is none. Records
/// between that position and the tail are still in the ring unless the
/// producer has lapped it since, which `ferret recover` detects.
pub(super) fn publish_recovery_marks(region: &mut DrainRegion, sessions: &[DrainSession]) {
    let id = region.shm.id;
    region.marks_scratch.iter_mut().for_each(|k| *k = None);
    for s in sessions {
        for m in s.marks.iter().chain(s.in_flight.iter().flatten()) {
            if m.0 != id {
                continue;
            }
            if let Some(k) = region.marks_scratch.get_mut(m.1) {
                if k.is_none_or(|(pos, _, _)| m.2 < pos) {
                    *k = Some((m.2, m.3, m.4));
                }
            }
        }
    }
    for (i, oldest) in region.marks_scratch.iter().enumerate() {
        let desc = region.shm.ring(i);
        let cursor = &region.rings[i];
        let value = oldest.unwrap_or_else(|| {
            let ticks = if cursor.time.known {
                cursor.time.ticks
            } else {
                u64::MAX
            };
            let tid = cursor
                .tid
                .unwrap_or_else(|| desc.tid.load(Ordering::Relaxed));
            (cursor.tail, ticks, tid)
        });
        if region.marks_published[i] == value {
            continue;
        }
        region.marks_published[i] = value;
        let (from, ticks, tid) = value;
        desc.keep_ticks.store(ticks, Ordering::Relaxed);
        desc.keep_tid.store(u64::from(tid), Ordering::Relaxed);
        desc.keep_from.store(from, Ordering::Release);
    }
}
