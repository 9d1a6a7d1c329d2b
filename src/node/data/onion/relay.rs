//! The relay side: builds opened with our onion key, forward cells passed on through our
//! layer (or, at the exit, acted on: `exit.rs`), backward cells given our layer on their way
//! back.

use std::collections::BTreeMap;

use super::body::Kind;
use super::{cell_drop, send_build, send_cell, Onion, MAX_RELAY_CIRCUITS, RELAY_IDLE};
use crate::crypto::onion::{
    build_ephemeral, build_key_seq, open_build, Direction, ExitClaim, RelayLayer, ANON_IID_LEN,
    CLAIM_SECRET_LEN,
};
use crate::node::data::Env;
use crate::node::DropReason;
use crate::time::Instant;
use crate::wire::{NodeId, BUILD_RECORDS_LEN, CELL_REGION_LEN};

/// One circuit we relay.
pub(super) struct Relayed {
    pub(super) layer: RelayLayer,
    /// Where backward cells go, and the leg's link id.
    pub(super) prev: NodeId,
    /// Where forward cells go and on which leg; `None` at the exit.
    next: Option<(NodeId, u32)>,
    pub(super) last_cell: Instant,
    /// The ephemeral address's interface id this circuit claimed (at the exit).
    pub(super) claim: Option<[u8; ANON_IID_LEN]>,
}

/// An interface id claimed at this exit: by which circuit, with which secret.
pub(super) struct Claim {
    pub(super) in_link: u32,
    secret: [u8; CLAIM_SECRET_LEN],
}

/// Circuits we relay, by the link id of the leg into us, with the outgoing legs' ids and,
/// as an exit, the ephemeral addresses claimed.
#[derive(Default)]
pub(super) struct RelayTable {
    pub(super) by_in: BTreeMap<u32, Relayed>,
    by_out: BTreeMap<u32, u32>,
    pub(super) claims: BTreeMap<[u8; ANON_IID_LEN], Claim>,
}

impl RelayTable {
    /// Number of circuits relayed.
    pub(super) fn len(&self) -> usize {
        self.by_in.len()
    }

    /// The previous and next node of every circuit relayed.
    pub(super) fn legs(&self) -> Vec<(NodeId, Option<NodeId>)> {
        self.by_in
            .values()
            .map(|c| (c.prev, c.next.map(|(n, _)| n)))
            .collect()
    }

    /// Forget circuits idle for `RELAY_IDLE`; returns when the next one would go.
    pub(super) fn expire(&mut self, now: Instant) -> Option<Instant> {
        let (by_out, claims) = (&mut self.by_out, &mut self.claims);
        self.by_in.retain(|in_link, c| {
            let keep = now.saturating_since(c.last_cell) < RELAY_IDLE;
            if !keep {
                if let Some((_, out)) = c.next {
                    by_out.remove(&out);
                }
                // A claim taken over by a newer circuit stays with it.
                if let Some(iid) = c.claim {
                    if claims.get(&iid).is_some_and(|h| h.in_link == *in_link) {
                        claims.remove(&iid);
                    }
                }
            }
            keep
        });
        let oldest = self.by_in.values().map(|c| c.last_cell).min();
        oldest.map(|t| t + RELAY_IDLE)
    }
}

impl RelayTable {
    /// Bind `claim`'s interface id to the circuit arriving on `in_link`: free, held by a
    /// circuit that is gone, or taken over with the same secret (a repaired circuit). False
    /// if another live circuit holds it with another secret.
    fn take_claim(&mut self, claim: &ExitClaim, in_link: u32) -> bool {
        if let Some(held) = self.claims.get(&claim.iid) {
            let alive = self.by_in.contains_key(&held.in_link);
            if alive && held.secret != claim.secret {
                return false;
            }
        }
        let entry = Claim {
            in_link,
            secret: claim.secret,
        };
        self.claims.insert(claim.iid, entry);
        true
    }
}

impl Onion {
    /// A build for us: checked against our limits, opened with one x25519, then passed to
    /// the next relay or, at the exit, answered with a build-ok.
    pub(super) fn open_build(
        &mut self,
        now: Instant,
        in_link: u32,
        records: &[u8; BUILD_RECORDS_LEN],
        env: &mut Env<'_>,
    ) {
        let stats = &mut env.shared.stats;
        let refusal = if !env.shared.cfg.relay {
            Some(DropReason::OnionBuildRefused)
        } else if !self.build_budget.allow(now) {
            Some(DropReason::OnionBuildRateLimited)
        } else if self.relayed.by_in.contains_key(&in_link) {
            Some(DropReason::OnionLinkTaken)
        } else if self.relayed.len() >= MAX_RELAY_CIRCUITS {
            Some(DropReason::OnionCircuitsFull)
        } else {
            None
        };
        if let Some(reason) = refusal {
            stats.drop(reason);
            return;
        }
        let seq = build_key_seq(records);
        let Some(key) = env.control.onion_keys().own(seq) else {
            stats.drop(DropReason::OnionBuildUnknownKey);
            return;
        };
        if self.filter.check_and_insert(seq, &build_ephemeral(records)) {
            stats.drop(DropReason::OnionBuildReplay);
            return;
        }
        let mut msg = *records;
        let Ok((order, keys)) = open_build(key, in_link, &mut msg) else {
            stats.drop(DropReason::OnionBuildAuth);
            return;
        };
        let next = (!order.exit).then_some((order.next, order.next_link));
        if next.is_some_and(|(_, out)| self.relayed.by_out.contains_key(&out)) {
            stats.drop(DropReason::OnionLinkTaken);
            return;
        }
        let claim = order
            .exit
            .then(|| ExitClaim::parse(&order.exit_data))
            .flatten();
        if let Some(claim) = claim {
            if !self.relayed.take_claim(&claim, in_link) {
                stats.drop(DropReason::AnonClaimTaken);
                return;
            }
        }
        let circuit = Relayed {
            layer: RelayLayer::new(keys, in_link),
            prev: order.prev,
            next,
            last_cell: now,
            claim: claim.map(|c| c.iid),
        };
        self.relayed.by_in.insert(in_link, circuit);
        stats.onion_circuits_relayed += 1;
        env.shared
            .timers
            .arm(crate::node::Timer::Circuits, now + RELAY_IDLE);
        match next {
            Some((next, out)) => {
                self.relayed.by_out.insert(out, in_link);
                send_build((next, out), &msg, env);
            }
            None => self.exit_answer(in_link, Kind::BuildOk, &[], env),
        }
    }

    /// A forward cell on leg `link`: our layer off, then on to the next relay; the exit
    /// reads what it carries.
    pub(super) fn forward_cell(
        &mut self,
        now: Instant,
        (link, region): (u32, &[u8; CELL_REGION_LEN]),
        deliver: &mut crate::node::ring::Ring<()>,
        env: &mut Env<'_>,
    ) {
        let Some(c) = self.relayed.by_in.get_mut(&link) else {
            env.shared.stats.drop(DropReason::OnionUnknownCircuit);
            return;
        };
        match c.next {
            Some((next, out)) => relay_cell(c, (next, out, Direction::Forward), region, now, env),
            None => self.exit_cell(now, (link, region), deliver, env),
        }
    }

    /// A backward cell on leg `link` of a circuit we relay: our layer on, then back.
    pub(super) fn relay_backward(
        &mut self,
        now: Instant,
        link: u32,
        region: &[u8; CELL_REGION_LEN],
        env: &mut Env<'_>,
    ) {
        let Some(c) = self
            .relayed
            .by_out
            .get(&link)
            .and_then(|in_link| self.relayed.by_in.get_mut(in_link))
        else {
            env.shared.stats.drop(DropReason::OnionUnknownCircuit);
            return;
        };
        let leg = (c.prev, c.layer.in_link(), Direction::Backward);
        relay_cell(c, leg, region, now, env);
    }
}

/// Pass a cell of circuit `c` on to `dst` on leg `link` with our layer taken off (forward)
/// or put on (backward), processed in the outgoing frame.
fn relay_cell(
    c: &mut Relayed,
    (dst, link, dir): (NodeId, u32, Direction),
    region: &[u8; CELL_REGION_LEN],
    now: Instant,
    env: &mut Env<'_>,
) {
    let layer = &mut c.layer;
    let sent = send_cell((dst, link, dir), env, |r| {
        r.copy_from_slice(region);
        match dir {
            Direction::Forward => layer.open_forward(r),
            Direction::Backward => layer.seal_backward(r),
        }
    });
    match sent {
        Ok(true) => {
            c.last_cell = now;
            env.shared.stats.onion_cells_relayed += 1;
        }
        Ok(false) => {}
        Err(e) => env.shared.stats.drop(cell_drop(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_state_stays_under_600_kb() {
        // A BTreeMap entry costs its key and value plus about a third for the tree's nodes;
        // each circuit has an outgoing leg or, at the exit, may claim an address.
        let entry = |size: usize| size * 4 / 3;
        let per_circuit = entry(core::mem::size_of::<(u32, Relayed)>())
            + entry(core::mem::size_of::<(u32, u32)>())
            + entry(core::mem::size_of::<([u8; ANON_IID_LEN], Claim)>());
        let filters = 2 * (1 << 18) / 8;
        let total = MAX_RELAY_CIRCUITS * per_circuit + filters;
        assert!(
            total <= 600_000,
            "{per_circuit} bytes a circuit, {total} in all"
        );
    }
}
