//! The keys one relay shares with a circuit's creator, all derived from the build's single
//! key agreement by labelled BLAKE2s (docs/protocol.md §8.3).

use core::fmt;

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use veil_cipher::Cipher;
use zeroize::Zeroizing;

use super::prp::{NoncePrp, NONCE_LEN};
use crate::crypto::hash_labeled;

/// Labels of the keys derived from one build record's shared secret.
const RECORD_LABEL: &[u8] = b"veilmesh onion record v1";
const SHIFT_LABEL: &[u8] = b"veilmesh onion shift v1";
const FWD_LABEL: &[u8] = b"veilmesh onion fwd v1";
const BWD_LABEL: &[u8] = b"veilmesh onion bwd v1";
const FWD_HEADER_LABEL: &[u8] = b"veilmesh onion fwd header v1";
const BWD_HEADER_LABEL: &[u8] = b"veilmesh onion bwd header v1";
const FWD_NONCE_LABEL: &[u8] = b"veilmesh onion fwd nonce v1";
const BWD_NONCE_LABEL: &[u8] = b"veilmesh onion bwd nonce v1";

/// One relay's per-circuit keys: the AEAD and header keystream of each direction and the
/// nonce permutations. `Debug` prints nothing secret; every key is wiped when dropped. The
/// AEAD keys are kept raw (32 bytes) and expanded per cell, which costs next to nothing for
/// ChaCha20-Poly1305: an expanded key holds ~600 bytes, and a relay holds a thousand
/// circuits.
pub struct HopKeys {
    pub(super) fwd: Zeroizing<[u8; 32]>,
    pub(super) bwd: Zeroizing<[u8; 32]>,
    pub(super) fwd_header: Zeroizing<[u8; 32]>,
    pub(super) bwd_header: Zeroizing<[u8; 32]>,
    pub(super) fwd_nonce: NoncePrp,
    pub(super) bwd_nonce: NoncePrp,
}

impl fmt::Debug for HopKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HopKeys(..)")
    }
}

impl HopKeys {
    /// The forward layer's AEAD.
    pub(super) fn fwd_cipher(&self) -> Cipher {
        Cipher::new(&self.fwd)
    }

    /// The backward layer's AEAD.
    pub(super) fn bwd_cipher(&self) -> Cipher {
        Cipher::new(&self.bwd)
    }
}

/// The keys that only open and unwrap the build record itself.
pub(super) struct RecordKeys {
    pub(super) record: Cipher,
    pub(super) shift: Zeroizing<[u8; 32]>,
}

/// Everything one key agreement gives: the record's keys and the circuit's.
pub(super) fn derive(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    onion_public: &[u8; 32],
) -> (RecordKeys, HopKeys) {
    let k = |label: &[u8]| {
        Zeroizing::new(hash_labeled::<32>(
            label,
            &[shared, ephemeral, onion_public],
        ))
    };
    let record = RecordKeys {
        record: Cipher::new(&k(RECORD_LABEL)),
        shift: k(SHIFT_LABEL),
    };
    let hop = HopKeys {
        fwd: k(FWD_LABEL),
        bwd: k(BWD_LABEL),
        fwd_header: k(FWD_HEADER_LABEL),
        bwd_header: k(BWD_HEADER_LABEL),
        fwd_nonce: NoncePrp::new(&k(FWD_NONCE_LABEL)),
        bwd_nonce: NoncePrp::new(&k(BWD_NONCE_LABEL)),
    };
    (record, hop)
}

/// XOR the ChaCha20 keystream of (`key`, `nonce`), from block 0, into `buf`.
pub(super) fn mask(key: &[u8; 32], nonce: &[u8; NONCE_LEN], buf: &mut [u8]) {
    let mut stream = ChaCha20::new(key.into(), nonce.into());
    stream.apply_keystream(buf);
}
