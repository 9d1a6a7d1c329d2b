//! The store of verified node announcements and the hash-chain verifiers they anchor.
//! It is what authenticates OGMs for routing (`routing::OgmAuth`).

use std::collections::HashMap;

use crate::crypto::{Announcement, ChainError, ChainStatus, ChainVerifier};
use crate::routing::{AuthVerdict, OgmAuth};
use crate::time::{Duration, Instant};
use crate::wire::{NodeId, OgmRepr, ANNOUNCE_LEN};

/// Most announcements held (the originator table holds as many).
pub const MAX_ANNOUNCEMENTS: usize = 4096;
/// Least time between two long (resynchronising) chain verifications for one originator.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(1);

struct Entry {
    ann: Announcement,
    bytes: [u8; ANNOUNCE_LEN],
    verifier: ChainVerifier,
    last_resync: Option<Instant>,
    /// Whether we already sent it along with an OGM of its node (pushed once per version).
    pushed: bool,
}

/// What storing an announcement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// First announcement of this node.
    New,
    /// Replaced an older one (new epoch or new chain).
    Newer,
    /// Same as the one held.
    Same,
}

/// Why an announcement was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Signature or layout wrong.
    Invalid,
    /// Older than the one held (a replay).
    Stale,
    /// The store is full.
    Full,
}

/// Verified announcements by node id.
#[derive(Default)]
pub struct Announcements {
    entries: HashMap<NodeId, Entry>,
    now: Instant,
}

impl Announcements {
    /// Verify and store an announcement.
    pub fn insert(
        &mut self,
        bytes: &[u8; ANNOUNCE_LEN],
    ) -> Result<(Stored, Announcement), Refused> {
        // Every neighbour pushes each announcement once: answer copies we hold, and older
        // versions, before paying for a signature check. A different announcement of the
        // same (epoch, chain start) is refused too: the first one verified is kept.
        let (node, epoch, chain_start) = Announcement::unverified_order(bytes);
        let held = self.entries.get(&node);
        if let Some(old) = held {
            if old.bytes == *bytes {
                return Ok((Stored::Same, old.ann));
            }
            if order(&old.ann) >= (epoch, chain_start) {
                return Err(Refused::Stale);
            }
        }
        let stored = match held {
            Some(_) => Stored::Newer,
            None if self.entries.len() >= MAX_ANNOUNCEMENTS => return Err(Refused::Full),
            None => Stored::New,
        };
        // The verified fields are the ones just read, so `node` and the order still hold.
        let ann = Announcement::parse_and_verify(bytes).map_err(|_| Refused::Invalid)?;
        let verifier = ann.chain_verifier().map_err(|_| Refused::Invalid)?;
        let entry = Entry {
            ann,
            bytes: *bytes,
            verifier,
            last_resync: None,
            pushed: false,
        };
        self.entries.insert(node, entry);
        Ok((stored, ann))
    }

    /// The announcement bytes held for `node`, to answer an AnnounceRequest.
    pub fn bytes(&self, node: &NodeId) -> Option<&[u8; ANNOUNCE_LEN]> {
        self.entries.get(node).map(|e| &e.bytes)
    }

    /// The announcement of `node` if it has not yet been pushed to our neighbours; marks it
    /// pushed. Announcements travel once with the first OGM of their node we broadcast, so
    /// the next hop can check that OGM without a request round trip.
    pub fn take_unpushed(&mut self, node: &NodeId) -> Option<[u8; ANNOUNCE_LEN]> {
        let e = self.entries.get_mut(node).filter(|e| !e.pushed)?;
        e.pushed = true;
        Some(e.bytes)
    }

    /// The announcement held for `node`.
    pub fn get(&self, node: &NodeId) -> Option<&Announcement> {
        self.entries.get(node).map(|e| &e.ann)
    }

    /// Forget `node` (its originator entry expired).
    pub fn remove(&mut self, node: &NodeId) {
        self.entries.remove(node);
    }

    /// Number held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Set the time used to rate-limit resynchronising verifications in `check`.
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }
}

/// Announcements are ordered by epoch, then by chain start.
fn order(a: &Announcement) -> (u32, u32) {
    (a.epoch, a.chain_start)
}

impl OgmAuth for Announcements {
    fn check(&mut self, ogm: &OgmRepr) -> AuthVerdict {
        let now = self.now;
        let Some(e) = self.entries.get_mut(&ogm.node) else {
            return AuthVerdict::UnknownOriginator;
        };
        if ogm.epoch > e.ann.epoch {
            return AuthVerdict::UnknownOriginator;
        }
        if ogm.epoch < e.ann.epoch || ogm.seqno < e.ann.chain_start {
            return AuthVerdict::Stale;
        }
        if !e.verifier.covers(ogm.seqno) {
            // A later chain of the same epoch: its announcement is needed.
            return AuthVerdict::UnknownOriginator;
        }
        let result = match e.verifier.verify(ogm.seqno, &ogm.chain) {
            Err(ChainError::GapTooLarge(_)) if may_resync(e.last_resync, now) => {
                e.last_resync = Some(now);
                e.verifier.verify_resync(ogm.seqno, &ogm.chain)
            }
            other => other,
        };
        match result {
            Ok(ChainStatus::Fresh | ChainStatus::Duplicate) => AuthVerdict::Valid,
            Ok(ChainStatus::Older) | Err(ChainError::TooOld(_)) => AuthVerdict::Stale,
            // A gap we may not close now is treated as unverifiable, not forged.
            Err(ChainError::GapTooLarge(_)) => AuthVerdict::Stale,
            Err(_) => AuthVerdict::Invalid,
        }
    }
}

fn may_resync(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|t| now.saturating_since(t) >= RESYNC_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{ChainSigner, Identity};
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn signed(id: &Identity, epoch: u32) -> ([u8; ANNOUNCE_LEN], ChainSigner) {
        let chain = ChainSigner::new(id, epoch, 0, 4096).unwrap();
        let ann = Announcement::for_chain(id, epoch, &chain);
        (ann.sign(id).unwrap(), chain)
    }

    fn ogm(id: &Identity, epoch: u32, seqno: u32, chain: &ChainSigner) -> OgmRepr {
        OgmRepr {
            node: id.node_id(),
            epoch,
            seqno,
            metric: 0,
            ttl: 5,
            flags: 0,
            chain: chain.element(seqno).unwrap(),
        }
    }

    #[test]
    fn verdicts_for_fresh_forged_replayed_and_unknown() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let id = Identity::generate(&mut rng);
        let (bytes, chain) = signed(&id, 1);
        let mut store = Announcements::default();
        let first = ogm(&id, 1, 3, &chain);
        assert_eq!(store.check(&first), AuthVerdict::UnknownOriginator);
        assert_eq!(store.insert(&bytes).map(|r| r.0), Ok(Stored::New));
        assert_eq!(store.insert(&bytes).map(|r| r.0), Ok(Stored::Same));
        assert_eq!(store.check(&first), AuthVerdict::Valid);
        assert_eq!(store.check(&first), AuthVerdict::Valid, "duplicate copy");
        let next = ogm(&id, 1, 4, &chain);
        let mut forged = next;
        forged.chain[0] ^= 1;
        assert_eq!(store.check(&forged), AuthVerdict::Invalid);
        assert_eq!(store.check(&next), AuthVerdict::Valid);
        assert_eq!(
            store.check(&first),
            AuthVerdict::Stale,
            "replay of an older OGM"
        );
        let mut future = next;
        future.epoch = 2;
        assert_eq!(store.check(&future), AuthVerdict::UnknownOriginator);
    }

    #[test]
    fn newer_epoch_replaces_and_older_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let id = Identity::generate(&mut rng);
        let (old, _) = signed(&id, 1);
        let (new, chain2) = signed(&id, 2);
        let mut store = Announcements::default();
        assert_eq!(store.insert(&old).map(|r| r.0), Ok(Stored::New));
        assert_eq!(store.insert(&new).map(|r| r.0), Ok(Stored::Newer));
        assert_eq!(store.insert(&old).map(|r| r.0), Err(Refused::Stale));
        assert_eq!(store.check(&ogm(&id, 2, 0, &chain2)), AuthVerdict::Valid);
        let mut tampered = new;
        tampered[70] ^= 1;
        assert_eq!(store.insert(&tampered).map(|r| r.0), Err(Refused::Invalid));
    }

    #[test]
    fn long_gap_resyncs_once_per_interval() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let id = Identity::generate(&mut rng);
        let (bytes, chain) = signed(&id, 1);
        let mut store = Announcements::default();
        store.insert(&bytes).unwrap();
        store.set_now(Instant::from_millis(10));
        assert_eq!(store.check(&ogm(&id, 1, 1000, &chain)), AuthVerdict::Valid);
        // A second long jump within the interval is not verified now.
        assert_eq!(store.check(&ogm(&id, 1, 2000, &chain)), AuthVerdict::Stale);
        store.set_now(Instant::from_millis(2000));
        assert_eq!(store.check(&ogm(&id, 1, 2000, &chain)), AuthVerdict::Valid);
    }
}
