//! Direct mode end to end (docs/protocol.md §7): what an instrumented relay can read of a
//! flow it carries, and that both directions still get through.

use std::cell::RefCell;
use std::rc::Rc;

use veilmesh::node::Node;
use veilmesh::sim::{node_factory, FlowSpec, Sim, SimConfig, Topology};
use veilmesh::time::{Duration, Instant};

const SEED: u64 = 21;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() <= haystack.len() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_instrumented_relay_never_sees_a_byte_of_the_flows_it_carries() {
    let topo: Topology = "line:4".parse().unwrap();
    let cfg = SimConfig {
        seed: SEED,
        ..SimConfig::default()
    };
    let mut sim: Sim<Node> = Sim::new(&topo, cfg, node_factory(SEED, Default::default()));
    let seen: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    for relay in [1, 2] {
        let seen = seen.clone();
        let host = sim.host_mut(relay).unwrap();
        host.set_relay_tap(Box::new(move |p| seen.borrow_mut().push(p.to_vec())));
    }
    for (src, dst) in [(0, 3), (3, 0)] {
        sim.add_flow(FlowSpec {
            src,
            dst,
            start: Instant::from_millis(10_000),
            interval: Duration::from_millis(50),
            count: 100,
            payload_len: 600,
        })
        .unwrap();
    }
    sim.run_until(Instant::from_millis(30_000));
    for f in 0..2 {
        assert_eq!(
            sim.flow_stats(f).unwrap().delivered,
            100,
            "flow {f} got through"
        );
    }
    // The flows' packets: both overlay addresses in their IPv6 header, 600 zero bytes.
    let ends = |a: usize, b: usize| {
        let (a, b) = (sim.host(a).unwrap(), sim.host(b).unwrap());
        [a.overlay_ipv6().octets(), b.overlay_ipv6().octets()].concat()
    };
    let headers = [ends(0, 3), ends(3, 0)];
    let zeros = [0u8; 32];
    let seen = seen.borrow();
    assert!(
        seen.len() >= 400,
        "the relays carried {} payloads",
        seen.len()
    );
    for payload in seen.iter() {
        for h in &headers {
            assert!(!contains(payload, h), "a relay read an IP header");
        }
        assert!(
            !contains(payload, &zeros),
            "a relay read the flow's payload"
        );
    }
}
