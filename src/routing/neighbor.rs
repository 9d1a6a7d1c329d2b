//! Neighbour table: link quality in both directions, liveness when idle and under traffic.

use crate::iface::IfaceId;
use crate::link::{Entry, Full, LinkId, LinkTable};
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, NodeId};

use super::estimator::{HelloOutcome, LinkEstimator};
use super::metric::{link_cost, INFINITY, QUALITY_ONE};
use super::seqno::TokenBucket;

/// Idle: a neighbour is lost after this many of its hello intervals without hearing it.
pub const NEIGHBOR_HOLD_HELLOS: u64 = 4;
/// A hello is counted as missed 1.5 intervals after the previous one, then every interval.
pub const HELLO_MISS_FACTOR_NUM: u64 = 3;
/// Denominator of the first-miss factor.
pub const HELLO_MISS_FACTOR_DEN: u64 = 2;
/// Advertised hello intervals are clamped to this range before use.
pub const HELLO_INTERVAL_CLAMP: (Duration, Duration) =
    (Duration::from_millis(500), Duration::from_secs(60));
/// Hello interval assumed for a neighbour until its first hello says otherwise.
pub const ASSUMED_HELLO_INTERVAL: Duration = Duration::from_secs(4);
/// The transmit ratio from a neighbour's Ihu is forgotten after this many of its hello intervals.
pub const IHU_HOLD_HELLOS: u64 = 8;
/// Under traffic: probe after this much silence since the first unconfirmed data frame...
pub const PROBE_AFTER: Duration = Duration::from_millis(100);
/// ...and declare the link dead after this much.
pub const DEAD_UNDER_TRAFFIC: Duration = Duration::from_millis(250);
/// Down and unauthenticated entries are forgotten after this much silence.
pub const NEIGHBOR_GC: Duration = Duration::from_secs(60);
/// Seqno requests accepted from one neighbour: rate per second and burst.
pub const NEIGHBOR_REQUEST_RATE: (u32, u32) = (4, 8);

/// Lifecycle of a neighbour entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighborState {
    /// Heard (clear hellos) but no link session yet: not used for routing.
    Unauthenticated,
    /// Authenticated and alive: used for routing.
    Up,
    /// Lost; comes back Up when heard authenticated again.
    Down,
}

/// Why a neighbour went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// Nothing heard for several hello intervals while idle.
    HelloTimeout,
    /// Nothing heard for DEAD_UNDER_TRAFFIC while sending it data.
    ProbeTimeout,
    /// The node closed the session.
    Deauthenticated,
}

/// One neighbour on one interface.
#[derive(Debug, Clone)]
pub struct Neighbor {
    /// Interface it is heard on.
    pub iface: IfaceId,
    /// Its MAC on that link.
    pub mac: MacAddr,
    /// Its node id, once authenticated.
    pub node: Option<NodeId>,
    /// Lifecycle state.
    pub state: NeighborState,
    pub(crate) est: LinkEstimator,
    pub(crate) hello_interval: Duration,
    pub(crate) next_miss: Option<Instant>,
    pub(crate) tx_quality: u16,
    pub(crate) tx_expires: Instant,
    pub(crate) last_heard: Instant,
    pub(crate) unconfirmed_since: Option<Instant>,
    pub(crate) next_probe: Option<Instant>,
    pub(crate) probe_seq: u32,
    /// Link cost the routes were last evaluated with.
    pub(crate) applied_cost: u16,
    pub(crate) requests: TokenBucket,
}

/// What a timer tick found for one neighbour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    /// Send a Probe with this seq.
    pub probe: Option<u32>,
    /// The neighbour just went down.
    pub down: Option<DownReason>,
    /// The entry should be removed (stale).
    pub gc: bool,
}

/// Link quality assumed from a completed handshake before any hello or Ihu: what the
/// estimator gives one received hello of one observed (8.5 of 16 slots).
pub const HANDSHAKE_PRIOR: u16 = (QUALITY_ONE as u32 * 17 / 32) as u16;

impl Neighbor {
    fn new(now: Instant, iface: IfaceId, mac: MacAddr) -> Self {
        Neighbor {
            iface,
            mac,
            node: None,
            state: NeighborState::Unauthenticated,
            est: LinkEstimator::default(),
            hello_interval: ASSUMED_HELLO_INTERVAL,
            next_miss: None,
            tx_quality: 0,
            tx_expires: now,
            last_heard: now,
            unconfirmed_since: None,
            next_probe: None,
            probe_seq: 0,
            applied_cost: INFINITY,
            requests: TokenBucket::new(now, NEIGHBOR_REQUEST_RATE.0, NEIGHBOR_REQUEST_RATE.1),
        }
    }

    /// Our receive ratio from it. A completed handshake proves the link works both ways,
    /// so before its first hello an authenticated neighbour gets the estimator's uncertain
    /// prior (one hello of one) instead of zero: a restarted or new neighbour is usable at
    /// once, at a cost that no proven path loses to.
    pub fn rx_quality(&self) -> u16 {
        if self.est.is_empty() && self.node.is_some() {
            return HANDSHAKE_PRIOR;
        }
        self.est.rx_quality()
    }

    /// The same prior for the other direction, until its first Ihu arrives.
    pub(crate) fn credit_handshake(&mut self, now: Instant) {
        if self.tx_quality == 0 {
            self.tx_quality = HANDSHAKE_PRIOR;
            self.tx_expires = now + self.hello_interval.mul_div(IHU_HOLD_HELLOS, 1);
        }
    }

    /// Its receive ratio from us, as reported in its Ihu (0 if none recent).
    pub fn tx_quality(&self) -> u16 {
        self.tx_quality
    }

    /// Current link cost; INFINITY unless Up.
    pub fn cost(&self) -> u16 {
        if self.state != NeighborState::Up {
            return INFINITY;
        }
        link_cost(self.rx_quality(), self.tx_quality)
    }

    /// Whether it is used for routing.
    pub fn is_up(&self) -> bool {
        self.state == NeighborState::Up
    }

    pub(crate) fn on_hello(&mut self, now: Instant, seq: u16, interval_10ms: u16) -> HelloOutcome {
        let iv = Duration::from_millis(interval_10ms as u64 * 10);
        self.hello_interval = iv.max(HELLO_INTERVAL_CLAMP.0).min(HELLO_INTERVAL_CLAMP.1);
        let outcome = self.est.on_hello(seq);
        if outcome != HelloOutcome::Duplicate && outcome != HelloOutcome::Old {
            let first = self
                .hello_interval
                .mul_div(HELLO_MISS_FACTOR_NUM, HELLO_MISS_FACTOR_DEN);
            self.next_miss = Some(now + first);
        }
        outcome
    }

    pub(crate) fn on_ihu(&mut self, now: Instant, rx_of_us: u16) {
        self.tx_quality = rx_of_us;
        self.tx_expires = now + self.hello_interval.mul_div(IHU_HOLD_HELLOS, 1);
    }

    /// Anything authenticated from it proves it alive.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
        self.unconfirmed_since = None;
        self.next_probe = None;
    }

    pub(crate) fn data_sent(&mut self, now: Instant) {
        if self.state == NeighborState::Up && self.unconfirmed_since.is_none() {
            self.unconfirmed_since = Some(now);
            self.next_probe = Some(now + PROBE_AFTER);
        }
    }

    /// Link history is kept: a flapping lossy neighbour must not come back looking perfect.
    pub(crate) fn set_down(&mut self) {
        self.state = NeighborState::Down;
        self.tx_quality = 0;
        self.unconfirmed_since = None;
        self.next_probe = None;
    }

    /// Earliest instant at which `tick` has work.
    pub(crate) fn deadline(&self) -> Instant {
        let mut d = self.last_heard + self.idle_limit();
        for t in [self.next_miss, self.next_probe].into_iter().flatten() {
            d = d.min(t);
        }
        if let Some(since) = self.unconfirmed_since {
            d = d.min(since + DEAD_UNDER_TRAFFIC);
        }
        if self.tx_quality != 0 {
            d = d.min(self.tx_expires);
        }
        d
    }

    fn idle_limit(&self) -> Duration {
        match self.state {
            NeighborState::Up => self.hello_interval.mul_div(NEIGHBOR_HOLD_HELLOS, 1),
            _ => NEIGHBOR_GC,
        }
    }

    /// Do what is due at `now`. Afterwards `deadline()` is later than `now` unless the
    /// entry is to be removed (`gc`): a neighbour that goes down has its misses counted
    /// and its forgetting checked in the same tick.
    pub(crate) fn tick(&mut self, now: Instant) -> Tick {
        let mut out = Tick::default();
        if self.state == NeighborState::Up {
            if let Some(since) = self.unconfirmed_since {
                if now >= since + DEAD_UNDER_TRAFFIC {
                    out.down = Some(DownReason::ProbeTimeout);
                } else if self.next_probe.is_some_and(|t| now >= t) {
                    self.probe_seq = self.probe_seq.wrapping_add(1);
                    out.probe = Some(self.probe_seq);
                    self.next_probe = Some(now + PROBE_AFTER);
                }
            }
            if out.down.is_none() && now >= self.last_heard + self.idle_limit() {
                out.down = Some(DownReason::HelloTimeout);
            }
            if out.down.is_some() {
                self.set_down();
            }
        }
        if self.state != NeighborState::Up {
            out.gc = now >= self.last_heard + NEIGHBOR_GC;
        }
        if let Some(t) = self.next_miss.filter(|t| now >= *t) {
            self.est.on_missed();
            self.next_miss = Some(t.max(now) + self.hello_interval);
        }
        if self.tx_quality != 0 && now >= self.tx_expires {
            self.tx_quality = 0;
        }
        out
    }
}

/// What routing keeps in an entry of the link table, and what it must know of the rest.
pub trait NeighborSlot {
    /// Routing's part: None until routing hears the neighbour, and again once it forgot it.
    fn neighbor(&self) -> Option<&Neighbor>;
    /// Routing's part, mutably.
    fn neighbor_slot(&mut self) -> &mut Option<Neighbor>;
    /// A new entry for a neighbour that routing hears before anything else does.
    fn with_neighbor(n: Neighbor) -> Self;
    /// Whether the rest of the entry holds nothing (no session, no handshake): then the
    /// entry may be evicted, and it goes once routing has forgotten the neighbour.
    fn idle(&self) -> bool;
    /// When anything was last heard on the link.
    fn last_heard(&self) -> Instant;
}

/// A link table holding routing's part only (routing's own tests and benches).
impl NeighborSlot for Option<Neighbor> {
    fn neighbor(&self) -> Option<&Neighbor> {
        self.as_ref()
    }

    fn neighbor_slot(&mut self) -> &mut Option<Neighbor> {
        self
    }

    fn with_neighbor(n: Neighbor) -> Self {
        Some(n)
    }

    fn idle(&self) -> bool {
        true
    }

    fn last_heard(&self) -> Instant {
        self.as_ref().map_or(Instant::ZERO, |n| n.last_heard)
    }
}

/// How an entry ranks for eviction when the link table is full: links whose neighbour is up
/// or that hold a session are never evicted, the rest by how recently they were heard.
pub fn eviction_rank<T: NeighborSlot>(e: &Entry<T>) -> Option<Instant> {
    let up = e.state.neighbor().is_some_and(Neighbor::is_up);
    (e.state.idle() && !up).then(|| e.state.last_heard())
}

/// The link table as routing reads it.
pub trait Neighbors {
    /// Routing's part of link `id`.
    fn neighbor(&self, id: LinkId) -> Option<&Neighbor>;
    /// Routing's part of link `id`, mutably.
    fn neighbor_mut(&mut self, id: LinkId) -> Option<&mut Neighbor>;
    /// The cost of link `id` (INFINITY unless its neighbour is up).
    fn cost(&self, id: LinkId) -> u16;
    /// The node id of link `id`'s neighbour, once authenticated.
    fn node_of(&self, id: LinkId) -> Option<NodeId>;
    /// Every link routing holds a part of.
    fn neighbors(&self) -> impl Iterator<Item = (LinkId, &Neighbor)>;
    /// When routing next has work for a neighbour.
    fn next_neighbor_deadline(&self) -> Option<Instant>;
}

impl<T: NeighborSlot> Neighbors for LinkTable<T> {
    fn neighbor(&self, id: LinkId) -> Option<&Neighbor> {
        self.get(id)?.state.neighbor()
    }

    fn neighbor_mut(&mut self, id: LinkId) -> Option<&mut Neighbor> {
        self.get_mut(id)?.state.neighbor_slot().as_mut()
    }

    fn cost(&self, id: LinkId) -> u16 {
        self.neighbor(id).map_or(INFINITY, Neighbor::cost)
    }

    fn node_of(&self, id: LinkId) -> Option<NodeId> {
        self.neighbor(id)?.node
    }

    fn neighbors(&self) -> impl Iterator<Item = (LinkId, &Neighbor)> {
        self.iter()
            .filter_map(|e| e.state.neighbor().map(|n| (e.id, n)))
    }

    fn next_neighbor_deadline(&self) -> Option<Instant> {
        self.neighbors().map(|(_, n)| n.deadline()).min()
    }
}

/// The link to (iface, mac) with routing's part present, adding either when missing; None
/// (counted) when the table is full of links that may not be evicted.
pub(crate) fn admit<T: NeighborSlot>(
    links: &mut LinkTable<T>,
    now: Instant,
    (iface, mac): (IfaceId, MacAddr),
    counters: &mut super::Counters,
) -> Option<LinkId> {
    if let Some(id) = links.find(iface, mac) {
        let e = links.get_mut(id)?;
        e.state
            .neighbor_slot()
            .get_or_insert_with(|| Neighbor::new(now, iface, mac));
        return Some(id);
    }
    let state = T::with_neighbor(Neighbor::new(now, iface, mac));
    match links.insert(iface, mac, state, eviction_rank) {
        Ok(ins) => {
            counters.neighbors_evicted += u64::from(ins.evicted.is_some());
            Some(ins.id)
        }
        Err(Full::Refused) => {
            counters.neighbors_refused += 1;
            None
        }
    }
}

/// Routing is done with link `id`'s neighbour: the entry goes if nothing else holds it,
/// else only routing's part.
pub(crate) fn forget<T: NeighborSlot>(links: &mut LinkTable<T>, id: LinkId) {
    let idle = links.get(id).is_some_and(|e| e.state.idle());
    if idle {
        links.remove(id);
    } else if let Some(e) = links.get_mut(id) {
        *e.state.neighbor_slot() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(now: Instant) -> Neighbor {
        let mut n = Neighbor::new(now, IfaceId(0), MacAddr([2, 0, 0, 0, 0, 1]));
        n.state = NeighborState::Up;
        n
    }

    #[test]
    fn dead_under_traffic_within_250ms() {
        let t0 = Instant::from_millis(10_000);
        let mut n = up(t0);
        n.on_hello(t0, 1, 400);
        n.heard(t0);
        n.data_sent(t0 + Duration::from_millis(5));
        let mut probes = Vec::new();
        let mut down_at = None;
        let mut now = t0;
        while down_at.is_none() && now < t0 + Duration::from_secs(2) {
            now = n.deadline();
            let tick = n.tick(now);
            if let Some(seq) = tick.probe {
                probes.push((seq, now.saturating_since(t0).as_millis()));
            }
            if tick.down.is_some() {
                down_at = Some((tick.down, now.saturating_since(t0).as_millis()));
            }
        }
        assert_eq!(probes, vec![(1, 105), (2, 205)]);
        assert_eq!(down_at, Some((Some(DownReason::ProbeTimeout), 255)));
        assert_eq!(n.state, NeighborState::Down);
    }

    #[test]
    fn probe_ack_keeps_link_alive_and_idle_hold_applies() {
        let t0 = Instant::from_millis(0);
        let mut n = up(t0);
        n.on_hello(t0, 1, 400);
        n.data_sent(t0);
        let t = n.deadline();
        assert_eq!(n.tick(t).probe, Some(1));
        n.heard(t + Duration::from_millis(20));
        assert_eq!(n.unconfirmed_since, None);
        // Idle: hellos every 4 s but none arrive: down after 4 intervals.
        let mut now = t;
        let mut down = None;
        while down.is_none() {
            now = n.deadline();
            down = n.tick(now).down;
        }
        assert_eq!(down, Some(DownReason::HelloTimeout));
        assert_eq!(now, t + Duration::from_millis(20) + Duration::from_secs(16));
    }

    #[test]
    fn table_bounds_and_eviction_counters() {
        let t0 = Instant::ZERO;
        let mut tab = LinkTable::<Option<Neighbor>>::default();
        let mut c = super::super::Counters::default();
        for i in 0..crate::link::MAX_LINKS_PER_IFACE {
            let mac = MacAddr([0, 0, 0, 0, 0, i as u8]);
            let at = t0 + Duration::from_secs(i as u64);
            assert!(admit(&mut tab, at, (IfaceId(0), mac), &mut c).is_some());
        }
        // Full of unauthenticated entries: the stalest (mac ..:00) is evicted.
        let new = MacAddr([9; 6]);
        assert!(admit(&mut tab, t0, (IfaceId(0), new), &mut c).is_some());
        assert_eq!(c.neighbors_evicted, 1);
        assert_eq!(tab.find(IfaceId(0), MacAddr([0; 6])), None);
        // Another interface has its own budget.
        assert!(admit(&mut tab, t0, (IfaceId(1), new), &mut c).is_some());
        // All Up: refused and counted.
        let ids: Vec<LinkId> = tab.ids().collect();
        for id in ids {
            tab.neighbor_mut(id).unwrap().state = NeighborState::Up;
        }
        assert_eq!(
            admit(&mut tab, t0, (IfaceId(0), MacAddr([8; 6])), &mut c),
            None
        );
        assert_eq!(c.neighbors_refused, 1);
        assert_eq!(
            tab.neighbors()
                .filter(|(_, n)| n.iface == IfaceId(0))
                .count(),
            64
        );
    }
}
