//! A small multi-node harness: several `Routing` instances wired by hand, passing repr
//! structs over lossy links in virtual time, and the scenario tests that use it.

use std::collections::{HashMap, VecDeque};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::test_router::TestRouter;
use super::*;
use crate::wire::{HelloRepr, SeqnoRequestRepr, CHAIN_ELEMENT_LEN};

/// Bytes on the air of an encrypted broadcast carrying `msgs` bytes of messages: Ethernet
/// header and the frame padded to its size class (`wire::BROADCAST_FRAME_LENS`).
fn broadcast_bytes(msgs: usize) -> usize {
    14 + crate::wire::MIN_ENCRYPTED_FRAME_LEN + crate::wire::broadcast_plaintext_len(msgs)
}
/// A clear hello frame with its Ethernet header.
const CLEAR_HELLO_BYTES: usize = 14 + crate::wire::HELLO_FRAME_LEN;
/// Message header (type + length).
const MSG_HDR: usize = 3;
const OGM_MSG: usize = MSG_HDR + 47;

/// The chain element the fake authenticator expects.
pub(crate) fn fake_chain(node: NodeId, epoch: u32, seqno: u32) -> [u8; CHAIN_ELEMENT_LEN] {
    let mut c = [0u8; CHAIN_ELEMENT_LEN];
    c[..8].copy_from_slice(&node.0[..8]);
    c[8..12].copy_from_slice(&epoch.to_be_bytes());
    c[12..].copy_from_slice(&seqno.to_be_bytes());
    c
}

/// Stand-in for the node's hash-chain check.
#[derive(Debug, Default)]
pub(crate) struct FakeAuth {
    pub known: Vec<NodeId>,
    pub latest: HashMap<NodeId, SeqKey>,
}

impl OgmAuth for FakeAuth {
    fn check(&mut self, ogm: &OgmRepr) -> AuthVerdict {
        if !self.known.contains(&ogm.node) {
            return AuthVerdict::UnknownOriginator;
        }
        if ogm.chain != fake_chain(ogm.node, ogm.epoch, ogm.seqno) {
            return AuthVerdict::Invalid;
        }
        let seq = SeqKey::of_ogm(ogm);
        let latest = self.latest.entry(ogm.node).or_default();
        if seq.epoch < latest.epoch {
            return AuthVerdict::OlderEpoch;
        }
        if seq < *latest {
            return AuthVerdict::Stale;
        }
        *latest = seq;
        AuthVerdict::Valid
    }
}

#[derive(Debug, Clone)]
enum Msg {
    Hello(HelloRepr, Vec<IhuEntry>),
    Ogms(Vec<OgmRepr>),
    SeqReq(SeqnoRequestRepr),
    Probe(u32),
    ProbeAck(u32),
}

pub(crate) struct Sim {
    pub nodes: Vec<TestRouter>,
    pub auth: Vec<FakeAuth>,
    /// loss[a][b]: probability that a frame from a is not received by b (absent: no link).
    pub loss: HashMap<(usize, usize), f64>,
    pub now: Instant,
    pub events: Vec<(usize, Instant, Event)>,
    /// Bytes each node put on the air, per the layouts of docs/protocol.md.
    pub bytes: Vec<usize>,
    pub announce_requests: usize,
    /// Nodes that send data to a neighbour every 10 ms: (from, to).
    pub traffic: Vec<(usize, usize)>,
    next_traffic: Instant,
    rng: ChaCha20Rng,
    queue: VecDeque<(usize, usize, Msg)>,
}

pub(crate) fn id(i: usize) -> NodeId {
    NodeId([i as u8 + 1; 16])
}

pub(crate) fn mac(i: usize) -> MacAddr {
    MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8])
}

pub(crate) const IF0: IfaceId = IfaceId(0);

impl Sim {
    pub fn new(n: usize, seed: u64) -> Self {
        let now = Instant::from_millis(1_000);
        let nodes = (0..n)
            .map(|i| {
                let mut r =
                    TestRouter::new(id(i), 1, now, ChaCha20Rng::seed_from_u64(seed + i as u64));
                r.add_interface(now, IF0, mac(i));
                r
            })
            .collect();
        let all: Vec<NodeId> = (0..n).map(id).collect();
        Sim {
            nodes,
            auth: (0..n)
                .map(|_| FakeAuth {
                    known: all.clone(),
                    latest: HashMap::new(),
                })
                .collect(),
            loss: HashMap::new(),
            now,
            events: Vec::new(),
            bytes: vec![0; n],
            announce_requests: 0,
            traffic: Vec::new(),
            next_traffic: now,
            rng: ChaCha20Rng::seed_from_u64(seed ^ 0xdead),
            queue: VecDeque::new(),
        }
    }

    /// A bidirectional link, authenticated at once on both sides.
    pub fn link(&mut self, a: usize, b: usize, loss_ab: f64, loss_ba: f64) {
        self.loss.insert((a, b), loss_ab);
        self.loss.insert((b, a), loss_ba);
        let now = self.now;
        self.nodes[a].neighbor_authenticated(now, IF0, mac(b), id(b));
        self.nodes[b].neighbor_authenticated(now, IF0, mac(a), id(a));
    }

    pub fn set_loss(&mut self, a: usize, b: usize, loss_ab: f64, loss_ba: f64) {
        self.loss.insert((a, b), loss_ab);
        self.loss.insert((b, a), loss_ba);
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let mut next = self
                .nodes
                .iter()
                .filter_map(|n| n.poll_timeout())
                .min()
                .unwrap_or(end);
            if !self.traffic.is_empty() {
                next = next.min(self.next_traffic);
            }
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            if !self.traffic.is_empty() && self.now >= self.next_traffic {
                self.next_traffic = self.now + Duration::from_millis(10);
                for &(a, b) in &self.traffic {
                    self.nodes[a].note_data_sent(self.now, IF0, mac(b));
                }
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].poll_timeout().is_some_and(|t| t <= self.now) {
                    self.nodes[i].handle_timeout(self.now);
                    self.nodes[i].assert_nothing_due(self.now);
                }
            }
            self.settle();
            // Every scenario doubles as a check of the timer table: no state is left
            // waiting for a deadline its timer would miss.
            for r in &self.nodes {
                r.assert_timers_cover_state(self.now);
            }
        }
        self.now = end;
    }

    /// Drain every node and deliver until nothing moves.
    fn settle(&mut self) {
        loop {
            for i in 0..self.nodes.len() {
                self.drain(i);
            }
            if self.queue.is_empty() {
                return;
            }
            while let Some((from, to, msg)) = self.queue.pop_front() {
                self.deliver(from, to, msg);
            }
        }
    }

    fn send(&mut self, from: usize, to: Option<usize>, msg: Msg) {
        let targets: Vec<usize> = (0..self.nodes.len())
            .filter(|&b| to.is_none_or(|t| t == b))
            .filter(|&b| self.loss.contains_key(&(from, b)))
            .collect();
        for b in targets {
            let p = self.loss[&(from, b)];
            let r = (self.rng.next_u32() as f64) / (u32::MAX as f64 + 1.0);
            if r >= p {
                self.queue.push_back((from, b, msg.clone()));
            }
        }
    }

    fn drain(&mut self, i: usize) {
        while let Some(a) = self.nodes[i].poll_action() {
            match a {
                Action::SendHello { hello, .. } => {
                    let ihu: Vec<IhuEntry> = self.nodes[i].ihu_entries(IF0).collect();
                    self.bytes[i] +=
                        CLEAR_HELLO_BYTES + broadcast_bytes(MSG_HDR + 4 + MSG_HDR + 8 * ihu.len());
                    self.send(i, None, Msg::Hello(hello, ihu));
                }
                Action::SendProbe { mac: m, seq, .. } => {
                    self.send(i, self.index_of(m), Msg::Probe(seq));
                }
                Action::SendSeqnoRequest { dest, req } => {
                    self.bytes[i] += broadcast_bytes(MSG_HDR + 25);
                    let to = match dest {
                        Dest::AllInterfaces => None,
                        Dest::Neighbor { mac: m, .. } => self.index_of(m),
                    };
                    self.send(i, to, Msg::SeqReq(req));
                }
                Action::RequestAnnounce { .. } => self.announce_requests += 1,
            }
        }
        while let Some(batch) = self.nodes[i].poll_ogm_batch() {
            let own = id(i);
            let ogms: Vec<OgmRepr> = batch
                .iter()
                .map(|o| {
                    let mut o = *o;
                    if o.node == own {
                        o.chain = fake_chain(own, o.epoch, o.seqno);
                    }
                    o
                })
                .collect();
            self.bytes[i] += broadcast_bytes(OGM_MSG * ogms.len());
            self.send(i, None, Msg::Ogms(ogms));
        }
        while let Some(e) = self.nodes[i].poll_event() {
            self.events.push((i, self.now, e));
        }
    }

    fn index_of(&self, m: MacAddr) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| mac(i) == m)
    }

    fn deliver(&mut self, from: usize, to: usize, msg: Msg) {
        let now = self.now;
        let (r, m) = (&mut self.nodes[to], mac(from));
        match msg {
            Msg::Hello(h, ihu) => {
                r.handle_authenticated_frame(now, IF0, m);
                r.handle_hello(now, IF0, m, &h, true);
                r.handle_ihu(now, IF0, m, ihu);
            }
            Msg::Ogms(ogms) => {
                r.handle_authenticated_frame(now, IF0, m);
                for o in &ogms {
                    r.handle_ogm(now, IF0, m, o, &mut self.auth[to]);
                }
            }
            Msg::SeqReq(req) => r.handle_seqno_request(now, IF0, m, &req),
            Msg::Probe(seq) => self.send(to, Some(from), Msg::ProbeAck(seq)),
            Msg::ProbeAck(seq) => r.handle_probe_ack(now, IF0, m, seq),
        }
    }

    pub fn hop(&self, at: usize, dest: usize) -> Option<usize> {
        self.nodes[at]
            .next_hop(&id(dest))
            .and_then(|(_, m)| self.index_of(m))
    }

    pub fn metric(&self, at: usize, dest: usize) -> u16 {
        self.nodes[at]
            .route(&id(dest))
            .map_or(INFINITY, |r| r.metric)
    }
}

fn line(n: usize, seed: u64) -> Sim {
    let mut s = Sim::new(n, seed);
    for i in 0..n - 1 {
        s.link(i, i + 1, 0.0, 0.0);
    }
    s
}

#[test]
fn line_of_four_converges() {
    let mut s = line(4, 1);
    // Any route within seconds; exact metrics once the link windows hold MIN_SLOTS hellos.
    s.run_for(Duration::from_secs(10));
    assert_eq!(s.hop(0, 3), Some(1));
    s.run_for(Duration::from_secs(80));
    for a in 0..4usize {
        for b in 0..4usize {
            if a == b {
                continue;
            }
            let toward = if b > a { a + 1 } else { a - 1 };
            assert_eq!(s.hop(a, b), Some(toward), "{a} -> {b}");
            assert_eq!(s.metric(a, b) as usize, 288 * a.abs_diff(b), "{a} -> {b}");
        }
    }
    assert!(s.events.iter().any(
        |(i, _, e)| *i == 0 && matches!(e, Event::RouteChanged { node, .. } if *node == id(3))
    ));
    assert_eq!(s.announce_requests, 0);
}

#[test]
fn lossy_direct_link_loses_to_clean_two_hops_and_wins_back() {
    // 0 —(40% loss each way)— 2, and 0 — 1 — 2 clean.
    let mut s = Sim::new(3, 7);
    s.link(0, 1, 0.0, 0.0);
    s.link(1, 2, 0.0, 0.0);
    s.link(0, 2, 0.4, 0.4);
    s.run_for(Duration::from_secs(400));
    // Over the next ~100 hello intervals the estimate must never flip back.
    for _ in 0..400 {
        s.run_for(Duration::from_secs(1));
        assert_eq!(s.hop(0, 2), Some(1), "at {:?}", s.now);
        assert_eq!(s.hop(2, 0), Some(1), "at {:?}", s.now);
    }
    let direct = s.nodes[0].neighbors().find(|n| n.mac == mac(2)).unwrap();
    // True cost 743; the window keeps the estimate within about ±2.5 σ of it.
    assert!((550..=1150).contains(&direct.cost), "cost {}", direct.cost);
    s.set_loss(0, 2, 0.0, 0.0);
    s.run_for(Duration::from_secs(300));
    assert_eq!(s.hop(0, 2), Some(2));
    assert_eq!(s.metric(0, 2), 288);
}

#[test]
fn backup_takes_over_within_250ms_when_link_dies_under_traffic() {
    // Diamond: 0 — 1 — 3 and 0 — 2 — 3; 0 sends data to its next hop toward 3.
    let mut s = Sim::new(4, 3);
    s.link(0, 1, 0.0, 0.0);
    s.link(0, 2, 0.0, 0.0);
    s.link(1, 3, 0.0, 0.0);
    s.link(2, 3, 0.0, 0.0);
    s.run_for(Duration::from_secs(90));
    let primary = s.hop(0, 3).unwrap();
    let backup = s.nodes[0]
        .backup_hop(&id(3))
        .and_then(|(_, m)| s.index_of(m));
    let other = 3 - primary;
    assert_eq!(backup, Some(other));
    s.traffic.push((0, primary));
    s.run_for(Duration::from_millis(500));
    let cut = s.now;
    s.set_loss(0, primary, 1.0, 1.0);
    s.run_for(Duration::from_millis(400));
    let down = s.events.iter().find_map(|(i, t, e)| match e {
        Event::NeighborDown { mac: m, reason, .. } if *i == 0 && *m == mac(primary) => {
            Some((*t, *reason))
        }
        _ => None,
    });
    let (t, reason) = down.expect("neighbour down");
    assert_eq!(reason, DownReason::ProbeTimeout);
    assert!(
        t.saturating_since(cut) <= Duration::from_millis(270),
        "{:?}",
        t - cut
    );
    assert_eq!(s.hop(0, 3), Some(other));
    assert_eq!(s.metric(0, 3), 576);
}

#[test]
fn lost_route_is_retracted_never_looped_and_recovers_by_seqno_request() {
    let mut s = line(3, 5);
    s.run_for(Duration::from_secs(100));
    assert_eq!(s.hop(1, 2), Some(2));
    s.set_loss(1, 2, 1.0, 1.0);
    // Idle link: lost after 4 hello intervals; 1 must not route to 2 through 0.
    for _ in 0..40 {
        s.run_for(Duration::from_millis(500));
        assert_ne!(s.hop(1, 2), Some(0), "loop at {:?}", s.now);
    }
    assert_eq!(s.hop(1, 2), None);
    assert_eq!(s.hop(0, 2), None);
    let c1 = s.nodes[1].counters();
    assert!(c1.retractions_sent >= 1, "{c1:?}");
    assert!(c1.seqno_requests_sent >= 1, "{c1:?}");
    // Heal: 2's next OGMs make everything feasible again.
    s.set_loss(1, 2, 0.0, 0.0);
    s.run_for(Duration::from_secs(60));
    assert_eq!(s.hop(0, 2), Some(1));
    assert_eq!(s.hop(1, 2), Some(2));
    // The healed link still carries the outage in its window, so it costs a bit more.
    assert!((576..1000).contains(&s.metric(0, 2)), "{}", s.metric(0, 2));
}

#[test]
fn quiet_five_node_line_stays_under_50_bytes_per_second() {
    let mut s = line(5, 11);
    s.run_for(Duration::from_secs(200));
    assert_eq!(s.nodes[2].ogm_interval(), OGM_TRICKLE.imax());
    s.bytes.iter_mut().for_each(|b| *b = 0);
    let window = 600;
    s.run_for(Duration::from_secs(window));
    for (i, b) in s.bytes.iter().enumerate() {
        let rate = *b as u64 / window;
        assert!(rate <= 50, "node {i}: {rate} B/s");
    }
    assert_eq!(s.hop(0, 4), Some(1));
}

#[test]
fn hundred_node_grid_stays_under_1kb_per_second() {
    let mut s = Sim::new(100, 13);
    for r in 0..10 {
        for c in 0..10 {
            let i = r * 10 + c;
            if c < 9 {
                s.link(i, i + 1, 0.0, 0.0);
            }
            if r < 9 {
                s.link(i, i + 10, 0.0, 0.0);
            }
        }
    }
    s.run_for(Duration::from_secs(200));
    assert_eq!(s.metric(0, 99), 288 * 18);
    s.bytes.iter_mut().for_each(|b| *b = 0);
    let window = 300;
    s.run_for(Duration::from_secs(window));
    let max = s.bytes.iter().max().copied().unwrap_or(0) as u64 / window;
    assert!(max <= 1024, "{max} B/s");
}

#[test]
fn timers_keep_up_with_cuts_traffic_expiry_and_forgetting() {
    // 0 — 1 — 2 — 3, 0 sending data to 1 over a lossy link; then 3 vanishes silently and
    // 0's link to 1 dies under traffic and heals. `run_for` checks the timer table after
    // every step; this only has to reach every kind of deadline.
    let mut s = line(4, 17);
    s.set_loss(0, 1, 0.2, 0.2);
    s.run_for(Duration::from_secs(60));
    s.traffic.push((0, 1));
    s.set_loss(2, 3, 1.0, 1.0);
    s.run_for(Duration::from_secs(20));
    s.set_loss(0, 1, 1.0, 1.0);
    s.run_for(Duration::from_secs(2));
    s.set_loss(0, 1, 0.0, 0.0);
    s.run_for(Duration::from_secs(500));
    let c: Vec<Counters> = s.nodes.iter().map(|n| n.counters()).collect();
    assert!(c[0].probes_sent > 0, "{:?}", c[0]);
    assert!(c.iter().all(|c| c.seqno_requests_sent > 0), "{c:?}");
    assert!(c.iter().any(|c| c.routes_expired > 0), "{c:?}");
    assert!(c[..3].iter().all(|c| c.originators_expired > 0), "{c:?}");
    assert!((0..3).all(|i| s.nodes[i].route(&id(3)).is_none()));
    assert_eq!(s.hop(0, 2), Some(1));
}
