//! The same seed gives the same run, bit for bit, across processes: nothing in the core
//! may depend on the OS-seeded hasher, the clock or anything else outside the seed. The
//! test runs one scenario with real nodes in two child processes (this test binary run
//! again) and compares the simulator's trace digest, which covers every frame's bytes.

use std::process::Command;

use veilmesh::node::NodeConfig;
use veilmesh::sim::{node_factory, Action, FlowSpec, Sim, SimConfig, Topology};
use veilmesh::time::{Duration, Instant};

const CHILD: &str = "VEIL_DETERMINISM_CHILD";

/// A busy run: 25 nodes with lossy links, flows both ways, a cut and a crash.
fn scenario_digest(seed: u64) -> u64 {
    let mut topo: Topology = "random:25:4".parse().unwrap();
    topo.set_all_loss(0.1).unwrap();
    let cfg = SimConfig {
        seed,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(&topo, cfg, node_factory(seed, NodeConfig::default()));
    for (src, dst) in [(0, 24), (24, 0), (7, 13)] {
        sim.add_flow(FlowSpec {
            src,
            dst,
            start: Instant::from_millis(10_000),
            interval: Duration::from_millis(50),
            count: 300,
            payload_len: 200,
        })
        .unwrap();
    }
    let l = topo.links()[2];
    sim.schedule(Instant::from_millis(15_000), Action::Cut { a: l.a, b: l.b })
        .unwrap();
    sim.schedule(Instant::from_millis(17_000), Action::Crash(5))
        .unwrap();
    sim.schedule(Instant::from_millis(19_000), Action::Restart(5))
        .unwrap();
    sim.run_until(Instant::from_millis(30_000));
    sim.trace_digest()
}

fn digest_in_child(seed: u64) -> u64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_prints_its_digest", "--nocapture"])
        .env(CHILD, seed.to_string())
        .output()
        .expect("run the test binary again");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {text}");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("digest="))
        .unwrap_or_else(|| panic!("no digest in the child's output: {text}"));
    line.trim().parse().unwrap()
}

/// Only does something when run as a child by the test below.
#[test]
fn child_prints_its_digest() {
    if let Ok(seed) = std::env::var(CHILD) {
        println!("digest={}", scenario_digest(seed.parse().unwrap()));
    }
}

#[test]
fn one_seed_gives_one_run_in_any_process() {
    let (a, b) = (digest_in_child(3), digest_in_child(3));
    eprintln!("digests: {a:x} {b:x}");
    assert_eq!(a, b, "two processes, one seed, two runs");
    assert_ne!(
        a,
        digest_in_child(4),
        "the digest does not depend on the seed"
    );
}
