//! Frames from the mesh: classify, authenticate and decrypt, then act on each message.

use super::link_layer::budget::Trigger;
use super::link_layer::group_keys;
use super::link_layer::links::Which;
use super::{DropReason, IfaceId, Node, Transmit, TxMeta};
use crate::crypto::OpenError;
use crate::time::Instant;
use crate::wire::{split_encrypted_mut, Frame, HandshakeKind, MacAddr, Message, MessageIter};

/// Whether a decrypted frame came over a link session (unicast) or a group key (broadcast).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    Unicast,
    Broadcast,
}

/// A received Data frame this node relays: re-sealed in the receive buffer, it is sent from
/// there.
pub(super) struct Relayed {
    /// Where it goes and which traffic class it counts as.
    pub(super) meta: TxMeta,
    /// Its length (the whole receive buffer: unicast frames have one size).
    pub(super) len: usize,
}

/// Where a Data message being relayed goes next.
pub(super) struct Relay {
    /// The next hop's link.
    pub(super) slot: usize,
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
        let Some(mut copy) = self.scratch.take() else {
            return;
        };
        match copy.get_mut(..frame.len()) {
            Some(buf) => {
                buf.copy_from_slice(frame);
                if let Some(out) = self.receive(now, iface, src, buf) {
                    self.queue_relayed(&out, buf);
                }
            }
            None => {
                self.shared.stats.frames_in += 1;
                self.shared.stats.bytes_in += frame.len() as u64;
                self.shared.stats.drop(DropReason::MalformedFrame);
            }
        }
        self.scratch = Some(copy);
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
        self.count_sent(out.meta, out.len);
        Some(Transmit {
            iface: out.meta.iface,
            dst: out.meta.dst,
            len: out.len,
        })
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
        if self.mac_of(iface).is_none() || src.is_broadcast() {
            self.shared.stats.drop(DropReason::MalformedFrame);
            return None;
        }
        // Never a neighbour: answering it would make us handshake with ourselves.
        if self.ifaces.iter().any(|&(_, mac)| mac == src) {
            self.shared.stats.drop(DropReason::OwnSourceMac);
            return None;
        }
        let mut relayed = None;
        match Frame::parse(frame) {
            Err(_) => self.shared.stats.drop(DropReason::MalformedFrame),
            Ok(Frame::Hello { hello, tag }) => {
                if !self
                    .tag_key
                    .verify(src, MacAddr::BROADCAST, tag.covered, tag.tag)
                {
                    self.shared.stats.drop(DropReason::BadFrameTag);
                    return None;
                }
                let links = self.links.table_mut();
                self.routing
                    .handle_hello(now, links, (iface, src), &hello, false);
                // A neighbour whose session went silent and that says hello in clear lost
                // that session (it restarted, or another node took its MAC).
                let alive = self
                    .links
                    .by_mac(iface, src)
                    .is_some_and(|l| l.session_alive(now));
                if !alive {
                    self.maybe_initiate(now, iface, src, Trigger::Authenticated);
                }
            }
            Ok(Frame::Handshake { tag, .. })
                if !self
                    .mac_of(iface)
                    .is_some_and(|dst| self.tag_key.verify(src, dst, tag.covered, tag.tag)) =>
            {
                self.shared.stats.drop(DropReason::BadFrameTag)
            }
            Ok(Frame::Handshake {
                kind,
                sender_idx,
                receiver_idx,
                noise,
                ..
            }) => match kind {
                HandshakeKind::Init => self.on_handshake_init(now, iface, src, sender_idx, noise),
                HandshakeKind::Resp => {
                    self.on_handshake_resp(now, src, (sender_idx, receiver_idx), noise)
                }
                HandshakeKind::Finish => {
                    self.on_handshake_finish(now, src, (sender_idx, receiver_idx), noise)
                }
            },
            Ok(Frame::Unicast(f)) => {
                let (idx, counter) = (f.index_or_key_id(), f.counter());
                relayed = self.on_unicast(now, iface, src, (idx, counter), frame);
            }
            Ok(Frame::Broadcast(f)) => {
                let (key_id, counter) = (f.index_or_key_id(), f.counter());
                self.on_broadcast(now, iface, src, (key_id, counter), frame);
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
        iface: IfaceId,
        src: MacAddr,
        (idx, counter): (u32, u64),
        frame: &mut [u8],
    ) -> Option<Relayed> {
        let found = self.links.by_index(idx);
        let Some((slot, which)) = found.filter(|(s, _)| {
            self.links
                .get(*s)
                .is_some_and(|l| l.iface == iface && l.mac == src)
        }) else {
            self.shared.stats.drop(DropReason::UnknownSession);
            // The sender believes in a session we lost (we restarted): make a new one. Not
            // if we hold a working session with that MAC: then the frame is a replay or a
            // spoof, and answering it would let anyone force handshakes on our links.
            let has_session = self
                .links
                .by_mac(iface, src)
                .is_some_and(|l| l.current.as_ref().is_some_and(|c| c.confirmed));
            if !has_session {
                self.maybe_initiate(now, iface, src, Trigger::Unauthenticated);
            }
            return None;
        };
        let plain = self.open_unicast(slot, which, counter, frame)?;
        if which == Which::Current {
            self.confirm_session(now, slot);
        }
        self.after_authenticated(now, slot, iface, src);
        let relay = self.on_messages(now, iface, src, plain, Via::Unicast, true)?;
        self.relay_in_place(now, frame, relay)
    }

    /// Open a unicast frame in place under the link's `which` session; returns the plaintext.
    fn open_unicast<'f>(
        &mut self,
        slot: usize,
        which: Which,
        counter: u64,
        frame: &'f mut [u8],
    ) -> Option<&'f [u8]> {
        let link = self.links.get_mut(slot)?;
        let sess = match which {
            Which::Current => link.current.as_mut(),
            Which::Previous => link.previous.as_mut(),
        }?;
        let result = open_in_frame(frame, |aad, body, tag| {
            sess.session.recv.open_in_place(counter, aad, body, tag)
        });
        self.count_open(result)
    }

    fn on_broadcast(
        &mut self,
        now: Instant,
        iface: IfaceId,
        src: MacAddr,
        (key_id, counter): (u32, u64),
        frame: &mut [u8],
    ) {
        let Some(slot) = self.links.find(iface, src) else {
            self.shared.stats.drop(DropReason::UnknownGroupKey);
            self.maybe_initiate(now, iface, src, Trigger::Unauthenticated);
            return;
        };
        let has_key = self
            .links
            .get_mut(slot)
            .is_some_and(|l| group_keys::receiver_for(l, key_id).is_some());
        if !has_key {
            self.shared.stats.drop(DropReason::UnknownGroupKey);
            self.request_group_key(now, slot);
            return;
        }
        let group = self
            .links
            .get_mut(slot)
            .and_then(|l| group_keys::receiver_for(l, key_id));
        let result = match group {
            Some(g) => open_in_frame(frame, |aad, body, tag| {
                g.open_in_place(counter, aad, body, tag)
            }),
            None => Err(OpenError::Decrypt.into()),
        };
        if let Some(plain) = self.count_open(result) {
            self.after_authenticated(now, slot, iface, src);
            let _never_relayed = self.on_messages(now, iface, src, plain, Via::Broadcast, false);
        }
    }

    /// Ask a session peer for its group key (we missed it, or it rotated), at most once a second.
    fn request_group_key(&mut self, now: Instant, slot: usize) {
        let Some(link) = self.links.get_mut(slot) else {
            return;
        };
        if link.current.is_none() {
            let (iface, mac) = (link.iface, link.mac);
            self.maybe_initiate(now, iface, mac, Trigger::Unauthenticated);
            return;
        }
        let recent = link
            .last_group_request
            .is_some_and(|t| now.saturating_since(t) < crate::time::Duration::from_secs(1));
        if recent {
            return;
        }
        link.last_group_request = Some(now);
        self.queue_unicast(slot, true, |w| w.push_group_key_request());
    }

    /// Answer a Probe with a small broadcast ProbeAck: any authenticated frame from us proves
    /// the link alive to every neighbour, and a 1500-byte unicast answer would cost 25x the
    /// airtime. Data frames carry a Probe in their padding, so answers are rate-limited to one
    /// per `PROBE_ACK_MIN_GAP` per interface.
    fn answer_probe(&mut self, now: Instant, iface: IfaceId, seq: u32) {
        let Some(slot) = self.ifaces.iter().position(|(i, _)| *i == iface) else {
            return;
        };
        let recent = self
            .last_probe_ack
            .get(slot)
            .copied()
            .flatten()
            .is_some_and(|t| now.saturating_since(t) < super::PROBE_ACK_MIN_GAP);
        if recent {
            return;
        }
        if let Some(t) = self.last_probe_ack.get_mut(slot) {
            *t = Some(now);
        }
        self.queue_broadcast(iface, |w| w.push_probe_ack(seq));
    }

    fn count_open<'f>(&mut self, result: Result<&'f [u8], OpenFailure>) -> Option<&'f [u8]> {
        match result {
            Ok(plain) => Some(plain),
            Err(OpenFailure::Open(OpenError::Replay(_))) => {
                self.shared.stats.drop(DropReason::Replay);
                None
            }
            Err(OpenFailure::Open(_)) => {
                self.shared.stats.drop(DropReason::DecryptFailed);
                None
            }
            Err(OpenFailure::Wire) => {
                self.shared.stats.drop(DropReason::MalformedFrame);
                None
            }
        }
    }

    /// A frame from the link in `slot` authenticated: it is alive.
    fn after_authenticated(&mut self, now: Instant, slot: usize, iface: IfaceId, src: MacAddr) {
        let mut node = None;
        if let Some(link) = self.links.get_mut(slot) {
            link.last_heard = now;
            link.last_authenticated = Some(now);
            node = link.node;
        }
        let Some(id) = self.links.id(slot) else {
            return;
        };
        let links = self.links.table_mut();
        if !self.routing.handle_authenticated_frame(now, links, id) {
            // Routing forgot this neighbour while it was silent: it is back.
            if let Some(node) = node {
                self.routing
                    .neighbor_authenticated(now, links, (iface, src), node);
            }
        }
    }

    /// Act on every message of a decrypted plaintext. With `relay_first`, a Data message
    /// for another node that comes first is not forwarded here but returned, to be relayed
    /// in the frame it came in.
    fn on_messages(
        &mut self,
        now: Instant,
        iface: IfaceId,
        src: MacAddr,
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
                Ok(m) => self.on_message(now, iface, src, m, via),
                Err(_) => self.shared.stats.drop(DropReason::MalformedMessage),
            }
        }
        relay
    }

    fn on_message(&mut self, now: Instant, iface: IfaceId, src: MacAddr, m: Message<'_>, via: Via) {
        match (m, via) {
            (Message::Hello(h), Via::Broadcast) => {
                let links = self.links.table_mut();
                self.routing
                    .handle_hello(now, links, (iface, src), &h, true)
            }
            (Message::Ihu(entries), Via::Broadcast) => {
                let links = self.links.table_mut();
                self.routing.handle_ihu(now, links, (iface, src), entries)
            }
            // OGMs are flooded by broadcast; a table sent to a new neighbour comes unicast.
            (Message::Ogm(ogm), _) => self.on_ogm(now, iface, src, &ogm),
            (Message::Announce(bytes), via) => {
                let fresh = self.on_announce(now, (iface, src), bytes);
                let slot = self.links.find(iface, src);
                let from_itself = slot
                    .and_then(|s| self.links.get(s))
                    .is_some_and(|l| l.node.is_some() && l.node == fresh);
                if via == Via::Unicast && from_itself {
                    if let Some(slot) = slot {
                        self.send_table_to(now, slot);
                    }
                }
            }
            (Message::AnnounceRequest(node), Via::Unicast) => {
                self.on_announce_request(now, iface, src, &node)
            }
            (Message::SeqnoRequest(req), _) => {
                let links = self.links.table_mut();
                self.routing
                    .handle_seqno_request(now, links, (iface, src), &req)
            }
            (Message::GroupKey(key), Via::Unicast) => {
                if let Some(link) = self.links.by_mac_mut(iface, src) {
                    group_keys::receive_group_key(link, &key);
                }
            }
            (Message::GroupKeyRequest, Via::Unicast) => {
                if let Some(slot) = self.links.find(iface, src) {
                    let key = self.group.repr();
                    self.queue_unicast(slot, true, |w| w.push_group_key(&key));
                }
            }
            (Message::Probe(seq), Via::Unicast) => self.answer_probe(now, iface, seq),
            (Message::ProbeAck(seq), _) => {
                if let Some(id) = self.links.table().find(iface, src) {
                    let links = self.links.table_mut();
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
}

/// Why a received encrypted frame could not be opened.
pub(super) enum OpenFailure {
    Wire,
    Open(OpenError),
}

impl From<OpenError> for OpenFailure {
    fn from(e: OpenError) -> Self {
        OpenFailure::Open(e)
    }
}

/// Open the encrypted frame `frame` in place with `open` (given header, body, tag);
/// returns the plaintext.
fn open_in_frame(
    frame: &mut [u8],
    open: impl FnOnce(&[u8], &mut [u8], &[u8; 16]) -> Result<(), OpenError>,
) -> Result<&[u8], OpenFailure> {
    let parts = split_encrypted_mut(frame).map_err(|_| OpenFailure::Wire)?;
    open(&parts.header[..], parts.body, parts.tag)?;
    Ok(parts.body)
}
