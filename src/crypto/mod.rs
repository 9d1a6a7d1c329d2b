//! Identity keys, link sessions, group keys, hash chains and signed announcements.

#![forbid(unsafe_code)]

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2sVar;

use crate::wire::{NodeId, NODE_ID_LEN};

pub mod aead;
pub mod announce;
pub mod e2e;
pub mod frame_tag;
pub mod group;
pub mod handshake;
pub mod hashchain;
pub mod identity;
pub mod onion;
pub mod policy;
pub mod replay;
pub mod secret;
mod seeded;
pub mod session;

#[cfg(test)]
mod parse_props;

pub use aead::{CounterExhausted, OpenError, RecvKey, SendKey};
pub use announce::{AnnounceError, Announcement};
pub use frame_tag::FrameTagKey;
pub use group::{GroupReceiver, GroupSender};
pub use handshake::{Established, HandshakeError, Initiator, MeshPsk, Responder};
pub use hashchain::{ChainError, ChainSigner, ChainStatus, ChainVerifier};
pub use identity::{Identity, IdentityError, PublicIdentity};
pub use policy::AcceptPolicy;
pub use replay::ReplayWindow;
pub use secret::SecretBytes;
pub use session::{Session, SessionTimers};

/// BLAKE2s with a domain-separation label prepended, truncated to `N` bytes.
pub fn hash_labeled<const N: usize>(label: &[u8], parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    // Blake2sVar accepts 1..=32 output bytes; N is a compile-time constant in that range.
    let Ok(mut h) = Blake2sVar::new(N) else {
        return out;
    };
    h.update(&[label.len() as u8]);
    h.update(label);
    for p in parts {
        h.update(p);
    }
    let _ = h.finalize_variable(&mut out);
    out
}

/// Copy a slice of statically known length into an array: callers pass constant ranges of
/// fixed-size buffers, never lengths that came from the network.
pub(crate) fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(s);
    out
}

/// The node id of an ed25519 public key: BLAKE2s-128("veilmesh node id v1", key).
pub fn node_id(ed25519_public: &[u8; 32]) -> NodeId {
    NodeId(hash_labeled::<NODE_ID_LEN>(
        b"veilmesh node id v1",
        &[ed25519_public],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_depends_on_every_key_byte() {
        let a = node_id(&[0u8; 32]);
        let mut k = [0u8; 32];
        k[31] = 1;
        assert_ne!(a, node_id(&k));
        assert_eq!(a, node_id(&[0u8; 32]));
    }
}
