//! A `Routing` with its own link table, for routing's unit and scenario tests: the node
//! keeps the table in its link layer; here each test router holds one of routing's parts
//! only, and is called by (interface, MAC) as the node resolves frames.

use std::ops::{Deref, DerefMut};

use rand_chacha::ChaCha20Rng;

use super::*;
use crate::wire::{HelloRepr, SeqnoRequestRepr};

/// A router and its link table.
pub(crate) struct TestRouter {
    pub routing: Routing,
    pub links: LinkTable<Option<Neighbor>>,
}

impl Deref for TestRouter {
    type Target = Routing;

    fn deref(&self) -> &Routing {
        &self.routing
    }
}

impl DerefMut for TestRouter {
    fn deref_mut(&mut self) -> &mut Routing {
        &mut self.routing
    }
}

impl TestRouter {
    pub fn new(own: NodeId, epoch: u32, now: Instant, rng: ChaCha20Rng) -> Self {
        TestRouter {
            routing: Routing::new(own, epoch, now, rng),
            links: LinkTable::default(),
        }
    }

    fn id(&self, iface: IfaceId, mac: MacAddr) -> Option<LinkId> {
        self.links.find(iface, mac)
    }

    pub fn neighbor_authenticated(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
        node: NodeId,
    ) -> bool {
        let links = &mut self.links;
        self.routing
            .neighbor_authenticated(now, links, (iface, mac), node)
    }

    pub fn handle_hello(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
        hello: &HelloRepr,
        authenticated: bool,
    ) {
        let links = &mut self.links;
        self.routing
            .handle_hello(now, links, (iface, mac), hello, authenticated)
    }

    pub fn handle_ihu(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
        entries: impl IntoIterator<Item = IhuEntry>,
    ) {
        let links = &mut self.links;
        self.routing.handle_ihu(now, links, (iface, mac), entries)
    }

    pub fn handle_authenticated_frame(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
    ) -> bool {
        match self.id(iface, mac) {
            Some(id) => self
                .routing
                .handle_authenticated_frame(now, &mut self.links, id),
            None => {
                self.routing.ctx.counters.frames_unknown_neighbor += 1;
                false
            }
        }
    }

    pub fn handle_probe_ack(&mut self, now: Instant, iface: IfaceId, mac: MacAddr, seq: u32) {
        if let Some(id) = self.id(iface, mac) {
            self.routing.handle_probe_ack(now, &mut self.links, id, seq);
        }
    }

    pub fn note_data_sent(&mut self, now: Instant, iface: IfaceId, mac: MacAddr) {
        if let Some(id) = self.id(iface, mac) {
            self.routing.note_data_sent(now, &mut self.links, id);
        }
    }

    pub fn handle_ogm(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
        ogm: &OgmRepr,
        auth: &mut impl OgmAuth,
    ) {
        let links = &mut self.links;
        self.routing.handle_ogm(now, links, (iface, mac), ogm, auth)
    }

    pub fn handle_seqno_request(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
        req: &SeqnoRequestRepr,
    ) {
        let links = &mut self.links;
        self.routing
            .handle_seqno_request(now, links, (iface, mac), req)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.routing.handle_timeout(now, &mut self.links)
    }

    fn key(&self, id: LinkId) -> Option<(IfaceId, MacAddr)> {
        self.links.get(id).map(|e| (e.iface, e.mac))
    }

    pub fn next_hop(&self, node: &NodeId) -> Option<(IfaceId, MacAddr)> {
        self.key(self.routing.next_hop(node)?)
    }

    pub fn backup_hop(&self, node: &NodeId) -> Option<(IfaceId, MacAddr)> {
        self.key(self.routing.backup_hop(node)?)
    }

    pub fn neighbors(&self) -> impl Iterator<Item = NeighborInfo> + '_ {
        neighbor_infos(&self.links)
    }

    pub fn ihu_entries(&self, iface: IfaceId) -> impl Iterator<Item = IhuEntry> + '_ {
        ihu_entries(&self.links, iface)
    }

    pub fn assert_timers_cover_state(&self, now: Instant) {
        self.routing.assert_timers_cover_state(&self.links, now)
    }
}
