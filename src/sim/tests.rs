//! Whole-simulator scenarios with small hand-made hosts and the flooding mock.

use std::cell::RefCell;
use std::net::Ipv6Addr;
use std::rc::Rc;

use super::mock::{flood_factory, FloodConfig, FloodHost};
use super::*;
use crate::node::{IfaceId, Transmit};
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, NodeId};

/// A host that optionally broadcasts one beacon at start, reports a fixed hook value,
/// optionally asks for its timer at the current instant forever, and routes by `route`.
struct TestHost {
    index: usize,
    epoch: u32,
    beacon_pending: bool,
    spin: bool,
    hook: u64,
    received: u64,
    route: fn(usize, usize) -> Option<usize>,
}

fn test_id(i: usize) -> NodeId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(i as u64).to_be_bytes());
    NodeId(id)
}

impl SimHost for TestHost {
    fn node_id(&self) -> NodeId {
        test_id(self.index)
    }
    fn overlay_addr(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, self.index as u16)
    }
    fn handle_frame(&mut self, _now: Instant, _iface: IfaceId, _src: MacAddr, _frame: &[u8]) {
        self.received += 1;
    }
    fn handle_ip_packet(&mut self, _now: Instant, _packet: &[u8]) {}
    fn handle_timeout(&mut self, _now: Instant) {}
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if !std::mem::take(&mut self.beacon_pending) {
            return None;
        }
        buf[..4].copy_from_slice(&[0x16, self.index as u8, 0, 0]);
        Some(Transmit {
            iface: IfaceId(0),
            dst: MacAddr::BROADCAST,
            len: 4,
        })
    }
    fn poll_deliver(&mut self, _buf: &mut [u8]) -> Option<usize> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.spin.then_some(Instant::ZERO)
    }
    fn next_hop(&self, dst: &NodeId) -> Option<MacAddr> {
        let d = u64::from_be_bytes(dst.0[..8].try_into().ok()?) as usize;
        (self.route)(self.index, d).map(mac_of)
    }
    fn control_bytes_sent(&self) -> u64 {
        self.hook
    }
}

fn test_host(index: usize, epoch: u32, _mac: MacAddr, _now: Instant) -> TestHost {
    TestHost {
        index,
        epoch,
        beacon_pending: true,
        spin: false,
        hook: 0,
        received: 0,
        route: |_, _| None,
    }
}

fn flow(src: usize, dst: usize, start_ms: u64, count: u64) -> FlowSpec {
    FlowSpec {
        src,
        dst,
        start: Instant::from_millis(start_ms),
        interval: Duration::from_millis(100),
        count,
        payload_len: 0,
    }
}

fn flood_sim(spec: &str, seed: u64) -> Sim<FloodHost> {
    let cfg = SimConfig {
        seed,
        ..SimConfig::default()
    };
    Sim::new(
        &spec.parse().unwrap(),
        cfg,
        flood_factory(seed, FloodConfig::default()),
    )
}

#[test]
fn the_flooding_mock_converges_routes_optimally_and_delivers() {
    let mut sim = flood_sim("grid:4x4", 1);
    let f = sim.add_flow(flow(0, 15, 3000, 50)).unwrap();
    sim.run_until(Instant::from_millis(10_000));
    let first = sim.convergence().first.expect("converged");
    assert!(
        first <= Instant::from_millis(3000),
        "converged at {first:?}"
    );
    assert_eq!(sim.check_routes(), None);
    let census = sim.route_census();
    assert_eq!((census.pairs, census.reached), (240, 240));
    let s = sim.stretch(&etx_cost(0.0), 100);
    assert_eq!(s.pairs, 240);
    assert!(s.mean < 1.05 && s.max < 1.5, "{s:?}");
    let stats = sim.flow_stats(f).unwrap();
    assert_eq!((stats.sent, stats.delivered), (50, 50));
    // Six hops of ~1.2 ms each, a little queueing at most.
    assert!(
        stats.latency_max < Duration::from_millis(15),
        "{:?}",
        stats.latency_max
    );
    assert_eq!(sim.stats().stray_deliveries, 0);
}

#[test]
fn a_reply_flow_answers_each_request_that_arrives_once() {
    let mut sim = flood_sim("line:3", 2);
    let req = sim.add_flow(flow(0, 2, 3000, 40)).unwrap();
    let rep = sim.add_reply_flow(req).unwrap();
    assert!(
        sim.add_reply_flow(req).is_err(),
        "one reply flow per request flow"
    );
    assert!(sim.add_reply_flow(99).is_err());
    // Requests sent while the middle link is cut never arrive, so they are never answered.
    sim.schedule(Instant::from_millis(5_000), Action::Cut { a: 1, b: 2 })
        .unwrap();
    sim.run_until(Instant::from_millis(10_000));
    let (q, a) = (sim.flow_stats(req).unwrap(), sim.flow_stats(rep).unwrap());
    assert_eq!(q.sent, 40);
    assert!(q.delivered >= 15 && q.delivered < 40, "{q:?}");
    assert_eq!(a.sent, q.delivered, "one answer per request delivered");
    assert_eq!(a.delivered, a.sent);
    assert_eq!(
        sim.flows().nth(rep).map(|(spec, _)| (spec.src, spec.dst)),
        Some((2, 0))
    );
}

/// Runs a busy scenario (loss, flows, a cut, a crash and a restart) and returns its fingerprint.
fn busy_run(
    seed: u64,
) -> (
    u64,
    EngineStats,
    Vec<FlowStats>,
    Vec<NodeCounters>,
    ConvergenceLog,
) {
    let mut topo: Topology = "random:60:5".parse().unwrap();
    topo.set_all_loss(0.2).unwrap();
    let cfg = SimConfig {
        seed,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(&topo, cfg, flood_factory(seed, FloodConfig::default()));
    sim.add_flow(flow(0, 59, 2000, 60)).unwrap();
    sim.add_flow(flow(30, 7, 2500, 60)).unwrap();
    let l = topo.links()[3];
    sim.schedule(Instant::from_millis(4000), Action::Cut { a: l.a, b: l.b })
        .unwrap();
    sim.schedule(Instant::from_millis(5000), Action::Crash(12))
        .unwrap();
    sim.schedule(Instant::from_millis(6000), Action::Restart(12))
        .unwrap();
    sim.run_until(Instant::from_millis(9000));
    let flows = sim.flows().map(|(_, s)| s.clone()).collect();
    (
        sim.trace_digest(),
        sim.stats().clone(),
        flows,
        sim.medium().all_counters().to_vec(),
        sim.convergence().clone(),
    )
}

#[test]
fn the_same_seed_gives_the_same_run_bit_for_bit() {
    let a = busy_run(11);
    assert_eq!(a, busy_run(11));
    assert!(a.1.events > 10_000, "{:?}", a.1);
    assert!(a.2[0].delivered > 0);
    let b = busy_run(12);
    assert_ne!(a.0, b.0);
    assert_ne!(a.3, b.3);
}

#[test]
fn crash_and_restart_rebuild_the_host_with_the_next_epoch() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    let log = calls.clone();
    let factory = move |i, epoch, mac, _now| {
        log.borrow_mut().push((i, epoch, mac));
        test_host(i, epoch, mac, Instant::ZERO)
    };
    let mut sim = Sim::new(&"line:3".parse().unwrap(), SimConfig::default(), factory);
    sim.schedule(Instant::from_millis(10), Action::Crash(1))
        .unwrap();
    sim.schedule(Instant::from_millis(20), Action::Restart(1))
        .unwrap();
    sim.schedule(Instant::from_millis(30), Action::Restart(1))
        .unwrap();
    sim.run_until(Instant::from_millis(15));
    assert!(!sim.is_live(1) && sim.host(1).is_none());
    assert_eq!(sim.epoch(1), 0);
    sim.run_until(Instant::from_millis(40));
    let expected: Vec<_> = [(0, 0), (1, 0), (2, 0), (1, 1), (1, 2)]
        .iter()
        .map(|&(i, e)| (i, e, mac_of(i)))
        .collect();
    assert_eq!(*calls.borrow(), expected);
    assert_eq!((sim.epoch(1), sim.host(1).unwrap().epoch), (2, 2));
    // Each restarted host beacons once: its neighbours heard three beacons from node 1.
    assert_eq!(sim.host(0).unwrap().received, 3);
    assert_eq!(sim.stats().hosts_built, 5);
    assert_eq!(sim.convergence().disruptions.len(), 3);
}

#[test]
fn frames_to_a_crashed_node_vanish() {
    let mut sim = Sim::new(&"line:2".parse().unwrap(), SimConfig::default(), test_host);
    // Both beacons are in the air (1 ms latency) when node 1 crashes.
    sim.apply(Action::Crash(1)).unwrap();
    sim.run_until(Instant::from_millis(5));
    assert_eq!(sim.stats().frames_to_dead, 1);
    assert_eq!(sim.host(0).unwrap().received, 1);
}

#[test]
fn a_broadcast_reaches_exactly_the_neighbours_through_the_engine() {
    let topo: Topology = "grid:3x3".parse().unwrap();
    let mut sim = Sim::new(&topo, SimConfig::default(), test_host);
    sim.run_until(Instant::from_millis(5));
    let heard: Vec<u64> = (0..9).map(|i| sim.host(i).unwrap().received).collect();
    let degree: Vec<u64> = topo.adjacency().iter().map(|a| a.len() as u64).collect();
    assert_eq!(heard, degree);
    assert_eq!(sim.stats().frames_delivered, 24);
}

#[test]
fn cutting_a_link_stops_delivery_and_healing_restarts_it() {
    let mut sim = flood_sim("line:3", 3);
    let f = sim.add_flow(flow(0, 2, 3000, 100)).unwrap();
    sim.schedule(Instant::from_millis(5000), Action::Cut { a: 1, b: 2 })
        .unwrap();
    sim.schedule(Instant::from_millis(8000), Action::Heal { a: 1, b: 2 })
        .unwrap();
    sim.run_until(Instant::from_millis(5000));
    let before = sim.flow_stats(f).unwrap().delivered;
    assert_eq!(before, 20);
    sim.run_until(Instant::from_millis(8000));
    assert_eq!(
        sim.flow_stats(f).unwrap().delivered,
        before,
        "delivered across a cut link"
    );
    sim.run_until(Instant::from_millis(14_000));
    let s = sim.flow_stats(f).unwrap();
    assert!(s.delivered >= 20 + 40, "{s:?}");
    let gap = s.longest_gap();
    assert!(
        gap >= Duration::from_millis(3000) && gap < Duration::from_millis(3200),
        "{gap:?}"
    );
    assert_eq!(sim.convergence().disruptions.len(), 2);
}

#[test]
fn a_cut_on_a_ring_is_routed_around() {
    let mut sim = flood_sim("ring:6", 4);
    let f = sim.add_flow(flow(0, 2, 3000, 100)).unwrap();
    sim.schedule(Instant::from_millis(5000), Action::Cut { a: 1, b: 2 })
        .unwrap();
    sim.run_until(Instant::from_millis(14_000));
    let s = sim.flow_stats(f).unwrap();
    let gap = s.longest_gap();
    assert!(
        gap > Duration::from_millis(150) && gap < Duration::from_millis(1500),
        "{gap:?}"
    );
    let d = sim.convergence().disruptions[0];
    let heal = d.reconverged.expect("reconverged") - d.at;
    assert!(heal < Duration::from_millis(1500), "{heal:?}");
    assert_eq!(sim.check_routes(), None);
}

#[test]
fn the_route_check_catches_a_looping_host() {
    // On line:3 every node forwards "right" and 2 bounces back: toward 0, 1 and 2 ping-pong.
    let looping = |i: usize, epoch, mac, _now| TestHost {
        route: |at, dst| (at != dst).then_some(if at == 2 { 1 } else { at + 1 }),
        ..test_host(i, epoch, mac, Instant::ZERO)
    };
    let mut sim = Sim::new(&"line:3".parse().unwrap(), SimConfig::default(), looping);
    sim.run_until(Instant::from_millis(1000));
    let failure = sim.check_routes().unwrap();
    assert_eq!(failure.outcome, RouteOutcome::Loop);
    let log = sim.convergence();
    assert_eq!((log.first, log.checks), (None, 10));
    assert_eq!(log.last_failure, Some(failure));
    let census = sim.route_census();
    assert_eq!((census.looped, census.reached), (2, 4));
}

#[test]
fn a_host_spinning_on_the_current_instant_cannot_stall_the_run() {
    let spinner = |i, epoch, mac, _now| TestHost {
        spin: true,
        ..test_host(i, epoch, mac, Instant::ZERO)
    };
    let mut sim = Sim::new(&"line:2".parse().unwrap(), SimConfig::default(), spinner);
    sim.run_until(Instant::from_micros(10));
    let s = sim.stats();
    assert!(s.timer_spin_breaks > 0);
    assert!(s.events < 50_000, "{s:?}");
    // A zero check interval is treated as 1 us rather than looping at one instant.
    let cfg = SimConfig {
        check_interval: Duration::ZERO,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(&"line:2".parse().unwrap(), cfg, test_host);
    sim.run_until(Instant::from_micros(100));
    assert_eq!(sim.convergence().checks, 101, "checks at 0, 1, ..., 100 us");
}

#[test]
fn control_bytes_add_the_host_hook_across_restarts() {
    let hooked = |i, epoch, mac, _now| TestHost {
        hook: 1000,
        ..test_host(i, epoch, mac, Instant::ZERO)
    };
    let mut sim = Sim::new(&"line:2".parse().unwrap(), SimConfig::default(), hooked);
    sim.run_until(Instant::from_millis(1));
    // One 4-byte broadcast beacon (+14 header) plus the hook.
    assert_eq!(sim.control_bytes(0), 18 + 1000);
    sim.apply(Action::Restart(0)).unwrap();
    assert_eq!(sim.control_bytes(0), 2 * 18 + 2000);
    assert_eq!(sim.control_snapshot(), vec![2036, 1018]);
}

#[test]
fn bad_scenario_requests_are_refused_with_a_reason() {
    let mut sim = Sim::new(&"line:3".parse().unwrap(), SimConfig::default(), test_host);
    assert_eq!(
        sim.schedule(Instant::ZERO, Action::Crash(3)),
        Err(SimError::NodeOutOfRange { node: 3, n: 3 })
    );
    let no_link = Err(SimError::Medium(MediumError::NoSuchLink { from: 0, to: 2 }));
    assert_eq!(
        sim.schedule(Instant::ZERO, Action::Cut { a: 0, b: 2 }),
        no_link
    );
    let bad_loss = Action::SetLoss {
        from: 0,
        to: 1,
        loss: -1.0,
    };
    assert_eq!(
        sim.schedule(Instant::ZERO, bad_loss),
        Err(SimError::Medium(MediumError::BadLoss(-1.0)))
    );
    sim.run_until(Instant::from_millis(10));
    assert!(matches!(
        sim.schedule(Instant::from_millis(5), Action::Crash(0)),
        Err(SimError::InThePast { .. })
    ));
    assert!(matches!(
        sim.add_flow(flow(1, 1, 0, 1)),
        Err(SimError::BadFlow(_))
    ));
    assert!(matches!(
        sim.add_flow(FlowSpec {
            interval: Duration::ZERO,
            ..flow(0, 1, 0, 1)
        }),
        Err(SimError::BadFlow(_))
    ));
    assert!(matches!(
        sim.add_flow(flow(0, 9, 0, 1)),
        Err(SimError::NodeOutOfRange { node: 9, .. })
    ));
    assert!(sim
        .schedule(
            Instant::from_millis(10),
            Action::SetLoss {
                from: 0,
                to: 1,
                loss: 0.5
            }
        )
        .is_ok());
}
