//! Frames from the mesh: classify, authenticate and decrypt, then act on each message.

use super::budget::Trigger;
use super::group_keys;
use super::links::Which;
use super::{DropReason, IfaceId, Node};
use crate::crypto::OpenError;
use crate::time::Instant;
use crate::wire::{EncryptedFrame, Frame, HandshakeKind, MacAddr, Message, MessageIter};

/// Whether a decrypted frame came over a link session (unicast) or a group key (broadcast).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    Unicast,
    Broadcast,
}

impl Node {
    /// A frame received on `iface` from `src` (bytes after the Ethernet header).
    pub fn handle_frame(&mut self, now: Instant, iface: IfaceId, src: MacAddr, frame: &[u8]) {
        self.stats.frames_in += 1;
        self.stats.bytes_in += frame.len() as u64;
        if self.mac_of(iface).is_none() || src.is_broadcast() {
            self.stats.drop(DropReason::MalformedFrame);
            return;
        }
        // Never a neighbour: answering it would make us handshake with ourselves.
        if self.ifaces.iter().any(|&(_, mac)| mac == src) {
            self.stats.drop(DropReason::OwnSourceMac);
            return;
        }
        match Frame::parse(frame) {
            Err(_) => self.stats.drop(DropReason::MalformedFrame),
            Ok(Frame::Hello { hello, tag }) => {
                if !self
                    .tag_key
                    .verify(src, MacAddr::BROADCAST, tag.covered, tag.tag)
                {
                    self.stats.drop(DropReason::BadFrameTag);
                    return;
                }
                self.routing.handle_hello(now, iface, src, &hello, false);
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
                self.stats.drop(DropReason::BadFrameTag)
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
            Ok(Frame::Unicast(f)) => self.on_unicast(now, iface, src, &f),
            Ok(Frame::Broadcast(f)) => self.on_broadcast(now, iface, src, &f),
        }
        self.drain_routing(now);
    }

    fn on_unicast(&mut self, now: Instant, iface: IfaceId, src: MacAddr, f: &EncryptedFrame<'_>) {
        let found = self.links.by_index(f.index_or_key_id());
        let Some((slot, which)) = found.filter(|(s, _)| {
            self.links
                .get(*s)
                .is_some_and(|l| l.iface == iface && l.mac == src)
        }) else {
            self.stats.drop(DropReason::UnknownSession);
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
            return;
        };
        let Some(mut scratch) = self.scratch.take() else {
            return;
        };
        let opened = self.open_unicast(slot, which, f, &mut scratch[..]);
        if let Some(len) = opened {
            if which == Which::Current {
                self.confirm_session(now, slot);
            }
            self.after_authenticated(now, slot, iface, src);
            if let Some(plain) = scratch.get(..len) {
                self.on_messages(now, iface, src, plain, Via::Unicast);
            }
        }
        self.scratch = Some(scratch);
    }

    /// Decrypt a unicast frame into `buf`; returns the plaintext length.
    fn open_unicast(
        &mut self,
        slot: usize,
        which: Which,
        f: &EncryptedFrame<'_>,
        buf: &mut [u8],
    ) -> Option<usize> {
        let link = self.links.get_mut(slot)?;
        let sess = match which {
            Which::Current => link.current.as_mut(),
            Which::Previous => link.previous.as_mut(),
        }?;
        let result = open_into(f, buf, |counter, aad, body, tag| {
            sess.session.recv.open_in_place(counter, aad, body, tag)
        });
        self.count_open(result)
    }

    fn on_broadcast(&mut self, now: Instant, iface: IfaceId, src: MacAddr, f: &EncryptedFrame<'_>) {
        let Some(slot) = self.links.find(iface, src) else {
            self.stats.drop(DropReason::UnknownGroupKey);
            self.maybe_initiate(now, iface, src, Trigger::Unauthenticated);
            return;
        };
        let key_id = f.index_or_key_id();
        let has_key = self
            .links
            .get_mut(slot)
            .is_some_and(|l| group_keys::receiver_for(l, key_id).is_some());
        if !has_key {
            self.stats.drop(DropReason::UnknownGroupKey);
            self.request_group_key(now, slot);
            return;
        }
        let Some(mut scratch) = self.scratch.take() else {
            return;
        };
        let group = self
            .links
            .get_mut(slot)
            .and_then(|l| group_keys::receiver_for(l, key_id));
        let result = match group {
            Some(g) => open_into(f, &mut scratch[..], |counter, aad, body, tag| {
                g.open_in_place(counter, aad, body, tag)
            }),
            None => Err(OpenError::Decrypt.into()),
        };
        if let Some(len) = self.count_open(result) {
            self.after_authenticated(now, slot, iface, src);
            if let Some(plain) = scratch.get(..len) {
                self.on_messages(now, iface, src, plain, Via::Broadcast);
            }
        }
        self.scratch = Some(scratch);
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

    fn count_open(&mut self, result: Result<usize, OpenFailure>) -> Option<usize> {
        match result {
            Ok(len) => Some(len),
            Err(OpenFailure::Open(OpenError::Replay(_))) => {
                self.stats.drop(DropReason::Replay);
                None
            }
            Err(OpenFailure::Open(_)) => {
                self.stats.drop(DropReason::DecryptFailed);
                None
            }
            Err(OpenFailure::Wire) => {
                self.stats.drop(DropReason::MalformedFrame);
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
        if !self.routing.handle_authenticated_frame(now, iface, src) {
            // Routing forgot this neighbour while it was silent: it is back.
            if let Some(node) = node {
                self.routing.neighbor_authenticated(now, iface, src, node);
            }
        }
    }

    /// Act on every message of a decrypted plaintext.
    fn on_messages(&mut self, now: Instant, iface: IfaceId, src: MacAddr, plain: &[u8], via: Via) {
        for msg in MessageIter::new(plain) {
            match msg {
                Ok(m) => self.on_message(now, iface, src, m, via),
                Err(_) => self.stats.drop(DropReason::MalformedMessage),
            }
        }
    }

    fn on_message(&mut self, now: Instant, iface: IfaceId, src: MacAddr, m: Message<'_>, via: Via) {
        match (m, via) {
            (Message::Hello(h), Via::Broadcast) => {
                self.routing.handle_hello(now, iface, src, &h, true)
            }
            (Message::Ihu(entries), Via::Broadcast) => {
                self.routing.handle_ihu(now, iface, src, entries)
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
                self.routing.handle_seqno_request(now, iface, src, &req)
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
            (Message::ProbeAck(seq), _) => self.routing.handle_probe_ack(now, iface, src, seq),
            (Message::Data { dst, ttl, packet }, Via::Unicast) => {
                self.on_data(now, dst, ttl, packet)
            }
            // A message in a frame kind it does not belong to.
            _ => self.stats.drop(DropReason::MalformedMessage),
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

/// Copy `f` into `buf`, open it in place there with `open`; returns the plaintext length,
/// the plaintext starting at the beginning of `buf`.
fn open_into(
    f: &EncryptedFrame<'_>,
    buf: &mut [u8],
    open: impl FnOnce(u64, &[u8], &mut [u8], &[u8; 16]) -> Result<(), OpenError>,
) -> Result<usize, OpenFailure> {
    let ct = f.ciphertext();
    let body = buf.get_mut(..ct.len()).ok_or(OpenFailure::Wire)?;
    body.copy_from_slice(ct);
    open(f.counter(), f.header(), body, f.tag())?;
    Ok(ct.len())
}
