//! Output queues, counters and randomness shared by the routing sub-components.

use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use crate::iface::IfaceId;
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, NodeId, OgmRepr, SeqnoRequestRepr};

use super::neighbor::DownReason;
use super::timers::{Timer, Timers};

/// Capacity of the control action queue.
pub const ACTION_QUEUE_CAP: usize = 64;
/// Capacity of the event queue.
pub const EVENT_QUEUE_CAP: usize = 256;
/// Capacity of the OGM aggregation queue.
pub const OGM_QUEUE_CAP: usize = 256;
/// Most OGMs in one batch: 29 × 50 B fit a 1471 B broadcast plaintext; one slot is left
/// for the hello/Ihu the node may add to the same frame.
pub const OGM_BATCH_MAX: usize = 28;
/// Queued OGMs leave within a random delay in this range (aggregation and desynchronisation).
pub const OGM_AGGREGATION: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_millis(100));

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// Broadcast on every interface.
    AllInterfaces,
    /// Unicast to one neighbour.
    Neighbor {
        /// Interface.
        iface: IfaceId,
        /// Neighbour MAC.
        mac: MacAddr,
    },
}

/// A control message the node should send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Broadcast a hello on `iface`. In the encrypted broadcast frame, follow it with an
    /// Ihu message holding `Routing::ihu_entries(iface)`; a clear hello with the same seq
    /// may be sent as well for discovery.
    SendHello {
        /// Interface.
        iface: IfaceId,
        /// The hello.
        hello: crate::wire::HelloRepr,
    },
    /// Unicast a Probe to a neighbour we send data to but have not heard from.
    SendProbe {
        /// Interface.
        iface: IfaceId,
        /// Neighbour MAC.
        mac: MacAddr,
        /// Probe seq (the ProbeAck echoes it).
        seq: u32,
    },
    /// Send a seqno request.
    SendSeqnoRequest {
        /// Destination.
        dest: Dest,
        /// The request.
        req: SeqnoRequestRepr,
    },
    /// Unicast an AnnounceRequest for `node` to the neighbour that sent us its OGM.
    RequestAnnounce {
        /// Interface.
        iface: IfaceId,
        /// Neighbour MAC.
        mac: MacAddr,
        /// Originator whose announcement is missing.
        node: NodeId,
    },
}

/// Something that happened, for logs, the CLI and the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A neighbour became usable for routing.
    NeighborUp {
        /// Interface.
        iface: IfaceId,
        /// MAC.
        mac: MacAddr,
        /// Its node id.
        node: NodeId,
    },
    /// A neighbour was lost; routes through it were withdrawn.
    NeighborDown {
        /// Interface.
        iface: IfaceId,
        /// MAC.
        mac: MacAddr,
        /// Its node id, if it was authenticated.
        node: Option<NodeId>,
        /// Why.
        reason: DownReason,
    },
    /// The next hop or metric toward an originator changed (`next_hop` None: unreachable).
    RouteChanged {
        /// Originator.
        node: NodeId,
        /// New next hop.
        next_hop: Option<(IfaceId, MacAddr)>,
        /// New metric (INFINITY when unreachable).
        metric: u16,
    },
}

/// Drop and activity counters, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Counters {
    pub hellos_duplicate: u64,
    pub hellos_old: u64,
    pub hellos_clear_ignored: u64,
    pub frames_unknown_neighbor: u64,
    pub ihu_unknown_neighbor: u64,
    pub ogm_accepted: u64,
    pub ogm_own_echo: u64,
    pub ogm_unknown_neighbor: u64,
    pub ogm_ttl_zero: u64,
    pub ogm_old: u64,
    pub ogm_duplicate: u64,
    pub ogm_invalid: u64,
    pub ogm_stale: u64,
    pub ogm_unknown_originator: u64,
    pub ogm_forwarded: u64,
    pub ogm_forward_rate_limited: u64,
    pub ogm_originated: u64,
    pub ogm_queue_full: u64,
    pub ogm_seqno_exhausted: u64,
    pub retractions_sent: u64,
    pub retractions_received: u64,
    pub retractions_ignored: u64,
    pub ogm_older_epoch_fetched: u64,
    pub originators_restarted: u64,
    pub route_entries_dropped: u64,
    pub route_entries_evicted: u64,
    pub routes_expired: u64,
    pub originators_expired: u64,
    pub originators_evicted: u64,
    pub originators_refused: u64,
    pub neighbors_evicted: u64,
    pub neighbors_refused: u64,
    pub probes_sent: u64,
    pub seqno_requests_sent: u64,
    pub seqno_requests_rate_limited: u64,
    pub seqno_requests_duplicate: u64,
    pub seqno_requests_forwarded: u64,
    pub seqno_requests_answered: u64,
    pub seqno_requests_unroutable: u64,
    pub seqno_bumps: u64,
    pub seqno_bumps_rate_limited: u64,
    pub announce_requests_sent: u64,
    pub announce_requests_suppressed: u64,
    pub actions_dropped: u64,
    pub events_dropped: u64,
}

/// Outputs, deadlines and randomness, kept apart from the tables so both can be borrowed at once.
#[derive(Debug)]
pub struct Ctx {
    pub(crate) rng: ChaCha20Rng,
    pub(crate) actions: heapless::Deque<Action, ACTION_QUEUE_CAP>,
    pub(crate) events: heapless::Deque<Event, EVENT_QUEUE_CAP>,
    pub(crate) ogms: heapless::Deque<OgmRepr, OGM_QUEUE_CAP>,
    pub(crate) flush_at: Option<Instant>,
    pub(crate) flush_due: bool,
    pub(crate) counters: Counters,
    /// Routing's named deadlines: whatever gives routing state an earlier one arms it here.
    pub(crate) timers: Timers,
}

impl Ctx {
    pub(crate) fn new(rng: ChaCha20Rng) -> Self {
        Ctx {
            rng,
            actions: heapless::Deque::new(),
            events: heapless::Deque::new(),
            ogms: heapless::Deque::new(),
            flush_at: None,
            flush_due: false,
            counters: Counters::default(),
            timers: Timers::default(),
        }
    }

    pub(crate) fn action(&mut self, a: Action) {
        if self.actions.push_back(a).is_err() {
            self.counters.actions_dropped += 1;
        }
    }

    pub(crate) fn event(&mut self, e: Event) {
        if self.events.push_back(e).is_err() {
            self.counters.events_dropped += 1;
        }
    }

    /// Uniform random duration in [lo, hi).
    pub(crate) fn jitter(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = (hi - lo).as_micros().max(1);
        lo + Duration::from_micros(self.rng.next_u64() % span)
    }

    /// Queue an OGM for the next aggregated broadcast. A queued OGM of the same
    /// originator is superseded in place rather than sent twice.
    pub(crate) fn queue_ogm(&mut self, now: Instant, ogm: OgmRepr) {
        if let Some(q) = self.ogms.iter_mut().find(|q| q.node == ogm.node) {
            *q = ogm;
            return;
        }
        if self.ogms.push_back(ogm).is_err() {
            self.counters.ogm_queue_full += 1;
            return;
        }
        if self.flush_at.is_none() {
            let d = self.jitter(OGM_AGGREGATION.0, OGM_AGGREGATION.1);
            self.flush_at = Some(now + d);
            self.timers.arm(Timer::OgmFlush, now + d);
        }
        if self.ogms.len() >= OGM_BATCH_MAX {
            self.flush_due = true;
        }
    }

    /// Queue an OGM and make the batch holding it due now (retractions: every aggregation
    /// delay is traffic sent into a dead link).
    pub(crate) fn queue_urgent_ogm(&mut self, now: Instant, ogm: OgmRepr) {
        self.queue_ogm(now, ogm);
        self.flush_due = true;
    }

    /// Take up to OGM_BATCH_MAX queued OGMs if a flush is due.
    pub(crate) fn take_batch(&mut self) -> Option<heapless::Vec<OgmRepr, OGM_BATCH_MAX>> {
        if !self.flush_due || self.ogms.is_empty() {
            return None;
        }
        let mut batch = heapless::Vec::new();
        while batch.len() < OGM_BATCH_MAX {
            let Some(o) = self.ogms.pop_front() else {
                break;
            };
            // Capacity was checked by the loop condition.
            let _ = batch.push(o);
        }
        if self.ogms.is_empty() {
            self.flush_due = false;
            self.flush_at = None;
        }
        Some(batch)
    }
}
