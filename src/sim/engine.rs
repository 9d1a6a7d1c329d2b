//! The event loop: one queue of frame arrivals, host timers, test traffic, scenario
//! actions and route checks, processed in (time, insertion) order.

use std::net::Ipv6Addr;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::convergence::ConvergenceLog;
use super::host::SimHost;
use super::medium::{mac_of, Medium, MediumError, Reception};
use super::queue::{EventKind, EventQueue, FramePool};
use super::scenario::{Action, EngineStats, SimConfig, SimError, MAX_ACTIONS};
use super::topology::Topology;
use super::traffic::{
    build_test_packet, parse_test_packet, Flow, FlowSpec, TestPacket, MAX_FLOWS, MAX_FLOW_PACKETS,
    TEST_PACKET_MIN_LEN,
};
use crate::node::IfaceId;
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, NodeId, MAX_FRAME_LEN};

mod inspect;

/// Builds the host of node `index` for restart `epoch` (0 first) with MAC `mac`.
pub type Factory<H> = Box<dyn FnMut(usize, u32, MacAddr, Instant) -> H>;

/// Same-instant timer firings of one host before the engine nudges it 1 us ahead.
const SPIN_CAP: u32 = 1000;
/// Size of the buffer hosts deliver IP packets into.
const DELIVER_BUF_LEN: usize = 65_536;

#[derive(Debug, Clone, Copy, Default)]
struct TimerSlot {
    at: Option<Instant>,
    gen: u32,
    fired_at: Option<Instant>,
    spins: u32,
}

/// A deterministic simulation of many hosts over one medium.
pub struct Sim<H: SimHost> {
    cfg: SimConfig,
    now: Instant,
    queue: EventQueue,
    medium: Medium,
    rng: ChaCha20Rng,
    hosts: Vec<Option<H>>,
    ids: Vec<NodeId>,
    addrs: Vec<Ipv6Addr>,
    epochs: Vec<u32>,
    timers: Vec<TimerSlot>,
    hook_base: Vec<u64>,
    hook_last: Vec<u64>,
    factory: Factory<H>,
    pool: FramePool,
    flows: Vec<Flow>,
    actions: Vec<Action>,
    conv: ConvergenceLog,
    stats: EngineStats,
    digest: u64,
    tx_buf: Vec<u8>,
    rx_buf: Vec<u8>,
    receptions: Vec<Reception>,
}

impl<H: SimHost> Sim<H> {
    /// Builds every host with epoch 0 and drains each once at time zero, in index order.
    pub fn new(
        topo: &Topology,
        cfg: SimConfig,
        factory: impl FnMut(usize, u32, MacAddr, Instant) -> H + 'static,
    ) -> Sim<H> {
        let n = topo.len();
        let mut sim = Sim {
            cfg,
            now: Instant::ZERO,
            queue: EventQueue::default(),
            medium: Medium::new(topo, cfg.medium),
            rng: ChaCha20Rng::seed_from_u64(cfg.seed),
            hosts: (0..n).map(|_| None).collect(),
            ids: vec![NodeId::default(); n],
            addrs: vec![Ipv6Addr::UNSPECIFIED; n],
            epochs: vec![0; n],
            timers: vec![TimerSlot::default(); n],
            hook_base: vec![0; n],
            hook_last: vec![0; n],
            factory: Box::new(factory),
            pool: FramePool::new(cfg.max_frames_in_flight),
            flows: Vec::new(),
            actions: Vec::new(),
            conv: ConvergenceLog::default(),
            stats: EngineStats::default(),
            digest: 0xcbf2_9ce4_8422_2325,
            tx_buf: vec![0; MAX_FRAME_LEN],
            rx_buf: vec![0; DELIVER_BUF_LEN],
            receptions: Vec::new(),
        };
        for i in 0..n {
            sim.build(i, 0);
        }
        sim.queue
            .push(Instant::ZERO + cfg.check_interval, EventKind::Check);
        sim
    }

    /// Adds a test-traffic flow; returns its id (index into `flows()`).
    pub fn add_flow(&mut self, spec: FlowSpec) -> Result<usize, SimError> {
        self.check_node(spec.src)?;
        self.check_node(spec.dst)?;
        let bad = |why| Err(SimError::BadFlow(why));
        if spec.src == spec.dst {
            return bad("source and destination are the same node");
        }
        if spec.interval == Duration::ZERO {
            return bad("interval must be positive");
        }
        if spec.count > MAX_FLOW_PACKETS {
            return bad("more packets than MAX_FLOW_PACKETS");
        }
        if spec.payload_len > DELIVER_BUF_LEN - TEST_PACKET_MIN_LEN {
            return bad("payload longer than an IPv6 packet can carry");
        }
        if self.flows.len() >= MAX_FLOWS {
            return Err(SimError::TooManyFlows(MAX_FLOWS));
        }
        self.flows.push(Flow::new(spec));
        let id = self.flows.len() - 1;
        if spec.count > 0 {
            self.queue.push(
                spec.start.max(self.now),
                EventKind::Flow { flow: id as u32 },
            );
        }
        Ok(id)
    }

    /// Adds the answers of a request/response exchange: from the moment flow `request`'s
    /// destination receives a packet (the first copy), it sends one back with the same
    /// sequence number and payload length. Returns the reply flow's id; its statistics
    /// count the answers arriving back at the request's source.
    pub fn add_reply_flow(&mut self, request: usize) -> Result<usize, SimError> {
        let Some(req) = self.flows.get(request) else {
            return Err(SimError::BadFlow("no such request flow"));
        };
        if req.reply.is_some() {
            return Err(SimError::BadFlow(
                "the request flow already has a reply flow",
            ));
        }
        if self.flows.len() >= MAX_FLOWS {
            return Err(SimError::TooManyFlows(MAX_FLOWS));
        }
        let spec = FlowSpec {
            src: req.spec.dst,
            dst: req.spec.src,
            ..req.spec
        };
        self.flows.push(Flow::new(spec));
        let id = self.flows.len() - 1;
        if let Some(req) = self.flows.get_mut(request) {
            req.reply = Some(id);
        }
        Ok(id)
    }

    /// Schedules `action` at `at` (not before now); refused if it names no node or link.
    pub fn schedule(&mut self, at: Instant, action: Action) -> Result<(), SimError> {
        if at < self.now {
            return Err(SimError::InThePast {
                at_us: at.as_micros(),
                now_us: self.now.as_micros(),
            });
        }
        if self.actions.len() >= MAX_ACTIONS {
            return Err(SimError::TooManyActions(MAX_ACTIONS));
        }
        self.validate(&action)?;
        self.actions.push(action);
        self.queue.push(
            at,
            EventKind::Action {
                idx: (self.actions.len() - 1) as u32,
            },
        );
        Ok(())
    }

    /// Applies `action` now and marks a disruption for convergence tracking.
    pub fn apply(&mut self, action: Action) -> Result<(), SimError> {
        self.validate(&action)?;
        match action {
            Action::Cut { a, b } => self.medium.cut(a, b)?,
            Action::Heal { a, b } => self.medium.heal(a, b)?,
            Action::SetLoss { from, to, loss } => self.medium.set_loss(from, to, loss)?,
            Action::Crash(i) => self.crash(i),
            Action::Restart(i) => {
                self.crash(i);
                let epoch = self.epochs[i].wrapping_add(1);
                self.build(i, epoch);
            }
            Action::RestartAtEpoch { node, epoch } => {
                self.crash(node);
                self.build(node, epoch);
            }
        }
        self.conv.disrupt(self.now);
        Ok(())
    }

    /// Processes every event due at or before `end`, then sets the clock to `end`.
    pub fn run_until(&mut self, end: Instant) {
        while let Some(ev) = self.queue.pop_until(end) {
            self.now = ev.at;
            self.stats.events += 1;
            self.stats.max_queue_len = self.stats.max_queue_len.max(self.queue.len() + 1);
            self.dispatch(ev.kind);
        }
        self.now = self.now.max(end);
        self.stats.frame_pool_high_water = self.pool.high_water();
    }

    /// Runs for `d` more simulated time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Drains node `i`'s output and reschedules its timer (after direct input via `host_mut`).
    pub fn drive(&mut self, i: usize) {
        self.drain_transmits(i);
        self.drain_deliveries(i);
        if let Some(host) = self.hosts.get(i).and_then(Option::as_ref) {
            self.hook_last[i] = host.control_bytes_sent();
            let want = host.poll_timeout();
            self.set_timer(i, want);
        }
    }

    fn dispatch(&mut self, kind: EventKind) {
        mix(&mut self.digest, self.now.as_micros());
        match kind {
            EventKind::Frame { to, from, slot } => self.on_frame(to as usize, from as usize, slot),
            EventKind::Timer { node, gen } => self.on_timer(node as usize, gen),
            EventKind::Flow { flow } => self.on_flow(flow as usize),
            EventKind::Reply { flow, seq } => {
                mix(&mut self.digest, 5 << 32 | u64::from(flow));
                self.send_test_packet(flow as usize, seq);
            }
            EventKind::Action { idx } => {
                mix(&mut self.digest, 4);
                let action = self.actions[idx as usize];
                if self.apply(action).is_err() {
                    self.stats.failed_actions += 1;
                }
            }
            EventKind::Check => {
                if self.conv.needs_check() {
                    let failure = self.check_routes();
                    self.conv.record(self.now, failure);
                }
                let every = self.cfg.check_interval.max(Duration::from_micros(1));
                self.queue.push(self.now + every, EventKind::Check);
            }
        }
    }

    fn on_frame(&mut self, to: usize, from: usize, slot: u32) {
        mix(&mut self.digest, 1 << 32 | (to as u64) << 8);
        match self.hosts.get_mut(to).and_then(Option::as_mut) {
            Some(host) => {
                host.handle_frame(self.now, IfaceId(0), mac_of(from), self.pool.get(slot));
                self.stats.frames_delivered += 1;
                self.pool.release(slot);
                self.drive(to);
            }
            None => {
                self.stats.frames_to_dead += 1;
                self.pool.release(slot);
            }
        }
    }

    fn on_timer(&mut self, node: usize, gen: u32) {
        mix(&mut self.digest, 2 << 32 | node as u64);
        let Some(t) = self
            .timers
            .get_mut(node)
            .filter(|t| t.gen == gen && t.at.is_some())
        else {
            self.stats.stale_timers += 1;
            return;
        };
        t.at = None;
        if t.fired_at == Some(self.now) {
            t.spins += 1;
        } else {
            t.fired_at = Some(self.now);
            t.spins = 0;
        }
        if let Some(host) = self.hosts.get_mut(node).and_then(Option::as_mut) {
            host.handle_timeout(self.now);
            self.drive(node);
        }
    }

    fn on_flow(&mut self, f: usize) {
        mix(&mut self.digest, 3 << 32 | f as u64);
        let Some(flow) = self.flows.get_mut(f) else {
            return;
        };
        let Some((seq, next)) = flow.next_send() else {
            return;
        };
        if let Some(t) = next {
            self.queue.push(t, EventKind::Flow { flow: f as u32 });
        }
        self.send_test_packet(f, seq);
    }

    /// Hand packet `seq` of flow `f` to its source host.
    fn send_test_packet(&mut self, f: usize, seq: u64) {
        let Some(flow) = self.flows.get_mut(f) else {
            return;
        };
        let (src, dst) = (flow.spec.src, flow.spec.dst);
        let Some(host) = self.hosts.get_mut(src).and_then(Option::as_mut) else {
            flow.stats.skipped_dead_src += 1;
            return;
        };
        let pkt = TestPacket {
            src: self.addrs[src],
            dst: flow.answer_to.unwrap_or(self.addrs[dst]),
            flow: f as u16,
            seq,
        };
        let Some(len) = build_test_packet(&mut self.rx_buf, &pkt, flow.spec.payload_len) else {
            return;
        };
        flow.on_sent(self.now);
        host.handle_ip_packet(self.now, &self.rx_buf[..len]);
        self.drive(src);
    }

    fn drain_transmits(&mut self, i: usize) {
        let now = self.now;
        let Some(host) = self.hosts.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        for polls in 1.. {
            if polls > self.cfg.drain_cap {
                self.stats.drain_cap_hits += 1;
                break;
            }
            let Some(tx) = host.poll_transmit(now, &mut self.tx_buf) else {
                break;
            };
            let Some(frame) = self.tx_buf.get(..tx.len) else {
                self.stats.bad_transmits += 1;
                continue;
            };
            let head = frame.first().copied().unwrap_or(0) as u64;
            let dst = u64::from_be_bytes([
                0,
                0,
                tx.dst.0[0],
                tx.dst.0[1],
                tx.dst.0[2],
                tx.dst.0[3],
                tx.dst.0[4],
                tx.dst.0[5],
            ]);
            mix(
                &mut self.digest,
                (i as u64) << 40 | (tx.len as u64) << 8 | head,
            );
            mix(&mut self.digest, dst);
            // Every byte: a reordering inside a frame (say, of a table walked in hash
            // order) must change the digest too.
            mix_bytes(&mut self.digest, frame);
            self.receptions.clear();
            let sent =
                self.medium
                    .transmit(now, i, tx.dst, frame, &mut self.rng, &mut self.receptions);
            if sent && !self.receptions.is_empty() {
                match self.pool.alloc(frame, self.receptions.len() as u32) {
                    Some(slot) => {
                        for r in &self.receptions {
                            self.queue.push(
                                r.at,
                                EventKind::Frame {
                                    to: r.to as u32,
                                    from: i as u32,
                                    slot,
                                },
                            );
                        }
                    }
                    None => self.stats.pool_exhausted += 1,
                }
            }
        }
    }

    fn drain_deliveries(&mut self, i: usize) {
        let Some(host) = self.hosts.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        for polls in 1.. {
            if polls > self.cfg.drain_cap {
                self.stats.drain_cap_hits += 1;
                break;
            }
            let Some(len) = host.poll_deliver(&mut self.rx_buf) else {
                break;
            };
            let parsed = self.rx_buf.get(..len).map(parse_test_packet);
            match parsed {
                None => self.stats.bad_deliveries += 1,
                Some(Some(p)) if (p.flow as usize) < self.flows.len() => {
                    let flow = &mut self.flows[p.flow as usize];
                    if let (true, Some(reply)) =
                        (flow.on_delivered(self.now, (i, p.src), p.seq), flow.reply)
                    {
                        if let Some(r) = self.flows.get_mut(reply) {
                            r.answer_to = Some(p.src);
                        }
                        let kind = EventKind::Reply {
                            flow: reply as u32,
                            seq: p.seq,
                        };
                        self.queue.push(self.now, kind);
                    }
                }
                Some(_) => self.stats.stray_deliveries += 1,
            }
        }
    }

    fn set_timer(&mut self, i: usize, want: Option<Instant>) {
        let now = self.now;
        let Some(t) = self.timers.get_mut(i) else {
            return;
        };
        let mut want = want.map(|w| w.max(now));
        if want == Some(now) && t.fired_at == Some(now) && t.spins >= SPIN_CAP {
            self.stats.timer_spin_breaks += 1;
            want = Some(now + Duration::from_micros(1));
        }
        if want == t.at {
            return;
        }
        t.gen = t.gen.wrapping_add(1);
        t.at = want;
        if let Some(at) = want {
            self.queue.push(
                at,
                EventKind::Timer {
                    node: i as u32,
                    gen: t.gen,
                },
            );
        }
    }

    fn build(&mut self, i: usize, epoch: u32) {
        let host = (self.factory)(i, epoch, mac_of(i), self.now);
        self.stats.hosts_built += 1;
        self.ids[i] = host.node_id();
        self.addrs[i] = host.overlay_addr();
        self.epochs[i] = epoch;
        self.hosts[i] = Some(host);
        self.drive(i);
    }

    fn crash(&mut self, i: usize) {
        if self.hosts[i].take().is_some() {
            self.hook_base[i] += self.hook_last[i];
            self.hook_last[i] = 0;
            self.set_timer(i, None);
        }
    }

    fn check_node(&self, node: usize) -> Result<(), SimError> {
        if node >= self.hosts.len() {
            return Err(SimError::NodeOutOfRange {
                node,
                n: self.hosts.len(),
            });
        }
        Ok(())
    }

    fn validate(&self, action: &Action) -> Result<(), SimError> {
        match *action {
            Action::Cut { a, b } | Action::Heal { a, b } => {
                self.check_node(a)?;
                self.check_node(b)?;
                self.medium
                    .link(a, b)
                    .ok_or(MediumError::NoSuchLink { from: a, to: b })?;
            }
            Action::SetLoss { from, to, loss } => {
                self.check_node(from)?;
                self.check_node(to)?;
                self.medium
                    .link(from, to)
                    .ok_or(MediumError::NoSuchLink { from, to })?;
                if !(0.0..=1.0).contains(&loss) {
                    return Err(MediumError::BadLoss(loss).into());
                }
            }
            Action::Crash(i) | Action::Restart(i) => self.check_node(i)?,
            Action::RestartAtEpoch { node, .. } => self.check_node(node)?,
        }
        Ok(())
    }
}

/// FNV-1a over the 8 bytes of `v`.
fn mix(digest: &mut u64, v: u64) {
    mix_bytes(digest, &v.to_le_bytes());
}

/// FNV-1a over `bytes`.
fn mix_bytes(digest: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *digest ^= u64::from(b);
        *digest = digest.wrapping_mul(0x0000_0100_0000_01b3);
    }
}
