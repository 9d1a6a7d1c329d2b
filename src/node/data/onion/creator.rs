//! The creator side: circuits of our own, built in one pass through relays picked among
//! those whose onion keys we hold and can route to, confirmed by the exit's build-ok, kept
//! alive with loops through the whole circuit, and replaced when they time out, die or age.

use std::collections::BTreeMap;

use rand_chacha::rand_core::RngCore;

use super::body::{self, Kind, PAYLOAD_AT};
use super::sender::{receive_reply, OwnFlow};
use super::{
    send_build, send_cell, Onion, BUILD_TIMEOUT, CIRCUIT_LIFETIME, LOOP_INTERVAL, MAX_OWN_CIRCUITS,
};
use crate::crypto::onion::{
    seal_build, AnonIdentity, CreatorCircuit, Direction, HopOrder, HopSpec, OnionKeyRecord,
    BUILD_LEN, EXIT_DATA_LEN, MAX_HOPS,
};
use crate::node::data::Env;
use crate::node::ring::Ring;
use crate::node::DropReason;
use crate::time::{Duration, Instant};
use crate::wire::{NodeId, CELL_REGION_LEN};

/// Circuits of our own kept built ahead when `NodeConfig::circuits` is on.
pub const SPARE_CIRCUITS: usize = 1;
/// A relay is eligible once we have held its onion key this long: a node that just appeared
/// may not be reachable from the other relays yet (ONION.md asks minutes; this is the first
/// step, long enough for routes around it to settle).
pub const RELAY_MIN_KNOWN: Duration = Duration::from_secs(10);
/// How soon a circuit that could not be built is tried again.
pub const BUILD_RETRY: Duration = Duration::from_secs(1);
/// Fewer eligible relays than this makes circuits of two relays (docs/protocol.md §8.8).
pub const FULL_CIRCUIT_MIN_RELAYS: usize = 3;
/// A circuit that carried anonymous packets this recently is rebuilt through the same exit
/// with the same ephemeral address when it dies or ages, so the flows on it go on.
pub const ANON_REPAIR_WINDOW: Duration = Duration::from_secs(120);
/// How long a repair waits for its exit to be eligible again before the address is given up.
pub const REPAIR_WAIT: Duration = Duration::from_secs(10);

/// A circuit of our own, as the CLI and tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitInfo {
    /// The relays, guard first.
    pub relays: Vec<NodeId>,
    /// Whether the exit confirmed the build.
    pub built: bool,
    /// Time from sending the build to its build-ok, in microseconds.
    pub build_us: Option<u64>,
    /// Round-trip time of the last answered loop, in microseconds.
    pub rtt_us: Option<u64>,
    /// Age in milliseconds.
    pub age_ms: u64,
    /// Cells sent and received through it.
    pub cells_out: u64,
    /// Cells received through it.
    pub cells_in: u64,
    /// The interface id of the ephemeral address it carries (docs/protocol.md §5.7).
    pub address_iid: [u8; crate::crypto::onion::ANON_IID_LEN],
}

/// What a repaired circuit keeps of the one it replaces: the exit, the ephemeral address and
/// the flows through it.
pub(super) type Repair = (NodeId, AnonIdentity, BTreeMap<NodeId, OwnFlow>);

/// A circuit of our own.
pub(super) struct OwnCircuit {
    pub(super) circuit: CreatorCircuit,
    /// The relays, guard first, exit last.
    pub(super) relays: heapless::Vec<NodeId, MAX_HOPS>,
    /// The ephemeral address it carries (claimed at its exit).
    pub(super) anon: AnonIdentity,
    /// Anonymous flows through it, by destination.
    pub(super) flows: BTreeMap<NodeId, OwnFlow>,
    /// When it last carried an anonymous packet.
    pub(super) anon_used: Option<Instant>,
    created: Instant,
    built: Option<Instant>,
    /// Loops sent (each carries its number) and the highest number answered.
    loops_sent: u64,
    loops_answered: u64,
    /// When the last loop went.
    last_loop: Instant,
    rtt: Option<Duration>,
    pub(super) cells_out: u64,
    cells_in: u64,
}

impl OwnCircuit {
    /// A loop went out that is not answered yet.
    fn loop_pending(&self) -> bool {
        self.loops_sent > self.loops_answered
    }

    /// Whether `payload` answers a loop we sent that was not answered yet (a circuit's
    /// answers come back in order: relays keep a circuit's cells in order).
    fn answers(&self, payload: &[u8]) -> bool {
        let Ok(number) = <[u8; 8]>::try_from(payload).map(u64::from_be_bytes) else {
            return false;
        };
        number > self.loops_answered && number <= self.loops_sent
    }
}

/// Our circuits by the link id of their first leg (backward cells arrive on it).
#[derive(Default)]
pub(super) struct OwnCircuits {
    pub(super) by_link: BTreeMap<u32, OwnCircuit>,
    /// Addresses to carry on through a new circuit once their exit is eligible again (it may
    /// lack a route for a moment while the mesh routes around a dead relay), since when.
    repairs: Vec<(Repair, Instant)>,
}

impl OwnCircuits {
    /// What the CLI shows of each circuit.
    pub(super) fn infos(&self, now: Instant) -> Vec<CircuitInfo> {
        self.by_link
            .values()
            .map(|c| CircuitInfo {
                relays: c.relays.to_vec(),
                built: c.built.is_some(),
                build_us: c.built.map(|b| b.saturating_since(c.created).as_micros()),
                rtt_us: c.rtt.map(Duration::as_micros),
                age_ms: now.saturating_since(c.created).as_millis(),
                cells_out: c.cells_out,
                cells_in: c.cells_in,
                address_iid: c.anon.iid(),
            })
            .collect()
    }

    /// The built circuit that carries our ephemeral address: the one that carried anonymous
    /// packets last, else the oldest.
    pub(super) fn anon_circuit(&self) -> Option<u32> {
        let built = self.by_link.iter().filter(|(_, c)| c.built.is_some());
        let pick = built.max_by_key(|(_, c)| (c.anon_used, core::cmp::Reverse(c.created)));
        pick.map(|(l, _)| *l)
    }
}

impl Onion {
    /// Drop circuits that failed, died or aged; build one if fewer than `SPARE_CIRCUITS`
    /// are up or on their way; send loops that are due. Returns the next deadline, if any.
    pub(super) fn maintain(&mut self, now: Instant, env: &mut Env<'_>) -> Option<Instant> {
        let (stats, control) = (&mut env.shared.stats, &*env.control);
        let ending: heapless::Vec<u32, MAX_OWN_CIRCUITS> = self
            .own
            .by_link
            .iter()
            .filter(|(_, c)| {
                let timed_out =
                    c.built.is_none() && now.saturating_since(c.created) >= BUILD_TIMEOUT;
                // A relay the mesh no longer reaches (crashed, or gone out of range) breaks
                // the circuit now, without waiting for a loop to go unanswered.
                let unreachable = c.relays.iter().any(|r| control.next_hop(r).is_none());
                let dead = unreachable
                    || (c.loop_pending() && now.saturating_since(c.last_loop) >= LOOP_INTERVAL);
                let old = now.saturating_since(c.created) >= CIRCUIT_LIFETIME;
                if timed_out {
                    stats.drop(DropReason::OnionBuildTimeout);
                } else if dead {
                    stats.onion_circuits_broken += 1;
                }
                timed_out || dead || old
            })
            .map(|(l, _)| *l)
            .collect();
        for link in ending {
            let Some(c) = self.own.by_link.remove(&link) else {
                continue;
            };
            let in_use = c
                .anon_used
                .is_some_and(|t| now.saturating_since(t) < ANON_REPAIR_WINDOW);
            if let (true, Some(&exit)) = (in_use, c.relays.last()) {
                // The flows go along: their counters must go on growing for the destination's
                // replay windows.
                if self.own.repairs.len() < MAX_OWN_CIRCUITS {
                    self.own.repairs.push(((exit, c.anon, c.flows), now));
                }
            }
        }
        self.repair(now, env);
        let wanted = env.shared.cfg.circuits || env.shared.cfg.anonymous;
        // While a repair waits, no circuit with a new address: the destination would see the
        // flows' packets come from another address and reset them.
        let held = self.own.by_link.len() + self.own.repairs.len();
        let short = wanted && held < SPARE_CIRCUITS;
        if short && !self.build(now, env, None) {
            // Nothing to build through yet (keys or routes still coming): try again soon.
            let retry = now + BUILD_RETRY;
            return Some(self.next_deadline().map_or(retry, |d| d.min(retry)));
        }
        let due: heapless::Vec<u32, MAX_OWN_CIRCUITS> = self
            .own
            .by_link
            .iter()
            .filter(|(_, c)| {
                c.built.is_some() && now.saturating_since(c.last_loop) >= LOOP_INTERVAL
            })
            .map(|(l, _)| *l)
            .collect();
        for link in due {
            self.send_loop(now, link, env);
        }
        let next = self.next_deadline();
        // With circuits on, the relays' reachability is checked every `BUILD_RETRY`, and a
        // circuit is rebuilt when the last goes.
        match wanted {
            true => Some(next.map_or(now + BUILD_RETRY, |d| d.min(now + BUILD_RETRY))),
            false => next,
        }
    }

    /// Rebuild the circuits waiting for repair whose exit is eligible again; give up those
    /// that waited `REPAIR_WAIT`.
    fn repair(&mut self, now: Instant, env: &mut Env<'_>) {
        let waiting = core::mem::take(&mut self.own.repairs);
        for ((exit, anon, flows), since) in waiting {
            let eligible = env.control.next_hop(&exit).is_some()
                && env
                    .control
                    .onion_keys()
                    .relays(now, RELAY_MIN_KNOWN)
                    .any(|r| r.node == exit);
            if eligible {
                self.build(now, env, Some((exit, anon, flows)));
            } else if now.saturating_since(since) < REPAIR_WAIT {
                self.own.repairs.push(((exit, anon, flows), since));
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for c in self.own.by_link.values() {
            let deadline = match c.built {
                None => c.created + BUILD_TIMEOUT,
                Some(_) => c.last_loop + LOOP_INTERVAL,
            };
            let d = deadline.min(c.created + CIRCUIT_LIFETIME);
            next = Some(next.map_or(d, |n| n.min(d)));
        }
        next
    }

    /// Build a circuit through relays picked uniformly among those eligible: a live onion
    /// key held for `RELAY_MIN_KNOWN`, a route, not us. Three relays, or two when fewer are
    /// eligible (counted). `repair` keeps an ephemeral address and its flows: its exit stays
    /// the exit (if still eligible) and is asked to hand the address over to the new circuit.
    pub(super) fn build(
        &mut self,
        now: Instant,
        env: &mut Env<'_>,
        repair: Option<Repair>,
    ) -> bool {
        if self.own.by_link.len() >= MAX_OWN_CIRCUITS {
            return false;
        }
        let me = env.shared.id;
        let mut eligible: Vec<OnionKeyRecord> = env
            .control
            .onion_keys()
            .relays(now, RELAY_MIN_KNOWN)
            .filter(|r| r.node != me && env.control.next_hop(&r.node).is_some())
            .copied()
            .collect();
        let hops = eligible.len().min(MAX_HOPS);
        if hops < FULL_CIRCUIT_MIN_RELAYS - 1 {
            env.shared.stats.drop(DropReason::OnionNoRelays);
            return false;
        }
        if hops < FULL_CIRCUIT_MIN_RELAYS {
            // Relays whose keys are too new to use yet: at start, a third is usually a few
            // seconds away, so wait for it rather than relax the rule for the circuit's life.
            // (A repair does not wait: its flows are stalled meanwhile.)
            let coming = env.control.onion_keys().relays(now, Duration::ZERO);
            let coming = coming
                .filter(|r| r.node != me && env.control.next_hop(&r.node).is_some())
                .count();
            if repair.is_none() && coming >= FULL_CIRCUIT_MIN_RELAYS {
                return false;
            }
            env.shared.stats.onion_two_relay_builds += 1;
        }
        // The repaired address's exit goes last; the others are picked before it.
        let kept = repair.and_then(|(exit, anon, flows)| {
            let at = eligible.iter().position(|r| r.node == exit)?;
            let last = eligible.len() - 1;
            eligible.swap(at, last);
            Some((anon, flows))
        });
        let pool = eligible.len() - usize::from(kept.is_some());
        let free = hops - usize::from(kept.is_some());
        // A partial Fisher-Yates shuffle: the first `free` are a uniform pick.
        for i in 0..free {
            let left = (pool - i) as u64;
            let j = i + (env.shared.rng.next_u64() % left) as usize;
            eligible.swap(i, j);
        }
        if kept.is_some() {
            let last = eligible.len() - 1;
            eligible.swap(free, last);
        }
        // A repaired address is in use: the new circuit carries it as soon as it is built.
        let anon_used = kept.is_some().then_some(now);
        let (anon, flows) =
            kept.unwrap_or_else(|| (AnonIdentity::generate(&mut env.shared.rng), BTreeMap::new()));
        let picked = &eligible[..hops];
        let links: heapless::Vec<u32, MAX_HOPS> = picked
            .iter()
            .map(|_| env.shared.rng.next_u32() | 1)
            .collect();
        let specs: heapless::Vec<HopSpec, MAX_HOPS> = picked
            .iter()
            .enumerate()
            .map(|(i, r)| HopSpec {
                onion_key: r.key,
                key_seq: r.seq,
                order: HopOrder {
                    exit: i + 1 == hops,
                    prev: if i == 0 { me } else { picked[i - 1].node },
                    next: picked.get(i + 1).map_or(NodeId([0; 16]), |n| n.node),
                    next_link: links.get(i + 1).copied().unwrap_or(0),
                    exit_data: match i + 1 == hops {
                        true => anon.exit_data(),
                        false => [0; EXIT_DATA_LEN],
                    },
                },
            })
            .collect();
        let mut msg = [0u8; BUILD_LEN];
        let Ok(keys) = seal_build(&specs, links[0], &mut env.shared.rng, &mut msg) else {
            env.shared.stats.drop(DropReason::OnionBuildAuth);
            return false;
        };
        let pad = env.shared.seed();
        let Ok(circuit) = CreatorCircuit::new(keys, &links, pad) else {
            return false;
        };
        if !send_build((picked[0].node, links[0]), &msg, env) {
            return false;
        }
        env.shared.stats.onion_builds_sent += 1;
        self.own.by_link.insert(
            links[0],
            OwnCircuit {
                circuit,
                relays: picked.iter().map(|r| r.node).collect(),
                anon,
                flows,
                anon_used,
                created: now,
                built: None,
                loops_sent: 0,
                loops_answered: 0,
                last_loop: now,
                rtt: None,
                cells_out: 0,
                cells_in: 0,
            },
        );
        true
    }

    /// Send a loop through circuit `link`: the exit answers it with its payload, the loop's
    /// number. Returns whether it was queued.
    pub(super) fn send_loop(&mut self, now: Instant, link: u32, env: &mut Env<'_>) -> bool {
        let Some(c) = self.own.by_link.get_mut(&link) else {
            return false;
        };
        let number = c.loops_sent + 1;
        let payload = number.to_be_bytes();
        let Some(&guard) = c.relays.first() else {
            return false;
        };
        let circuit = &mut c.circuit;
        let sent = send_cell((guard, link, Direction::Forward), env, |r| {
            if !body::write(r, Kind::Loop, &payload) {
                return Err(crate::crypto::onion::OnionError::TooShort);
            }
            circuit.seal_forward(r)
        });
        c.last_loop = now;
        if sent != Ok(true) {
            return false;
        }
        c.loops_sent = number;
        c.cells_out += 1;
        true
    }

    /// The link id of our oldest built circuit.
    #[cfg(feature = "sim")]
    pub(super) fn first_built(&self) -> Option<u32> {
        let built = self.own.by_link.iter().filter(|(_, c)| c.built.is_some());
        built.min_by_key(|(_, c)| c.created).map(|(l, _)| *l)
    }

    /// A backward cell on leg `link`: ours to open, or a relay's to pass back.
    pub(super) fn backward_cell(
        &mut self,
        now: Instant,
        (link, region): (u32, &[u8; CELL_REGION_LEN]),
        deliver: &mut Ring<()>,
        env: &mut Env<'_>,
    ) {
        let Some(c) = self.own.by_link.get_mut(&link) else {
            return self.relay_backward(now, link, region, env);
        };
        let scratch = &mut *self.scratch;
        scratch.copy_from_slice(region);
        // A cell that fails is dropped silently toward the circuit (nothing goes back).
        if let Err(e) = c.circuit.open_backward(scratch) {
            env.shared.stats.drop(super::cell_drop(e));
            return;
        }
        c.cells_in += 1;
        match body::read(&scratch[..]) {
            Some((Kind::BuildOk, [])) if c.built.is_none() => {
                c.built = Some(now);
                c.last_loop = now;
                env.shared.stats.onion_circuits_built += 1;
                let took = now.saturating_since(c.created);
                env.shared.stats.record_build_ms(took.as_millis());
            }
            Some((Kind::LoopReply, p)) if c.answers(p) => {
                let number = <[u8; 8]>::try_from(p).map_or(0, u64::from_be_bytes);
                // The newest loop's answer times the circuit; an older one only counts.
                if number == c.loops_sent {
                    c.rtt = Some(now.saturating_since(c.last_loop));
                }
                c.loops_answered = number;
            }
            Some((Kind::AnonymousReply, p)) => {
                let end = PAYLOAD_AT + p.len();
                if let Some(payload) = scratch.get_mut(PAYLOAD_AT..end) {
                    receive_reply(c, payload, deliver, env);
                }
            }
            _ => env.shared.stats.drop(DropReason::OnionBadBody),
        }
    }
}
