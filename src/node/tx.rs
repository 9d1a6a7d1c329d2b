//! Building frames in place in the transmit queues: clear hellos, handshakes, session-encrypted
//! unicast and group-encrypted broadcast. Nothing here allocates.

use super::tx_queues::TxQueues;
use super::{DropReason, IfaceId, Node, TxMeta};
use crate::wire::{
    emit_encrypted_header, emit_handshake, emit_hello, encrypted_frame_len, plaintext_area_mut,
    split_encrypted_mut, split_tag_mut, EncryptedKind, Error, HandshakeKind, HelloRepr, MacAddr,
    MessageWriter, UNICAST_FRAME_LEN,
};

impl Node {
    /// Queue a clear hello on `iface` (discovery for neighbours without a session).
    pub(super) fn queue_clear_hello(&mut self, iface: IfaceId, hello: &HelloRepr) {
        let Some(src) = self.mac_of(iface) else {
            return;
        };
        let Some(out) = self.tx.ring(true).reserve() else {
            self.stats.drop(DropReason::TxControlQueueFull);
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
    pub(super) fn queue_handshake(
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
            self.stats.drop(DropReason::TxControlQueueFull);
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
    pub(super) fn queue_unicast(
        &mut self,
        slot: usize,
        control: bool,
        fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), Error>,
    ) -> bool {
        let Some(link) = self.links.get_mut(slot) else {
            self.stats.drop(DropReason::NoSession);
            return false;
        };
        let (iface, dst) = (link.iface, link.mac);
        // Until the peer confirmed a new session, keep sending under the previous one.
        let use_previous = link.current.as_ref().is_some_and(|c| !c.confirmed)
            && link.previous.as_ref().is_some_and(|p| p.confirmed);
        let sess = if use_previous {
            link.previous.as_mut()
        } else {
            link.current.as_mut()
        };
        let Some(sess) = sess else {
            self.stats.drop(DropReason::NoSession);
            return false;
        };
        let Some(out) = self.tx.ring(control).reserve() else {
            self.stats.drop(TxQueues::full_reason(control));
            return false;
        };
        let Ok(counter) = sess.session.send.next_counter() else {
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

    /// Queue a group-encrypted broadcast frame on `iface`, its messages written by `fill`.
    pub(super) fn queue_broadcast(
        &mut self,
        iface: IfaceId,
        fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), Error>,
    ) -> bool {
        let Some(out) = self.tx.ring(true).reserve() else {
            self.stats.drop(DropReason::TxControlQueueFull);
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
