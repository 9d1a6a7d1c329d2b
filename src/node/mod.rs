//! The whole protocol as one sans-IO state machine.
//!
//! Inputs are `handle_frame`, `handle_ip_packet` and `handle_timeout`, each with `now`.
//! After every input drain, in this order: `poll_transmit` (frames for the mesh) until
//! `None`, `poll_deliver` (IP packets for the TUN side) until `None`, `poll_event` until
//! `None`, then call `handle_timeout` at `poll_timeout`. The node never reads a clock,
//! opens a socket or uses a global RNG: randomness comes from the seed given to `new`.
//!
//! Inside, the work is split by job between a link layer, a control plane and a data plane
//! (see [`Node`] and docs/architecture.md); `Node` is their one facade.

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
pub use control::{
    Announcements, ANNOUNCE_REPLIES_PER_SEC, MAX_ANNOUNCEMENTS, MAX_PENDING_OGMS,
    MAX_PROBATION_PER_SOURCE, ONION_KEY_CHECKS_PER_SEC, ONION_KEY_LIFETIME, ONION_KEY_ROTATION,
    PROBE_ACK_MIN_GAP,
};
pub use data::{
    CircuitInfo, BUILDS_PER_SEC, BUILD_RETRY, BUILD_TIMEOUT, CIRCUIT_LIFETIME, DATA_TTL,
    E2E_INITS_PER_SEC, E2E_TRIGGERS_PER_SEC, ICMP_ERRORS_PER_SEC, LOOP_INTERVAL, MAX_OWN_CIRCUITS,
    MAX_RELAY_CIRCUITS, RELAY_IDLE, SPARE_CIRCUITS,
};
pub use link_layer::{
    ANNOUNCE_CHECK_BURST, ANNOUNCE_CHECK_PERIOD, HANDSHAKE_RETRY, HANDSHAKE_TIMEOUT, MAX_LINKS,
    SESSION_SILENT_AFTER,
};
pub use ring::{Ring, Slot};
pub use stats::{DropReason, Stats, BUILD_MS_BOUNDS};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::crypto::{Announcement, Identity, MeshPsk};
use crate::overlay::{AddressBook, MeshPrefix};
use crate::routing::Routing;
use crate::time::Instant;
use crate::wire::{MacAddr, NodeId};

use control::ControlPlane;
use data::{DataPlane, Env};
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
/// Most events queued for the caller (events are informational; overflow is counted).
pub const EVENT_QUEUE_CAP: usize = 256;

/// Called with every Data payload a node relays, as it can read it (simulator only).
#[cfg(feature = "sim")]
pub type RelayTap = Box<dyn FnMut(&[u8])>;

/// One veilmesh node: the one sans-IO facade over its three parts.
///
/// - the link layer (`link_layer`): interfaces, the link table with each neighbour's
///   sessions, handshakes and group key, frame tags, the transmit queues;
/// - the control plane (`control`): routing, announcements and our hash chain, the
///   overlay address book;
/// - the data plane (`data`): IP packets in and out, forwarding and relaying, end-to-end
///   sessions, the deliver queue.
///
/// The parts never hold each other: a call that needs another part gets it as an argument
/// (the node splits its borrows), and what one part reports for another (a session up,
/// links lost) comes back to the node, which passes it on.
pub struct Node {
    shared: Shared,
    link: LinkLayer,
    control: ControlPlane,
    data: DataPlane,
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
    /// Our onion key record could not be signed (a bug, not a configuration error).
    #[error("cannot sign the node's onion key: {0}")]
    OnionKey(crate::crypto::onion::OnionError),
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
        let psk = MeshPsk::derive(cfg.mesh_name.as_bytes(), cfg.mesh_secret.as_deref());
        // The control plane seeds routing first, then the link layer makes our group key:
        // the order the seed is spent in is part of a deterministic run.
        let control = ControlPlane::new(&cfg, &identity, epoch, &mut rng, now)?;
        let link = LinkLayer::new(&cfg, &psk, epoch, &mut rng, now);
        let mut filter_key = [0u8; 32];
        rng.fill_bytes(&mut filter_key);
        let data = DataPlane::new(&cfg, now, filter_key);
        let mut timers = timers::TimerTable::default();
        timers.set(Timer::GroupKey, Some(link.group_key_deadline()));
        timers.set(Timer::OnionKeys, Some(control.onion_keys().next_deadline()));
        // Circuits of our own start being built once the first relays' keys can arrive.
        if cfg.circuits || cfg.anonymous {
            timers.set(Timer::Circuits, Some(now + BUILD_RETRY));
        }
        Ok(Node {
            shared: Shared {
                cfg,
                id: identity.node_id(),
                identity,
                psk,
                epoch,
                rng,
                timers,
                events: heapless::Deque::new(),
                stats: Stats::default(),
            },
            link,
            control,
            data,
        })
    }

    /// Attach a mesh interface with our MAC on it. Returns false if there are too many.
    pub fn add_interface(&mut self, now: Instant, iface: IfaceId, mac: MacAddr) -> bool {
        if self.link.mac_of(iface).is_some() {
            return true;
        }
        if !self.link.add_interface(iface, mac) {
            return false;
        }
        self.control.add_interface(now, iface, mac)
    }

    /// Detach mesh interface `iface` (it went down or disappeared): every link and session
    /// on it is dropped and routing forgets its neighbours there, so a later `add_interface`
    /// (maybe with a new MAC) starts clean. Frames for it already queued still come out of
    /// `poll_transmit`; the caller discards them. False if `iface` was not attached.
    pub fn remove_interface(&mut self, now: Instant, iface: IfaceId) -> bool {
        if self.link.mac_of(iface).is_none() {
            return false;
        }
        self.control.remove_interface(now, &mut self.link, iface);
        let on_iface = self.link.links_on(iface);
        self.forget_links(now, &on_iface);
        self.link.remove_interface(iface);
        self.control.forget_interface(iface, &mut self.shared.stats);
        self.drain_routing(now);
        true
    }

    /// An IP packet from the TUN side (an application on this node sending into the mesh).
    pub fn handle_ip_packet(&mut self, now: Instant, packet: &[u8]) {
        let (data, mut env) = self.data_env();
        data.handle_ip_packet(now, packet, &mut env);
        self.drain_routing(now);
    }

    /// Switch anonymous mode (docs/protocol.md §8.9) and its direct-mode exceptions, as a
    /// reloaded configuration says; circuits start being built at once when it comes on.
    pub fn set_anonymity(
        &mut self,
        now: Instant,
        anonymous: bool,
        direct: Vec<crate::overlay::Iid>,
    ) {
        let was = self.shared.cfg.anonymous || self.shared.cfg.circuits;
        self.shared.cfg.anonymous = anonymous;
        self.shared.cfg.direct = direct;
        if anonymous && !was {
            self.shared.timers.arm(Timer::Circuits, now);
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.shared.id
    }

    /// This node's overlay IPv6 address.
    pub fn overlay_ipv6(&self) -> Ipv6Addr {
        self.control.addr6()
    }

    /// This node's IPv4 overlay address, if IPv4 is on and it holds one.
    pub fn overlay_ipv4(&self) -> Option<Ipv4Addr> {
        self.control.overlay_ipv4(&self.shared.id)
    }

    /// Which node holds overlay address `addr`, as far as this node knows.
    pub fn lookup(&self, addr: &IpAddr) -> Option<NodeId> {
        self.control.lookup(addr)
    }

    /// The mesh's /48 prefix.
    pub fn mesh_prefix(&self) -> MeshPrefix {
        self.control.prefix()
    }

    /// The restart epoch this node runs in.
    pub fn epoch(&self) -> u32 {
        self.shared.epoch
    }

    /// Make this node an instrumented relay: `tap` sees every Data payload it relays, as
    /// far as it can read it (simulator tests of what relays learn).
    #[cfg(feature = "sim")]
    pub fn set_relay_tap(&mut self, tap: RelayTap) {
        self.data.set_relay_tap(tap);
    }

    /// Our onion circuits (built or being built), for the CLI and tests.
    pub fn circuits(&self, now: Instant) -> Vec<CircuitInfo> {
        self.data.circuits(now)
    }

    /// Send a loop through our oldest built circuit now: benchmarks and tests drive cells
    /// through a circuit with it. False if none is built or the loop was not queued.
    #[cfg(feature = "sim")]
    pub fn send_circuit_loop(&mut self, now: Instant) -> bool {
        let (data, mut env) = self.data_env();
        data.send_circuit_loop(now, &mut env)
    }

    /// Number of circuits this node relays.
    pub fn relayed_circuits(&self) -> usize {
        self.data.relayed_circuits()
    }

    /// The two ends of every circuit this node relays, as it knows them: the node before it
    /// and the one after it (`None` where it is the exit). Tests check that a middle relay
    /// never holds a circuit's creator or destination.
    pub fn relayed_legs(&self) -> Vec<(NodeId, Option<NodeId>)> {
        self.data.relayed_legs()
    }

    /// Our signed onion key record (docs/protocol.md §8.1), as we push it.
    pub fn onion_key_record(&self) -> [u8; crate::wire::ONION_KEY_LEN] {
        let id = self.shared.id;
        self.control
            .onion_keys()
            .bytes(&id, &id)
            .copied()
            .unwrap_or([0; crate::wire::ONION_KEY_LEN])
    }

    /// Number of other relays whose onion keys this node holds.
    pub fn onion_keys_held(&self) -> usize {
        self.control.onion_keys().len()
    }

    /// Number of nodes held in the end-to-end table (with a session or setting one up).
    pub fn e2e_peers(&self) -> usize {
        self.data.e2e_peers()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// The routing state (neighbours, originators, counters) for the CLI and simulator.
    pub fn routing(&self) -> &Routing {
        self.control.routing()
    }

    /// The verified announcement held for `node` (read-only: tests and the CLI).
    pub fn announcement(&self, node: &NodeId) -> Option<&Announcement> {
        self.control.announcement(node)
    }

    /// Number of announcements held (ours included).
    pub fn announcement_count(&self) -> usize {
        self.control.announcement_count()
    }

    /// The overlay address book (read-only: tests and the CLI).
    pub fn address_book(&self) -> &AddressBook {
        self.control.book()
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
        self.link_key(self.control.next_hop(dst)?)
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
    pub fn next_transmit_iface(&mut self) -> Option<IfaceId> {
        self.link.next_transmit_iface(&mut self.shared.stats)
    }

    /// The next frame to send, written into `buf` (at least 1500 bytes).
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        self.link.poll_transmit(buf, &mut self.shared.stats)
    }

    /// The next IP packet for the TUN side, written into `buf`; returns its length.
    pub fn poll_deliver(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.data.poll_deliver(buf, &mut self.shared.stats)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.shared.events.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.control.poll_timeout(), self.shared.timers.next()) {
            (Some(r), Some(n)) => Some(r.min(n)),
            (r, n) => r.or(n),
        }
    }

    /// Run every deadline due at `now`: routing's, then the node's in `Timer::ALL` order.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.control.handle_timeout(now, &mut self.link);
        for timer in Timer::ALL {
            if self.shared.timers.take_due(timer, now) {
                self.on_timer(now, timer);
            }
        }
        self.drain_routing(now);
    }

    /// Drain routing's outputs into frames and events.
    fn drain_routing(&mut self, now: Instant) {
        self.control.drain(now, &mut self.link, &mut self.shared);
    }

    /// The data plane, and the rest of the node lent to it for one call.
    fn data_env(&mut self) -> (&mut DataPlane, Env<'_>) {
        let Node {
            shared,
            link,
            control,
            data,
        } = self;
        (
            data,
            Env {
                link,
                control,
                shared,
            },
        )
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "icmp_tests.rs"]
mod icmp_tests;

#[cfg(test)]
#[path = "onion_tests.rs"]
mod onion_tests;
