//! OGM origin authentication with a hash chain anchored in the signed announcement.
//!
//! `H(x) = hash_labeled::<16>("veilmesh chain v1", [x])`, `x_0 = seed`, `x_{i+1} = H(x_i)`,
//! anchor = `x_L`. The OGM with seqno `q` in `[start, start + L)` (u32, wrapping) carries
//! `x_{L-1-(q-start)}`, so `H^(q-start+1)(element) = anchor`. See docs/protocol.md §3.8.

use super::hash_labeled;
use super::identity::Identity;
use crate::wire::CHAIN_ELEMENT_LEN;

/// One chain element as carried in an OGM.
pub type ChainElement = [u8; CHAIN_ELEMENT_LEN];

/// Chain length a node uses unless configured otherwise (68 min of OGMs at one per second).
/// Fuzz builds (`cfg(fuzzing)`, set by cargo-fuzz) use 256: a node is built on every run,
/// and the chain is most of its cost (docs/fuzzing.md).
pub const DEFAULT_CHAIN_LEN: u16 = if cfg!(fuzzing) { 256 } else { 4096 };
/// Longest chain accepted in an announcement (bounds signer memory and resync cost).
pub const MAX_CHAIN_LEN: u16 = 8192;
/// The signer keeps every 64th element, so any element costs at most 63 hashes.
pub const CHECKPOINT_INTERVAL: usize = 64;
const MAX_CHECKPOINTS: usize = MAX_CHAIN_LEN as usize / CHECKPOINT_INTERVAL;
/// Most hashes one `verify` call spends: a seqno jump of more than this needs
/// `verify_resync`, which the caller must rate-limit per originator.
pub const MAX_CHAIN_GAP: u32 = 128;

/// Why a chain element was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// Chain length is 0 or above `MAX_CHAIN_LEN`.
    #[error("chain length {0} outside 1..={MAX_CHAIN_LEN}")]
    BadLength(u16),
    /// The seqno is not covered by this chain.
    #[error("seqno {0} is outside the chain")]
    OutsideChain(u32),
    /// The seqno is further ahead of the last verified one than the bound allows.
    #[error("seqno jumps {0} elements ahead, more than the bound")]
    GapTooLarge(u32),
    /// The seqno is further behind the last verified one than the bound allows.
    #[error("seqno is {0} elements behind the last verified one")]
    TooOld(u32),
    /// The element does not hash to the chain: forged or corrupted.
    #[error("element does not belong to the chain")]
    Forged,
}

/// What a successful verification means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainStatus {
    /// Newer than anything verified before; the verifier advanced.
    Fresh,
    /// Exactly the last verified element again (a re-flooded copy).
    Duplicate,
    /// A genuine but older element; the verifier did not move.
    Older,
}

/// The chain step `H`.
pub fn chain_hash(x: &ChainElement) -> ChainElement {
    hash_labeled::<CHAIN_ELEMENT_LEN>(b"veilmesh chain v1", &[x])
}

fn iterate(mut x: ChainElement, n: u32) -> ChainElement {
    for _ in 0..n {
        x = chain_hash(&x);
    }
    x
}

/// Chain seed: `hash_labeled::<16>("veilmesh chain seed v1", [chain key, epoch BE, start BE])`,
/// chain key = `hash_labeled::<32>("veilmesh chain key v1", [ed25519 secret seed])`.
pub fn chain_seed(identity: &Identity, epoch: u32, start: u32) -> ChainElement {
    let key = identity.chain_key();
    hash_labeled::<CHAIN_ELEMENT_LEN>(
        b"veilmesh chain seed v1",
        &[key.as_slice(), &epoch.to_be_bytes(), &start.to_be_bytes()],
    )
}

fn check_len(len: u16) -> Result<(), ChainError> {
    if len == 0 || len > MAX_CHAIN_LEN {
        Err(ChainError::BadLength(len))
    } else {
        Ok(())
    }
}

/// The originator's side: produces the element for each seqno from ≤ 2 KiB of checkpoints.
#[derive(Clone)]
pub struct ChainSigner {
    start: u32,
    len: u16,
    anchor: ChainElement,
    checkpoints: heapless::Vec<ChainElement, MAX_CHECKPOINTS>,
}

impl core::fmt::Debug for ChainSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ChainSigner(start={}, len={})", self.start, self.len)
    }
}

impl ChainSigner {
    /// The chain for `identity`, `epoch`, starting at seqno `start`, of `len` elements.
    pub fn new(identity: &Identity, epoch: u32, start: u32, len: u16) -> Result<Self, ChainError> {
        Self::from_seed(chain_seed(identity, epoch, start), start, len)
    }

    /// A chain from an explicit seed (`len` hashes of work).
    pub fn from_seed(seed: ChainElement, start: u32, len: u16) -> Result<Self, ChainError> {
        check_len(len)?;
        let mut checkpoints = heapless::Vec::new();
        let mut x = seed;
        for i in 0..usize::from(len) {
            if i % CHECKPOINT_INTERVAL == 0 {
                checkpoints
                    .push(x)
                    .map_err(|_| ChainError::BadLength(len))?;
            }
            x = chain_hash(&x);
        }
        Ok(ChainSigner {
            start,
            len,
            anchor: x,
            checkpoints,
        })
    }

    /// The element to put in the OGM with `seqno` (at most 63 hashes).
    pub fn element(&self, seqno: u32) -> Result<ChainElement, ChainError> {
        let off = seqno.wrapping_sub(self.start);
        if off >= u32::from(self.len) {
            return Err(ChainError::OutsideChain(seqno));
        }
        let j = (u32::from(self.len) - 1 - off) as usize;
        let cp = self.checkpoints.get(j / CHECKPOINT_INTERVAL);
        let cp = cp.ok_or(ChainError::OutsideChain(seqno))?;
        Ok(iterate(*cp, (j % CHECKPOINT_INTERVAL) as u32))
    }

    /// The anchor `x_L`, published in the announcement.
    pub fn anchor(&self) -> ChainElement {
        self.anchor
    }

    /// First seqno covered.
    pub fn start(&self) -> u32 {
        self.start
    }

    /// Number of seqnos covered.
    pub fn len(&self) -> u16 {
        self.len
    }

    /// Always false: a chain has at least one element.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The seqno after the last covered one: where the next chain starts.
    pub fn next_start(&self) -> u32 {
        self.start.wrapping_add(u32::from(self.len))
    }
}

/// A receiver's view of one originator's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainVerifier {
    anchor: ChainElement,
    start: u32,
    len: u16,
    /// Hashes from `last` to the anchor: 0 while nothing is verified (`last` = anchor).
    last_k: u32,
    last: ChainElement,
}

impl ChainVerifier {
    /// A verifier for a chain from a verified announcement.
    pub fn new(anchor: ChainElement, start: u32, len: u16) -> Result<Self, ChainError> {
        check_len(len)?;
        Ok(ChainVerifier {
            anchor,
            start,
            len,
            last_k: 0,
            last: anchor,
        })
    }

    /// Verify an OGM's element at a cost of at most `MAX_CHAIN_GAP` hashes.
    pub fn verify(
        &mut self,
        seqno: u32,
        element: &ChainElement,
    ) -> Result<ChainStatus, ChainError> {
        self.verify_bounded(seqno, element, MAX_CHAIN_GAP)
    }

    /// Verify after a long silence, up to the chain length in hashes: rate-limit per originator.
    pub fn verify_resync(
        &mut self,
        seqno: u32,
        element: &ChainElement,
    ) -> Result<ChainStatus, ChainError> {
        self.verify_bounded(seqno, element, u32::from(self.len))
    }

    fn verify_bounded(
        &mut self,
        seqno: u32,
        element: &ChainElement,
        bound: u32,
    ) -> Result<ChainStatus, ChainError> {
        let off = seqno.wrapping_sub(self.start);
        if off >= u32::from(self.len) {
            return Err(ChainError::OutsideChain(seqno));
        }
        let k = off + 1;
        if k == self.last_k {
            return if *element == self.last {
                Ok(ChainStatus::Duplicate)
            } else {
                Err(ChainError::Forged)
            };
        }
        if k < self.last_k {
            let gap = self.last_k - k;
            if gap > bound {
                return Err(ChainError::TooOld(gap));
            }
            return if iterate(self.last, gap) == *element {
                Ok(ChainStatus::Older)
            } else {
                Err(ChainError::Forged)
            };
        }
        let gap = k - self.last_k;
        if gap > bound {
            return Err(ChainError::GapTooLarge(gap));
        }
        if iterate(*element, gap) != self.last {
            return Err(ChainError::Forged);
        }
        self.last_k = k;
        self.last = *element;
        Ok(ChainStatus::Fresh)
    }

    /// The newest verified seqno, if any.
    pub fn last_verified(&self) -> Option<u32> {
        (self.last_k > 0).then(|| self.start.wrapping_add(self.last_k - 1))
    }

    /// The anchor this verifier checks against.
    pub fn anchor(&self) -> ChainElement {
        self.anchor
    }

    /// Whether `seqno` is covered by this chain.
    pub fn covers(&self, seqno: u32) -> bool {
        seqno.wrapping_sub(self.start) < u32::from(self.len)
    }
}

#[cfg(test)]
mod tests;
