//! What a cell carries once every layer is off (docs/protocol.md §8.7): `kind u8 | len u16 |
//! payload | zeros` in the body after the slots. Kinds: build-ok (the exit's answer to a
//! build), loop and its reply (the creator's liveness probe through the whole circuit).

use crate::crypto::onion::SLOTS_LEN;
use crate::wire::CELL_REGION_LEN;

/// Bytes of a cell body (after the slots).
pub(super) const BODY_LEN: usize = CELL_REGION_LEN - SLOTS_LEN;
const BODY_HEADER_LEN: usize = 3;
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
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::BuildOk),
            2 => Some(Kind::Loop),
            3 => Some(Kind::LoopReply),
            _ => None,
        }
    }
}

/// Write `kind` and `payload` into the body part of `region`, zero-padded. False if the
/// payload does not fit or the region is not a cell's.
pub(super) fn write(region: &mut [u8], kind: Kind, payload: &[u8]) -> bool {
    let (Some(body), Ok(len)) = (region.get_mut(SLOTS_LEN..), u16::try_from(payload.len())) else {
        return false;
    };
    if payload.len() > MAX_PAYLOAD || body.len() != BODY_LEN {
        return false;
    }
    let (head, rest) = body.split_at_mut(BODY_HEADER_LEN);
    head[0] = kind as u8;
    head[1..].copy_from_slice(&len.to_be_bytes());
    let (data, pad) = rest.split_at_mut(payload.len());
    data.copy_from_slice(payload);
    pad.fill(0);
    true
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
