//! The control plane: routing (neighbour quality, originators, next hops), the store of
//! signed announcements that authenticates OGMs, our own hash chain and announcement, and
//! the overlay address book.
//!
//! It sends through the link layer (`LinkLayer`, passed in) and lends it the link table
//! for routing's calls; the data plane asks it for next hops, keys and addresses.

mod announcements;
mod ipv4;
mod onion_keys;
mod traffic;

pub use announcements::{Announcements, MAX_ANNOUNCEMENTS, MAX_PROBATION_PER_SOURCE};
pub(super) use onion_keys::OnionKeys;
pub use onion_keys::{ONION_KEY_LIFETIME, ONION_KEY_ROTATION};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::link_layer::LinkLayer;
use super::{DropReason, IfaceId, NodeConfig, NodeError, Shared, Stats, Timer, MAX_IFACES};
use crate::crypto::hashchain::DEFAULT_CHAIN_LEN;
use crate::crypto::{Announcement, ChainSigner, Identity, PublicIdentity};
use crate::link::LinkId;
use crate::overlay::{ipv6_for, mesh_prefix, AddressBook, MeshPrefix};
use crate::routing::seqno::TokenBucket;
use crate::routing::Routing;
use crate::time::{Duration, Instant};
use crate::wire::{HelloRepr, IhuIter, MacAddr, NodeId, SeqnoRequestRepr, ANNOUNCE_LEN};
use traffic::PendingOgm;

/// Most OGMs parked while their originator's announcement is fetched.
pub const MAX_PENDING_OGMS: usize = 64;
/// Least time between two ProbeAck broadcasts on one interface.
pub const PROBE_ACK_MIN_GAP: Duration = Duration::from_millis(50);
/// Announcements we send in answer to requests, per second over all neighbours.
pub const ANNOUNCE_REPLIES_PER_SEC: u32 = 200;
/// Onion key records whose signature we check, per second (and burst): only records newer
/// than the one held cost a check, but a member can make up any number of them.
pub const ONION_KEY_CHECKS_PER_SEC: u32 = 64;

/// Routing, announcements, our hash chain and the address book.
pub(super) struct ControlPlane {
    /// Neighbours' link quality, originators and next hops.
    routing: Routing,
    /// Verified announcements (ours included): they authenticate OGMs.
    anns: Announcements,
    /// The hash chain our OGMs are signed with.
    chain: ChainSigner,
    /// Our signed announcement anchoring `chain`.
    own_ann: [u8; ANNOUNCE_LEN],
    /// The index of our IPv4 claim in the pool, if IPv4 is on and we hold one.
    ipv4_index: Option<u8>,
    /// The mesh's /48.
    prefix: MeshPrefix,
    /// Anonymous senders' /48 (docs/protocol.md §5.6).
    anon_prefix: MeshPrefix,
    /// Our overlay IPv6 address.
    addr6: Ipv6Addr,
    /// Which node holds which overlay address.
    book: AddressBook,
    /// OGMs waiting for their originator's announcement.
    pending_ogms: heapless::Vec<PendingOgm, MAX_PENDING_OGMS>,
    /// Announcements we send in answer to requests (`ANNOUNCE_REPLIES_PER_SEC`).
    announce_budget: TokenBucket,
    /// `Routing::originators_forgotten` when announcements were last matched against it.
    originators_forgotten: u64,
    /// When we last broadcast a ProbeAck on each interface.
    last_probe_ack: heapless::Vec<(IfaceId, Instant), MAX_IFACES>,
    /// Our node id.
    own_id: NodeId,
    /// Our onion keys and the relays' records.
    onion_keys: OnionKeys,
    /// Onion key records checked (`ONION_KEY_CHECKS_PER_SEC`).
    onion_key_checks: TokenBucket,
}

impl ControlPlane {
    /// Routing seeded from `rng`, our first hash chain and announcement, and an address
    /// book holding our own addresses.
    pub(super) fn new(
        cfg: &NodeConfig,
        identity: &Identity,
        epoch: u32,
        rng: &mut ChaCha20Rng,
        now: Instant,
    ) -> Result<ControlPlane, NodeError> {
        let id = identity.node_id();
        // Claim index 0 of the pool to start with (docs/protocol.md §6.5).
        let ipv4_index = cfg.ipv4_pool.map(|_| 0);
        let (chain, own_ann) =
            signed_chain(identity, epoch, 0, ipv4_index).map_err(NodeError::Announcement)?;
        let prefix = mesh_prefix(cfg.mesh_name.as_bytes());
        let mut routing_seed = [0u8; 32];
        rng.fill_bytes(&mut routing_seed);
        let mut routing = Routing::new(id, epoch, now, ChaCha20Rng::from_seed(routing_seed));
        routing.set_hello_interval(cfg.hello_interval);
        let mut anns = Announcements::default();
        // Our own announcement answers AnnounceRequests for us like any other.
        let _ = anns.insert(&own_ann, None, true, || true);
        let mut book = AddressBook::new(prefix, cfg.ipv4_pool);
        book.learn(id, None);
        let onion_keys =
            OnionKeys::new(identity, epoch, cfg.relay, rng, now).map_err(NodeError::OnionKey)?;
        let mut control = ControlPlane {
            routing,
            anns,
            chain,
            own_ann,
            ipv4_index,
            prefix,
            anon_prefix: crate::overlay::anon::anon_prefix(&prefix),
            addr6: ipv6_for(&prefix, &id),
            book,
            pending_ogms: heapless::Vec::new(),
            announce_budget: TokenBucket::new(
                now,
                ANNOUNCE_REPLIES_PER_SEC,
                ANNOUNCE_REPLIES_PER_SEC,
            ),
            originators_forgotten: 0,
            last_probe_ack: heapless::Vec::new(),
            own_id: id,
            onion_keys,
            onion_key_checks: TokenBucket::new(
                now,
                ONION_KEY_CHECKS_PER_SEC,
                ONION_KEY_CHECKS_PER_SEC,
            ),
        };
        control.learn_own_ipv4_claim(cfg, identity);
        Ok(control)
    }

    /// The routing state (neighbours, originators, counters).
    pub(super) fn routing(&self) -> &Routing {
        &self.routing
    }

    /// The link to the next hop toward `dst`.
    pub(super) fn next_hop(&self, dst: &NodeId) -> Option<LinkId> {
        self.routing.next_hop(dst)
    }

    /// Our onion keys and the relays' records.
    pub(super) fn onion_keys(&self) -> &OnionKeys {
        &self.onion_keys
    }

    /// Rotate our onion key and forget expired records when due; returns the next deadline.
    pub(super) fn onion_key_timer(&mut self, now: Instant, shared: &mut Shared) -> Instant {
        // Signing our own record with our own identity cannot fail; if it did, the old key
        // would simply stay in use until the next attempt.
        let _ = self
            .onion_keys
            .housekeep(now, &shared.identity, &mut shared.rng);
        self.onion_keys.next_deadline()
    }

    /// The verified announcement held for `node`.
    pub(super) fn announcement(&self, node: &NodeId) -> Option<&Announcement> {
        self.anns.get(node)
    }

    /// Number of announcements held (ours included).
    pub(super) fn announcement_count(&self) -> usize {
        self.anns.len()
    }

    /// The keys `node` signed its announcement with, if we hold it.
    pub(super) fn peer_identity(&self, node: &NodeId) -> Option<PublicIdentity> {
        self.anns.get(node).map(|a| a.identity)
    }

    /// Our signed announcement (sent to every new neighbour with our group key).
    pub(super) fn own_announcement(&self) -> &[u8; ANNOUNCE_LEN] {
        &self.own_ann
    }

    /// The overlay address book.
    pub(super) fn book(&self) -> &AddressBook {
        &self.book
    }

    /// Which node holds overlay address `addr`, as far as we know.
    pub(super) fn lookup(&self, addr: &IpAddr) -> Option<NodeId> {
        self.book.lookup(addr)
    }

    /// The mesh's /48 prefix.
    pub(super) fn prefix(&self) -> MeshPrefix {
        self.prefix
    }

    /// The /48 of anonymous senders' ephemeral addresses.
    pub(super) fn anon_prefix(&self) -> MeshPrefix {
        self.anon_prefix
    }

    /// Our overlay IPv6 address.
    pub(super) fn addr6(&self) -> Ipv6Addr {
        self.addr6
    }

    /// Our IPv4 overlay address (`id` is ours), if IPv4 is on and we hold one.
    pub(super) fn overlay_ipv4(&self, id: &NodeId) -> Option<Ipv4Addr> {
        self.book.claims()?.address_of(id)
    }

    /// Routing's next deadline.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.routing.poll_timeout()
    }

    /// Run routing's deadlines due at `now`.
    pub(super) fn handle_timeout(&mut self, now: Instant, link: &mut LinkLayer) {
        self.routing.handle_timeout(now, link.table_mut());
    }

    /// Routing starts saying hello on `iface`, where our MAC is `mac`.
    pub(super) fn add_interface(&mut self, now: Instant, iface: IfaceId, mac: MacAddr) -> bool {
        self.routing.add_interface(now, iface, mac)
    }

    /// `iface` goes: routing withdraws the routes through its neighbours while their links
    /// are still there to name them.
    pub(super) fn remove_interface(&mut self, now: Instant, link: &mut LinkLayer, iface: IfaceId) {
        self.routing.remove_interface(now, link.table_mut(), iface);
    }

    /// `iface` and its links are gone: what we kept about it goes too (parked OGMs
    /// counted).
    pub(super) fn forget_interface(&mut self, iface: IfaceId, stats: &mut Stats) {
        self.last_probe_ack.retain(|(i, _)| *i != iface);
        let before = self.pending_ogms.len();
        self.pending_ogms.retain(|p| p.iface != iface);
        for _ in self.pending_ogms.len()..before {
            stats.drop(DropReason::PendingExpired);
        }
    }

    /// A hello from `source` (clear, or `encrypted` under its group key).
    pub(super) fn handle_hello(
        &mut self,
        now: Instant,
        link: &mut LinkLayer,
        source: (IfaceId, MacAddr),
        hello: &HelloRepr,
        encrypted: bool,
    ) {
        self.routing
            .handle_hello(now, link.table_mut(), source, hello, encrypted);
    }

    /// An Ihu from `source`: how well it hears its neighbours.
    pub(super) fn handle_ihu(
        &mut self,
        now: Instant,
        link: &mut LinkLayer,
        source: (IfaceId, MacAddr),
        entries: IhuIter<'_>,
    ) {
        self.routing
            .handle_ihu(now, link.table_mut(), source, entries);
    }

    /// A seqno request from `source`.
    pub(super) fn handle_seqno_request(
        &mut self,
        now: Instant,
        link: &mut LinkLayer,
        source: (IfaceId, MacAddr),
        req: &SeqnoRequestRepr,
    ) {
        self.routing
            .handle_seqno_request(now, link.table_mut(), source, req);
    }

    /// A ProbeAck from `source` for our probe `seq`.
    pub(super) fn handle_probe_ack(
        &mut self,
        now: Instant,
        link: &mut LinkLayer,
        (iface, mac): (IfaceId, MacAddr),
        seq: u32,
    ) {
        if let Some(id) = link.find(iface, mac) {
            self.routing
                .handle_probe_ack(now, link.table_mut(), id, seq);
        }
    }

    /// A frame from link `id` to `source` authenticated (`node` is its verified node, if
    /// known): routing hears it alive.
    pub(super) fn authenticated_frame(
        &mut self,
        now: Instant,
        link: &mut LinkLayer,
        (id, source): (LinkId, (IfaceId, MacAddr)),
        node: Option<NodeId>,
    ) {
        let links = link.table_mut();
        if !self.routing.handle_authenticated_frame(now, links, id) {
            // Routing forgot this neighbour while it was silent: it is back.
            if let Some(node) = node {
                self.routing
                    .neighbor_authenticated(now, links, source, node);
            }
        }
    }

    /// The link session with `node` at `source` came up.
    pub(super) fn neighbor_authenticated(
        &mut self,
        now: Instant,
        link: &mut LinkLayer,
        source: (IfaceId, MacAddr),
        node: NodeId,
    ) {
        self.routing
            .neighbor_authenticated(now, link.table_mut(), source, node);
    }

    /// The link session on link `id` ended.
    pub(super) fn neighbor_deauthenticated(
        &mut self,
        now: Instant,
        link: &mut LinkLayer,
        id: LinkId,
    ) {
        self.routing
            .neighbor_deauthenticated(now, link.table_mut(), id);
    }

    /// A data frame went to link `id` (routing probes a link gone quiet).
    pub(super) fn note_data_sent(&mut self, now: Instant, link: &mut LinkLayer, id: LinkId) {
        self.routing.note_data_sent(now, link.table_mut(), id);
    }

    /// The probation timer: announcements on probation too long go.
    pub(super) fn probation_timer(&mut self, now: Instant, shared: &mut Shared) {
        self.anns.set_now(now);
        self.expire_announcements(&mut shared.stats);
        shared
            .timers
            .set(Timer::Probation, self.anns.next_probation_end());
    }

    /// Start our hash chain at `start` and make its announcement ours (stored, not yet
    /// pushed: it goes out with our next OGM). False if it could not be built.
    pub(super) fn adopt_chain(&mut self, start: u32, identity: &Identity, epoch: u32) -> bool {
        let Ok((chain, ann)) = signed_chain(identity, epoch, start, self.ipv4_index) else {
            return false;
        };
        self.chain = chain;
        self.own_ann = ann;
        let _ = self.anns.insert(&ann, None, true, || true);
        true
    }

    /// The hash chain our OGMs are signed with.
    #[cfg(test)]
    pub(super) fn chain(&self) -> &ChainSigner {
        &self.chain
    }

    /// The announcement bytes held for `node`.
    #[cfg(test)]
    pub(super) fn announcement_bytes(&self, node: &NodeId) -> Option<&[u8; ANNOUNCE_LEN]> {
        self.anns.bytes(node)
    }

    /// Number of OGMs parked while their announcement is fetched.
    #[cfg(test)]
    pub(super) fn pending_ogms(&self) -> usize {
        self.pending_ogms.len()
    }
}

/// A hash chain of our OGMs starting at seqno `start`, and our signed announcement
/// anchoring it (with our IPv4 claim index, if any).
pub(super) fn signed_chain(
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
