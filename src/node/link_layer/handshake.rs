//! The node's side of link handshakes: when to start one, answering, finishing, installing
//! the session, and the timers (timeout, rekey, expiry) that go with them.

use super::budget::{self, Trigger};
use super::links::{Link, LinkSession, Links, Pending, HANDSHAKE_TIMEOUT, IDLE_LINK_TIMEOUT};
use crate::crypto::handshake::{MSG1_LEN, MSG2_LEN, MSG3_LEN};
use crate::crypto::{Established, HandshakeError, Initiator, Responder, Session};
use crate::node::{DropReason, Event, IfaceId, Node, Timer};
use crate::time::Instant;
use crate::wire::{HandshakeKind, MacAddr};

impl Node {
    /// Start a handshake toward `mac` if none is running and the budget of `trigger` and
    /// the per-link retry limit allow. Unauthenticated triggers are budgeted before a link
    /// is made for them, so a flood of them cannot churn the link table.
    pub(in crate::node) fn maybe_initiate(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
        trigger: Trigger,
    ) {
        let existing = self.links.find(iface, mac);
        if let Some(slot) = existing {
            if !self.links.get(slot).is_some_and(|l| l.may_initiate(now)) {
                return;
            }
        }
        if !self.hs_budgets.allow(now, trigger) {
            self.shared.stats.drop(DropReason::HandshakeRateLimited);
            return;
        }
        let Some(slot) = existing.or_else(|| self.links.find_or_insert(iface, mac, now)) else {
            self.shared.stats.drop(DropReason::NeighborTableFull);
            return;
        };
        let seed = self.shared.seed();
        self.init_seq = self.init_seq.saturating_add(1);
        let mut msg1 = [0u8; MSG1_LEN];
        let Ok((hs, len)) = Initiator::new(
            &self.shared.identity,
            &self.shared.psk,
            seed,
            self.init_seq,
            &mut msg1,
        ) else {
            self.shared.stats.drop(DropReason::HandshakeFailed);
            return;
        };
        let local_idx = Links::new_index(slot, &mut self.shared.rng);
        if let Some(link) = self.links.get_mut(slot) {
            link.pending = Some(Pending::Initiating {
                hs: Box::new(hs),
                local_idx,
                since: now,
                failed: 0,
            });
            link.last_attempt = Some(now);
        }
        self.arm_link_timer(slot);
        self.queue_handshake(
            iface,
            mac,
            HandshakeKind::Init,
            (local_idx, 0),
            msg1.get(..len).unwrap_or(&[]),
        );
    }

    /// A HandshakeInit from `mac` (its frame tag already checked).
    pub(in crate::node) fn on_handshake_init(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
        sender_idx: u32,
        noise: &[u8],
    ) {
        // Reading msg 1 costs no key agreement: do it before anything is stored or spent.
        let seed = self.shared.seed();
        let got = match Responder::read_init(&self.shared.identity, &self.shared.psk, seed, noise) {
            Ok(got) => got,
            Err(e) => {
                self.shared.stats.drop(handshake_drop(&e));
                return;
            }
        };
        let Some(slot) = self.links.find_or_insert(iface, mac, now) else {
            self.shared.stats.drop(DropReason::NeighborTableFull);
            return;
        };
        let we_are_lower = self.mac_of(iface).is_some_and(|m| m < mac);
        let Some(link) = self.links.get_mut(slot) else {
            return;
        };
        let seq = got.init_seq();
        if is_replayed_init(link, seq, now) {
            self.shared.stats.drop(DropReason::HandshakeReplay);
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
            self.shared.stats.drop(DropReason::HandshakeRateLimited);
            return;
        }
        let mut msg2 = [0u8; MSG2_LEN];
        let (hs, len) = match got.answer(&self.shared.identity, &mut msg2) {
            Ok(r) => r,
            Err(e) => {
                self.shared.stats.drop(handshake_drop(&e));
                return;
            }
        };
        let local_idx = Links::new_index(slot, &mut self.shared.rng);
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
        self.arm_link_timer(slot);
        self.queue_handshake(
            iface,
            mac,
            HandshakeKind::Resp,
            (local_idx, sender_idx),
            msg2.get(..len).unwrap_or(&[]),
        );
    }

    /// A HandshakeResp from `mac` for our pending Init `receiver_idx`. The pending state
    /// goes only when the message verifies or proves the peer unacceptable; one that
    /// fails to authenticate is dropped and the genuine one can still complete.
    pub(in crate::node) fn on_handshake_resp(
        &mut self,
        now: Instant,
        mac: MacAddr,
        (sender_idx, receiver_idx): (u32, u32),
        noise: &[u8],
    ) {
        let Some(slot) = self.pending_slot(mac, receiver_idx) else {
            self.shared.stats.drop(DropReason::UnknownSession);
            return;
        };
        let Some(link) = self.links.get_mut(slot) else {
            return;
        };
        let iface = link.iface;
        let Some(Pending::Initiating { hs, local_idx, .. }) = link.pending.as_mut() else {
            self.shared.stats.drop(DropReason::UnknownSession);
            return;
        };
        let local_idx = *local_idx;
        let mut msg3 = [0u8; MSG3_LEN];
        match hs.finish(noise, &mut msg3, &self.shared.cfg.policy) {
            Ok((est, len)) => {
                link.pending = None;
                if link.refuses_identity(now, est.peer.node_id()) {
                    self.shared.stats.drop(DropReason::IdentityConflict);
                    return;
                }
                self.queue_handshake(
                    iface,
                    mac,
                    HandshakeKind::Finish,
                    (local_idx, sender_idx),
                    msg3.get(..len).unwrap_or(&[]),
                );
                self.install_session(now, slot, &est, (local_idx, sender_idx));
            }
            Err(e) => self.failed_read(slot, &e),
        }
    }

    /// A HandshakeFinish from `mac` for our pending Resp `receiver_idx`; like a Resp, a
    /// message that fails to authenticate leaves the pending state in place.
    pub(in crate::node) fn on_handshake_finish(
        &mut self,
        now: Instant,
        mac: MacAddr,
        (sender_idx, receiver_idx): (u32, u32),
        noise: &[u8],
    ) {
        let Some(slot) = self.pending_slot(mac, receiver_idx) else {
            self.shared.stats.drop(DropReason::UnknownSession);
            return;
        };
        let Some(link) = self.links.get_mut(slot) else {
            return;
        };
        let Some(Pending::Responding {
            hs,
            local_idx,
            remote_idx,
            ..
        }) = link.pending.as_mut()
        else {
            self.shared.stats.drop(DropReason::UnknownSession);
            return;
        };
        if *remote_idx != sender_idx {
            self.shared.stats.drop(DropReason::UnknownSession);
            return;
        }
        let indices = (*local_idx, *remote_idx);
        match hs.finish(noise, &self.shared.cfg.policy) {
            Ok(est) => {
                link.pending = None;
                if link.refuses_identity(now, est.peer.node_id()) {
                    self.shared.stats.drop(DropReason::IdentityConflict);
                    return;
                }
                self.install_session(now, slot, &est, indices);
            }
            Err(e) => self.failed_read(slot, &e),
        }
    }

    /// The slot whose pending handshake `receiver_idx` names, if it is the link to `mac`
    /// and that handshake may still read a message.
    fn pending_slot(&mut self, mac: MacAddr, receiver_idx: u32) -> Option<usize> {
        let slot = self.links.by_pending_index(receiver_idx)?;
        let link = self.links.get(slot).filter(|l| l.mac == mac)?;
        if link
            .pending
            .as_ref()
            .is_some_and(Pending::read_budget_spent)
        {
            self.shared.stats.drop(DropReason::HandshakeRateLimited);
            return None;
        }
        Some(slot)
    }

    /// A Resp or Finish for the pending handshake in `slot` failed: one that did not
    /// authenticate leaves the handshake for the genuine message (up to
    /// `MAX_FAILED_READS`); one that did but named a refused or broken identity ends it.
    fn failed_read(&mut self, slot: usize, e: &HandshakeError) {
        self.shared.stats.drop(handshake_drop(e));
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
    /// announcement. The responder has seen our identity proof and policy check pass, so
    /// its session is confirmed at once; the initiator's waits for the responder's first
    /// frame (`confirm_session`).
    fn install_session(
        &mut self,
        now: Instant,
        slot: usize,
        est: &Established,
        (local_idx, remote_idx): (u32, u32),
    ) {
        let node = est.peer.node_id();
        let Some(link) = self.links.get_mut(slot) else {
            return;
        };
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
        self.arm_link_timer(slot);
        self.shared.stats.sessions_established += 1;
        // Our group key (so it can read our broadcasts) and our announcement (so it can
        // check our OGMs without asking). The responder always sends it: its first frame
        // under the new session is what confirms the session to the initiator.
        if !rekey {
            let key = self.group.repr();
            let ann = self.own_ann;
            self.queue_unicast(slot, true, |w| {
                w.push_group_key(&key)?;
                w.push_announce(&ann)
            });
        }
        if !est.initiator {
            self.session_up(now, slot);
        }
    }

    /// The link in `slot` has a new deadline (a handshake or session began): the link
    /// timer fires no later than it.
    fn arm_link_timer(&mut self, slot: usize) {
        let forgettable = !self.links.routing_holds(slot);
        if let Some(at) = self.links.get(slot).and_then(|l| l.deadline(forgettable)) {
            self.shared.timers.arm(Timer::Links, at);
        }
    }

    /// A frame from the responder opened under our new session: the peer accepted us.
    pub(in crate::node) fn confirm_session(&mut self, now: Instant, slot: usize) {
        let Some(sess) = self.links.get_mut(slot).and_then(|l| l.current.as_mut()) else {
            return;
        };
        if !sess.confirmed {
            sess.confirmed = true;
            self.session_up(now, slot);
        }
    }

    /// Tell routing and the caller that the link to the peer in `slot` is authenticated.
    fn session_up(&mut self, now: Instant, slot: usize) {
        let Some(link) = self.links.get(slot) else {
            return;
        };
        let (iface, mac) = (link.iface, link.mac);
        let Some(node) = link.node else {
            return;
        };
        let links = self.links.table_mut();
        self.routing
            .neighbor_authenticated(now, links, (iface, mac), node);
        self.shared
            .push_event(Event::SessionUp { iface, mac, node });
        self.drain_routing(now);
    }

    /// Handshake timeouts, rekeys, expired sessions, forgotten idle links.
    pub(in crate::node) fn housekeep_links(&mut self, now: Instant) {
        // One entry per link at most: sized to the link table, no push can fail (with 16,
        // sessions expiring past the 16th in one tick were never reported to routing).
        let mut rekey = heapless::Vec::<(IfaceId, MacAddr), { crate::node::MAX_LINKS }>::new();
        let mut forget = heapless::Vec::<usize, { crate::node::MAX_LINKS }>::new();
        let mut lost = heapless::Vec::<(IfaceId, MacAddr), { crate::node::MAX_LINKS }>::new();
        for (slot, link) in self.links.iter_mut() {
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
                let _ = lost.push((link.iface, link.mac));
            }
            let wants_rekey = link
                .current
                .as_ref()
                .is_some_and(|s| s.session.needs_rekey(now));
            if wants_rekey && link.may_initiate(now) {
                let _ = rekey.push((link.iface, link.mac));
            }
            let idle = link.current.is_none()
                && link.pending.is_none()
                && now.saturating_since(link.last_heard) >= IDLE_LINK_TIMEOUT;
            if idle {
                let _ = forget.push(slot);
            }
        }
        // A link routing still holds goes when routing forgets its neighbour.
        forget.retain(|slot| !self.links.routing_holds(*slot));
        self.forget_links(now, &lost, &forget);
        for (iface, mac) in rekey {
            self.maybe_initiate(now, iface, mac, Trigger::Rekey);
        }
    }
}

impl Node {
    /// Drop every link (sessions, pending handshake, group key) on `iface`.
    pub(in crate::node) fn forget_links_on(&mut self, now: Instant, iface: IfaceId) {
        let mut lost = heapless::Vec::<(IfaceId, MacAddr), { crate::node::MAX_LINKS }>::new();
        let mut forget = heapless::Vec::<usize, { crate::node::MAX_LINKS }>::new();
        for (slot, link) in self.links.iter().filter(|(_, l)| l.iface == iface) {
            if link.current.is_some() {
                let _ = lost.push((link.iface, link.mac));
            }
            let _ = forget.push(slot);
        }
        self.forget_links(now, &lost, &forget);
    }

    /// Tell routing the neighbours in `lost` lost their session, then forget the links in
    /// the slots `forget`.
    fn forget_links(&mut self, now: Instant, lost: &[(IfaceId, MacAddr)], forget: &[usize]) {
        for (iface, mac) in lost {
            if let Some(id) = self.links.table().find(*iface, *mac) {
                let links = self.links.table_mut();
                self.routing.neighbor_deauthenticated(now, links, id);
            }
        }
        self.neighbours_left(now, lost.len());
        for slot in forget {
            self.links.remove(*slot);
        }
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
