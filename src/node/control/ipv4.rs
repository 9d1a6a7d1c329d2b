//! The node's optional IPv4 address: a claim index in its signed announcement, and moving
//! to the next candidate when a claim that outranks it takes the address (docs §5.3).

use super::ControlPlane;
use crate::crypto::{Announcement, Identity};
use crate::node::link_layer::LinkLayer;
use crate::node::{DropReason, NodeConfig, Shared};
use crate::overlay::{ClaimOutcome, Ipv4Claim};
use crate::wire::{Message, NodeId};

impl ControlPlane {
    /// Learn `node`'s addresses from its verified announcement, then check our own claim.
    pub(super) fn learn_addresses(
        &mut self,
        node: NodeId,
        ann: &Announcement,
        link: &mut LinkLayer,
        shared: &mut Shared,
    ) {
        let claim = match (shared.cfg.ipv4_pool.as_ref(), ann.ipv4_claim) {
            (Some(pool), Some(k)) => Ipv4Claim::derive(pool, &ann.identity.ed25519, k).ok(),
            _ => None,
        };
        let learned = self.book.learn(node, claim);
        if let Some(ClaimOutcome::Rejected(_)) = learned.ipv4 {
            shared.stats.drop(DropReason::AddressClaimRejected);
        }
        if claim.is_some() {
            self.check_own_claim(link, shared);
        }
    }

    /// Put our own starting claim into the address book (the announcement carries it).
    pub(super) fn learn_own_ipv4_claim(&mut self, cfg: &NodeConfig, identity: &Identity) {
        let (Some(pool), Some(k)) = (cfg.ipv4_pool, self.ipv4_index) else {
            return;
        };
        let key = identity.public().ed25519;
        if let Ok(claim) = Ipv4Claim::derive(&pool, &key, k) {
            self.book.learn(identity.node_id(), Some(claim));
        }
    }

    /// If a claim that outranks ours took our address, move to our next free candidate and
    /// announce it (a new chain, so every node sees a newer announcement).
    fn check_own_claim(&mut self, link: &mut LinkLayer, shared: &mut Shared) {
        let (Some(pool), Some(current)) = (shared.cfg.ipv4_pool, self.ipv4_index) else {
            return;
        };
        let key = shared.identity.public().ed25519;
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
                self.book.learn(shared.id, Some(claim));
            }
        }
        self.reannounce(link, shared);
    }

    /// Sign a new announcement (a new chain starting at our next seqno) and broadcast it.
    fn reannounce(&mut self, link: &mut LinkLayer, shared: &mut Shared) {
        let start = self.routing.own_seq().seqno.saturating_add(1);
        if !self.adopt_chain(start, &shared.identity, shared.epoch) {
            return;
        }
        let bytes = self.own_ann;
        let _ = self.anns.take_unpushed(&shared.id);
        for iface in link.ifaces() {
            link.broadcast_messages(iface, &[Message::Announce(&bytes)], &mut shared.stats);
        }
    }
}
