//! Tests of TUN packet classification.

use std::net::Ipv6Addr;

use proptest::prelude::*;

use super::*;
use crate::crypto::node_id;
use crate::overlay::address::{iid_for, ipv6_for, mesh_prefix};
use crate::overlay::build::{build_echo6, build_udp4, build_udp6, Echo, EchoKind};

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn udp6_to(dst: &Ipv6Addr, buf: &mut [u8]) -> usize {
    build_udp6(buf, &a6("fd00::1"), dst, (1, 2), b"x").unwrap()
}

/// An ICMPv6 message of type `ty` (checksum not fixed: classification does not read it).
fn icmp6(ty: u8, dst: &str, buf: &mut [u8]) -> usize {
    let echo = Echo {
        kind: EchoKind::Request,
        ident: 0,
        seq: 0,
    };
    let n = build_echo6(buf, &a6("::"), &a6(dst), echo, &[0; 16]).unwrap();
    buf[40] = ty;
    n
}

fn udp4_to(dst: Ipv4Addr, buf: &mut [u8]) -> usize {
    build_udp4(buf, &Ipv4Addr::new(10, 77, 0, 9), &dst, (1, 2), b"x").unwrap()
}

#[test]
fn overlay_destination_yields_its_iid() {
    let p = mesh_prefix(b"veilmesh");
    let id = node_id(&[7u8; 32]);
    let mut buf = [0u8; 128];
    let n = udp6_to(&ipv6_for(&p, &id), &mut buf);
    assert_eq!(
        classify(&buf[..n], &p, None).0,
        PacketClass::Overlay6 { iid: iid_for(&id) }
    );
    let other = ipv6_for(&mesh_prefix(b"other"), &id);
    let n = udp6_to(&other, &mut buf);
    assert_eq!(
        classify(&buf[..n], &p, None).0,
        PacketClass::Unroutable(Unroutable::OutsidePrefix)
    );
    let n = udp6_to(&Ipv6Addr::LOCALHOST, &mut buf);
    assert_eq!(
        classify(&buf[..n], &p, None).0,
        PacketClass::Unroutable(Unroutable::Reserved)
    );
}

#[test]
fn ipv6_local_chatter_is_noise() {
    let p = mesh_prefix(b"veilmesh");
    let inside = ipv6_for(&p, &node_id(&[1u8; 32])).to_string();
    let mut buf = [0u8; 128];
    let cases = [
        (133, "ff02::2", NoiseKind::RouterSolicitation),
        (135, inside.as_str(), NoiseKind::NeighbourDiscovery),
        (136, "fe80::1", NoiseKind::NeighbourDiscovery),
        (134, "ff02::1", NoiseKind::NeighbourDiscovery),
        (131, "ff02::16", NoiseKind::Mld),
    ];
    for (ty, dst, want) in cases {
        let n = icmp6(ty, dst, &mut buf);
        assert_eq!(
            classify(&buf[..n], &p, None).0,
            PacketClass::Noise(want),
            "type {ty}"
        );
    }
    let n = udp6_to(&a6("ff02::fb"), &mut buf);
    assert_eq!(
        classify(&buf[..n], &p, None).0,
        PacketClass::Noise(NoiseKind::Multicast)
    );
    let n = udp6_to(&a6("fe80::1234"), &mut buf);
    assert_eq!(
        classify(&buf[..n], &p, None).0,
        PacketClass::Noise(NoiseKind::LinkLocal)
    );
    // An echo request to an overlay address is real traffic, not ND.
    let n = icmp6(128, &inside, &mut buf);
    assert!(matches!(
        classify(&buf[..n], &p, None).0,
        PacketClass::Overlay6 { .. }
    ));
}

#[test]
fn mld_report_behind_hop_by_hop_header_is_noise() {
    let p = mesh_prefix(b"veilmesh");
    let mut pkt = [0u8; 68];
    pkt[0] = 0x60;
    pkt[5] = 28;
    pkt[6] = 0; // hop-by-hop
    pkt[24..40].copy_from_slice(&a6("ff02::16").octets());
    pkt[40..48].copy_from_slice(&[58, 0, 5, 2, 0, 0, 1, 0]);
    pkt[48] = 143;
    assert_eq!(
        classify(&pkt, &p, None).0,
        PacketClass::Noise(NoiseKind::Mld)
    );
}

#[test]
fn ipv4_destinations() {
    let p = mesh_prefix(b"veilmesh");
    let pool = Ipv4Pool::default();
    let mut buf = [0u8; 64];
    let mut cls = |dst: Ipv4Addr, pool: Option<&Ipv4Pool>| {
        let n = udp4_to(dst, &mut buf);
        classify(&buf[..n], &p, pool).0
    };
    let member = Ipv4Addr::new(10, 77, 12, 34);
    assert_eq!(cls(member, Some(&pool)), PacketClass::Pool4 { dst: member });
    let noise = |k| PacketClass::Noise(k);
    let unr = |u| PacketClass::Unroutable(u);
    assert_eq!(
        cls(Ipv4Addr::new(10, 77, 255, 255), Some(&pool)),
        noise(NoiseKind::Broadcast)
    );
    assert_eq!(
        cls(Ipv4Addr::BROADCAST, Some(&pool)),
        noise(NoiseKind::Broadcast)
    );
    assert_eq!(
        cls(Ipv4Addr::new(224, 0, 0, 251), Some(&pool)),
        noise(NoiseKind::Multicast)
    );
    assert_eq!(
        cls(Ipv4Addr::new(169, 254, 1, 1), Some(&pool)),
        noise(NoiseKind::LinkLocal)
    );
    assert_eq!(
        cls(Ipv4Addr::new(10, 77, 0, 0), Some(&pool)),
        unr(Unroutable::PoolNetworkAddress)
    );
    assert_eq!(
        cls(Ipv4Addr::new(8, 8, 8, 8), Some(&pool)),
        unr(Unroutable::OutsidePool)
    );
    assert_eq!(
        cls(Ipv4Addr::LOCALHOST, Some(&pool)),
        unr(Unroutable::Reserved)
    );
    assert_eq!(cls(member, None), unr(Unroutable::NoIpv4Pool));
}

#[test]
fn malformed_packets_are_unroutable_with_reason() {
    let p = mesh_prefix(b"veilmesh");
    assert_eq!(
        classify(&[0x70, 0, 0], &p, None),
        (
            PacketClass::Unroutable(Unroutable::Malformed(PacketError::Version(7))),
            None
        )
    );
    assert_eq!(
        Unroutable::Malformed(PacketError::Empty).name(),
        "malformed"
    );
    assert_eq!(NoiseKind::RouterSolicitation.name(), "router_solicitation");
}

proptest! {
    #[test]
    fn classify_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120), v6 in any::<bool>()) {
        let p = mesh_prefix(b"veilmesh");
        let pool = Ipv4Pool::default();
        let mut b = bytes;
        if v6 && b.len() >= 40 {
            b[0] = 0x60;
            let pl = (b.len() - 40) as u16;
            b[4..6].copy_from_slice(&pl.to_be_bytes());
            b[24..30].copy_from_slice(&p.bytes());
        }
        let _ = classify(&b, &p, Some(&pool));
        let _ = classify(&b, &p, None);
    }
}
