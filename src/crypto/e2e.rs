//! End-to-end sessions between two nodes' static keys (direct mode, docs/protocol.md §7):
//! Noise `KK_25519_ChaChaPoly_BLAKE2s`. Each side already holds the other's x25519 key from
//! its signed announcement, so message 1 authenticates the initiator to the responder (ss)
//! and message 2 completes forward-secret transport keys (ee, se): one round trip, and no
//! identity on the wire. Relays between the two see only these messages and ciphertext.
//!
//! Flow: `E2eInitiator::new` writes msg 1; `E2eInitReceived::read` reads it (two key
//! agreements) so the node can check the sequence number before `answer` writes msg 2 and
//! returns the responder's keys; `E2eInitiator::finish` reads msg 2.

use snow::HandshakeState;

use super::handshake::{
    build_state, established, exact, map_snow, need, seeded_builder, Established, HandshakeError,
};
use super::identity::{Identity, PublicIdentity};
use crate::wire::NodeId;

/// The Noise protocol name.
pub const E2E_NOISE_PARAMS: &str = "Noise_KK_25519_ChaChaPoly_BLAKE2s";
/// Prologue label; both node ids (initiator first) follow it.
pub const E2E_PROLOGUE_LABEL: &[u8] = b"veilmesh e2e v1";
pub use crate::wire::e2e::{E2E_MSG1_LEN, E2E_MSG2_LEN};
const INIT_SEQ_LEN: usize = 8;

/// Which end of an end-to-end session a node is, with the two node ids in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E2eEnds {
    /// The node that sent msg 1.
    pub initiator: NodeId,
    /// The node msg 1 was for.
    pub responder: NodeId,
}

/// An initiator waiting for msg 2.
pub struct E2eInitiator {
    hs: HandshakeState,
    peer: PublicIdentity,
}

/// A responder that read an authentic msg 1 and has not answered yet.
pub struct E2eInitReceived {
    hs: HandshakeState,
    peer: PublicIdentity,
    init_seq: u64,
}

impl E2eInitiator {
    /// Start a session with `peer` (its key from its announcement): writes msg 1 carrying
    /// `init_seq` (must grow with every session this node starts, across restarts) into
    /// `out` and returns its length.
    pub fn new(
        identity: &Identity,
        peer: &PublicIdentity,
        ends: E2eEnds,
        seed: [u8; 32],
        init_seq: u64,
        out: &mut [u8],
    ) -> Result<(E2eInitiator, usize), HandshakeError> {
        need(out, E2E_MSG1_LEN)?;
        let mut hs = build(identity, peer, ends, seed, true)?;
        let len = hs
            .write_message(&init_seq.to_be_bytes(), out)
            .map_err(map_snow)?;
        Ok((E2eInitiator { hs, peer: *peer }, len))
    }

    /// Read msg 2: the session's keys. A message that fails to authenticate leaves the
    /// state as it was (`HandshakeError::keeps_state`), so the genuine one still completes.
    pub fn finish(&mut self, msg2: &[u8]) -> Result<Established, HandshakeError> {
        exact(2, msg2, E2E_MSG2_LEN)?;
        let mut payload = [0u8; E2E_MSG2_LEN];
        let n = self.hs.read_message(msg2, &mut payload).map_err(map_snow)?;
        if n != 0 {
            return Err(HandshakeError::BadLength {
                msg: 2,
                expected: E2E_MSG2_LEN,
                got: msg2.len(),
            });
        }
        established(&mut self.hs, self.peer, true)
    }
}

impl E2eInitReceived {
    /// Read msg 1 from `peer` (its key from its announcement).
    pub fn read(
        identity: &Identity,
        peer: &PublicIdentity,
        ends: E2eEnds,
        seed: [u8; 32],
        msg1: &[u8],
    ) -> Result<E2eInitReceived, HandshakeError> {
        exact(1, msg1, E2E_MSG1_LEN)?;
        let mut hs = build(identity, peer, ends, seed, false)?;
        let mut payload = [0u8; E2E_MSG1_LEN];
        let n = hs.read_message(msg1, &mut payload).map_err(map_snow)?;
        let seq = payload
            .get(..n)
            .and_then(|p| <[u8; INIT_SEQ_LEN]>::try_from(p).ok())
            .ok_or(HandshakeError::BadLength {
                msg: 1,
                expected: E2E_MSG1_LEN,
                got: msg1.len(),
            })?;
        Ok(E2eInitReceived {
            hs,
            peer: *peer,
            init_seq: u64::from_be_bytes(seq),
        })
    }

    /// The initiator's sequence number (authenticated by its static key).
    pub fn init_seq(&self) -> u64 {
        self.init_seq
    }

    /// Write msg 2 into `out`: the responder's session keys and the message length.
    pub fn answer(mut self, out: &mut [u8]) -> Result<(Established, usize), HandshakeError> {
        need(out, E2E_MSG2_LEN)?;
        let len = self.hs.write_message(&[], out).map_err(map_snow)?;
        Ok((established(&mut self.hs, self.peer, false)?, len))
    }
}

fn build(
    identity: &Identity,
    peer: &PublicIdentity,
    ends: E2eEnds,
    seed: [u8; 32],
    initiator: bool,
) -> Result<HandshakeState, HandshakeError> {
    let mut prologue = [0u8; E2E_PROLOGUE_LABEL.len() + 32];
    let (label, ids) = prologue.split_at_mut(E2E_PROLOGUE_LABEL.len());
    label.copy_from_slice(E2E_PROLOGUE_LABEL);
    let (first, second) = ids.split_at_mut(16);
    first.copy_from_slice(&ends.initiator.0);
    second.copy_from_slice(&ends.responder.0);
    let secret = identity.x25519_secret();
    let builder = seeded_builder(E2E_NOISE_PARAMS, seed)?
        .local_private_key(&secret)
        .and_then(|b| b.remote_public_key(&peer.x25519))
        .and_then(|b| b.prologue(&prologue))
        .map_err(|_| HandshakeError::Internal)?;
    build_state(builder, initiator)
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    fn identity(seed: u64) -> Identity {
        Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed))
    }

    fn ends(a: &Identity, b: &Identity) -> E2eEnds {
        E2eEnds {
            initiator: a.node_id(),
            responder: b.node_id(),
        }
    }

    #[test]
    fn two_messages_give_matching_keys_and_carry_the_sequence_number() {
        let (a, b) = (identity(1), identity(2));
        let mut msg1 = [0u8; E2E_MSG1_LEN];
        let (mut init, n1) =
            E2eInitiator::new(&a, &b.public(), ends(&a, &b), [1; 32], 77, &mut msg1).unwrap();
        assert_eq!(n1, E2E_MSG1_LEN);
        let got = E2eInitReceived::read(&b, &a.public(), ends(&a, &b), [2; 32], &msg1).unwrap();
        assert_eq!(got.init_seq(), 77);
        let mut msg2 = [0u8; E2E_MSG2_LEN];
        let (resp, n2) = got.answer(&mut msg2).unwrap();
        assert_eq!(n2, E2E_MSG2_LEN);
        let est = init.finish(&msg2).unwrap();
        assert_eq!(est.send_key, resp.recv_key);
        assert_eq!(est.recv_key, resp.send_key);
        assert_ne!(est.send_key, est.recv_key);
        assert_eq!(est.handshake_hash, resp.handshake_hash);
        assert_eq!(est.peer, b.public());
        assert_eq!(resp.peer, a.public());
    }

    #[test]
    fn a_third_node_can_neither_read_nor_forge_nor_redirect_message_one() {
        let (a, b, m) = (identity(1), identity(2), identity(3));
        let mut msg1 = [0u8; E2E_MSG1_LEN];
        E2eInitiator::new(&a, &b.public(), ends(&a, &b), [1; 32], 5, &mut msg1).unwrap();
        // m is not the responder: it cannot read it.
        let read = E2eInitReceived::read(&m, &a.public(), ends(&a, &m), [2; 32], &msg1);
        assert_eq!(read.err(), Some(HandshakeError::Decrypt));
        // b will not take it as coming from m.
        let read = E2eInitReceived::read(&b, &m.public(), ends(&m, &b), [2; 32], &msg1);
        assert_eq!(read.err(), Some(HandshakeError::Decrypt));
        // m's own msg 1 claiming to be a (its prologue names a) fails at b: no ss with a.
        let mut forged = [0u8; E2E_MSG1_LEN];
        E2eInitiator::new(&m, &b.public(), ends(&a, &b), [3; 32], 9, &mut forged).unwrap();
        let read = E2eInitReceived::read(&b, &a.public(), ends(&a, &b), [2; 32], &forged);
        assert_eq!(read.err(), Some(HandshakeError::Decrypt));
    }

    #[test]
    fn a_forged_message_two_leaves_the_initiator_waiting_for_the_genuine_one() {
        let (a, b) = (identity(1), identity(2));
        let mut msg1 = [0u8; E2E_MSG1_LEN];
        let (mut init, _) =
            E2eInitiator::new(&a, &b.public(), ends(&a, &b), [1; 32], 1, &mut msg1).unwrap();
        let mut msg2 = [0u8; E2E_MSG2_LEN];
        let got = E2eInitReceived::read(&b, &a.public(), ends(&a, &b), [2; 32], &msg1).unwrap();
        let (resp, _) = got.answer(&mut msg2).unwrap();
        let mut bad = msg2;
        bad[40] ^= 1;
        let err = init.finish(&bad).unwrap_err();
        assert!(err.keeps_state(), "{err:?}");
        assert_eq!(
            init.finish(&msg2[..47]).err().map(|e| e.keeps_state()),
            Some(true)
        );
        assert_eq!(init.finish(&msg2).unwrap().send_key, resp.recv_key);
    }
}
