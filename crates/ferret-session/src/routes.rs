//! Which running session wants which provider's events.

use std::collections::HashMap;

use ferret_abi::EnableFilter;
use ferret_abi::proto::SessionState;

use crate::{RegionId, Registry, SessionKey, SessionTable};

/// The sessions that enable one registered provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRoutes {
    /// The provider's enable slot in its region.
    pub slot: u32,
    /// The provider's name.
    pub name: String,
    /// The provider's GUID.
    pub guid: ferret_abi::Guid,
    /// Each running session that enables it, with its filter.
    pub sessions: Vec<(SessionKey, EnableFilter)>,
}

/// A snapshot of every route, handed to the drain thread whenever sessions
/// or providers change. Every registered provider has an entry, enabled or
/// not, so the drain knows which lost-event counters to watch.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    /// Increases with every new table.
    pub epoch: u64,
    regions: HashMap<RegionId, Vec<SlotRoutes>>,
}

impl RouteTable {
    /// The routes for the current sessions and providers. Only RUNNING
    /// sessions receive events.
    pub fn build(epoch: u64, sessions: &SessionTable, registry: &Registry) -> RouteTable {
        let mut regions: HashMap<RegionId, Vec<SlotRoutes>> = HashMap::new();
        for (region, slot, entry) in registry.iter() {
            let wanted = sessions
                .iter()
                .filter(|s| s.state == SessionState::Running)
                .flat_map(|s| {
                    s.providers
                        .iter()
                        .filter(|p| p.name == entry.name)
                        .map(move |p| (s.key, p.filter))
                })
                .collect();
            regions.entry(region).or_default().push(SlotRoutes {
                slot,
                name: entry.name.clone(),
                guid: entry.guid,
                sessions: wanted,
            });
        }
        RouteTable { epoch, regions }
    }

    /// The routes of every registered provider in `region`.
    pub fn region(&self, region: RegionId) -> &[SlotRoutes] {
        self.regions.get(&region).map_or(&[], Vec::as_slice)
    }

    /// The routes of one provider.
    pub fn slot(&self, region: RegionId, slot: u32) -> Option<&SlotRoutes> {
        self.region(region).iter().find(|r| r.slot == slot)
    }

    /// A table that takes every event either `self` or `next` takes: each
    /// provider's sessions and filters of both. The control thread has the
    /// drain use it while a change of filters reaches the enable words, so
    /// that an event a provider tested against the old words or the new
    /// ones meets a route that accepts it.
    pub fn union(&self, next: &RouteTable, epoch: u64) -> RouteTable {
        let mut regions = next.regions.clone();
        for (region, slots) in &self.regions {
            let merged = regions.entry(*region).or_default();
            for old in slots {
                match merged.iter_mut().find(|r| r.slot == old.slot) {
                    Some(r) => {
                        for entry in &old.sessions {
                            if !r.sessions.contains(entry) {
                                r.sessions.push(*entry);
                            }
                        }
                    }
                    None => merged.push(old.clone()),
                }
            }
        }
        RouteTable { epoch, regions }
    }

    /// The sessions of `self` whose filter for provider `slot` of `region`
    /// accepts `level` and `keywords`.
    pub fn takers(
        &self,
        region: RegionId,
        slot: u32,
        level: u8,
        keywords: u64,
    ) -> impl Iterator<Item = SessionKey> + '_ {
        self.slot(region, slot)
            .into_iter()
            .flat_map(|r| r.sessions.iter())
            .filter(move |(_, f)| f.accepts(level, keywords))
            .map(|(k, _)| *k)
    }
}

/// The enable-table words for the provider called `name`: the union over
/// running sessions that enable it (see `ferret_abi::shm::EnableSlot`).
pub fn enable_words(sessions: &SessionTable, name: &str) -> [u64; 5] {
    let filters: Vec<EnableFilter> = sessions
        .iter()
        .filter(|s| s.state == SessionState::Running)
        .flat_map(|s| {
            s.providers
                .iter()
                .filter(|p| p.name == name)
                .map(|p| p.filter)
        })
        .collect();
    ferret_abi::shm::level_words(&filters)
}

/// How long writers of the provider called `name` wait for ring space, in
/// microseconds: the longest wait any running no-loss session that enables
/// it asked for, 0 (drop at once) when none did. Published in the enable
/// table next to the level words (see `ferret_abi::shm::EnableSlot`).
pub fn no_loss_wait_us(sessions: &SessionTable, name: &str) -> u64 {
    sessions
        .iter()
        .filter(|s| s.state == SessionState::Running && s.no_loss)
        .filter(|s| s.providers.iter().any(|p| p.name == name))
        .map(|s| u64::from(s.no_loss_wait_ms) * 1000)
        .max()
        .unwrap_or(0)
        .min(ferret_abi::shm::MAX_NO_LOSS_WAIT_US)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProviderEntry;
    use ferret_abi::proto::{ProviderSpec, SessionRef, StartRequest};
    use ferret_abi::{Guid, Level};

    fn start(t: &mut SessionTable, name: &str, provider: &str, level: Level) {
        start_waiting(t, name, provider, level, None);
    }

    fn start_waiting(
        t: &mut SessionTable,
        name: &str,
        provider: &str,
        level: Level,
        no_loss_wait_ms: Option<u32>,
    ) {
        let req = StartRequest {
            name: name.into(),
            providers: vec![ProviderSpec {
                name: provider.into(),
                filter: EnableFilter::level(level),
            }],
            log_file: String::new(),
            buffer_kib: 64,
            max_buffers: 8,
            flush_timer_ms: 0,
            min_buffers: 2,
            file_mode: Default::default(),
            max_file_bytes: 0,
            realtime: false,
            controller: String::new(),
            no_loss: no_loss_wait_ms.is_some(),
            no_loss_wait_ms: no_loss_wait_ms.unwrap_or(0),
        };
        t.insert(&req, 0, "tsc", 0, 1).unwrap();
    }

    #[test]
    fn routes_follow_running_sessions() {
        let mut t = SessionTable::new(64);
        let mut reg = Registry::default();
        for (slot, name) in ["A", "B"].iter().enumerate() {
            reg.register(
                RegionId(7),
                slot as u32,
                ProviderEntry {
                    name: name.to_string(),
                    guid: Guid::from_name(name),
                    pid: 1,
                    process: "x".into(),
                },
            )
            .unwrap();
        }
        start(&mut t, "s1", "A", Level::Warning);
        start(&mut t, "s2", "A", Level::Verbose);
        let rt = RouteTable::build(1, &t, &reg);
        assert_eq!(rt.slot(RegionId(7), 0).unwrap().sessions.len(), 2);
        assert!(rt.slot(RegionId(7), 1).unwrap().sessions.is_empty());
        assert_eq!(enable_words(&t, "A"), [u64::MAX; 5]);
        t.find_mut(&SessionRef::Name("s2".into())).unwrap().state = SessionState::Stopping;
        let rt = RouteTable::build(2, &t, &reg);
        assert_eq!(rt.slot(RegionId(7), 0).unwrap().sessions.len(), 1);
        assert_eq!(enable_words(&t, "A"), [u64::MAX, u64::MAX, u64::MAX, 0, 0]);
        assert_eq!(enable_words(&t, "B"), [0; 5]);
    }

    #[test]
    fn writers_wait_as_long_as_the_longest_running_no_loss_session_asks() {
        let mut t = SessionTable::new(64);
        start(&mut t, "plain", "A", Level::Verbose);
        assert_eq!(no_loss_wait_us(&t, "A"), 0);
        start_waiting(&mut t, "short", "A", Level::Error, Some(200));
        start_waiting(&mut t, "long", "A", Level::Error, Some(5000));
        start_waiting(&mut t, "other", "B", Level::Error, Some(60_000));
        assert_eq!(no_loss_wait_us(&t, "A"), 5_000_000);
        t.find_mut(&SessionRef::Name("long".into())).unwrap().state = SessionState::Stopping;
        assert_eq!(no_loss_wait_us(&t, "A"), 200_000);
        assert_eq!(no_loss_wait_us(&t, "B"), 60_000_000);
        assert_eq!(no_loss_wait_us(&t, "C"), 0);
    }
}
