//! Tests of the IPv4 claim table: verification, ranking and convergence of the conflict rule.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::*;
use crate::crypto::hash_labeled;

fn key(i: u32) -> [u8; 32] {
    hash_labeled::<32>(b"claims test key", &[&i.to_be_bytes()])
}

fn pool(s: &str) -> Ipv4Pool {
    s.parse().unwrap()
}

/// Two keys whose index-0 candidates collide in `p`.
fn colliding_pair(p: &Ipv4Pool) -> ([u8; 32], [u8; 32]) {
    let mut seen = BTreeMap::new();
    for i in 0..100_000u32 {
        let k = key(i);
        if let Some(other) = seen.insert(p.candidate(&k, 0), k) {
            return (other, k);
        }
    }
    panic!("no collision found");
}

/// The assignment the rule must settle on: lower (index, node id) takes an address first.
fn reference(p: &Ipv4Pool, keys: &[[u8; 32]]) -> BTreeMap<NodeId, Option<u8>> {
    let mut ids: Vec<_> = keys.iter().map(|k| (node_id(k), *k)).collect();
    ids.sort();
    let mut out: BTreeMap<NodeId, Option<u8>> = ids.iter().map(|(id, _)| (*id, None)).collect();
    let mut held = BTreeSet::new();
    for k in 0..=MAX_CLAIM_INDEX {
        for (id, key) in &ids {
            if out[id].is_none() && held.insert(p.candidate(key, k)) {
                out.insert(*id, Some(k));
            }
        }
    }
    out
}

struct SimNode {
    key: [u8; 32],
    index: Option<u8>,
    table: Ipv4Claims,
}

/// Gossips claims over FIFO links between every pair in a seeded random interleaving
/// until nothing is in flight; returns each node's final index.
fn converge(p: &Ipv4Pool, keys: &[[u8; 32]], seed: u64) -> BTreeMap<NodeId, Option<u8>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let n = keys.len();
    let mut nodes: Vec<SimNode> = keys
        .iter()
        .map(|k| SimNode {
            key: *k,
            index: Some(0),
            table: Ipv4Claims::new(*p),
        })
        .collect();
    let mut links: Vec<VecDeque<Ipv4Claim>> = vec![VecDeque::new(); n * n];
    let announce = |nodes: &mut [SimNode], links: &mut [VecDeque<Ipv4Claim>], i: usize| {
        let Some(idx) = nodes[i].index else { return };
        let c = Ipv4Claim::derive(p, &nodes[i].key, idx).unwrap();
        assert!(matches!(
            nodes[i].table.observe_claim(c),
            ClaimOutcome::Wins { .. } | ClaimOutcome::Loses { .. }
        ));
        for j in (0..n).filter(|&j| j != i) {
            links[i * n + j].push_back(c);
        }
    };
    for i in 0..n {
        announce(&mut nodes, &mut links, i);
    }
    for _ in 0..1_000_000 {
        let busy: Vec<usize> = (0..n * n).filter(|&l| !links[l].is_empty()).collect();
        if busy.is_empty() {
            return nodes.iter().map(|s| (node_id(&s.key), s.index)).collect();
        }
        let l = busy[rng.next_u32() as usize % busy.len()];
        let j = l % n;
        let c = links[l].pop_front().unwrap();
        nodes[j].table.observe_claim(c);
        let Some(cur) = nodes[j].index else { continue };
        let next = nodes[j].table.my_next_index(&nodes[j].key, cur);
        assert!(next.is_none_or(|k| k >= cur), "index went down");
        if next != Some(cur) {
            nodes[j].index = next;
            if next.is_none() {
                let me = node_id(&nodes[j].key);
                nodes[j].table.forget(&me);
            }
            announce(&mut nodes, &mut links, j);
        }
    }
    panic!("did not settle");
}

fn assert_distinct(p: &Ipv4Pool, keys: &[[u8; 32]], got: &BTreeMap<NodeId, Option<u8>>) {
    let addrs: Vec<_> = keys
        .iter()
        .filter_map(|k| got[&node_id(k)].map(|i| p.candidate(k, i)))
        .collect();
    let set: BTreeSet<_> = addrs.iter().collect();
    assert_eq!(set.len(), addrs.len(), "two nodes share an address");
}

#[test]
fn claim_must_follow_from_key_and_index() {
    let p = Ipv4Pool::default();
    let k = key(1);
    let good = Ipv4Claim::derive(&p, &k, 3).unwrap();
    assert_eq!(good.verify(&p), Ok(()));
    let mut t = Ipv4Claims::new(p);
    let wrong_index = Ipv4Claim { index: 4, ..good };
    assert!(matches!(
        t.observe_claim(wrong_index),
        ClaimOutcome::Rejected(ClaimError::AddressMismatch { expected, .. })
            if expected == p.candidate(&k, 4)
    ));
    let wrong_node = Ipv4Claim {
        node: node_id(&key(2)),
        ..good
    };
    assert_eq!(
        t.observe_claim(wrong_node),
        ClaimOutcome::Rejected(ClaimError::NodeIdMismatch)
    );
    let too_big = Ipv4Claim { index: 255, ..good };
    assert_eq!(
        t.observe_claim(too_big),
        ClaimOutcome::Rejected(ClaimError::IndexOutOfRange(255))
    );
    assert_eq!(
        Ipv4Claim::derive(&p, &k, 255),
        Err(ClaimError::IndexOutOfRange(255))
    );
    assert_eq!(t.counters().rejected, 3);
    assert!(t.is_empty());
    assert_eq!(
        t.observe_claim(good),
        ClaimOutcome::Wins { displaced: None }
    );
    assert_eq!(t.holder(&good.addr).map(|c| c.node), Some(good.node));
}

#[test]
fn lower_index_then_lower_node_id_wins() {
    let p = Ipv4Pool::default();
    let (a, b) = colliding_pair(&p);
    let (ca, cb) = (
        Ipv4Claim::derive(&p, &a, 0).unwrap(),
        Ipv4Claim::derive(&p, &b, 0).unwrap(),
    );
    let (lo, hi) = if ca.node < cb.node {
        (ca, cb)
    } else {
        (cb, ca)
    };
    let mut t = Ipv4Claims::new(p);
    assert_eq!(t.observe_claim(hi), ClaimOutcome::Wins { displaced: None });
    assert_eq!(
        t.observe_claim(lo),
        ClaimOutcome::Wins {
            displaced: Some(hi.node)
        }
    );
    assert_eq!(t.holder(&lo.addr).map(|c| c.node), Some(lo.node));
    let mut u = Ipv4Claims::new(p);
    u.observe_claim(lo);
    assert_eq!(u.observe_claim(hi), ClaimOutcome::Loses { winner: lo.node });
    // The loser moves on; the winner stays.
    assert_eq!(t.my_next_index(&lo.ed25519_public, 0), Some(0));
    let hi_next = t.my_next_index(&hi.ed25519_public, 0).unwrap();
    assert!(hi_next >= 1);
    assert_ne!(p.candidate(&hi.ed25519_public, hi_next), lo.addr);
}

#[test]
fn two_colliding_nodes_converge_in_any_order() {
    let p = Ipv4Pool::default();
    let (a, b) = colliding_pair(&p);
    let want = reference(&p, &[a, b]);
    let lo = node_id(&a).min(node_id(&b));
    assert_eq!(want[&lo], Some(0));
    for seed in 0..8 {
        let got = converge(&p, &[a, b], seed);
        assert_eq!(got, want, "seed {seed}");
        assert_distinct(&p, &[a, b], &got);
    }
}

#[test]
fn several_colliding_nodes_converge_to_one_assignment() {
    let p = pool("192.168.7.0/28");
    let keys: Vec<_> = (0..11).map(key).collect();
    let want = reference(&p, &keys);
    assert!(
        want.values().any(|i| i.is_some_and(|i| i > 0)),
        "no collision tested"
    );
    for seed in 0..6 {
        let got = converge(&p, &keys, seed);
        assert_eq!(got, want, "seed {seed}");
        assert_distinct(&p, &keys, &got);
    }
}

#[test]
fn full_pool_leaves_the_last_node_without_address() {
    let p = pool("192.168.7.4/30");
    let keys: Vec<_> = (20..23).map(key).collect();
    let want = reference(&p, &keys);
    assert_eq!(want.values().filter(|i| i.is_none()).count(), 1);
    assert_eq!(converge(&p, &keys, 1), want);
}

#[test]
fn table_is_bounded_and_forget_frees_address() {
    let p = Ipv4Pool::default();
    let mut t = Ipv4Claims::with_capacity(p, 2);
    let c: Vec<_> = (0..3)
        .map(|i| Ipv4Claim::derive(&p, &key(i), 0).unwrap())
        .collect();
    assert!(matches!(t.observe_claim(c[0]), ClaimOutcome::Wins { .. }));
    assert!(matches!(t.observe_claim(c[1]), ClaimOutcome::Wins { .. }));
    assert_eq!(t.observe_claim(c[2]), ClaimOutcome::TableFull);
    assert_eq!(t.counters().full_drops, 1);
    // A known node may still update its claim when the table is full.
    let moved = Ipv4Claim::derive(&p, &key(1), 5).unwrap();
    assert!(matches!(t.observe_claim(moved), ClaimOutcome::Wins { .. }));
    assert_eq!(t.holder(&c[1].addr), None);
    assert_eq!(t.claim_of(&c[1].node).map(|x| x.index), Some(5));
    assert_eq!(t.forget(&c[0].node), Some(c[0]));
    assert_eq!(t.holder(&c[0].addr), None);
    assert_eq!(t.len(), 1);
}

proptest! {
    #[test]
    fn arbitrary_claims_never_panic(
        entries in proptest::collection::vec((any::<[u8; 32]>(), any::<[u8; 16]>(), any::<u8>(), any::<u32>()), 0..24),
        prefix_len in 8u8..=30,
    ) {
        let p = Ipv4Pool::new(Ipv4Addr::new(10, 0, 0, 0), prefix_len).unwrap();
        let mut t = Ipv4Claims::with_capacity(p, 8);
        for (k, n, idx, a) in entries {
            let _ = t.observe_claim(Ipv4Claim { node: NodeId(n), ed25519_public: k, index: idx, addr: Ipv4Addr::from(a) });
            if let Ok(c) = Ipv4Claim::derive(&p, &k, idx.min(MAX_CLAIM_INDEX)) {
                let _ = t.observe_claim(c);
            }
            let next = t.my_next_index(&k, idx);
            prop_assert!(next.is_none_or(|x| x >= idx && x <= MAX_CLAIM_INDEX));
            prop_assert!(t.len() <= 8);
        }
    }
}
