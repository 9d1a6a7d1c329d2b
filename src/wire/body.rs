//! Message types and their fixed-layout bodies (docs/protocol.md §2).

use super::codec::{Reader, Writer};
use super::{
    Error, GroupKeyRepr, HelloRepr, NodeId, OgmRepr, SeqnoRequestRepr, ANNOUNCE_LEN, NODE_ID_LEN,
    UNICAST_PLAINTEXT_LEN,
};

/// Message header: type u8, body length u16.
pub const MESSAGE_HEADER_LEN: usize = 3;
/// Body of an encrypted Hello: seq u16, interval u16.
pub const HELLO_BODY_LEN: usize = 4;
/// One IHU entry: mac (6), rx quality u16. An IHU body is a multiple of this.
pub const IHU_ENTRY_LEN: usize = 8;
/// Body of an OGM: node id, epoch, seqno, metric, ttl, flags, chain element.
pub const OGM_BODY_LEN: usize = NODE_ID_LEN + 4 + 4 + 2 + 1 + 1 + super::CHAIN_ELEMENT_LEN;
/// Body of an Announce: one signed node announcement.
pub const ANNOUNCE_BODY_LEN: usize = ANNOUNCE_LEN;
/// Body of an AnnounceRequest: the node id asked for.
pub const ANNOUNCE_REQUEST_BODY_LEN: usize = NODE_ID_LEN;
/// Body of a SeqnoRequest: node id, epoch, seqno, hop limit.
pub const SEQNO_REQUEST_BODY_LEN: usize = NODE_ID_LEN + 4 + 4 + 1;
/// Body of a GroupKey: key id u32, key (32).
pub const GROUP_KEY_BODY_LEN: usize = 4 + 32;
/// Body of a Probe or ProbeAck: probe seq u32.
pub const PROBE_BODY_LEN: usize = 4;
/// Data body before the IP packet: destination node id, ttl.
pub const DATA_HEADER_LEN: usize = NODE_ID_LEN + 1;
/// Largest IP packet one unicast frame carries (a Data message filling the plaintext).
pub const MAX_DATA_PACKET_LEN: usize = UNICAST_PLAINTEXT_LEN - MESSAGE_HEADER_LEN - DATA_HEADER_LEN;
/// Body of an OnionKey: a relay's signed onion key record (docs/protocol.md §8.1).
pub const ONION_KEY_LEN: usize = 120;
/// A build's records (docs/protocol.md §8.2): three of 116 bytes.
pub const BUILD_RECORDS_LEN: usize = 348;
/// Build and Cell bodies before their onion part: destination node id, ttl, link id.
pub const ONION_HEADER_LEN: usize = NODE_ID_LEN + 1 + 4;
/// Body of a Build: the onion header, then the records.
pub const BUILD_BODY_LEN: usize = ONION_HEADER_LEN + BUILD_RECORDS_LEN;
/// A cell's layered part (slots and body), sized so that a Cell fills a unicast frame.
pub const CELL_REGION_LEN: usize =
    UNICAST_PLAINTEXT_LEN - MESSAGE_HEADER_LEN - ONION_HEADER_LEN - 1;
/// Body of a Cell: the onion header, a direction byte, the layered part.
pub const CELL_BODY_LEN: usize = ONION_HEADER_LEN + 1 + CELL_REGION_LEN;
/// Largest IP packet the u16 body length of a Data message can describe.
pub(crate) const MAX_ENCODABLE_PACKET_LEN: usize = u16::MAX as usize - DATA_HEADER_LEN;

/// The type byte of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// Ends the sequence; the rest of the plaintext is zero.
    Pad = 0x00,
    /// Encrypted neighbour hello.
    Hello = 0x01,
    /// "I heard you": link quality reports.
    Ihu = 0x02,
    /// Originator message.
    Ogm = 0x03,
    /// Signed node announcement.
    Announce = 0x04,
    /// Request for a node's announcement.
    AnnounceRequest = 0x05,
    /// Request for a newer originator seqno.
    SeqnoRequest = 0x06,
    /// The sender's broadcast group key.
    GroupKey = 0x07,
    /// Link probe.
    Probe = 0x08,
    /// Link probe answer.
    ProbeAck = 0x09,
    /// An IP packet for a destination node.
    Data = 0x0A,
    /// Ask a neighbour to send its group key again (empty body).
    GroupKeyRequest = 0x0B,
    /// A relay's signed onion key record.
    OnionKey = 0x0C,
    /// A circuit build on its way to the next relay.
    Build = 0x0D,
    /// An onion cell on its way to the next relay or back.
    Cell = 0x0E,
}

impl MessageType {
    /// The type for a type byte, if known.
    pub const fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0x00 => MessageType::Pad,
            0x01 => MessageType::Hello,
            0x02 => MessageType::Ihu,
            0x03 => MessageType::Ogm,
            0x04 => MessageType::Announce,
            0x05 => MessageType::AnnounceRequest,
            0x06 => MessageType::SeqnoRequest,
            0x07 => MessageType::GroupKey,
            0x08 => MessageType::Probe,
            0x09 => MessageType::ProbeAck,
            0x0A => MessageType::Data,
            0x0B => MessageType::GroupKeyRequest,
            0x0C => MessageType::OnionKey,
            0x0D => MessageType::Build,
            0x0E => MessageType::Cell,
            _ => return None,
        })
    }

    /// The type byte.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A body with one fixed layout and length.
pub(crate) trait FixedBody: Sized {
    /// Exact body length.
    const LEN: usize;
    /// Read the fields; the reader holds exactly `LEN` bytes.
    fn read(r: &mut Reader<'_>) -> Result<Self, Error>;
    /// Write exactly `LEN` bytes.
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Error>;
}

/// Parse a fixed body, which must be exactly `T::LEN` bytes.
pub(crate) fn parse_fixed<T: FixedBody>(ty: MessageType, body: &[u8]) -> Result<T, Error> {
    if body.len() != T::LEN {
        return Err(Error::BadMessageLength {
            msg_type: ty.as_u8(),
            len: body.len(),
        });
    }
    let mut r = Reader::new(body);
    let v = T::read(&mut r)?;
    r.expect_empty()?;
    Ok(v)
}

impl FixedBody for HelloRepr {
    const LEN: usize = HELLO_BODY_LEN;
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(HelloRepr {
            seq: r.u16()?,
            interval_10ms: r.u16()?,
        })
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.u16(self.seq)?;
        w.u16(self.interval_10ms)
    }
}

impl FixedBody for NodeId {
    const LEN: usize = NODE_ID_LEN;
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        r.array().map(|a| NodeId(*a))
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.bytes(&self.0)
    }
}

impl FixedBody for u32 {
    const LEN: usize = PROBE_BODY_LEN;
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        r.u32()
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.u32(*self)
    }
}

impl FixedBody for OgmRepr {
    const LEN: usize = OGM_BODY_LEN;
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(OgmRepr {
            node: NodeId::read(r)?,
            epoch: r.u32()?,
            seqno: r.u32()?,
            metric: r.u16()?,
            ttl: r.u8()?,
            flags: r.u8()?,
            chain: *r.array()?,
        })
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        self.node.write(w)?;
        w.u32(self.epoch)?;
        w.u32(self.seqno)?;
        w.u16(self.metric)?;
        w.u8(self.ttl)?;
        w.u8(self.flags)?;
        w.bytes(&self.chain)
    }
}

impl FixedBody for SeqnoRequestRepr {
    const LEN: usize = SEQNO_REQUEST_BODY_LEN;
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(SeqnoRequestRepr {
            node: NodeId::read(r)?,
            epoch: r.u32()?,
            seqno: r.u32()?,
            hop_limit: r.u8()?,
        })
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        self.node.write(w)?;
        w.u32(self.epoch)?;
        w.u32(self.seqno)?;
        w.u8(self.hop_limit)
    }
}

impl FixedBody for GroupKeyRepr {
    const LEN: usize = GROUP_KEY_BODY_LEN;
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(GroupKeyRepr {
            key_id: r.u32()?,
            key: *r.array()?,
        })
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.u32(self.key_id)?;
        w.bytes(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_lengths_match_the_spec_table() {
        assert_eq!(OGM_BODY_LEN, 44);
        assert_eq!(SEQNO_REQUEST_BODY_LEN, 25);
        assert_eq!(GROUP_KEY_BODY_LEN, 36);
        assert_eq!(MAX_DATA_PACKET_LEN, 1451);
        assert_eq!(CELL_REGION_LEN, 1446);
        assert_eq!(MESSAGE_HEADER_LEN + CELL_BODY_LEN, UNICAST_PLAINTEXT_LEN);
    }

    #[test]
    fn type_bytes_round_trip() {
        for b in 0..=u8::MAX {
            match MessageType::from_u8(b) {
                Some(t) => assert_eq!(t.as_u8(), b),
                None => assert!(b > 0x0E),
            }
        }
    }

    #[test]
    fn fixed_body_rejects_wrong_length() {
        let body = [0u8; 5];
        assert_eq!(
            parse_fixed::<HelloRepr>(MessageType::Hello, &body),
            Err(Error::BadMessageLength {
                msg_type: 1,
                len: 5
            })
        );
        let h: HelloRepr = parse_fixed(MessageType::Hello, &[0, 7, 1, 2]).unwrap();
        assert_eq!(
            h,
            HelloRepr {
                seq: 7,
                interval_10ms: 0x0102
            }
        );
    }
}
