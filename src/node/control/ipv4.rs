//! The node's optional IPv4 address: a claim index in its signed announcement, and moving
//! to the next candidate when a claim that outranks it takes the address (docs §5.3).

use std::net::Ipv4Addr;

use crate::crypto::Announcement;
use crate::node::{DropReason, Node};
use crate::overlay::{ClaimOutcome, Ipv4Claim};
use crate::wire::{Message, NodeId};

impl Node {
    /// This node's IPv4 overlay address, if IPv4 is on and it holds one.
    pub fn overlay_ipv4(&self) -> Option<Ipv4Addr> {
        self.book.claims()?.address_of(&self.shared.id)
    }

    /// Learn `node`'s addresses from its verified announcement, then check our own claim.
    pub(in crate::node) fn learn_addresses(&mut self, node: NodeId, ann: &Announcement) {
        let claim = match (self.shared.cfg.ipv4_pool.as_ref(), ann.ipv4_claim) {
            (Some(pool), Some(k)) => Ipv4Claim::derive(pool, &ann.identity.ed25519, k).ok(),
            _ => None,
        };
        let learned = self.book.learn(node, claim);
        if let Some(ClaimOutcome::Rejected(_)) = learned.ipv4 {
            self.shared.stats.drop(DropReason::AddressClaimRejected);
        }
        if claim.is_some() {
            self.check_own_claim();
        }
    }

    /// Put our own starting claim into the address book (the announcement carries it).
    pub(in crate::node) fn learn_own_ipv4_claim(&mut self) {
        let (Some(pool), Some(k)) = (self.shared.cfg.ipv4_pool, self.ipv4_index) else {
            return;
        };
        let key = self.shared.identity.public().ed25519;
        if let Ok(claim) = Ipv4Claim::derive(&pool, &key, k) {
            self.book.learn(self.shared.id, Some(claim));
        }
    }

    /// If a claim that outranks ours took our address, move to our next free candidate and
    /// announce it (a new chain, so every node sees a newer announcement).
    fn check_own_claim(&mut self) {
        let (Some(pool), Some(current)) = (self.shared.cfg.ipv4_pool, self.ipv4_index) else {
            return;
        };
        let key = self.shared.identity.public().ed25519;
        let next = self
            .book
            .claims()
            .and_then(|c| c.my_next_index(&key, current));
        if next == Some(current) {
            return;
        }
        self.ipv4_index = next;
        if let Some(k) = next {
            if let Ok(claim) = Ipv4Claim::derive(&pool, &key, k) {
                self.book.learn(self.shared.id, Some(claim));
            }
        }
        self.reannounce();
    }

    /// Sign a new announcement (a new chain starting at our next seqno) and broadcast it.
    fn reannounce(&mut self) {
        let start = self.routing.own_seq().seqno.saturating_add(1);
        if !self.adopt_chain(start) {
            return;
        }
        let bytes = self.own_ann;
        let _ = self.anns.take_unpushed(&self.shared.id);
        for iface in self.link.ifaces() {
            self.link.broadcast_messages(
                iface,
                &[Message::Announce(&bytes)],
                &mut self.shared.stats,
            );
        }
    }
}
