//! Frames from the mesh: classified, authenticated and opened by the link layer, then each
//! message handed to the part it is for.

use super::link_layer::{Opened, Relayed, Trigger};
use super::{DropReason, IfaceId, Node, Transmit};
use crate::link::LinkId;
use crate::time::Instant;
use crate::wire::{Frame, HandshakeKind, MacAddr, Message, MessageIter};

/// Whether a decrypted frame came over a link session (unicast) or a group key (broadcast).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    Unicast,
    Broadcast,
}

/// Where a Data message being relayed goes next.
pub(super) struct Relay {
    /// The next hop's link.
    pub(super) link: LinkId,
    /// Its ttl after this hop.
    pub(super) ttl: u8,
    /// Whether it counts as control traffic (end-to-end session set-up).
    pub(super) control: bool,
}

impl Node {
    /// A frame received on `iface` from `src` (bytes after the Ethernet header). A frame
    /// this node relays is queued for `poll_transmit` like any other (one copy); the daemon
    /// uses [`Node::handle_frame_mut`], which relays without copying.
    pub fn handle_frame(&mut self, now: Instant, iface: IfaceId, src: MacAddr, frame: &[u8]) {
        let Some(mut copy) = self.link.take_scratch() else {
            return;
        };
        match copy.get_mut(..frame.len()) {
            Some(buf) => {
                buf.copy_from_slice(frame);
                if let Some(out) = self.receive(now, iface, src, buf) {
                    self.link.queue_relayed(&out, buf, &mut self.shared.stats);
                }
            }
            None => {
                self.shared.stats.frames_in += 1;
                self.shared.stats.bytes_in += frame.len() as u64;
                self.shared.stats.drop(DropReason::MalformedFrame);
            }
        }
        self.link.put_scratch(copy);
    }

    /// A frame received on `iface` from `src`, in a buffer the node may rewrite. A Data
    /// frame it relays is decrypted and re-sealed for the next hop in that buffer and
    /// returned: the caller sends `frame[..len]` from there, nothing is copied.
    pub fn handle_frame_mut(
        &mut self,
        now: Instant,
        iface: IfaceId,
        src: MacAddr,
        frame: &mut [u8],
    ) -> Option<Transmit> {
        let out = self.receive(now, iface, src, frame)?;
        Some(out.sent(&mut self.shared.stats))
    }

    /// Classify, authenticate and act on a frame; a relayed Data frame is left re-sealed in
    /// `frame` and returned.
    fn receive(
        &mut self,
        now: Instant,
        iface: IfaceId,
        src: MacAddr,
        frame: &mut [u8],
    ) -> Option<Relayed> {
        self.shared.stats.frames_in += 1;
        self.shared.stats.bytes_in += frame.len() as u64;
        if self.link.mac_of(iface).is_none() || src.is_broadcast() {
            self.shared.stats.drop(DropReason::MalformedFrame);
            return None;
        }
        // Never a neighbour: answering it would make us handshake with ourselves.
        if self.link.is_own_mac(src) {
            self.shared.stats.drop(DropReason::OwnSourceMac);
            return None;
        }
        let mut relayed = None;
        match Frame::parse(frame) {
            Err(_) => self.shared.stats.drop(DropReason::MalformedFrame),
            Ok(Frame::Hello { hello, tag }) => {
                if !self.link.hello_tag_ok(src, &tag) {
                    self.shared.stats.drop(DropReason::BadFrameTag);
                    return None;
                }
                let links = self.link.table_mut();
                self.routing
                    .handle_hello(now, links, (iface, src), &hello, false);
                // A neighbour whose session went silent and that says hello in clear lost
                // that session (it restarted, or another node took its MAC).
                if !self.link.session_alive(iface, src, now) {
                    self.link.maybe_initiate(
                        now,
                        (iface, src),
                        Trigger::Authenticated,
                        &mut self.shared,
                    );
                }
            }
            Ok(Frame::Handshake { tag, .. }) if !self.link.handshake_tag_ok(iface, src, &tag) => {
                self.shared.stats.drop(DropReason::BadFrameTag)
            }
            Ok(Frame::Handshake {
                kind,
                sender_idx,
                receiver_idx,
                noise,
                ..
            }) => {
                let indices = (sender_idx, receiver_idx);
                let (link, shared) = (&mut self.link, &mut self.shared);
                let up = match kind {
                    HandshakeKind::Init => {
                        link.on_handshake_init(now, (iface, src), sender_idx, noise, shared);
                        None
                    }
                    HandshakeKind::Resp => {
                        link.on_handshake_resp(now, src, indices, noise, &self.own_ann, shared);
                        None
                    }
                    HandshakeKind::Finish => {
                        link.on_handshake_finish(now, src, indices, noise, &self.own_ann, shared)
                    }
                };
                if let Some(up) = up {
                    self.session_up(now, up);
                }
            }
            Ok(Frame::Unicast(f)) => {
                let (idx, counter) = (f.index_or_key_id(), f.counter());
                relayed = self.on_unicast(now, (iface, src), (idx, counter), frame);
            }
            Ok(Frame::Broadcast(f)) => {
                let (key_id, counter) = (f.index_or_key_id(), f.counter());
                let opened = self.link.open_broadcast(
                    now,
                    (iface, src),
                    (key_id, counter),
                    frame,
                    &mut self.shared,
                );
                if let Some(opened) = opened {
                    self.after_authenticated(now, &opened, (iface, src));
                    let plain = opened.plain;
                    let _never_relayed =
                        self.on_messages(now, (iface, src), plain, Via::Broadcast, false);
                }
            }
        }
        self.drain_routing(now);
        relayed
    }

    /// A unicast frame under session index `idx` with frame counter `counter`: opened in
    /// place; a Data message in it for another node is relayed in place when it comes first.
    fn on_unicast(
        &mut self,
        now: Instant,
        (iface, src): (IfaceId, MacAddr),
        (idx, counter): (u32, u64),
        frame: &mut [u8],
    ) -> Option<Relayed> {
        let opened =
            self.link
                .open_unicast(now, (iface, src), (idx, counter), frame, &mut self.shared)?;
        if let Some(up) = opened.up {
            self.session_up(now, up);
        }
        self.after_authenticated(now, &opened, (iface, src));
        let relay = self.on_messages(now, (iface, src), opened.plain, Via::Unicast, true)?;
        self.relay_in_place(now, frame, relay)
    }

    /// A frame from the link `opened` came over authenticated: it is alive.
    fn after_authenticated(
        &mut self,
        now: Instant,
        opened: &Opened<'_>,
        source: (IfaceId, MacAddr),
    ) {
        let Some(node) = self.link.mark_authenticated(opened.id, now) else {
            return;
        };
        let links = self.link.table_mut();
        if !self
            .routing
            .handle_authenticated_frame(now, links, opened.id)
        {
            // Routing forgot this neighbour while it was silent: it is back.
            if let Some(node) = node {
                self.routing
                    .neighbor_authenticated(now, links, source, node);
            }
        }
    }

    /// Act on every message of a decrypted plaintext. With `relay_first`, a Data message
    /// for another node that comes first is not forwarded here but returned, to be relayed
    /// in the frame it came in.
    fn on_messages(
        &mut self,
        now: Instant,
        source: (IfaceId, MacAddr),
        plain: &[u8],
        via: Via,
        relay_first: bool,
    ) -> Option<Relay> {
        let mut relay = None;
        for (i, msg) in MessageIter::new(plain).enumerate() {
            match msg {
                Ok(Message::Data { dst, ttl, packet })
                    if relay_first && i == 0 && dst != self.shared.id =>
                {
                    relay = self.relay_decision(now, dst, ttl, packet);
                }
                Ok(m) => self.on_message(now, source, m, via),
                Err(_) => self.shared.stats.drop(DropReason::MalformedMessage),
            }
        }
        relay
    }

    fn on_message(
        &mut self,
        now: Instant,
        (iface, src): (IfaceId, MacAddr),
        m: Message<'_>,
        via: Via,
    ) {
        match (m, via) {
            (Message::Hello(h), Via::Broadcast) => {
                let links = self.link.table_mut();
                self.routing
                    .handle_hello(now, links, (iface, src), &h, true)
            }
            (Message::Ihu(entries), Via::Broadcast) => {
                let links = self.link.table_mut();
                self.routing.handle_ihu(now, links, (iface, src), entries)
            }
            // OGMs are flooded by broadcast; a table sent to a new neighbour comes unicast.
            (Message::Ogm(ogm), _) => self.on_ogm(now, iface, src, &ogm),
            (Message::Announce(bytes), via) => {
                let fresh = self.on_announce(now, (iface, src), bytes);
                let id = self.link.find(iface, src);
                let from_itself = id
                    .and_then(|id| self.link.peer(id))
                    .is_some_and(|node| Some(node) == fresh);
                if via == Via::Unicast && from_itself {
                    if let Some(id) = id {
                        self.send_table_to(now, id);
                    }
                }
            }
            (Message::AnnounceRequest(node), Via::Unicast) => {
                self.on_announce_request(now, iface, src, &node)
            }
            (Message::SeqnoRequest(req), _) => {
                let links = self.link.table_mut();
                self.routing
                    .handle_seqno_request(now, links, (iface, src), &req)
            }
            (Message::GroupKey(key), Via::Unicast) => self.link.receive_group_key(iface, src, &key),
            (Message::GroupKeyRequest, Via::Unicast) => {
                self.link.send_group_key(iface, src, &mut self.shared.stats)
            }
            (Message::Probe(seq), Via::Unicast) => self.answer_probe(now, iface, seq),
            (Message::ProbeAck(seq), _) => {
                if let Some(id) = self.link.find(iface, src) {
                    let links = self.link.table_mut();
                    self.routing.handle_probe_ack(now, links, id, seq);
                }
            }
            (Message::Data { dst, ttl, packet }, Via::Unicast) => {
                self.on_data(now, dst, ttl, packet)
            }
            // A message in a frame kind it does not belong to.
            _ => self.shared.stats.drop(DropReason::MalformedMessage),
        }
    }

    /// Answer a Probe with a small broadcast ProbeAck: any authenticated frame from us proves
    /// the link alive to every neighbour, and a 1500-byte unicast answer would cost 25x the
    /// airtime. Data frames carry a Probe in their padding, so answers are rate-limited to one
    /// per `PROBE_ACK_MIN_GAP` per interface.
    fn answer_probe(&mut self, now: Instant, iface: IfaceId, seq: u32) {
        if self.link.mac_of(iface).is_none() {
            return;
        }
        let last = self.last_probe_ack.iter_mut().find(|(i, _)| *i == iface);
        let recent = last
            .as_ref()
            .is_some_and(|(_, t)| now.saturating_since(*t) < super::PROBE_ACK_MIN_GAP);
        if recent {
            return;
        }
        match last {
            Some((_, t)) => *t = now,
            // One entry per attached interface: there is room.
            None => {
                let _ = self.last_probe_ack.push((iface, now));
            }
        }
        self.link
            .queue_broadcast(iface, &mut self.shared.stats, |w| w.push_probe_ack(seq));
    }
}
