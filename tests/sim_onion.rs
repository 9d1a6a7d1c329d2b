//! Onion circuits in simulated meshes (docs/protocol.md §8.7–§8.9): every node keeps a
//! circuit of three relays built and alive, relays hold only their neighbours in the
//! circuit, and nothing is dropped on the way in a clean mesh; with anonymous mode, a flow's
//! packets reach their destination from an ephemeral address, its answers come back to the
//! sender's own address, and no node on the way — exit included — reads a byte of either.

use std::cell::RefCell;
use std::net::Ipv6Addr;
use std::rc::Rc;

use veilmesh::node::{DropReason, Node, NodeConfig, LOOP_INTERVAL};
use veilmesh::overlay::anon::anon_prefix;
use veilmesh::overlay::mesh_prefix;
use veilmesh::sim::{node_factory, FlowSpec, Sim, SimConfig, Topology};
use veilmesh::time::{Duration, Instant};

const SEED: u64 = 31;

fn mesh_with(spec: &str, seed: u64, node_cfg: NodeConfig) -> Sim<Node> {
    let topo: Topology = spec.parse().unwrap();
    let cfg = SimConfig {
        seed,
        ..SimConfig::default()
    };
    Sim::new(&topo, cfg, node_factory(seed, node_cfg))
}

/// Every node keeps a circuit built.
fn mesh(spec: &str, seed: u64) -> Sim<Node> {
    let node_cfg = NodeConfig {
        circuits: true,
        ..NodeConfig::default()
    };
    mesh_with(spec, seed, node_cfg)
}

/// Every node sends anonymously.
fn anonymous_mesh(spec: &str, seed: u64) -> Sim<Node> {
    let node_cfg = NodeConfig {
        anonymous: true,
        ..NodeConfig::default()
    };
    mesh_with(spec, seed, node_cfg)
}

#[test]
fn every_node_builds_a_three_relay_circuit_and_its_loops_come_back() {
    let mut sim = mesh("ring:8", SEED);
    let end = Instant::ZERO + LOOP_INTERVAL.mul_div(4, 1);
    sim.run_until(end);
    for i in 0..8 {
        let n = sim.host(i).unwrap();
        assert_eq!(n.onion_keys_held(), 7, "node {i} holds every relay's key");
        let circuits = n.circuits(end);
        let built: Vec<_> = circuits.iter().filter(|c| c.built).collect();
        assert_eq!(built.len(), 1, "node {i}: {circuits:?}");
        let c = built[0];
        assert_eq!(c.relays.len(), 3, "node {i}");
        assert!(
            !c.relays.contains(&n.node_id()),
            "node {i} relays for itself"
        );
        assert!(c.rtt_us.is_some(), "node {i}: no loop came back: {c:?}");
        assert!(c.cells_in >= 2, "node {i}: {c:?}");
        let s = n.stats();
        for reason in [
            DropReason::OnionCellAuth,
            DropReason::OnionCellReplay,
            DropReason::OnionBuildAuth,
            DropReason::OnionBuildReplay,
            DropReason::OnionUnknownCircuit,
            DropReason::OnionBadBody,
            DropReason::OnionBuildTimeout,
        ] {
            assert_eq!(s.drops(reason), 0, "node {i}: {reason:?}");
        }
        assert_eq!(s.onion_circuits_broken, 0, "node {i}");
    }
    let relayed: usize = (0..8)
        .map(|i| sim.host(i).unwrap().relayed_circuits())
        .sum();
    assert_eq!(relayed, 8 * 3, "each circuit held by its three relays");
}

#[test]
fn property_7_a_middle_relay_holds_neither_end() {
    let mut sim = mesh("ring:8", SEED + 1);
    let end = Instant::ZERO + LOOP_INTERVAL.mul_div(2, 1);
    sim.run_until(end);
    let mut checked = 0;
    for i in 0..8 {
        let creator = sim.host(i).unwrap().node_id();
        for c in sim
            .host(i)
            .unwrap()
            .circuits(end)
            .iter()
            .filter(|c| c.built)
        {
            let [guard, middle, exit] = c.relays[..] else {
                panic!("node {i}: {c:?}");
            };
            let m = (0..8)
                .map(|j| sim.host(j).unwrap())
                .find(|n| n.node_id() == middle)
                .unwrap();
            // What the middle holds of this circuit is the guard and the exit: not the
            // creator (it may relay other circuits that come from the creator as a relay).
            let legs = m.relayed_legs();
            assert!(legs.contains(&(guard, Some(exit))), "node {i}: {legs:?}");
            assert!(
                guard != creator && exit != creator && middle != creator,
                "node {i}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
}

#[test]
fn the_same_seed_builds_the_same_circuits() {
    let run = || {
        let mut sim = mesh("ring:6", SEED + 2);
        let end = Instant::ZERO + LOOP_INTERVAL.mul_div(2, 1);
        sim.run_until(end);
        (0..6)
            .map(|i| sim.host(i).unwrap().circuits(end))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() <= haystack.len() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A request flow from `src` to `dst` with its answers, starting once circuits are up.
fn exchange(sim: &mut Sim<Node>, src: usize, dst: usize, count: u64) -> (usize, usize) {
    let request = sim
        .add_flow(FlowSpec {
            src,
            dst,
            start: Instant::from_millis(30_000),
            interval: Duration::from_millis(100),
            count,
            payload_len: 600,
        })
        .unwrap();
    (request, sim.add_reply_flow(request).unwrap())
}

#[test]
fn the_destination_sees_an_ephemeral_address_and_its_answers_come_back() {
    let mut sim = anonymous_mesh("ring:8", SEED + 10);
    let (request, reply) = exchange(&mut sim, 0, 4, 50);
    sim.run_until(Instant::from_millis(40_000));
    let (req, rep) = (
        sim.flow_stats(request).unwrap().clone(),
        sim.flow_stats(reply).unwrap().clone(),
    );
    assert_eq!(req.delivered, 50, "{req:?}");
    assert_eq!(rep.delivered, 50, "{rep:?}");
    let sender = sim.host(0).unwrap().overlay_ipv6();
    let seen: Ipv6Addr = req.last_source.unwrap();
    assert_ne!(seen, sender);
    let anon = anon_prefix(&mesh_prefix(b"veilmesh"));
    assert!(anon.contains(&seen), "{seen} outside {anon}");
    assert_eq!(rep.last_source, Some(sim.host(4).unwrap().overlay_ipv6()));
    let (s, d) = (sim.host(0).unwrap().stats(), sim.host(4).unwrap().stats());
    assert_eq!((s.anon_packets_sent, s.anon_replies_received), (50, 50));
    assert_eq!((d.anon_packets_received, d.anon_replies_sent), (50, 50));
    let exited: u64 = (0..8)
        .map(|i| sim.host(i).unwrap().stats().anon_exit_packets)
        .sum();
    assert_eq!(exited, 100, "every packet and answer passed one exit");
    for i in 0..8 {
        let stats = sim.host(i).unwrap().stats();
        let drops: Vec<_> = stats
            .drop_counters()
            .filter(|(name, n)| *n > 0 && (name.starts_with("anon") || name.starts_with("onion")))
            // Before the first keys have been held long enough, there is nothing to build.
            .filter(|(name, _)| *name != DropReason::OnionNoRelays.as_str())
            .collect();
        assert!(drops.is_empty(), "node {i}: {drops:?}");
        assert_eq!(stats.drops(DropReason::E2eNoKey), 0);
    }
}

#[test]
fn no_node_on_the_way_reads_the_sender_or_the_payload() {
    let mut sim = anonymous_mesh("ring:8", SEED + 11);
    let seen: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    for relay in 1..8 {
        let seen = seen.clone();
        let host = sim.host_mut(relay).unwrap();
        host.set_relay_tap(Box::new(move |p| seen.borrow_mut().push(p.to_vec())));
    }
    let (request, reply) = exchange(&mut sim, 0, 5, 40);
    sim.run_until(Instant::from_millis(40_000));
    assert_eq!(sim.flow_stats(request).unwrap().delivered, 40);
    assert_eq!(sim.flow_stats(reply).unwrap().delivered, 40);
    let sender = sim.host(0).unwrap().overlay_ipv6().octets();
    let seen = seen.borrow();
    assert!(!seen.is_empty());
    for payload in seen.iter() {
        assert!(
            !contains(payload, &sender),
            "a node read the sender's address"
        );
        assert!(!contains(payload, &[0u8; 32]), "a node read the payload");
    }
}

#[test]
fn a_destination_that_is_also_the_exit_reads_its_packets_itself() {
    // In ring:4 every circuit of node 0 runs through the three others, node 2 among them:
    // find seeds where node 2 is the exit, and check both directions there.
    let mut checked = 0;
    for seed in 0..12 {
        let mut sim = anonymous_mesh("ring:4", SEED + 200 + seed);
        let (request, reply) = exchange(&mut sim, 0, 2, 20);
        sim.run_until(Instant::from_millis(29_000));
        let exit = sim.host(0).unwrap().circuits(Instant::from_millis(29_000));
        let dst = sim.host(2).unwrap().node_id();
        if exit
            .iter()
            .filter(|c| c.built)
            .all(|c| c.relays.last() != Some(&dst))
        {
            continue;
        }
        sim.run_until(Instant::from_millis(35_000));
        assert_eq!(
            sim.flow_stats(request).unwrap().delivered,
            20,
            "seed {seed}"
        );
        assert_eq!(sim.flow_stats(reply).unwrap().delivered, 20, "seed {seed}");
        checked += 1;
    }
    assert!(
        checked >= 2,
        "only {checked} seeds had the destination as exit"
    );
}
