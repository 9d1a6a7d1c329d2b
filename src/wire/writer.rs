//! Building the message sequence of a frame's plaintext in the caller's buffer.

use super::body::{
    FixedBody, MessageType, DATA_HEADER_LEN, IHU_ENTRY_LEN, MAX_ENCODABLE_PACKET_LEN,
    MESSAGE_HEADER_LEN,
};
use super::body::{BUILD_BODY_LEN, CELL_BODY_LEN};
use super::codec::Writer;
use super::frame::broadcast_plaintext_len;
use super::message::{Message, OnionHeader};
use super::{
    Error, GroupKeyRepr, HelloRepr, IhuEntry, NodeId, OgmRepr, SeqnoRequestRepr, ANNOUNCE_LEN,
    BUILD_RECORDS_LEN, CELL_REGION_LEN, ONION_KEY_LEN,
};

/// Appends whole messages to a plaintext buffer.
///
/// Every `push_*` either writes the whole message or returns an error and leaves the
/// sequence as it was (`NoSpace` when it does not fit).
#[derive(Debug)]
pub struct MessageWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> MessageWriter<'a> {
    /// A writer filling `plaintext` from its start.
    pub fn new(plaintext: &'a mut [u8]) -> Self {
        MessageWriter {
            buf: plaintext,
            len: 0,
        }
    }

    /// Bytes of whole messages written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no message has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes still free (a message needs `MESSAGE_HEADER_LEN` plus its body).
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    /// Write one message whose body `body` fills with exactly `body_len` bytes.
    fn push_with(
        &mut self,
        ty: MessageType,
        body_len: usize,
        body: impl FnOnce(&mut Writer<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let wire_len = u16::try_from(body_len).map_err(|_| Error::BadMessageLength {
            msg_type: ty.as_u8(),
            len: body_len,
        })?;
        let total = MESSAGE_HEADER_LEN + usize::from(wire_len);
        if total > self.remaining() {
            return Err(Error::NoSpace);
        }
        // total <= remaining, so this cannot overflow.
        let end = self.len.saturating_add(total);
        let mut w = Writer::new(self.buf.get_mut(self.len..end).ok_or(Error::NoSpace)?);
        w.u8(ty.as_u8())?;
        w.u16(wire_len)?;
        body(&mut w)?;
        // A body writing less than it announced would leave stale bytes inside the message.
        if w.remaining() != 0 {
            return Err(Error::BadMessageLength {
                msg_type: ty.as_u8(),
                len: body_len,
            });
        }
        self.len = end;
        Ok(())
    }

    fn push_fixed<T: FixedBody>(&mut self, ty: MessageType, v: &T) -> Result<(), Error> {
        self.push_with(ty, T::LEN, |w| v.write(w))
    }

    /// Append any message (Ihu and Data bodies are copied from the borrowed parts).
    pub fn push(&mut self, msg: &Message<'_>) -> Result<(), Error> {
        let t = msg.message_type();
        match msg {
            Message::Hello(h) => self.push_fixed(t, h),
            Message::Ihu(it) => self.push_with(t, it.len().saturating_mul(IHU_ENTRY_LEN), |w| {
                it.clone().try_for_each(|e| write_ihu_entry(w, &e))
            }),
            Message::Ogm(o) => self.push_fixed(t, o),
            Message::Announce(a) => self.push_announce(a),
            Message::AnnounceRequest(n) => self.push_fixed(t, n),
            Message::SeqnoRequest(s) => self.push_fixed(t, s),
            Message::GroupKey(g) => self.push_fixed(t, g),
            Message::Probe(p) => self.push_fixed(t, p),
            Message::ProbeAck(p) => self.push_fixed(t, p),
            Message::Data { dst, ttl, packet } => self.push_data(*dst, *ttl, packet),
            Message::GroupKeyRequest => self.push_group_key_request(),
            Message::OnionKey(k) => self.push_onion_key(k),
            Message::Build { header, records } => self.push_build(header, records),
            Message::Cell {
                header,
                flags,
                region,
            } => self.push_cell(header, *flags, |r| {
                r.copy_from_slice(*region);
                Ok(())
            }),
        }
    }

    /// Append a GroupKeyRequest (empty body).
    pub fn push_group_key_request(&mut self) -> Result<(), Error> {
        self.push_with(MessageType::GroupKeyRequest, 0, |_| Ok(()))
    }

    /// Append an encrypted Hello.
    pub fn push_hello(&mut self, h: &HelloRepr) -> Result<(), Error> {
        self.push_fixed(MessageType::Hello, h)
    }

    /// How many IHU entries one `push_ihu` could still take.
    pub fn ihu_capacity(&self) -> usize {
        let body = self.remaining().saturating_sub(MESSAGE_HEADER_LEN);
        body.min(usize::from(u16::MAX)) / IHU_ENTRY_LEN
    }

    /// Append one IHU message with all `entries` (see [`Self::ihu_capacity`]).
    pub fn push_ihu(&mut self, entries: &[IhuEntry]) -> Result<(), Error> {
        let body_len = entries.len().saturating_mul(IHU_ENTRY_LEN);
        self.push_with(MessageType::Ihu, body_len, |w| {
            entries.iter().try_for_each(|e| write_ihu_entry(w, e))
        })
    }

    /// Append an OGM.
    pub fn push_ogm(&mut self, o: &OgmRepr) -> Result<(), Error> {
        self.push_fixed(MessageType::Ogm, o)
    }

    /// Append a signed announcement.
    pub fn push_announce(&mut self, a: &[u8; ANNOUNCE_LEN]) -> Result<(), Error> {
        self.push_with(MessageType::Announce, ANNOUNCE_LEN, |w| w.bytes(a))
    }

    /// Append a request for `node`'s announcement.
    pub fn push_announce_request(&mut self, node: &NodeId) -> Result<(), Error> {
        self.push_fixed(MessageType::AnnounceRequest, node)
    }

    /// Append a seqno request.
    pub fn push_seqno_request(&mut self, s: &SeqnoRequestRepr) -> Result<(), Error> {
        self.push_fixed(MessageType::SeqnoRequest, s)
    }

    /// Append a group key.
    pub fn push_group_key(&mut self, g: &GroupKeyRepr) -> Result<(), Error> {
        self.push_fixed(MessageType::GroupKey, g)
    }

    /// Append a probe.
    pub fn push_probe(&mut self, seq: u32) -> Result<(), Error> {
        self.push_fixed(MessageType::Probe, &seq)
    }

    /// Append a probe if it fits; a frame without room for one goes without (data frames
    /// carry a probe in their padding only when there is some).
    pub fn push_probe_if_room(&mut self, seq: u32) -> Result<(), Error> {
        match self.push_probe(seq) {
            Err(Error::NoSpace) => Ok(()),
            other => other,
        }
    }

    /// Append a probe answer.
    pub fn push_probe_ack(&mut self, seq: u32) -> Result<(), Error> {
        self.push_fixed(MessageType::ProbeAck, &seq)
    }

    /// Append a Data message, copying `packet`.
    pub fn push_data(&mut self, dst: NodeId, ttl: u8, packet: &[u8]) -> Result<(), Error> {
        let body_len = DATA_HEADER_LEN.saturating_add(packet.len());
        self.push_with(MessageType::Data, body_len, |w| {
            w.bytes(&dst.0)?;
            w.u8(ttl)?;
            w.bytes(packet)
        })
    }

    /// Append an OnionKey message.
    pub fn push_onion_key(&mut self, k: &[u8; ONION_KEY_LEN]) -> Result<(), Error> {
        self.push_with(MessageType::OnionKey, ONION_KEY_LEN, |w| w.bytes(k))
    }

    /// Append a Build message.
    pub fn push_build(
        &mut self,
        header: &OnionHeader,
        records: &[u8; BUILD_RECORDS_LEN],
    ) -> Result<(), Error> {
        self.push_with(MessageType::Build, BUILD_BODY_LEN, |w| {
            write_onion_header(w, header)?;
            w.bytes(records)
        })
    }

    /// Append a Cell message whose layered part `fill` writes in place (a relay copies the
    /// cell in and processes its layer there; an error from `fill` leaves nothing written).
    pub fn push_cell(
        &mut self,
        header: &OnionHeader,
        flags: u8,
        fill: impl FnOnce(&mut [u8; CELL_REGION_LEN]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.push_with(MessageType::Cell, CELL_BODY_LEN, |w| {
            write_onion_header(w, header)?;
            w.u8(flags)?;
            let region = w.reserve(CELL_REGION_LEN)?;
            let region =
                <&mut [u8; CELL_REGION_LEN]>::try_from(region).map_err(|_| Error::NoSpace)?;
            fill(region)
        })
    }

    /// Where the packet of a next Data message goes: write the IP packet here (e.g. read
    /// it from the TUN straight into this slice), then call [`Self::commit_data`]. Empty
    /// if not even a Data header fits.
    pub fn data_area_mut(&mut self) -> &mut [u8] {
        let start = self
            .len
            .saturating_add(MESSAGE_HEADER_LEN + DATA_HEADER_LEN);
        let end = self
            .buf
            .len()
            .min(start.saturating_add(MAX_ENCODABLE_PACKET_LEN));
        self.buf.get_mut(start..end).unwrap_or_default()
    }

    /// Append a Data message whose first `packet_len` packet bytes are already in
    /// [`Self::data_area_mut`].
    pub fn commit_data(&mut self, dst: NodeId, ttl: u8, packet_len: usize) -> Result<(), Error> {
        let body_len = DATA_HEADER_LEN.saturating_add(packet_len);
        self.push_with(MessageType::Data, body_len, |w| {
            w.bytes(&dst.0)?;
            w.u8(ttl)?;
            // The packet is in place already: claim it without touching it.
            w.reserve(packet_len).map(|_| ())
        })
    }

    /// End a unicast plaintext: zero everything after the messages (an implicit Pad) and
    /// return the whole buffer length.
    pub fn finish_padded(self) -> usize {
        let (buf, len) = (self.buf, self.len);
        if let Some(tail) = buf.get_mut(len..) {
            tail.fill(0);
        }
        buf.len()
    }

    /// End a broadcast plaintext: return its length, first zero-padding it (an implicit
    /// Pad) up to its size class (`broadcast_plaintext_len`) or the buffer's end, whichever
    /// is first.
    pub fn finish(self) -> usize {
        let (buf, len) = (self.buf, self.len);
        let end = len.max(broadcast_plaintext_len(len).min(buf.len()));
        if let Some(tail) = buf.get_mut(len..end) {
            tail.fill(0);
        }
        end
    }
}

/// Turn a received unicast plaintext that starts with a Data message into the plaintext a
/// relay sends on, in place: the Data message stays where it is with its ttl set to `ttl`,
/// a Probe with `probe` follows when there is room, the rest is zeroed. The packet is not
/// moved or read. `BadMessageLength`/`Truncated` if the first message is not a whole Data
/// message.
pub fn relay_data_in_place(plaintext: &mut [u8], ttl: u8, probe: u32) -> Result<(), Error> {
    let Some(&[kind, hi, lo]) = plaintext.first_chunk::<MESSAGE_HEADER_LEN>() else {
        return Err(Error::Truncated);
    };
    let body_len = usize::from(u16::from_be_bytes([hi, lo]));
    if kind != MessageType::Data as u8 || body_len < DATA_HEADER_LEN {
        return Err(Error::BadMessageLength {
            msg_type: kind,
            len: body_len,
        });
    }
    let end = MESSAGE_HEADER_LEN + body_len;
    if end > plaintext.len() {
        return Err(Error::Truncated);
    }
    let ttl_at = MESSAGE_HEADER_LEN + DATA_HEADER_LEN - 1;
    *plaintext.get_mut(ttl_at).ok_or(Error::Truncated)? = ttl;
    let mut w = MessageWriter {
        buf: plaintext,
        len: end,
    };
    w.push_probe_if_room(probe)?;
    w.finish_padded();
    Ok(())
}

fn write_onion_header(w: &mut Writer<'_>, h: &OnionHeader) -> Result<(), Error> {
    w.bytes(&h.dst.0)?;
    w.u8(h.ttl)?;
    w.u32(h.link)
}

fn write_ihu_entry(w: &mut Writer<'_>, e: &IhuEntry) -> Result<(), Error> {
    w.bytes(&e.mac.0)?;
    w.u16(e.rx_quality)
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
