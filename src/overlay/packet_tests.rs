//! Tests of the IP header views and the packet builders.

use proptest::prelude::*;

use super::*;
use crate::overlay::build::{
    build_echo6, build_udp4, build_udp6, read_echo6, read_udp6, BuildError, Echo, EchoKind,
    TransportError, DEFAULT_HOP_LIMIT,
};

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn udp6_round_trip_with_known_checksum() {
    let mut buf = [0u8; 128];
    let (s, d) = (a6("fd00::1"), a6("fd00::2"));
    let n = build_udp6(&mut buf, &s, &d, (1000, 2000), b"abc").unwrap();
    assert_eq!(n, 40 + 8 + 3);
    assert_eq!(&buf[46..48], &[0x35, 0xb9]);
    let IpPacket::V6(v) = IpPacket::parse(&buf[..n]).unwrap() else {
        panic!("not v6")
    };
    assert_eq!((v.src(), v.dst()), (s, d));
    assert_eq!(
        (v.next_header(), v.hop_limit()),
        (PROTO_UDP, DEFAULT_HOP_LIMIT)
    );
    assert_eq!(v.payload().len(), 11);
    let u = read_udp6(&v).unwrap();
    assert_eq!(
        (u.src_port, u.dst_port, u.payload),
        (1000, 2000, &b"abc"[..])
    );
    buf[50] ^= 1;
    let v = Ipv6View::parse(&buf[..n]).unwrap();
    assert_eq!(read_udp6(&v), Err(TransportError::Checksum));
    assert_eq!(read_echo6(&v), Err(TransportError::Protocol(PROTO_UDP)));
}

#[test]
fn echo6_round_trip_with_known_checksum() {
    let mut buf = [0u8; 64];
    let (s, d) = (a6("fd00::1"), a6("fd00::2"));
    let echo = Echo {
        kind: EchoKind::Request,
        ident: 0x1234,
        seq: 1,
    };
    let n = build_echo6(&mut buf, &s, &d, echo, b"hi").unwrap();
    assert_eq!(n, 50);
    assert_eq!(&buf[42..44], &[0x0b, 0x18]);
    let v = Ipv6View::parse(&buf[..n]).unwrap();
    assert_eq!(read_echo6(&v), Ok((echo, &b"hi"[..])));
    let reply = Echo {
        kind: EchoKind::Reply,
        ..echo
    };
    let n = build_echo6(&mut buf, &d, &s, reply, b"").unwrap();
    let v = Ipv6View::parse(&buf[..n]).unwrap();
    assert_eq!(read_echo6(&v), Ok((reply, &b""[..])));
}

#[test]
fn udp4_round_trip() {
    let mut buf = [0u8; 64];
    let (s, d) = (Ipv4Addr::new(10, 77, 1, 2), Ipv4Addr::new(10, 77, 3, 4));
    let n = build_udp4(&mut buf, &s, &d, (53, 5353), b"xyz").unwrap();
    assert_eq!(n, 31);
    let IpPacket::V4(v) = IpPacket::parse(&buf[..n]).unwrap() else {
        panic!("not v4")
    };
    assert_eq!(
        (v.src(), v.dst(), v.protocol(), v.ttl()),
        (s, d, PROTO_UDP, 64)
    );
    assert_eq!(v.header_len(), 20);
    assert_eq!(&v.payload()[8..], b"xyz");
    let pseudo = sum16(sum16(0, &s.octets()), &d.octets()) + 17 + 11;
    assert_eq!(internet_checksum(pseudo, v.payload()), 0);
    buf[8] = 1; // ttl changed without fixing the header checksum
    assert_eq!(Ipv4View::parse(&buf[..n]), Err(PacketError::Ipv4Checksum));
}

#[test]
fn builders_refuse_small_buffers_and_huge_payloads() {
    let mut buf = [0u8; 50];
    let (s, d) = (a6("fd00::1"), a6("fd00::2"));
    assert_eq!(
        build_udp6(&mut buf, &s, &d, (1, 2), &[0; 3]),
        Err(BuildError::BufferTooSmall { need: 51, have: 50 })
    );
    let big = vec![0u8; 70_000];
    let mut out = vec![0u8; 71_000];
    assert!(matches!(
        build_udp6(&mut out, &s, &d, (1, 2), &big),
        Err(BuildError::PayloadTooLarge(_))
    ));
    let max = vec![0u8; 65_535 - 20 - 8];
    assert!(build_udp4(
        &mut out,
        &Ipv4Addr::LOCALHOST,
        &Ipv4Addr::LOCALHOST,
        (1, 2),
        &max
    )
    .is_ok());
}

#[test]
fn malformed_headers_are_named() {
    assert_eq!(IpPacket::parse(&[]), Err(PacketError::Empty));
    assert_eq!(IpPacket::parse(&[0x50; 40]), Err(PacketError::Version(5)));
    assert_eq!(
        IpPacket::parse(&[0x45; 10]),
        Err(PacketError::ShortHeader {
            version: 4,
            need: 20,
            have: 10
        })
    );
    assert_eq!(
        IpPacket::parse(&[0x60; 39]),
        Err(PacketError::ShortHeader {
            version: 6,
            need: 40,
            have: 39
        })
    );
    let mut buf = [0u8; 64];
    let n = build_udp4(
        &mut buf,
        &Ipv4Addr::LOCALHOST,
        &Ipv4Addr::LOCALHOST,
        (1, 2),
        b"",
    )
    .unwrap();
    let mut p = buf[..n].to_vec();
    p[0] = 0x44;
    assert_eq!(
        IpPacket::parse(&p),
        Err(PacketError::Ipv4HeaderLength { ihl: 4, have: 28 })
    );
    p[0] = 0x48;
    assert_eq!(
        IpPacket::parse(&p),
        Err(PacketError::Ipv4HeaderLength { ihl: 8, have: 28 })
    );
    assert_eq!(
        IpPacket::parse(&buf[..n + 1]),
        Err(PacketError::Ipv4TotalLength {
            total: 28,
            have: 29
        })
    );
    let n = build_udp6(&mut buf, &a6("fd00::1"), &a6("fd00::2"), (1, 2), b"").unwrap();
    assert_eq!(
        IpPacket::parse(&buf[..n - 1]),
        Err(PacketError::Ipv6PayloadLength {
            payload: 8,
            have: 47
        })
    );
}

#[test]
fn upper_layer_skips_one_hop_by_hop_header() {
    let mut p = [0u8; 56];
    p[0] = 0x60;
    p[5] = 16;
    p[6] = PROTO_HOP_BY_HOP;
    p[40..48].copy_from_slice(&[PROTO_ICMPV6, 0, 5, 2, 0, 0, 1, 0]);
    p[48] = 143;
    let v = Ipv6View::parse(&p).unwrap();
    let (proto, upper) = v.upper_layer().unwrap();
    assert_eq!((proto, upper.len(), upper[0]), (PROTO_ICMPV6, 8, 143));
    p[41] = 7; // extension header longer than the packet
    assert_eq!(Ipv6View::parse(&p).unwrap().upper_layer(), None);
}

#[test]
fn checksum_handles_odd_length_and_carries() {
    assert_eq!(internet_checksum(0, &[0xff, 0xff, 0xff]), !0xff00u16);
    assert_eq!(internet_checksum(0, &[]), 0xffff);
    assert_eq!(sum16(0, &[0x12]), 0x1200);
}

proptest! {
    #[test]
    fn parsing_arbitrary_bytes_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..200), v6 in any::<bool>()) {
        let _ = IpPacket::parse(&bytes);
        // Make the version and length fields plausible so the deeper paths run too.
        if bytes.len() >= 40 && v6 {
            bytes[0] = 0x60 | (bytes[0] & 0x0f);
            let pl = (bytes.len() - 40) as u16;
            bytes[4..6].copy_from_slice(&pl.to_be_bytes());
            let v = Ipv6View::parse(&bytes).unwrap();
            let _ = (v.upper_layer(), read_udp6(&v), read_echo6(&v), v.src(), v.dst());
        } else if bytes.len() >= 20 {
            bytes[0] = 0x40 | (bytes[0] & 0x0f);
            let tl = bytes.len() as u16;
            bytes[2..4].copy_from_slice(&tl.to_be_bytes());
            if let Ok(IpPacket::V4(v)) = IpPacket::parse(&bytes) {
                prop_assert!(v.header_len() >= 20 && v.header_len() <= bytes.len());
            }
        }
    }

    #[test]
    fn built_packets_parse_back(payload in proptest::collection::vec(any::<u8>(), 0..300), ident in any::<u16>(), seq in any::<u16>(), sp in any::<u16>(), dp in any::<u16>()) {
        let mut buf = [0u8; 400];
        let (s, d) = (a6("fd12::1"), a6("fd12::ab"));
        let n = build_udp6(&mut buf, &s, &d, (sp, dp), &payload).unwrap();
        let u = read_udp6(&Ipv6View::parse(&buf[..n]).unwrap()).unwrap();
        prop_assert_eq!((u.src_port, u.dst_port, u.payload), (sp, dp, &payload[..]));
        let echo = Echo { kind: EchoKind::Request, ident, seq };
        let n = build_echo6(&mut buf, &s, &d, echo, &payload).unwrap();
        let got = read_echo6(&Ipv6View::parse(&buf[..n]).unwrap()).unwrap();
        prop_assert_eq!(got, (echo, &payload[..]));
        let n = build_udp4(&mut buf, &Ipv4Addr::new(10, 0, 0, 1), &Ipv4Addr::new(10, 0, 0, 2), (sp, dp), &payload).unwrap();
        prop_assert!(Ipv4View::parse(&buf[..n]).is_ok());
    }
}
