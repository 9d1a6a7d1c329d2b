//! OGM handling: acceptance, route update, BATMAN rebroadcast, retractions, origination.

use crate::iface::IfaceId;
use crate::link::{LinkId, LinkTable};
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, NodeId, OgmRepr};

use super::auth::{AuthVerdict, OgmAuth};
use super::ctx::{Ctx, Event};
use super::links::authenticated_link;
use super::metric::INFINITY;
use super::neighbor::{NeighborSlot, Neighbors};
use super::originator::{Originator, RouteEntry, Selection, Upsert};
use super::requests::request_seqno;
use super::seqno::{FeasibilityDistance, SeqKey};
use super::timers::Timer;
use super::{Routing, OGM_TTL, ORIGINATOR_GC, ROUTE_EXPIRY};

/// Rebroadcasts per originator: at most one per FORWARD_PERIOD sustained...
pub const FORWARD_PERIOD: Duration = Duration::from_millis(250);
/// ...with bursts of this many. Honest originators send at most ~2 per second.
pub const FORWARD_BURST: u64 = 4;

impl Routing {
    /// An OGM received from (iface, mac) in an authenticated broadcast frame.
    pub fn handle_ogm<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        (iface, mac): (IfaceId, MacAddr),
        ogm: &OgmRepr,
        auth: &mut impl OgmAuth,
    ) {
        if ogm.node == self.own {
            self.ctx.counters.ogm_own_echo += 1;
            return;
        }
        let Some(id) = authenticated_link(links, iface, mac) else {
            self.ctx.counters.ogm_unknown_neighbor += 1;
            return;
        };
        self.touch(now, links, id);
        if ogm.ttl == 0 {
            self.ctx.counters.ogm_ttl_zero += 1;
            return;
        }
        let seq = SeqKey::of_ogm(ogm);
        // Cheap checks before the authenticator hashes anything.
        if let Some(r) = self
            .originators
            .get(&ogm.node)
            .and_then(|o| o.route_via(id))
        {
            // An older epoch behind this neighbour's retraction may be its originator after
            // a restart that lost its state: the authenticator decides (`on_older_epoch`).
            let restart_candidate = r.metric == INFINITY && seq.epoch < r.seq.epoch;
            if seq < r.seq && !restart_candidate {
                self.ctx.counters.ogm_old += 1;
                return;
            }
            if seq == r.seq && ogm.metric == r.metric {
                self.ctx.counters.ogm_duplicate += 1;
                return;
            }
        }
        if ogm.metric == INFINITY {
            self.handle_retraction(now, links, id, ogm, seq);
            return;
        }
        match auth.check(ogm) {
            AuthVerdict::Valid => {}
            AuthVerdict::UnknownOriginator => {
                self.ctx.counters.ogm_unknown_originator += 1;
                self.request_announce(now, iface, mac, ogm.node);
                return;
            }
            AuthVerdict::Invalid => {
                self.ctx.counters.ogm_invalid += 1;
                return;
            }
            AuthVerdict::Stale => {
                self.ctx.counters.ogm_stale += 1;
                return;
            }
            AuthVerdict::OlderEpoch => {
                self.on_older_epoch(now, iface, mac, ogm.node);
                return;
            }
        }
        self.ctx.counters.ogm_accepted += 1;
        if self.originators.get(&ogm.node).is_none() {
            if !self
                .originators
                .insert(ogm.node, Originator::new(now, seq, ogm.chain))
            {
                return;
            }
            self.topology_changed(now);
        }
        self.update_route(now, links, id, ogm, seq);
    }

    /// An OGM of an epoch older than the announcement we hold: a replay while we can reach
    /// its originator; once we cannot, perhaps the originator lost its state, so fetch its
    /// announcement (the node takes an older one only for an unreachable node).
    fn on_older_epoch(&mut self, now: Instant, iface: IfaceId, mac: MacAddr, node: NodeId) {
        let reachable = self
            .originators
            .get(&node)
            .is_some_and(|o| o.selected.is_some());
        if reachable {
            self.ctx.counters.ogm_stale += 1;
        } else {
            self.ctx.counters.ogm_older_epoch_fetched += 1;
            self.request_announce(now, iface, mac, node);
        }
    }

    /// `node` restarted in an older epoch (its own signed announcement says so): withdraw
    /// what we advertised of its old epoch and forget it, so that the new epoch's OGMs make
    /// a fresh originator instead of waiting out ORIGINATOR_GC.
    pub fn forget_restarted(&mut self, now: Instant, node: NodeId) {
        let Some(o) = self.originators.get(&node) else {
            return;
        };
        if o.selected.is_some() {
            if o.forwarded.is_some() {
                retract(&mut self.ctx, now, node, o);
            }
            self.ctx.event(Event::RouteChanged {
                node,
                next_hop: None,
                metric: INFINITY,
            });
        }
        self.originators.retain(|n, _| *n != node);
        self.ctx.counters.originators_restarted += 1;
    }

    /// A neighbour withdrawing its route. It needs no proof from the originator's chain: it
    /// can only take away the sender's own advertisement, and it is often older than the
    /// newest OGM we verified (the sender lost its route before newer OGMs reached it), so
    /// a freshness check would drop exactly the retractions that matter.
    fn handle_retraction<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &LinkTable<T>,
        id: LinkId,
        ogm: &OgmRepr,
        seq: SeqKey,
    ) {
        let routed = self
            .originators
            .get(&ogm.node)
            .is_some_and(|o| o.route_via(id).is_some());
        if !routed {
            self.ctx.counters.retractions_ignored += 1;
            return;
        }
        self.ctx.counters.retractions_received += 1;
        self.update_route(now, links, id, ogm, seq);
    }

    fn update_route<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &LinkTable<T>,
        id: LinkId,
        ogm: &OgmRepr,
        seq: SeqKey,
    ) {
        let ctx = &mut self.ctx;
        let Some(o) = self.originators.get_mut(&ogm.node) else {
            return;
        };
        // Only a verified OGM's chain element is kept (retractions are not verified).
        if seq > o.latest && ogm.metric < INFINITY {
            o.latest = seq;
            o.chain = ogm.chain;
        }
        let entry = RouteEntry {
            neigh: id,
            seq,
            metric: ogm.metric,
            updated: now,
        };
        match o.upsert(entry, |i| links.cost(i)) {
            Upsert::Stored => {}
            Upsert::Evicted => ctx.counters.route_entries_evicted += 1,
            Upsert::Dropped => {
                ctx.counters.route_entries_dropped += 1;
                return;
            }
        }
        ctx.timers.arm(Timer::RouteExpiry, now + ROUTE_EXPIRY);
        reselect(ctx, links, now, ogm.node, o);
        // BATMAN rule: rebroadcast a new (epoch, seqno) once, and only the copy from the
        // selected next hop, carrying our own metric.
        let new = o.forwarded.is_none_or(|f| seq > f);
        let finite = ogm.metric < INFINITY && o.metric < INFINITY;
        if o.selected != Some(id) || !new || !finite || ogm.ttl <= 1 {
            return;
        }
        // An originator (even a valid, malicious one) cannot make us flood faster than this.
        if !o.forward_gate.allow(now, FORWARD_PERIOD, FORWARD_BURST) {
            ctx.counters.ogm_forward_rate_limited += 1;
            return;
        }
        ctx.queue_ogm(
            now,
            OgmRepr {
                metric: o.metric,
                ttl: ogm.ttl - 1,
                ..*ogm
            },
        );
        o.forwarded = Some(seq);
        FeasibilityDistance::record(&mut o.fd, seq, o.metric);
        ctx.counters.ogm_forwarded += 1;
    }

    /// Our current advertisement of every reachable originator, as last flooded, for a
    /// neighbour that just appeared or restarted (Babel's full update to a new neighbour).
    /// One hop only: the receiver does not flood them again.
    pub fn advertisements(&self) -> impl Iterator<Item = OgmRepr> + '_ {
        self.originators.iter().filter_map(|(node, o)| {
            let seq = o.forwarded?;
            (seq == o.latest && o.metric < INFINITY).then_some(OgmRepr {
                node: *node,
                epoch: seq.epoch,
                seqno: seq.seqno,
                metric: o.metric,
                ttl: 1,
                flags: 0,
                chain: o.chain,
            })
        })
    }

    /// Originate our own OGM with the next seqno (the node fills in the chain element).
    pub(crate) fn originate(&mut self, now: Instant) {
        let Some(next) = self.seqno.checked_add(1) else {
            self.ctx.counters.ogm_seqno_exhausted += 1;
            return;
        };
        self.seqno = next;
        self.ctx.counters.ogm_originated += 1;
        self.ctx.queue_ogm(
            now,
            OgmRepr {
                node: self.own,
                epoch: self.epoch,
                seqno: self.seqno,
                metric: 0,
                ttl: OGM_TTL,
                flags: 0,
                chain: [0; crate::wire::CHAIN_ELEMENT_LEN],
            },
        );
    }

    /// We restarted our hash chain under a new epoch: seqnos start again at 1, believed
    /// at once by everyone because the epoch is higher. Sends an OGM right away.
    pub fn set_own_epoch(&mut self, now: Instant, epoch: u32) {
        self.epoch = epoch;
        self.seqno = 0;
        self.originate(now);
        self.topology_changed(now);
    }
}

/// One-hop retraction of what we advertised of `node`: neighbours that route through us must
/// stop at once, so it leaves with the next batch, without the aggregation delay.
fn retract(ctx: &mut Ctx, now: Instant, node: NodeId, o: &Originator) {
    ctx.queue_urgent_ogm(
        now,
        OgmRepr {
            node,
            epoch: o.latest.epoch,
            seqno: o.latest.seqno,
            metric: INFINITY,
            ttl: 1,
            flags: 0,
            chain: o.chain,
        },
    );
    ctx.counters.retractions_sent += 1;
}

/// Re-run route selection for originator `node` over the links' current costs, and act on
/// the result (`settle`).
pub(crate) fn reselect(
    ctx: &mut Ctx,
    links: &impl Neighbors,
    now: Instant,
    node: NodeId,
    o: &mut Originator,
) {
    let sel = o.select(now, |i| links.cost(i), |i| links.node_of(i));
    settle(ctx, links, now, node, o, sel);
}

/// Consequences of a selection: route events, retraction and seqno request on loss, the
/// forgetting of an unreachable originator.
fn settle(
    ctx: &mut Ctx,
    links: &impl Neighbors,
    now: Instant,
    node: NodeId,
    o: &mut Originator,
    sel: Selection,
) {
    if sel.changed {
        let next_hop = o
            .selected
            .and_then(|i| links.neighbor(i))
            .map(|n| (n.iface, n.mac));
        ctx.event(Event::RouteChanged {
            node,
            next_hop,
            metric: o.metric,
        });
    }
    if sel.lost && o.forwarded.is_some() {
        retract(ctx, now, node, o);
    }
    if o.selected.is_none() && (sel.lost || o.has_infeasible(|i| links.cost(i))) {
        request_seqno(ctx, now, node, o);
    }
    // Every selection is settled here, so this sees every originator that is (or, new,
    // starts out) unreachable.
    if o.selected.is_none() {
        ctx.timers
            .arm(Timer::OriginatorGc, o.last_reachable + ORIGINATOR_GC);
    }
}
