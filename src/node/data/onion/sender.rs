//! The anonymous sender (docs/protocol.md §8.9): an IP packet from our TUN side leaves
//! through a circuit of ours with its source turned into the circuit's ephemeral address and
//! sealed to the destination's onion key, so the exit and everything after it see ciphertext
//! and the destination sees an address no one can tie to us; replies come back through the
//! circuit and are turned back to our address.

use std::collections::BTreeMap;

use super::body::{self, Kind};
use super::creator::OwnCircuit;
use super::{
    cell_drop, make_room, open_flow, send_cell, Onion, ANON_CELL_HEADER_LEN, REPLY_CELL_HEADER_LEN,
};
use crate::crypto::arr;
use crate::crypto::onion::{
    anon_forward_ad, anon_reply_ad, AnonFlow, AnonIdentity, Direction, OnionError, OnionKeyRecord,
};
use crate::node::data::ip::deliver_drop;
use crate::node::data::Env;
use crate::node::ring::Ring;
use crate::node::{DropReason, Stats};
use crate::overlay::anon::{anon_address, rewritable, rewrite, Field, ANON_MTU};
use crate::overlay::{ipv6_for, Ipv6View};
use crate::time::Instant;
use crate::wire::{NodeId, NODE_ID_LEN, TAG_LEN};

/// Most destinations one circuit's ephemeral address holds flows with.
pub const MAX_FLOWS_PER_CIRCUIT: usize = 64;

/// Our flow with one destination through one circuit: keys agreed with its onion key `key_seq`.
pub(super) struct OwnFlow {
    flow: AnonFlow,
    key_seq: u32,
    last_used: Instant,
}

impl Onion {
    /// Send `packet` (from our TUN side, to `dst`) through the circuit that carries our
    /// ephemeral address; dropped and counted when none is built yet, the destination's onion
    /// key is unknown, or the packet is not one we carry.
    pub(in crate::node::data) fn anon_send(
        &mut self,
        now: Instant,
        dst: NodeId,
        packet: &[u8],
        env: &mut Env<'_>,
    ) {
        let stats = &mut env.shared.stats;
        if packet.len() > ANON_MTU {
            return stats.drop(DropReason::PacketTooBig);
        }
        if rewritable(packet).is_err() {
            return stats.drop(DropReason::AnonUnsupported);
        }
        let Some(link) = self.own.anon_circuit() else {
            return stats.drop(DropReason::AnonNoCircuit);
        };
        let Some(record) = env.control.onion_keys().record(&dst).copied() else {
            return stats.drop(DropReason::AnonNoKey);
        };
        let Some(c) = self.own.by_link.get_mut(&link) else {
            return;
        };
        let (Some(&guard), Some(&exit)) = (c.relays.first(), c.relays.last()) else {
            return;
        };
        let Some(flow) = flow_to(&mut c.flows, &c.anon, &record, now, stats) else {
            return;
        };
        let Ok(counter) = flow.send.next_counter() else {
            return stats.drop(DropReason::AnonAuth);
        };
        let sender = c.anon.public();
        let ephemeral = anon_address(&env.control.anon_prefix(), &c.anon.iid());
        let ad = anon_forward_ad(&exit, &dst, record.seq, &sender);
        let circuit = &mut c.circuit;
        let len = ANON_CELL_HEADER_LEN + packet.len() + TAG_LEN;
        let sent = send_cell((guard, link, Direction::Forward), env, |r| {
            let p = body::payload_mut(r, Kind::Anonymous, len).ok_or(OnionError::TooShort)?;
            let (head, rest) = p.split_at_mut(ANON_CELL_HEADER_LEN);
            head[..NODE_ID_LEN].copy_from_slice(&dst.0);
            head[NODE_ID_LEN..NODE_ID_LEN + 4].copy_from_slice(&record.seq.to_be_bytes());
            head[NODE_ID_LEN + 4..NODE_ID_LEN + 36].copy_from_slice(&sender);
            head[NODE_ID_LEN + 36..].copy_from_slice(&counter.to_be_bytes());
            let (body, tag) = rest.split_at_mut(packet.len());
            body.copy_from_slice(packet);
            rewrite(body, Field::Src, &ephemeral).map_err(|_| OnionError::TooShort)?;
            let t = flow
                .send
                .seal_in_place(counter, &ad, body)
                .map_err(|_| OnionError::Auth)?;
            tag.copy_from_slice(&t);
            circuit.seal_forward(r)
        });
        match sent {
            Ok(true) => {
                c.cells_out += 1;
                c.anon_used = Some(now);
                env.shared.stats.anon_packets_sent += 1;
            }
            Ok(false) => {}
            Err(e) => env.shared.stats.drop(cell_drop(e)),
        }
    }
}

/// The flow with `record`'s node through the circuit whose address is `anon`: made (one
/// x25519) when there is none or the node's onion key changed, the least recently used one
/// forgotten when the circuit holds `MAX_FLOWS_PER_CIRCUIT`.
fn flow_to<'a>(
    flows: &'a mut BTreeMap<NodeId, OwnFlow>,
    anon: &AnonIdentity,
    record: &OnionKeyRecord,
    now: Instant,
    stats: &mut Stats,
) -> Option<&'a mut AnonFlow> {
    let current = flows
        .get(&record.node)
        .is_some_and(|f| f.key_seq == record.seq);
    if !current {
        let Ok(flow) = anon.flow(&record.key) else {
            stats.drop(DropReason::AnonNoKey);
            return None;
        };
        let room = (&record.node, MAX_FLOWS_PER_CIRCUIT);
        make_room(flows, room, |f| f.last_used, stats);
        let key_seq = record.seq;
        flows.insert(
            record.node,
            OwnFlow {
                flow,
                key_seq,
                last_used: now,
            },
        );
    }
    let f = flows.get_mut(&record.node)?;
    f.last_used = now;
    Some(&mut f.flow)
}

/// A reply that came back through circuit `c` (`src | counter | ciphertext | tag`, opened of
/// every layer): opened under our flow with `src`, checked to be from `src` to our ephemeral
/// address, turned to our own address and queued for the TUN side.
pub(super) fn receive_reply(
    c: &mut OwnCircuit,
    payload: &mut [u8],
    deliver: &mut Ring<()>,
    env: &mut Env<'_>,
) {
    let stats = &mut env.shared.stats;
    let Some((head, sealed)) = payload.split_first_chunk_mut::<REPLY_CELL_HEADER_LEN>() else {
        return stats.drop(DropReason::OnionBadBody);
    };
    let Some(at) = sealed.len().checked_sub(TAG_LEN) else {
        return stats.drop(DropReason::OnionBadBody);
    };
    let src = NodeId(arr(&head[..NODE_ID_LEN]));
    let counter = u64::from_be_bytes(arr(&head[NODE_ID_LEN..]));
    let (Some(f), Some(&exit)) = (c.flows.get_mut(&src), c.relays.last()) else {
        return stats.drop(DropReason::AnonUnknownAddress);
    };
    let iid = c.anon.iid();
    let ad = anon_reply_ad(&src, &exit, &iid);
    let (packet, tag) = sealed.split_at_mut(at);
    if let Err(reason) = open_flow(&mut f.flow.recv, (counter, &ad), packet, tag) {
        return stats.drop(reason);
    }
    let prefix = env.control.prefix();
    let ephemeral = anon_address(&env.control.anon_prefix(), &iid);
    let genuine = Ipv6View::parse(packet)
        .is_ok_and(|p| p.src() == ipv6_for(&prefix, &src) && p.dst() == ephemeral);
    if !genuine {
        return stats.drop(DropReason::AnonForgedSource);
    }
    if rewrite(packet, Field::Dst, &env.control.addr6()).is_err() {
        return stats.drop(DropReason::AnonUnsupported);
    }
    match deliver.reserve_copy(packet) {
        Ok(_) => {
            deliver.commit_as(packet.len(), ());
            stats.anon_replies_received += 1;
        }
        Err(e) => stats.drop(deliver_drop(e)),
    }
}
