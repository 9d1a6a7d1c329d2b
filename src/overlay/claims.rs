//! Decentralised IPv4 conflict resolution: a bounded table of claims learned from signed
//! announcements (docs/protocol.md §5.3).
//!
//! A claim is (key, index k); its address is `pool.candidate(key, k)`, so anyone can check
//! it. Among claims on one address the lower (k, node id) wins; a loser moves to its next
//! index whose candidate no better-ranked known claim holds. Indices only grow while a
//! node runs, so every move is justified by a real claim and the mesh settles on the one
//! assignment fixed by the set of keys, whatever order announcements arrive in.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::ipv4::{Ipv4Pool, MAX_CLAIM_INDEX};
use crate::crypto::node_id;
use crate::wire::NodeId;

/// Default bound on the number of claims kept.
pub const MAX_CLAIMS: usize = 4096;

/// One node's IPv4 claim, as carried in (or derived from) its signed announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Claim {
    /// The claimant's node id.
    pub node: NodeId,
    /// The claimant's ed25519 public key.
    pub ed25519_public: [u8; 32],
    /// The claim index k, 0..=254.
    pub index: u8,
    /// The claimed address; must equal `pool.candidate(ed25519_public, index)`.
    pub addr: Ipv4Addr,
}

impl Ipv4Claim {
    /// The claim a key makes with `index` in `pool`, or an error if `index` is out of range.
    pub fn derive(
        pool: &Ipv4Pool,
        ed25519_public: &[u8; 32],
        index: u8,
    ) -> Result<Self, ClaimError> {
        if index > MAX_CLAIM_INDEX {
            return Err(ClaimError::IndexOutOfRange(index));
        }
        Ok(Ipv4Claim {
            node: node_id(ed25519_public),
            ed25519_public: *ed25519_public,
            index,
            addr: pool.candidate(ed25519_public, index),
        })
    }

    /// Checks that the node id, index and address all follow from the key.
    pub fn verify(&self, pool: &Ipv4Pool) -> Result<(), ClaimError> {
        let want = Self::derive(pool, &self.ed25519_public, self.index)?;
        if want.node != self.node {
            return Err(ClaimError::NodeIdMismatch);
        }
        if want.addr != self.addr {
            return Err(ClaimError::AddressMismatch {
                claimed: self.addr,
                expected: want.addr,
            });
        }
        Ok(())
    }

    /// The conflict rank: lower wins.
    pub fn rank(&self) -> (u8, NodeId) {
        (self.index, self.node)
    }
}

/// Why a claim was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// The claim index is above 254.
    #[error("IPv4 claim index {0} out of range 0..=254")]
    IndexOutOfRange(u8),
    /// The node id is not the hash of the key.
    #[error("IPv4 claim node id does not match its key")]
    NodeIdMismatch,
    /// The claim belongs to another node than the announcement it came with.
    #[error("IPv4 claim belongs to another node than its announcement")]
    WrongNode,
    /// The address is not the key's candidate for the claimed index.
    #[error("IPv4 claim for {claimed} does not match its key and index (expected {expected})")]
    AddressMismatch {
        /// The address the claim named.
        claimed: Ipv4Addr,
        /// The address key and index give.
        expected: Ipv4Addr,
    },
}

/// What `observe_claim` made of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimOutcome {
    /// Stored; the claim holds its address. `displaced` held it before (it must move).
    Wins {
        /// The previous holder, now beaten.
        displaced: Option<NodeId>,
    },
    /// Stored; a better-ranked known claim holds the address (the claimant must move).
    Loses {
        /// The holder.
        winner: NodeId,
    },
    /// Not stored: the claim does not follow from its key (counted).
    Rejected(ClaimError),
    /// Not stored: the table is full and the node is new (counted).
    TableFull,
}

/// Drop counters of the claim table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimCounters {
    /// Claims refused because they did not verify.
    pub rejected: u64,
    /// Claims of new nodes refused because the table was full.
    pub full_drops: u64,
}

/// The bounded table of IPv4 claims known to this node (including its own).
#[derive(Debug, Clone)]
pub struct Ipv4Claims {
    pool: Ipv4Pool,
    cap: usize,
    by_node: BTreeMap<NodeId, Ipv4Claim>,
    /// (address, index, node): the first entry for an address is its holder.
    by_addr: BTreeSet<(u32, u8, NodeId)>,
    counters: ClaimCounters,
}

impl Ipv4Claims {
    /// An empty table for `pool` holding at most `MAX_CLAIMS` claims.
    pub fn new(pool: Ipv4Pool) -> Self {
        Self::with_capacity(pool, MAX_CLAIMS)
    }

    /// An empty table holding at most `cap` claims.
    pub fn with_capacity(pool: Ipv4Pool, cap: usize) -> Self {
        Ipv4Claims {
            pool,
            cap,
            by_node: BTreeMap::new(),
            by_addr: BTreeSet::new(),
            counters: ClaimCounters::default(),
        }
    }

    /// The pool this table checks claims against.
    pub fn pool(&self) -> &Ipv4Pool {
        &self.pool
    }

    /// Number of claims stored.
    pub fn len(&self) -> usize {
        self.by_node.len()
    }

    /// Whether no claim is stored.
    pub fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }

    /// Drop counters.
    pub fn counters(&self) -> ClaimCounters {
        self.counters
    }

    /// The claim currently stored for `node`.
    pub fn claim_of(&self, node: &NodeId) -> Option<&Ipv4Claim> {
        self.by_node.get(node)
    }

    /// The address `node` holds: its claim's, if no claim that outranks it took that address.
    pub fn address_of(&self, node: &NodeId) -> Option<Ipv4Addr> {
        let claim = self.claim_of(node)?;
        (self.holder(&claim.addr).map(|c| c.node) == Some(*node)).then_some(claim.addr)
    }

    /// Verifies and stores a claim (replacing the node's previous one) and ranks it.
    ///
    /// Freshness is the announcement layer's business: the latest verified announcement's
    /// claim replaces the node's old one, whatever its index.
    pub fn observe_claim(&mut self, claim: Ipv4Claim) -> ClaimOutcome {
        if let Err(e) = claim.verify(&self.pool) {
            self.counters.rejected += 1;
            return ClaimOutcome::Rejected(e);
        }
        if !self.by_node.contains_key(&claim.node) && self.by_node.len() >= self.cap {
            self.counters.full_drops += 1;
            return ClaimOutcome::TableFull;
        }
        self.forget(&claim.node);
        let previous = self.holder(&claim.addr).map(|h| (h.rank(), h.node));
        self.by_node.insert(claim.node, claim);
        self.by_addr
            .insert((u32::from(claim.addr), claim.index, claim.node));
        match previous {
            Some((rank, winner)) if rank < claim.rank() => ClaimOutcome::Loses { winner },
            Some((_, displaced)) => ClaimOutcome::Wins {
                displaced: Some(displaced),
            },
            None => ClaimOutcome::Wins { displaced: None },
        }
    }

    /// Removes the claim of `node` (its originator expired); returns it.
    pub fn forget(&mut self, node: &NodeId) -> Option<Ipv4Claim> {
        let old = self.by_node.remove(node)?;
        self.by_addr
            .remove(&(u32::from(old.addr), old.index, old.node));
        Some(old)
    }

    /// The best-ranked known claim on `addr`: whoever the address belongs to.
    pub fn holder(&self, addr: &Ipv4Addr) -> Option<&Ipv4Claim> {
        let a = u32::from(*addr);
        let (_, _, node) = self
            .by_addr
            .range((a, 0, NodeId::default())..)
            .next()
            .filter(|(x, _, _)| *x == a)?;
        self.by_node.get(node)
    }

    /// The index this node should claim now: the lowest index from `my_index` on whose
    /// candidate no better-ranked known claim of another node holds. `Some(my_index)`
    /// means the current claim stands; `None` means every index up to 254 is taken.
    pub fn my_next_index(&self, my_public: &[u8; 32], my_index: u8) -> Option<u8> {
        let me = node_id(my_public);
        (my_index..=MAX_CLAIM_INDEX).find(|&k| {
            let a = u32::from(self.pool.candidate(my_public, k));
            !self
                .by_addr
                .range((a, 0, NodeId::default())..(a, k, me))
                .any(|(_, _, n)| *n != me)
        })
    }
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
