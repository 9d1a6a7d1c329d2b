//! BATMAN-style distance-vector routing as a sans-IO state machine (docs/protocol.md §4).
//!
//! [`Routing`] takes `handle_*` inputs (hellos, Ihus, OGMs, seqno requests, liveness hints,
//! timeouts) with the current time, and is drained in this order after every input:
//! `poll_action` (control messages to send) until None, `poll_ogm_batch` (aggregated OGMs
//! to broadcast on every interface) until None, `poll_event` until None, then
//! `poll_timeout` for the next deadline. Randomness comes from a seeded RNG given at
//! construction; origin authentication from the node through [`OgmAuth`].

#![forbid(unsafe_code)]

mod auth;
mod ctx;
mod estimator;
mod flood;
mod links;
pub mod metric;
mod neighbor;
mod originator;
mod requests;
pub mod seqno;
mod timers;
pub mod trickle;

#[cfg(test)]
mod facade_tests;
#[cfg(test)]
mod harness;
#[cfg(test)]
mod test_router;

pub use auth::{AuthVerdict, OgmAuth};
pub use ctx::{Action, Counters, Dest, Event, OGM_AGGREGATION, OGM_BATCH_MAX, OGM_QUEUE_CAP};
pub use estimator::HELLO_WINDOW;
pub use metric::{HOP_PENALTY, INFINITY};
pub use neighbor::{eviction_rank, DownReason, Neighbor, NeighborSlot, NeighborState, Neighbors};
pub use originator::{MAX_ORIGINATORS, MAX_ROUTES_PER_ORIGINATOR};
pub use seqno::SeqKey;

use rand_chacha::ChaCha20Rng;

use crate::iface::IfaceId;
use crate::link::{LinkId, LinkTable};
use crate::time::{Duration, Instant};
use crate::wire::{IhuEntry, MacAddr, NodeId, OgmRepr};

use ctx::Ctx;
use originator::OriginatorTable;
use seqno::{RecentSet, TokenBucket};
use timers::Timer;
use trickle::{Trickle, TrickleConfig};

/// Most mesh interfaces.
pub const MAX_IFACES: usize = 8;
/// Hello interval we advertise; actual gaps are uniform in [HELLO_INTERVAL_MIN, HELLO_INTERVAL).
pub const HELLO_INTERVAL: Duration = Duration::from_secs(4);
/// Shortest gap between two periodic hellos.
pub const HELLO_INTERVAL_MIN: Duration = Duration::from_secs(3);
/// A new neighbour triggers an early hello (so it gets our Ihu) at most this often per interface.
pub const TRIGGERED_HELLO_MIN_GAP: Duration = Duration::from_secs(1);
/// A triggered hello leaves within this random delay.
pub const TRIGGERED_HELLO_DELAY: Duration = Duration::from_millis(200);
/// Own-OGM Trickle timer: Imin 1 s, Imax 32 s, k 1 (k unused, see docs §4.6).
pub const OGM_TRICKLE: TrickleConfig = TrickleConfig {
    imin: Duration::from_secs(1),
    doublings: 5,
    k: 1,
};
/// TTL of the OGMs we originate.
pub const OGM_TTL: u8 = 64;
/// A neighbour's advertisement not refreshed for this long is dropped (4 · Imax).
pub const ROUTE_EXPIRY: Duration = Duration::from_secs(128);
/// An unreachable originator (and its feasibility distance) is forgotten after this long.
pub const ORIGINATOR_GC: Duration = Duration::from_secs(300);
/// How soon a timer whose deadline passed without its work getting done is looked at again.
pub const STUCK_RETRY: Duration = Duration::from_millis(100);

/// One mesh interface.
#[derive(Debug, Clone, Copy)]
struct Iface {
    id: IfaceId,
    mac: MacAddr,
    hello_seq: u16,
    next_hello: Instant,
    last_triggered: Option<Instant>,
}

/// A neighbour as shown to the CLI and simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborInfo {
    /// Its link.
    pub link: LinkId,
    /// Interface.
    pub iface: IfaceId,
    /// MAC.
    pub mac: MacAddr,
    /// Node id once authenticated.
    pub node: Option<NodeId>,
    /// Lifecycle state.
    pub state: NeighborState,
    /// Our receive ratio from it (0..=65535).
    pub rx_quality: u16,
    /// Its receive ratio from us (0..=65535).
    pub tx_quality: u16,
    /// Link cost (ETX + hop penalty, INFINITY unless Up).
    pub cost: u16,
    /// When anything was last heard from it.
    pub last_heard: Instant,
}

/// A route as shown to the CLI and simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// Originator.
    pub node: NodeId,
    /// Selected next hop.
    pub next_hop: Option<LinkId>,
    /// Backup next hop (different neighbour, also feasible).
    pub backup: Option<LinkId>,
    /// Installed metric.
    pub metric: u16,
    /// Newest authenticated (epoch, seqno).
    pub latest: SeqKey,
}

/// The routing component of one node.
#[derive(Debug)]
pub struct Routing {
    own: NodeId,
    epoch: u32,
    seqno: u32,
    ifaces: heapless::Vec<Iface, MAX_IFACES>,
    originators: OriginatorTable,
    trickle: Trickle,
    ctx: Ctx,
    last_bump: Option<Instant>,
    announce_recent: RecentSet<NodeId, 64>,
    announce_bucket: TokenBucket,
    request_recent: RecentSet<(NodeId, SeqKey), 64>,
    request_bucket: TokenBucket,
    hello_interval: Duration,
}

impl Routing {
    /// Use `interval` between our hellos (clamped to `HELLO_INTERVAL_CLAMP`; advertised in
    /// every hello, so neighbours time their loss detection by it). Default `HELLO_INTERVAL`.
    pub fn set_hello_interval(&mut self, interval: Duration) {
        let (lo, hi) = neighbor::HELLO_INTERVAL_CLAMP;
        self.hello_interval = interval.max(lo).min(hi);
    }

    /// The interval between our hellos.
    pub fn hello_interval(&self) -> Duration {
        self.hello_interval
    }

    /// A router for node `own` in restart epoch `epoch`, starting at `now`.
    pub fn new(own: NodeId, epoch: u32, now: Instant, mut rng: ChaCha20Rng) -> Self {
        let trickle = Trickle::new(OGM_TRICKLE, now, &mut rng);
        let mut ctx = Ctx::new(rng);
        ctx.timers.set(Timer::Trickle, Some(trickle.deadline()));
        Routing {
            own,
            epoch,
            seqno: 0,
            ifaces: heapless::Vec::new(),
            originators: OriginatorTable::default(),
            trickle,
            ctx,
            last_bump: None,
            announce_recent: RecentSet::new(requests::ANNOUNCE_REQUEST_DEDUP),
            announce_bucket: TokenBucket::new(
                now,
                requests::ANNOUNCE_REQUEST_RATE.0,
                requests::ANNOUNCE_REQUEST_RATE.1,
            ),
            request_recent: RecentSet::new(requests::SEQNO_REQUEST_DEDUP),
            request_bucket: TokenBucket::new(
                now,
                requests::SEQNO_REQUEST_RATE.0,
                requests::SEQNO_REQUEST_RATE.1,
            ),
            hello_interval: HELLO_INTERVAL,
        }
    }

    /// Add a mesh interface with our MAC on it; its first hello leaves within 200 ms.
    /// Returns false if MAX_IFACES are already present or `iface` is known.
    pub fn add_interface(&mut self, now: Instant, iface: IfaceId, mac: MacAddr) -> bool {
        if self.ifaces.iter().any(|i| i.id == iface) {
            return false;
        }
        let first = now + self.ctx.jitter(Duration::ZERO, TRIGGERED_HELLO_DELAY);
        let added = self
            .ifaces
            .push(Iface {
                id: iface,
                mac,
                hello_seq: 0,
                next_hello: first,
                last_triggered: None,
            })
            .is_ok();
        if added {
            self.ctx.timers.arm(Timer::Hello, first);
        }
        added
    }

    /// Our node id.
    pub fn own_id(&self) -> NodeId {
        self.own
    }

    /// Our current (epoch, seqno): the last OGM we originated.
    pub fn own_seq(&self) -> SeqKey {
        SeqKey::new(self.epoch, self.seqno)
    }

    /// Next control message to send.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.ctx.actions.pop_front()
    }

    /// Next batch of OGMs to broadcast on every interface. Entries whose `node` is our own
    /// id carry a zero `chain`: the node fills in its hash-chain element for (epoch, seqno).
    pub fn poll_ogm_batch(&mut self) -> Option<heapless::Vec<OgmRepr, OGM_BATCH_MAX>> {
        self.ctx.take_batch()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.ctx.events.pop_front()
    }

    /// The link to the selected next hop toward `node`.
    pub fn next_hop(&self, node: &NodeId) -> Option<LinkId> {
        self.originators.get(node)?.selected
    }

    /// The link to the backup next hop toward `node` (another feasible neighbour).
    pub fn backup_hop(&self, node: &NodeId) -> Option<LinkId> {
        self.originators.get(node)?.backup
    }

    /// Route details for `node`.
    pub fn route(&self, node: &NodeId) -> Option<RouteInfo> {
        self.originators.get(node).map(|o| self.route_info(node, o))
    }

    /// All originators with their routes.
    pub fn originators(&self) -> impl Iterator<Item = RouteInfo> + '_ {
        self.originators.iter().map(|(n, o)| self.route_info(n, o))
    }

    /// Number of originators held (at most MAX_ORIGINATORS).
    pub fn originator_count(&self) -> usize {
        self.originators.len()
    }

    /// All counters, including the tables' eviction counters.
    pub fn counters(&self) -> Counters {
        let mut c = self.ctx.counters;
        c.originators_evicted = self.originators.evicted;
        c.originators_refused = self.originators.refused;
        c
    }

    /// How many times an originator was forgotten, or refused a place, so far: the node
    /// drops announcements of originators routing does not hold when this changes.
    pub fn originators_forgotten(&self) -> u64 {
        let c = &self.ctx.counters;
        c.originators_expired
            + c.originators_restarted
            + self.originators.evicted
            + self.originators.refused
    }

    /// Current own-OGM Trickle interval.
    pub fn ogm_interval(&self) -> Duration {
        self.trickle.interval()
    }

    fn route_info(&self, node: &NodeId, o: &originator::Originator) -> RouteInfo {
        RouteInfo {
            node: *node,
            next_hop: o.selected,
            backup: o.backup,
            metric: o.metric,
            latest: o.latest,
        }
    }
}

/// Every neighbour in `links` with its link quality (the CLI and the simulator).
pub fn neighbor_infos<T: NeighborSlot>(
    links: &LinkTable<T>,
) -> impl Iterator<Item = NeighborInfo> + '_ {
    links.neighbors().map(|(link, n)| NeighborInfo {
        link,
        iface: n.iface,
        mac: n.mac,
        node: n.node,
        state: n.state,
        rx_quality: n.rx_quality(),
        tx_quality: n.tx_quality(),
        cost: n.cost(),
        last_heard: n.last_heard,
    })
}

/// Ihu entries to send with our hello on `iface`: every neighbour we hear there (complete:
/// a neighbour missing from the list learns that we do not hear it).
pub fn ihu_entries<T: NeighborSlot>(
    links: &LinkTable<T>,
    iface: IfaceId,
) -> impl Iterator<Item = IhuEntry> + '_ {
    links
        .neighbors()
        .filter(move |(_, n)| n.iface == iface)
        .map(|(_, n)| IhuEntry {
            mac: n.mac,
            rx_quality: n.rx_quality(),
        })
        .filter(|e| e.rx_quality > 0)
}
