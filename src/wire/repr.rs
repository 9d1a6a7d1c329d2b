//! Parsed representations of the messages, shared by `wire` (parse/emit) and the layers above.

use super::{MacAddr, NodeId};

/// Length of a hash-chain element carried in an OGM.
pub const CHAIN_ELEMENT_LEN: usize = 16;

/// A neighbour hello: clear (frame 0x11) or encrypted (message 0x01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloRepr {
    /// Sender's hello sequence number.
    pub seq: u16,
    /// Sender's current hello interval in units of 10 ms.
    pub interval_10ms: u16,
}

/// One "I heard you" entry: how well the sender receives the neighbour with this MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IhuEntry {
    /// The neighbour being reported on.
    pub mac: MacAddr,
    /// Receive ratio from that neighbour, 0..=65535 meaning 0..=1.
    pub rx_quality: u16,
}

/// An originator message: one node's route advertisement, flooded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OgmRepr {
    /// The originator.
    pub node: NodeId,
    /// The originator's restart epoch (from its signed announcement).
    pub epoch: u32,
    /// Sequence number within the epoch; authenticated by `chain`.
    pub seqno: u32,
    /// Path metric from the originator to the node that sent this copy.
    pub metric: u16,
    /// Remaining flood hops.
    pub ttl: u8,
    /// Reserved flags, 0.
    pub flags: u8,
    /// Hash-chain element proving the originator issued (epoch, seqno).
    pub chain: [u8; CHAIN_ELEMENT_LEN],
}

/// A request that the originator issue a newer sequence number (Babel-style).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqnoRequestRepr {
    /// The originator asked for.
    pub node: NodeId,
    /// Epoch of the requested sequence number.
    pub epoch: u32,
    /// The requester wants a seqno at least this large.
    pub seqno: u32,
    /// Remaining forwarding hops.
    pub hop_limit: u8,
}

/// A node's broadcast group key, sent to each neighbour over its link session.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct GroupKeyRepr {
    /// Identifier carried in the sender's broadcast frames.
    pub key_id: u32,
    /// ChaCha20-Poly1305 key.
    pub key: [u8; 32],
}

impl core::fmt::Debug for GroupKeyRepr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GroupKeyRepr")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}
