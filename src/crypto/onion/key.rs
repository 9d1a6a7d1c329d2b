//! Onion keys: each relay's x25519 key for circuit builds, separate from its identity,
//! published in a record signed by its ed25519 identity and rotated so that erasing old keys
//! gives recorded builds forward secrecy (docs/protocol.md §8.1).

use core::fmt;

use ed25519_dalek::{Signature, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::OnionError;
use crate::crypto::identity::{Identity, PublicIdentity};
use crate::crypto::{arr, hash_labeled};
use crate::wire::{NodeId, NODE_ID_LEN};

/// Length of a signed onion key record.
pub const ONION_KEY_RECORD_LEN: usize = 120;
/// Bytes the signature covers (everything before it).
const SIGNED_LEN: usize = 56;
/// Flag: the node relays circuits (it may publish a key and refuse to relay, to be a creator
/// only).
pub const ONION_KEY_RELAY: u8 = 0x01;
const SIGN_LABEL: &[u8] = b"veilmesh onion key v1";

/// A relay's onion key pair with its sequence number. `Debug` shows the public half only; the
/// secret is wiped when dropped.
pub struct OnionKeyPair {
    seq: u32,
    secret: StaticSecret,
    public: [u8; 32],
}

impl fmt::Debug for OnionKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OnionKeyPair(seq={})", self.seq)
    }
}

impl OnionKeyPair {
    /// A fresh key pair numbered `seq`.
    pub fn generate(seq: u32, rng: &mut (impl RngCore + CryptoRng)) -> OnionKeyPair {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *bytes);
        let secret = StaticSecret::from(*bytes);
        let public = PublicKey::from(&secret).to_bytes();
        OnionKeyPair {
            seq,
            secret,
            public,
        }
    }

    /// The key's sequence number (grows with every rotation).
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// The public key.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The shared secret with a build record's ephemeral key.
    pub(super) fn agree(&self, ephemeral: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, OnionError> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*ephemeral));
        if !shared.was_contributory() {
            return Err(OnionError::LowOrderKey);
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }
}

/// A parsed, verified onion key record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnionKeyRecord {
    /// The relay.
    pub node: NodeId,
    /// The key's sequence number: a higher one replaces a lower one.
    pub seq: u32,
    /// Seconds the key may be used for, counted by each receiver from when it first held it.
    pub lifetime_s: u16,
    /// `ONION_KEY_RELAY`; other bits reserved (0), covered by the signature.
    pub flags: u8,
    /// The x25519 onion key.
    pub key: [u8; 32],
}

impl OnionKeyRecord {
    /// The signed 120-byte wire form; `identity` must be the record's node.
    pub fn sign(&self, identity: &Identity) -> Result<[u8; ONION_KEY_RECORD_LEN], OnionError> {
        if identity.node_id() != self.node {
            return Err(OnionError::WrongNode);
        }
        let mut out = [0u8; ONION_KEY_RECORD_LEN];
        out[0..16].copy_from_slice(&self.node.0);
        out[16..20].copy_from_slice(&self.seq.to_be_bytes());
        out[20..22].copy_from_slice(&self.lifetime_s.to_be_bytes());
        out[22] = self.flags;
        out[24..56].copy_from_slice(&self.key);
        let sig = identity.sign_digest(&digest(&out));
        out[SIGNED_LEN..].copy_from_slice(&sig);
        Ok(out)
    }

    /// The (node, seq) a record claims, unchecked: lets a receiver skip verifying copies it
    /// already holds. Never trust it for anything else.
    pub fn unverified_order(bytes: &[u8; ONION_KEY_RECORD_LEN]) -> (NodeId, u32) {
        (
            NodeId(arr::<NODE_ID_LEN>(&bytes[0..16])),
            u32::from_be_bytes(arr(&bytes[16..20])),
        )
    }

    /// Parse and check the signature against the node's identity (from its announcement).
    pub fn parse_and_verify(
        bytes: &[u8; ONION_KEY_RECORD_LEN],
        signer: &PublicIdentity,
    ) -> Result<OnionKeyRecord, OnionError> {
        let node = NodeId(arr::<NODE_ID_LEN>(&bytes[0..16]));
        if node != signer.node_id() {
            return Err(OnionError::WrongNode);
        }
        let vk = VerifyingKey::from_bytes(&signer.ed25519).map_err(|_| OnionError::Auth)?;
        let sig = Signature::from_bytes(&arr::<64>(&bytes[SIGNED_LEN..]));
        vk.verify_strict(&digest(bytes), &sig)
            .map_err(|_| OnionError::Auth)?;
        if bytes[23] != 0 {
            return Err(OnionError::BadShape);
        }
        Ok(OnionKeyRecord {
            node,
            seq: u32::from_be_bytes(arr(&bytes[16..20])),
            lifetime_s: u16::from_be_bytes(arr(&bytes[20..22])),
            flags: bytes[22],
            key: arr(&bytes[24..56]),
        })
    }

    /// Whether the node offers to relay.
    pub fn relays(&self) -> bool {
        self.flags & ONION_KEY_RELAY != 0
    }
}

fn digest(bytes: &[u8; ONION_KEY_RECORD_LEN]) -> [u8; 32] {
    hash_labeled::<32>(SIGN_LABEL, &[&bytes[..SIGNED_LEN]])
}
