//! Originator table: per-originator routes from each neighbour, feasibility distance,
//! best and backup next-hop selection.

use std::collections::BTreeMap;

use crate::link::LinkId;
use crate::time::Instant;
use crate::wire::{NodeId, CHAIN_ELEMENT_LEN};

use super::metric::{add, clearly_better, INFINITY};
use super::seqno::{FeasibilityDistance, Gcra, SeqKey};

/// Most neighbours whose advertisement we keep per originator.
pub const MAX_ROUTES_PER_ORIGINATOR: usize = 4;
/// Most originators held.
pub const MAX_ORIGINATORS: usize = 4096;

/// One neighbour's latest advertisement of an originator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteEntry {
    /// The link to the neighbour.
    pub neigh: LinkId,
    /// Advertised (epoch, seqno).
    pub seq: SeqKey,
    /// Advertised metric (the neighbour's own metric, before our link cost).
    pub metric: u16,
    /// When it was last refreshed.
    pub updated: Instant,
}

/// Everything known about one originator.
#[derive(Debug, Clone)]
pub struct Originator {
    /// Advertisements, at most one per neighbour.
    pub routes: heapless::Vec<RouteEntry, MAX_ROUTES_PER_ORIGINATOR>,
    /// Babel feasibility distance.
    pub fd: Option<FeasibilityDistance>,
    /// The link to the selected next hop.
    pub selected: Option<LinkId>,
    /// The link to the backup next hop (a different neighbour).
    pub backup: Option<LinkId>,
    /// Installed metric (INFINITY without a route).
    pub metric: u16,
    /// Newest authenticated (epoch, seqno) seen, and its chain element.
    pub latest: SeqKey,
    /// Chain element of `latest`, to rebuild retractions and answers.
    pub chain: [u8; CHAIN_ELEMENT_LEN],
    /// Newest key we rebroadcast.
    pub forwarded: Option<SeqKey>,
    /// Caps how fast we rebroadcast this originator's OGMs.
    pub forward_gate: Gcra,
    /// When we last sent a seqno request for it, and how many since it was lost.
    pub last_request: Option<Instant>,
    /// Seqno requests sent since the route was lost.
    pub request_count: u8,
    /// When it last had (or got) a route; for garbage collection.
    pub last_reachable: Instant,
}

/// Selection result for one originator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// Next hop or metric changed.
    pub changed: bool,
    /// Had a route before, none now.
    pub lost: bool,
}

/// What to do with a new advertisement when the route list is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// Stored (new or refreshed).
    Stored,
    /// Stored after evicting a worse advertisement.
    Evicted,
    /// Not stored: worse than every kept one.
    Dropped,
}

impl Originator {
    /// A new originator first heard at `now` with `seq`.
    pub fn new(now: Instant, seq: SeqKey, chain: [u8; CHAIN_ELEMENT_LEN]) -> Self {
        Originator {
            routes: heapless::Vec::new(),
            fd: None,
            selected: None,
            backup: None,
            metric: INFINITY,
            latest: seq,
            chain,
            forwarded: None,
            forward_gate: Gcra::default(),
            last_request: None,
            request_count: 0,
            last_reachable: now,
        }
    }

    /// The advertisement from neighbour `neigh`.
    pub fn route_via(&self, neigh: LinkId) -> Option<&RouteEntry> {
        self.routes.iter().find(|r| r.neigh == neigh)
    }

    /// Store or refresh the advertisement of `entry.neigh`, evicting the worst other
    /// (not the selected) when full; `cost` gives current link costs.
    pub fn upsert(&mut self, entry: RouteEntry, cost: impl Fn(LinkId) -> u16) -> Upsert {
        if let Some(r) = self.routes.iter_mut().find(|r| r.neigh == entry.neigh) {
            *r = entry;
            return Upsert::Stored;
        }
        if self.routes.push(entry).is_ok() {
            return Upsert::Stored;
        }
        let fd = self.fd;
        let rank = |r: &RouteEntry| {
            let feasible = FeasibilityDistance::is_feasible(fd, r.seq, r.metric);
            (feasible, core::cmp::Reverse(add(r.metric, cost(r.neigh))))
        };
        let selected = self.selected;
        let worst = self
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| Some(r.neigh) != selected)
            .min_by_key(|(_, r)| rank(r))
            .map(|(i, r)| (i, rank(r)));
        match worst {
            Some((i, w)) if rank(&entry) > w => {
                self.routes[i] = entry;
                Upsert::Evicted
            }
            _ => Upsert::Dropped,
        }
    }

    /// Remove the advertisement of `neigh`; true if there was one.
    pub fn remove_via(&mut self, neigh: LinkId) -> bool {
        let before = self.routes.len();
        self.routes.retain(|r| r.neigh != neigh);
        before != self.routes.len()
    }

    /// Whether any advertisement is finite but infeasible (a seqno request can help).
    pub fn has_infeasible(&self, cost: impl Fn(LinkId) -> u16) -> bool {
        self.routes.iter().any(|r| {
            add(r.metric, cost(r.neigh)) < INFINITY
                && !FeasibilityDistance::is_feasible(self.fd, r.seq, r.metric)
        })
    }

    /// Re-run route selection. `cost` gives link costs, `node_of` a neighbour's node id
    /// (the backup prefers a different node than the best).
    pub fn select(
        &mut self,
        now: Instant,
        cost: impl Fn(LinkId) -> u16,
        node_of: impl Fn(LinkId) -> Option<NodeId>,
    ) -> Selection {
        let fd = self.fd;
        let usable = |r: &RouteEntry| {
            let total = add(r.metric, cost(r.neigh));
            (total < INFINITY && FeasibilityDistance::is_feasible(fd, r.seq, r.metric))
                .then_some((r.neigh, total))
        };
        let best = self
            .routes
            .iter()
            .filter_map(usable)
            .min_by_key(|c| (c.1, c.0));
        let current = self
            .selected
            .and_then(|n| self.route_via(n))
            .and_then(usable);
        let chosen = match (current, best) {
            (Some(cur), Some(b)) if !clearly_better(b.1, cur.1) => Some(cur),
            (_, b) => b,
        };
        let chosen_node = chosen.and_then(|c| node_of(c.0));
        let backup = self
            .routes
            .iter()
            .filter_map(usable)
            .filter(|c| Some(c.0) != chosen.map(|c| c.0))
            .min_by_key(|c| {
                let same_node = chosen_node.is_some() && node_of(c.0) == chosen_node;
                (same_node, c.1, c.0)
            });
        let old = (self.selected, self.metric);
        self.selected = chosen.map(|c| c.0);
        self.metric = chosen.map_or(INFINITY, |c| c.1);
        self.backup = backup.map(|c| c.0);
        if self.selected.is_some() {
            self.last_reachable = now;
            self.request_count = 0;
        }
        Selection {
            changed: old != (self.selected, self.metric),
            lost: old.0.is_some() && self.selected.is_none(),
        }
    }
}

/// All originators, bounded by MAX_ORIGINATORS.
#[derive(Debug, Default)]
pub struct OriginatorTable {
    map: BTreeMap<NodeId, Originator>,
    /// Unreachable originators evicted to admit a new one.
    pub evicted: u64,
    /// New originators refused because the table was full of reachable ones.
    pub refused: u64,
}

impl OriginatorTable {
    /// Look up.
    pub fn get(&self, node: &NodeId) -> Option<&Originator> {
        self.map.get(node)
    }

    /// Look up mutably.
    pub fn get_mut(&mut self, node: &NodeId) -> Option<&mut Originator> {
        self.map.get_mut(node)
    }

    /// Number held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Iterate.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &Originator)> {
        self.map.iter()
    }

    /// Iterate mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&NodeId, &mut Originator)> {
        self.map.iter_mut()
    }

    /// Remove entries for which `keep` is false.
    pub fn retain(&mut self, keep: impl FnMut(&NodeId, &mut Originator) -> bool) {
        self.map.retain(keep);
    }

    /// Insert a new originator; when full, evict the longest-unreachable one without a
    /// route, else refuse. Returns whether it is now present.
    pub fn insert(&mut self, node: NodeId, o: Originator) -> bool {
        if self.map.len() >= MAX_ORIGINATORS {
            let victim = self
                .map
                .iter()
                .filter(|(_, o)| o.selected.is_none())
                .min_by_key(|(_, o)| o.last_reachable)
                .map(|(n, _)| *n);
            match victim {
                Some(v) => {
                    self.map.remove(&v);
                    self.evicted += 1;
                }
                None => {
                    self.refused += 1;
                    return false;
                }
            }
        }
        self.map.insert(node, o);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant::ZERO;

    fn entry(neigh: LinkId, seqno: u32, metric: u16) -> RouteEntry {
        RouteEntry {
            neigh,
            seq: SeqKey::new(1, seqno),
            metric,
            updated: T0,
        }
    }

    fn node(i: LinkId) -> Option<NodeId> {
        Some(NodeId([i.slot() as u8; 16]))
    }

    fn l(i: u16) -> LinkId {
        LinkId::for_tests(i as u8)
    }

    #[test]
    fn picks_best_feasible_and_backup_from_other_neighbour() {
        let mut o = Originator::new(T0, SeqKey::new(1, 1), [0; 16]);
        o.upsert(entry(l(0), 1, 600), |_| 288);
        o.upsert(entry(l(1), 1, 300), |_| 288);
        o.upsert(entry(l(2), 1, 400), |_| 288);
        let s = o.select(T0, |_| 288, node);
        assert!(s.changed && !s.lost);
        assert_eq!(
            (o.selected, o.backup, o.metric),
            (Some(l(1)), Some(l(2)), 588)
        );
    }

    #[test]
    fn route_that_would_loop_is_rejected() {
        // We advertised (seq 5, metric 600). Neighbour 1 now offers seq 5 at metric 700:
        // it may be routing through us (its metric ≥ ours), so it is not feasible.
        let mut o = Originator::new(T0, SeqKey::new(1, 5), [0; 16]);
        o.fd = Some(FeasibilityDistance {
            seq: SeqKey::new(1, 5),
            metric: 600,
        });
        o.upsert(entry(l(1), 5, 700), |_| 288);
        o.select(T0, |_| 288, node);
        assert_eq!(o.selected, None);
        assert!(o.has_infeasible(|_| 288));
        // A strictly smaller metric at the same seqno, or a newer seqno, is feasible.
        o.upsert(entry(l(2), 5, 599), |_| 288);
        o.select(T0, |_| 288, node);
        assert_eq!(o.selected, Some(l(2)));
        o.upsert(entry(l(1), 6, 700), |_| 288);
        o.select(T0, |_| 288, node);
        assert_eq!((o.selected, o.backup), (Some(l(2)), Some(l(1))));
    }

    #[test]
    fn hysteresis_keeps_current_unless_clearly_better() {
        let mut o = Originator::new(T0, SeqKey::new(1, 1), [0; 16]);
        o.upsert(entry(l(0), 1, 300), |_| 288);
        o.select(T0, |_| 288, node);
        o.upsert(entry(l(1), 1, 280), |_| 288);
        o.select(T0, |_| 288, node);
        assert_eq!(o.selected, Some(l(0)));
        o.upsert(entry(l(1), 1, 200), |_| 288);
        let s = o.select(T0, |_| 288, node);
        assert_eq!((o.selected, s.changed), (Some(l(1)), true));
    }

    #[test]
    fn backup_prefers_a_different_node() {
        let mut o = Originator::new(T0, SeqKey::new(1, 1), [0; 16]);
        o.upsert(entry(l(0), 1, 100), |_| 288);
        o.upsert(entry(l(1), 1, 110), |_| 288); // same node as 0, other interface
        o.upsert(entry(l(2), 1, 500), |_| 288);
        let same = |i: LinkId| if i == l(2) { node(l(2)) } else { node(l(1)) };
        o.select(T0, |_| 288, same);
        assert_eq!((o.selected, o.backup), (Some(l(0)), Some(l(2))));
    }

    #[test]
    fn full_route_list_evicts_worst_but_never_selected() {
        let mut o = Originator::new(T0, SeqKey::new(1, 1), [0; 16]);
        for n in 0..4 {
            o.upsert(entry(l(n), 1, 1000 - n * 100), |_| 288);
        }
        o.select(T0, |_| 288, node);
        assert_eq!(o.selected, Some(l(3)));
        assert_eq!(o.upsert(entry(l(9), 1, 5000), |_| 288), Upsert::Dropped);
        assert_eq!(o.upsert(entry(l(9), 1, 50), |_| 288), Upsert::Evicted);
        assert!(o.route_via(l(0)).is_none() && o.route_via(l(3)).is_some());
        assert_eq!(o.routes.len(), MAX_ROUTES_PER_ORIGINATOR);
    }

    #[test]
    fn table_bound_and_eviction_counters() {
        let mut t = OriginatorTable::default();
        let id = |i: usize| {
            NodeId([
                (i >> 8) as u8,
                i as u8,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ])
        };
        for i in 0..MAX_ORIGINATORS {
            let mut o = Originator::new(Instant::from_millis(i as u64), SeqKey::new(1, 1), [0; 16]);
            o.selected = (i != 7).then_some(l(0));
            assert!(t.insert(id(i), o));
        }
        let o = Originator::new(T0, SeqKey::new(1, 1), [0; 16]);
        assert!(t.insert(id(5000), o.clone()));
        assert_eq!((t.evicted, t.len()), (1, MAX_ORIGINATORS));
        assert!(t.get(&id(7)).is_none());
        let mut o2 = o;
        o2.selected = Some(l(0));
        t.get_mut(&id(5000)).unwrap().selected = Some(l(0));
        assert!(!t.insert(id(6000), o2));
        assert_eq!(t.refused, 1);
    }
}
