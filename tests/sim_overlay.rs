//! Overlay addresses across a simulated mesh: every node can check an address against a
//! key, and IPv4 claims from a small pool converge to one holder per address everywhere.

use std::collections::BTreeSet;
use std::net::IpAddr;

use veilmesh::node::{Node, NodeConfig};
use veilmesh::overlay::build::build_udp4;
use veilmesh::overlay::{address_belongs_to, Ipv4Pool};
use veilmesh::sim::{node_factory, sim_identity, Sim, SimConfig, Topology};
use veilmesh::time::{Duration, Instant};

const SEED: u64 = 21;
const N: usize = 6;

fn mesh_with_pool(pool: &str) -> Sim<Node> {
    let topo: Topology = format!("ring:{N}").parse().unwrap();
    let cfg = NodeConfig {
        ipv4_pool: Some(pool.parse::<Ipv4Pool>().unwrap()),
        ..NodeConfig::default()
    };
    let sim_cfg = SimConfig {
        seed: SEED,
        ..SimConfig::default()
    };
    Sim::new(&topo, sim_cfg, node_factory(SEED, cfg))
}

#[test]
fn overlay_ipv6_addresses_belong_to_their_keys_everywhere() {
    let mut sim = mesh_with_pool("10.77.0.0/16");
    sim.run_until(Instant::from_millis(20_000));
    let prefix = sim.host(0).unwrap().mesh_prefix();
    for i in 0..N {
        let addr = sim.host(i).unwrap().overlay_ipv6();
        let key = sim_identity(SEED, i).public().ed25519;
        assert!(address_belongs_to(&prefix, &addr, &key));
        let other = sim_identity(SEED, (i + 1) % N).public().ed25519;
        assert!(!address_belongs_to(&prefix, &addr, &other));
        for j in 0..N {
            let seen = sim.host(j).unwrap().lookup(&IpAddr::V6(addr));
            assert_eq!(seen, Some(sim.host(i).unwrap().node_id()), "{j} about {i}");
        }
    }
}

#[test]
fn ipv4_claims_in_a_tiny_pool_converge_to_distinct_holders() {
    // A /29 has 6 host addresses for 6 nodes: first-choice collisions are near certain, so
    // nodes must move until every address has one holder that everyone agrees on.
    let mut sim = mesh_with_pool("10.77.0.0/29");
    sim.run_until(Instant::from_millis(30_000));
    let mut held = BTreeSet::new();
    for i in 0..N {
        let node = sim.host(i).unwrap();
        let addr = node
            .overlay_ipv4()
            .unwrap_or_else(|| panic!("node {i} holds no IPv4"));
        assert!(held.insert(addr), "{addr} held twice");
        for j in 0..N {
            assert_eq!(
                sim.host(j).unwrap().lookup(&IpAddr::V4(addr)),
                Some(node.node_id()),
                "node {j} disagrees about {addr}"
            );
        }
    }
    let pool: Ipv4Pool = "10.77.0.0/29".parse().unwrap();
    let moved = (0..N)
        .filter(|&i| {
            let key = sim_identity(SEED, i).public().ed25519;
            sim.host(i).unwrap().overlay_ipv4() != Some(pool.candidate(&key, 0))
        })
        .count();
    eprintln!("{moved} of {N} nodes moved off their first candidate");
    assert!(moved > 0, "the scenario must actually contain a conflict");

    // And IPv4 traffic reaches the holder.
    let (src, dst) = (0, 3);
    let from = sim.host(src).unwrap().overlay_ipv4().unwrap();
    let to = sim.host(dst).unwrap().overlay_ipv4().unwrap();
    let before = sim.host(dst).unwrap().stats().packets_to_tun;
    let mut pkt = [0u8; 64];
    let len = build_udp4(&mut pkt, &from, &to, (7, 9), b"v4").unwrap();
    let now = sim.now();
    sim.host_mut(src)
        .unwrap()
        .handle_ip_packet(now, &pkt[..len]);
    sim.drive(src);
    sim.run_until(now + Duration::from_millis(500));
    assert_eq!(sim.host(dst).unwrap().stats().packets_to_tun, before + 1);
}
