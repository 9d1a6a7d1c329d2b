//! Node-level onion tests: a relay under a build flood, replayed and expired builds, and the
//! relay's state size (docs/protocol.md §8.7).

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::tests::{node, run_pair};
use super::*;
use crate::crypto::onion::{
    seal_build, AnonIdentity, CreatorCircuit, Direction, HopOrder, HopSpec, OnionKeyRecord,
    BUILD_LEN, EXIT_DATA_LEN, SLOTS_LEN,
};
use crate::time::Duration;
use crate::wire::{OnionHeader, CELL_REGION_LEN};

impl Node {
    fn on_build(&mut self, now: Instant, link: u32, records: &[u8; BUILD_LEN]) {
        let header = OnionHeader {
            dst: self.shared.id,
            ttl: 8,
            link,
        };
        let (data, mut env) = self.data_env();
        data.on_build(now, &header, records, &mut env);
    }

    /// Our current onion key record, verified.
    fn own_onion_record(&self) -> OnionKeyRecord {
        let id = self.shared.id;
        let bytes = self.control.onion_keys().bytes(&id, &id).copied().unwrap();
        OnionKeyRecord::parse_and_verify(&bytes, &self.shared.identity.public()).unwrap()
    }
}

/// A one-relay build for `relay` (its record) from `creator`, on `link`.
fn build_for(
    relay: &OnionKeyRecord,
    creator: NodeId,
    link: u32,
    rng: &mut ChaCha20Rng,
) -> [u8; BUILD_LEN] {
    build_claiming(relay, (creator, link), [0; EXIT_DATA_LEN], rng).0
}

/// A one-relay build with `exit_data`, and the creator's side of the circuit.
fn build_claiming(
    relay: &OnionKeyRecord,
    (creator, link): (NodeId, u32),
    exit_data: [u8; EXIT_DATA_LEN],
    rng: &mut ChaCha20Rng,
) -> ([u8; BUILD_LEN], CreatorCircuit) {
    let spec = HopSpec {
        onion_key: relay.key,
        key_seq: relay.seq,
        order: HopOrder {
            exit: true,
            prev: creator,
            next: NodeId([0; 16]),
            next_link: 0,
            exit_data,
        },
    };
    let mut msg = [0u8; BUILD_LEN];
    let keys = seal_build(&[spec], link, rng, &mut msg).unwrap();
    (msg, CreatorCircuit::new(keys, &[link], [7; 32]).unwrap())
}

#[test]
fn an_exit_hands_an_address_over_only_with_its_claim_secret() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 3);
    let now = t0 + Duration::from_secs(3);
    let rec = b.own_onion_record();
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let id = AnonIdentity::generate(&mut rng);
    let creator = a.node_id();
    let (first, _) = build_claiming(&rec, (creator, 10), id.exit_data(), &mut rng);
    b.on_build(now, 10, &first);
    assert_eq!(b.relayed_circuits(), 1);
    // Another circuit claiming the same address with another secret: refused while the
    // first lives.
    let mut stolen = id.exit_data();
    stolen[8] ^= 1;
    let (thief, _) = build_claiming(&rec, (creator, 11), stolen, &mut rng);
    b.on_build(now, 11, &thief);
    assert_eq!(b.stats().drops(DropReason::AnonClaimTaken), 1);
    assert_eq!(b.relayed_circuits(), 1);
    // The same claim again (a repaired circuit): the address moves to it.
    let (repair, _) = build_claiming(&rec, (creator, 12), id.exit_data(), &mut rng);
    b.on_build(now, 12, &repair);
    assert_eq!(b.relayed_circuits(), 2);
    assert_eq!(b.stats().drops(DropReason::AnonClaimTaken), 1);
}

#[test]
fn an_exit_passes_on_only_packets_under_the_key_its_circuit_claimed() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 3);
    let now = t0 + Duration::from_secs(3);
    let rec = b.own_onion_record();
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let (id, other) = (
        AnonIdentity::generate(&mut rng),
        AnonIdentity::generate(&mut rng),
    );
    let (msg, mut circuit) = build_claiming(&rec, (a.node_id(), 20), id.exit_data(), &mut rng);
    b.on_build(now, 20, &msg);
    // An Anonymous body for node a under another key than the claimed one.
    let mut region = [0u8; CELL_REGION_LEN];
    let payload_len: u16 = 16 + 4 + 32 + 8 + 16 + 40;
    region[SLOTS_LEN] = 4;
    region[SLOTS_LEN + 1..SLOTS_LEN + 3].copy_from_slice(&payload_len.to_be_bytes());
    let p = SLOTS_LEN + 3;
    region[p..p + 16].copy_from_slice(&a.node_id().0);
    region[p + 20..p + 52].copy_from_slice(&other.public());
    circuit.seal_forward(&mut region).unwrap();
    let header = OnionHeader {
        dst: b.node_id(),
        ttl: 8,
        link: 20,
    };
    let flags = Direction::Forward.flag();
    {
        let (data, mut env) = b.data_env();
        data.on_cell(now, (&header, flags), &region, &mut env);
    }
    assert_eq!(b.stats().drops(DropReason::AnonNotClaimed), 1);
    assert_eq!(b.stats().anon_exit_packets, 0);
    // The claimed key passes (the destination, not the exit, checks the seal).
    let mut region = [0u8; CELL_REGION_LEN];
    region[SLOTS_LEN] = 4;
    region[SLOTS_LEN + 1..SLOTS_LEN + 3].copy_from_slice(&payload_len.to_be_bytes());
    region[p..p + 16].copy_from_slice(&a.node_id().0);
    region[p + 20..p + 52].copy_from_slice(&id.public());
    circuit.seal_forward(&mut region).unwrap();
    {
        let (data, mut env) = b.data_env();
        data.on_cell(now, (&header, flags), &region, &mut env);
    }
    assert_eq!(b.stats().anon_exit_packets, 1);
    assert_eq!(b.stats().drops(DropReason::AnonNotClaimed), 1);
}

#[test]
fn property_14_a_build_flood_opens_at_most_the_budget_and_every_drop_is_counted() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 3);
    let now = t0 + Duration::from_secs(3);
    let rec = b.own_onion_record();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    // 1000 genuine builds in one second.
    let builds: Vec<_> = (0..1000u32)
        .map(|i| build_for(&rec, a.node_id(), 10 + i, &mut rng))
        .collect();
    for (i, msg) in builds.iter().enumerate() {
        b.on_build(now + Duration::from_millis(i as u64), 10 + i as u32, msg);
    }
    let opened = b.stats().onion_circuits_relayed;
    let limited = b.stats().drops(DropReason::OnionBuildRateLimited);
    assert!(
        opened <= 2 * u64::from(BUILDS_PER_SEC),
        "{opened} builds opened in a second"
    );
    assert!(opened >= u64::from(BUILDS_PER_SEC), "{opened}");
    assert_eq!(opened + limited, 1000, "every build opened or counted");
    assert_eq!(b.relayed_circuits() as u64, opened);

    // The first build again, on its own leg and on another: refused, counted, not opened.
    let later = now + Duration::from_secs(5);
    b.on_build(later, 10, &builds[0]);
    assert_eq!(b.stats().drops(DropReason::OnionLinkTaken), 1);
    b.on_build(later, 99_999, &builds[0]);
    assert_eq!(b.stats().drops(DropReason::OnionBuildReplay), 1);
    assert_eq!(b.stats().drops(DropReason::OnionBuildAuth), 0);
}

#[test]
fn a_relay_holds_at_most_its_table_and_refuses_the_rest() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 3);
    let rec = b.own_onion_record();
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    // A build every 20 ms (the budget's rate) until the table is full, then some more.
    for i in 0..(MAX_RELAY_CIRCUITS as u32 + 20) {
        let at = t0 + Duration::from_secs(3) + Duration::from_millis(20 * u64::from(i));
        let link = i + 1;
        let msg = build_for(&rec, a.node_id(), link, &mut rng);
        b.on_build(at, link, &msg);
    }
    assert_eq!(b.relayed_circuits(), MAX_RELAY_CIRCUITS);
    assert_eq!(b.stats().drops(DropReason::OnionCircuitsFull), 20);
    assert_eq!(b.stats().drops(DropReason::OnionBuildRateLimited), 0);
}

#[test]
fn property_13_a_build_recorded_before_two_rotations_opens_nothing() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 3);
    let rec = b.own_onion_record();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let recorded = build_for(&rec, a.node_id(), 77, &mut rng);
    // One rotation: the old key still opens builds on their way.
    let first = t0 + ONION_KEY_ROTATION + Duration::from_secs(1);
    b.handle_timeout(first);
    assert_ne!(b.own_onion_record().seq, rec.seq);
    let in_overlap = build_for(&rec, a.node_id(), 78, &mut rng);
    b.on_build(first, 78, &in_overlap);
    assert_eq!(b.stats().onion_circuits_relayed, 1);
    // A second rotation erases it: the recorded build finds no key.
    let second = first + ONION_KEY_ROTATION;
    b.handle_timeout(second);
    b.on_build(second, 77, &recorded);
    assert_eq!(b.stats().drops(DropReason::OnionBuildUnknownKey), 1);
    assert_eq!(b.stats().onion_circuits_relayed, 1);
}

#[test]
fn hostile_builds_and_cells_never_panic_and_are_counted() {
    use proptest::prelude::*;
    use proptest::test_runner::TestRunner;
    let t0 = Instant::ZERO;
    let n = std::cell::RefCell::new(node(3, t0));
    let mut runner = TestRunner::deterministic();
    let strategy = (
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), BUILD_LEN),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), crate::wire::CELL_REGION_LEN),
    );
    runner
        .run(&strategy, |(link, build, flags, region)| {
            let n = &mut *n.borrow_mut();
            let before = n.stats().total_drops();
            let build: [u8; BUILD_LEN] = build.try_into().unwrap();
            n.on_build(t0, link, &build);
            let region: [u8; crate::wire::CELL_REGION_LEN] = region.try_into().unwrap();
            let header = OnionHeader {
                dst: n.shared.id,
                ttl: 8,
                link,
            };
            let (data, mut env) = n.data_env();
            data.on_cell(t0, (&header, flags), &region, &mut env);
            // Neither can be taken: each is dropped with a reason.
            prop_assert_eq!(n.stats().total_drops(), before + 2);
            Ok(())
        })
        .unwrap();
    assert_eq!(n.borrow().relayed_circuits(), 0);
}
