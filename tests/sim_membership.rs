//! Who may join, and what a radio eavesdropper sees: darknet allow-lists, the mesh PSK,
//! fixed-size unicast frames, and no key or address in clear on the air.

use std::cell::RefCell;
use std::net::Ipv6Addr;
use std::rc::Rc;

use veilmesh::crypto::AcceptPolicy;
use veilmesh::node::{DropReason, IfaceId, Node, NodeConfig, Transmit};
use veilmesh::sim::{node_factory, sim_identity, FlowSpec, Sim, SimConfig, SimHost, Topology};
use veilmesh::time::{Duration, Instant};
use veilmesh::wire::{MacAddr, NodeId, BROADCAST_FRAME_LENS, UNICAST_FRAME_LEN};

const SEED: u64 = 11;

fn secs(s: u64) -> Instant {
    Instant::from_millis(s * 1000)
}

fn sessions(sim: &Sim<Node>, i: usize) -> usize {
    sim.host(i).map(Node::sessions).unwrap_or(0)
}

fn drops(sim: &Sim<Node>, i: usize, reason: DropReason) -> u64 {
    sim.host(i).map(|h| h.stats().drops(reason)).unwrap_or(0)
}

/// A line of three where node 2 gets its own configuration.
fn line3_with_outsider(outsider: NodeConfig, members: NodeConfig) -> Sim<Node> {
    let topo: Topology = "line:3".parse().unwrap();
    let mut member = node_factory(SEED, members);
    let mut other = node_factory(SEED, outsider);
    let factory = move |i, epoch, mac, now| {
        if i == 2 {
            other(i, epoch, mac, now)
        } else {
            member(i, epoch, mac, now)
        }
    };
    let cfg = SimConfig {
        seed: SEED,
        ..SimConfig::default()
    };
    Sim::new(&topo, cfg, factory)
}

#[test]
fn wrong_mesh_secret_never_completes_a_handshake() {
    let members = NodeConfig {
        mesh_secret: Some(b"correct horse".to_vec().into()),
        ..NodeConfig::default()
    };
    let outsider = NodeConfig {
        mesh_secret: Some(b"battery staple".to_vec().into()),
        ..NodeConfig::default()
    };
    let mut sim = line3_with_outsider(outsider, members);
    sim.run_until(secs(30));
    assert_eq!(sessions(&sim, 0), 1, "members 0 and 1 pair up");
    assert_eq!(
        sessions(&sim, 1),
        1,
        "member 1 has no session with the outsider"
    );
    assert_eq!(sessions(&sim, 2), 0, "the outsider has no session at all");
    // Neither side's clear frames carry the other's mesh-PSK tag: each drops the other's
    // hellos (and anything else clear) before a handshake could even start.
    assert!(drops(&sim, 1, DropReason::BadFrameTag) > 0);
    assert!(drops(&sim, 2, DropReason::BadFrameTag) > 0);
    assert_eq!(drops(&sim, 2, DropReason::HandshakeFailed), 0);
    assert!(sim
        .host(1)
        .unwrap()
        .next_hop(&sim.host(2).unwrap().node_id())
        .is_none());
}

#[test]
fn darknet_refuses_identities_not_on_the_allow_list() {
    let allowed = [0, 1].map(|i| sim_identity(SEED, i).public().ed25519);
    let members = NodeConfig {
        policy: AcceptPolicy::allow_list(allowed).unwrap(),
        ..NodeConfig::default()
    };
    // The outsider is open-minded: the refusal must come from the darknet side.
    let mut sim = line3_with_outsider(NodeConfig::default(), members);
    sim.run_until(secs(30));
    assert_eq!(sessions(&sim, 0), 1);
    assert_eq!(sessions(&sim, 1), 1, "1 pairs with 0 only");
    assert_eq!(sessions(&sim, 2), 0);
    assert!(
        drops(&sim, 1, DropReason::NotAllowed) > 0,
        "1 refused the outsider"
    );
    assert!(sim
        .host(0)
        .unwrap()
        .next_hop(&sim.host(2).unwrap().node_id())
        .is_none());
}

#[test]
fn darknet_members_on_the_list_form_a_mesh() {
    // Control for the test above: with everyone listed, the same line converges.
    let allowed = [0, 1, 2].map(|i| sim_identity(SEED, i).public().ed25519);
    let members = NodeConfig {
        policy: AcceptPolicy::allow_list(allowed).unwrap(),
        ..NodeConfig::default()
    };
    let mut sim = line3_with_outsider(members.clone(), members);
    sim.run_until(secs(30));
    assert_eq!(sessions(&sim, 1), 2);
    assert_eq!(sim.check_routes(), None);
}

/// Records every frame a host sends.
struct Tap {
    node: Node,
    frames: Rc<RefCell<Vec<Vec<u8>>>>,
}

impl SimHost for Tap {
    fn node_id(&self) -> NodeId {
        self.node.node_id()
    }
    fn overlay_addr(&self) -> Ipv6Addr {
        self.node.overlay_ipv6()
    }
    fn handle_frame(&mut self, now: Instant, iface: IfaceId, src: MacAddr, frame: &[u8]) {
        self.node.handle_frame(now, iface, src, frame);
    }
    fn handle_ip_packet(&mut self, now: Instant, packet: &[u8]) {
        self.node.handle_ip_packet(now, packet);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.node.handle_timeout(now);
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let t = self.node.poll_transmit(buf)?;
        self.frames.borrow_mut().push(buf[..t.len].to_vec());
        Some(t)
    }
    fn poll_deliver(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.node.poll_deliver(buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.node.poll_timeout()
    }
    fn next_hop(&self, dst: &NodeId) -> Option<MacAddr> {
        self.node.next_hop(dst).map(|(_, m)| m)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() <= haystack.len() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn eavesdropper_sees_fixed_size_frames_and_no_keys_or_addresses() {
    let topo: Topology = "line:4".parse().unwrap();
    let frames = Rc::new(RefCell::new(Vec::new()));
    let tap_frames = frames.clone();
    let mut nodes = node_factory(SEED, NodeConfig::default());
    let factory = move |i, epoch, mac, now| Tap {
        node: nodes(i, epoch, mac, now),
        frames: tap_frames.clone(),
    };
    let cfg = SimConfig {
        seed: SEED,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(&topo, cfg, factory);
    // Small and large packets both ways, so data frames of every size are tried.
    for (src, dst, len) in [(0, 3, 0), (3, 0, 1200)] {
        sim.add_flow(FlowSpec {
            src,
            dst,
            start: secs(10),
            interval: Duration::from_millis(50),
            count: 100,
            payload_len: len,
        })
        .unwrap();
    }
    sim.run_until(secs(30));
    for f in 0..2 {
        assert_eq!(sim.flow_stats(f).unwrap().delivered, 100, "traffic flowed");
    }
    // Everything that identifies a node: keys, node ids, overlay addresses.
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    for i in 0..4 {
        let id = sim_identity(SEED, i);
        let public = id.public();
        secrets.push(public.ed25519.to_vec());
        secrets.push(public.x25519.to_vec());
        secrets.push(id.node_id().0.to_vec());
        let addr = sim.host(i).unwrap().node.overlay_ipv6();
        // The interface id part: the /48 prefix is the same for everyone.
        secrets.push(addr.octets()[6..].to_vec());
    }
    let frames = frames.borrow();
    assert!(frames.len() > 700, "{} frames captured", frames.len());
    let mut unicast = 0;
    let mut broadcast_sizes = [0usize; BROADCAST_FRAME_LENS.len()];
    for f in frames.iter() {
        if f[0] == 0x15 {
            unicast += 1;
            assert_eq!(
                f.len(),
                UNICAST_FRAME_LEN,
                "every unicast frame has one size"
            );
        }
        if f[0] == 0x16 {
            let class = BROADCAST_FRAME_LENS.iter().position(|&l| l == f.len());
            let class = class.unwrap_or_else(|| panic!("a {}-byte broadcast", f.len()));
            broadcast_sizes[class] += 1;
        }
        for s in &secrets {
            assert!(
                !contains(f, s),
                "frame type {:#x} carries an identifier in clear",
                f[0]
            );
        }
    }
    assert!(unicast > 400, "{unicast} unicast frames");
    // Hellos and probe answers look alike; single OGMs take the next size, and a pushed
    // announcement with its node's onion key record (279 bytes with an OGM) the largest.
    assert!(broadcast_sizes[0] > 100, "{broadcast_sizes:?}");
    assert!(broadcast_sizes[1] > 0, "{broadcast_sizes:?}");
    assert!(broadcast_sizes[4] > 0, "{broadcast_sizes:?}");
}
