//! Checks every `vector overlay_*` line of docs/protocol.md §5.6 against the code.

use std::collections::BTreeMap;

use super::address::tests::test_key;
use super::build::{build_echo6, build_udp6, Echo, EchoKind};
use super::*;
use crate::crypto::node_id;

const PROTOCOL_MD: &str = include_str!("../../docs/protocol.md");

fn documented() -> BTreeMap<&'static str, &'static str> {
    PROTOCOL_MD
        .lines()
        .filter_map(|l| l.strip_prefix("vector overlay_"))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

fn computed() -> BTreeMap<&'static str, String> {
    let (a, b) = (test_key(1), test_key(2));
    let p = mesh_prefix(b"veilmesh");
    let pool = Ipv4Pool::default();
    let small: Ipv4Pool = "192.168.7.0/29".parse().unwrap();
    let (s, d) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
    let mut buf = [0u8; 64];
    let echo = Echo {
        kind: EchoKind::Request,
        ident: 0x1234,
        seq: 1,
    };
    build_echo6(&mut buf, &s, &d, echo, b"hi").unwrap();
    let echo_sum = hex::encode(&buf[42..44]);
    build_udp6(&mut buf, &s, &d, (1000, 2000), b"abc").unwrap();
    let udp_sum = hex::encode(&buf[46..48]);
    [
        ("key_a_seed", hex::encode([1u8; 32])),
        ("key_a_public", hex::encode(a)),
        ("key_a_node_id", hex::encode(node_id(&a).0)),
        ("key_b_seed", hex::encode([2u8; 32])),
        ("key_b_public", hex::encode(b)),
        ("key_b_node_id", hex::encode(node_id(&b).0)),
        ("prefix_veilmesh", p.to_string()),
        ("prefix_empty_name", mesh_prefix(b"").to_string()),
        ("ipv6_a_veilmesh", ipv6_for(&p, &node_id(&a)).to_string()),
        ("ipv6_b_veilmesh", ipv6_for(&p, &node_id(&b)).to_string()),
        ("ipv4_a_k0_default_pool", pool.candidate(&a, 0).to_string()),
        ("ipv4_a_k1_default_pool", pool.candidate(&a, 1).to_string()),
        (
            "ipv4_a_k254_default_pool",
            pool.candidate(&a, 254).to_string(),
        ),
        ("ipv4_b_k0_default_pool", pool.candidate(&b, 0).to_string()),
        (
            "ipv4_a_k0_192_168_7_0_29",
            small.candidate(&a, 0).to_string(),
        ),
        ("echo6_checksum", echo_sum),
        ("udp6_checksum", udp_sum),
    ]
    .into_iter()
    .collect()
}

#[test]
fn protocol_md_vectors_match_the_code() {
    let doc = documented();
    let code = computed();
    assert_eq!(doc.len(), code.len(), "documented: {doc:?}");
    for (name, want) in &code {
        assert_eq!(
            doc.get(name).copied(),
            Some(want.as_str()),
            "vector overlay_{name}"
        );
    }
}
