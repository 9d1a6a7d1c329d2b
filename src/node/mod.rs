//! The whole protocol as one sans-IO state machine.
//!
//! Inputs are `handle_frame`, `handle_ip_packet` and `handle_timeout`, each with `now`.
//! After every input drain, in this order: `poll_transmit` (frames for the mesh) until
//! `None`, `poll_deliver` (IP packets for the TUN side) until `None`, `poll_event` until
//! `None`, then call `handle_timeout` at `poll_timeout`. The node never reads a clock,
//! opens a socket or uses a global RNG: randomness comes from the seed given to `new`.

#![forbid(unsafe_code)]

mod config;
mod control;
mod data;
mod index;
mod link_layer;
mod neighbours;
mod ring;
mod rx;
mod stats;
mod timers;

pub use config::NodeConfig;
pub use control::announcements::{Announcements, MAX_ANNOUNCEMENTS, MAX_PROBATION_PER_SOURCE};
pub use link_layer::{
    ANNOUNCE_CHECK_BURST, ANNOUNCE_CHECK_PERIOD, HANDSHAKE_RETRY, HANDSHAKE_TIMEOUT, MAX_LINKS,
    SESSION_SILENT_AFTER,
};
pub use ring::{Ring, Slot};
pub use stats::{DropReason, Stats};

use std::net::Ipv6Addr;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::crypto::hashchain::DEFAULT_CHAIN_LEN;
use crate::crypto::{Announcement, ChainSigner, Identity, MeshPsk};
use crate::overlay::{ipv6_for, mesh_prefix, AddressBook, MeshPrefix};
use crate::routing::seqno::TokenBucket;
use crate::routing::Routing;
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, NodeId, ANNOUNCE_LEN};

use link_layer::LinkLayer;
use timers::Timer;

pub use crate::iface::IfaceId;
pub use crate::link::LinkId;

/// A frame the node wrote into the caller's buffer and wants sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Interface to send on.
    pub iface: IfaceId,
    /// Destination MAC (a neighbour, or broadcast).
    pub dst: MacAddr,
    /// Bytes written after the Ethernet header (the caller adds the Ethernet header).
    pub len: usize,
}

/// Something that happened, for logs, the CLI and the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A link session with a neighbour was established (or rekeyed).
    SessionUp {
        /// Interface.
        iface: IfaceId,
        /// Neighbour MAC.
        mac: MacAddr,
        /// Neighbour node id.
        node: NodeId,
    },
    /// Something the routing layer reported.
    Routing(crate::routing::Event),
}

/// Most mesh interfaces of one node.
pub const MAX_IFACES: usize = 8;
/// Most OGMs parked while their originator's announcement is fetched.
pub const MAX_PENDING_OGMS: usize = 64;
/// Most events queued for the caller (events are informational; overflow is counted).
pub const EVENT_QUEUE_CAP: usize = 256;
/// Largest ttl of data frames we originate (the IP hop limit gives it, capped here).
pub const DATA_TTL: u8 = 64;
/// Least time between two ProbeAck broadcasts on one interface.
pub const PROBE_ACK_MIN_GAP: Duration = Duration::from_millis(50);
/// Announcements we send in answer to requests, per second over all neighbours.
pub const ANNOUNCE_REPLIES_PER_SEC: u32 = 200;
/// End-to-end handshakes started for sealed packets under unknown sessions, per second.
pub const E2E_TRIGGERS_PER_SEC: u32 = 20;
/// End-to-end msg 1s from new sources the node reads (two key agreements each before it
/// knows one is genuine), per second and burst over all of them.
pub const E2E_INITS_PER_SEC: u32 = 20;
/// ICMP errors the node generates, per second (and burst), over all destinations.
pub const ICMP_ERRORS_PER_SEC: u32 = 20;

/// Called with every Data payload a node relays, as it can read it (simulator only).
#[cfg(feature = "sim")]
pub type RelayTap = Box<dyn FnMut(&[u8])>;

/// An OGM waiting for its originator's announcement.
#[derive(Debug, Clone, Copy)]
struct PendingOgm {
    iface: IfaceId,
    mac: MacAddr,
    ogm: crate::wire::OgmRepr,
    since: Instant,
}

/// One veilmesh node: link sessions, routing, overlay addressing, queues and counters.
pub struct Node {
    shared: Shared,
    link: LinkLayer,
    routing: Routing,
    anns: Announcements,
    chain: ChainSigner,
    own_ann: [u8; ANNOUNCE_LEN],
    ipv4_index: Option<u8>,
    prefix: MeshPrefix,
    addr6: Ipv6Addr,
    book: AddressBook,
    pending_ogms: heapless::Vec<PendingOgm, MAX_PENDING_OGMS>,
    deliver: Ring<()>,
    announce_budget: TokenBucket,
    icmp_budget: TokenBucket,
    /// `Routing::originators_forgotten` when announcements were last matched against it.
    originators_forgotten: u64,
    /// When we last broadcast a ProbeAck on each interface.
    last_probe_ack: heapless::Vec<(IfaceId, Instant), MAX_IFACES>,
    probe_seq: u32,
    /// Where ICMP errors are built (allocated once; taken while in use, like `scratch`).
    icmp_scratch: Option<Box<[u8; crate::wire::MAX_DATA_PACKET_LEN]>>,
    /// Where a packet that waited for its end-to-end session is taken out to be sealed
    /// (allocated once; taken while in use).
    unheld: Option<Box<[u8; crate::wire::MAX_DATA_PACKET_LEN]>>,
    /// End-to-end peers and sessions.
    e2e: data::e2e_table::E2eTable,
    /// Packets waiting for their end-to-end session.
    waiting: data::e2e_wait::Waiting,
    /// The start of recent traceroute probes.
    probes: data::e2e_wait::Probes,
    /// Handshakes started because a sealed packet named a session we do not hold.
    e2e_budget: TokenBucket,
    /// End-to-end msg 1s read (`E2E_INITS_PER_SEC`).
    e2e_init_budget: TokenBucket,
    /// The simulator's instrumented relay: sees what this node can read of what it relays.
    #[cfg(feature = "sim")]
    relay_tap: Option<RelayTap>,
}

/// What the node holds for all three parts and lends them on each call: configuration,
/// identity, randomness, the timer table, the event queue and the counters.
struct Shared {
    cfg: NodeConfig,
    identity: Identity,
    id: NodeId,
    psk: MeshPsk,
    epoch: u32,
    rng: ChaCha20Rng,
    timers: timers::TimerTable,
    events: heapless::Deque<Event, EVENT_QUEUE_CAP>,
    stats: Stats,
}

impl Shared {
    /// Queue `event` for `poll_event` (counted when the queue is full).
    fn push_event(&mut self, event: Event) {
        if self.events.push_back(event).is_err() {
            self.stats.drop(DropReason::EventQueueFull);
        }
    }

    /// A fresh seed from the node's RNG.
    fn seed(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.rng.fill_bytes(&mut s);
        s
    }
}

/// Why a node could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The hash chain or announcement could not be built (a bug, not a configuration error).
    #[error("cannot build the node's signed announcement: {0}")]
    Announcement(String),
}

impl Node {
    /// A node with `identity` in restart `epoch` (must grow on every restart; the daemon
    /// persists it), randomness from `seed`, started at `now`.
    pub fn new(
        cfg: NodeConfig,
        identity: Identity,
        epoch: u32,
        seed: [u8; 32],
        now: Instant,
    ) -> Result<Node, NodeError> {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let id = identity.node_id();
        let psk = MeshPsk::derive(cfg.mesh_name.as_bytes(), cfg.mesh_secret.as_deref());
        // Claim index 0 of the pool to start with (docs/protocol.md §6.5).
        let ipv4_index = cfg.ipv4_pool.map(|_| 0);
        let (chain, own_ann) =
            signed_chain(&identity, epoch, 0, ipv4_index).map_err(NodeError::Announcement)?;
        let prefix = mesh_prefix(cfg.mesh_name.as_bytes());
        let mut routing_seed = [0u8; 32];
        rng.fill_bytes(&mut routing_seed);
        let mut routing = Routing::new(id, epoch, now, ChaCha20Rng::from_seed(routing_seed));
        routing.set_hello_interval(cfg.hello_interval);
        let link = LinkLayer::new(&cfg, &psk, epoch, &mut rng, now);
        let mut anns = Announcements::default();
        // Our own announcement answers AnnounceRequests for us like any other.
        let _ = anns.insert(&own_ann, None, true, || true);
        let mut book = AddressBook::new(prefix, cfg.ipv4_pool);
        book.learn(id, None);
        let mut node = Node {
            deliver: Ring::new(cfg.deliver_queue),
            announce_budget: TokenBucket::new(
                now,
                ANNOUNCE_REPLIES_PER_SEC,
                ANNOUNCE_REPLIES_PER_SEC,
            ),
            icmp_budget: TokenBucket::new(now, ICMP_ERRORS_PER_SEC, ICMP_ERRORS_PER_SEC),
            shared: Shared {
                cfg,
                identity,
                id,
                psk,
                epoch,
                rng,
                timers: timers::TimerTable::default(),
                events: heapless::Deque::new(),
                stats: Stats::default(),
            },
            routing,
            anns,
            chain,
            own_ann,
            ipv4_index,
            prefix,
            addr6: ipv6_for(&prefix, &id),
            book,
            pending_ogms: heapless::Vec::new(),
            originators_forgotten: 0,
            last_probe_ack: heapless::Vec::new(),
            probe_seq: 0,
            icmp_scratch: Some(Box::new([0u8; crate::wire::MAX_DATA_PACKET_LEN])),
            unheld: Some(Box::new([0u8; crate::wire::MAX_DATA_PACKET_LEN])),
            e2e: data::e2e_table::E2eTable::default(),
            waiting: data::e2e_wait::Waiting::default(),
            probes: data::e2e_wait::Probes::default(),
            e2e_budget: TokenBucket::new(now, E2E_TRIGGERS_PER_SEC, E2E_TRIGGERS_PER_SEC),
            e2e_init_budget: TokenBucket::new(now, E2E_INITS_PER_SEC, E2E_INITS_PER_SEC),
            #[cfg(feature = "sim")]
            relay_tap: None,
            link,
        };
        node.learn_own_ipv4_claim();
        let group_key_due = node.link.group_key_deadline();
        node.shared.timers.set(Timer::GroupKey, Some(group_key_due));
        Ok(node)
    }

    /// Attach a mesh interface with our MAC on it. Returns false if there are too many.
    pub fn add_interface(&mut self, now: Instant, iface: IfaceId, mac: MacAddr) -> bool {
        if self.link.mac_of(iface).is_some() {
            return true;
        }
        if !self.link.add_interface(iface, mac) {
            return false;
        }
        self.routing.add_interface(now, iface, mac)
    }

    /// Detach mesh interface `iface` (it went down or disappeared): every link and session
    /// on it is dropped and routing forgets its neighbours there, so a later `add_interface`
    /// (maybe with a new MAC) starts clean. Frames for it already queued still come out of
    /// `poll_transmit`; the caller discards them. False if `iface` was not attached.
    pub fn remove_interface(&mut self, now: Instant, iface: IfaceId) -> bool {
        if self.link.mac_of(iface).is_none() {
            return false;
        }
        // Routing first: it withdraws routes through the interface's neighbours while their
        // links are still there to name them.
        self.routing
            .remove_interface(now, self.link.table_mut(), iface);
        let on_iface = self.link.links_on(iface);
        self.forget_links(now, &on_iface);
        self.link.remove_interface(iface);
        self.last_probe_ack.retain(|(i, _)| *i != iface);
        let before = self.pending_ogms.len();
        self.pending_ogms.retain(|p| p.iface != iface);
        for _ in self.pending_ogms.len()..before {
            self.shared.stats.drop(DropReason::PendingExpired);
        }
        self.drain_routing(now);
        true
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.shared.id
    }

    /// This node's overlay IPv6 address.
    pub fn overlay_ipv6(&self) -> Ipv6Addr {
        self.addr6
    }

    /// Which node holds overlay address `addr`, as far as this node knows.
    pub fn lookup(&self, addr: &std::net::IpAddr) -> Option<NodeId> {
        self.book.lookup(addr)
    }

    /// The mesh's /48 prefix.
    pub fn mesh_prefix(&self) -> MeshPrefix {
        self.prefix
    }

    /// The restart epoch this node runs in.
    pub fn epoch(&self) -> u32 {
        self.shared.epoch
    }

    /// Make this node an instrumented relay: `tap` sees every Data payload it relays, as
    /// far as it can read it (simulator tests of what relays learn).
    #[cfg(feature = "sim")]
    pub fn set_relay_tap(&mut self, tap: RelayTap) {
        self.relay_tap = Some(tap);
    }

    /// Number of nodes held in the end-to-end table (with a session or setting one up).
    pub fn e2e_peers(&self) -> usize {
        self.e2e.len()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// The routing state (neighbours, originators, counters) for the CLI and simulator.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// The verified announcement held for `node` (read-only: tests and the CLI).
    pub fn announcement(&self, node: &NodeId) -> Option<&Announcement> {
        self.anns.get(node)
    }

    /// Number of announcements held (ours included).
    pub fn announcement_count(&self) -> usize {
        self.anns.len()
    }

    /// The overlay address book (read-only: tests and the CLI).
    pub fn address_book(&self) -> &AddressBook {
        &self.book
    }

    /// Broadcast `msgs` in one frame on `iface` under our own group key, as any member
    /// can. The node uses it to re-announce itself (a new IPv4 claim); tests use it to play
    /// a malicious member. False if they do not fit in one frame or were not queued.
    pub fn broadcast_messages(
        &mut self,
        iface: IfaceId,
        msgs: &[crate::wire::Message<'_>],
    ) -> bool {
        self.link
            .broadcast_messages(iface, msgs, &mut self.shared.stats)
    }

    /// The current next hop toward `dst`.
    pub fn next_hop(&self, dst: &NodeId) -> Option<(IfaceId, MacAddr)> {
        self.link_key(self.routing.next_hop(dst)?)
    }

    /// The interface and neighbour MAC of link `id` (routes name their next hops by link).
    pub fn link_key(&self, id: LinkId) -> Option<(IfaceId, MacAddr)> {
        self.link.link_key(id)
    }

    /// Every neighbour routing holds, with its link quality.
    pub fn neighbors(&self) -> impl Iterator<Item = crate::routing::NeighborInfo> + '_ {
        crate::routing::neighbor_infos(self.link.table())
    }

    /// Number of neighbours with an established (confirmed) link session.
    pub fn sessions(&self) -> usize {
        self.link.sessions()
    }

    /// The interface the next frame `poll_transmit` gives goes out on (so the caller can
    /// pick that interface's buffer to write it into).
    pub fn next_transmit_iface(&self) -> Option<IfaceId> {
        self.link.next_transmit_iface()
    }

    /// The next frame to send, written into `buf` (at least 1500 bytes).
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        self.link.poll_transmit(buf, &mut self.shared.stats)
    }

    /// The next IP packet for the TUN side, written into `buf`; returns its length.
    pub fn poll_deliver(&mut self, buf: &mut [u8]) -> Option<usize> {
        let slot = self.deliver.front()?;
        let len = slot.len;
        let copied = match (buf.get_mut(..len), slot.buf.get(..len)) {
            (Some(dst), Some(src)) => {
                dst.copy_from_slice(src);
                true
            }
            _ => false,
        };
        self.deliver.pop();
        if !copied {
            self.shared.stats.drop(DropReason::DeliverQueueFull);
            return None;
        }
        self.shared.stats.packets_to_tun += 1;
        Some(len)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.shared.events.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.routing.poll_timeout(), self.shared.timers.next()) {
            (Some(r), Some(n)) => Some(r.min(n)),
            (r, n) => r.or(n),
        }
    }

    /// Run every deadline due at `now`: routing's, then the node's in `Timer::ALL` order.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.routing.handle_timeout(now, self.link.table_mut());
        for timer in Timer::ALL {
            if self.shared.timers.take_due(timer, now) {
                self.on_timer(now, timer);
            }
        }
        self.drain_routing(now);
    }
}

/// A hash chain of our OGMs starting at seqno `start`, and our signed announcement
/// anchoring it (with our IPv4 claim index, if any).
fn signed_chain(
    identity: &Identity,
    epoch: u32,
    start: u32,
    ipv4_claim: Option<u8>,
) -> Result<(ChainSigner, [u8; ANNOUNCE_LEN]), String> {
    let chain =
        ChainSigner::new(identity, epoch, start, DEFAULT_CHAIN_LEN).map_err(|e| e.to_string())?;
    let mut ann = Announcement::for_chain(identity, epoch, &chain);
    ann.ipv4_claim = ipv4_claim;
    let bytes = ann.sign(identity).map_err(|e| e.to_string())?;
    Ok((chain, bytes))
}

impl Node {
    /// Start our hash chain at `start` and make its announcement ours (stored, not yet
    /// pushed: it goes out with our next OGM). False if it could not be built.
    fn adopt_chain(&mut self, start: u32) -> bool {
        let Ok((chain, ann)) = signed_chain(
            &self.shared.identity,
            self.shared.epoch,
            start,
            self.ipv4_index,
        ) else {
            return false;
        };
        self.chain = chain;
        self.own_ann = ann;
        let _ = self.anns.insert(&ann, None, true, || true);
        true
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "icmp_tests.rs"]
mod icmp_tests;
