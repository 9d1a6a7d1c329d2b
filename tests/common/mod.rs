//! The world of the adversary tests: a ring of 8 with a chord 3-5, victim V = 0, the
//! adversary M = 4, flows from M's neighbours to V, and the checks every run makes.

#![allow(dead_code)]

mod adversary;

pub use adversary::{host_factory, Adversary, Attack, Host};

use veilmesh::crypto::hashchain::DEFAULT_CHAIN_LEN;
use veilmesh::crypto::{ChainSigner, Identity};
use veilmesh::node::DropReason;
use veilmesh::sim::{
    mac_of, sim_identity, FlowSpec, LinkParams, Sim, SimConfig, SimHost, Topology,
};
use veilmesh::time::{Duration, Instant};

pub const SEED: u64 = 21;
pub const N: usize = 8;
/// The victim.
pub const V: usize = 0;
/// The adversary.
pub const M: usize = 4;
/// Flow sources (both neighbours of M).
pub const SOURCES: [usize; 2] = [3, 5];
/// Least cost of one link (ETX 256 at perfect quality + hop penalty 32).
pub const MIN_LINK_COST: u32 = 288;

pub fn secs(s: u64) -> Instant {
    Instant::from_millis(s * 1000)
}

pub fn topology() -> Topology {
    let mut t = Topology::new(N).unwrap();
    for i in 0..N {
        t.add_link(i, (i + 1) % N, LinkParams::default()).unwrap();
    }
    t.add_link(3, 5, LinkParams::default()).unwrap();
    t
}

/// Hops from `i` to `V` over the whole topology.
pub fn hops_to_victim(i: usize) -> u32 {
    let adj = topology().adjacency();
    let mut dist = [u32::MAX; N];
    dist[V] = 0;
    let mut queue = std::collections::VecDeque::from([V]);
    while let Some(u) = queue.pop_front() {
        for &w in &adj[u] {
            if dist[w] == u32::MAX {
                dist[w] = dist[u] + 1;
                queue.push_back(w);
            }
        }
    }
    dist[i]
}

pub fn identity(i: usize) -> Identity {
    sim_identity(SEED, i)
}

/// The chain node `i` uses in epoch 0 (what its honest node signs its OGMs with).
pub fn chain_of(i: usize) -> ChainSigner {
    ChainSigner::new(&identity(i), 0, 0, DEFAULT_CHAIN_LEN).unwrap()
}

pub fn sim(adv: impl FnMut() -> Adversary + 'static) -> Sim<Host> {
    let cfg = SimConfig {
        seed: SEED,
        ..SimConfig::default()
    };
    Sim::new(&topology(), cfg, host_factory(SEED, M, adv))
}

pub fn host(sim: &Sim<Host>, i: usize) -> &Host {
    sim.host(i).unwrap()
}

pub fn adversary(sim: &Sim<Host>) -> &Adversary {
    host(sim, M).adv.as_ref().unwrap()
}

pub fn index_of_mac(mac: veilmesh::wire::MacAddr) -> Option<usize> {
    (0..N).find(|&i| mac_of(i) == mac)
}

pub fn next_hop(sim: &Sim<Host>, from: usize, to: usize) -> Option<usize> {
    let id = host(sim, to).node_id();
    index_of_mac(SimHost::next_hop(host(sim, from), &id)?)
}

/// The nodes a packet from `from` toward `V` visits, `V` included (or where it stops).
pub fn path_to_victim(sim: &Sim<Host>, from: usize) -> Vec<usize> {
    let mut path = vec![from];
    let mut at = from;
    while at != V && path.len() <= N {
        match next_hop(sim, at, V) {
            Some(h) => {
                path.push(h);
                at = h;
            }
            None => break,
        }
    }
    path
}

pub fn honest() -> impl Iterator<Item = usize> {
    (0..N).filter(|&i| i != M && i != V)
}

/// Every honest node's next hop toward V.
pub fn routes(sim: &Sim<Host>) -> Vec<(usize, Option<usize>)> {
    honest().map(|i| (i, next_hop(sim, i, V))).collect()
}

/// Routes toward V equal `baseline`, avoid M, reach V, and claim no impossible metric.
pub fn assert_routes_hold(sim: &Sim<Host>, baseline: &[(usize, Option<usize>)], what: &str) {
    let t = sim.now().as_micros() / 1000;
    assert_eq!(
        routes(sim),
        baseline,
        "{what}, t={t} ms: routes toward V changed"
    );
    let v = host(sim, V).node_id();
    for i in honest() {
        let path = path_to_victim(sim, i);
        assert_eq!(
            path.last(),
            Some(&V),
            "{what}, t={t} ms: {i} -> V: {path:?}"
        );
        assert!(
            !path.contains(&M),
            "{what}, t={t} ms: {i} -> V via M: {path:?}"
        );
        let metric = u32::from(host(sim, i).node.routing().route(&v).unwrap().metric);
        let least = MIN_LINK_COST * hops_to_victim(i);
        assert!(
            metric >= least,
            "{what}, t={t} ms: node {i} believes metric {metric} to V, a real path costs >= {least}"
        );
    }
}

/// Flows from each source to V: every 20 ms from 42 s for 50 s.
pub fn add_flows(sim: &mut Sim<Host>) -> Vec<usize> {
    SOURCES
        .iter()
        .map(|&src| {
            sim.add_flow(FlowSpec {
                src,
                dst: V,
                start: secs(42),
                interval: Duration::from_millis(20),
                count: 2500,
                payload_len: 0,
            })
            .unwrap()
        })
        .collect()
}

pub fn assert_full_delivery(sim: &Sim<Host>, flows: &[usize], what: &str) {
    for &f in flows {
        let st = sim.flow_stats(f).unwrap();
        eprintln!(
            "{what}: flow {f}: {} of {} delivered",
            st.delivered, st.sent
        );
        assert_eq!(st.sent, 2500, "{what}: flow {f}");
        assert_eq!(st.delivered, st.sent, "{what}: flow {f}: {st:?}");
        assert_eq!(st.duplicates, 0, "{what}: flow {f}");
        assert_eq!(st.misdelivered, 0, "{what}: flow {f}");
    }
}

pub fn drops(sim: &Sim<Host>, i: usize, r: DropReason) -> u64 {
    host(sim, i).node.stats().drops(r)
}

/// Run an attack from 45 s to 95 s: settle, take the baseline at 44 s, check routes every
/// second until 100 s and full delivery at the end. Returns the run.
pub fn run_attack(what: &str, make: impl FnMut() -> Adversary + 'static) -> Sim<Host> {
    let mut sim = sim(make);
    let flows = add_flows(&mut sim);
    sim.run_until(secs(44));
    let baseline = routes(&sim);
    eprintln!("{what}: routes toward V: {baseline:?}");
    assert!(
        baseline.iter().all(|(_, h)| h.is_some()),
        "{what}: not converged"
    );
    assert_routes_hold(&sim, &baseline, what);
    for t in 45..=100 {
        sim.run_until(secs(t));
        assert_routes_hold(&sim, &baseline, what);
    }
    assert_full_delivery(&sim, &flows, what);
    assert_eq!(
        adversary(&sim).blackholed,
        0,
        "{what}: traffic went through M"
    );
    sim
}

pub fn attacker(attack: Attack) -> Adversary {
    let mut a = Adversary::new(attack, secs(45), secs(95), Duration::from_secs(1));
    a.blackhole = true;
    a
}

pub fn print_drops(sim: &Sim<Host>, what: &str, reasons: &[DropReason]) {
    for i in 0..N {
        let s: Vec<String> = reasons
            .iter()
            .map(|r| format!("{}={}", r.as_str(), drops(sim, i, *r)))
            .collect();
        let c = host(sim, i).node.routing().counters();
        eprintln!(
            "{what}: node {i}: {} ogm_old={} ogm_stale={} ogm_invalid={} ogm_unknown_originator={}",
            s.join(" "),
            c.ogm_old,
            c.ogm_stale,
            c.ogm_invalid,
            c.ogm_unknown_originator
        );
    }
}
