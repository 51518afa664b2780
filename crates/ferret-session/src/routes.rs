//! Which running session wants which provider's events.
//!
//! The control thread hands the drain a new [`RouteTable`] whenever
//! sessions or providers change, and a process may register up to
//! `ENABLE_SLOTS` providers one by one, so a table must not cost its whole
//! size to change. A table is a map of regions, each region's part behind
//! an `Arc`, each part a fixed array of chunks of `CHUNK_SLOTS` slots, each
//! chunk and each slot's routes behind an `Arc` too. Changing one slot
//! copies the region map's pointers, one region part's chunk pointers and
//! one chunk's slot pointers, whatever the number of providers, and the
//! drain's lookups by slot index the arrays instead of scanning.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ferret_abi::EnableFilter;
use ferret_abi::proto::SessionState;
use ferret_abi::shm::ENABLE_SLOTS;

use crate::{ProviderEntry, RegionId, Registry, SessionKey, SessionTable};

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

/// Slots per chunk: a change copies one chunk of this many pointers and
/// one region part of `CHUNKS` chunk pointers.
const CHUNK_SLOTS: usize = 32;
const CHUNKS: usize = ENABLE_SLOTS.div_ceil(CHUNK_SLOTS);

#[derive(Clone, Debug, Default)]
struct Chunk {
    slots: [Option<Arc<SlotRoutes>>; CHUNK_SLOTS],
}

/// The routes of one region's providers.
#[derive(Clone, Debug)]
struct RegionRoutes {
    chunks: [Option<Arc<Chunk>>; CHUNKS],
    /// Registered providers in the region.
    len: usize,
    /// For each session some provider of the region routes to, how many
    /// (slot, filter) entries name it: the drain's listeners of the region
    /// are the keys, kept as slots change rather than found by a scan.
    takers: BTreeMap<SessionKey, u32>,
}

impl Default for RegionRoutes {
    fn default() -> Self {
        RegionRoutes {
            chunks: std::array::from_fn(|_| None),
            len: 0,
            takers: BTreeMap::new(),
        }
    }
}

impl RegionRoutes {
    fn get(&self, slot: u32) -> Option<&Arc<SlotRoutes>> {
        let slot = slot as usize;
        self.chunks
            .get(slot / CHUNK_SLOTS)?
            .as_ref()?
            .slots
            .get(slot % CHUNK_SLOTS)?
            .as_ref()
    }

    /// Sets the routes of slot `routes.slot`, which must be below
    /// `ENABLE_SLOTS` (the registry refuses others); a slot out of range is
    /// ignored rather than trusted.
    fn put(&mut self, routes: Arc<SlotRoutes>) {
        let slot = routes.slot as usize;
        let Some(chunk) = self.chunks.get_mut(slot / CHUNK_SLOTS) else {
            return;
        };
        let chunk = Arc::make_mut(chunk.get_or_insert_with(Default::default));
        for (key, _) in &routes.sessions {
            *self.takers.entry(*key).or_default() += 1;
        }
        match chunk.slots[slot % CHUNK_SLOTS].replace(routes) {
            Some(old) => {
                for (key, _) in &old.sessions {
                    if let Entry::Occupied(mut e) = self.takers.entry(*key) {
                        *e.get_mut() -= 1;
                        if *e.get() == 0 {
                            e.remove();
                        }
                    }
                }
            }
            None => self.len += 1,
        }
    }

    fn iter(&self) -> SlotIter<'_> {
        RegionSlots { part: Some(self) }.iter()
    }
}

/// A snapshot of every route, handed to the drain thread whenever sessions
/// or providers change. Every registered provider has an entry, enabled or
/// not, so the drain knows which lost-event counters to watch.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    /// Increases with every new table.
    pub epoch: u64,
    regions: BTreeMap<RegionId, Arc<RegionRoutes>>,
}

/// The routes of every registered provider of one region, in slot order.
#[derive(Clone, Copy, Debug)]
pub struct RegionSlots<'a> {
    part: Option<&'a RegionRoutes>,
}

impl<'a> RegionSlots<'a> {
    /// Each registered provider's routes, in slot order.
    pub fn iter(&self) -> SlotIter<'a> {
        SlotIter {
            chunks: self.part.map_or(&[][..], |p| &p.chunks[..]),
            slots: &[],
        }
    }

    /// How many providers the region registered.
    pub fn len(&self) -> usize {
        self.part.map_or(0, |p| p.len)
    }

    /// Whether the region registered none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> IntoIterator for RegionSlots<'a> {
    type Item = &'a SlotRoutes;
    type IntoIter = SlotIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The routes of a region's registered providers, in slot order. The
/// drain walks every region's slots on each pass (for their lost
/// counters), so this is a plain iterator: no allocation, no boxing.
#[derive(Clone, Debug)]
pub struct SlotIter<'a> {
    chunks: &'a [Option<Arc<Chunk>>],
    slots: &'a [Option<Arc<SlotRoutes>>],
}

impl<'a> Iterator for SlotIter<'a> {
    type Item = &'a SlotRoutes;

    fn next(&mut self) -> Option<&'a SlotRoutes> {
        loop {
            while let Some((first, rest)) = self.slots.split_first() {
                self.slots = rest;
                if let Some(r) = first {
                    return Some(r);
                }
            }
            let (first, rest) = self.chunks.split_first()?;
            self.chunks = rest;
            if let Some(c) = first {
                self.slots = &c.slots;
            }
        }
    }
}

/// The running sessions that enable the provider called `name`, with their
/// filters, in the session table's order.
fn wanted(sessions: &SessionTable, name: &str) -> Vec<(SessionKey, EnableFilter)> {
    sessions
        .iter()
        .filter(|s| s.state == SessionState::Running)
        .flat_map(|s| {
            s.providers
                .iter()
                .filter(|p| p.name == name)
                .map(move |p| (s.key, p.filter))
        })
        .collect()
}

fn slot_routes(
    slot: u32,
    entry: &ProviderEntry,
    sessions: Vec<(SessionKey, EnableFilter)>,
) -> Arc<SlotRoutes> {
    Arc::new(SlotRoutes {
        slot,
        name: entry.name.clone(),
        guid: entry.guid,
        sessions,
    })
}

impl RouteTable {
    /// The routes for the current sessions and providers. Only RUNNING
    /// sessions receive events. Costs one pass over the sessions' providers
    /// and one over the registry.
    pub fn build(epoch: u64, sessions: &SessionTable, registry: &Registry) -> RouteTable {
        let mut by_name: HashMap<&str, Vec<(SessionKey, EnableFilter)>> = HashMap::new();
        for s in sessions.iter().filter(|s| s.state == SessionState::Running) {
            for p in &s.providers {
                by_name.entry(&p.name).or_default().push((s.key, p.filter));
            }
        }
        let mut table = RouteTable {
            epoch,
            regions: BTreeMap::new(),
        };
        for (region, slot, entry) in registry.iter() {
            let wanted = by_name
                .get(entry.name.as_str())
                .cloned()
                .unwrap_or_default();
            table.put(region, slot_routes(slot, entry, wanted));
        }
        table
    }

    fn put(&mut self, region: RegionId, routes: Arc<SlotRoutes>) {
        Arc::make_mut(self.regions.entry(region).or_default()).put(routes);
    }

    /// This table with provider `slot` of `region` (just registered as
    /// `entry`) routed to the running sessions that enable it: what
    /// `build` would give once the registry holds it, at the cost of one
    /// slot.
    pub fn with_registration(
        &self,
        epoch: u64,
        sessions: &SessionTable,
        region: RegionId,
        slot: u32,
        entry: &ProviderEntry,
    ) -> RouteTable {
        let mut table = self.clone();
        table.epoch = epoch;
        table.put(
            region,
            slot_routes(slot, entry, wanted(sessions, &entry.name)),
        );
        table
    }

    /// This table without any of `region`'s providers (its process went
    /// away).
    pub fn without_region(&self, epoch: u64, region: RegionId) -> RouteTable {
        let mut table = self.clone();
        table.epoch = epoch;
        table.regions.remove(&region);
        table
    }

    /// This table with the routes of every registration of the providers
    /// called `names` made again from `sessions`: what `build` would give
    /// when only those providers' sessions or filters changed, at the cost
    /// of their registrations.
    pub fn with_names<'a>(
        &self,
        epoch: u64,
        sessions: &SessionTable,
        registry: &Registry,
        names: impl IntoIterator<Item = &'a str>,
    ) -> RouteTable {
        let mut table = self.clone();
        table.epoch = epoch;
        for name in names {
            let wanted = wanted(sessions, name);
            for (region, slot, entry) in registry.by_name(name) {
                table.put(region, slot_routes(slot, entry, wanted.clone()));
            }
        }
        table
    }

    /// The routes of every registered provider in `region`.
    pub fn region(&self, region: RegionId) -> RegionSlots<'_> {
        RegionSlots {
            part: self.regions.get(&region).map(|p| &**p),
        }
    }

    /// The sessions that some provider of `region` routes to, in key order.
    pub fn listeners(&self, region: RegionId) -> impl Iterator<Item = SessionKey> + '_ {
        self.regions
            .get(&region)
            .into_iter()
            .flat_map(|p| p.takers.keys().copied())
    }

    /// Every region's routes, by region and then slot.
    pub fn iter(&self) -> impl Iterator<Item = (RegionId, &SlotRoutes)> {
        self.regions
            .iter()
            .flat_map(|(id, p)| p.iter().map(move |r| (*id, r)))
    }

    /// The routes of one provider.
    pub fn slot(&self, region: RegionId, slot: u32) -> Option<&SlotRoutes> {
        self.regions.get(&region)?.get(slot).map(|r| &**r)
    }

    /// A table that takes every event either `self` or `next` takes: each
    /// provider's sessions and filters of both. The control thread has the
    /// drain use it while a change of filters reaches the enable words, so
    /// that an event a provider tested against the old words or the new
    /// ones meets a route that accepts it.
    ///
    /// Parts the two tables share (the same `Arc`) are taken as they are,
    /// so the union of a table and the next one after a registration costs
    /// the changed chunk, not the table.
    pub fn union(&self, next: &RouteTable, epoch: u64) -> RouteTable {
        let mut regions = next.regions.clone();
        for (id, old) in &self.regions {
            let merged = match regions.entry(*id) {
                Entry::Vacant(v) => {
                    v.insert(old.clone());
                    continue;
                }
                Entry::Occupied(o) if Arc::ptr_eq(o.get(), old) => continue,
                Entry::Occupied(o) => o.into_mut(),
            };
            for (c, old_chunk) in old.chunks.iter().enumerate() {
                let Some(old_chunk) = old_chunk else {
                    continue;
                };
                if merged.chunks[c]
                    .as_ref()
                    .is_some_and(|n| Arc::ptr_eq(n, old_chunk))
                {
                    continue;
                }
                for old_slot in old_chunk.slots.iter().flatten() {
                    let merged_slot = match merged.get(old_slot.slot) {
                        Some(n) if Arc::ptr_eq(n, old_slot) => continue,
                        Some(n) => {
                            let mut sessions = n.sessions.clone();
                            for entry in &old_slot.sessions {
                                if !sessions.contains(entry) {
                                    sessions.push(*entry);
                                }
                            }
                            if sessions.len() == n.sessions.len() {
                                continue;
                            }
                            Arc::new(SlotRoutes {
                                sessions,
                                ..(**n).clone()
                            })
                        }
                        None => old_slot.clone(),
                    };
                    Arc::make_mut(merged).put(merged_slot);
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

impl PartialEq for RouteTable {
    /// Two tables are equal when they hold the same routes (and epoch),
    /// however their parts are shared.
    fn eq(&self, other: &Self) -> bool {
        self.epoch == other.epoch
            && self.regions.len() == other.regions.len()
            && self
                .regions
                .iter()
                .zip(&other.regions)
                .all(|((a, pa), (b, pb))| {
                    a == b && pa.len == pb.len && pa.takers == pb.takers && pa.iter().eq(pb.iter())
                })
    }
}

impl Eq for RouteTable {}

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

    fn provider(name: &str) -> ProviderEntry {
        ProviderEntry {
            name: name.into(),
            guid: Guid::from_name(name),
            pid: 1,
            process: "x".into(),
        }
    }

    #[test]
    fn a_registration_copies_only_its_chunk_and_lookups_index_slots() {
        let mut t = SessionTable::new(64);
        start(&mut t, "s1", "P700", Level::Verbose);
        let mut reg = Registry::default();
        let mut rt = RouteTable::default();
        for slot in 0..ENABLE_SLOTS as u32 {
            let entry = provider(&format!("P{slot}"));
            reg.register(RegionId(1), slot, entry.clone()).unwrap();
            rt = rt.with_registration(u64::from(slot) + 1, &t, RegionId(1), slot, &entry);
        }
        let region = rt.region(RegionId(1));
        assert_eq!(region.len(), ENABLE_SLOTS);
        assert_eq!(region.iter().count(), ENABLE_SLOTS);
        assert!(region.iter().map(|r| r.slot).eq(0..ENABLE_SLOTS as u32));
        assert_eq!(rt.slot(RegionId(1), 700).unwrap().name, "P700");
        assert_eq!(rt.slot(RegionId(1), 700).unwrap().sessions.len(), 1);
        assert!(rt.slot(RegionId(1), ENABLE_SLOTS as u32).is_none());
        assert!(rt.slot(RegionId(2), 0).is_none());
        let key = t.iter().next().unwrap().key;
        assert_eq!(rt.listeners(RegionId(1)).collect::<Vec<_>>(), [key]);
        assert_eq!(
            rt.takers(RegionId(1), 700, Level::Verbose as u8, 1)
                .collect::<Vec<_>>(),
            [key]
        );
        assert_eq!(rt, RouteTable::build(ENABLE_SLOTS as u64, &t, &reg));
        // The next registration shares every other chunk and slot with
        // this table.
        let mut reg2 = Registry::default();
        reg2.register(RegionId(2), 0, provider("P0")).unwrap();
        let next = rt.with_registration(9999, &t, RegionId(2), 0, &provider("P0"));
        let (a, b) = (&rt.regions[&RegionId(1)], &next.regions[&RegionId(1)]);
        assert!(Arc::ptr_eq(a, b));
        // A union of a table with its successor shares their common parts.
        let u = rt.union(&next, 10_000);
        assert!(Arc::ptr_eq(&u.regions[&RegionId(1)], a));
        assert_eq!(u.region(RegionId(2)).len(), 1);
    }

    /// The union as it was first written: every slot of `next`, with the
    /// sessions of `old` it lacks appended, then the slots only `old` has.
    fn naive_union(old: &RouteTable, next: &RouteTable) -> BTreeMap<(RegionId, u32), SlotRoutes> {
        let mut out: BTreeMap<(RegionId, u32), SlotRoutes> = next
            .iter()
            .map(|(id, r)| ((id, r.slot), r.clone()))
            .collect();
        for (id, r) in old.iter() {
            match out.get_mut(&(id, r.slot)) {
                Some(m) => {
                    for e in &r.sessions {
                        if !m.sessions.contains(e) {
                            m.sessions.push(*e);
                        }
                    }
                }
                None => {
                    out.insert((id, r.slot), r.clone());
                }
            }
        }
        out
    }

    /// Each region's listeners are exactly the sessions its slots name.
    fn check_listeners(rt: &RouteTable) {
        for id in rt.regions.keys() {
            let named: std::collections::BTreeSet<SessionKey> = rt
                .region(*id)
                .iter()
                .flat_map(|r| r.sessions.iter().map(|(k, _)| *k))
                .collect();
            assert!(rt.listeners(*id).eq(named.into_iter()));
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Register { region: u64, slot: u32, name: u8 },
        RemoveRegion { region: u64 },
        Start { session: u8, names: Vec<(u8, u8)> },
        Enable { session: u8, name: u8, level: u8 },
        Disable { session: u8, name: u8 },
        Stop { session: u8 },
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        // Slots from a few chunks, near chunk edges too.
        let slot = prop_oneof![0u32..4, 30u32..34, 1020u32..1024];
        prop_oneof![
            4 => (0u64..3, slot, 0u8..6).prop_map(|(region, slot, name)| Op::Register { region, slot, name }),
            1 => (0u64..3).prop_map(|region| Op::RemoveRegion { region }),
            2 => (0u8..4, proptest::collection::vec((0u8..6, 1u8..6), 0..4))
                .prop_map(|(session, names)| Op::Start { session, names }),
            2 => (0u8..4, 0u8..6, 1u8..6).prop_map(|(session, name, level)| Op::Enable { session, name, level }),
            1 => (0u8..4, 0u8..6).prop_map(|(session, name)| Op::Disable { session, name }),
            1 => (0u8..4).prop_map(|session| Op::Stop { session }),
        ]
    }

    fn level(n: u8) -> Level {
        Level::from_u8(n).unwrap_or(Level::Verbose)
    }

    proptest::proptest! {
        /// After any sequence of registrations, region removals, session
        /// starts and stops, enables and disables, the table changed one
        /// step at a time equals one built from scratch, and the union of
        /// each table with the next equals the union as first written.
        #[test]
        fn the_incremental_table_equals_one_built_from_scratch(
            ops in proptest::collection::vec(op(), 1..60)
        ) {
            let mut t = SessionTable::new(64);
            let mut reg = Registry::default();
            let mut rt = RouteTable::default();
            for (epoch, op) in (1u64..).zip(ops) {
                let next = match op {
                    Op::Register { region, slot, name } => {
                        let entry = provider(&format!("N{name}"));
                        if reg.register(RegionId(region), slot, entry.clone()).is_err() {
                            continue;
                        }
                        rt.with_registration(epoch, &t, RegionId(region), slot, &entry)
                    }
                    Op::RemoveRegion { region } => {
                        reg.remove_region(RegionId(region));
                        rt.without_region(epoch, RegionId(region))
                    }
                    Op::Start { session, names } => {
                        let mut providers: Vec<ProviderSpec> = Vec::new();
                        for (n, l) in names {
                            let name = format!("N{n}");
                            if !providers.iter().any(|p| p.name == name) {
                                providers.push(ProviderSpec { name, filter: EnableFilter::level(level(l)) });
                            }
                        }
                        let req = StartRequest {
                            name: format!("s{session}"),
                            providers: providers.clone(),
                            log_file: String::new(),
                            buffer_kib: 64,
                            max_buffers: 8,
                            flush_timer_ms: 0,
                            min_buffers: 2,
                            file_mode: Default::default(),
                            max_file_bytes: 0,
                            realtime: false,
                            controller: String::new(),
                            no_loss: false,
                            no_loss_wait_ms: 0,
                        };
                        if t.insert(&req, 0, "tsc", 0, 1).is_err() {
                            continue;
                        }
                        rt.with_names(epoch, &t, &reg, providers.iter().map(|p| p.name.as_str()))
                    }
                    Op::Enable { session, name, level: l } => {
                        let Ok(s) = t.find_mut(&SessionRef::Name(format!("s{session}"))) else {
                            continue;
                        };
                        let name = format!("N{name}");
                        let filter = EnableFilter::level(level(l));
                        match s.providers.iter_mut().find(|p| p.name == name) {
                            Some(p) => p.filter = filter,
                            None => s.providers.push(ProviderSpec { name: name.clone(), filter }),
                        }
                        rt.with_names(epoch, &t, &reg, [name.as_str()])
                    }
                    Op::Disable { session, name } => {
                        let Ok(s) = t.find_mut(&SessionRef::Name(format!("s{session}"))) else {
                            continue;
                        };
                        let name = format!("N{name}");
                        s.providers.retain(|p| p.name != name);
                        rt.with_names(epoch, &t, &reg, [name.as_str()])
                    }
                    Op::Stop { session } => {
                        let Ok(s) = t.find_mut(&SessionRef::Name(format!("s{session}"))) else {
                            continue;
                        };
                        s.state = SessionState::Stopping;
                        let names: Vec<String> = s.providers.iter().map(|p| p.name.clone()).collect();
                        rt.with_names(epoch, &t, &reg, names.iter().map(String::as_str))
                    }
                };
                proptest::prop_assert_eq!(&next, &RouteTable::build(epoch, &t, &reg));
                check_listeners(&next);
                let u = rt.union(&next, epoch);
                let got: BTreeMap<(RegionId, u32), SlotRoutes> =
                    u.iter().map(|(id, r)| ((id, r.slot), r.clone())).collect();
                proptest::prop_assert_eq!(got, naive_union(&rt, &next));
                check_listeners(&u);
                for (id, _, _) in reg.iter() {
                    proptest::prop_assert_eq!(u.region(id).len(), u.region(id).iter().count());
                }
                rt = next;
            }
        }
    }
}
