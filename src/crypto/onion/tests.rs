//! The onion properties that hold at the crypto level (docs/protocol.md §8, ONION.md's list):
//! builds and cells round-trip, relays' views are unlinkable, tagging and replays are
//! dropped, and a rotated-away onion key opens nothing.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::crypto::replay::ReplayError;
use crate::crypto::Identity;
use crate::wire::NodeId;

const BODY_LEN: usize = 200;

struct Setup {
    keys: Vec<OnionKeyPair>,
    links: Vec<u32>,
    specs: Vec<HopSpec>,
}

fn setup(hops: usize, seed: u64) -> Setup {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keys: Vec<_> = (0..hops)
        .map(|i| OnionKeyPair::generate(10 + i as u32, &mut rng))
        .collect();
    let links: Vec<u32> = (0..hops).map(|i| 0x1000 + i as u32).collect();
    let specs = keys
        .iter()
        .enumerate()
        .map(|(i, k)| HopSpec {
            onion_key: k.public(),
            key_seq: k.seq(),
            order: HopOrder {
                exit: i + 1 == hops,
                prev: NodeId([0x80 + i as u8; 16]),
                next: NodeId([i as u8 + 1; 16]),
                next_link: links.get(i + 1).copied().unwrap_or(0),
                exit_data: [i as u8; EXIT_DATA_LEN],
            },
        })
        .collect();
    Setup { keys, links, specs }
}

/// A built circuit: the creator's side, every relay's, and the build as each relay got it.
fn built(hops: usize, seed: u64) -> (CreatorCircuit, Vec<RelayLayer>, Vec<[u8; BUILD_LEN]>) {
    let s = setup(hops, seed);
    let mut rng = ChaCha20Rng::seed_from_u64(seed + 1000);
    let mut msg = [0u8; BUILD_LEN];
    let creator_keys = seal_build(&s.specs, s.links[0], &mut rng, &mut msg).unwrap();
    let mut relays = Vec::new();
    let mut seen = Vec::new();
    for (i, key) in s.keys.iter().enumerate() {
        seen.push(msg);
        assert_eq!(build_key_seq(&msg), key.seq());
        let (order, keys) = open_build(key, s.links[i], &mut msg).unwrap();
        assert_eq!(order, s.specs[i].order, "hop {i}");
        relays.push(RelayLayer::new(keys, s.links[i]));
    }
    let circuit = CreatorCircuit::new(creator_keys, &s.links, [9u8; 32]).unwrap();
    (circuit, relays, seen)
}

fn cell(seed: u64) -> Vec<u8> {
    let mut c = vec![0u8; SLOTS_LEN + BODY_LEN];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut c[SLOTS_LEN..]);
    c
}

/// Sends one forward cell through every relay; returns each relay's input.
fn forward(circuit: &mut CreatorCircuit, relays: &mut [RelayLayer], plain: &[u8]) -> Vec<Vec<u8>> {
    let mut c = plain.to_vec();
    circuit.seal_forward(&mut c).unwrap();
    let mut views = Vec::new();
    for r in relays.iter_mut() {
        views.push(c.clone());
        r.open_forward(&mut c).unwrap();
    }
    assert_eq!(c[SLOTS_LEN..], plain[SLOTS_LEN..]);
    views
}

fn has_common_window(a: &[u8], b: &[u8]) -> bool {
    let set: std::collections::HashSet<&[u8]> = a.windows(8).collect();
    b.windows(8).any(|w| set.contains(w))
}

#[test]
fn builds_and_cells_round_trip_with_three_and_two_relays() {
    for hops in [1, 2, 3] {
        let (mut circuit, mut relays, _) = built(hops, 1);
        for n in 0..5 {
            forward(&mut circuit, &mut relays, &cell(n));
            let plain = cell(100 + n);
            let mut c = plain.clone();
            for r in relays.iter_mut().rev() {
                r.seal_backward(&mut c).unwrap();
            }
            circuit
                .open_backward(&mut c)
                .unwrap_or_else(|e| panic!("{hops} hops: {e}"));
            assert_eq!(c[SLOTS_LEN..], plain[SLOTS_LEN..], "{hops} hops");
        }
    }
}

#[test]
fn a_build_has_one_size_and_no_relay_sees_what_another_sees() {
    let (_, _, seen) = built(3, 2);
    for a in 0..3 {
        for b in a + 1..3 {
            assert!(!has_common_window(&seen[a], &seen[b]), "relays {a} and {b}");
        }
    }
}

#[test]
fn a_tampered_build_record_fails_at_its_relay() {
    let s = setup(3, 3);
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut msg = [0u8; BUILD_LEN];
    seal_build(&s.specs, s.links[0], &mut rng, &mut msg).unwrap();
    open_build(&s.keys[0], s.links[0], &mut msg).unwrap();
    for byte in 0..RECORD_LEN {
        let mut m = msg;
        m[byte] ^= 0x40;
        let got = open_build(&s.keys[1], s.links[1], &mut m);
        assert!(got.is_err(), "byte {byte}");
    }
    // The record is bound to the link id it arrives on.
    let mut m = msg;
    assert_eq!(
        open_build(&s.keys[1], s.links[1] ^ 1, &mut m).unwrap_err(),
        OnionError::Auth
    );
}

#[test]
fn forward_secrecy_a_rotated_key_opens_no_recorded_build() {
    let s = setup(1, 5);
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let mut recorded = [0u8; BUILD_LEN];
    seal_build(&s.specs, s.links[0], &mut rng, &mut recorded).unwrap();
    // The relay rotated: the old key is gone, only a new one is held.
    let new = OnionKeyPair::generate(11, &mut rng);
    drop(s.keys);
    let mut m = recorded;
    assert_eq!(
        open_build(&new, s.links[0], &mut m).unwrap_err(),
        OnionError::Auth
    );
}

#[test]
fn a_low_order_ephemeral_key_is_refused() {
    let s = setup(1, 7);
    let mut msg = [0u8; BUILD_LEN];
    msg[..4].copy_from_slice(&s.keys[0].seq().to_be_bytes());
    // The ephemeral key 0 (the identity point) gives an all-zero shared secret.
    assert_eq!(
        open_build(&s.keys[0], s.links[0], &mut msg).unwrap_err(),
        OnionError::LowOrderKey
    );
}

#[test]
fn property_1_no_window_of_what_a_relay_receives_is_in_what_it_sends() {
    let (mut circuit, mut relays, _) = built(3, 8);
    for n in 0..20 {
        let mut c = cell(n);
        circuit.seal_forward(&mut c).unwrap();
        for (i, r) in relays.iter_mut().enumerate() {
            let before = c.clone();
            r.open_forward(&mut c).unwrap();
            assert!(
                !has_common_window(&before, &c),
                "forward, relay {i}, cell {n}"
            );
        }
        let mut c = cell(500 + n);
        for (i, r) in relays.iter_mut().enumerate().rev() {
            let before = c.clone();
            r.seal_backward(&mut c).unwrap();
            assert!(
                !has_common_window(&before, &c),
                "backward, relay {i}, cell {n}"
            );
        }
        circuit.open_backward(&mut c).unwrap();
    }
}

#[test]
fn property_2_guard_and_exit_share_no_window_and_no_nonce_difference() {
    let (mut circuit, mut relays, _) = built(3, 9);
    let mut diffs = std::collections::HashSet::new();
    for n in 0..50 {
        let views = forward(&mut circuit, &mut relays, &cell(n));
        let (guard, exit) = (&views[0], &views[2]);
        assert!(!has_common_window(guard, exit), "cell {n}");
        // The nonce each reads (its first slot's last 12 bytes): no constant XOR or
        // difference between the two.
        let g = &guard[TAG_LEN_IN_SLOT..SLOT_LEN];
        let e = &exit[TAG_LEN_IN_SLOT..SLOT_LEN];
        let xor: Vec<u8> = g.iter().zip(e).map(|(a, b)| a ^ b).collect();
        let sub: Vec<u8> = g.iter().zip(e).map(|(a, b)| a.wrapping_sub(*b)).collect();
        assert!(diffs.insert(xor), "constant xor at cell {n}");
        assert!(diffs.insert(sub), "constant difference at cell {n}");
    }
}

const TAG_LEN_IN_SLOT: usize = SLOT_LEN - 12;

#[test]
fn property_3_any_bit_flipped_after_the_guard_dies_at_the_middle() {
    let (mut circuit, mut relays, _) = built(3, 10);
    let plain = cell(1);
    for bit in 0..plain.len() * 8 {
        let mut c = plain.clone();
        circuit.seal_forward(&mut c).unwrap();
        relays[0].open_forward(&mut c).unwrap();
        c[bit / 8] ^= 1 << (bit % 8);
        assert!(relays[1].open_forward(&mut c).is_err(), "bit {bit} passed");
    }
}

#[test]
fn property_4_a_bit_flipped_after_the_exit_dies_at_the_creator_or_is_erased() {
    let plain = cell(2);
    for bit in (0..plain.len() * 8).step_by(3) {
        // Two identical circuits: one cell tampered, its twin not.
        let (mut circuit, mut relays, _) = built(3, 11);
        let (_, mut twin_relays, _) = built(3, 11);
        let mut c = plain.clone();
        let mut twin = plain.clone();
        relays[2].seal_backward(&mut c).unwrap();
        twin_relays[2].seal_backward(&mut twin).unwrap();
        c[bit / 8] ^= 1 << (bit % 8);
        for i in [1, 0] {
            relays[i].seal_backward(&mut c).unwrap();
            twin_relays[i].seal_backward(&mut twin).unwrap();
        }
        // Either the creator refuses it, or the flip landed in slot junk that the relays'
        // shifts dropped, and the creator got exactly the untampered cell: no mark survives.
        if circuit.open_backward(&mut c.clone()).is_ok() {
            assert_eq!(c, twin, "bit {bit} passed changed");
            assert!(bit / 8 >= SLOT_LEN && bit / 8 < SLOTS_LEN, "bit {bit}");
        }
    }
}

#[test]
fn property_5_a_replayed_cell_is_dropped_and_an_old_one_too() {
    let (mut circuit, mut relays, _) = built(3, 12);
    let mut first = cell(3);
    circuit.seal_forward(&mut first).unwrap();
    let mut c = first.clone();
    relays[0].open_forward(&mut c).unwrap();
    let mut again = first.clone();
    assert_eq!(
        relays[0].open_forward(&mut again).unwrap_err(),
        OnionError::Replay(ReplayError::Duplicate)
    );
    for n in 0..100 {
        forward(&mut circuit, &mut relays, &cell(n));
    }
    let mut late = first.clone();
    assert_eq!(
        relays[0].open_forward(&mut late).unwrap_err(),
        OnionError::Replay(ReplayError::TooOld)
    );
    // Backward: the creator takes the exit's cell once.
    let mut c = cell(4);
    for r in relays.iter_mut().rev() {
        r.seal_backward(&mut c).unwrap();
    }
    let copy = c.clone();
    circuit.open_backward(&mut c).unwrap();
    let mut copy = copy;
    assert_eq!(
        circuit.open_backward(&mut copy).unwrap_err(),
        OnionError::Replay(ReplayError::Duplicate)
    );
}

#[test]
fn cells_of_one_circuit_may_arrive_out_of_order() {
    let (mut circuit, mut relays, _) = built(2, 13);
    let mut cells: Vec<Vec<u8>> = (0..10)
        .map(|n| {
            let mut c = cell(n);
            circuit.seal_forward(&mut c).unwrap();
            c
        })
        .collect();
    cells.reverse();
    for c in cells.iter_mut() {
        for r in relays.iter_mut() {
            r.open_forward(c).unwrap();
        }
    }
}

#[test]
fn onion_key_records_verify_and_refuse_tampering() {
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    let id = Identity::generate(&mut rng);
    let other = Identity::generate(&mut rng);
    let key = OnionKeyPair::generate(3, &mut rng);
    let record = OnionKeyRecord {
        node: id.node_id(),
        seq: 3,
        lifetime_s: 3600,
        flags: ONION_KEY_RELAY,
        key: key.public(),
    };
    let bytes = record.sign(&id).unwrap();
    assert_eq!(
        OnionKeyRecord::parse_and_verify(&bytes, &id.public()),
        Ok(record)
    );
    assert_eq!(OnionKeyRecord::unverified_order(&bytes), (id.node_id(), 3));
    assert_eq!(record.sign(&other).unwrap_err(), OnionError::WrongNode);
    assert_eq!(
        OnionKeyRecord::parse_and_verify(&bytes, &other.public()).unwrap_err(),
        OnionError::WrongNode
    );
    for byte in 16..ONION_KEY_RECORD_LEN {
        let mut b = bytes;
        b[byte] ^= 1;
        assert!(
            OnionKeyRecord::parse_and_verify(&b, &id.public()).is_err(),
            "byte {byte}"
        );
    }
}

#[test]
fn secrets_stay_out_of_debug() {
    let (circuit, relays, _) = built(3, 15);
    let key = OnionKeyPair::generate(1, &mut ChaCha20Rng::seed_from_u64(1));
    for text in [
        format!("{circuit:?}"),
        format!("{:?}", relays[0]),
        format!("{key:?}"),
    ] {
        assert!(text.len() < 40, "{text}");
    }
}
