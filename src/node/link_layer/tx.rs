//! Building frames in place in the transmit queues: clear hellos, handshakes, session-encrypted
//! unicast and group-encrypted broadcast. Nothing here allocates.

use super::links::{Link, LinkSession, Links};
use super::tx_queues::TxQueues;
use crate::node::rx::Relayed;
use crate::node::stats::Stats;
use crate::node::{DropReason, IfaceId, Node, TxMeta};
use crate::wire::{
    emit_encrypted_header, emit_handshake, emit_hello, encrypted_frame_len, plaintext_area_mut,
    relay_data_in_place, split_encrypted_mut, split_tag_mut, EncryptedKind, Error, HandshakeKind,
    HelloRepr, MacAddr, MessageWriter, UNICAST_FRAME_LEN,
};

impl Node {
    /// Queue a clear hello on `iface` (discovery for neighbours without a session).
    pub(in crate::node) fn queue_clear_hello(&mut self, iface: IfaceId, hello: &HelloRepr) {
        let Some(src) = self.mac_of(iface) else {
            return;
        };
        let Some(out) = self.tx.ring(true).reserve() else {
            self.shared.stats.drop(DropReason::TxControlQueueFull);
            return;
        };
        let Ok(len) = emit_hello(hello, &mut out.buf) else {
            return;
        };
        if let Some((covered, tag)) = split_tag_mut(&mut out.buf, len) {
            *tag = self.tag_key.tag(src, MacAddr::BROADCAST, covered);
            let meta = TxMeta {
                iface,
                dst: MacAddr::BROADCAST,
                control: true,
            };
            self.tx.ring(true).commit_as(len, meta);
        }
    }

    /// Queue a handshake frame carrying `noise` to `dst`.
    pub(in crate::node) fn queue_handshake(
        &mut self,
        iface: IfaceId,
        dst: MacAddr,
        kind: HandshakeKind,
        indices: (u32, u32),
        noise: &[u8],
    ) {
        let Some(src) = self.mac_of(iface) else {
            return;
        };
        let Some(out) = self.tx.ring(true).reserve() else {
            self.shared.stats.drop(DropReason::TxControlQueueFull);
            return;
        };
        let Ok(len) = emit_handshake(kind, indices.0, indices.1, noise, &mut out.buf) else {
            return;
        };
        if let Some((covered, tag)) = split_tag_mut(&mut out.buf, len) {
            *tag = self.tag_key.tag(src, dst, covered);
            self.tx.ring(true).commit_as(
                len,
                TxMeta {
                    iface,
                    dst,
                    control: true,
                },
            );
        }
    }

    /// Queue a session-encrypted unicast frame to the link in `slot`, its messages written
    /// by `fill`. `control` says whether it counts as control traffic. False if not queued.
    pub(in crate::node) fn queue_unicast(
        &mut self,
        slot: usize,
        control: bool,
        fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), Error>,
    ) -> bool {
        let parts = TxParts {
            links: &mut self.links,
            tx: &mut self.tx,
            stats: &mut self.shared.stats,
        };
        parts.queue_unicast(slot, control, fill)
    }

    /// Queue a frame `relay_in_place` re-sealed in `frame` (the copying path of
    /// `handle_frame`).
    pub(in crate::node) fn queue_relayed(&mut self, out: &Relayed, frame: &[u8]) {
        let control = out.meta.control;
        let Some(slot) = self.tx.ring(control).reserve() else {
            self.shared.stats.drop(TxQueues::full_reason(control));
            return;
        };
        let (Some(dst), Some(src)) = (slot.buf.get_mut(..out.len), frame.get(..out.len)) else {
            self.shared.stats.drop(DropReason::MalformedFrame);
            return;
        };
        dst.copy_from_slice(src);
        self.tx.ring(control).commit_as(out.len, out.meta);
    }

    /// Queue a group-encrypted broadcast frame on `iface`, its messages written by `fill`.
    pub(in crate::node) fn queue_broadcast(
        &mut self,
        iface: IfaceId,
        fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), Error>,
    ) -> bool {
        let Some(out) = self.tx.ring(true).reserve() else {
            self.shared.stats.drop(DropReason::TxControlQueueFull);
            return false;
        };
        let Ok(counter) = self.group.next_counter() else {
            return false;
        };
        let group = &self.group;
        let built = build_sealed(
            &mut out.buf[..],
            EncryptedKind::Broadcast,
            group.key_id(),
            counter,
            fill,
            |aad, body| group.seal_in_place(counter, aad, body),
        );
        let meta = TxMeta {
            iface,
            dst: MacAddr::BROADCAST,
            control: true,
        };
        built
            .map(|len| self.tx.ring(true).commit_as(len, meta))
            .is_ok()
    }
}

/// The parts of the node that queuing a unicast frame uses, borrowed apart from the rest so
/// that `fill` may use another part (the end-to-end session that seals into the frame).
pub(in crate::node) struct TxParts<'a> {
    pub(in crate::node) links: &'a mut Links,
    pub(in crate::node) tx: &'a mut TxQueues,
    pub(in crate::node) stats: &'a mut Stats,
}

impl TxParts<'_> {
    /// Queue a session-encrypted unicast frame to the link in `slot`, its messages written
    /// by `fill`. `control` says whether it counts as control traffic. False if not queued.
    pub(in crate::node) fn queue_unicast(
        self,
        slot: usize,
        control: bool,
        fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), Error>,
    ) -> bool {
        let Some(link) = self.links.get_mut(slot) else {
            self.stats.drop(DropReason::NoSession);
            return false;
        };
        let (iface, dst) = (link.iface, link.mac);
        if link.current.is_none() {
            self.stats.drop(DropReason::NoSession);
            return false;
        }
        let Some(out) = self.tx.ring(control).reserve() else {
            self.stats.drop(TxQueues::full_reason(control));
            return false;
        };
        let Some((sess, counter)) = sending_session(link) else {
            self.stats.drop(DropReason::NoSession);
            return false;
        };
        let Some(frame) = out.buf.get_mut(..UNICAST_FRAME_LEN) else {
            return false;
        };
        let send = &sess.session.send;
        let built = build_sealed(
            frame,
            EncryptedKind::Unicast,
            sess.remote_idx,
            counter,
            fill,
            |aad, body| send.seal_in_place(counter, aad, body),
        );
        let meta = TxMeta {
            iface,
            dst,
            control,
        };
        built
            .map(|len| self.tx.ring(control).commit_as(len, meta))
            .is_ok()
    }
}

/// The session a unicast frame to `link` goes out under, with the frame counter taken
/// for it. Until the peer confirmed a new session, frames keep going under the previous one.
pub(in crate::node) fn sending_session(link: &mut Link) -> Option<(&mut LinkSession, u64)> {
    let use_previous = link.current.as_ref().is_some_and(|c| !c.confirmed)
        && link.previous.as_ref().is_some_and(|p| p.confirmed);
    let sess = if use_previous {
        link.previous.as_mut()
    } else {
        link.current.as_mut()
    }?;
    let counter = sess.session.send.next_counter().ok()?;
    Some((sess, counter))
}

/// Turn a received unicast `frame` whose first message is a Data message into the frame
/// that relays it: ttl, Probe and padding rewritten (`relay_data_in_place`), a new header
/// for the next hop's session `idx` and `counter`, then `seal`ed in place.
pub(in crate::node) fn reseal_relayed(
    frame: &mut [u8],
    idx: u32,
    counter: u64,
    ttl: u8,
    probe: u32,
    seal: impl FnOnce(
        &[u8],
        &mut [u8],
    ) -> Result<[u8; crate::wire::TAG_LEN], crate::crypto::aead::SealError>,
) -> Result<(), Error> {
    relay_data_in_place(
        plaintext_area_mut(EncryptedKind::Unicast, frame)?,
        ttl,
        probe,
    )?;
    emit_encrypted_header(EncryptedKind::Unicast, idx, counter, frame)?;
    let parts = split_encrypted_mut(frame)?;
    *parts.tag = seal(parts.header, parts.body).map_err(|_| Error::NoSpace)?;
    Ok(())
}

/// Build an encrypted frame in `frame`: header, messages from `fill`, then `seal` the
/// plaintext in place (with the header as associated data) and write the tag.
fn build_sealed(
    frame: &mut [u8],
    kind: EncryptedKind,
    idx: u32,
    counter: u64,
    fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), Error>,
    seal: impl FnOnce(
        &[u8],
        &mut [u8],
    ) -> Result<[u8; crate::wire::TAG_LEN], crate::crypto::aead::SealError>,
) -> Result<usize, Error> {
    let len = build_encrypted(frame, kind, idx, counter, fill)?;
    let parts = split_encrypted_mut(frame.get_mut(..len).ok_or(Error::NoSpace)?)?;
    *parts.tag = seal(parts.header, parts.body).map_err(|_| Error::NoSpace)?;
    Ok(len)
}

/// Write header and messages of an encrypted frame into `frame`; returns the frame length.
/// Unicast plaintext is padded to the fixed frame size, broadcast is not.
fn build_encrypted(
    frame: &mut [u8],
    kind: EncryptedKind,
    idx: u32,
    counter: u64,
    fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), Error>,
) -> Result<usize, Error> {
    emit_encrypted_header(kind, idx, counter, frame)?;
    let mut w = MessageWriter::new(plaintext_area_mut(kind, frame)?);
    fill(&mut w)?;
    Ok(match kind {
        EncryptedKind::Unicast => encrypted_frame_len(w.finish_padded()),
        EncryptedKind::Broadcast => encrypted_frame_len(w.finish()),
    })
}
