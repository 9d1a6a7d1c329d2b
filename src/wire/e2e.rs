//! The end-to-end payload of a Data message (docs/protocol.md §7.2): relays forward it
//! untouched by the Data header's destination and ttl; only the destination reads it.
//!
//! ```text
//! 0        16     17
//! | src id | kind | kind body
//! kind 1 Init:    sender idx u32, Noise msg 1 (56)
//! kind 2 Resp:    sender idx u32, receiver idx u32, Noise msg 2 (48)
//! kind 3 Sealed:  receiver idx u32, counter u64, ciphertext, tag (16)
//! kind 4 Expired: receiver idx u32, counter u64   (a relay: that Sealed ran out of ttl)
//! kind 5 Anonymous:      (src = the exit) onion key seq u32, sender key (32), counter u64,
//!                        ciphertext, tag (16)    (docs/protocol.md §8.9)
//! kind 6 AnonymousReply: (src = the destination) iid (8), counter u64, ciphertext, tag (16)
//! ```

use super::codec::{Reader, Writer};
use super::{Error, NodeId, NODE_ID_LEN, TAG_LEN};

/// Noise KK message 1: e (32) and the encrypted handshake sequence number (8 + 16).
pub const E2E_MSG1_LEN: usize = 56;
/// Noise KK message 2: e (32) and an empty encrypted payload (16).
pub const E2E_MSG2_LEN: usize = 48;
/// Source node id and kind.
pub const E2E_HEADER_LEN: usize = NODE_ID_LEN + 1;
/// A Sealed payload before its ciphertext: header, receiver idx, counter. These bytes are
/// the AEAD's associated data.
pub const E2E_SEALED_HEADER_LEN: usize = E2E_HEADER_LEN + 4 + 8;
/// What a Sealed payload adds to the IP packet it carries.
pub const E2E_SEALED_OVERHEAD: usize = E2E_SEALED_HEADER_LEN + TAG_LEN;
/// Largest IP packet a Sealed payload carries in one unicast frame: the overlay MTU.
pub const MAX_E2E_PACKET_LEN: usize = super::MAX_DATA_PACKET_LEN - E2E_SEALED_OVERHEAD;
const _: () = assert!(
    MAX_E2E_PACKET_LEN >= 1280,
    "IPv6 needs an MTU of at least 1280"
);
/// Length of an Init payload.
pub const E2E_INIT_LEN: usize = E2E_HEADER_LEN + 4 + E2E_MSG1_LEN;
/// Length of a Resp payload.
pub const E2E_RESP_LEN: usize = E2E_HEADER_LEN + 8 + E2E_MSG2_LEN;
/// Length of an Expired payload.
pub const E2E_EXPIRED_LEN: usize = E2E_HEADER_LEN + 4 + 8;

const KIND_INIT: u8 = 1;
const KIND_RESP: u8 = 2;
const KIND_SEALED: u8 = 3;
const KIND_EXPIRED: u8 = 4;
const KIND_ANONYMOUS: u8 = 5;
const KIND_ANONYMOUS_REPLY: u8 = 6;
/// An Anonymous payload before its ciphertext: header, key seq, sender key, counter.
pub const ANON_HEADER_LEN: usize = E2E_HEADER_LEN + 4 + 32 + 8;
/// An AnonymousReply payload before its ciphertext: header, iid, counter.
pub const ANON_REPLY_HEADER_LEN: usize = E2E_HEADER_LEN + 8 + 8;

/// A parsed end-to-end payload (the Sealed ciphertext stays in place: `split_sealed_mut`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E2ePayload<'a> {
    /// Noise msg 1 from `src`, which names its session `sender_idx`.
    Init {
        /// The initiating node.
        src: NodeId,
        /// The initiator's index for the session.
        sender_idx: u32,
        /// Noise message 1.
        msg1: &'a [u8; E2E_MSG1_LEN],
    },
    /// Noise msg 2 from `src` for our session `receiver_idx`.
    Resp {
        /// The responding node.
        src: NodeId,
        /// The responder's index for the session.
        sender_idx: u32,
        /// Our index, from the Init.
        receiver_idx: u32,
        /// Noise message 2.
        msg2: &'a [u8; E2E_MSG2_LEN],
    },
    /// An IP packet sealed under our session `receiver_idx`.
    Sealed {
        /// The sending node (the session says who it really is).
        src: NodeId,
        /// Our index of the session.
        receiver_idx: u32,
        /// The sender's counter (the nonce).
        counter: u64,
    },
    /// Relay `src` dropped our Sealed payload (`receiver_idx`, `counter`): ttl ran out.
    Expired {
        /// The relay.
        src: NodeId,
        /// The destination's index of the dropped payload's session.
        receiver_idx: u32,
        /// The dropped payload's counter.
        counter: u64,
    },
    /// An anonymous sender's packet, passed on by the exit `exit` (the ciphertext and tag
    /// follow at `ANON_HEADER_LEN`).
    Anonymous {
        /// The exit that sent it (the sender sealed this name in).
        exit: NodeId,
        /// Our onion key it is sealed to.
        key_seq: u32,
        /// The sender's ephemeral key.
        sender: &'a [u8; 32],
        /// The sender's counter (the nonce).
        counter: u64,
    },
    /// A destination's answer to an anonymous sender, for the exit to send back on the
    /// circuit that claimed `iid` (the ciphertext and tag follow at `ANON_REPLY_HEADER_LEN`).
    AnonymousReply {
        /// The answering node.
        src: NodeId,
        /// The ephemeral address's interface id.
        iid: &'a [u8; 8],
        /// The answering node's counter (the nonce).
        counter: u64,
    },
}

/// Whether `payload` carries an IP packet (Sealed, Anonymous, AnonymousReply) rather than a
/// session message: relays queue the latter as control traffic.
pub fn carries_packet(payload: &[u8]) -> bool {
    matches!(
        payload.get(E2E_HEADER_LEN - 1),
        Some(&(KIND_SEALED | KIND_ANONYMOUS | KIND_ANONYMOUS_REPLY))
    )
}

/// A Sealed payload split for opening in place.
#[derive(Debug)]
pub struct SealedParts<'a> {
    /// The associated data: source, kind, receiver idx, counter.
    pub header: &'a [u8],
    /// The ciphertext (plaintext after opening).
    pub body: &'a mut [u8],
    /// The tag.
    pub tag: &'a [u8; TAG_LEN],
}

impl<'a> E2ePayload<'a> {
    /// Parse the payload of a Data message. Lengths are exact except for Sealed; an index
    /// of 0 (never a session's) is `BadIndex`; an unknown kind is `UnknownMessageType`.
    pub fn parse(payload: &'a [u8]) -> Result<E2ePayload<'a>, Error> {
        let mut r = Reader::new(payload);
        let src = NodeId(*r.array()?);
        let kind = r.u8()?;
        let parsed = match kind {
            KIND_INIT => E2ePayload::Init {
                src,
                sender_idx: index(r.u32()?)?,
                msg1: r.array()?,
            },
            KIND_RESP => E2ePayload::Resp {
                src,
                sender_idx: index(r.u32()?)?,
                receiver_idx: index(r.u32()?)?,
                msg2: r.array()?,
            },
            KIND_SEALED => {
                let parsed = E2ePayload::Sealed {
                    src,
                    receiver_idx: index(r.u32()?)?,
                    counter: r.u64()?,
                };
                sealed_rest(&mut r)?;
                parsed
            }
            KIND_EXPIRED => E2ePayload::Expired {
                src,
                receiver_idx: index(r.u32()?)?,
                counter: r.u64()?,
            },
            KIND_ANONYMOUS => {
                let parsed = E2ePayload::Anonymous {
                    exit: src,
                    key_seq: r.u32()?,
                    sender: r.array()?,
                    counter: r.u64()?,
                };
                sealed_rest(&mut r)?;
                parsed
            }
            KIND_ANONYMOUS_REPLY => {
                let parsed = E2ePayload::AnonymousReply {
                    src,
                    iid: r.array()?,
                    counter: r.u64()?,
                };
                sealed_rest(&mut r)?;
                parsed
            }
            other => return Err(Error::UnknownMessageType(other)),
        };
        r.expect_empty()?;
        Ok(parsed)
    }
}

/// Take the ciphertext and tag that end a sealed kind (at least a tag).
fn sealed_rest(r: &mut Reader<'_>) -> Result<(), Error> {
    if r.remaining() < TAG_LEN {
        return Err(Error::Truncated);
    }
    let _ciphertext_and_tag = r.rest();
    Ok(())
}

/// Write the header of an Anonymous payload into `out` (the ciphertext follows).
pub fn emit_anonymous_header(
    out: &mut [u8],
    exit: NodeId,
    (key_seq, sender): (u32, &[u8; 32]),
    counter: u64,
) -> Result<(), Error> {
    let mut w = Writer::new(out);
    header(&mut w, exit, KIND_ANONYMOUS)?;
    w.u32(key_seq)?;
    w.bytes(sender)?;
    w.u64(counter)
}

/// Write the header of an AnonymousReply payload into `out` (the ciphertext follows).
pub fn emit_anonymous_reply_header(
    out: &mut [u8],
    src: NodeId,
    iid: &[u8; 8],
    counter: u64,
) -> Result<(), Error> {
    let mut w = Writer::new(out);
    header(&mut w, src, KIND_ANONYMOUS_REPLY)?;
    w.bytes(iid)?;
    w.u64(counter)
}

/// Split a Sealed payload (already checked by `E2ePayload::parse`) for opening in place.
pub fn split_sealed_mut(payload: &mut [u8]) -> Result<SealedParts<'_>, Error> {
    if payload.len() < E2E_SEALED_OVERHEAD {
        return Err(Error::Truncated);
    }
    let (header, rest) = payload.split_at_mut(E2E_SEALED_HEADER_LEN);
    let (body, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
    let tag = <&[u8; TAG_LEN]>::try_from(&*tag).map_err(|_| Error::Truncated)?;
    Ok(SealedParts { header, body, tag })
}

/// Write an Init payload into `out`; returns its length.
pub fn emit_init(
    out: &mut [u8],
    src: NodeId,
    sender_idx: u32,
    msg1: &[u8; E2E_MSG1_LEN],
) -> Result<usize, Error> {
    let mut w = Writer::new(out);
    header(&mut w, src, KIND_INIT)?;
    w.u32(sender_idx)?;
    w.bytes(msg1)?;
    Ok(w.len())
}

/// Write a Resp payload into `out`; returns its length.
pub fn emit_resp(
    out: &mut [u8],
    src: NodeId,
    (sender_idx, receiver_idx): (u32, u32),
    msg2: &[u8; E2E_MSG2_LEN],
) -> Result<usize, Error> {
    let mut w = Writer::new(out);
    header(&mut w, src, KIND_RESP)?;
    w.u32(sender_idx)?;
    w.u32(receiver_idx)?;
    w.bytes(msg2)?;
    Ok(w.len())
}

/// Write the header of a Sealed payload (the associated data) into `out`; the ciphertext
/// follows at `E2E_SEALED_HEADER_LEN`, then the tag.
pub fn emit_sealed_header(
    out: &mut [u8],
    src: NodeId,
    receiver_idx: u32,
    counter: u64,
) -> Result<(), Error> {
    let mut w = Writer::new(out);
    header(&mut w, src, KIND_SEALED)?;
    w.u32(receiver_idx)?;
    w.u64(counter)
}

/// Write an Expired payload into `out`; returns its length.
pub fn emit_expired(
    out: &mut [u8],
    src: NodeId,
    receiver_idx: u32,
    counter: u64,
) -> Result<usize, Error> {
    let mut w = Writer::new(out);
    header(&mut w, src, KIND_EXPIRED)?;
    w.u32(receiver_idx)?;
    w.u64(counter)?;
    Ok(w.len())
}

fn header(w: &mut Writer<'_>, src: NodeId, kind: u8) -> Result<(), Error> {
    w.bytes(&src.0)?;
    w.u8(kind)
}

fn index(idx: u32) -> Result<u32, Error> {
    if idx == 0 {
        Err(Error::BadIndex)
    } else {
        Ok(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: NodeId = NodeId([7; 16]);

    #[test]
    fn every_kind_round_trips_and_lengths_are_exact() {
        let mut buf = [0u8; 200];
        let n = emit_init(&mut buf, SRC, 9, &[1; E2E_MSG1_LEN]).unwrap();
        assert_eq!(n, E2E_INIT_LEN);
        assert_eq!(
            E2ePayload::parse(&buf[..n]),
            Ok(E2ePayload::Init {
                src: SRC,
                sender_idx: 9,
                msg1: &[1; E2E_MSG1_LEN]
            })
        );
        assert_eq!(E2ePayload::parse(&buf[..n - 1]), Err(Error::Truncated));
        assert_eq!(E2ePayload::parse(&buf[..n + 1]), Err(Error::TrailingBytes));
        let n = emit_resp(&mut buf, SRC, (3, 4), &[2; E2E_MSG2_LEN]).unwrap();
        assert_eq!(n, E2E_RESP_LEN);
        assert!(matches!(
            E2ePayload::parse(&buf[..n]),
            Ok(E2ePayload::Resp {
                sender_idx: 3,
                receiver_idx: 4,
                ..
            })
        ));
        let n = emit_expired(&mut buf, SRC, 5, 6).unwrap();
        assert_eq!(n, E2E_EXPIRED_LEN);
        assert!(!carries_packet(&buf[..n]));
        assert_eq!(
            E2ePayload::parse(&buf[..n]),
            Ok(E2ePayload::Expired {
                src: SRC,
                receiver_idx: 5,
                counter: 6
            })
        );
    }

    #[test]
    fn anonymous_kinds_round_trip_and_need_a_tag() {
        let mut buf = [0u8; 200];
        emit_anonymous_header(&mut buf, SRC, (3, &[4; 32]), 5).unwrap();
        let n = ANON_HEADER_LEN + TAG_LEN;
        assert!(carries_packet(&buf[..n]));
        assert_eq!(
            E2ePayload::parse(&buf[..n]),
            Ok(E2ePayload::Anonymous {
                exit: SRC,
                key_seq: 3,
                sender: &[4; 32],
                counter: 5
            })
        );
        assert_eq!(E2ePayload::parse(&buf[..n - 1]), Err(Error::Truncated));
        emit_anonymous_reply_header(&mut buf, SRC, &[6; 8], 7).unwrap();
        let n = ANON_REPLY_HEADER_LEN + TAG_LEN + 3;
        assert!(carries_packet(&buf[..n]));
        assert_eq!(
            E2ePayload::parse(&buf[..n]),
            Ok(E2ePayload::AnonymousReply {
                src: SRC,
                iid: &[6; 8],
                counter: 7
            })
        );
        assert_eq!(
            E2ePayload::parse(&buf[..ANON_REPLY_HEADER_LEN + 2]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn sealed_splits_into_header_body_and_tag() {
        let mut buf = [0xEEu8; E2E_SEALED_OVERHEAD + 10];
        emit_sealed_header(&mut buf, SRC, 11, 12).unwrap();
        assert_eq!(
            E2ePayload::parse(&buf),
            Ok(E2ePayload::Sealed {
                src: SRC,
                receiver_idx: 11,
                counter: 12
            })
        );
        assert!(carries_packet(&buf));
        let parts = split_sealed_mut(&mut buf).unwrap();
        assert_eq!(parts.header.len(), E2E_SEALED_HEADER_LEN);
        assert_eq!(parts.body.len(), 10);
        assert_eq!(parts.tag, &[0xEE; TAG_LEN]);
        let mut short = [0u8; E2E_SEALED_OVERHEAD - 1];
        emit_sealed_header(&mut short, SRC, 1, 1).unwrap();
        assert_eq!(E2ePayload::parse(&short), Err(Error::Truncated));
        assert!(split_sealed_mut(&mut short).is_err());
    }

    #[test]
    fn zero_indices_and_unknown_kinds_are_refused() {
        let mut buf = [0u8; 200];
        let n = emit_expired(&mut buf, SRC, 0, 1).unwrap();
        assert_eq!(E2ePayload::parse(&buf[..n]), Err(Error::BadIndex));
        let n = emit_init(&mut buf, SRC, 1, &[0; E2E_MSG1_LEN]).unwrap();
        buf[16] = 9;
        assert_eq!(
            E2ePayload::parse(&buf[..n]),
            Err(Error::UnknownMessageType(9))
        );
        assert_eq!(E2ePayload::parse(&[]), Err(Error::Truncated));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = E2ePayload::parse(&bytes);
            let mut copy = bytes.clone();
            let _ = split_sealed_mut(&mut copy);
        }
    }
}
