//! Neighbour inputs of [`Routing`]: hellos, Ihus, liveness, authentication.

use crate::iface::IfaceId;
use crate::link::{LinkId, LinkTable};
use crate::time::Instant;
use crate::wire::{HelloRepr, IhuEntry, MacAddr, NodeId};

use super::ctx::Event;
use super::estimator::HelloOutcome;
use super::flood::reselect;
use super::metric::{is_large_change, needs_reevaluation, INFINITY};
use super::neighbor::{self, DownReason, NeighborSlot, NeighborState, Neighbors};
use super::timers::Timer;
use super::{Routing, TRIGGERED_HELLO_DELAY, TRIGGERED_HELLO_MIN_GAP};

impl Routing {
    /// The link session with (iface, mac) is established and it is node `node`: the
    /// neighbour becomes usable for routing. False if the neighbour table is full.
    pub fn neighbor_authenticated<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        (iface, mac): (IfaceId, MacAddr),
        node: NodeId,
    ) -> bool {
        let Some(id) = neighbor::admit(links, now, (iface, mac), &mut self.ctx.counters) else {
            return false;
        };
        let Some(n) = links.neighbor_mut(id) else {
            return false;
        };
        n.node = Some(node);
        n.heard(now);
        n.credit_handshake(now);
        if n.state != NeighborState::Up {
            self.mark_up(now, links, id);
        }
        self.arm_neighbor(links, id);
        true
    }

    /// The link session with (iface, mac) is gone: routes through it are withdrawn.
    pub fn neighbor_deauthenticated<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        id: LinkId,
    ) {
        if let Some(n) = links.neighbor_mut(id) {
            if n.state == NeighborState::Up {
                n.set_down();
                self.neighbor_down(now, links, id, DownReason::Deauthenticated);
            }
        }
        if let Some(n) = links.neighbor_mut(id) {
            n.node = None;
            n.state = NeighborState::Unauthenticated;
        }
        // Forgetting after NEIGHBOR_GC may come sooner than loss after 4 of its hellos.
        self.arm_neighbor(links, id);
    }

    /// Interface `iface` is gone: every neighbour on it goes down (routes through it are
    /// withdrawn) and is forgotten, and no more hellos are sent there, so a later
    /// `add_interface` (maybe with a new MAC) starts clean. False if it was not known.
    pub fn remove_interface<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        iface: IfaceId,
    ) -> bool {
        let Some(pos) = self.ifaces.iter().position(|i| i.id == iface) else {
            return false;
        };
        let on_iface: heapless::Vec<LinkId, { crate::link::MAX_LINKS }> = links
            .iter()
            .filter(|e| e.iface == iface)
            .map(|e| e.id)
            .collect();
        for id in on_iface {
            if let Some(n) = links.neighbor_mut(id).filter(|n| n.is_up()) {
                n.set_down();
                self.neighbor_down(now, links, id, DownReason::Deauthenticated);
            }
            neighbor::forget(links, id);
        }
        self.ifaces.remove(pos);
        true
    }

    /// A hello from (iface, mac); `authenticated` if it came in an encrypted frame.
    /// Clear hellos are ignored for neighbours that have authenticated (anti-spoofing).
    pub fn handle_hello<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        (iface, mac): (IfaceId, MacAddr),
        hello: &HelloRepr,
        authenticated: bool,
    ) {
        let Some(id) = neighbor::admit(links, now, (iface, mac), &mut self.ctx.counters) else {
            return;
        };
        let Some(n) = links.neighbor_mut(id) else {
            return;
        };
        if n.node.is_some() && !authenticated {
            self.ctx.counters.hellos_clear_ignored += 1;
            return;
        }
        if authenticated && n.node.is_some() {
            self.touch(now, links, id);
        } else {
            n.last_heard = n.last_heard.max(now);
        }
        let Some(n) = links.neighbor_mut(id) else {
            return;
        };
        match n.on_hello(now, hello.seq, hello.interval_10ms) {
            HelloOutcome::Duplicate => self.ctx.counters.hellos_duplicate += 1,
            HelloOutcome::Old => self.ctx.counters.hellos_old += 1,
            HelloOutcome::Counted | HelloOutcome::Restarted => {}
        }
        self.arm_neighbor(links, id);
        self.reevaluate(now, links, id);
    }

    /// All Ihu entries of one Ihu message from an authenticated neighbour (any iterator,
    /// e.g. a zero-copy one over the message); the entry for our MAC on `iface` gives our
    /// transmit ratio toward it.
    pub fn handle_ihu<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        (iface, mac): (IfaceId, MacAddr),
        entries: impl IntoIterator<Item = IhuEntry>,
    ) {
        let Some(id) = authenticated_link(links, iface, mac) else {
            self.ctx.counters.ihu_unknown_neighbor += 1;
            return;
        };
        self.touch(now, links, id);
        let own = self.ifaces.iter().find(|i| i.id == iface).map(|i| i.mac);
        // The list is complete: no entry for us means it does not hear us at all.
        let rx_of_us = entries
            .into_iter()
            .find(|e| Some(e.mac) == own)
            .map_or(0, |e| e.rx_quality);
        if let Some(n) = links.neighbor_mut(id) {
            n.on_ihu(now, rx_of_us);
        }
        self.arm_neighbor(links, id);
        self.reevaluate(now, links, id);
    }

    /// Any frame from (iface, mac) that passed its link or group key: proof of life.
    /// False if routing does not know this neighbour as authenticated (e.g. forgotten
    /// after a long outage): the node should call `neighbor_authenticated` again.
    pub fn handle_authenticated_frame<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        id: LinkId,
    ) -> bool {
        match links.node_of(id) {
            Some(_) => {
                self.touch(now, links, id);
                true
            }
            None => {
                self.ctx.counters.frames_unknown_neighbor += 1;
                false
            }
        }
    }

    /// A ProbeAck on link `id`: proof of life (any seq; the frame was authenticated).
    pub fn handle_probe_ack<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        id: LinkId,
        _seq: u32,
    ) {
        let _known = self.handle_authenticated_frame(now, links, id);
    }

    /// The node sent a data frame on link `id`: arms the probe / dead-link timers.
    pub fn note_data_sent<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        id: LinkId,
    ) {
        if let Some(n) = links.neighbor_mut(id) {
            n.data_sent(now);
        }
        self.arm_neighbor(links, id);
    }

    /// Link `id`'s neighbour may have an earlier deadline now: make `Timer::Neighbors`
    /// fire by it.
    fn arm_neighbor<T: NeighborSlot>(&mut self, links: &LinkTable<T>, id: LinkId) {
        if let Some(n) = links.neighbor(id) {
            self.ctx.timers.arm(Timer::Neighbors, n.deadline());
        }
    }

    /// Liveness from an authenticated frame; a Down neighbour comes back Up.
    pub(crate) fn touch<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        id: LinkId,
    ) {
        let Some(n) = links.neighbor_mut(id) else {
            return;
        };
        n.heard(now);
        if n.state == NeighborState::Down && n.node.is_some() {
            self.mark_up(now, links, id);
        }
    }

    fn mark_up<T: NeighborSlot>(&mut self, now: Instant, links: &mut LinkTable<T>, id: LinkId) {
        let Some(n) = links.neighbor_mut(id) else {
            return;
        };
        n.state = NeighborState::Up;
        let (iface, mac, node) = (n.iface, n.mac, n.node);
        // Loss after 4 of its hellos may come sooner than forgetting after NEIGHBOR_GC.
        self.arm_neighbor(links, id);
        if let Some(node) = node {
            self.ctx.event(Event::NeighborUp { iface, mac, node });
        }
        self.topology_changed(now);
        self.trigger_hello(now, iface);
        self.reevaluate(now, links, id);
    }

    /// Withdraw every route through link `id` (already marked down) and reselect.
    pub(crate) fn neighbor_down<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        id: LinkId,
        reason: DownReason,
    ) {
        let Some(n) = links.neighbor_mut(id) else {
            return;
        };
        n.applied_cost = INFINITY;
        let (iface, mac, node) = (n.iface, n.mac, n.node);
        self.ctx.event(Event::NeighborDown {
            iface,
            mac,
            node,
            reason,
        });
        let links = &*links;
        for (node, o) in self.originators.iter_mut() {
            if o.remove_via(id) || o.backup == Some(id) || o.selected == Some(id) {
                reselect(&mut self.ctx, links, now, *node, o);
            }
        }
        self.topology_changed(now);
    }

    /// Re-run selection through link `id` if its cost moved enough since last applied.
    pub(crate) fn reevaluate<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        id: LinkId,
    ) {
        let Some(n) = links.neighbor_mut(id) else {
            return;
        };
        let (old, new) = (n.applied_cost, n.cost());
        if !needs_reevaluation(old, new) {
            return;
        }
        n.applied_cost = new;
        let links = &*links;
        for (node, o) in self.originators.iter_mut() {
            if o.route_via(id).is_some() {
                reselect(&mut self.ctx, links, now, *node, o);
            }
        }
        if is_large_change(old, new) {
            self.topology_changed(now);
        }
    }

    /// A local topology change: own OGMs go back to the fastest Trickle interval.
    pub(crate) fn topology_changed(&mut self, now: Instant) {
        if self.trickle.reset(now, &mut self.ctx.rng) {
            self.ctx.timers.arm(Timer::Trickle, self.trickle.deadline());
        }
    }

    fn trigger_hello(&mut self, now: Instant, iface: IfaceId) {
        let delay = self
            .ctx
            .jitter(crate::time::Duration::ZERO, TRIGGERED_HELLO_DELAY);
        let Some(i) = self.ifaces.iter_mut().find(|i| i.id == iface) else {
            return;
        };
        if i.last_triggered
            .is_some_and(|t| now < t + TRIGGERED_HELLO_MIN_GAP)
        {
            return;
        }
        i.last_triggered = Some(now);
        i.next_hello = i.next_hello.min(now + delay);
        self.ctx.timers.arm(Timer::Hello, i.next_hello);
    }
}

/// The link to (iface, mac) if its neighbour is authenticated.
pub(crate) fn authenticated_link<T: NeighborSlot>(
    links: &LinkTable<T>,
    iface: IfaceId,
    mac: MacAddr,
) -> Option<LinkId> {
    let id = links.find(iface, mac)?;
    links.node_of(id).map(|_| id)
}
