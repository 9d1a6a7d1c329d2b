//! What a cell carries once every layer is off (docs/protocol.md §8.7): `kind u8 | len u16 |
//! payload | zeros` in the body after the slots. Kinds: build-ok (the exit's answer to a
//! build), loop and its reply (the creator's liveness probe through the whole circuit), an
//! anonymous packet for the exit to pass on and a destination's reply (docs/protocol.md §8.9).

use crate::crypto::onion::SLOTS_LEN;
use crate::wire::CELL_REGION_LEN;

/// Bytes of a cell body (after the slots).
pub(super) const BODY_LEN: usize = CELL_REGION_LEN - SLOTS_LEN;
const BODY_HEADER_LEN: usize = 3;
/// Where a cell's payload starts in its region.
pub(super) const PAYLOAD_AT: usize = SLOTS_LEN + BODY_HEADER_LEN;
/// Largest payload of one cell.
pub(super) const MAX_PAYLOAD: usize = BODY_LEN - BODY_HEADER_LEN;

/// The kind of a cell's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// The exit's answer to a build: the circuit is up.
    BuildOk = 1,
    /// A liveness probe the exit answers.
    Loop = 2,
    /// The exit's answer to a Loop, with its payload.
    LoopReply = 3,
    /// A packet sealed to a destination, for the exit to pass on.
    Anonymous = 4,
    /// A destination's reply, passed back by the exit.
    AnonymousReply = 5,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::BuildOk),
            2 => Some(Kind::Loop),
            3 => Some(Kind::LoopReply),
            4 => Some(Kind::Anonymous),
            5 => Some(Kind::AnonymousReply),
            _ => None,
        }
    }
}

/// Write `kind` and `payload` into the body part of `region`, zero-padded. False if the
/// payload does not fit or the region is not a cell's.
pub(super) fn write(region: &mut [u8], kind: Kind, payload: &[u8]) -> bool {
    match payload_mut(region, kind, payload.len()) {
        Some(data) => {
            data.copy_from_slice(payload);
            true
        }
        None => false,
    }
}

/// Write the header of a `kind` body with a payload of `len` bytes into `region` and zero
/// the padding; returns the payload's place, to be written there. `None` if it does not fit
/// or the region is not a cell's.
pub(super) fn payload_mut(region: &mut [u8], kind: Kind, len: usize) -> Option<&mut [u8]> {
    let body = region.get_mut(SLOTS_LEN..)?;
    let len16 = u16::try_from(len).ok()?;
    if len > MAX_PAYLOAD || body.len() != BODY_LEN {
        return None;
    }
    let (head, rest) = body.split_at_mut(BODY_HEADER_LEN);
    head[0] = kind as u8;
    head[1..].copy_from_slice(&len16.to_be_bytes());
    let (data, pad) = rest.split_at_mut(len);
    pad.fill(0);
    Some(data)
}

/// The kind and payload of an opened cell, or `None` if malformed (unknown kind, a length
/// past the body, or non-zero padding).
pub(super) fn read(region: &[u8]) -> Option<(Kind, &[u8])> {
    let body = region.get(SLOTS_LEN..)?;
    let (&[kind, hi, lo], rest) = body.split_first_chunk::<BODY_HEADER_LEN>()?;
    let kind = Kind::from_u8(kind)?;
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let (payload, pad) = (rest.get(..len)?, rest.get(len..)?);
    pad.iter().all(|&b| b == 0).then_some((kind, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_malformed_ones_are_refused() {
        let mut region = [0u8; CELL_REGION_LEN];
        assert!(write(&mut region, Kind::Loop, b"12345678"));
        assert_eq!(read(&region), Some((Kind::Loop, &b"12345678"[..])));
        assert!(!write(&mut region, Kind::Loop, &[0u8; MAX_PAYLOAD + 1]));
        let mut bad = region;
        bad[SLOTS_LEN] = 9;
        assert_eq!(read(&bad), None);
        let mut bad = region;
        bad[CELL_REGION_LEN - 1] = 1;
        assert_eq!(read(&bad), None);
        let mut bad = region;
        bad[SLOTS_LEN + 1] = 0xff;
        assert_eq!(read(&bad), None);
    }
}
