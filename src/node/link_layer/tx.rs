//! Building frames in place in the transmit queues: clear hellos, handshakes, session-encrypted
//! unicast and group-encrypted broadcast, and a relayed frame re-sealed where it arrived.
//! Nothing here allocates.

use super::links::{Link, LinkSession};
use super::tx_queues::{Lane, TxQueues};
use super::LinkLayer;
use crate::link::LinkId;
use crate::node::{DropReason, IfaceId, Stats, Transmit};
use crate::wire::{
    emit_encrypted_header, emit_handshake, emit_hello, encrypted_frame_len, plaintext_area_mut,
    relay_data_in_place, split_encrypted_mut, split_tag_mut, EncryptedKind, Error, HandshakeKind,
    HelloRepr, MacAddr, MessageWriter, UNICAST_FRAME_LEN,
};

/// Metadata of a queued frame.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::node) struct TxMeta {
    /// Interface to send on.
    pub(in crate::node) iface: IfaceId,
    /// Destination MAC.
    pub(in crate::node) dst: MacAddr,
    /// Whether it counts as control traffic.
    pub(in crate::node) control: bool,
    /// What sealing it still needs when it is sent.
    pub(in crate::node) seal: Seal,
    /// The lane it waits in.
    pub(in crate::node) lane: Lane,
}

/// The key an encrypted frame is sealed under when `poll_transmit` sends it: the session
/// or group key current then, with the next counter, so frames leave in counter order and
/// a frame queued before a rekey goes out under the new key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(in crate::node) enum Seal {
    /// Complete as queued (clear frames, relayed frames sealed where they arrived).
    #[default]
    Done,
    /// Under the sending session of this link.
    Unicast(LinkId),
    /// Under our group key.
    Broadcast,
}

/// A received Data frame this node relays: re-sealed in the receive buffer, it is sent from
/// there.
pub(in crate::node) struct Relayed {
    /// Where it goes and which traffic class it counts as.
    pub(in crate::node) meta: TxMeta,
    /// Its length (the whole receive buffer: unicast frames have one size).
    pub(in crate::node) len: usize,
}

impl Relayed {
    /// The frame handed to the caller to send, counted as sent.
    pub(in crate::node) fn sent(self, stats: &mut Stats) -> Transmit {
        let Relayed { meta, len } = self;
        stats.frames_out += 1;
        stats.bytes_out += len as u64;
        if meta.control {
            stats.control_bytes_out += len as u64;
            if meta.dst != MacAddr::BROADCAST && len == UNICAST_FRAME_LEN {
                stats.unicast_control_bytes_out += len as u64;
                stats.unicast_control_frames_out += 1;
            }
        }
        Transmit {
            iface: meta.iface,
            dst: meta.dst,
            len,
        }
    }
}

impl LinkLayer {
    /// Queue a clear hello on `iface` (discovery for neighbours without a session).
    pub(in crate::node) fn queue_clear_hello(
        &mut self,
        iface: IfaceId,
        hello: &HelloRepr,
        stats: &mut Stats,
    ) {
        let Some(src) = self.mac_of(iface) else {
            return;
        };
        let Ok(out) = self.tx.reserve(Lane::Unlinked(iface), true) else {
            stats.drop(DropReason::TxControlQueueFull);
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
                seal: Seal::Done,
                lane: Lane::Unlinked(iface),
            };
            self.tx.commit(len, meta);
        }
    }

    /// Queue a handshake frame carrying `noise` to `dst` on `iface`.
    pub(super) fn queue_handshake(
        &mut self,
        (iface, dst): (IfaceId, MacAddr),
        kind: HandshakeKind,
        indices: (u32, u32),
        noise: &[u8],
        stats: &mut Stats,
    ) {
        let Some(src) = self.mac_of(iface) else {
            return;
        };
        let Ok(out) = self.tx.reserve(Lane::Unlinked(iface), true) else {
            stats.drop(DropReason::TxControlQueueFull);
            return;
        };
        let Ok(len) = emit_handshake(kind, indices.0, indices.1, noise, &mut out.buf) else {
            return;
        };
        if let Some((covered, tag)) = split_tag_mut(&mut out.buf, len) {
            *tag = self.tag_key.tag(src, dst, covered);
            self.tx.commit(
                len,
                TxMeta {
                    iface,
                    dst,
                    control: true,
                    seal: Seal::Done,
                    lane: Lane::Unlinked(iface),
                },
            );
        }
    }

    /// Queue a session-encrypted unicast frame to link `id`, its messages written by
    /// `fill`. `control` says whether it counts as control traffic. False if not queued.
    pub(in crate::node) fn queue_unicast(
        &mut self,
        id: LinkId,
        control: bool,
        stats: &mut Stats,
        fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), Error>,
    ) -> bool {
        let Some((iface, dst)) = self.link_key(id).filter(|_| self.has_session(id)) else {
            stats.drop(DropReason::NoSession);
            return false;
        };
        let lane = Lane::Link(id.slot());
        let out = match self.tx.reserve(lane, control) {
            Ok(out) => out,
            Err(full) => {
                stats.drop(TxQueues::full_reason(control, full));
                return false;
            }
        };
        let Some(frame) = out.buf.get_mut(..UNICAST_FRAME_LEN) else {
            return false;
        };
        let meta = TxMeta {
            iface,
            dst,
            control,
            seal: Seal::Unicast(id),
            lane,
        };
        write_plaintext(frame, EncryptedKind::Unicast, fill)
            .map(|len| self.tx.commit(len, meta))
            .is_ok()
    }

    /// `queue_unicast` to the link in `slot`.
    pub(super) fn queue_unicast_slot(
        &mut self,
        slot: usize,
        control: bool,
        stats: &mut Stats,
        fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), Error>,
    ) -> bool {
        let Some(id) = self.links.id(slot) else {
            stats.drop(DropReason::NoSession);
            return false;
        };
        self.queue_unicast(id, control, stats, fill)
    }

    /// Queue a frame `reseal_relayed` left in `frame` (the copying path of `handle_frame`).
    pub(in crate::node) fn queue_relayed(
        &mut self,
        out: &Relayed,
        frame: &[u8],
        stats: &mut Stats,
    ) {
        let control = out.meta.control;
        let slot = match self.tx.reserve(out.meta.lane, control) {
            Ok(slot) => slot,
            Err(full) => return stats.drop(TxQueues::full_reason(control, full)),
        };
        let (Some(dst), Some(src)) = (slot.buf.get_mut(..out.len), frame.get(..out.len)) else {
            stats.drop(DropReason::MalformedFrame);
            return;
        };
        dst.copy_from_slice(src);
        self.tx.commit(out.len, out.meta);
    }

    /// Re-seal the received unicast `frame`, whose first message is the Data message being
    /// relayed, in place for link `id`: that message's new `ttl`, our Probe `probe` after
    /// it, a new header, sealed under the link's session. Returns it to be sent; `control`
    /// says which traffic class it counts as.
    pub(in crate::node) fn reseal_relayed(
        &mut self,
        id: LinkId,
        frame: &mut [u8],
        (ttl, probe): (u8, u32),
        control: bool,
        stats: &mut Stats,
    ) -> Option<Relayed> {
        let Some(link) = self.links.by_id_mut(id) else {
            stats.drop(DropReason::NoSession);
            return None;
        };
        let (iface, mac) = (link.iface, link.mac);
        let Some((sess, counter)) = sending_session(link) else {
            stats.drop(DropReason::NoSession);
            return None;
        };
        let send = &sess.session.send;
        let resealed = reseal_in_place(frame, sess.remote_idx, counter, ttl, probe, |aad, body| {
            send.seal_in_place(counter, aad, body)
        });
        if resealed.is_err() {
            stats.drop(DropReason::MalformedMessage);
            return None;
        }
        let meta = TxMeta {
            iface,
            dst: mac,
            control,
            seal: Seal::Done,
            lane: Lane::Link(id.slot()),
        };
        Some(Relayed {
            meta,
            len: frame.len(),
        })
    }

    /// Queue a group-encrypted broadcast frame on `iface`, its messages written by `fill`.
    pub(in crate::node) fn queue_broadcast(
        &mut self,
        iface: IfaceId,
        stats: &mut Stats,
        fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), Error>,
    ) -> bool {
        let Ok(out) = self.tx.reserve(Lane::Unlinked(iface), true) else {
            stats.drop(DropReason::TxControlQueueFull);
            return false;
        };
        let built = write_plaintext(&mut out.buf[..], EncryptedKind::Broadcast, fill);
        let meta = TxMeta {
            iface,
            dst: MacAddr::BROADCAST,
            control: true,
            seal: Seal::Broadcast,
            lane: Lane::Unlinked(iface),
        };
        built.map(|len| self.tx.commit(len, meta)).is_ok()
    }

    /// Seal the encrypted frame `frame` (as `write_plaintext` left it, now in the caller's
    /// buffer) under the key `seal` names, with the next counter. False if that key is
    /// gone (the link was forgotten, its session ended) or spent: the frame is dropped.
    pub(super) fn seal_now(&mut self, seal: Seal, frame: &mut [u8]) -> bool {
        match seal {
            Seal::Done => true,
            Seal::Unicast(id) => {
                let Some((sess, counter)) = self.links.by_id_mut(id).and_then(sending_session)
                else {
                    return false;
                };
                let send = &sess.session.send;
                seal_built(
                    frame,
                    EncryptedKind::Unicast,
                    sess.remote_idx,
                    counter,
                    |aad, body| send.seal_in_place(counter, aad, body),
                )
                .is_ok()
            }
            Seal::Broadcast => {
                let Ok(counter) = self.group.next_counter() else {
                    return false;
                };
                let group = &self.group;
                seal_built(
                    frame,
                    EncryptedKind::Broadcast,
                    group.key_id(),
                    counter,
                    |aad, body| group.seal_in_place(counter, aad, body),
                )
                .is_ok()
            }
        }
    }

    /// Whether the key a queued frame will be sealed under is there (`seal_now` would
    /// succeed, bar a spent counter).
    pub(super) fn can_seal(&self, seal: Seal) -> bool {
        match seal {
            Seal::Done | Seal::Broadcast => true,
            Seal::Unicast(id) => self.has_session(id),
        }
    }
}

/// The session a unicast frame to `link` goes out under, with the frame counter taken
/// for it. Until the peer confirmed a new session, frames keep going under the previous one.
fn sending_session(link: &mut Link) -> Option<(&mut LinkSession, u64)> {
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
fn reseal_in_place(
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

/// Give an encrypted frame `write_plaintext` wrote (messages, padding) its header — `idx`,
/// `counter` — then `seal` the plaintext in place (the header as associated data) and write
/// the tag.
fn seal_built(
    frame: &mut [u8],
    kind: EncryptedKind,
    idx: u32,
    counter: u64,
    seal: impl FnOnce(
        &[u8],
        &mut [u8],
    ) -> Result<[u8; crate::wire::TAG_LEN], crate::crypto::aead::SealError>,
) -> Result<(), Error> {
    emit_encrypted_header(kind, idx, counter, frame)?;
    let parts = split_encrypted_mut(frame)?;
    *parts.tag = seal(parts.header, parts.body).map_err(|_| Error::NoSpace)?;
    Ok(())
}

/// Write the messages of an encrypted frame of `kind` into its plaintext area in `frame`
/// (the header and tag are written when it is sealed, `seal_built`); returns the frame
/// length. Unicast plaintext is padded to the fixed frame size, broadcast is not.
fn write_plaintext(
    frame: &mut [u8],
    kind: EncryptedKind,
    fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), Error>,
) -> Result<usize, Error> {
    let mut w = MessageWriter::new(plaintext_area_mut(kind, frame)?);
    fill(&mut w)?;
    Ok(match kind {
        EncryptedKind::Unicast => encrypted_frame_len(w.finish_padded()),
        EncryptedKind::Broadcast => encrypted_frame_len(w.finish()),
    })
}
