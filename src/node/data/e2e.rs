//! Direct mode, end to end (docs/protocol.md §7): IP packets between two nodes travel
//! sealed under a session between their static keys, so relays forward ciphertext, and the
//! destination delivers a packet only if its source address belongs to the key that sealed
//! it.

use super::e2e_table::{
    E2ePending, E2eSession, E2E_IDLE_TIMEOUT, E2E_INIT_BURST, E2E_INIT_PERIOD, MAX_E2E_PEERS,
};
use super::e2e_wait::PROBE_QUOTE_LEN;
use super::ip::{deliver_drop, next_hop_link};
use super::{DataPlane, Env, DATA_TTL};
use crate::crypto::e2e::{E2eEnds, E2eInitReceived, E2eInitiator, E2E_MSG1_LEN, E2E_MSG2_LEN};
use crate::crypto::{Established, OpenError, Session};
use crate::node::index::{new_index, Which};
use crate::node::{DropReason, Timer, HANDSHAKE_TIMEOUT};
use crate::overlay::icmp::{build_time_exceeded4, build_time_exceeded6, must_not_answer};
use crate::overlay::{classify, ipv6_for};
use crate::time::Instant;
use crate::wire::e2e::{
    emit_expired, emit_init, emit_resp, emit_sealed_header, split_sealed_mut, E2ePayload,
    E2E_SEALED_HEADER_LEN,
};
use crate::wire::{NodeId, TAG_LEN};

impl DataPlane {
    /// Send `packet` from our TUN side to `dst` under our session with it, setting one up
    /// (the packet waits meanwhile) if there is none.
    pub(in crate::node) fn e2e_send(
        &mut self,
        now: Instant,
        dst: NodeId,
        ttl: u8,
        packet: &[u8],
        env: &mut Env<'_>,
    ) {
        let Some(slot) = self.e2e_peer(now, dst, env) else {
            return;
        };
        let has_session = self.e2e.get(slot).is_some_and(|p| p.current.is_some());
        if has_session {
            self.e2e_seal_and_forward(now, (slot, ttl), packet, env);
            return;
        }
        if !self.waiting.hold(dst, ttl, packet, now) {
            env.shared.stats.drop(DropReason::E2eWaitFull);
        } else if let Some(t) = self.waiting.next_expiry() {
            env.shared.timers.arm(Timer::E2e, t);
        }
        self.e2e_initiate(now, slot, env);
    }

    /// The slot of `node` in the end-to-end table, made from its announcement's keys.
    fn e2e_peer(&mut self, now: Instant, node: NodeId, env: &mut Env<'_>) -> Option<usize> {
        let identity = match self.e2e.find(&node) {
            Some(slot) => return Some(slot),
            None => env.control.peer_identity(&node),
        };
        let Some(identity) = identity else {
            env.shared.stats.drop(DropReason::E2eNoKey);
            return None;
        };
        let slot = self.e2e.find_or_insert(node, identity, now)?;
        env.shared.timers.arm(Timer::E2e, now + E2E_IDLE_TIMEOUT);
        Some(slot)
    }

    /// Start a handshake with the peer in `slot` unless one is in flight or was started
    /// less than `HANDSHAKE_RETRY` ago.
    fn e2e_initiate(&mut self, now: Instant, slot: usize, env: &mut Env<'_>) {
        if !self.e2e.get(slot).is_some_and(|p| p.may_initiate(now)) {
            return;
        }
        let seed = env.shared.seed();
        let local_idx = new_index(slot, &mut env.shared.rng);
        let init_seq = env.link.next_init_seq();
        let Some(peer) = self.e2e.get_mut(slot) else {
            return;
        };
        let ends = E2eEnds {
            initiator: env.shared.id,
            responder: peer.node,
        };
        let mut msg1 = [0u8; E2E_MSG1_LEN];
        let Ok((hs, _)) = E2eInitiator::new(
            &env.shared.identity,
            &peer.identity,
            ends,
            seed,
            init_seq,
            &mut msg1,
        ) else {
            env.shared.stats.drop(DropReason::E2eHandshakeFailed);
            return;
        };
        peer.pending = Some(E2ePending {
            hs: Box::new(hs),
            local_idx,
            since: now,
        });
        peer.last_attempt = Some(now);
        let dst = peer.node;
        let deadline = peer.deadline();
        env.shared.timers.arm(Timer::E2e, deadline);
        let mut buf = [0u8; crate::wire::e2e::E2E_INIT_LEN];
        if let Ok(n) = emit_init(&mut buf, env.shared.id, local_idx, &msg1) {
            self.forward(now, (dst, DATA_TTL), buf.get(..n).unwrap_or_default(), env);
        }
    }

    /// Seal `packet` under the current session of the peer in `slot` straight into the
    /// Data message of the frame to the next hop (one copy: the packet into the frame).
    fn e2e_seal_and_forward(
        &mut self,
        now: Instant,
        (slot, ttl): (usize, u8),
        packet: &[u8],
        env: &mut Env<'_>,
    ) {
        let Some(dst) = self.e2e.get(slot).map(|p| p.node) else {
            return;
        };
        let Some(link) = next_hop_link(&dst, env) else {
            return;
        };
        // A Probe rides in the padding when there is room (as in `send_data`).
        let probe = self.next_probe_seq();
        let Some(sess) = self.e2e.get_mut(slot).and_then(|p| {
            p.last_used = now;
            p.current.as_mut()
        }) else {
            return;
        };
        let (src, mut sealed) = (env.shared.id, Err(SealFailed::NoRoom));
        let sent = env
            .link
            .queue_unicast(link, false, &mut env.shared.stats, |w| {
                sealed = seal_into(sess, src, packet, w.data_area_mut());
                let len = sealed.map_err(|_| crate::wire::Error::NoSpace)?.0;
                w.commit_data(dst, ttl, len)?;
                w.push_probe_if_room(probe)
            });
        if sealed == Err(SealFailed::CounterSpent) {
            env.shared.stats.drop(DropReason::NoSession);
        }
        let (Ok((_, remote_idx, counter)), true) = (sealed, sent) else {
            return;
        };
        env.control.note_data_sent(now, env.link, link);
        // Traceroute's probes: remember their start, for a relay's ttl-expired notice.
        if ttl < DATA_TTL && !must_not_answer(packet) {
            self.probes.record(remote_idx, counter, packet);
        }
    }

    /// An end-to-end payload that arrived for us.
    pub(in crate::node) fn on_e2e_payload(
        &mut self,
        now: Instant,
        payload: &[u8],
        env: &mut Env<'_>,
    ) {
        match E2ePayload::parse(payload) {
            Ok(E2ePayload::Init {
                src,
                sender_idx,
                msg1,
            }) => self.on_e2e_init(now, (src, sender_idx), msg1, env),
            Ok(E2ePayload::Resp {
                src,
                receiver_idx,
                sender_idx,
                msg2,
            }) => self.on_e2e_resp(now, src, (receiver_idx, sender_idx), msg2, env),
            Ok(E2ePayload::Sealed {
                src,
                receiver_idx,
                counter,
            }) => self.on_e2e_sealed(now, src, (receiver_idx, counter), payload, env),
            Ok(E2ePayload::Expired {
                src,
                receiver_idx,
                counter,
            }) => self.on_e2e_expired(src, (receiver_idx, counter), env),
            Ok(E2ePayload::Anonymous {
                exit,
                key_seq,
                sender,
                counter,
            }) => {
                let parts = (exit, key_seq, sender, counter);
                let deliver = &mut self.deliver;
                self.onion.on_anonymous(now, parts, payload, deliver, env);
            }
            Ok(E2ePayload::AnonymousReply { src, iid, counter }) => {
                self.onion
                    .exit_reply(now, (src, iid, counter), payload, env)
            }
            Err(_) => env.shared.stats.drop(DropReason::E2eMalformed),
        }
    }

    fn on_e2e_init(
        &mut self,
        now: Instant,
        (src, sender_idx): (NodeId, u32),
        msg1: &[u8; E2E_MSG1_LEN],
        env: &mut Env<'_>,
    ) {
        // Reading msg 1 costs two key agreements before it is known to be genuine: a source
        // we hold gets a few a second (a replayed msg 1 is refused only after that), new
        // sources share one budget (a member can name any node as the source).
        let known = self.e2e.find(&src).and_then(|slot| self.e2e.get_mut(slot));
        let allowed = match known {
            Some(peer) => peer.init_gate.allow(now, E2E_INIT_PERIOD, E2E_INIT_BURST),
            None => self.e2e_init_budget.allow(now),
        };
        if !allowed {
            env.shared.stats.drop(DropReason::E2eRateLimited);
            return;
        }
        let Some(slot) = self.e2e_peer(now, src, env) else {
            return;
        };
        let seed = env.shared.seed();
        let local_idx = new_index(slot, &mut env.shared.rng);
        let Some(peer) = self.e2e.get_mut(slot) else {
            return;
        };
        // Both started at once: the handshake of the lower node id goes on.
        if peer.pending.is_some() && env.shared.id < src {
            return;
        }
        let ends = E2eEnds {
            initiator: src,
            responder: env.shared.id,
        };
        let got =
            match E2eInitReceived::read(&env.shared.identity, &peer.identity, ends, seed, msg1) {
                Ok(got) => got,
                Err(_) => {
                    env.shared.stats.drop(DropReason::E2eHandshakeFailed);
                    return;
                }
            };
        if peer.peer_init_seq.is_some_and(|s| got.init_seq() <= s) {
            env.shared.stats.drop(DropReason::E2eReplay);
            return;
        }
        peer.peer_init_seq = Some(got.init_seq());
        let mut msg2 = [0u8; E2E_MSG2_LEN];
        let Ok((est, _)) = got.answer(&mut msg2) else {
            env.shared.stats.drop(DropReason::E2eHandshakeFailed);
            return;
        };
        peer.last_used = now;
        self.e2e_install(now, slot, (local_idx, sender_idx), &est, env);
        let mut buf = [0u8; crate::wire::e2e::E2E_RESP_LEN];
        if let Ok(n) = emit_resp(&mut buf, env.shared.id, (local_idx, sender_idx), &msg2) {
            self.forward(now, (src, DATA_TTL), buf.get(..n).unwrap_or_default(), env);
        }
        // Packets we held (our own handshake lost the race) wait for the initiator's first
        // sealed packet: sent now, they could overtake msg 2, which travels as control.
    }

    fn on_e2e_resp(
        &mut self,
        now: Instant,
        src: NodeId,
        (receiver_idx, sender_idx): (u32, u32),
        msg2: &[u8; E2E_MSG2_LEN],
        env: &mut Env<'_>,
    ) {
        let found = self.e2e.by_pending_index(receiver_idx);
        let Some((slot, peer)) = found.and_then(|s| Some((s, self.e2e.get_mut(s)?))) else {
            env.shared.stats.drop(DropReason::E2eUnknownIndex);
            return;
        };
        let Some(pending) = peer.pending.as_mut().filter(|_| peer.node == src) else {
            env.shared.stats.drop(DropReason::E2eUnknownIndex);
            return;
        };
        let est = match pending.hs.finish(msg2) {
            Ok(est) => est,
            Err(e) => {
                if !e.keeps_state() {
                    peer.pending = None;
                }
                env.shared.stats.drop(DropReason::E2eHandshakeFailed);
                return;
            }
        };
        let local_idx = pending.local_idx;
        self.e2e_install(now, slot, (local_idx, sender_idx), &est, env);
        self.e2e_flush(now, slot, src, env);
    }

    /// A completed handshake's session becomes the current one of the peer in `slot` (the
    /// one before it is kept for receiving), and its deadlines are armed.
    fn e2e_install(
        &mut self,
        now: Instant,
        slot: usize,
        (local_idx, remote_idx): (u32, u32),
        est: &Established,
        env: &mut Env<'_>,
    ) {
        let Some(peer) = self.e2e.get_mut(slot) else {
            return;
        };
        peer.pending = None;
        peer.previous = peer.current.take();
        peer.current = Some(E2eSession {
            local_idx,
            remote_idx,
            session: Session::new(est, now),
        });
        let deadline = peer.deadline();
        env.shared.timers.arm(Timer::E2e, deadline);
        env.shared.stats.e2e_sessions_established += 1;
    }

    /// Send every packet that waited for the session with the peer in `slot`.
    fn e2e_flush(&mut self, now: Instant, slot: usize, node: NodeId, env: &mut Env<'_>) {
        let Some(mut buf) = self.unheld.take() else {
            return;
        };
        while let Some((len, ttl)) = self.waiting.take_for(&node, &mut buf[..]) {
            if let Some(packet) = buf.get(..len) {
                self.e2e_seal_and_forward(now, (slot, ttl), packet, env);
            }
        }
        self.unheld = Some(buf);
    }

    /// A packet sealed end to end for us under our session index `receiver_idx` with
    /// `counter`: opened into a deliver slot, delivered only if its source address is the
    /// sender's.
    fn on_e2e_sealed(
        &mut self,
        now: Instant,
        src: NodeId,
        (receiver_idx, counter): (u32, u64),
        payload: &[u8],
        env: &mut Env<'_>,
    ) {
        let Some((slot, which)) = self.e2e.by_index(receiver_idx) else {
            env.shared.stats.drop(DropReason::E2eUnknownIndex);
            // The sender holds a session we lost (we restarted): set up a new one. Anyone
            // can name any source, so these handshakes have a budget of their own.
            if self.e2e_budget.allow(now) {
                if let Some(slot) = self.e2e_peer(now, src, env) {
                    self.e2e_initiate(now, slot, env);
                }
            }
            return;
        };
        let out = match self.deliver.reserve_copy(payload) {
            Ok(out) => out,
            Err(e) => return env.shared.stats.drop(deliver_drop(e)),
        };
        let Ok(parts) = split_sealed_mut(out.buf.get_mut(..payload.len()).unwrap_or_default())
        else {
            env.shared.stats.drop(DropReason::E2eMalformed);
            return;
        };
        let Some(peer) = self.e2e.get_mut(slot) else {
            return;
        };
        let sess = match which {
            Which::Current => peer.current.as_mut(),
            Which::Previous => peer.previous.as_mut(),
        };
        let Some(sess) = sess else {
            return;
        };
        let tag = *parts.tag;
        let opened = sess
            .session
            .recv
            .open_in_place(counter, parts.header, parts.body, &tag);
        match opened {
            Ok(()) => {}
            Err(OpenError::Replay(_)) => return env.shared.stats.drop(DropReason::E2eReplay),
            Err(_) => return env.shared.stats.drop(DropReason::E2eDecryptFailed),
        }
        peer.last_used = now;
        let peer_node = peer.node;
        let len = parts.body.len();
        // The packet now sits after the header: move it to the start of the slot.
        out.buf
            .copy_within(E2E_SEALED_HEADER_LEN..E2E_SEALED_HEADER_LEN + len, 0);
        let Some(packet) = out.buf.get(..len) else {
            return;
        };
        let (class, parsed) = classify(
            packet,
            &env.control.prefix(),
            env.shared.cfg.ipv4_pool.as_ref(),
        );
        let source = parsed.map(|p| p.src());
        if source.and_then(|s| env.control.book().lookup(&s)) != Some(peer_node) {
            env.shared.stats.drop(DropReason::ForgedSource);
            return;
        }
        if env.control.book().lookup_class(&class) != Some(env.shared.id) {
            env.shared.stats.drop(DropReason::NotOverlay);
            return;
        }
        self.deliver.commit_as(len, ());
        // The peer holds the session now: what waited for it can follow.
        if self.waiting.holds_any() {
            self.e2e_flush(now, slot, peer_node, env);
        }
    }

    /// A relay dropped one of our sealed packets for ttl: give our TUN side the ICMP Time
    /// Exceeded it would have sent, if the packet was a probe we remember.
    fn on_e2e_expired(
        &mut self,
        relay: NodeId,
        (receiver_idx, counter): (u32, u64),
        env: &mut Env<'_>,
    ) {
        let mut quote = [0u8; PROBE_QUOTE_LEN];
        let Some(n) = self.probes.take(receiver_idx, counter, &mut quote) else {
            return;
        };
        let Some(quoted) = quote.get(..n) else {
            return;
        };
        let Some(mut buf) = self.icmp_scratch.take() else {
            return;
        };
        let built = match quoted.first().map(|b| b >> 4) {
            Some(6) => build_time_exceeded6(
                &mut buf[..],
                ipv6_for(&env.control.prefix(), &relay),
                env.control.addr6(),
                quoted,
            ),
            Some(4) => {
                let from = env
                    .control
                    .book()
                    .claims()
                    .and_then(|c| c.address_of(&relay));
                match (from, env.control.overlay_ipv4(&env.shared.id)) {
                    (Some(f), Some(t)) => build_time_exceeded4(&mut buf[..], f, t, quoted),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(error) = built.and_then(|n| buf.get(..n)) {
            self.deliver_local(error, &mut env.shared.stats);
            env.shared.stats.icmp_errors_made += 1;
        }
        self.icmp_scratch = Some(buf);
    }

    /// As a relay: the Sealed `payload` ran out of ttl here; tell its source which one,
    /// within the ICMP error budget.
    pub(super) fn send_expired_notice(&mut self, now: Instant, payload: &[u8], env: &mut Env<'_>) {
        let Ok(E2ePayload::Sealed {
            src,
            receiver_idx,
            counter,
        }) = E2ePayload::parse(payload)
        else {
            return;
        };
        if src == env.shared.id {
            return;
        }
        if !self.icmp_budget.allow(now) {
            env.shared.stats.drop(DropReason::IcmpRateLimited);
            return;
        }
        let mut buf = [0u8; crate::wire::e2e::E2E_EXPIRED_LEN];
        if let Ok(n) = emit_expired(&mut buf, env.shared.id, receiver_idx, counter) {
            if self.forward(now, (src, DATA_TTL), buf.get(..n).unwrap_or_default(), env) {
                env.shared.stats.icmp_errors_sent += 1;
            }
        }
    }

    /// The end-to-end timer: handshake timeouts, session expiry and rekeys, idle peers,
    /// packets that waited too long.
    pub(in crate::node) fn e2e_timers(&mut self, now: Instant, env: &mut Env<'_>) {
        for _ in 0..self.waiting.expire(now) {
            env.shared.stats.drop(DropReason::E2eWaitExpired);
        }
        let mut rekey = heapless::Vec::<usize, { MAX_E2E_PEERS }>::new();
        let mut forget = heapless::Vec::<usize, { MAX_E2E_PEERS }>::new();
        for slot in 0..MAX_E2E_PEERS {
            let Some(peer) = self.e2e.get_mut(slot) else {
                continue;
            };
            let timed_out = |p: &E2ePending| now.saturating_since(p.since) >= HANDSHAKE_TIMEOUT;
            if peer.pending.as_ref().is_some_and(timed_out) {
                peer.pending = None;
            }
            if peer
                .previous
                .as_ref()
                .is_some_and(|s| s.session.is_expired(now))
            {
                peer.previous = None;
            }
            if peer
                .current
                .as_ref()
                .is_some_and(|s| s.session.is_expired(now))
            {
                peer.current = None;
            }
            let in_use = now.saturating_since(peer.last_used) < E2E_IDLE_TIMEOUT;
            let due = peer
                .current
                .as_ref()
                .is_some_and(|s| s.session.needs_rekey(now));
            if due && in_use && peer.may_initiate(now) {
                let _ = rekey.push(slot);
            }
            if peer.current.is_none() && peer.pending.is_none() && !in_use {
                let _ = forget.push(slot);
            }
        }
        for slot in forget {
            self.e2e.remove(slot);
        }
        for slot in rekey {
            self.e2e_initiate(now, slot, env);
        }
        let next = [self.e2e.next_deadline(now), self.waiting.next_expiry()];
        env.shared
            .timers
            .set(Timer::E2e, next.into_iter().flatten().min());
    }
}

/// Why a packet could not be sealed into a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SealFailed {
    /// The frame's data area cannot hold it (never for a packet within the TUN MTU).
    NoRoom,
    /// The session's counter is used up (it is replaced long before).
    CounterSpent,
}

/// Write `packet` sealed under `sess` into `area` as a Sealed payload from `src`; returns
/// its length, and the session index and counter it went under.
fn seal_into(
    sess: &mut E2eSession,
    src: NodeId,
    packet: &[u8],
    area: &mut [u8],
) -> Result<(usize, u32, u64), SealFailed> {
    let end = E2E_SEALED_HEADER_LEN + packet.len();
    let sealed = area.get_mut(..end + TAG_LEN).ok_or(SealFailed::NoRoom)?;
    let counter = sess
        .session
        .send
        .next_counter()
        .map_err(|_| SealFailed::CounterSpent)?;
    emit_sealed_header(sealed, src, sess.remote_idx, counter).map_err(|_| SealFailed::NoRoom)?;
    let (header, rest) = sealed.split_at_mut(E2E_SEALED_HEADER_LEN);
    let (body, tag) = rest.split_at_mut(packet.len());
    body.copy_from_slice(packet);
    let t = sess
        .session
        .send
        .seal_in_place(counter, header, body)
        .map_err(|_| SealFailed::CounterSpent)?;
    tag.copy_from_slice(&t);
    Ok((end + TAG_LEN, sess.remote_idx, counter))
}
