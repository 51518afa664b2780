//! Describing a ring's events to a session: the PROCESS, PROVIDER and event
//! type records a session's stream needs before an event of a type, written
//! once per stream (and again after the session forgets them), and the event
//! types parsed from a provider process's metadata area that they are taken
//! from.

use std::sync::atomic::Ordering;

use crossbeam_channel::Sender;
use ferret_abi::record::{self, EventTypeMeta, ProcessMeta, ProviderMeta, Record};
use ferret_session::RouteTable;

use super::copy::DrainRegion;
use super::session::DrainSession;
use crate::msg::WriteCmd;
use crate::shm::ReadBytes;

/// An event type the provider process described in its metadata area, with
/// what the drain has worked out about it for the routes in force.
pub(super) struct TypeSlot {
    pub(super) meta: EventTypeMeta,
    /// The epoch `wants` and `ready` were computed for.
    pub(super) epoch: u64,
    /// Per listener of the region: does that session take this type?
    pub(super) wants: Vec<bool>,
    /// Per listener: is the type described in that session's log file yet?
    pub(super) ready: Vec<bool>,
    /// Whether the routes of `epoch` know the type's provider slot.
    pub(super) routed: bool,
}

/// Room kept for the metadata a first event of a type needs.
pub(super) const META_ROOM: usize = 4096;

/// Writes the metadata a session's file needs for one event type (process,
/// provider, event type). False if it could not be stored.
pub(super) fn describe_type(
    s: &mut DrainSession,
    region: &DrainRegion,
    routes: &RouteTable,
    type_id: u16,
    writer: &Sender<WriteCmd>,
) -> bool {
    let id = region.shm.id;
    if s.described_types.contains(&(id, type_id)) {
        return true;
    }
    let Some(t) = region.types.get(type_id as usize) else {
        return false;
    };
    if !describe_provider(s, region, routes, t.meta.provider, writer) {
        return false;
    }
    let mut bytes = Vec::new();
    let meta = EventTypeMeta {
        source: id.0 as u32,
        ..t.meta.clone()
    };
    if record::encode_event_type(&meta, &mut bytes).is_err() || !s.push_record(&bytes, writer) {
        return false;
    }
    s.described_types.insert((id, type_id));
    true
}

/// Writes the PROCESS and PROVIDER records for a provider if the session's
/// file lacks them. False if they could not be stored.
pub(super) fn describe_provider(
    s: &mut DrainSession,
    region: &DrainRegion,
    routes: &RouteTable,
    slot: u32,
    writer: &Sender<WriteCmd>,
) -> bool {
    let id = region.shm.id;
    if s.described_providers.contains(&(id, slot)) {
        return true;
    }
    let Some(info) = routes.slot(id, slot) else {
        return false;
    };
    if !describe_process(s, region, writer) {
        return false;
    }
    let pid = region.shm.pid;
    let mut bytes = Vec::new();
    let meta = ProviderMeta {
        source: id.0 as u32,
        provider: slot,
        pid,
        guid: info.guid,
        name: info.name.clone(),
    };
    if record::encode_provider(&meta, &mut bytes).is_err() || !s.push_record(&bytes, writer) {
        return false;
    }
    s.described_providers.insert((id, slot));
    true
}

/// Writes the PROCESS record for a region's process if the session's file
/// lacks it. False if it could not be stored.
pub(super) fn describe_process(
    s: &mut DrainSession,
    region: &DrainRegion,
    writer: &Sender<WriteCmd>,
) -> bool {
    let id = region.shm.id;
    if s.described_processes.contains(&id) {
        return true;
    }
    let meta = ProcessMeta {
        pid: region.shm.pid,
        name: region.process.clone(),
        source: Some(id.0 as u32),
    };
    let mut bytes = Vec::new();
    if record::encode_process(&meta, &mut bytes).is_err() || !s.push_record(&bytes, writer) {
        return false;
    }
    s.described_processes.insert(id);
    true
}

/// Parses event types the provider has added to its metadata area.
pub(super) fn read_metadata(region: &mut DrainRegion) {
    if region.meta_broken {
        return;
    }
    let head = region
        .shm
        .header()
        .provider
        .meta_head
        .load(Ordering::Acquire);
    let capacity = region.shm.layout.params.meta_capacity;
    if head == region.meta_tail {
        return;
    }
    if head < region.meta_tail || head > capacity {
        region.meta_broken = true;
        return;
    }
    let mut scratch = vec![0u8; (head - region.meta_tail) as usize];
    region
        .shm
        .meta_bytes()
        .copy_to(region.meta_tail as usize, &mut scratch);
    let mut at = 0;
    while at < scratch.len() {
        match record::parse_untrusted(&scratch[at..]) {
            Ok((Record::EventType(meta), size)) if meta.type_id as usize == region.types.len() => {
                region.types.push(TypeSlot {
                    meta,
                    epoch: 0,
                    wants: Vec::new(),
                    ready: Vec::new(),
                    routed: false,
                });
                region.route_words.push(0);
                at += size;
            }
            _ => {
                // Type ids must arrive in order and well formed; anything
                // else means the area cannot be trusted further.
                region.meta_broken = true;
                return;
            }
        }
    }
    region.meta_tail = head;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferret_abi::record::{self, Record};
    use ferret_format::BUFFER_HEADER_LEN;
    use ferret_session::RegionId;

    use super::describe_process;
    use crate::drain::Drain;
    use crate::drain::tests::Rig;
    use crate::msg::DrainCmd;
    use crate::shm::ShmRegion;

    #[test]
    fn two_processes_with_one_pid_are_each_described_with_their_own_name() {
        // Providers outside a daemon's PID namespace all have pid 0, and the
        // kernel reuses pids: a session's stream needs a PROCESS record per
        // region, not per pid.
        let mut rig = Rig::new();
        let a = rig.start("a");
        rig.settle();
        let params = rig.region.layout.params;
        let other = Arc::new(
            ShmRegion::create(RegionId(2), 4242, params, &rig.drain.clock.info()).unwrap(),
        );
        rig.drain.command(DrainCmd::AddRegion {
            region: other,
            process: "other".into(),
        });
        let i = rig.drain.session_index(a).unwrap();
        let Drain {
            sessions,
            regions,
            writer,
            ..
        } = &mut rig.drain;
        for region in regions.iter() {
            assert!(describe_process(&mut sessions[i], region, writer));
        }
        let bytes = &sessions[i].current.bytes()[BUFFER_HEADER_LEN..];
        let mut named = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let (rec, size) = record::parse_untrusted(&bytes[at..]).unwrap();
            if let Record::Process(p) = rec {
                named.push((p.source, p.pid, p.name));
            }
            at += size;
        }
        assert_eq!(
            named,
            [
                (Some(1), 4242, "app".to_string()),
                (Some(2), 4242, "other".to_string())
            ]
        );
    }
}
