//! The signed node announcement (`wire::ANNOUNCE_LEN` = 156 bytes, docs/protocol.md §3.3).
//!
//! ```text
//!  0  ed25519 public (32)    32  x25519 public (32)   64  epoch u32   68  chain start u32
//! 72  chain len u16          74  chain anchor (16)    90  ipv4 claim index u8 (0xFF = none)
//! 91  flags u8               92  ed25519 signature (64) over
//!                                hash_labeled::<32>("veilmesh announce v1", [bytes 0..92])
//! ```

use ed25519_dalek::{Signature, VerifyingKey};

use super::hashchain::{ChainElement, ChainSigner, ChainVerifier, MAX_CHAIN_LEN};
use super::identity::{Identity, PublicIdentity};
use super::{arr, hash_labeled};
use crate::wire::{NodeId, ANNOUNCE_LEN};

/// Bytes covered by the signature.
pub const SIGNED_LEN: usize = 92;
/// The ipv4 claim byte meaning "no IPv4 address claimed".
pub const NO_IPV4: u8 = 0xFF;

/// Why an announcement was refused, or could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceError {
    /// The ed25519 public key is not a valid curve point.
    #[error("invalid ed25519 public key")]
    BadKey,
    /// The signature does not verify.
    #[error("announcement signature does not verify")]
    BadSignature,
    /// Chain length 0 or above the maximum.
    #[error("chain length {0} outside 1..={MAX_CHAIN_LEN}")]
    BadChainLength(u16),
    /// `sign` was given an identity that does not match the announcement.
    #[error("announcement is for another identity")]
    WrongIdentity,
    /// An IPv4 claim index of 0xFF (reserved for "none").
    #[error("ipv4 claim index 255 is reserved")]
    BadIpv4Claim,
}

/// A parsed, verified node announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    /// The announcing node's public keys.
    pub identity: PublicIdentity,
    /// The node's epoch (increments on restart so seqnos can start over).
    pub epoch: u32,
    /// First OGM seqno the chain covers.
    pub chain_start: u32,
    /// Number of seqnos the chain covers.
    pub chain_len: u16,
    /// The chain anchor.
    pub anchor: ChainElement,
    /// Index into the configured IPv4 pool the node claims (0..=254), if any.
    pub ipv4_claim: Option<u8>,
    /// Reserved flags, covered by the signature (0 in version 1).
    pub flags: u8,
}

impl Announcement {
    /// The announcement of `identity`'s current chain.
    pub fn for_chain(identity: &Identity, epoch: u32, chain: &ChainSigner) -> Announcement {
        Announcement {
            identity: identity.public(),
            epoch,
            chain_start: chain.start(),
            chain_len: chain.len(),
            anchor: chain.anchor(),
            ipv4_claim: None,
            flags: 0,
        }
    }

    /// The signed 156-byte wire form.
    pub fn sign(&self, identity: &Identity) -> Result<[u8; ANNOUNCE_LEN], AnnounceError> {
        if identity.public() != self.identity {
            return Err(AnnounceError::WrongIdentity);
        }
        if self.chain_len == 0 || self.chain_len > MAX_CHAIN_LEN {
            return Err(AnnounceError::BadChainLength(self.chain_len));
        }
        if self.ipv4_claim == Some(NO_IPV4) {
            return Err(AnnounceError::BadIpv4Claim);
        }
        let mut out = [0u8; ANNOUNCE_LEN];
        out[0..32].copy_from_slice(&self.identity.ed25519);
        out[32..64].copy_from_slice(&self.identity.x25519);
        out[64..68].copy_from_slice(&self.epoch.to_be_bytes());
        out[68..72].copy_from_slice(&self.chain_start.to_be_bytes());
        out[72..74].copy_from_slice(&self.chain_len.to_be_bytes());
        out[74..90].copy_from_slice(&self.anchor);
        out[90] = self.ipv4_claim.unwrap_or(NO_IPV4);
        out[91] = self.flags;
        let sig = identity.sign_digest(&digest(&out));
        out[SIGNED_LEN..].copy_from_slice(&sig);
        Ok(out)
    }

    /// The (node id, epoch, chain start) an announcement claims, without checking the
    /// signature: lets a receiver skip the ~50 µs verification for copies it already holds
    /// or that are older than what it holds. Never trust it for anything else.
    pub fn unverified_order(bytes: &[u8; ANNOUNCE_LEN]) -> (NodeId, u32, u32) {
        let ed25519 = arr::<32>(&bytes[0..32]);
        let epoch = u32::from_be_bytes(arr(&bytes[64..68]));
        let chain_start = u32::from_be_bytes(arr(&bytes[68..72]));
        (crate::crypto::node_id(&ed25519), epoch, chain_start)
    }

    /// Parse and check the signature (strict ed25519 verification).
    pub fn parse_and_verify(bytes: &[u8; ANNOUNCE_LEN]) -> Result<Announcement, AnnounceError> {
        let (body, sig) = bytes.split_at(SIGNED_LEN);
        let ed25519 = arr::<32>(&body[0..32]);
        let vk = VerifyingKey::from_bytes(&ed25519).map_err(|_| AnnounceError::BadKey)?;
        let sig = Signature::from_bytes(&arr::<64>(sig));
        vk.verify_strict(&digest(bytes), &sig)
            .map_err(|_| AnnounceError::BadSignature)?;
        let chain_len = u16::from_be_bytes(arr(&body[72..74]));
        if chain_len == 0 || chain_len > MAX_CHAIN_LEN {
            return Err(AnnounceError::BadChainLength(chain_len));
        }
        Ok(Announcement {
            identity: PublicIdentity {
                ed25519,
                x25519: arr(&body[32..64]),
            },
            epoch: u32::from_be_bytes(arr(&body[64..68])),
            chain_start: u32::from_be_bytes(arr(&body[68..72])),
            chain_len,
            anchor: arr(&body[74..90]),
            ipv4_claim: Some(body[90]).filter(|&b| b != NO_IPV4),
            flags: body[91],
        })
    }

    /// The announcing node's id.
    pub fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }

    /// A fresh verifier for the OGMs this announcement anchors.
    pub fn chain_verifier(&self) -> Result<ChainVerifier, AnnounceError> {
        ChainVerifier::new(self.anchor, self.chain_start, self.chain_len)
            .map_err(|_| AnnounceError::BadChainLength(self.chain_len))
    }
}

/// What the signature covers: a labelled hash of the first `SIGNED_LEN` bytes.
fn digest(bytes: &[u8; ANNOUNCE_LEN]) -> [u8; 32] {
    let (body, _) = bytes.split_at(SIGNED_LEN);
    hash_labeled::<32>(b"veilmesh announce v1", &[body])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Identity, ChainSigner, Announcement) {
        let id = Identity::from_secrets([1; 32], [2; 32]);
        let chain = ChainSigner::new(&id, 7, 100, 256).unwrap();
        let mut a = Announcement::for_chain(&id, 7, &chain);
        a.ipv4_claim = Some(42);
        (id, chain, a)
    }

    #[test]
    fn sign_parse_round_trip_and_chain() {
        let (id, chain, a) = setup();
        let bytes = a.sign(&id).unwrap();
        assert_eq!(&bytes[..32], &id.public().ed25519);
        assert_eq!(&bytes[64..68], &7u32.to_be_bytes());
        assert_eq!(bytes[90], 42);
        let back = Announcement::parse_and_verify(&bytes).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.node_id(), id.node_id());
        let mut v = back.chain_verifier().unwrap();
        assert!(v.verify(100, &chain.element(100).unwrap()).is_ok());
    }

    #[test]
    fn no_ipv4_is_ff() {
        let (id, _, mut a) = setup();
        a.ipv4_claim = None;
        let bytes = a.sign(&id).unwrap();
        assert_eq!(bytes[90], NO_IPV4);
        assert_eq!(
            Announcement::parse_and_verify(&bytes).unwrap().ipv4_claim,
            None
        );
        a.ipv4_claim = Some(NO_IPV4);
        assert_eq!(a.sign(&id), Err(AnnounceError::BadIpv4Claim));
    }

    #[test]
    fn every_tampered_byte_is_rejected() {
        let (id, _, a) = setup();
        let bytes = a.sign(&id).unwrap();
        for i in 0..ANNOUNCE_LEN {
            let mut t = bytes;
            t[i] ^= 0x01;
            let r = Announcement::parse_and_verify(&t);
            assert!(
                matches!(r, Err(AnnounceError::BadSignature | AnnounceError::BadKey)),
                "byte {i}: {r:?}"
            );
        }
    }

    #[test]
    fn signing_checks_inputs() {
        let (_, _, mut a) = setup();
        let other = Identity::from_secrets([9; 32], [9; 32]);
        assert_eq!(a.sign(&other), Err(AnnounceError::WrongIdentity));
        let (id, _, _) = setup();
        a.chain_len = 0;
        assert_eq!(a.sign(&id), Err(AnnounceError::BadChainLength(0)));
    }
}
