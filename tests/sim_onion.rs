//! Onion circuits in simulated meshes (docs/protocol.md §8.7, §8.8): every node keeps a
//! circuit of three relays built and alive, relays hold only their neighbours in the
//! circuit, and nothing is dropped on the way in a clean mesh.

use veilmesh::node::{DropReason, Node, NodeConfig, LOOP_INTERVAL};
use veilmesh::sim::{node_factory, Sim, SimConfig, Topology};
use veilmesh::time::Instant;

const SEED: u64 = 31;

fn mesh(spec: &str, seed: u64) -> Sim<Node> {
    let topo: Topology = spec.parse().unwrap();
    let cfg = SimConfig {
        seed,
        ..SimConfig::default()
    };
    let node_cfg = NodeConfig {
        circuits: true,
        ..NodeConfig::default()
    };
    Sim::new(&topo, cfg, node_factory(seed, node_cfg))
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
