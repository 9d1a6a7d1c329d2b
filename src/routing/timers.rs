//! The timer side of [`Routing`]: a table of named deadlines (quinn-proto's timer table is
//! the model, as for the node's) and what each does when it fires.
//!
//! Every input that gives routing state an earlier deadline arms that state's timer (arming
//! only moves a timer earlier); a fired timer's handler does the work due and sets the exact
//! next deadline from a scan of its state. State that only moves deadlines later (a route
//! refreshed, a neighbour heard) leaves the table alone: its timer fires early, finds
//! nothing due and re-arms. `poll_timeout` is the minimum of seven entries.

use crate::link::{LinkId, LinkTable, MAX_LINKS};
use crate::time::{Instant, TimerName, TimerTable};
use crate::wire::HelloRepr;

use super::ctx::Action;
use super::flood::reselect;
use super::neighbor::{self, NeighborSlot, NeighborState, Neighbors};
use super::requests::{request_seqno, SEQNO_REQUEST_MIN_GAP, SEQNO_REQUEST_RETRIES};
use super::{Routing, ORIGINATOR_GC, ROUTE_EXPIRY, STUCK_RETRY};

/// One of routing's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The earliest periodic or triggered hello of any interface.
    Hello,
    /// The earliest neighbour deadline (`Neighbor::deadline`: a hello miss, a probe, loss
    /// when idle or under traffic, an Ihu's transmit ratio running out, forgetting).
    Neighbors,
    /// The own-OGM Trickle timer.
    Trickle,
    /// The earliest `updated + ROUTE_EXPIRY` of any advertisement.
    RouteExpiry,
    /// The earliest seqno request retry of an originator left with only infeasible routes.
    SeqnoRetry,
    /// The earliest `last_reachable + ORIGINATOR_GC` of an unreachable originator.
    OriginatorGc,
    /// The end of the aggregation delay of the queued OGMs.
    OgmFlush,
}

impl Timer {
    /// Every timer, in the order `handle_timeout` runs them: the flush last, so that an OGM
    /// originated or retracted by an earlier one joins its batch.
    pub(crate) const ALL: [Timer; 7] = [
        Timer::Hello,
        Timer::Neighbors,
        Timer::Trickle,
        Timer::RouteExpiry,
        Timer::SeqnoRetry,
        Timer::OriginatorGc,
        Timer::OgmFlush,
    ];
}

impl TimerName for Timer {
    fn slot(self) -> usize {
        self as usize
    }
}

/// Routing's deadlines by name.
pub(crate) type Timers = TimerTable<Timer, { Timer::ALL.len() }>;

impl Routing {
    /// The earliest instant at which `handle_timeout` has work: the minimum of a table of
    /// seven named deadlines, O(1). A timer may fire early and find nothing due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ctx.timers.next()
    }

    /// Run every timer that is due at `now`; each sets its own next deadline, after `now`.
    pub fn handle_timeout<T: NeighborSlot>(&mut self, now: Instant, links: &mut LinkTable<T>) {
        for timer in Timer::ALL {
            if self.ctx.timers.take_due(timer, now) {
                let next = self.on_timer(now, links, timer);
                // A deadline still due after its handler ran wanted work that could not be
                // done (a Trickle called more than an interval late): look again a little
                // later instead of spinning the caller's loop.
                let next = next.map(|t| if t <= now { now + STUCK_RETRY } else { t });
                self.ctx.timers.set(timer, next);
            }
        }
    }

    /// Do `timer`'s work due at `now`; returns its exact next deadline.
    fn on_timer<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        timer: Timer,
    ) -> Option<Instant> {
        match timer {
            Timer::Hello => {
                self.hello_timers(now);
                self.ifaces.iter().map(|i| i.next_hello).min()
            }
            Timer::Neighbors => {
                self.neighbor_timers(now, links);
                links.next_neighbor_deadline()
            }
            Timer::Trickle => {
                if self.trickle.handle_timeout(now, &mut self.ctx.rng) {
                    self.originate(now);
                }
                Some(self.trickle.deadline())
            }
            Timer::RouteExpiry => self.expire_routes(now, links),
            Timer::SeqnoRetry => self.retry_seqno_requests(now, links),
            Timer::OriginatorGc => self.forget_unreachable(now),
            Timer::OgmFlush => {
                // The batch stays due (and its deadline spent) until `poll_ogm_batch` took
                // it; OGMs queued before then join it.
                let flush_at = self.ctx.flush_at;
                if flush_at.is_some_and(|f| now >= f) {
                    self.ctx.flush_due = true;
                }
                flush_at.filter(|f| *f > now)
            }
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

    fn neighbor_timers<T: NeighborSlot>(&mut self, now: Instant, links: &mut LinkTable<T>) {
        let due: heapless::Vec<LinkId, MAX_LINKS> = links
            .neighbors()
            .filter(|(_, n)| n.deadline() <= now)
            .map(|(id, _)| id)
            .collect();
        for id in due {
            let Some(n) = links.neighbor_mut(id) else {
                continue;
            };
            let tick = n.tick(now);
            let (iface, mac) = (n.iface, n.mac);
            if let Some(seq) = tick.probe {
                self.ctx.counters.probes_sent += 1;
                self.ctx.action(Action::SendProbe { iface, mac, seq });
            }
            if let Some(reason) = tick.down {
                self.neighbor_down(now, links, id, reason);
            } else if links
                .neighbor(id)
                .is_some_and(|n| n.state == NeighborState::Up)
            {
                self.reevaluate(now, links, id);
            }
            if tick.gc {
                neighbor::forget(links, id);
            }
        }
    }

    /// Drop advertisements not refreshed for ROUTE_EXPIRY and reselect where any went;
    /// returns the next expiry.
    fn expire_routes<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &LinkTable<T>,
    ) -> Option<Instant> {
        let ctx = &mut self.ctx;
        let mut next: Option<Instant> = None;
        for (id, o) in self.originators.iter_mut() {
            let before = o.routes.len();
            o.routes.retain(|r| now < r.updated + ROUTE_EXPIRY);
            let expired = before - o.routes.len();
            if expired > 0 {
                ctx.counters.routes_expired += expired as u64;
                reselect(ctx, links, now, *id, o);
            }
            for r in &o.routes {
                let at = r.updated + ROUTE_EXPIRY;
                next = Some(next.map_or(at, |t| t.min(at)));
            }
        }
        next
    }

    /// Ask again for a newer seqno of every originator that has only infeasible routes,
    /// within `request_seqno`'s limits (one per SEQNO_REQUEST_MIN_GAP, SEQNO_REQUEST_RETRIES
    /// while the route stays lost); returns when the next such retry is allowed.
    fn retry_seqno_requests<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &LinkTable<T>,
    ) -> Option<Instant> {
        let ctx = &mut self.ctx;
        let mut next: Option<Instant> = None;
        for (id, o) in self.originators.iter_mut() {
            if o.selected.is_some() || !o.has_infeasible(|i| links.cost(i)) {
                continue;
            }
            request_seqno(ctx, now, *id, o);
            if o.request_count >= SEQNO_REQUEST_RETRIES {
                continue;
            }
            if let Some(at) = o.last_request.map(|t| t + SEQNO_REQUEST_MIN_GAP) {
                next = Some(next.map_or(at, |t| t.min(at)));
            }
        }
        next
    }

    /// Forget originators unreachable for ORIGINATOR_GC; returns the next such instant.
    fn forget_unreachable(&mut self, now: Instant) -> Option<Instant> {
        let mut forgotten = 0;
        self.originators.retain(|_, o| {
            let keep = o.selected.is_some() || now < o.last_reachable + ORIGINATOR_GC;
            forgotten += u64::from(!keep);
            keep
        });
        self.ctx.counters.originators_expired += forgotten;
        self.originators
            .iter()
            .filter(|(_, o)| o.selected.is_none())
            .map(|(_, o)| o.last_reachable + ORIGINATOR_GC)
            .min()
    }
}

#[cfg(test)]
impl Routing {
    /// `timer`'s deadline computed afresh from the state it watches: the table may hold an
    /// earlier one (a timer that fires early is harmless), never a later one.
    pub(crate) fn exact_deadline<T: NeighborSlot>(
        &self,
        links: &LinkTable<T>,
        timer: Timer,
    ) -> Option<Instant> {
        let unreachable = || {
            self.originators
                .iter()
                .filter(|(_, o)| o.selected.is_none())
        };
        match timer {
            Timer::Hello => self.ifaces.iter().map(|i| i.next_hello).min(),
            Timer::Neighbors => links.next_neighbor_deadline(),
            Timer::Trickle => Some(self.trickle.deadline()),
            Timer::RouteExpiry => self
                .originators
                .iter()
                .flat_map(|(_, o)| o.routes.iter().map(|r| r.updated + ROUTE_EXPIRY))
                .min(),
            Timer::SeqnoRetry => unreachable()
                .filter(|(_, o)| o.request_count < SEQNO_REQUEST_RETRIES)
                .filter(|(_, o)| o.has_infeasible(|i| links.cost(i)))
                .filter_map(|(_, o)| o.last_request.map(|t| t + SEQNO_REQUEST_MIN_GAP))
                .min(),
            Timer::OriginatorGc => unreachable()
                .map(|(_, o)| o.last_reachable + ORIGINATOR_GC)
                .min(),
            Timer::OgmFlush => self.ctx.flush_at.filter(|_| !self.ctx.flush_due),
        }
    }

    /// Panics if some timer would fire later than the state it watches needs.
    pub(crate) fn assert_timers_cover_state<T: NeighborSlot>(
        &self,
        links: &LinkTable<T>,
        now: Instant,
    ) {
        for timer in Timer::ALL {
            let (armed, exact) = (
                self.ctx.timers.get(timer),
                self.exact_deadline(links, timer),
            );
            assert!(
                exact.is_none_or(|e| armed.is_some_and(|a| a <= e)),
                "{timer:?} armed at {armed:?}, due at {exact:?} (now {now:?})"
            );
        }
    }

    /// Panics if a deadline is not after `now`, right after `handle_timeout(now)`.
    pub(crate) fn assert_nothing_due(&self, now: Instant) {
        for timer in Timer::ALL {
            let armed = self.ctx.timers.get(timer);
            assert!(
                armed.is_none_or(|a| a > now),
                "{timer:?} still due at {armed:?} after handle_timeout({now:?})"
            );
        }
    }
}
