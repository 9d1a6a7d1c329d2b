//! The one table of links. A link is a neighbour on one of our interfaces (its MAC there);
//! it gets a slot and a [`LinkId`] that every layer above names it by: routing keeps its
//! link-quality state and the node its sessions in the same entry, so the two cannot drift
//! apart. Bounded, allocated once; an id carries its slot's generation, so the id of a
//! forgotten link never names the slot's next occupant.

#![forbid(unsafe_code)]

use crate::iface::IfaceId;
use crate::time::Instant;
use crate::wire::MacAddr;

/// Most links a node holds; a slot number fits in a byte (session indices carry it).
pub const MAX_LINKS: usize = 128;
/// Most links on one interface, so that one crowded interface cannot take every slot.
pub const MAX_LINKS_PER_IFACE: usize = 64;

/// A stable handle for one link: its slot and the slot's generation when it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId {
    slot: u8,
    generation: u32,
}

impl LinkId {
    /// The slot it names (also the low byte of the link's session indices).
    pub fn slot(self) -> usize {
        usize::from(self.slot)
    }

    /// An id for slot `slot` that no table made (routing's unit tests of route selection).
    #[cfg(test)]
    pub(crate) const fn for_tests(slot: u8) -> LinkId {
        LinkId {
            slot,
            generation: 0,
        }
    }
}

impl std::fmt::Display for LinkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.slot, self.generation)
    }
}

/// One link: where it is and what the layers above keep about it.
#[derive(Debug)]
pub struct Entry<T> {
    /// Its id.
    pub id: LinkId,
    /// The interface the neighbour is on.
    pub iface: IfaceId,
    /// The neighbour's MAC on that interface.
    pub mac: MacAddr,
    /// What the layers above keep (routing's link quality, the node's sessions).
    pub state: T,
}

/// Why a link could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Every slot (or the interface's share) holds a link that may not be evicted.
    Refused,
}

/// What [`LinkTable::insert`] did.
#[derive(Debug)]
pub struct Inserted<T> {
    /// The new link.
    pub id: LinkId,
    /// The link evicted to make room, if one was.
    pub evicted: Option<Entry<T>>,
}

/// The bounded table of links.
#[derive(Debug)]
pub struct LinkTable<T> {
    entries: Vec<Option<Entry<T>>>,
    /// (interface, MAC) of each occupied slot: the per-frame lookup scans these 8-byte keys
    /// instead of the large entries.
    keys: Vec<Option<(IfaceId, MacAddr)>>,
    generations: Vec<u32>,
}

impl<T> Default for LinkTable<T> {
    fn default() -> Self {
        LinkTable {
            entries: (0..MAX_LINKS).map(|_| None).collect(),
            keys: vec![None; MAX_LINKS],
            generations: vec![0; MAX_LINKS],
        }
    }
}

impl<T> LinkTable<T> {
    /// The link to `mac` on `iface`.
    pub fn find(&self, iface: IfaceId, mac: MacAddr) -> Option<LinkId> {
        let slot = self.keys.iter().position(|k| *k == Some((iface, mac)))?;
        self.id_at(slot)
    }

    /// The id of the link in `slot` (a session index names the slot).
    pub fn id_at(&self, slot: usize) -> Option<LinkId> {
        self.entries.get(slot)?.as_ref().map(|e| e.id)
    }

    /// The link `id` names, unless it was forgotten.
    pub fn get(&self, id: LinkId) -> Option<&Entry<T>> {
        self.entries.get(id.slot())?.as_ref().filter(|e| e.id == id)
    }

    /// The link `id` names, mutably.
    pub fn get_mut(&mut self, id: LinkId) -> Option<&mut Entry<T>> {
        self.entries
            .get_mut(id.slot())?
            .as_mut()
            .filter(|e| e.id == id)
    }

    /// Add a link to `mac` on `iface` holding `state`. When the table or the interface's
    /// share is full, the link `evictable` ranks lowest (least recently heard, say) goes;
    /// links it gives no rank to are never evicted. The caller must not add a link that
    /// exists ([`LinkTable::find`] first).
    pub fn insert(
        &mut self,
        iface: IfaceId,
        mac: MacAddr,
        state: T,
        evictable: impl Fn(&Entry<T>) -> Option<Instant>,
    ) -> Result<Inserted<T>, Full> {
        let on_iface = self.iter().filter(|e| e.iface == iface).count();
        let victim = if on_iface >= MAX_LINKS_PER_IFACE {
            Some(
                self.lowest(|e| e.iface == iface, &evictable)
                    .ok_or(Full::Refused)?,
            )
        } else if self.entries.iter().all(Option::is_some) {
            Some(self.lowest(|_| true, &evictable).ok_or(Full::Refused)?)
        } else {
            None
        };
        let evicted = victim.and_then(|slot| self.take(slot));
        let slot = self
            .entries
            .iter()
            .position(Option::is_none)
            .ok_or(Full::Refused)?;
        let generation = self.generations.get(slot).copied().unwrap_or(0);
        let id = LinkId {
            slot: u8::try_from(slot).map_err(|_| Full::Refused)?,
            generation,
        };
        if let (Some(e), Some(k)) = (self.entries.get_mut(slot), self.keys.get_mut(slot)) {
            *e = Some(Entry {
                id,
                iface,
                mac,
                state,
            });
            *k = Some((iface, mac));
        }
        Ok(Inserted { id, evicted })
    }

    /// The slot of the link among those `among` picks that `rank` ranks lowest.
    fn lowest(
        &self,
        among: impl Fn(&Entry<T>) -> bool,
        rank: impl Fn(&Entry<T>) -> Option<Instant>,
    ) -> Option<usize> {
        self.iter()
            .filter(|e| among(e))
            .filter_map(|e| rank(e).map(|r| (r, e.id.slot())))
            .min()
            .map(|(_, slot)| slot)
    }

    /// Forget link `id`; returns what it held.
    pub fn remove(&mut self, id: LinkId) -> Option<Entry<T>> {
        self.get(id)?;
        self.take(id.slot())
    }

    fn take(&mut self, slot: usize) -> Option<Entry<T>> {
        let entry = self.entries.get_mut(slot)?.take();
        if let Some(k) = self.keys.get_mut(slot) {
            *k = None;
        }
        if let Some(g) = self.generations.get_mut(slot) {
            *g = g.wrapping_add(1);
        }
        entry
    }

    /// Every link.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<T>> {
        self.entries.iter().flatten()
    }

    /// Every link, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry<T>> {
        self.entries.iter_mut().flatten()
    }

    /// The ids of every link (to visit them while changing the table).
    pub fn ids(&self) -> impl Iterator<Item = LinkId> + '_ {
        self.iter().map(|e| e.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn mac(i: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, i])
    }

    #[test]
    fn ids_are_found_by_key_and_go_stale_when_their_link_goes() {
        let mut t = LinkTable::<u32>::default();
        let a = t.insert(IfaceId(0), mac(1), 10, |_| None).unwrap().id;
        let b = t.insert(IfaceId(1), mac(1), 20, |_| None).unwrap().id;
        assert_ne!(a, b);
        assert_eq!(t.find(IfaceId(0), mac(1)), Some(a));
        assert_eq!(t.find(IfaceId(1), mac(1)), Some(b));
        assert_eq!(t.find(IfaceId(0), mac(2)), None);
        assert_eq!(t.get(b).map(|e| e.state), Some(20));
        assert_eq!(t.id_at(a.slot()), Some(a));
        assert_eq!(t.remove(a).map(|e| e.state), Some(10));
        assert!(t.get(a).is_none() && t.remove(a).is_none());
        // The slot's next occupant has a new id: the old one names nothing.
        let c = t.insert(IfaceId(0), mac(3), 30, |_| None).unwrap().id;
        assert_eq!(c.slot(), a.slot());
        assert_ne!(c, a);
        assert!(t.get(a).is_none() && t.get_mut(a).is_none());
        assert_eq!(
            t.get(c).map(|e| (e.iface, e.mac)),
            Some((IfaceId(0), mac(3)))
        );
        assert_eq!(t.ids().count(), 2);
    }

    #[test]
    fn a_full_table_evicts_the_lowest_ranked_and_never_the_unranked() {
        let mut t = LinkTable::<Instant>::default();
        let t0 = Instant::from_millis(1);
        // Two interfaces fill their shares: the table is full.
        for i in 0..MAX_LINKS {
            let iface = IfaceId((i / MAX_LINKS_PER_IFACE) as u8);
            let at = t0 + Duration::from_millis(i as u64);
            let r = t
                .insert(iface, mac(i as u8), at, |e| Some(e.state))
                .unwrap();
            assert!(r.evicted.is_none());
        }
        // Interface 1's share is full: its least recently heard link goes, not interface 0's.
        let r = t
            .insert(IfaceId(1), mac(200), t0, |e| Some(e.state))
            .unwrap();
        let gone = r.evicted.expect("one evicted");
        assert_eq!((gone.iface, gone.mac), (IfaceId(1), mac(64)));
        assert!(t.find(IfaceId(0), mac(0)).is_some());
        // A third interface: the whole table is full, the oldest anywhere goes.
        let r = t
            .insert(IfaceId(2), mac(201), t0, |e| Some(e.state))
            .unwrap();
        assert_eq!(r.evicted.map(|e| e.mac), Some(mac(0)));
        // Nothing evictable: refused, nothing changed.
        let before: Vec<_> = t.ids().collect();
        assert_eq!(
            t.insert(IfaceId(2), mac(202), t0, |_| None).err(),
            Some(Full::Refused)
        );
        assert_eq!(t.ids().collect::<Vec<_>>(), before);
    }
}
