//! The node's side of link handshakes: when to start one, answering, finishing, installing
//! the session, and the timers (timeout, rekey, expiry) that go with them.

use super::budget::{self, Trigger};
use super::links::{Link, LinkSession, Pending, HANDSHAKE_TIMEOUT, IDLE_LINK_TIMEOUT};
use super::{LinkLayer, SessionUp, Swept};
use crate::crypto::handshake::{MSG1_LEN, MSG2_LEN, MSG3_LEN};
use crate::crypto::{Established, HandshakeError, Initiator, Responder, Session};
use crate::node::index::new_index;
use crate::node::timers::TimerTable;
use crate::node::{DropReason, IfaceId, Shared, Timer};
use crate::time::Instant;
use crate::wire::{HandshakeKind, MacAddr, ANNOUNCE_LEN};

impl LinkLayer {
    /// Start a handshake toward `mac` if none is running and the budget of `trigger` and
    /// the per-link retry limit allow. Unauthenticated triggers are budgeted before a link
    /// is made for them, so a flood of them cannot churn the link table.
    pub(in crate::node) fn maybe_initiate(
        &mut self,
        now: Instant,
        (iface, mac): (IfaceId, MacAddr),
        trigger: Trigger,
        shared: &mut Shared,
    ) {
        let existing = self.links.find(iface, mac);
        if let Some(slot) = existing {
            if !self.links.get(slot).is_some_and(|l| l.may_initiate(now)) {
                return;
            }
        }
        if !self.hs_budgets.allow(now, trigger) {
            shared.stats.drop(DropReason::HandshakeRateLimited);
            return;
        }
        let Some(slot) = existing.or_else(|| self.links.find_or_insert(iface, mac, now)) else {
            shared.stats.drop(DropReason::NeighborTableFull);
            return;
        };
        let seed = shared.seed();
        let init_seq = self.next_init_seq();
        let mut msg1 = [0u8; MSG1_LEN];
        let Ok((hs, len)) =
            Initiator::new(&shared.identity, &shared.psk, seed, init_seq, &mut msg1)
        else {
            shared.stats.drop(DropReason::HandshakeFailed);
            return;
        };
        let local_idx = new_index(slot, &mut shared.rng);
        if let Some(link) = self.links.get_mut(slot) {
            link.pending = Some(Pending::Initiating {
                hs: Box::new(hs),
                local_idx,
                since: now,
                failed: 0,
            });
            link.last_attempt = Some(now);
        }
        self.arm_link_timer(slot, &mut shared.timers);
        self.queue_handshake(
            (iface, mac),
            HandshakeKind::Init,
            (local_idx, 0),
            msg1.get(..len).unwrap_or(&[]),
            &mut shared.stats,
        );
    }

    /// A HandshakeInit from `mac` (its frame tag already checked).
    pub(in crate::node) fn on_handshake_init(
        &mut self,
        now: Instant,
        (iface, mac): (IfaceId, MacAddr),
        sender_idx: u32,
        noise: &[u8],
        shared: &mut Shared,
    ) {
        // Reading msg 1 costs no key agreement: do it before anything is stored or spent.
        let seed = shared.seed();
        let got = match Responder::read_init(&shared.identity, &shared.psk, seed, noise) {
            Ok(got) => got,
            Err(e) => {
                shared.stats.drop(handshake_drop(&e));
                return;
            }
        };
        let Some(slot) = self.links.find_or_insert(iface, mac, now) else {
            shared.stats.drop(DropReason::NeighborTableFull);
            return;
        };
        let we_are_lower = self.mac_of(iface).is_some_and(|m| m < mac);
        let Some(link) = self.links.get_mut(slot) else {
            return;
        };
        let seq = got.init_seq();
        if is_replayed_init(link, seq, now) {
            shared.stats.drop(DropReason::HandshakeReplay);
            return;
        }
        // Authentic and new: whatever happens to it, an older one is a replay from now on.
        link.peer_init_seq = Some(link.peer_init_seq.map_or(seq, |s| s.max(seq)));
        // Both sides initiated at once: the handshake started by the lower MAC goes on.
        let initiating = matches!(link.pending, Some(Pending::Initiating { .. }));
        if initiating && we_are_lower {
            return;
        }
        let trigger = if link.session_alive(now) {
            Trigger::Rekey
        } else {
            Trigger::Authenticated
        };
        if !budget::per_link_allows(&mut link.answer_gate, now)
            || !self.hs_budgets.allow(now, trigger)
        {
            shared.stats.drop(DropReason::HandshakeRateLimited);
            return;
        }
        let mut msg2 = [0u8; MSG2_LEN];
        let (hs, len) = match got.answer(&shared.identity, &mut msg2) {
            Ok(r) => r,
            Err(e) => {
                shared.stats.drop(handshake_drop(&e));
                return;
            }
        };
        let local_idx = new_index(slot, &mut shared.rng);
        if let Some(link) = self.links.get_mut(slot) {
            link.pending = Some(Pending::Responding {
                hs: Box::new(hs),
                local_idx,
                remote_idx: sender_idx,
                since: now,
                init_seq: seq,
                failed: 0,
            });
            link.last_heard = now;
        }
        self.arm_link_timer(slot, &mut shared.timers);
        self.queue_handshake(
            (iface, mac),
            HandshakeKind::Resp,
            (local_idx, sender_idx),
            msg2.get(..len).unwrap_or(&[]),
            &mut shared.stats,
        );
    }

    /// A HandshakeResp from `mac` for our pending Init `receiver_idx`. The pending state
    /// goes only when the message verifies or proves the peer unacceptable; one that
    /// fails to authenticate is dropped and the genuine one can still complete. `own_ann`
    /// (our announcement) goes to the peer with our group key.
    pub(in crate::node) fn on_handshake_resp(
        &mut self,
        now: Instant,
        mac: MacAddr,
        (sender_idx, receiver_idx): (u32, u32),
        noise: &[u8],
        own_ann: &[u8; ANNOUNCE_LEN],
        shared: &mut Shared,
    ) {
        let Some(slot) = self.pending_slot(mac, receiver_idx, &mut shared.stats) else {
            shared.stats.drop(DropReason::UnknownSession);
            return;
        };
        let Some(link) = self.links.get_mut(slot) else {
            return;
        };
        let iface = link.iface;
        let Some(Pending::Initiating { hs, local_idx, .. }) = link.pending.as_mut() else {
            shared.stats.drop(DropReason::UnknownSession);
            return;
        };
        let local_idx = *local_idx;
        let mut msg3 = [0u8; MSG3_LEN];
        match hs.finish(noise, &mut msg3, &shared.cfg.policy) {
            Ok((est, len)) => {
                link.pending = None;
                if link.refuses_identity(now, est.peer.node_id()) {
                    shared.stats.drop(DropReason::IdentityConflict);
                    return;
                }
                self.queue_handshake(
                    (iface, mac),
                    HandshakeKind::Finish,
                    (local_idx, sender_idx),
                    msg3.get(..len).unwrap_or(&[]),
                    &mut shared.stats,
                );
                // We initiated: the session comes up only with the responder's first frame.
                let _ =
                    self.install_session(now, slot, &est, (local_idx, sender_idx), own_ann, shared);
            }
            Err(e) => self.failed_read(slot, &e, &mut shared.stats),
        }
    }

    /// A HandshakeFinish from `mac` for our pending Resp `receiver_idx`; like a Resp, a
    /// message that fails to authenticate leaves the pending state in place. Returns the
    /// neighbour whose session came up.
    pub(in crate::node) fn on_handshake_finish(
        &mut self,
        now: Instant,
        mac: MacAddr,
        (sender_idx, receiver_idx): (u32, u32),
        noise: &[u8],
        own_ann: &[u8; ANNOUNCE_LEN],
        shared: &mut Shared,
    ) -> Option<SessionUp> {
        let Some(slot) = self.pending_slot(mac, receiver_idx, &mut shared.stats) else {
            shared.stats.drop(DropReason::UnknownSession);
            return None;
        };
        let link = self.links.get_mut(slot)?;
        let Some(Pending::Responding {
            hs,
            local_idx,
            remote_idx,
            ..
        }) = link.pending.as_mut()
        else {
            shared.stats.drop(DropReason::UnknownSession);
            return None;
        };
        if *remote_idx != sender_idx {
            shared.stats.drop(DropReason::UnknownSession);
            return None;
        }
        let indices = (*local_idx, *remote_idx);
        match hs.finish(noise, &shared.cfg.policy) {
            Ok(est) => {
                link.pending = None;
                if link.refuses_identity(now, est.peer.node_id()) {
                    shared.stats.drop(DropReason::IdentityConflict);
                    return None;
                }
                self.install_session(now, slot, &est, indices, own_ann, shared)
            }
            Err(e) => {
                self.failed_read(slot, &e, &mut shared.stats);
                None
            }
        }
    }

    /// The slot whose pending handshake `receiver_idx` names, if it is the link to `mac`
    /// and that handshake may still read a message.
    fn pending_slot(
        &mut self,
        mac: MacAddr,
        receiver_idx: u32,
        stats: &mut crate::node::Stats,
    ) -> Option<usize> {
        let slot = self.links.by_pending_index(receiver_idx)?;
        let link = self.links.get(slot).filter(|l| l.mac == mac)?;
        if link
            .pending
            .as_ref()
            .is_some_and(Pending::read_budget_spent)
        {
            stats.drop(DropReason::HandshakeRateLimited);
            return None;
        }
        Some(slot)
    }

    /// A Resp or Finish for the pending handshake in `slot` failed: one that did not
    /// authenticate leaves the handshake for the genuine message (up to
    /// `MAX_FAILED_READS`); one that did but named a refused or broken identity ends it.
    fn failed_read(&mut self, slot: usize, e: &HandshakeError, stats: &mut crate::node::Stats) {
        stats.drop(handshake_drop(e));
        let Some(link) = self.links.get_mut(slot) else {
            return;
        };
        if !e.keeps_state() {
            link.pending = None;
        } else if let Some(p) = link.pending.as_mut() {
            p.note_failed_read();
        }
    }

    /// A handshake completed: make its session current and send the peer our group key and
    /// announcement `own_ann`. The responder has seen our identity proof and policy check
    /// pass, so its session is confirmed at once (returned: it is up); the initiator's
    /// waits for the responder's first frame (`Opened::up`).
    fn install_session(
        &mut self,
        now: Instant,
        slot: usize,
        est: &Established,
        (local_idx, remote_idx): (u32, u32),
        own_ann: &[u8; ANNOUNCE_LEN],
        shared: &mut Shared,
    ) -> Option<SessionUp> {
        let node = est.peer.node_id();
        let link = self.links.get_mut(slot)?;
        let same_peer = link.node == Some(node);
        if !same_peer {
            // A different node behind this MAC: its old group key and sessions are void.
            link.group = None;
            link.group_previous = None;
            link.current = None;
        }
        // A rekey we started: the peer already holds our group key and announcement.
        let rekey =
            est.initiator && same_peer && link.current.as_ref().is_some_and(|c| c.confirmed);
        link.previous = link.current.take();
        link.current = Some(LinkSession {
            local_idx,
            remote_idx,
            session: Session::new(est, now),
            confirmed: !est.initiator,
            since: now,
        });
        link.peer = Some(est.peer);
        link.node = Some(node);
        link.last_heard = now;
        let up = SessionUp {
            iface: link.iface,
            mac: link.mac,
            node,
        };
        self.arm_link_timer(slot, &mut shared.timers);
        shared.stats.sessions_established += 1;
        // Our group key (so it can read our broadcasts) and our announcement (so it can
        // check our OGMs without asking). The responder always sends it: its first frame
        // under the new session is what confirms the session to the initiator.
        if !rekey {
            let key = self.group.repr();
            self.queue_unicast_slot(slot, true, &mut shared.stats, |w| {
                w.push_group_key(&key)?;
                w.push_announce(own_ann)
            });
        }
        (!est.initiator).then_some(up)
    }

    /// The link in `slot` has a new deadline (a handshake or session began): the link
    /// timer fires no later than it.
    fn arm_link_timer(&mut self, slot: usize, timers: &mut TimerTable) {
        let forgettable = !self.links.routing_holds(slot);
        if let Some(at) = self.links.get(slot).and_then(|l| l.deadline(forgettable)) {
            timers.arm(Timer::Links, at);
        }
    }

    /// A frame from the responder opened under our new session in `slot`: the peer
    /// accepted us. Returns the neighbour if that brought its session up.
    pub(super) fn confirm_session(&mut self, slot: usize) -> Option<SessionUp> {
        let link = self.links.get_mut(slot)?;
        let (iface, mac, node) = (link.iface, link.mac, link.node);
        let sess = link.current.as_mut()?;
        if sess.confirmed {
            return None;
        }
        sess.confirmed = true;
        Some(SessionUp {
            iface,
            mac,
            node: node?,
        })
    }

    /// Handshake timeouts, rekeys, expired sessions and idle links, at `now`: the links
    /// are updated; what is left to do (tell routing, forget, rekey) is returned.
    pub(in crate::node) fn sweep(&mut self, now: Instant) -> Swept {
        // One entry per link at most: sized to the link table, no push can fail (with 16,
        // sessions expiring past the 16th in one tick were never reported to routing).
        let mut swept = Swept {
            lost: heapless::Vec::new(),
            forget: heapless::Vec::new(),
            rekey: heapless::Vec::new(),
        };
        for e in self.links.table_mut().iter_mut() {
            let link = &mut e.state.link;
            if link
                .pending
                .as_ref()
                .is_some_and(|p| now.saturating_since(p.since()) >= HANDSHAKE_TIMEOUT)
            {
                link.pending = None;
            }
            if link
                .previous
                .as_ref()
                .is_some_and(|s| s.session.is_expired(now))
            {
                link.previous = None;
            }
            let unconfirmed_too_long = |s: &LinkSession| {
                !s.confirmed && now.saturating_since(s.since) >= HANDSHAKE_TIMEOUT
            };
            if link.current.as_ref().is_some_and(unconfirmed_too_long) {
                // The responder never answered under it (refused us, or lost msg 3).
                link.current = link.previous.take();
            }
            if link
                .current
                .as_ref()
                .is_some_and(|s| s.session.is_expired(now))
            {
                link.current = None;
                let _ = swept.lost.push((link.iface, link.mac));
            }
            let wants_rekey = link
                .current
                .as_ref()
                .is_some_and(|s| s.session.needs_rekey(now));
            if wants_rekey && link.may_initiate(now) {
                let _ = swept.rekey.push((link.iface, link.mac));
            }
            let idle = link.current.is_none()
                && link.pending.is_none()
                && now.saturating_since(link.last_heard) >= IDLE_LINK_TIMEOUT;
            // A link routing still holds goes when routing forgets its neighbour.
            if idle && e.state.neighbor.is_none() {
                let _ = swept.forget.push(e.id);
            }
        }
        swept
    }
}

/// Whether an authentic Init with sequence number `seq` is a replay on `link`: no newer
/// than the one its pending answer is for, or than one already answered while a session
/// with the peer is alive. (A peer that lost its state starts lower: it gets through once
/// its old session has gone silent.)
fn is_replayed_init(link: &Link, seq: u64, now: Instant) -> bool {
    let pending_newer = matches!(
        link.pending,
        Some(Pending::Responding { init_seq, .. }) if init_seq >= seq
    );
    let answered_newer = link.peer_init_seq.is_some_and(|s| s >= seq) && link.session_alive(now);
    pending_newer || answered_newer
}

fn handshake_drop(e: &HandshakeError) -> DropReason {
    match e {
        HandshakeError::NotAllowed => DropReason::NotAllowed,
        _ => DropReason::HandshakeFailed,
    }
}
