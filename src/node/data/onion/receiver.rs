//! The destination of anonymous senders (docs/protocol.md §8.9): packets an exit passed on,
//! opened with our onion key and delivered if they come from the ephemeral address their key
//! makes; and our answers to those addresses, sealed back through the exit they came from.

use std::collections::BTreeMap;

use super::{make_room, open_flow, send_data, Onion};
use crate::crypto::onion::{anon_forward_ad, anon_iid, anon_reply_ad, AnonFlow, ANON_IID_LEN};
use crate::node::data::ip::deliver_drop;
use crate::node::data::Env;
use crate::node::ring::Ring;
use crate::node::DropReason;
use crate::overlay::anon::{anon_address, ANON_MTU};
use crate::overlay::Ipv6View;
use crate::routing::seqno::TokenBucket;
use crate::time::{Duration, Instant};
use crate::wire::e2e::{emit_anonymous_reply_header, ANON_HEADER_LEN, ANON_REPLY_HEADER_LEN};
use crate::wire::{NodeId, TAG_LEN};

/// Most anonymous senders a node holds flows with (about 700 bytes each).
pub const MAX_ANON_PEERS: usize = 256;
/// New anonymous flows opened per second (and burst): one x25519 each.
pub const ANON_FLOWS_PER_SEC: u32 = 20;
/// A flow from an anonymous sender that carried nothing for this long is forgotten.
pub const ANON_PEER_IDLE: Duration = Duration::from_secs(600);

/// One anonymous sender, by its ephemeral address: the exit its packets came through, its key
/// and the flow agreed with our onion key `key_seq`.
struct AnonPeer {
    exit: NodeId,
    sender: [u8; 32],
    key_seq: u32,
    flow: AnonFlow,
    last_used: Instant,
}

/// Anonymous senders we hold flows with.
pub(super) struct AnonPeers {
    by_iid: BTreeMap<[u8; ANON_IID_LEN], AnonPeer>,
    budget: TokenBucket,
}

impl AnonPeers {
    /// An empty table.
    pub(super) fn new(now: Instant) -> AnonPeers {
        AnonPeers {
            by_iid: BTreeMap::new(),
            budget: TokenBucket::new(now, ANON_FLOWS_PER_SEC, ANON_FLOWS_PER_SEC),
        }
    }

    /// Forget flows idle for `ANON_PEER_IDLE`; returns when the next one would go.
    pub(super) fn expire(&mut self, now: Instant) -> Option<Instant> {
        self.by_iid
            .retain(|_, p| now.saturating_since(p.last_used) < ANON_PEER_IDLE);
        peer_deadline(&self.by_iid)
    }

    /// Keep `peer` as the flow of `iid`, forgetting the least recently used one if full.
    fn insert(&mut self, iid: [u8; ANON_IID_LEN], peer: AnonPeer, env: &mut Env<'_>) {
        let room = (&iid, MAX_ANON_PEERS);
        make_room(
            &mut self.by_iid,
            room,
            |p| p.last_used,
            &mut env.shared.stats,
        );
        self.by_iid.insert(iid, peer);
        let idle = peer_deadline(&self.by_iid);
        if let Some(t) = idle {
            env.shared.timers.arm(crate::node::Timer::Circuits, t);
        }
    }
}

fn peer_deadline(peers: &BTreeMap<[u8; ANON_IID_LEN], AnonPeer>) -> Option<Instant> {
    peers.values().map(|p| p.last_used + ANON_PEER_IDLE).min()
}

impl Onion {
    /// An Anonymous payload for us from `exit`: opened into a deliver slot under the flow of
    /// `sender` (made with our onion key `key_seq` if new), delivered if it goes from the
    /// sender's ephemeral address to ours.
    pub(in crate::node::data) fn on_anonymous(
        &mut self,
        now: Instant,
        (exit, key_seq, sender, counter): (NodeId, u32, &[u8; 32], u64),
        payload: &[u8],
        deliver: &mut Ring<()>,
        env: &mut Env<'_>,
    ) {
        let iid = anon_iid(sender);
        let known = self
            .peers
            .by_iid
            .get(&iid)
            .is_some_and(|p| p.sender == *sender && p.key_seq == key_seq);
        let mut fresh = None;
        if !known {
            let stats = &mut env.shared.stats;
            if !self.peers.budget.allow(now) {
                return stats.drop(DropReason::AnonFlowRateLimited);
            }
            let Some(key) = env.control.onion_keys().own(key_seq) else {
                return stats.drop(DropReason::AnonUnknownKey);
            };
            match key.anon_flow(sender) {
                Ok(flow) => fresh = Some(flow),
                Err(_) => return stats.drop(DropReason::AnonAuth),
            }
        }
        let flow = match fresh.as_mut() {
            Some(flow) => flow,
            None => match self.peers.by_iid.get_mut(&iid) {
                Some(p) => &mut p.flow,
                None => return,
            },
        };
        let me = env.shared.id;
        let ad = anon_forward_ad(&exit, &me, key_seq, sender);
        let ephemeral = anon_address(&env.control.anon_prefix(), &iid);
        let own = env.control.addr6();
        let stats = &mut env.shared.stats;
        let out = match deliver.reserve_copy(payload) {
            Ok(out) => out,
            Err(e) => return stats.drop(deliver_drop(e)),
        };
        let sealed = out.buf.get_mut(ANON_HEADER_LEN..payload.len());
        let Some((packet, tag)) = sealed.and_then(|s| {
            let at = s.len().checked_sub(TAG_LEN)?;
            Some(s.split_at_mut(at))
        }) else {
            return stats.drop(DropReason::E2eMalformed);
        };
        if let Err(reason) = open_flow(&mut flow.recv, (counter, &ad), packet, tag) {
            return stats.drop(reason);
        }
        let genuine = Ipv6View::parse(packet).is_ok_and(|p| p.src() == ephemeral && p.dst() == own);
        if !genuine {
            return stats.drop(DropReason::AnonForgedSource);
        }
        let len = packet.len();
        out.buf
            .copy_within(ANON_HEADER_LEN..ANON_HEADER_LEN + len, 0);
        deliver.commit_as(len, ());
        stats.anon_packets_received += 1;
        match fresh {
            Some(flow) => {
                let peer = AnonPeer {
                    exit,
                    sender: *sender,
                    key_seq,
                    flow,
                    last_used: now,
                };
                self.peers.insert(iid, peer, env);
            }
            None => {
                if let Some(p) = self.peers.by_iid.get_mut(&iid) {
                    // The sender may have moved to another exit (a repaired circuit).
                    p.exit = exit;
                    p.last_used = now;
                }
            }
        }
    }

    /// An IP packet from our TUN side to the ephemeral address `iid`: sealed under its flow
    /// and sent to the exit it last came through.
    pub(in crate::node::data) fn anon_answer(
        &mut self,
        now: Instant,
        iid: [u8; ANON_IID_LEN],
        packet: &[u8],
        env: &mut Env<'_>,
    ) {
        let stats = &mut env.shared.stats;
        if packet.len() > ANON_MTU {
            return stats.drop(DropReason::PacketTooBig);
        }
        let Some(peer) = self.peers.by_iid.get_mut(&iid) else {
            return stats.drop(DropReason::AnonUnknownAddress);
        };
        let Ok(counter) = peer.flow.send.next_counter() else {
            return stats.drop(DropReason::AnonAuth);
        };
        let me = env.shared.id;
        let ad = anon_reply_ad(&me, &peer.exit, &iid);
        let (exit, flow) = (peer.exit, &mut peer.flow);
        peer.last_used = now;
        let len = ANON_REPLY_HEADER_LEN + packet.len() + TAG_LEN;
        let write = |area: &mut [u8]| {
            let (head, rest) = area.split_at_mut(ANON_REPLY_HEADER_LEN);
            if emit_anonymous_reply_header(head, me, &iid, counter).is_err() {
                return false;
            }
            let (body, tag) = rest.split_at_mut(packet.len());
            body.copy_from_slice(packet);
            match flow.send.seal_in_place(counter, &ad, body) {
                Ok(t) => {
                    tag.copy_from_slice(&t);
                    true
                }
                Err(_) => false,
            }
        };
        if exit == me {
            // We are the sender's exit too: the reply goes straight onto its circuit.
            let mut local = [0u8; ANON_REPLY_HEADER_LEN + ANON_MTU + TAG_LEN];
            let Some(area) = local.get_mut(..len) else {
                return;
            };
            if write(area) {
                env.shared.stats.anon_replies_sent += 1;
                self.exit_reply(now, (me, &iid, counter), area, env);
            }
        } else if send_data(now, exit, len, env, write) {
            env.shared.stats.anon_replies_sent += 1;
        }
    }
}
