//! The timer side of [`Routing`]: hellos, neighbour ticks, Trickle, OGM flush, expiry sweep.

use crate::time::Instant;
use crate::wire::HelloRepr;

use super::ctx::Action;
use super::flood::settle;
use super::neighbor::NeighborState;
use super::requests::request_seqno;
use super::{Routing, ORIGINATOR_GC, ROUTE_EXPIRY, SWEEP_INTERVAL};

impl Routing {
    /// The earliest instant at which `handle_timeout` has work. A due OGM batch stays due
    /// until `poll_ogm_batch` has taken it: drain every `poll_*` after each call, as `Node`
    /// does, or this keeps returning the same instant.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.trickle.deadline().min(self.next_sweep);
        for i in &self.ifaces {
            t = t.min(i.next_hello);
        }
        if let Some(n) = self.neighbors.next_deadline() {
            t = t.min(n);
        }
        if let Some(f) = self.ctx.flush_at {
            t = t.min(f);
        }
        Some(t)
    }

    /// Run every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.hello_timers(now);
        self.neighbor_timers(now);
        if now >= self.trickle.deadline() && self.trickle.handle_timeout(now, &mut self.ctx.rng) {
            self.originate(now);
        }
        if now >= self.next_sweep {
            self.next_sweep = now + SWEEP_INTERVAL;
            self.sweep(now);
        }
        if self.ctx.flush_at.is_some_and(|f| now >= f) {
            self.ctx.flush_due = true;
        }
    }

    fn hello_timers(&mut self, now: Instant) {
        for k in 0..self.ifaces.len() {
            if self.ifaces.get(k).is_none_or(|i| now < i.next_hello) {
                continue;
            }
            // Uniform in [3/4, 1) of the interval: HELLO_INTERVAL_MIN..HELLO_INTERVAL by default.
            let iv = self.hello_interval;
            let gap = self.ctx.jitter(iv.mul_div(3, 4), iv);
            let Some(i) = self.ifaces.get_mut(k) else {
                continue;
            };
            i.hello_seq = i.hello_seq.wrapping_add(1);
            i.next_hello = now + gap;
            let hello = HelloRepr {
                seq: i.hello_seq,
                interval_10ms: u16::try_from(iv.as_millis() / 10).unwrap_or(u16::MAX),
            };
            let iface = i.id;
            self.ctx.action(Action::SendHello { iface, hello });
        }
    }

    fn neighbor_timers(&mut self, now: Instant) {
        for idx in 0..self.neighbors.capacity_used() {
            let Some(n) = self.neighbors.get_mut(idx) else {
                continue;
            };
            if n.deadline() > now {
                continue;
            }
            let tick = n.tick(now);
            let (iface, mac) = (n.iface, n.mac);
            if let Some(seq) = tick.probe {
                self.ctx.counters.probes_sent += 1;
                self.ctx.action(Action::SendProbe { iface, mac, seq });
            }
            if let Some(reason) = tick.down {
                self.neighbor_down(now, idx, reason);
            } else if tick.gc {
                self.neighbors.remove(idx);
            } else if self
                .neighbors
                .get(idx)
                .is_some_and(|n| n.state == NeighborState::Up)
            {
                self.reevaluate(now, idx);
            }
        }
    }

    /// Expire stale advertisements, retry seqno requests, forget long-unreachable originators.
    fn sweep(&mut self, now: Instant) {
        let neighbors = &self.neighbors;
        let ctx = &mut self.ctx;
        for (id, o) in self.originators.iter_mut() {
            let before = o.routes.len();
            o.routes.retain(|r| now < r.updated + ROUTE_EXPIRY);
            let expired = before - o.routes.len();
            if expired > 0 {
                ctx.counters.routes_expired += expired as u64;
                let sel = o.select(now, |i| neighbors.cost(i), |i| neighbors.get(i)?.node);
                settle(ctx, neighbors, now, *id, o, sel);
            } else if o.selected.is_none() && o.has_infeasible(|i| neighbors.cost(i)) {
                request_seqno(ctx, now, *id, o);
            }
        }
        let mut forgotten = 0;
        self.originators.retain(|_, o| {
            let keep = o.selected.is_some() || now < o.last_reachable + ORIGINATOR_GC;
            forgotten += u64::from(!keep);
            keep
        });
        self.ctx.counters.originators_expired += forgotten;
    }
}
