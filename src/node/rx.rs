//! Frames from the mesh: classified, authenticated and opened by the link layer, then each
//! message handed to the part it is for.

use super::data::Relay;
use super::link_layer::{Relayed, Trigger};
use super::{DropReason, IfaceId, Node, Transmit};
use crate::link::LinkId;
use crate::time::Instant;
use crate::wire::{Frame, HandshakeKind, MacAddr, Message, MessageIter};

/// Whether a decrypted frame came over a link session (unicast) or a group key (broadcast).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Unicast,
    Broadcast,
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
                self.control
                    .handle_hello(now, &mut self.link, (iface, src), &hello, false);
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
                let own_ann = self.control.own_announcement();
                let up = match kind {
                    HandshakeKind::Init => {
                        link.on_handshake_init(now, (iface, src), sender_idx, noise, shared);
                        None
                    }
                    HandshakeKind::Resp => {
                        link.on_handshake_resp(now, src, indices, noise, own_ann, shared);
                        None
                    }
                    HandshakeKind::Finish => {
                        link.on_handshake_finish(now, src, indices, noise, own_ann, shared)
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
                    self.after_authenticated(now, opened.id, (iface, src));
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
        self.after_authenticated(now, opened.id, (iface, src));
        let relay = self.on_messages(now, (iface, src), opened.plain, Via::Unicast, true)?;
        let (data, mut env) = self.data_env();
        data.relay_in_place(now, frame, relay, &mut env)
    }

    /// A frame from `source` over link `id` authenticated: the neighbour is alive.
    fn after_authenticated(&mut self, now: Instant, id: LinkId, source: (IfaceId, MacAddr)) {
        if let Some(node) = self.link.mark_authenticated(id, now) {
            self.control
                .authenticated_frame(now, &mut self.link, (id, source), node);
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
                    let (data, mut env) = self.data_env();
                    relay = data.relay_decision(now, (dst, ttl), packet, &mut env);
                }
                Ok(m) => self.on_message(now, source, m, via),
                Err(_) => self.shared.stats.drop(DropReason::MalformedMessage),
            }
        }
        relay
    }

    /// Hand one message to the part it is for.
    fn on_message(&mut self, now: Instant, source: (IfaceId, MacAddr), m: Message<'_>, via: Via) {
        let (control, link, shared) = (&mut self.control, &mut self.link, &mut self.shared);
        let (iface, src) = source;
        match (m, via) {
            (Message::Hello(h), Via::Broadcast) => {
                control.handle_hello(now, link, source, &h, true)
            }
            (Message::Ihu(entries), Via::Broadcast) => {
                control.handle_ihu(now, link, source, entries)
            }
            // OGMs are flooded by broadcast; a table sent to a new neighbour comes unicast.
            (Message::Ogm(ogm), _) => control.on_ogm(now, source, &ogm, link, shared),
            (Message::Announce(bytes), via) => {
                let unicast = via == Via::Unicast;
                control.on_announce_message(now, source, (bytes, unicast), link, shared)
            }
            (Message::AnnounceRequest(node), Via::Unicast) => {
                control.on_announce_request(now, source, &node, link, &mut shared.stats)
            }
            (Message::SeqnoRequest(req), _) => {
                control.handle_seqno_request(now, link, source, &req)
            }
            (Message::GroupKey(key), Via::Unicast) => link.receive_group_key(iface, src, &key),
            (Message::GroupKeyRequest, Via::Unicast) => {
                link.send_group_key(iface, src, &mut shared.stats)
            }
            (Message::Probe(seq), Via::Unicast) => {
                control.answer_probe(now, iface, seq, link, &mut shared.stats)
            }
            (Message::ProbeAck(seq), _) => control.handle_probe_ack(now, link, source, seq),
            (Message::OnionKey(bytes), _) => control.on_onion_key(now, bytes, &mut shared.stats),
            (Message::Build { header, records }, Via::Unicast) => {
                let (data, mut env) = self.data_env();
                data.on_build(now, &header, records, &mut env)
            }
            (
                Message::Cell {
                    header,
                    flags,
                    region,
                },
                Via::Unicast,
            ) => {
                let (data, mut env) = self.data_env();
                data.on_cell(now, (&header, flags), region, &mut env)
            }
            (Message::Data { dst, ttl, packet }, Via::Unicast) => {
                let (data, mut env) = self.data_env();
                data.on_data(now, (dst, ttl), packet, &mut env)
            }
            // A message in a frame kind it does not belong to.
            _ => shared.stats.drop(DropReason::MalformedMessage),
        }
    }
}
