//! Onion keys (docs/protocol.md §8.1, §8.7): our own, rotated, with the previous one kept
//! for builds already on their way; and every relay's latest signed record, which travels
//! with its node's announcement (in OGM batches, table dumps and announcement replies) and
//! is pushed on once per version like it.

use std::collections::BTreeMap;

use rand_core::{CryptoRng, RngCore};

use crate::crypto::onion::{OnionError, OnionKeyPair, OnionKeyRecord, ONION_KEY_RELAY};
use crate::crypto::{Identity, PublicIdentity};
use crate::time::{Duration, Instant};
use crate::wire::{NodeId, ONION_KEY_LEN};

/// How long a record says its key may be used, in seconds from when a receiver holds it.
pub const ONION_KEY_LIFETIME_S: u16 = 3600;
/// `ONION_KEY_LIFETIME_S` as a span.
pub const ONION_KEY_LIFETIME: Duration = Duration::from_secs(ONION_KEY_LIFETIME_S as u64);
/// A new onion key every this often: the previous one stays until its lifetime ends, so a
/// build sealed to it on its way still opens; then it is erased (forward secrecy).
pub const ONION_KEY_ROTATION: Duration = Duration::from_secs(ONION_KEY_LIFETIME_S as u64 / 2);
/// Most relays' records held (as many as announcements).
pub const MAX_ONION_KEYS: usize = super::MAX_ANNOUNCEMENTS;

/// Why a record was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::node) enum KeyRefused {
    /// We hold no announcement of its node, so cannot check it.
    UnknownNode,
    /// Bad signature or layout.
    Invalid,
    /// No newer than the one held.
    Stale,
    /// The store is full.
    Full,
}

struct PeerKey {
    record: OnionKeyRecord,
    bytes: [u8; ONION_KEY_LEN],
    /// Whether we already sent it on (once per version, like announcements).
    pushed: bool,
    /// When we first held a record of this node (kept across its key's rotations).
    known_since: Instant,
    expires: Instant,
}

/// Our onion keys and every relay's latest record.
pub(in crate::node) struct OnionKeys {
    current: OnionKeyPair,
    previous: Option<(OnionKeyPair, Instant)>,
    own_record: [u8; ONION_KEY_LEN],
    own_pushed: bool,
    next_rotation: Instant,
    relay: bool,
    peers: BTreeMap<NodeId, PeerKey>,
}

/// Key sequence numbers grow across restarts: the epoch's low 16 bits, then a rotation count.
fn first_seq(epoch: u32) -> u32 {
    (epoch & 0xFFFF) << 16
}

impl OnionKeys {
    /// A first key for `identity`, numbered from `epoch`; `relay` says whether we relay.
    pub(in crate::node) fn new(
        identity: &Identity,
        epoch: u32,
        relay: bool,
        rng: &mut (impl RngCore + CryptoRng),
        now: Instant,
    ) -> Result<OnionKeys, OnionError> {
        let current = OnionKeyPair::generate(first_seq(epoch), rng);
        let own_record = sign(identity, &current, relay)?;
        Ok(OnionKeys {
            current,
            previous: None,
            own_record,
            own_pushed: false,
            next_rotation: now + ONION_KEY_ROTATION,
            relay,
            peers: BTreeMap::new(),
        })
    }

    /// When the next rotation or erasure is due.
    pub(in crate::node) fn next_deadline(&self) -> Instant {
        match &self.previous {
            Some((_, erase)) => self.next_rotation.min(*erase),
            None => self.next_rotation,
        }
    }

    /// Rotate our key if due (the old one kept for its remaining lifetime), erase a previous
    /// key whose lifetime ended, and forget expired records of others.
    pub(in crate::node) fn housekeep(
        &mut self,
        now: Instant,
        identity: &Identity,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), OnionError> {
        if self
            .previous
            .as_ref()
            .is_some_and(|(_, erase)| *erase <= now)
        {
            self.previous = None;
        }
        if now >= self.next_rotation {
            let seq = self.current.seq().wrapping_add(1);
            let next = OnionKeyPair::generate(seq, rng);
            self.own_record = sign(identity, &next, self.relay)?;
            self.own_pushed = false;
            let old = core::mem::replace(&mut self.current, next);
            // It was published a rotation ago: its lifetime ends one more rotation from now.
            self.previous = Some((old, now + ONION_KEY_ROTATION));
            self.next_rotation = now + ONION_KEY_ROTATION;
        }
        self.peers.retain(|_, p| p.expires > now);
        Ok(())
    }

    /// Our key pair numbered `seq` (current or previous), for opening a build.
    pub(in crate::node) fn own(&self, seq: u32) -> Option<&OnionKeyPair> {
        if self.current.seq() == seq {
            return Some(&self.current);
        }
        self.previous
            .as_ref()
            .map(|(k, _)| k)
            .filter(|k| k.seq() == seq)
    }

    /// Verify and store `bytes` if newer than what we hold; `signer` is its node's identity
    /// from its announcement. Returns whether it was new.
    pub(in crate::node) fn insert(
        &mut self,
        own_id: &NodeId,
        bytes: &[u8; ONION_KEY_LEN],
        signer: impl FnOnce(&NodeId) -> Option<PublicIdentity>,
        now: Instant,
    ) -> Result<bool, KeyRefused> {
        let (node, seq) = OnionKeyRecord::unverified_order(bytes);
        if node == *own_id {
            return Ok(false);
        }
        let held = self.peers.get(&node);
        if let Some(p) = held {
            if p.bytes == *bytes {
                return Ok(false);
            }
            if seq <= p.record.seq {
                return Err(KeyRefused::Stale);
            }
        } else if self.peers.len() >= MAX_ONION_KEYS {
            return Err(KeyRefused::Full);
        }
        let identity = signer(&node).ok_or(KeyRefused::UnknownNode)?;
        let record =
            OnionKeyRecord::parse_and_verify(bytes, &identity).map_err(|_| KeyRefused::Invalid)?;
        let lifetime = Duration::from_secs(u64::from(record.lifetime_s));
        let known_since = held.map_or(now, |p| p.known_since);
        self.peers.insert(
            node,
            PeerKey {
                record,
                bytes: *bytes,
                pushed: false,
                known_since,
                expires: now + lifetime,
            },
        );
        Ok(true)
    }

    /// The record of `node` (ours included) if it was not sent on yet; marks it sent.
    pub(in crate::node) fn take_unpushed(
        &mut self,
        own_id: &NodeId,
        node: &NodeId,
    ) -> Option<[u8; ONION_KEY_LEN]> {
        if node == own_id {
            let first = !self.own_pushed;
            self.own_pushed = true;
            return first.then_some(self.own_record);
        }
        let p = self.peers.get_mut(node).filter(|p| !p.pushed)?;
        p.pushed = true;
        Some(p.bytes)
    }

    /// The record of `node` (ours included), for table dumps and announcement replies.
    pub(in crate::node) fn bytes(
        &self,
        own_id: &NodeId,
        node: &NodeId,
    ) -> Option<&[u8; ONION_KEY_LEN]> {
        if node == own_id {
            return Some(&self.own_record);
        }
        self.peers.get(node).map(|p| &p.bytes)
    }

    /// Relays with a live key whose records we have held for `min_known` at `now`, in node
    /// id order.
    pub(in crate::node) fn relays(
        &self,
        now: Instant,
        min_known: Duration,
    ) -> impl Iterator<Item = &OnionKeyRecord> + '_ {
        self.peers
            .values()
            .filter(move |p| now.saturating_since(p.known_since) >= min_known)
            .map(|p| &p.record)
            .filter(|r| r.relays())
    }

    /// The latest record of `node` (relay or not: every node's key seals anonymous packets
    /// to it).
    pub(in crate::node) fn record(&self, node: &NodeId) -> Option<&OnionKeyRecord> {
        self.peers.get(node).map(|p| &p.record)
    }

    /// Forget `node`'s record (its announcement went).
    pub(in crate::node) fn forget(&mut self, node: &NodeId) {
        self.peers.remove(node);
    }

    /// Number of relays' records held.
    pub(in crate::node) fn len(&self) -> usize {
        self.peers.len()
    }
}

fn sign(
    identity: &Identity,
    key: &OnionKeyPair,
    relay: bool,
) -> Result<[u8; ONION_KEY_LEN], OnionError> {
    OnionKeyRecord {
        node: identity.node_id(),
        seq: key.seq(),
        lifetime_s: ONION_KEY_LIFETIME_S,
        flags: if relay { ONION_KEY_RELAY } else { 0 },
        key: key.public(),
    }
    .sign(identity)
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    fn keys(seed: u64) -> (Identity, OnionKeys, ChaCha20Rng) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let id = Identity::generate(&mut rng);
        let k = OnionKeys::new(&id, 3, true, &mut rng, Instant::ZERO).unwrap();
        (id, k, rng)
    }

    #[test]
    fn rotation_keeps_the_previous_key_for_its_lifetime_then_erases_it() {
        let (id, mut k, mut rng) = keys(1);
        let first = k.current.seq();
        assert_eq!(first, 3 << 16);
        let t1 = Instant::ZERO + ONION_KEY_ROTATION;
        k.housekeep(t1, &id, &mut rng).unwrap();
        assert!(k.own(first).is_some() && k.own(first + 1).is_some());
        let t2 = Instant::ZERO + ONION_KEY_LIFETIME;
        assert_eq!(k.next_deadline(), t2);
        k.housekeep(t2, &id, &mut rng).unwrap();
        assert!(
            k.own(first).is_none(),
            "the old key is erased at the end of its lifetime"
        );
    }

    #[test]
    fn records_are_stored_once_per_version_and_need_their_nodes_identity() {
        let (a, mut ka, mut rng) = keys(2);
        let (b, mut kb, _) = keys(3);
        let b_id = b.node_id();
        let rec = *kb.bytes(&b_id, &b_id).unwrap();
        let now = Instant::ZERO;
        let me = a.node_id();
        assert_eq!(
            ka.insert(&me, &rec, |_| None, now),
            Err(KeyRefused::UnknownNode)
        );
        assert_eq!(
            ka.insert(&me, &rec, |_| Some(a.public()), now),
            Err(KeyRefused::Invalid)
        );
        assert_eq!(ka.insert(&me, &rec, |_| Some(b.public()), now), Ok(true));
        assert_eq!(ka.insert(&me, &rec, |_| Some(b.public()), now), Ok(false));
        assert!(ka.take_unpushed(&me, &b_id).is_some());
        assert!(ka.take_unpushed(&me, &b_id).is_none());
        // A newer key replaces it and is pushed again; the old one is now stale.
        kb.housekeep(Instant::ZERO + ONION_KEY_ROTATION, &b, &mut rng)
            .unwrap();
        let newer = *kb.bytes(&b_id, &b_id).unwrap();
        assert_eq!(ka.insert(&me, &newer, |_| Some(b.public()), now), Ok(true));
        assert_eq!(
            ka.insert(&me, &rec, |_| Some(b.public()), now),
            Err(KeyRefused::Stale)
        );
        assert!(ka.take_unpushed(&me, &b_id).is_some());
        assert_eq!(ka.relays(now, Duration::ZERO).count(), 1);
        assert_eq!(ka.relays(now, Duration::from_millis(1)).count(), 0);
        // Records expire a lifetime after they were first held.
        ka.housekeep(now + ONION_KEY_LIFETIME, &a, &mut rng)
            .unwrap();
        assert_eq!(ka.len(), 0);
    }
}
