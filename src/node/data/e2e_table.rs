//! End-to-end peers (docs/protocol.md §7): for each node this one talks to directly, its
//! sessions and a pending handshake. Bounded; a session index carries its slot in its low
//! byte (as link indices do), so a received index finds its session in O(1).

use crate::crypto::e2e::E2eInitiator;
use crate::crypto::{PublicIdentity, Session};
use crate::node::index::{slot_of, which_named, Which};
use crate::routing::seqno::Gcra;
use crate::time::{Duration, Instant};
use crate::wire::NodeId;

/// Most nodes a node holds end-to-end state for; the least recently used goes first.
pub const MAX_E2E_PEERS: usize = 128;
/// A peer with no session and nothing pending, unused this long, is forgotten.
pub const E2E_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Least time between two msg 1s of one peer that we read (burst `E2E_INIT_BURST`): a
/// simultaneous open and a restart's retry fit, a replayed msg 1 flood does not.
pub const E2E_INIT_PERIOD: Duration = Duration::from_millis(500);
/// Msg 1s of one peer read back to back.
pub const E2E_INIT_BURST: u64 = 2;

/// An established end-to-end session and the indices that name it.
pub struct E2eSession {
    /// Our index: the peer puts it in what it sends us.
    pub local_idx: u32,
    /// The peer's index: we put it in what we send.
    pub remote_idx: u32,
    /// Keys, counters, replay window, rekey timers.
    pub session: Session,
}

/// A handshake we started and that waits for msg 2.
pub struct E2ePending {
    /// Noise state.
    pub hs: Box<E2eInitiator>,
    /// Our index for the session being made.
    pub local_idx: u32,
    /// When msg 1 went out.
    pub since: Instant,
}

/// Everything held about one end-to-end peer.
pub struct E2ePeer {
    /// The peer.
    pub node: NodeId,
    /// Its keys, from its signed announcement.
    pub identity: PublicIdentity,
    /// Our handshake in flight.
    pub pending: Option<E2ePending>,
    /// The session we send with.
    pub current: Option<E2eSession>,
    /// The session before the last rekey, kept for receiving until it expires.
    pub previous: Option<E2eSession>,
    /// Highest msg 1 sequence number from it we answered.
    pub peer_init_seq: Option<u64>,
    /// When we last started a handshake with it.
    pub last_attempt: Option<Instant>,
    /// When a packet last went to or came from it.
    pub last_used: Instant,
    /// Rate of its msg 1s we read (`E2E_INIT_PERIOD`, `E2E_INIT_BURST`).
    pub init_gate: Gcra,
}

impl E2ePeer {
    /// When this peer next needs attention: its handshake times out, a session expires or
    /// is due for a rekey, or it is idle long enough to forget.
    pub fn deadline(&self) -> Instant {
        let pending = self
            .pending
            .as_ref()
            .map(|p| p.since + crate::node::HANDSHAKE_TIMEOUT);
        let previous = self
            .previous
            .as_ref()
            .map(|s| s.session.timers.expires_at());
        let current = self.current.as_ref().map(|s| {
            let retry = self
                .last_attempt
                .map_or(Instant::ZERO, |t| t + crate::node::HANDSHAKE_RETRY);
            let rekey = s.session.timers.rekey_at().max(retry);
            s.session.timers.expires_at().min(rekey)
        });
        let idle = self.last_used + E2E_IDLE_TIMEOUT;
        [pending, previous, current]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(idle)
    }

    /// Whether a new handshake may start now: none in flight, and the last one at least
    /// `HANDSHAKE_RETRY` ago.
    pub fn may_initiate(&self, now: Instant) -> bool {
        self.pending.is_none()
            && self
                .last_attempt
                .is_none_or(|t| now.saturating_since(t) >= crate::node::HANDSHAKE_RETRY)
    }
}

/// The bounded table of end-to-end peers.
pub struct E2eTable {
    slots: Vec<Option<E2ePeer>>,
    /// The node of each occupied slot (the per-packet lookup scans these 16-byte keys).
    keys: Vec<Option<NodeId>>,
    /// Peers evicted to make room.
    pub evicted: u64,
}

impl Default for E2eTable {
    fn default() -> Self {
        E2eTable {
            slots: (0..MAX_E2E_PEERS).map(|_| None).collect(),
            keys: vec![None; MAX_E2E_PEERS],
            evicted: 0,
        }
    }
}

impl E2eTable {
    /// The slot of `node`.
    pub fn find(&self, node: &NodeId) -> Option<usize> {
        self.keys.iter().position(|k| k.as_ref() == Some(node))
    }

    /// The peer in `slot`.
    pub fn get(&self, slot: usize) -> Option<&E2ePeer> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    /// The peer in `slot`, mutably.
    pub fn get_mut(&mut self, slot: usize) -> Option<&mut E2ePeer> {
        self.slots.get_mut(slot).and_then(Option::as_mut)
    }

    /// The slot of `node`, creating it with `identity`; when full the least recently used
    /// peer is evicted (counted).
    pub fn find_or_insert(
        &mut self,
        node: NodeId,
        identity: PublicIdentity,
        now: Instant,
    ) -> Option<usize> {
        if let Some(slot) = self.find(&node) {
            return Some(slot);
        }
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.evicted += 1;
                self.least_recently_used()?
            }
        };
        let peer = E2ePeer {
            node,
            identity,
            pending: None,
            current: None,
            previous: None,
            peer_init_seq: None,
            last_attempt: None,
            last_used: now,
            init_gate: Gcra::default(),
        };
        if let (Some(s), Some(k)) = (self.slots.get_mut(slot), self.keys.get_mut(slot)) {
            *s = Some(peer);
            *k = Some(node);
        }
        Some(slot)
    }

    fn least_recently_used(&self) -> Option<usize> {
        self.iter().min_by_key(|(_, p)| p.last_used).map(|(i, _)| i)
    }

    /// Forget the peer in `slot`.
    pub fn remove(&mut self, slot: usize) {
        if let (Some(s), Some(k)) = (self.slots.get_mut(slot), self.keys.get_mut(slot)) {
            *s = None;
            *k = None;
        }
    }

    /// The peer and session a received index names.
    pub fn by_index(&self, idx: u32) -> Option<(usize, Which)> {
        let slot = slot_of(idx);
        let peer = self.get(slot)?;
        let local = |s: &Option<E2eSession>| s.as_ref().map(|s| s.local_idx);
        which_named(idx, local(&peer.current), local(&peer.previous)).map(|w| (slot, w))
    }

    /// The slot whose pending handshake has index `idx`.
    pub fn by_pending_index(&self, idx: u32) -> Option<usize> {
        let slot = slot_of(idx);
        let peer = self.get(slot)?;
        peer.pending
            .as_ref()
            .is_some_and(|p| p.local_idx == idx)
            .then_some(slot)
    }

    /// Every peer with its slot.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &E2ePeer)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
    }

    /// The earliest deadline of any peer (`E2ePeer::deadline`), never before `now` +
    /// `STUCK_RETRY` for a peer whose work could not be done when due.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        self.iter()
            .map(|(_, p)| match p.deadline() {
                due if due <= now => now + crate::node::timers::STUCK_RETRY,
                later => later,
            })
            .min()
    }

    /// Number of peers held.
    pub fn len(&self) -> usize {
        self.keys.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> PublicIdentity {
        PublicIdentity {
            ed25519: [1; 32],
            x25519: [2; 32],
        }
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_used_peer() {
        let mut t = E2eTable::default();
        let t0 = Instant::ZERO;
        for i in 0..MAX_E2E_PEERS {
            let node = NodeId([i as u8; 16]);
            let at = t0 + Duration::from_secs(i as u64 + 1);
            assert_eq!(t.find_or_insert(node, identity(), at), Some(i));
        }
        // Node 0 was used last of all.
        if let Some(p) = t.get_mut(0) {
            p.last_used = t0 + Duration::from_secs(1000);
        }
        let slot = t.find_or_insert(NodeId([0xEE; 16]), identity(), t0);
        assert_eq!(slot, Some(1), "node 1 was the least recently used");
        assert_eq!(t.evicted, 1);
        assert_eq!(t.find(&NodeId([1; 16])), None);
        assert_eq!(t.len(), MAX_E2E_PEERS);
    }
}
