//! The store of verified node announcements and the hash-chain verifiers they anchor.
//! It is what authenticates OGMs for routing (`routing::OgmAuth`).
//!
//! An announcement stays on probation until an OGM it anchors verifies: probation entries
//! are capped per neighbour that sent them and expire, so a member pushing thousands of
//! self-made identities fills only its own share, for a while (docs/protocol.md §6.2).

use std::collections::BTreeMap;

use crate::crypto::{Announcement, ChainError, ChainStatus, ChainVerifier};
use crate::routing::seqno::TokenBucket;
use crate::routing::{AuthVerdict, OgmAuth};
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, NodeId, OgmRepr, ANNOUNCE_LEN};

use crate::node::IfaceId;

/// Most announcements held (the originator table holds as many).
pub const MAX_ANNOUNCEMENTS: usize = 4096;
/// Least time between two long (resynchronising) chain verifications for one originator.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Most announcements on probation from one neighbour; the oldest makes room.
pub const MAX_PROBATION_PER_SOURCE: usize = 64;
/// An announcement none of whose OGMs verified within this time is dropped.
pub const PROBATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Long chain verifications one neighbour's OGMs may cost per second (and burst).
pub const RESYNCS_PER_SOURCE_PER_SEC: u32 = 4;
/// Neighbours whose resync budgets are tracked; the least recently used makes room.
const RESYNC_SOURCES: usize = 64;

/// The neighbour an announcement came from; `None` for our own.
pub type Source = Option<(IfaceId, MacAddr)>;

struct Entry {
    ann: Announcement,
    bytes: [u8; ANNOUNCE_LEN],
    verifier: ChainVerifier,
    last_resync: Option<Instant>,
    /// Whether we already sent it along with an OGM of its node (pushed once per version).
    pushed: bool,
    /// Who sent it to us.
    source: Source,
    /// No OGM it anchors has verified yet.
    probation: bool,
    /// When it was stored.
    since: Instant,
}

/// What storing an announcement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// First announcement of this node.
    New,
    /// Replaced an older one (new epoch or new chain).
    Newer,
    /// Replaced a newer one whose node is unreachable: it restarted with its state lost
    /// (its epoch went back). Only its key can sign it.
    Restarted,
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
    /// New, but the sender is over its budget of signature checks.
    RateLimited,
}

/// What `Announcements::insert` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    /// How it was stored.
    pub stored: Stored,
    /// The announcement held now.
    pub ann: Announcement,
    /// A node whose announcement on probation made room for it (forget its addresses).
    pub evicted: Option<NodeId>,
}

/// Verified announcements by node id (ordered: iteration does not depend on a hasher).
#[derive(Default)]
pub struct Announcements {
    entries: BTreeMap<NodeId, Entry>,
    now: Instant,
    /// The neighbour the OGM being checked came from.
    source: Source,
    /// Resync budgets per neighbour, with when each was last used.
    resync_budgets: heapless::Vec<(Source, TokenBucket, Instant), RESYNC_SOURCES>,
}

impl Announcements {
    /// Verify and store an announcement from `source`. One older than the one held is
    /// stale, unless `holder_reachable` is false: then its node lost its state.
    pub fn insert(
        &mut self,
        bytes: &[u8; ANNOUNCE_LEN],
        source: Source,
        holder_reachable: bool,
        may_verify: impl FnOnce() -> bool,
    ) -> Result<Inserted, Refused> {
        // Every neighbour pushes each announcement once: answer copies we hold, and older
        // versions, before paying for a signature check. A different announcement of the
        // same (epoch, chain start) is refused too: the first one verified is kept.
        let (node, epoch, chain_start) = Announcement::unverified_order(bytes);
        let held = self.entries.get(&node);
        let mut stored = Stored::New;
        if let Some(old) = held {
            if old.bytes == *bytes {
                let ann = old.ann;
                return Ok(Inserted {
                    stored: Stored::Same,
                    ann,
                    evicted: None,
                });
            }
            stored = if order(&old.ann) < (epoch, chain_start) {
                Stored::Newer
            } else if !holder_reachable && order(&old.ann) != (epoch, chain_start) {
                Stored::Restarted
            } else {
                return Err(Refused::Stale);
            };
        }
        let victim = match stored {
            Stored::New => Some(self.make_room(source)?).flatten(),
            _ => None,
        };
        if !may_verify() {
            return Err(Refused::RateLimited);
        }
        // The verified fields are the ones just read, so `node` and the order still hold.
        let ann = Announcement::parse_and_verify(bytes).map_err(|_| Refused::Invalid)?;
        let verifier = ann.chain_verifier().map_err(|_| Refused::Invalid)?;
        if let Some(v) = victim {
            self.entries.remove(&v);
        }
        // A newer version of an established node stays established.
        let probation = source.is_some()
            && (stored != Stored::Newer || held_on_probation(self.entries.get(&node)));
        let entry = Entry {
            ann,
            bytes: *bytes,
            verifier,
            last_resync: None,
            pushed: false,
            source,
            probation,
            since: self.now,
        };
        self.entries.insert(node, entry);
        Ok(Inserted {
            stored,
            ann,
            evicted: victim,
        })
    }

    /// Which entry must go for a new one from `source`: the source's oldest on probation
    /// when it is at its share, else the oldest on probation when the store is full.
    fn make_room(&self, source: Source) -> Result<Option<NodeId>, Refused> {
        let on_probation = || self.entries.iter().filter(|(_, e)| e.probation);
        let oldest = |it: &mut dyn Iterator<Item = (&NodeId, &Entry)>| {
            it.min_by_key(|(_, e)| e.since).map(|(n, _)| *n)
        };
        let mine = on_probation().filter(|(_, e)| e.source == source).count();
        if source.is_some() && mine >= MAX_PROBATION_PER_SOURCE {
            return Ok(oldest(
                &mut on_probation().filter(|(_, e)| e.source == source),
            ));
        }
        if self.entries.len() < MAX_ANNOUNCEMENTS {
            return Ok(None);
        }
        oldest(&mut on_probation()).map(Some).ok_or(Refused::Full)
    }

    /// Drop announcements on probation for longer than `PROBATION_TIMEOUT`, and the
    /// others whose node `known` no longer holds (routing forgot its originator); never
    /// our own. Returns the nodes dropped.
    pub fn expire(&mut self, known: impl Fn(&NodeId) -> bool) -> Vec<NodeId> {
        let now = self.now;
        let gone: Vec<NodeId> = self
            .entries
            .iter()
            .filter(|(node, e)| {
                e.source.is_some()
                    && if e.probation {
                        now.saturating_since(e.since) >= PROBATION_TIMEOUT
                    } else {
                        !known(node)
                    }
            })
            .map(|(node, _)| *node)
            .collect();
        for node in &gone {
            self.entries.remove(node);
        }
        gone
    }

    /// When the oldest announcement on probation runs out of time.
    pub fn next_probation_end(&self) -> Option<Instant> {
        let on_probation = self.entries.values().filter(|e| e.probation);
        on_probation.map(|e| e.since + PROBATION_TIMEOUT).min()
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

    /// Set the neighbour the OGMs checked next came from (whose resync budget they spend).
    pub fn set_source(&mut self, source: Source) {
        self.source = source;
    }

    /// Take one long verification from the current source's budget.
    fn resync_allowed(&mut self) -> bool {
        let (now, source) = (self.now, self.source);
        if let Some(b) = self.resync_budgets.iter_mut().find(|b| b.0 == source) {
            b.2 = now;
            return b.1.allow(now);
        }
        let mut bucket =
            TokenBucket::new(now, RESYNCS_PER_SOURCE_PER_SEC, RESYNCS_PER_SOURCE_PER_SEC);
        let allowed = bucket.allow(now);
        let entry = (source, bucket, now);
        if let Err(entry) = self.resync_budgets.push(entry) {
            if let Some(lru) = self.resync_budgets.iter_mut().min_by_key(|b| b.2) {
                *lru = entry;
            }
        }
        allowed
    }
}

fn held_on_probation(e: Option<&Entry>) -> bool {
    e.is_some_and(|e| e.probation)
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
        if ogm.epoch < e.ann.epoch {
            return AuthVerdict::OlderEpoch;
        }
        if ogm.seqno < e.ann.chain_start {
            return AuthVerdict::Stale;
        }
        if !e.verifier.covers(ogm.seqno) {
            // A later chain of the same epoch: its announcement is needed.
            return AuthVerdict::UnknownOriginator;
        }
        let mut result = e.verifier.verify(ogm.seqno, &ogm.chain);
        // A long walk is paid by the sending neighbour's budget; only a success holds the
        // originator's next one back, so a forged far-ahead OGM cannot block the genuine.
        let far = matches!(result, Err(ChainError::GapTooLarge(_)));
        if far && may_resync(e.last_resync, now) && self.resync_allowed() {
            let Some(e) = self.entries.get_mut(&ogm.node) else {
                return AuthVerdict::UnknownOriginator;
            };
            result = e.verifier.verify_resync(ogm.seqno, &ogm.chain);
            if result.is_ok() {
                e.last_resync = Some(now);
            }
        }
        let Some(e) = self.entries.get_mut(&ogm.node) else {
            return AuthVerdict::UnknownOriginator;
        };
        match result {
            Ok(ChainStatus::Fresh | ChainStatus::Duplicate) => {
                e.probation = false;
                AuthVerdict::Valid
            }
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

    const SRC: Source = Some((IfaceId(0), MacAddr([2, 0, 0, 0, 0, 1])));

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
        assert_eq!(
            store.insert(&bytes, SRC, true, || true).map(|r| r.stored),
            Ok(Stored::New)
        );
        assert_eq!(
            store.insert(&bytes, SRC, true, || true).map(|r| r.stored),
            Ok(Stored::Same)
        );
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
        assert_eq!(
            store.insert(&old, SRC, true, || true).map(|r| r.stored),
            Ok(Stored::New)
        );
        assert_eq!(
            store.insert(&new, SRC, true, || true).map(|r| r.stored),
            Ok(Stored::Newer)
        );
        assert_eq!(
            store.insert(&old, SRC, true, || true).map(|r| r.stored),
            Err(Refused::Stale)
        );
        assert_eq!(store.check(&ogm(&id, 2, 0, &chain2)), AuthVerdict::Valid);
        let mut tampered = new;
        tampered[70] ^= 1;
        assert_eq!(
            store
                .insert(&tampered, SRC, true, || true)
                .map(|r| r.stored),
            Err(Refused::Invalid)
        );
    }

    #[test]
    fn long_gap_resyncs_once_per_interval() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let id = Identity::generate(&mut rng);
        let (bytes, chain) = signed(&id, 1);
        let mut store = Announcements::default();
        store.insert(&bytes, SRC, true, || true).unwrap();
        store.set_now(Instant::from_millis(10));
        assert_eq!(store.check(&ogm(&id, 1, 1000, &chain)), AuthVerdict::Valid);
        // A second long jump within the interval is not verified now.
        assert_eq!(store.check(&ogm(&id, 1, 2000, &chain)), AuthVerdict::Stale);
        store.set_now(Instant::from_millis(2000));
        assert_eq!(store.check(&ogm(&id, 1, 2000, &chain)), AuthVerdict::Valid);
    }

    #[test]
    fn an_older_epoch_is_taken_once_its_node_is_unreachable() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let id = Identity::generate(&mut rng);
        let (new, _) = signed(&id, 5);
        let (lost_state, chain) = signed(&id, 1);
        let mut store = Announcements::default();
        store.insert(&new, SRC, true, || true).unwrap();
        assert_eq!(
            store
                .insert(&lost_state, SRC, true, || true)
                .map(|r| r.stored),
            Err(Refused::Stale)
        );
        let r = store
            .insert(&lost_state, SRC, false, || true)
            .map(|r| r.stored);
        assert_eq!(r, Ok(Stored::Restarted));
        assert_eq!(store.check(&ogm(&id, 1, 0, &chain)), AuthVerdict::Valid);
    }

    #[test]
    fn probation_ends_with_a_verified_ogm_and_expires_without_one() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let (a, b) = (Identity::generate(&mut rng), Identity::generate(&mut rng));
        let ((ann_a, chain_a), (ann_b, _)) = (signed(&a, 1), signed(&b, 1));
        let mut store = Announcements::default();
        store.set_now(Instant::from_millis(1000));
        store.insert(&ann_a, SRC, true, || true).unwrap();
        store.insert(&ann_b, SRC, true, || true).unwrap();
        assert_eq!(store.check(&ogm(&a, 1, 1, &chain_a)), AuthVerdict::Valid);
        store.set_now(Instant::from_millis(1000) + PROBATION_TIMEOUT);
        // b never anchored an OGM: gone. a is established: stays while routing knows it.
        assert_eq!(store.expire(|_| true), vec![b.node_id()]);
        assert!(store.expire(|_| true).is_empty());
        assert_eq!(store.expire(|_| false), vec![a.node_id()]);
    }

    #[test]
    fn a_source_at_its_probation_share_makes_room_from_its_own_entries() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let other = Some((IfaceId(0), MacAddr([2, 0, 0, 0, 0, 9])));
        let mut store = Announcements::default();
        let theirs = Identity::generate(&mut rng);
        store
            .insert(&signed(&theirs, 1).0, other, true, || true)
            .unwrap();
        let mut first = None;
        for i in 0..MAX_PROBATION_PER_SOURCE {
            store.set_now(Instant::from_millis(i as u64));
            let id = Identity::generate(&mut rng);
            first.get_or_insert(id.node_id());
            let r = store.insert(&signed(&id, 1).0, SRC, true, || true).unwrap();
            assert_eq!(r.evicted, None);
        }
        let id = Identity::generate(&mut rng);
        let r = store.insert(&signed(&id, 1).0, SRC, true, || true).unwrap();
        assert_eq!(r.evicted, first, "the source's oldest goes");
        assert!(
            store.get(&theirs.node_id()).is_some(),
            "another source's entry stays"
        );
        assert_eq!(store.len(), MAX_PROBATION_PER_SOURCE + 1);
    }

    #[test]
    fn a_forged_far_ahead_ogm_does_not_hold_back_the_genuine_resync() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let id = Identity::generate(&mut rng);
        let (bytes, chain) = signed(&id, 1);
        let mut store = Announcements::default();
        store.insert(&bytes, SRC, true, || true).unwrap();
        store.set_now(Instant::from_millis(10));
        let mut forged = ogm(&id, 1, 1000, &chain);
        forged.chain[3] ^= 0x40;
        let member = Some((IfaceId(0), MacAddr([2, 0, 0, 0, 0, 7])));
        store.set_source(member);
        assert_eq!(store.check(&forged), AuthVerdict::Invalid);
        store.set_source(SRC);
        assert_eq!(store.check(&ogm(&id, 1, 1000, &chain)), AuthVerdict::Valid);
        // A second later, the member's budget: a burst of long walks, then none until it
        // refills (its failures never hold the originator's next resync back).
        store.set_now(Instant::from_millis(1010));
        store.set_source(member);
        let walked = (0..10u32)
            .filter(|k| {
                let mut f = ogm(&id, 1, 2000 + k, &chain);
                f.chain[0] ^= 1;
                store.check(&f) == AuthVerdict::Invalid
            })
            .count();
        assert_eq!(walked, RESYNCS_PER_SOURCE_PER_SEC as usize);
    }
}
