//! Neighbour inputs of [`Routing`]: hellos, Ihus, liveness, authentication.

use crate::iface::IfaceId;
use crate::time::Instant;
use crate::wire::{HelloRepr, IhuEntry, MacAddr, NodeId};

use super::ctx::Event;
use super::estimator::HelloOutcome;
use super::flood::settle;
use super::metric::{is_large_change, needs_reevaluation, INFINITY};
use super::neighbor::{Admit, DownReason, NeighborState};
use super::timers::Timer;
use super::{Routing, TRIGGERED_HELLO_DELAY, TRIGGERED_HELLO_MIN_GAP};

impl Routing {
    /// The link session with (iface, mac) is established and it is node `node`: the
    /// neighbour becomes usable for routing. False if the neighbour table is full.
    pub fn neighbor_authenticated(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
        node: NodeId,
    ) -> bool {
        let Admit::Index(idx) = self.neighbors.admit(now, iface, mac) else {
            return false;
        };
        let Some(n) = self.neighbors.get_mut(idx) else {
            return false;
        };
        n.node = Some(node);
        n.heard(now);
        n.credit_handshake(now);
        if n.state != NeighborState::Up {
            self.mark_up(now, idx);
        }
        self.arm_neighbor(idx);
        true
    }

    /// The link session with (iface, mac) is gone: routes through it are withdrawn.
    pub fn neighbor_deauthenticated(&mut self, now: Instant, iface: IfaceId, mac: MacAddr) {
        let Some(idx) = self.neighbors.find(iface, mac) else {
            return;
        };
        if let Some(n) = self.neighbors.get_mut(idx) {
            if n.state == NeighborState::Up {
                n.set_down();
                self.neighbor_down(now, idx, DownReason::Deauthenticated);
            }
        }
        if let Some(n) = self.neighbors.get_mut(idx) {
            n.node = None;
            n.state = NeighborState::Unauthenticated;
        }
        // Forgetting after NEIGHBOR_GC may come sooner than loss after 4 of its hellos.
        self.arm_neighbor(idx);
    }

    /// Interface `iface` is gone: every neighbour on it goes down (routes through it are
    /// withdrawn) and is forgotten, and no more hellos are sent there, so a later
    /// `add_interface` (maybe with a new MAC) starts clean. False if it was not known.
    pub fn remove_interface(&mut self, now: Instant, iface: IfaceId) -> bool {
        let Some(pos) = self.ifaces.iter().position(|i| i.id == iface) else {
            return false;
        };
        for idx in 0..self.neighbors.capacity_used() {
            let Some(n) = self.neighbors.get_mut(idx).filter(|n| n.iface == iface) else {
                continue;
            };
            if n.state == NeighborState::Up {
                n.set_down();
                self.neighbor_down(now, idx, DownReason::Deauthenticated);
            }
            self.neighbors.remove(idx);
        }
        self.ifaces.remove(pos);
        true
    }

    /// A hello from (iface, mac); `authenticated` if it came in an encrypted frame.
    /// Clear hellos are ignored for neighbours that have authenticated (anti-spoofing).
    pub fn handle_hello(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
        hello: &HelloRepr,
        authenticated: bool,
    ) {
        let Admit::Index(idx) = self.neighbors.admit(now, iface, mac) else {
            return;
        };
        let Some(n) = self.neighbors.get_mut(idx) else {
            return;
        };
        if n.node.is_some() && !authenticated {
            self.ctx.counters.hellos_clear_ignored += 1;
            return;
        }
        if authenticated && n.node.is_some() {
            self.touch(now, idx);
        } else if let Some(n) = self.neighbors.get_mut(idx) {
            n.last_heard = n.last_heard.max(now);
        }
        let Some(n) = self.neighbors.get_mut(idx) else {
            return;
        };
        match n.on_hello(now, hello.seq, hello.interval_10ms) {
            HelloOutcome::Duplicate => self.ctx.counters.hellos_duplicate += 1,
            HelloOutcome::Old => self.ctx.counters.hellos_old += 1,
            HelloOutcome::Counted | HelloOutcome::Restarted => {}
        }
        self.arm_neighbor(idx);
        self.reevaluate(now, idx);
    }

    /// All Ihu entries of one Ihu message from an authenticated neighbour (any iterator,
    /// e.g. a zero-copy one over the message); the entry for our MAC on `iface` gives our
    /// transmit ratio toward it.
    pub fn handle_ihu(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
        entries: impl IntoIterator<Item = IhuEntry>,
    ) {
        let Some(idx) = self.authenticated_index(iface, mac) else {
            self.ctx.counters.ihu_unknown_neighbor += 1;
            return;
        };
        self.touch(now, idx);
        let own = self.ifaces.iter().find(|i| i.id == iface).map(|i| i.mac);
        // The list is complete: no entry for us means it does not hear us at all.
        let rx_of_us = entries
            .into_iter()
            .find(|e| Some(e.mac) == own)
            .map_or(0, |e| e.rx_quality);
        if let Some(n) = self.neighbors.get_mut(idx) {
            n.on_ihu(now, rx_of_us);
        }
        self.arm_neighbor(idx);
        self.reevaluate(now, idx);
    }

    /// Any frame from (iface, mac) that passed its link or group key: proof of life.
    /// False if routing does not know this neighbour as authenticated (e.g. forgotten
    /// after a long outage): the node should call `neighbor_authenticated` again.
    pub fn handle_authenticated_frame(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
    ) -> bool {
        match self.authenticated_index(iface, mac) {
            Some(idx) => {
                self.touch(now, idx);
                true
            }
            None => {
                self.ctx.counters.frames_unknown_neighbor += 1;
                false
            }
        }
    }

    /// A ProbeAck from (iface, mac): proof of life (any seq; the frame was authenticated).
    pub fn handle_probe_ack(&mut self, now: Instant, iface: IfaceId, mac: MacAddr, _seq: u32) {
        let _known = self.handle_authenticated_frame(now, iface, mac);
    }

    /// The node sent a data frame to (iface, mac): arms the probe / dead-link timers.
    pub fn note_data_sent(&mut self, now: Instant, iface: IfaceId, mac: MacAddr) {
        let Some(idx) = self.neighbors.find(iface, mac) else {
            return;
        };
        if let Some(n) = self.neighbors.get_mut(idx) {
            n.data_sent(now);
        }
        self.arm_neighbor(idx);
    }

    /// Neighbour `idx` may have an earlier deadline now: make `Timer::Neighbors` fire by it.
    fn arm_neighbor(&mut self, idx: u16) {
        if let Some(n) = self.neighbors.get(idx) {
            self.ctx.timers.arm(Timer::Neighbors, n.deadline());
        }
    }

    pub(crate) fn authenticated_index(&self, iface: IfaceId, mac: MacAddr) -> Option<u16> {
        let idx = self.neighbors.find(iface, mac)?;
        self.neighbors.get(idx)?.node.map(|_| idx)
    }

    /// Liveness from an authenticated frame; a Down neighbour comes back Up.
    pub(crate) fn touch(&mut self, now: Instant, idx: u16) {
        let Some(n) = self.neighbors.get_mut(idx) else {
            return;
        };
        n.heard(now);
        if n.state == NeighborState::Down && n.node.is_some() {
            self.mark_up(now, idx);
        }
    }

    fn mark_up(&mut self, now: Instant, idx: u16) {
        let Some(n) = self.neighbors.get_mut(idx) else {
            return;
        };
        n.state = NeighborState::Up;
        let (iface, mac, node) = (n.iface, n.mac, n.node);
        // Loss after 4 of its hellos may come sooner than forgetting after NEIGHBOR_GC.
        self.arm_neighbor(idx);
        if let Some(node) = node {
            self.ctx.event(Event::NeighborUp { iface, mac, node });
        }
        self.topology_changed(now);
        self.trigger_hello(now, iface);
        self.reevaluate(now, idx);
    }

    /// Withdraw every route through `idx` (already marked down) and reselect.
    pub(crate) fn neighbor_down(&mut self, now: Instant, idx: u16, reason: DownReason) {
        let Some(n) = self.neighbors.get_mut(idx) else {
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
        let neighbors = &self.neighbors;
        for (id, o) in self.originators.iter_mut() {
            if o.remove_via(idx) || o.backup == Some(idx) || o.selected == Some(idx) {
                let sel = o.select(now, |i| neighbors.cost(i), |i| neighbors.get(i)?.node);
                settle(&mut self.ctx, neighbors, now, *id, o, sel);
            }
        }
        self.topology_changed(now);
    }

    /// Re-run selection through `idx` if its cost moved enough since last applied.
    pub(crate) fn reevaluate(&mut self, now: Instant, idx: u16) {
        let Some(n) = self.neighbors.get_mut(idx) else {
            return;
        };
        let (old, new) = (n.applied_cost, n.cost());
        if !needs_reevaluation(old, new) {
            return;
        }
        n.applied_cost = new;
        let neighbors = &self.neighbors;
        for (id, o) in self.originators.iter_mut() {
            if o.route_via(idx).is_some() {
                let sel = o.select(now, |i| neighbors.cost(i), |i| neighbors.get(i)?.node);
                settle(&mut self.ctx, neighbors, now, *id, o, sel);
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
