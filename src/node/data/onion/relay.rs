//! The relay side: builds opened with our onion key, forward cells passed on through our
//! layer (or, at the exit, answered), backward cells given our layer on their way back.

use std::collections::BTreeMap;

use super::body::{self, Kind};
use super::{cell_drop, send_build, send_cell, Onion, MAX_RELAY_CIRCUITS, RELAY_IDLE};
use crate::crypto::onion::{build_ephemeral, build_key_seq, open_build, Direction, RelayLayer};
use crate::node::data::Env;
use crate::node::DropReason;
use crate::time::Instant;
use crate::wire::{NodeId, BUILD_RECORDS_LEN, CELL_REGION_LEN};

/// One circuit we relay.
struct Relayed {
    layer: RelayLayer,
    /// Where backward cells go, and the leg's link id.
    prev: NodeId,
    /// Where forward cells go and on which leg; `None` at the exit.
    next: Option<(NodeId, u32)>,
    last_cell: Instant,
}

/// Circuits we relay, by the link id of the leg into us, with the outgoing legs' ids.
#[derive(Default)]
pub(super) struct RelayTable {
    by_in: BTreeMap<u32, Relayed>,
    by_out: BTreeMap<u32, u32>,
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
        let by_out = &mut self.by_out;
        self.by_in.retain(|_, c| {
            let keep = now.saturating_since(c.last_cell) < RELAY_IDLE;
            if !keep {
                if let Some((_, out)) = c.next {
                    by_out.remove(&out);
                }
            }
            keep
        });
        let oldest = self.by_in.values().map(|c| c.last_cell).min();
        oldest.map(|t| t + RELAY_IDLE)
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
        let circuit = Relayed {
            layer: RelayLayer::new(keys, in_link),
            prev: order.prev,
            next,
            last_cell: now,
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
        link: u32,
        region: &[u8; CELL_REGION_LEN],
        env: &mut Env<'_>,
    ) {
        let Some(c) = self.relayed.by_in.get_mut(&link) else {
            env.shared.stats.drop(DropReason::OnionUnknownCircuit);
            return;
        };
        match c.next {
            Some((next, out)) => relay_cell(c, (next, out, Direction::Forward), region, now, env),
            None => self.exit_cell(now, link, region, env),
        }
    }

    /// A forward cell at the exit: opened in the scratch buffer and acted on.
    fn exit_cell(
        &mut self,
        now: Instant,
        link: u32,
        region: &[u8; CELL_REGION_LEN],
        env: &mut Env<'_>,
    ) {
        let Some(c) = self.relayed.by_in.get_mut(&link) else {
            return;
        };
        let scratch = &mut *self.scratch;
        scratch.copy_from_slice(region);
        if let Err(e) = c.layer.open_forward(scratch) {
            env.shared.stats.drop(cell_drop(e));
            return;
        }
        c.last_cell = now;
        let mut payload = [0u8; 8];
        match body::read(&self.scratch[..]) {
            Some((Kind::Loop, p)) if p.len() == payload.len() => {
                payload.copy_from_slice(p);
                self.exit_answer(link, Kind::LoopReply, &payload, env);
            }
            _ => env.shared.stats.drop(DropReason::OnionBadBody),
        }
    }

    /// The exit starts a backward cell on the circuit whose incoming leg is `link`.
    fn exit_answer(&mut self, link: u32, kind: Kind, payload: &[u8], env: &mut Env<'_>) {
        let Some(c) = self.relayed.by_in.get_mut(&link) else {
            return;
        };
        let layer = &mut c.layer;
        let sent = send_cell((c.prev, link, Direction::Backward), env, |r| {
            r.fill(0);
            if !body::write(r, kind, payload) {
                return Err(crate::crypto::onion::OnionError::TooShort);
            }
            layer.seal_backward(r)
        });
        if let Err(e) = sent {
            env.shared.stats.drop(cell_drop(e));
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
        // A BTreeMap entry costs its key and value plus about a third for the tree's nodes.
        let per_circuit = core::mem::size_of::<(u32, Relayed)>() * 4 / 3 + 8 * 4 / 3;
        let filters = 2 * (1 << 18) / 8;
        let total = MAX_RELAY_CIRCUITS * per_circuit + filters;
        assert!(
            total <= 600_000,
            "{per_circuit} bytes a circuit, {total} in all"
        );
    }
}
