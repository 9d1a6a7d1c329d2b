//! Tests of the address book.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::crypto::{hash_labeled, node_id};
use crate::overlay::address::{ipv6_for, mesh_prefix};
use crate::overlay::build::build_udp6;
use crate::overlay::classify::classify;

fn key(i: u32) -> [u8; 32] {
    hash_labeled::<32>(b"book test key", &[&i.to_be_bytes()])
}

fn book(cap: usize) -> AddressBook {
    AddressBook::with_capacity(mesh_prefix(b"veilmesh"), Some(Ipv4Pool::default()), cap)
}

#[test]
fn learned_nodes_are_found_by_ipv6_and_ipv4() {
    let mut b = book(16);
    let pool = Ipv4Pool::default();
    let k = key(1);
    let id = node_id(&k);
    let claim = Ipv4Claim::derive(&pool, &k, 0).unwrap();
    let got = b.learn(id, Some(claim));
    assert_eq!(got.ipv6, Learned6::New);
    assert_eq!(got.ipv4, Some(ClaimOutcome::Wins { displaced: None }));
    assert_eq!(b.learn(id, Some(claim)).ipv6, Learned6::Known);
    let v6 = ipv6_for(b.prefix(), &id);
    assert_eq!(b.lookup(&IpAddr::V6(v6)), Some(id));
    assert_eq!(b.lookup(&IpAddr::V4(claim.addr)), Some(id));
    assert_eq!(b.lookup_v6(&ipv6_for(&mesh_prefix(b"x"), &id)), None);
    assert_eq!(b.lookup_v4(&Ipv4Addr::new(10, 77, 0, 1)), None);
    let mut buf = [0u8; 64];
    let n = build_udp6(&mut buf, &v6, &v6, (1, 2), b"").unwrap();
    let (class, parsed) = classify(&buf[..n], b.prefix(), b.claims().map(|c| c.pool()));
    assert_eq!(
        parsed,
        crate::overlay::IpPacket::parse(&buf[..n]).ok(),
        "the checked packet comes back"
    );
    assert_eq!(b.lookup_class(&class), Some(id));
    assert!(b.forget(&id));
    assert_eq!(b.lookup(&IpAddr::V6(v6)), None);
    assert_eq!(b.lookup(&IpAddr::V4(claim.addr)), None);
    assert!(!b.forget(&id));
}

#[test]
fn iid_collision_keeps_the_first_node() {
    let mut b = book(16);
    let first = NodeId([7; 16]);
    let mut second = first;
    second.0[15] = 8; // same first 80 bits
    assert_eq!(b.learn(first, None).ipv6, Learned6::New);
    assert_eq!(
        b.learn(second, None).ipv6,
        Learned6::IidTaken { holder: first }
    );
    assert_eq!(b.lookup_iid(&iid_for(&second)), Some(first));
    assert_eq!(b.counters().iid_conflicts, 1);
    assert!(!b.forget(&second));
    assert_eq!(b.lookup_iid(&iid_for(&first)), Some(first));
}

#[test]
fn full_book_refuses_new_nodes_and_counts() {
    let mut b = book(2);
    let pool = Ipv4Pool::default();
    for i in 0..2 {
        assert_eq!(b.learn(node_id(&key(i)), None).ipv6, Learned6::New);
    }
    let k = key(9);
    let got = b.learn(node_id(&k), Some(Ipv4Claim::derive(&pool, &k, 0).unwrap()));
    assert_eq!(
        got,
        Learned {
            ipv6: Learned6::TableFull,
            ipv4: None
        }
    );
    assert_eq!(b.counters().full_drops, 1);
    assert_eq!(b.len(), 2);
    assert!(b.forget(&node_id(&key(0))));
    assert_eq!(b.learn(node_id(&k), None).ipv6, Learned6::New);
}

#[test]
fn claim_for_another_node_is_rejected() {
    let mut b = book(4);
    let claim = Ipv4Claim::derive(&Ipv4Pool::default(), &key(2), 0).unwrap();
    let got = b.learn(node_id(&key(1)), Some(claim));
    assert_eq!(
        got.ipv4,
        Some(ClaimOutcome::Rejected(ClaimError::WrongNode))
    );
    assert_eq!(b.counters().wrong_node_claims, 1);
    assert_eq!(b.lookup_v4(&claim.addr), None);
}

#[test]
fn ipv4_lookup_follows_the_conflict_rule() {
    let pool: Ipv4Pool = "192.168.7.4/30".parse().unwrap();
    // Two keys whose index-0 candidates collide in a two-host pool.
    let (ka, kb) = (0..64)
        .map(key)
        .find_map(|a| {
            let b = (100..164)
                .map(key)
                .find(|b| pool.candidate(&a, 0) == pool.candidate(b, 0))?;
            Some((a, b))
        })
        .unwrap();
    let (ida, idb) = (node_id(&ka), node_id(&kb));
    let (lo, hi) = if ida < idb {
        ((ka, ida), (kb, idb))
    } else {
        ((kb, idb), (ka, ida))
    };
    let mut b = AddressBook::new(mesh_prefix(b"m"), Some(pool));
    let addr = pool.candidate(&ka, 0);
    b.learn(hi.1, Some(Ipv4Claim::derive(&pool, &hi.0, 0).unwrap()));
    assert_eq!(b.lookup_v4(&addr), Some(hi.1));
    let got = b.learn(lo.1, Some(Ipv4Claim::derive(&pool, &lo.0, 0).unwrap()));
    assert_eq!(
        got.ipv4,
        Some(ClaimOutcome::Wins {
            displaced: Some(hi.1)
        })
    );
    assert_eq!(b.lookup_v4(&addr), Some(lo.1));
    // The loser moves to its next free candidate and is found there.
    let t = b.claims().unwrap();
    let next = t.my_next_index(&hi.0, 0).unwrap();
    let moved = Ipv4Claim::derive(&pool, &hi.0, next).unwrap();
    assert_ne!(moved.addr, addr);
    b.learn(hi.1, Some(moved));
    assert_eq!(b.lookup_v4(&moved.addr), Some(hi.1));
    assert_eq!(b.lookup_v4(&addr), Some(lo.1));
}

#[test]
fn book_without_pool_ignores_ipv4() {
    let mut b = AddressBook::new(mesh_prefix(b"m"), None);
    let k = key(3);
    let claim = Ipv4Claim::derive(&Ipv4Pool::default(), &k, 0).unwrap();
    let got = b.learn(node_id(&k), Some(claim));
    assert_eq!(got.ipv4, None);
    assert_eq!(b.lookup_v4(&claim.addr), None);
    assert!(b.claims().is_none());
}

proptest! {
    #[test]
    fn book_stays_bounded_and_consistent(ops in proptest::collection::vec((0u32..40, any::<bool>(), 0u8..4), 0..200)) {
        let pool: Ipv4Pool = "10.1.0.0/29".parse().unwrap();
        let mut b = AddressBook::with_capacity(mesh_prefix(b"p"), Some(pool), 8);
        let mut model: BTreeMap<NodeId, ()> = BTreeMap::new();
        for (i, add, idx) in ops {
            let k = key(i);
            let id = node_id(&k);
            if add {
                let got = b.learn(id, Some(Ipv4Claim::derive(&pool, &k, idx).unwrap()));
                if matches!(got.ipv6, Learned6::New) { model.insert(id, ()); }
            } else {
                prop_assert_eq!(b.forget(&id), model.remove(&id).is_some());
            }
            prop_assert!(b.len() <= 8 && b.len() == model.len());
            prop_assert!(b.claims().unwrap().len() <= 8);
            for id in model.keys() {
                prop_assert_eq!(b.lookup_iid(&iid_for(id)), Some(*id));
            }
        }
    }
}
