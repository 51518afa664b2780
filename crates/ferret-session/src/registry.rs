//! The providers registered by live processes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::error::{SessionError, Why};
use ferret_abi::Guid;
use ferret_abi::shm::ENABLE_SLOTS;

use crate::RegionId;

/// One provider registered by one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderEntry {
    /// The provider's name.
    pub name: String,
    /// Its GUID.
    pub guid: Guid,
    /// The process id.
    pub pid: u32,
    /// The process's command name.
    pub process: String,
}

/// Every registered provider, by region and enable slot, with an index by
/// name: a change of one provider's sessions finds its registrations
/// without a scan of every registration.
#[derive(Debug, Default)]
pub struct Registry {
    providers: BTreeMap<(RegionId, u32), ProviderEntry>,
    by_name: HashMap<String, BTreeSet<(RegionId, u32)>>,
}

impl Registry {
    /// Records a registration. Registering the same slot again with the same
    /// name is accepted (providers re-send after reconnecting); another name
    /// in a taken slot, a slot out of range or a GUID that does not match the
    /// name is refused.
    pub fn register(
        &mut self,
        region: RegionId,
        slot: u32,
        entry: ProviderEntry,
    ) -> Result<(), SessionError> {
        if slot as usize >= ENABLE_SLOTS {
            return Err(SessionError::new(
                Why::Invalid,
                format!(
                    "provider slot {slot} is out of range (0-{})",
                    ENABLE_SLOTS - 1
                ),
            ));
        }
        ferret_abi::proto::validate_provider_name(&entry.name)
            .map_err(|e| SessionError::new(Why::Invalid, e))?;
        if entry.guid != Guid::from_name(&entry.name) {
            return Err(SessionError::new(
                Why::Invalid,
                format!(
                    "GUID {} does not match provider name '{}'",
                    entry.guid, entry.name
                ),
            ));
        }
        match self.providers.get(&(region, slot)) {
            Some(existing) if existing.name != entry.name => Err(SessionError::new(
                Why::Invalid,
                format!("slot {slot} already holds provider '{}'", existing.name),
            )),
            Some(_) => {
                // The same name again: the name index already holds it.
                self.providers.insert((region, slot), entry);
                Ok(())
            }
            None => {
                self.by_name
                    .entry(entry.name.clone())
                    .or_default()
                    .insert((region, slot));
                self.providers.insert((region, slot), entry);
                Ok(())
            }
        }
    }

    /// Forgets every provider of a region (its process went away).
    pub fn remove_region(&mut self, region: RegionId) {
        let slots: Vec<u32> = self
            .providers
            .range((region, 0)..=(region, u32::MAX))
            .map(|((_, slot), _)| *slot)
            .collect();
        for slot in slots {
            let Some(entry) = self.providers.remove(&(region, slot)) else {
                continue;
            };
            if let Some(set) = self.by_name.get_mut(&entry.name) {
                set.remove(&(region, slot));
                if set.is_empty() {
                    self.by_name.remove(&entry.name);
                }
            }
        }
    }

    /// Every registration.
    pub fn iter(&self) -> impl Iterator<Item = (RegionId, u32, &ProviderEntry)> {
        self.providers.iter().map(|((r, s), e)| (*r, *s, e))
    }

    /// The registrations after `(region, slot)` (all when `None`), in
    /// order: where a page of the provider list resumes.
    pub fn iter_after(
        &self,
        after: Option<(RegionId, u32)>,
    ) -> impl Iterator<Item = (RegionId, u32, &ProviderEntry)> {
        use std::ops::Bound;
        let from = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        self.providers
            .range((from, Bound::Unbounded))
            .map(|((r, s), e)| (*r, *s, e))
    }

    /// The registration in `region` at `slot`.
    pub fn get(&self, region: RegionId, slot: u32) -> Option<&ProviderEntry> {
        self.providers.get(&(region, slot))
    }

    /// Registrations of the provider called `name`.
    pub fn by_name<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (RegionId, u32, &'a ProviderEntry)> + 'a {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|&(r, s)| Some((r, s, self.providers.get(&(r, s))?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> ProviderEntry {
        ProviderEntry {
            name: name.into(),
            guid: Guid::from_name(name),
            pid: 1,
            process: "p".into(),
        }
    }

    #[test]
    fn re_registration_is_idempotent_and_conflicts_are_refused() {
        let mut r = Registry::default();
        let region = RegionId(1);
        r.register(region, 0, entry("A")).unwrap();
        r.register(region, 0, entry("A")).unwrap();
        assert!(r.register(region, 0, entry("B")).is_err());
        assert!(r.register(region, 5000, entry("C")).is_err());
        let mut bad = entry("D");
        bad.guid = Guid::from_name("E");
        assert!(r.register(region, 1, bad).is_err());
        assert_eq!(r.by_name("A").count(), 1);
        r.remove_region(region);
        assert_eq!(r.iter().count(), 0);
    }

    #[test]
    fn by_name_finds_every_registration_of_a_name_until_its_region_goes() {
        let mut r = Registry::default();
        for region in 1..=3 {
            r.register(RegionId(region), 5, entry("A")).unwrap();
            r.register(RegionId(region), 6, entry("B")).unwrap();
        }
        r.register(RegionId(2), 7, entry("A")).unwrap();
        let found: Vec<(RegionId, u32)> = r.by_name("A").map(|(g, s, _)| (g, s)).collect();
        assert_eq!(
            found,
            [
                (RegionId(1), 5),
                (RegionId(2), 5),
                (RegionId(2), 7),
                (RegionId(3), 5)
            ]
        );
        r.remove_region(RegionId(2));
        let found: Vec<(RegionId, u32)> = r.by_name("A").map(|(g, s, _)| (g, s)).collect();
        assert_eq!(found, [(RegionId(1), 5), (RegionId(3), 5)]);
        assert_eq!(r.iter().count(), 4);
        r.remove_region(RegionId(1));
        r.remove_region(RegionId(3));
        assert_eq!(r.by_name("A").count(), 0);
        assert!(r.by_name.is_empty());
    }
}
