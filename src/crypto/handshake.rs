//! The per-neighbour link handshake: Noise `XXpsk0_25519_ChaChaPoly_BLAKE2s` (snow), with an
//! ed25519 identity proof in messages 2 and 3 and an accept policy checked on both sides.
//!
//! Flow (docs/protocol.md §3.5): `Initiator::new` writes msg 1; `Responder::respond` reads it
//! and writes msg 2; `Initiator::finish` reads msg 2 and writes msg 3; `Responder::finish`
//! reads msg 3. A message that fails to authenticate (`HandshakeError::keeps_state`) leaves
//! the state as it was, so a forged message cannot take the place of the genuine one; after
//! any other error drop the state and start over.

use core::fmt;

use ed25519_dalek::{Signature, VerifyingKey};
use snow::{Builder, HandshakeState};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::hash_labeled;
use super::identity::{link_proof_digest, Identity, PublicIdentity, LINK_PROOF_LEN};
use super::policy::AcceptPolicy;
use super::seeded::SeededResolver;

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s";
/// Noise prologue: both sides mix it in, so a different protocol version fails msg 1.
pub const PROLOGUE: &[u8] = b"veilmesh link v2";
/// Length of msg 1's payload: the initiator's handshake sequence number (u64 BE).
pub const INIT_SEQ_LEN: usize = 8;
/// Msg 1 (initiator): e (32) || encrypted handshake sequence number (8 + 16).
pub const MSG1_LEN: usize = 56;
/// Msg 2 (responder): e (32) || enc s (48) || enc identity proof (96 + 16).
pub const MSG2_LEN: usize = 192;
/// Msg 3 (initiator): enc s (48) || enc identity proof (96 + 16).
pub const MSG3_LEN: usize = 160;

/// The mesh pre-shared key mixed into the handshake at position 0. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct MeshPsk([u8; 32]);

impl MeshPsk {
    /// `hash_labeled::<32>("veilmesh psk v1", [len(name) u32 BE, name, secret or empty])`.
    pub fn derive(mesh_name: &[u8], mesh_secret: Option<&[u8]>) -> MeshPsk {
        let len = (mesh_name.len() as u32).to_be_bytes();
        let secret = mesh_secret.unwrap_or(&[]);
        MeshPsk(hash_labeled::<32>(
            b"veilmesh psk v1",
            &[&len, mesh_name, secret],
        ))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for MeshPsk {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for MeshPsk {}

impl fmt::Debug for MeshPsk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MeshPsk(redacted)")
    }
}

/// Why a handshake step failed. Drop the handshake state on any of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A message did not authenticate: the peer has another mesh PSK, or it was tampered with.
    #[error("handshake message failed to decrypt (wrong mesh PSK or tampered)")]
    Decrypt,
    /// A message has the wrong length.
    #[error("handshake message {msg} is {got} bytes, expected {expected}")]
    BadLength {
        /// Message number 1..=3.
        msg: u8,
        /// Required length.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// The output buffer cannot hold the next message.
    #[error("output buffer of {got} bytes, need {need}")]
    BufferTooSmall {
        /// Required length.
        need: usize,
        /// Length given.
        got: usize,
    },
    /// The peer's ed25519 proof does not sign its Noise static key.
    #[error("peer identity proof does not verify")]
    BadIdentityProof,
    /// The peer's key is not on our allow-list.
    #[error("peer is not on the allow-list")]
    NotAllowed,
    /// A public key in the message is invalid (e.g. a low-order point).
    #[error("invalid public key in handshake message")]
    BadKey,
    /// snow refused an operation (a bug, not a peer's fault).
    #[error("noise state error")]
    Internal,
}

impl HandshakeError {
    /// Whether the handshake state is unchanged by the failed step and can read another
    /// message: the message was refused before it authenticated (forged, cut, or from
    /// another mesh), so the genuine one may still come.
    pub fn keeps_state(&self) -> bool {
        matches!(
            self,
            HandshakeError::Decrypt | HandshakeError::BadLength { .. } | HandshakeError::BadKey
        )
    }
}

/// The result of a completed handshake. `Debug` prints only the peer.
#[derive(Clone, PartialEq, Eq)]
pub struct Established {
    /// The peer's verified public identity.
    pub peer: PublicIdentity,
    /// Key for frames we send to the peer.
    pub send_key: [u8; 32],
    /// Key for frames the peer sends us.
    pub recv_key: [u8; 32],
    /// Whether we initiated (decides who rekeys first, §3.7).
    pub initiator: bool,
    /// Noise handshake hash: a unique id of this session, usable for channel binding.
    pub handshake_hash: [u8; 32],
}

impl Drop for Established {
    fn drop(&mut self) {
        self.send_key.zeroize();
        self.recv_key.zeroize();
    }
}

impl ZeroizeOnDrop for Established {}

impl fmt::Debug for Established {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Established")
            .field("peer", &self.peer)
            .field("initiator", &self.initiator)
            .finish_non_exhaustive()
    }
}

/// Initiator waiting for msg 2.
pub struct Initiator {
    hs: HandshakeState,
    proof: [u8; LINK_PROOF_LEN],
}

/// Responder waiting for msg 3.
pub struct Responder {
    hs: HandshakeState,
}

/// Responder that read an authentic msg 1 and has not answered yet: the node checks the
/// sequence number and its budgets before it spends the key agreements of msg 2.
pub struct InitReceived {
    hs: HandshakeState,
    init_seq: u64,
}

impl Initiator {
    /// Start a handshake: writes msg 1 carrying `init_seq` (must grow with every handshake
    /// this identity starts, across restarts) into `out` and returns its length.
    pub fn new(
        identity: &Identity,
        psk: &MeshPsk,
        seed: [u8; 32],
        init_seq: u64,
        out: &mut [u8],
    ) -> Result<(Initiator, usize), HandshakeError> {
        need(out, MSG1_LEN)?;
        let mut hs = build(identity, psk, seed, true)?;
        let len = hs
            .write_message(&init_seq.to_be_bytes(), out)
            .map_err(map_snow)?;
        let proof = identity.link_proof();
        Ok((Initiator { hs, proof }, len))
    }

    /// Read msg 2, check the responder's identity and `policy`, write msg 3 into `out`.
    /// A refused responder gets no msg 3, so it never learns who we are.
    pub fn finish(
        &mut self,
        msg2: &[u8],
        out: &mut [u8],
        policy: &AcceptPolicy,
    ) -> Result<(Established, usize), HandshakeError> {
        exact(2, msg2, MSG2_LEN)?;
        need(out, MSG3_LEN)?;
        let peer = read_proof(&mut self.hs, msg2)?;
        if !policy.permits(&peer.ed25519) {
            return Err(HandshakeError::NotAllowed);
        }
        let len = self.hs.write_message(&self.proof, out).map_err(map_snow)?;
        Ok((established(&mut self.hs, peer, true)?, len))
    }
}

impl Responder {
    /// Read msg 1 (no key agreement yet: cheap). Fails with `Decrypt` if the PSKs differ.
    pub fn read_init(
        identity: &Identity,
        psk: &MeshPsk,
        seed: [u8; 32],
        msg1: &[u8],
    ) -> Result<InitReceived, HandshakeError> {
        exact(1, msg1, MSG1_LEN)?;
        let mut hs = build(identity, psk, seed, false)?;
        let mut payload = [0u8; MSG1_LEN];
        let n = hs.read_message(msg1, &mut payload).map_err(map_snow)?;
        let seq = payload
            .get(..n)
            .and_then(|p| <[u8; INIT_SEQ_LEN]>::try_from(p).ok());
        let init_seq = seq
            .map(u64::from_be_bytes)
            .ok_or(HandshakeError::BadLength {
                msg: 1,
                expected: MSG1_LEN,
                got: msg1.len(),
            })?;
        Ok(InitReceived { hs, init_seq })
    }

    /// Read msg 1 and write msg 2 into `out` (`read_init` then `InitReceived::answer`).
    pub fn respond(
        identity: &Identity,
        psk: &MeshPsk,
        seed: [u8; 32],
        msg1: &[u8],
        out: &mut [u8],
    ) -> Result<(Responder, usize), HandshakeError> {
        Self::read_init(identity, psk, seed, msg1)?.answer(identity, out)
    }

    /// Read msg 3, check the initiator's identity and `policy`.
    pub fn finish(
        &mut self,
        msg3: &[u8],
        policy: &AcceptPolicy,
    ) -> Result<Established, HandshakeError> {
        exact(3, msg3, MSG3_LEN)?;
        let peer = read_proof(&mut self.hs, msg3)?;
        if !policy.permits(&peer.ed25519) {
            return Err(HandshakeError::NotAllowed);
        }
        established(&mut self.hs, peer, false)
    }
}

impl InitReceived {
    /// The initiator's handshake sequence number (authenticated by the PSK only).
    pub fn init_seq(&self) -> u64 {
        self.init_seq
    }

    /// Write msg 2 into `out`. The policy is checked in `Responder::finish`: XX reveals the
    /// initiator only in msg 3.
    pub fn answer(
        mut self,
        identity: &Identity,
        out: &mut [u8],
    ) -> Result<(Responder, usize), HandshakeError> {
        need(out, MSG2_LEN)?;
        let len = self
            .hs
            .write_message(&identity.link_proof(), out)
            .map_err(map_snow)?;
        Ok((Responder { hs: self.hs }, len))
    }
}

fn build(
    identity: &Identity,
    psk: &MeshPsk,
    seed: [u8; 32],
    initiator: bool,
) -> Result<HandshakeState, HandshakeError> {
    let secret = identity.x25519_secret();
    let builder = seeded_builder(NOISE_PARAMS, seed)?
        .local_private_key(&secret)
        .and_then(|b| b.psk(0, psk.as_bytes()))
        .and_then(|b| b.prologue(PROLOGUE))
        .map_err(|_| HandshakeError::Internal)?;
    build_state(builder, initiator)
}

/// A Noise builder for the pattern `params` whose randomness comes from `seed`.
pub(super) fn seeded_builder(
    params: &str,
    seed: [u8; 32],
) -> Result<Builder<'static>, HandshakeError> {
    let params = params.parse().map_err(|_| HandshakeError::Internal)?;
    Ok(Builder::with_resolver(
        params,
        Box::new(SeededResolver::new(seed)),
    ))
}

/// The handshake state `builder` makes for the initiator or the responder.
pub(super) fn build_state(
    builder: Builder<'_>,
    initiator: bool,
) -> Result<HandshakeState, HandshakeError> {
    let hs = if initiator {
        builder.build_initiator()
    } else {
        builder.build_responder()
    };
    hs.map_err(|_| HandshakeError::Internal)
}

/// Decrypt a message carrying an identity proof and check it against the Noise static key.
fn read_proof(hs: &mut HandshakeState, msg: &[u8]) -> Result<PublicIdentity, HandshakeError> {
    let mut payload = [0u8; MSG2_LEN];
    let n = hs.read_message(msg, &mut payload).map_err(map_snow)?;
    let proof = payload.get(..n).filter(|p| p.len() == LINK_PROOF_LEN);
    let proof = proof.ok_or(HandshakeError::BadIdentityProof)?;
    let x25519: [u8; 32] = hs
        .get_remote_static()
        .and_then(|k| k.try_into().ok())
        .ok_or(HandshakeError::Internal)?;
    let (ed, sig) = proof.split_at(32);
    let ed25519: [u8; 32] = ed
        .try_into()
        .map_err(|_| HandshakeError::BadIdentityProof)?;
    let sig: [u8; 64] = sig
        .try_into()
        .map_err(|_| HandshakeError::BadIdentityProof)?;
    let vk = VerifyingKey::from_bytes(&ed25519).map_err(|_| HandshakeError::BadIdentityProof)?;
    vk.verify_strict(&link_proof_digest(&x25519), &Signature::from_bytes(&sig))
        .map_err(|_| HandshakeError::BadIdentityProof)?;
    Ok(PublicIdentity { ed25519, x25519 })
}

pub(super) fn established(
    hs: &mut HandshakeState,
    peer: PublicIdentity,
    initiator: bool,
) -> Result<Established, HandshakeError> {
    if !hs.is_handshake_finished() {
        return Err(HandshakeError::Internal);
    }
    let handshake_hash: [u8; 32] = hs
        .get_handshake_hash()
        .try_into()
        .map_err(|_| HandshakeError::Internal)?;
    // Noise split: the first key encrypts initiator -> responder.
    let (i_to_r, r_to_i) = hs.dangerously_get_raw_split();
    let (send_key, recv_key) = if initiator {
        (i_to_r, r_to_i)
    } else {
        (r_to_i, i_to_r)
    };
    Ok(Established {
        peer,
        send_key,
        recv_key,
        initiator,
        handshake_hash,
    })
}

pub(super) fn exact(msg: u8, bytes: &[u8], expected: usize) -> Result<(), HandshakeError> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(HandshakeError::BadLength {
            msg,
            expected,
            got: bytes.len(),
        })
    }
}

pub(super) fn need(out: &[u8], need: usize) -> Result<(), HandshakeError> {
    if out.len() >= need {
        Ok(())
    } else {
        Err(HandshakeError::BufferTooSmall {
            need,
            got: out.len(),
        })
    }
}

pub(super) fn map_snow(e: snow::Error) -> HandshakeError {
    match e {
        snow::Error::Decrypt => HandshakeError::Decrypt,
        snow::Error::Dh => HandshakeError::BadKey,
        _ => HandshakeError::Internal,
    }
}

#[cfg(test)]
mod tests;
