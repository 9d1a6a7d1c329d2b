//! Parsing the message sequence inside a decrypted frame (docs/protocol.md §2).

use super::body::{
    parse_fixed, MessageType, BUILD_BODY_LEN, CELL_BODY_LEN, DATA_HEADER_LEN, IHU_ENTRY_LEN,
};
use super::codec::Reader;
use super::{
    Error, GroupKeyRepr, HelloRepr, IhuEntry, MacAddr, NodeId, OgmRepr, SeqnoRequestRepr,
    ANNOUNCE_LEN, BUILD_RECORDS_LEN, CELL_REGION_LEN, ONION_KEY_LEN,
};

/// The routing header of a Build or Cell: where it goes and on which circuit leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnionHeader {
    /// The next relay (or, backward, the previous one, or the creator).
    pub dst: NodeId,
    /// Remaining hops.
    pub ttl: u8,
    /// The circuit's link id on this leg.
    pub link: u32,
}

/// One parsed message, borrowing the plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Encrypted neighbour hello.
    Hello(HelloRepr),
    /// "I heard you" entries.
    Ihu(IhuIter<'a>),
    /// Originator message.
    Ogm(OgmRepr),
    /// A signed node announcement (verified by `crypto`, not here).
    Announce(&'a [u8; ANNOUNCE_LEN]),
    /// Request for this node's announcement.
    AnnounceRequest(NodeId),
    /// Request for a newer seqno.
    SeqnoRequest(SeqnoRequestRepr),
    /// The sender's broadcast group key.
    GroupKey(GroupKeyRepr),
    /// Link probe with its sequence number.
    Probe(u32),
    /// Answer to the probe with this sequence number.
    ProbeAck(u32),
    /// Ask the receiver to send its group key again.
    GroupKeyRequest,
    /// An IP packet travelling to `dst`.
    Data {
        /// Destination node.
        dst: NodeId,
        /// Remaining hops.
        ttl: u8,
        /// The IP packet (may be empty at this layer).
        packet: &'a [u8],
    },
    /// A relay's signed onion key record (verified by `crypto`, not here).
    OnionKey(&'a [u8; ONION_KEY_LEN]),
    /// A circuit build.
    Build {
        /// Where it goes.
        header: OnionHeader,
        /// The build records.
        records: &'a [u8; BUILD_RECORDS_LEN],
    },
    /// An onion cell.
    Cell {
        /// Where it goes.
        header: OnionHeader,
        /// Direction byte (0 forward, 1 backward; checked by the node).
        flags: u8,
        /// Slots and body.
        region: &'a [u8; CELL_REGION_LEN],
    },
}

impl<'a> Message<'a> {
    /// This message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Hello(_) => MessageType::Hello,
            Message::Ihu(_) => MessageType::Ihu,
            Message::Ogm(_) => MessageType::Ogm,
            Message::Announce(_) => MessageType::Announce,
            Message::AnnounceRequest(_) => MessageType::AnnounceRequest,
            Message::SeqnoRequest(_) => MessageType::SeqnoRequest,
            Message::GroupKey(_) => MessageType::GroupKey,
            Message::Probe(_) => MessageType::Probe,
            Message::ProbeAck(_) => MessageType::ProbeAck,
            Message::Data { .. } => MessageType::Data,
            Message::GroupKeyRequest => MessageType::GroupKeyRequest,
            Message::OnionKey(_) => MessageType::OnionKey,
            Message::Build { .. } => MessageType::Build,
            Message::Cell { .. } => MessageType::Cell,
        }
    }

    /// Parse the body of a non-Pad message of type byte `ty`.
    fn parse_body(ty: u8, body: &'a [u8]) -> Result<Self, Error> {
        let t = MessageType::from_u8(ty).ok_or(Error::UnknownMessageType(ty))?;
        let bad_len = Error::BadMessageLength {
            msg_type: ty,
            len: body.len(),
        };
        Ok(match t {
            // The iterator handles Pad before calling us; a Pad here is a caller bug.
            MessageType::Pad => return Err(Error::UnknownMessageType(ty)),
            MessageType::Hello => Message::Hello(parse_fixed(t, body)?),
            MessageType::Ihu => Message::Ihu(IhuIter::new(body).ok_or(bad_len)?),
            MessageType::Ogm => Message::Ogm(parse_fixed(t, body)?),
            MessageType::Announce => Message::Announce(body.try_into().map_err(|_| bad_len)?),
            MessageType::AnnounceRequest => Message::AnnounceRequest(parse_fixed(t, body)?),
            MessageType::SeqnoRequest => Message::SeqnoRequest(parse_fixed(t, body)?),
            MessageType::GroupKey => Message::GroupKey(parse_fixed(t, body)?),
            MessageType::Probe => Message::Probe(parse_fixed(t, body)?),
            MessageType::ProbeAck => Message::ProbeAck(parse_fixed(t, body)?),
            MessageType::GroupKeyRequest => {
                if !body.is_empty() {
                    return Err(bad_len);
                }
                Message::GroupKeyRequest
            }
            MessageType::Data => {
                if body.len() < DATA_HEADER_LEN {
                    return Err(bad_len);
                }
                let mut r = Reader::new(body);
                Message::Data {
                    dst: NodeId(*r.array()?),
                    ttl: r.u8()?,
                    packet: r.rest(),
                }
            }
            MessageType::OnionKey => Message::OnionKey(body.try_into().map_err(|_| bad_len)?),
            MessageType::Build => {
                if body.len() != BUILD_BODY_LEN {
                    return Err(bad_len);
                }
                let mut r = Reader::new(body);
                Message::Build {
                    header: read_onion_header(&mut r)?,
                    records: r.array()?,
                }
            }
            MessageType::Cell => {
                if body.len() != CELL_BODY_LEN {
                    return Err(bad_len);
                }
                let mut r = Reader::new(body);
                Message::Cell {
                    header: read_onion_header(&mut r)?,
                    flags: r.u8()?,
                    region: r.array()?,
                }
            }
        })
    }
}

fn read_onion_header(r: &mut Reader<'_>) -> Result<OnionHeader, Error> {
    Ok(OnionHeader {
        dst: NodeId(*r.array()?),
        ttl: r.u8()?,
        link: r.u32()?,
    })
}

/// Iterator over the messages of a decrypted plaintext.
///
/// Yields messages until a Pad or the end; the first error is yielded once and ends the
/// iteration (messages before it stay valid).
#[derive(Debug, Clone)]
pub struct MessageIter<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> MessageIter<'a> {
    /// Iterate over the messages in `plaintext`.
    pub fn new(plaintext: &'a [u8]) -> Self {
        MessageIter {
            rest: plaintext,
            done: false,
        }
    }

    fn next_message(&mut self) -> Result<Option<Message<'a>>, Error> {
        let mut r = Reader::new(self.rest);
        if r.is_empty() {
            return Ok(None);
        }
        let ty = r.u8()?;
        if ty == MessageType::Pad.as_u8() {
            // Pad: type 0 then zeros to the end, so its length field (if present) is 0.
            return match r.rest().iter().all(|&b| b == 0) {
                true => Ok(None),
                false => Err(Error::NonZeroPadding),
            };
        }
        let len = usize::from(r.u16()?);
        let body = r.take(len)?;
        self.rest = r.rest();
        Message::parse_body(ty, body).map(Some)
    }
}

impl<'a> Iterator for MessageIter<'a> {
    type Item = Result<Message<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_message() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for MessageIter<'_> {}

/// The entries of an IHU message; the body length was checked to be a whole number of
/// entries, so iteration cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IhuIter<'a> {
    rest: &'a [u8],
}

impl<'a> IhuIter<'a> {
    /// Entries of an IHU body, or `None` if its length is not a multiple of the entry size.
    pub fn new(body: &'a [u8]) -> Option<Self> {
        body.len()
            .is_multiple_of(IHU_ENTRY_LEN)
            .then_some(IhuIter { rest: body })
    }
}

impl Iterator for IhuIter<'_> {
    type Item = IhuEntry;

    fn next(&mut self) -> Option<IhuEntry> {
        let (e, rest) = self.rest.split_first_chunk::<IHU_ENTRY_LEN>()?;
        self.rest = rest;
        Some(IhuEntry {
            mac: MacAddr([e[0], e[1], e[2], e[3], e[4], e[5]]),
            rx_quality: u16::from_be_bytes([e[6], e[7]]),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len() / IHU_ENTRY_LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for IhuIter<'_> {}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
