//! Charging losses: what providers counted as dropped (in their per-slot
//! and process-wide counters), what the drain could not frame, and what a
//! region left unconsumed when it closed, each charged to the sessions that
//! took events from the region, as a count and as a LOST record in the log.

use std::sync::atomic::Ordering;

use crossbeam_channel::Sender;
use ferret_abi::record::{LostMeta, LostReason};
use ferret_abi::shm::RING_FREE;
use ferret_session::{RegionId, RouteTable};

use super::Drain;
use super::copy::{DrainRegion, listeners_of};
use super::describe::describe_provider;
use super::session::DrainSession;
use crate::msg::WriteCmd;

impl Drain {
    /// Reads every region's drop counters now and charges what they added
    /// since the last reading to the sessions of the routes in force. It is
    /// called right before the routes or the session list change, so that a
    /// drop is charged by the routes of its time as closely as the drain
    /// can know it (see docs/RELIABILITY.md, "Promises: no silent loss").
    pub(super) fn charge_drops(&mut self) {
        let Drain {
            regions,
            sessions,
            routes,
            writer,
            epoch,
            ..
        } = self;
        for region in regions.iter_mut() {
            // The listeners are indexes into the session list, which may
            // have changed since the last pass.
            if region.listeners_epoch != *epoch {
                region.listeners = listeners_of(region.shm.id, routes, sessions);
                region.listeners_epoch = *epoch;
            }
            check_lost(region, sessions, routes, writer);
        }
    }

    /// Counts what the drain had to leave in the rings of region `id`,
    /// which is about to go: records of a provider slot the process never
    /// registered (a registered one has routes by now, as the control
    /// thread sends them before the close). The count is of rings, as the
    /// records cannot be framed as events of a known provider.
    pub(super) fn charge_unconsumed(&mut self, id: RegionId) {
        let Some(region) = self.regions.iter().find(|r| r.shm.id == id) else {
            return;
        };
        let left = (0..region.shm.layout.params.ring_count as usize)
            .filter(|&i| {
                let desc = region.shm.ring(i);
                desc.state.load(Ordering::Acquire) != RING_FREE
                    && desc.head.load(Ordering::Acquire) != region.rings[i].tail
            })
            .count() as u64;
        if left > 0 {
            charge_region(
                region,
                &mut self.sessions,
                &self.writer,
                LostReason::Corrupt,
                left,
                u32::MAX,
            );
        }
    }
}

/// Charges events a provider dropped to the sessions that wanted them.
pub(super) fn check_lost(
    region: &mut DrainRegion,
    sessions: &mut [DrainSession],
    routes: &RouteTable,
    writer: &Sender<WriteCmd>,
) {
    let id = region.shm.id;
    let pid = region.shm.pid;
    for slot_routes in routes.region(id) {
        let now = region.shm.lost_counter(slot_routes.slot);
        // Indexed by slot (below ENABLE_SLOTS, as the registry checked), so
        // that a pass over a region of many providers costs each one once.
        let index = slot_routes.slot as usize;
        if region.lost_seen.len() <= index {
            region.lost_seen.resize(index + 1, 0);
        }
        let seen = &mut region.lost_seen[index];
        // A counter that goes backwards was not written by our library;
        // take the new value as the baseline and charge nothing.
        let delta = now.saturating_sub(*seen);
        *seen = now;
        if delta == 0 {
            continue;
        }
        for (key, _) in &slot_routes.sessions {
            if let Some(s) = sessions.iter_mut().find(|s| s.key == *key) {
                describe_provider(s, region, routes, slot_routes.slot, writer);
                let lost = LostMeta {
                    source: id.0 as u32,
                    provider: slot_routes.slot,
                    reason: LostReason::RingFull,
                    pid,
                    count: delta,
                };
                s.lost(lost, Some(&slot_routes.name), writer);
            }
        }
    }
    let p = &region.shm.header().provider;
    let now = [
        p.lost_no_ring.load(Ordering::Relaxed),
        p.lost_no_metadata.load(Ordering::Relaxed),
        p.lost_invalid.load(Ordering::Relaxed),
    ];
    let reasons = [
        LostReason::NoRing,
        LostReason::NoMetadata,
        LostReason::Invalid,
    ];
    for k in 0..3 {
        let delta = now[k].saturating_sub(region.process_lost_seen[k]);
        region.process_lost_seen[k] = now[k];
        if delta > 0 {
            charge_region(region, sessions, writer, reasons[k], delta, u32::MAX);
        }
    }
}

/// Charges `count` losses to every session that takes events from `region`.
pub(super) fn charge_region(
    region: &DrainRegion,
    sessions: &mut [DrainSession],
    writer: &Sender<WriteCmd>,
    reason: LostReason,
    count: u64,
    provider: u32,
) {
    for &si in &region.listeners {
        if let Some(s) = sessions.get_mut(si) {
            let lost = LostMeta {
                source: region.shm.id.0 as u32,
                provider,
                reason,
                pid: region.shm.pid,
                count,
            };
            s.lost(lost, None, writer);
        }
    }
}
