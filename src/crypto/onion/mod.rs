//! The onion layer's cryptography (docs/protocol.md §8): relays' signed onion keys, the
//! one-pass circuit build (one x25519 per relay), and the per-cell layers — one
//! ChaCha20-Poly1305 pass per relay, a keyed nonce permutation per relay and direction, and an
//! exact replay window per circuit. Sans-IO: randomness comes from the caller.
//!
//! Every relay's view of a cell is unlinkable to every other relay's (except through timing):
//! the slot a relay reads is removed and the rest re-masked with a keystream only that relay
//! knows, the body loses or gains one AEAD layer, and the nonces are independent
//! permutations of the circuit's cell counter.

mod anon;
mod build;
mod cell;
mod hop;
mod key;
mod prp;
#[cfg(test)]
mod tests;

pub use anon::{
    anon_forward_ad, anon_iid, anon_reply_ad, AnonFlow, AnonIdentity, ExitClaim,
    ANON_FORWARD_AD_LEN, ANON_IID_LEN, ANON_REPLY_AD_LEN, CLAIM_SECRET_LEN,
};
pub use build::{
    build_ephemeral, build_key_seq, open_build, seal_build, HopOrder, HopSpec, BUILD_LEN,
    EXIT_DATA_LEN, RECORD_LEN,
};
pub use cell::{CreatorCircuit, Direction, RelayLayer, SLOTS_LEN, SLOT_LEN};
pub use hop::HopKeys;
pub use key::{OnionKeyPair, OnionKeyRecord, ONION_KEY_RECORD_LEN, ONION_KEY_RELAY};

use super::replay::ReplayError;

/// Relays in the longest circuit; cells and builds always have room for this many.
pub const MAX_HOPS: usize = 3;

/// Why an onion operation failed. Each maps to its own drop counter in the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OnionError {
    /// A buffer shorter than the layout needs (a caller bug, or a truncated message).
    #[error("onion buffer too short")]
    TooShort,
    /// A tag, a nonce's redundancy or a signature did not check: tampered, or not for us.
    #[error("onion authentication failed")]
    Auth,
    /// A cell counter seen before, or older than the window.
    #[error("onion cell replayed: {0}")]
    Replay(ReplayError),
    /// A peer's x25519 key gives an all-zero shared secret (a low-order point).
    #[error("onion key agreement with a low-order point")]
    LowOrderKey,
    /// A circuit with no hops or more than `MAX_HOPS`, or a hop index out of range.
    #[error("onion circuit shape invalid")]
    BadShape,
    /// The circuit's cell counter ran out (2^64 cells: never in practice).
    #[error("onion cell counter exhausted")]
    CounterExhausted,
    /// A signed record's node id is not the signer's.
    #[error("onion key record names another node")]
    WrongNode,
}

// The wire layer sizes the messages that carry these; they must agree.
const _: () = assert!(ONION_KEY_RECORD_LEN == crate::wire::ONION_KEY_LEN);
const _: () = assert!(BUILD_LEN == crate::wire::BUILD_RECORDS_LEN);
const _: () = assert!(SLOTS_LEN < crate::wire::CELL_REGION_LEN);
