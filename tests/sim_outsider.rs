//! An outsider (no mesh secret) against link formation and rekeying, in the deterministic
//! simulator with virtual time (issue 8; threat model: "an outsider cannot stop links from
//! forming or rekeying").
//!
//! Every honest node is wrapped in `Attacked`, which plays an outsider with a radio in
//! range of everybody that always wins the race:
//! - **forged Resp/Finish**: before each genuine HandshakeResp or HandshakeFinish reaches
//!   a node, `FORGERIES` copies with the same indices (seen in clear) and random Noise
//!   bytes and tag arrive from the same source MAC. On a node that takes its pending
//!   handshake out before the message verifies, the genuine message then finds nothing
//!   and no link ever forms;
//! - **replayed Inits**: every HandshakeInit a node received is recorded; before each
//!   genuine Finish (while the node is answering a newer Init) and every second, an older
//!   recording is re-sent from its original MAC. A node that lets a replay displace its
//!   pending answer loses the handshake; one that answers replays spends its handshake
//!   budget on them;
//! - **floods**: 300 clear hellos/s and 300 broadcasts/s (unknown key ids), each from a
//!   fresh random MAC, into every node, for the whole run.
//!
//! Topology: a ring 0-1-2-3 and a newcomer 4 linked to 0 and 2, cut off until 40 s. Shown:
//! the newcomer gets both sessions within 5 s of arriving, and from then on for 400 s
//! (longer than `REJECT_AFTER_TIME`, so every link must rekey at least once) every node
//! holds a session with every neighbour at every second, and a flow across the newcomer
//! delivers.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::collections::HashMap;
use std::net::Ipv6Addr;

use veilmesh::crypto::session::REJECT_AFTER_TIME;
use veilmesh::node::{DropReason, IfaceId, Node, NodeConfig, Transmit};
use veilmesh::sim::{
    node_factory, Action, FlowSpec, LinkParams, Sim, SimConfig, SimHost, Topology,
};
use veilmesh::time::{Duration, Instant};
use veilmesh::wire::{
    emit_encrypted_header, emit_handshake, emit_hello, EncryptedKind, Frame, HandshakeKind,
    HelloRepr, MacAddr, NodeId, FRAME_TAG_LEN,
};

const SEED: u64 = 8;
const NEWCOMER: usize = 4;
/// Forged copies delivered ahead of each genuine Resp or Finish.
const FORGERIES: usize = 3;
/// Flood frames of each kind per 10 ms tick: 300/s.
const FLOOD_PER_TICK: usize = 3;
const TICK: Duration = Duration::from_millis(10);
const ARRIVAL: u64 = 40;

fn secs(s: u64) -> Instant {
    Instant::from_millis(s * 1000)
}

/// An honest node and the outsider's interference on everything it receives.
struct Attacked {
    node: Node,
    rng: ChaCha20Rng,
    next_tick: Instant,
    next_replay: Instant,
    /// Inits received, by source MAC, oldest first.
    inits: HashMap<MacAddr, Vec<Vec<u8>>>,
    /// Frames the outsider injected.
    injected: u64,
}

impl Attacked {
    fn inject(&mut self, now: Instant, src: MacAddr, frame: &[u8]) {
        self.injected += 1;
        self.node.handle_frame(now, IfaceId(0), src, frame);
    }

    /// Random Noise bytes, sender index and tag, naming the receiver index of a genuine
    /// Resp or Finish.
    fn forge_like(&mut self, kind: HandshakeKind, r: u32, len: usize) -> Vec<u8> {
        let mut noise = vec![0u8; len];
        self.rng.fill_bytes(&mut noise);
        let mut buf = vec![0u8; 1500];
        let n = emit_handshake(kind, self.rng.next_u32() | 1, r, &noise, &mut buf).unwrap();
        self.rng.fill_bytes(&mut buf[n - FRAME_TAG_LEN..n]);
        buf.truncate(n);
        buf
    }

    fn random_mac(&mut self) -> MacAddr {
        let mut m = [0u8; 6];
        self.rng.fill_bytes(&mut m);
        m[0] = (m[0] & 0xFE) | 0x02;
        MacAddr(m)
    }

    fn flood(&mut self, now: Instant) {
        for _ in 0..FLOOD_PER_TICK {
            let mut buf = [0u8; 64];
            let hello = HelloRepr {
                seq: self.rng.next_u32() as u16,
                interval_10ms: 100,
            };
            let n = emit_hello(&hello, &mut buf).unwrap();
            self.rng.fill_bytes(&mut buf[n - FRAME_TAG_LEN..n]);
            let src = self.random_mac();
            self.inject(now, src, &buf[..n]);
            let n =
                emit_encrypted_header(EncryptedKind::Broadcast, self.rng.next_u32(), 1, &mut buf)
                    .unwrap();
            self.rng.fill_bytes(&mut buf[n..60]);
            let src = self.random_mac();
            self.inject(now, src, &buf[..60]);
        }
    }

    /// An older recorded Init from `src`, if there is one.
    fn older_init(&mut self, src: MacAddr) -> Option<Vec<u8>> {
        let list = self.inits.get(&src)?;
        if list.len() < 2 {
            return None;
        }
        let i = self.rng.next_u32() as usize % (list.len() - 1);
        list.get(i).cloned()
    }

    fn replay_some_init(&mut self, now: Instant) {
        let srcs: Vec<MacAddr> = self.inits.keys().copied().collect();
        for src in srcs {
            if let Some(init) = self.inits.get(&src).and_then(|l| l.first()).cloned() {
                self.inject(now, src, &init);
            }
        }
    }
}

impl SimHost for Attacked {
    fn node_id(&self) -> NodeId {
        self.node.node_id()
    }

    fn overlay_addr(&self) -> Ipv6Addr {
        self.node.overlay_ipv6()
    }

    fn handle_frame(&mut self, now: Instant, iface: IfaceId, src: MacAddr, frame: &[u8]) {
        if let Ok(Frame::Handshake {
            kind,
            receiver_idx,
            noise,
            ..
        }) = Frame::parse(frame)
        {
            match kind {
                HandshakeKind::Init => {
                    let list = self.inits.entry(src).or_default();
                    list.push(frame.to_vec());
                    if list.len() > 16 {
                        list.remove(0);
                    }
                }
                HandshakeKind::Resp | HandshakeKind::Finish => {
                    for _ in 0..FORGERIES {
                        let f = self.forge_like(kind, receiver_idx, noise.len());
                        self.inject(now, src, &f);
                    }
                    if kind == HandshakeKind::Finish {
                        if let Some(old) = self.older_init(src) {
                            self.inject(now, src, &old);
                        }
                    }
                }
            }
        }
        self.node.handle_frame(now, iface, src, frame);
    }

    fn handle_ip_packet(&mut self, now: Instant, packet: &[u8]) {
        self.node.handle_ip_packet(now, packet);
    }

    fn handle_timeout(&mut self, now: Instant) {
        while self.next_tick <= now {
            self.flood(now);
            self.next_tick += TICK;
        }
        if self.next_replay <= now {
            self.replay_some_init(now);
            self.next_replay = now + Duration::from_secs(1);
        }
        if self.node.poll_timeout().is_some_and(|t| t <= now) {
            self.node.handle_timeout(now);
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        SimHost::poll_transmit(&mut self.node, now, buf)
    }

    fn poll_deliver(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.node.poll_deliver(buf)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let t = self.next_tick.min(self.next_replay);
        Some(self.node.poll_timeout().map_or(t, |n| n.min(t)))
    }

    fn next_hop(&self, dst: &NodeId) -> Option<MacAddr> {
        self.node.next_hop(dst).map(|(_, mac)| mac)
    }
}

fn topology() -> Topology {
    let mut t = Topology::new(5).unwrap();
    for (a, b) in [(0, 1), (1, 2), (2, 3), (3, 0), (NEWCOMER, 0), (NEWCOMER, 2)] {
        t.add_link(a, b, LinkParams::default()).unwrap();
    }
    t
}

fn degree(i: usize) -> usize {
    topology().adjacency()[i].len()
}

fn sim() -> Sim<Attacked> {
    let cfg = NodeConfig {
        mesh_secret: Some(b"only members know this".to_vec().into()),
        ..NodeConfig::default()
    };
    let mut nodes = node_factory(SEED, cfg);
    let factory = move |index: usize, epoch: u32, mac: MacAddr, now: Instant| Attacked {
        node: nodes(index, epoch, mac, now),
        rng: ChaCha20Rng::seed_from_u64(SEED ^ (index as u64) << 8),
        next_tick: now,
        next_replay: now + Duration::from_secs(1),
        inits: HashMap::new(),
        injected: 0,
    };
    let sim_cfg = SimConfig {
        seed: SEED,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(&topology(), sim_cfg, factory);
    for b in [0, 2] {
        sim.apply(Action::Cut { a: NEWCOMER, b }).unwrap();
        sim.schedule(secs(ARRIVAL), Action::Heal { a: NEWCOMER, b })
            .unwrap();
    }
    sim
}

fn sessions(sim: &Sim<Attacked>, i: usize) -> usize {
    sim.host(i).unwrap().node.sessions()
}

fn drops(sim: &Sim<Attacked>, i: usize, r: DropReason) -> u64 {
    sim.host(i).unwrap().node.stats().drops(r)
}

#[test]
fn links_form_and_rekey_while_an_outsider_forges_replays_and_floods() {
    let mut sim = sim();
    let flow = sim
        .add_flow(FlowSpec {
            src: 1,
            dst: NEWCOMER,
            start: secs(ARRIVAL + 5),
            interval: Duration::from_millis(100),
            count: 4000,
            payload_len: 0,
        })
        .unwrap();
    sim.run_until(secs(ARRIVAL - 1));
    for i in 0..NEWCOMER {
        assert_eq!(sessions(&sim, i), 2, "ring node {i} before the newcomer");
    }
    // The newcomer arrives: both its links within 5 s, despite everything.
    let mut joined = None;
    for ms in (0..=5000).step_by(100) {
        sim.run_until(secs(ARRIVAL) + Duration::from_millis(ms));
        if sessions(&sim, NEWCOMER) == 2 && sessions(&sim, 0) == 3 && sessions(&sim, 2) == 3 {
            joined = Some(ms);
            break;
        }
    }
    eprintln!("newcomer joined after {joined:?} ms");
    assert!(
        joined.is_some(),
        "the newcomer did not get both sessions in 5 s"
    );
    // Every link holds a session at every second for longer than a session may live.
    let start = sim.now();
    let end = start + REJECT_AFTER_TIME + Duration::from_secs(40);
    let mut t = start;
    while t < end {
        t += Duration::from_secs(1);
        sim.run_until(t);
        for i in 0..5 {
            assert_eq!(
                sessions(&sim, i),
                degree(i),
                "node {i} lost a session at {:?}",
                sim.now()
            );
        }
    }
    let st = sim.flow_stats(flow).unwrap();
    eprintln!("flow 1 -> newcomer: {st:?}");
    assert!(st.delivered * 100 >= st.sent * 99, "{st:?}");
    // Each of the 6 links made at least one new session after the first (a rekey) at
    // both ends: 6 x 2 x 2.
    let established: u64 = (0..5)
        .map(|i| sim.host(i).unwrap().node.stats().sessions_established)
        .sum();
    assert!(
        established >= 24,
        "{established} sessions established in all"
    );
    for i in 0..5 {
        let h = sim.host(i).unwrap();
        let tags = drops(&sim, i, DropReason::BadFrameTag);
        let replays = drops(&sim, i, DropReason::HandshakeReplay);
        eprintln!(
            "node {i}: injected {}, bad_frame_tag {tags}, handshake_replay {replays}, \
             handshake_rate_limited {}, sessions established {}",
            h.injected,
            drops(&sim, i, DropReason::HandshakeRateLimited),
            h.node.stats().sessions_established
        );
        // The flood alone is 300 hellos/s over ~480 s.
        assert!(tags > 100_000, "node {i}: {tags} bad tags");
        // A node that only ever initiated received no Init to replay.
        if !h.inits.is_empty() {
            assert!(replays > 0, "node {i}: no replayed Init recognised");
        }
    }
}
