//! Seqno requests (Babel-style, toward the originator) and announcement requests.

use crate::iface::IfaceId;
use crate::link::{LinkId, LinkTable};
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, NodeId, OgmRepr, SeqnoRequestRepr};

use super::ctx::{Action, Ctx, Dest};
use super::links::authenticated_link;
use super::metric::INFINITY;
use super::neighbor::{NeighborSlot, Neighbors};
use super::originator::Originator;
use super::seqno::{FeasibilityDistance, SeqKey};
use super::timers::Timer;
use super::Routing;

/// Hop limit of the seqno requests we originate.
pub const SEQNO_REQUEST_HOPS: u8 = 16;
/// At most one request per originator per this gap...
pub const SEQNO_REQUEST_MIN_GAP: Duration = Duration::from_secs(1);
/// ...and at most this many while the route stays lost.
pub const SEQNO_REQUEST_RETRIES: u8 = 3;
/// A forwarded request for the same (originator, epoch, seqno) is dropped within this window.
pub const SEQNO_REQUEST_DEDUP: Duration = Duration::from_secs(2);
/// Requests accepted from all neighbours together: per second, burst.
pub const SEQNO_REQUEST_RATE: (u32, u32) = (20, 40);
/// We bump our own seqno on request at most once per this gap.
pub const SEQNO_BUMP_MIN_GAP: Duration = Duration::from_secs(1);
/// Announcement requests: per second, burst.
pub const ANNOUNCE_REQUEST_RATE: (u32, u32) = (20, 64);
/// An announcement of the same originator is requested at most once per this window.
pub const ANNOUNCE_REQUEST_DEDUP: Duration = Duration::from_secs(5);

/// Ask the mesh for a newer seqno of `node` (route lost or only infeasible routes); while
/// retries are left, `Timer::SeqnoRetry` fires when the next one is allowed.
pub(crate) fn request_seqno(ctx: &mut Ctx, now: Instant, node: NodeId, o: &mut Originator) {
    if o.request_count >= SEQNO_REQUEST_RETRIES {
        return;
    }
    if let Some(allowed) = o.last_request.map(|t| t + SEQNO_REQUEST_MIN_GAP) {
        if now < allowed {
            ctx.timers.arm(Timer::SeqnoRetry, allowed);
            return;
        }
    }
    o.last_request = Some(now);
    o.request_count += 1;
    if o.request_count < SEQNO_REQUEST_RETRIES {
        ctx.timers
            .arm(Timer::SeqnoRetry, now + SEQNO_REQUEST_MIN_GAP);
    }
    ctx.counters.seqno_requests_sent += 1;
    ctx.action(Action::SendSeqnoRequest {
        dest: Dest::AllInterfaces,
        req: SeqnoRequestRepr {
            node,
            epoch: o.latest.epoch,
            seqno: o.latest.seqno.saturating_add(1),
            hop_limit: SEQNO_REQUEST_HOPS,
        },
    });
}

impl Routing {
    /// A seqno request from neighbour (iface, mac).
    pub fn handle_seqno_request<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &mut LinkTable<T>,
        (iface, mac): (IfaceId, MacAddr),
        req: &SeqnoRequestRepr,
    ) {
        let Some(id) = authenticated_link(links, iface, mac) else {
            self.ctx.counters.frames_unknown_neighbor += 1;
            return;
        };
        self.touch(now, links, id);
        let per_neighbor = links
            .neighbor_mut(id)
            .is_some_and(|n| n.requests.allow(now));
        if !per_neighbor || !self.request_bucket.allow(now) {
            self.ctx.counters.seqno_requests_rate_limited += 1;
            return;
        }
        let key = (req.node, SeqKey::new(req.epoch, req.seqno));
        if !self.request_recent.insert_if_new(now, key) {
            self.ctx.counters.seqno_requests_duplicate += 1;
            return;
        }
        self.topology_changed(now);
        if req.node == self.own {
            self.bump_own_seqno(now, req);
        } else {
            self.answer_or_forward(now, links, id, req);
        }
    }

    fn bump_own_seqno(&mut self, now: Instant, req: &SeqnoRequestRepr) {
        if self.last_bump.is_some_and(|t| now < t + SEQNO_BUMP_MIN_GAP) {
            self.ctx.counters.seqno_bumps_rate_limited += 1;
            return;
        }
        // A request for an older epoch is answered by any OGM of ours; within our epoch
        // only a request for a newer seqno needs one. Never jump to the requested value:
        // a member could otherwise burn our whole hash chain with one request.
        let wanted = SeqKey::new(req.epoch, req.seqno);
        if wanted <= self.own_seq() && req.epoch == self.epoch {
            return;
        }
        self.last_bump = Some(now);
        self.ctx.counters.seqno_bumps += 1;
        self.originate(now);
    }

    fn answer_or_forward<T: NeighborSlot>(
        &mut self,
        now: Instant,
        links: &LinkTable<T>,
        from: LinkId,
        req: &SeqnoRequestRepr,
    ) {
        let wanted = SeqKey::new(req.epoch, req.seqno);
        let Some(o) = self.originators.get_mut(&req.node) else {
            self.ctx.counters.seqno_requests_unroutable += 1;
            return;
        };
        let Some(sel) = o.selected else {
            self.ctx.counters.seqno_requests_unroutable += 1;
            return;
        };
        let sel_seq = o.route_via(sel).map(|r| r.seq);
        if sel_seq == Some(o.latest) && o.latest >= wanted && o.metric < INFINITY {
            // Our route is already new enough: answer with a one-hop OGM.
            self.ctx.queue_ogm(
                now,
                OgmRepr {
                    node: req.node,
                    epoch: o.latest.epoch,
                    seqno: o.latest.seqno,
                    metric: o.metric,
                    ttl: 1,
                    flags: 0,
                    chain: o.chain,
                },
            );
            FeasibilityDistance::record(&mut o.fd, o.latest, o.metric);
            self.ctx.counters.seqno_requests_answered += 1;
            return;
        }
        if req.hop_limit <= 1 || sel == from {
            self.ctx.counters.seqno_requests_unroutable += 1;
            return;
        }
        let Some(n) = links.neighbor(sel) else {
            return;
        };
        self.ctx.counters.seqno_requests_forwarded += 1;
        self.ctx.action(Action::SendSeqnoRequest {
            dest: Dest::Neighbor {
                iface: n.iface,
                mac: n.mac,
            },
            req: SeqnoRequestRepr {
                hop_limit: req.hop_limit - 1,
                ..*req
            },
        });
    }

    /// Ask the neighbour that sent an OGM of an unknown originator for its announcement.
    pub(crate) fn request_announce(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
        node: NodeId,
    ) {
        if !self.announce_recent.insert_if_new(now, node) || !self.announce_bucket.allow(now) {
            self.ctx.counters.announce_requests_suppressed += 1;
            return;
        }
        self.ctx.counters.announce_requests_sent += 1;
        self.ctx
            .action(Action::RequestAnnounce { iface, mac, node });
    }
}
