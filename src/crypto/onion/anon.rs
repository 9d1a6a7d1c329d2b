//! Anonymous flows (docs/protocol.md §8.9): a sender's ephemeral address and the end-to-end
//! keys it shares with each destination. The address's interface id is a hash of an x25519
//! key only the sender holds; packets to a destination are sealed under keys from one
//! agreement between that key and the destination's onion key (Noise N's `es`), so the
//! destination can answer without learning who sent, and proves to itself that whoever sent
//! holds the address's key. The claim secret lets the sender rebind its address at the same
//! exit after a repair, and no one else.

use core::fmt;

use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::build::EXIT_DATA_LEN;
use super::{OnionError, OnionKeyPair};
use crate::crypto::aead::{RecvKey, SendKey};
use crate::crypto::{arr, hash_labeled};
use crate::wire::{NodeId, NODE_ID_LEN};

/// Bytes of an ephemeral address's interface id.
pub const ANON_IID_LEN: usize = 8;
/// Bytes of the secret that claims an interface id at an exit.
pub const CLAIM_SECRET_LEN: usize = 16;
/// Length of the associated data of a forward (sender to destination) packet.
pub const ANON_FORWARD_AD_LEN: usize = 2 * NODE_ID_LEN + 4 + 32;
/// Length of the associated data of a reply.
pub const ANON_REPLY_AD_LEN: usize = 2 * NODE_ID_LEN + ANON_IID_LEN;

const IID_LABEL: &[u8] = b"veilmesh anonymous iid v1";
const FWD_LABEL: &[u8] = b"veilmesh anonymous fwd v1";
const BWD_LABEL: &[u8] = b"veilmesh anonymous bwd v1";

/// The interface id of the ephemeral address of the holder of `public`.
pub fn anon_iid(public: &[u8; 32]) -> [u8; ANON_IID_LEN] {
    hash_labeled::<ANON_IID_LEN>(IID_LABEL, &[public])
}

/// A sender's ephemeral address: its x25519 key and claim secret. `Debug` shows the
/// interface id only; the secrets are wiped when dropped.
pub struct AnonIdentity {
    secret: StaticSecret,
    public: [u8; 32],
    claim: Zeroizing<[u8; CLAIM_SECRET_LEN]>,
}

impl fmt::Debug for AnonIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AnonIdentity(iid={})",
            crate::hexstr::encode(&self.iid())
        )
    }
}

/// An interface id claimed at an exit, as the build's exit data carries it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ExitClaim {
    /// The interface id.
    pub iid: [u8; ANON_IID_LEN],
    /// The secret a later build must repeat to take the id over.
    pub secret: [u8; CLAIM_SECRET_LEN],
}

impl fmt::Debug for ExitClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExitClaim(iid={})", crate::hexstr::encode(&self.iid))
    }
}

impl ExitClaim {
    /// The claim in a build's exit data (`iid | secret | 0 0`), or `None` when the build
    /// claims nothing (all zero) or the reserved bytes are not zero.
    pub fn parse(exit_data: &[u8; EXIT_DATA_LEN]) -> Option<ExitClaim> {
        let (iid, rest) = exit_data.split_at(ANON_IID_LEN);
        let (secret, reserved) = rest.split_at(CLAIM_SECRET_LEN);
        let claim = ExitClaim {
            iid: arr(iid),
            secret: arr(secret),
        };
        let claims = claim.iid != [0; ANON_IID_LEN];
        (claims && reserved.iter().all(|&b| b == 0)).then_some(claim)
    }
}

impl AnonIdentity {
    /// A fresh ephemeral address.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> AnonIdentity {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *bytes);
        let secret = StaticSecret::from(*bytes);
        let mut claim = Zeroizing::new([0u8; CLAIM_SECRET_LEN]);
        rng.fill_bytes(&mut *claim);
        AnonIdentity {
            public: PublicKey::from(&secret).to_bytes(),
            secret,
            claim,
        }
    }

    /// The x25519 public key every forward packet carries.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The interface id of the address.
    pub fn iid(&self) -> [u8; ANON_IID_LEN] {
        anon_iid(&self.public)
    }

    /// The exit data that claims the address at the circuit's exit.
    pub fn exit_data(&self) -> [u8; EXIT_DATA_LEN] {
        let mut out = [0u8; EXIT_DATA_LEN];
        out[..ANON_IID_LEN].copy_from_slice(&self.iid());
        out[ANON_IID_LEN..ANON_IID_LEN + CLAIM_SECRET_LEN].copy_from_slice(&*self.claim);
        out
    }

    /// The flow to the holder of onion key `dst_key` (one x25519): send forward, receive
    /// replies.
    pub fn flow(&self, dst_key: &[u8; 32]) -> Result<AnonFlow, OnionError> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*dst_key));
        if !shared.was_contributory() {
            return Err(OnionError::LowOrderKey);
        }
        let (fwd, bwd) = flow_keys(shared.as_bytes(), &self.public, dst_key);
        Ok(AnonFlow {
            send: SendKey::new(&fwd),
            recv: RecvKey::new(&bwd),
        })
    }
}

impl OnionKeyPair {
    /// The destination's side of the flow from ephemeral key `sender` (one x25519): receive
    /// forward packets, send replies.
    pub fn anon_flow(&self, sender: &[u8; 32]) -> Result<AnonFlow, OnionError> {
        let shared = self.agree(sender)?;
        let (fwd, bwd) = flow_keys(&shared, sender, &self.public());
        Ok(AnonFlow {
            send: SendKey::new(&bwd),
            recv: RecvKey::new(&fwd),
        })
    }
}

fn flow_keys(
    shared: &[u8; 32],
    sender: &[u8; 32],
    dst_key: &[u8; 32],
) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let k = |label| Zeroizing::new(hash_labeled::<32>(label, &[shared, sender, dst_key]));
    (k(FWD_LABEL), k(BWD_LABEL))
}

/// One end of an anonymous flow: the key it seals with and the key (with replay window) it
/// opens with. `Debug` hides both.
pub struct AnonFlow {
    /// Seals what this end sends.
    pub send: SendKey,
    /// Opens what the other end sends.
    pub recv: RecvKey,
}

impl fmt::Debug for AnonFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnonFlow(sent={})", self.send.sent())
    }
}

/// The associated data of a forward packet: the exit that passes it on, the destination,
/// the onion key's sequence number and the sender's key — so an exit cannot pose as another
/// and a packet cannot be turned toward another key.
pub fn anon_forward_ad(
    exit: &NodeId,
    dst: &NodeId,
    key_seq: u32,
    sender: &[u8; 32],
) -> [u8; ANON_FORWARD_AD_LEN] {
    let mut ad = [0u8; ANON_FORWARD_AD_LEN];
    ad[..NODE_ID_LEN].copy_from_slice(&exit.0);
    ad[NODE_ID_LEN..2 * NODE_ID_LEN].copy_from_slice(&dst.0);
    ad[2 * NODE_ID_LEN..2 * NODE_ID_LEN + 4].copy_from_slice(&key_seq.to_be_bytes());
    ad[2 * NODE_ID_LEN + 4..].copy_from_slice(sender);
    ad
}

/// The associated data of a reply: the destination that answers, the exit it goes through,
/// the interface id it is for.
pub fn anon_reply_ad(
    dst: &NodeId,
    exit: &NodeId,
    iid: &[u8; ANON_IID_LEN],
) -> [u8; ANON_REPLY_AD_LEN] {
    let mut ad = [0u8; ANON_REPLY_AD_LEN];
    ad[..NODE_ID_LEN].copy_from_slice(&dst.0);
    ad[NODE_ID_LEN..2 * NODE_ID_LEN].copy_from_slice(&exit.0);
    ad[2 * NODE_ID_LEN..].copy_from_slice(iid);
    ad
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn both_ends_derive_one_flow_and_a_changed_ad_or_key_fails() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let sender = AnonIdentity::generate(&mut rng);
        let dst_key = OnionKeyPair::generate(7, &mut rng);
        let mut out = sender.flow(&dst_key.public()).unwrap();
        let mut back = dst_key.anon_flow(&sender.public()).unwrap();
        let ad = anon_forward_ad(&NodeId([1; 16]), &NodeId([2; 16]), 7, &sender.public());
        let mut packet = *b"an ip packet";
        let n = out.send.next_counter().unwrap();
        let tag = out.send.seal_in_place(n, &ad, &mut packet).unwrap();
        let mut wrong = packet;
        let mut bad_ad = ad;
        bad_ad[0] ^= 1;
        assert!(back
            .recv
            .open_in_place(n, &bad_ad, &mut wrong, &tag)
            .is_err());
        back.recv.open_in_place(n, &ad, &mut packet, &tag).unwrap();
        assert_eq!(&packet, b"an ip packet");
        assert!(back.recv.open_in_place(n, &ad, &mut packet, &tag).is_err());
        // The reply direction has its own key: a forward packet does not open as a reply.
        let mut reply = *b"reply";
        let rad = anon_reply_ad(&NodeId([2; 16]), &NodeId([1; 16]), &sender.iid());
        let tag = back.send.seal_in_place(0, &rad, &mut reply).unwrap();
        let mut copy = reply;
        assert!(back.recv.open_in_place(0, &rad, &mut copy, &tag).is_err());
        out.recv.open_in_place(0, &rad, &mut reply, &tag).unwrap();
        assert_eq!(&reply, b"reply");
        let other = OnionKeyPair::generate(8, &mut rng);
        let mut stranger = other.anon_flow(&sender.public()).unwrap();
        let mut p = *b"x";
        let t = out.send.seal_in_place(1, &ad, &mut p).unwrap();
        assert!(stranger.recv.open_in_place(1, &ad, &mut p, &t).is_err());
    }

    #[test]
    fn claims_round_trip_and_zero_or_dirty_exit_data_claims_nothing() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let id = AnonIdentity::generate(&mut rng);
        let data = id.exit_data();
        let claim = ExitClaim::parse(&data).unwrap();
        assert_eq!(claim.iid, id.iid());
        assert_eq!(claim.iid, anon_iid(&id.public()));
        assert_eq!(ExitClaim::parse(&[0; EXIT_DATA_LEN]), None);
        let mut dirty = data;
        dirty[EXIT_DATA_LEN - 1] = 1;
        assert_eq!(ExitClaim::parse(&dirty), None);
        assert!(!format!("{id:?}{claim:?}").contains(&hex::encode(claim.secret)));
    }

    #[test]
    fn a_low_order_destination_key_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let id = AnonIdentity::generate(&mut rng);
        assert_eq!(id.flow(&[0; 32]).err(), Some(OnionError::LowOrderKey));
    }
}
