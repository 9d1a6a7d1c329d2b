//! Anonymous IP through circuits (docs/protocol.md §8.9): a flow's packets reach their
//! destination from an ephemeral address, its answers come back to the sender's own address,
//! and no node on the way — exit included — reads a byte of either.

use std::cell::RefCell;
use std::net::Ipv6Addr;
use std::rc::Rc;

use veilmesh::node::{DropReason, Node, NodeConfig};
use veilmesh::overlay::anon::anon_prefix;
use veilmesh::overlay::mesh_prefix;
use veilmesh::sim::{node_factory, FlowSpec, Sim, SimConfig, Topology};
use veilmesh::time::{Duration, Instant};

const SEED: u64 = 41;

fn mesh(spec: &str, seed: u64) -> Sim<Node> {
    let topo: Topology = spec.parse().unwrap();
    let cfg = SimConfig {
        seed,
        ..SimConfig::default()
    };
    let node_cfg = NodeConfig {
        anonymous: true,
        ..NodeConfig::default()
    };
    Sim::new(&topo, cfg, node_factory(seed, node_cfg))
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
    let mut sim = mesh("ring:8", SEED);
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
    let mut sim = mesh("ring:8", SEED + 1);
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
        let mut sim = mesh("ring:4", SEED + 100 + seed);
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
