//! Every on-air format of veilmesh: zero-copy views and parsed representations.
//!
//! Layouts are specified in `docs/protocol.md`. Everything here parses untrusted bytes:
//! no function in this module may panic on any input.

#![forbid(unsafe_code)]

use core::fmt;

/// EtherType of every veilmesh frame (IEEE 802 local experimental 2).
pub const ETHERTYPE: u16 = 0x88B5;
/// Length of the Ethernet header in front of every frame (dst, src, EtherType).
pub const ETH_HEADER_LEN: usize = 14;
/// Every unicast (session-encrypted) frame has exactly this many bytes after the Ethernet header.
pub const UNICAST_FRAME_LEN: usize = 1500;
/// Longest broadcast or handshake frame we build or accept, after the Ethernet header.
pub const MAX_FRAME_LEN: usize = 1500;
/// Protocol version carried in the high nibble of the first byte of every frame.
pub const VERSION: u8 = 1;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Header of an encrypted frame: type, index/key id, counter.
pub const ENCRYPTED_HEADER_LEN: usize = 13;
/// Plaintext capacity of a unicast frame.
pub const UNICAST_PLAINTEXT_LEN: usize = UNICAST_FRAME_LEN - ENCRYPTED_HEADER_LEN - TAG_LEN;

/// A 48-bit IEEE MAC address: how neighbours address each other on a link.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The Ethernet broadcast address.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Length of a node id.
pub const NODE_ID_LEN: usize = 16;

/// A node's routing identity: BLAKE2s-128 of its ed25519 public key (see `crypto::identity`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub [u8; NODE_ID_LEN]);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

pub mod e2e;
pub mod repr;
pub use repr::{GroupKeyRepr, HelloRepr, IhuEntry, OgmRepr, SeqnoRequestRepr, CHAIN_ELEMENT_LEN};

/// Length of a signed node announcement (layout in `crypto::announce`, docs/protocol.md §3).
pub const ANNOUNCE_LEN: usize = 156;

mod body;
mod codec;
mod error;
mod frame;
mod message;
#[cfg(test)]
mod test_support;
mod writer;

pub use body::{
    MessageType, ANNOUNCE_BODY_LEN, ANNOUNCE_REQUEST_BODY_LEN, BUILD_BODY_LEN, BUILD_RECORDS_LEN,
    CELL_BODY_LEN, CELL_REGION_LEN, DATA_HEADER_LEN, GROUP_KEY_BODY_LEN, HELLO_BODY_LEN,
    IHU_ENTRY_LEN, MAX_DATA_PACKET_LEN, MESSAGE_HEADER_LEN, OGM_BODY_LEN, ONION_HEADER_LEN,
    ONION_KEY_LEN, PROBE_BODY_LEN, SEQNO_REQUEST_BODY_LEN,
};
pub use codec::{Reader, Writer};
pub use error::Error;
pub use frame::{
    broadcast_plaintext_len, emit_encrypted_header, emit_handshake, emit_handshake_header,
    emit_hello, encrypted_frame_len, handshake_noise_mut, nonce, plaintext_area_mut,
    split_encrypted_mut, split_tag_mut, EncryptedFrame, EncryptedKind, EncryptedParts, Frame,
    HandshakeKind, TagParts, BROADCAST_FRAME_LENS, CLEAR_HELLO_BODY_LEN, FRAME_TAG_LEN,
    HANDSHAKE_HEADER_LEN, HELLO_FRAME_LEN, MAX_BROADCAST_PLAINTEXT_LEN, MAX_NOISE_LEN,
    MIN_ENCRYPTED_FRAME_LEN, MIN_FRAME_LEN, NONCE_LEN,
};
pub use message::{IhuIter, Message, MessageIter, OnionHeader};
pub use writer::{relay_data_in_place, MessageWriter};
