//! Tests of the ICMP echo builders, Time Exceeded builders and the answer parser.

use proptest::prelude::*;

use super::*;
use crate::overlay::build::{build_udp6, read_echo6};
use crate::overlay::packet::{Ipv4View, Ipv6View};

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn a4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn echo_request6_has_the_hop_limit_and_a_valid_checksum() {
    let mut buf = [0u8; 200];
    let (s, d) = (a6("fd00::1"), a6("fd00::2"));
    let n = build_echo_request6(&mut buf, s, d, 3, 0x1234, 7, 56).unwrap();
    assert_eq!(n, 40 + 8 + 56);
    let v = Ipv6View::parse(&buf[..n]).unwrap();
    assert_eq!(v.hop_limit(), 3);
    let (echo, payload) = read_echo6(&v).unwrap();
    assert_eq!((echo.ident, echo.seq), (0x1234, 7));
    assert_eq!(payload[..4], [0, 1, 2, 3]);
    // A request is not an answer.
    assert_eq!(parse_icmp_answer(&buf[..n]), None);
    assert_eq!(build_echo_request6(&mut buf, s, d, 3, 1, 1, 200), None);
}

#[test]
fn echo_request4_has_valid_header_and_icmp_checksums() {
    let mut buf = [0u8; 100];
    let (s, d) = (a4("10.77.0.1"), a4("10.77.0.2"));
    let n = build_echo_request4(&mut buf, s, d, 2, 0xbeef, 9, 10).unwrap();
    assert_eq!(n, 20 + 8 + 10);
    let v = Ipv4View::parse(&buf[..n]).unwrap();
    assert_eq!((v.ttl(), v.protocol(), v.src(), v.dst()), (2, 1, s, d));
    assert_eq!(internet_checksum(0, v.payload()), 0);
    assert_eq!(v.payload()[..8], [8, 0, buf[22], buf[23], 0xbe, 0xef, 0, 9]);
    assert_eq!(build_echo_request4(&mut buf, s, d, 2, 1, 1, 100), None);
}

#[test]
fn echo_reply6_is_read_as_a_reply() {
    let mut buf = [0u8; 100];
    let e = Echo {
        kind: EchoKind::Reply,
        ident: 5,
        seq: 6,
    };
    let (s, d) = (a6("fd00::2"), a6("fd00::1"));
    let n = crate::overlay::build::build_echo6(&mut buf, &s, &d, e, b"xy").unwrap();
    let a = parse_icmp_answer(&buf[..n]).unwrap();
    assert_eq!(
        (a.from, a.kind, a.ident, a.seq),
        (IpAddr::V6(s), AnswerKind::EchoReply, 5, 6)
    );
    buf[n - 1] ^= 1;
    assert_eq!(parse_icmp_answer(&buf[..n]), None, "bad checksum");
}

#[test]
fn echo_reply4_is_read_as_a_reply() {
    let mut buf = [0u8; 100];
    let (s, d) = (a4("10.77.0.2"), a4("10.77.0.1"));
    let n = build_echo_request4(&mut buf, s, d, 64, 11, 12, 4).unwrap();
    // Turn the request into a reply: type 0, checksum adjusted by the type difference.
    buf[20] = ICMPV4_ECHO_REPLY;
    buf[22] = 0;
    buf[23] = 0;
    let sum = internet_checksum(0, &buf[20..n]);
    buf[22..24].copy_from_slice(&sum.to_be_bytes());
    let a = parse_icmp_answer(&buf[..n]).unwrap();
    assert_eq!(
        (a.from, a.kind, a.ident, a.seq),
        (IpAddr::V4(s), AnswerKind::EchoReply, 11, 12)
    );
}

#[test]
fn time_exceeded6_quotes_the_request_and_parses_back() {
    let mut req = [0u8; 1500];
    let (me, far, relay) = (a6("fd00::1"), a6("fd00::3"), a6("fd00::2"));
    let n = build_echo_request6(&mut req, me, far, 1, 77, 3, 1400).unwrap();
    let mut buf = [0u8; 1500];
    let m = build_time_exceeded6(&mut buf, relay, me, &req[..n]).unwrap();
    // RFC 4443: the error is at most 1280 bytes; the request is cut to fit.
    assert_eq!(m, ICMPV6_ERROR_MAX);
    assert_eq!(&buf[48..m], &req[..m - 48]);
    let v = Ipv6View::parse(&buf[..m]).unwrap();
    assert_eq!((v.src(), v.dst(), v.hop_limit()), (relay, me, 64));
    assert_eq!(v.payload()[..2], [ICMPV6_TIME_EXCEEDED, 0]);
    let a = parse_icmp_answer(&buf[..m]).unwrap();
    assert_eq!(
        (a.from, a.kind, a.ident, a.seq, a.code),
        (IpAddr::V6(relay), AnswerKind::TimeExceeded, 77, 3, 0)
    );
    assert!(must_not_answer(&buf[..m]), "an error is never answered");
    assert!(!must_not_answer(&req[..n]));
    // A small buffer quotes less; one too small for the headers gets nothing.
    let mut small = [0u8; 100];
    assert_eq!(
        build_time_exceeded6(&mut small, relay, me, &req[..n]),
        Some(100)
    );
    assert_eq!(parse_icmp_answer(&small).unwrap().seq, 3);
    assert_eq!(
        build_time_exceeded6(&mut small[..47], relay, me, &req[..n]),
        None
    );
}

#[test]
fn time_exceeded4_quotes_header_and_more() {
    let mut req = [0u8; 1000];
    let (me, far, relay) = (a4("10.77.0.1"), a4("10.77.0.3"), a4("10.77.0.2"));
    let n = build_echo_request4(&mut req, me, far, 1, 21, 22, 900).unwrap();
    let mut buf = [0u8; 1500];
    let m = build_time_exceeded4(&mut buf, relay, me, &req[..n]).unwrap();
    assert_eq!(m, ICMPV4_ERROR_MAX);
    let v = Ipv4View::parse(&buf[..m]).unwrap();
    assert_eq!((v.src(), v.dst(), v.protocol()), (relay, me, PROTO_ICMP));
    assert_eq!(&v.payload()[8..], &req[..m - 28]);
    let a = parse_icmp_answer(&buf[..m]).unwrap();
    assert_eq!(
        (a.from, a.kind, a.ident, a.seq),
        (IpAddr::V4(relay), AnswerKind::TimeExceeded, 21, 22)
    );
    assert!(must_not_answer(&buf[..m]));
    assert!(!must_not_answer(&req[..n]));
    // Header + 8 bytes must fit.
    let mut small = [0u8; 20 + 8 + 27];
    assert_eq!(build_time_exceeded4(&mut small, relay, me, &req[..n]), None);
}

#[test]
fn errors_quoting_something_else_than_an_echo_request_are_not_answers() {
    let mut udp = [0u8; 100];
    let (me, far) = (a6("fd00::1"), a6("fd00::3"));
    let n = build_udp6(&mut udp, &me, &far, (1, 2), b"abc").unwrap();
    assert!(!must_not_answer(&udp[..n]));
    let mut buf = [0u8; 200];
    let m = build_time_exceeded6(&mut buf, a6("fd00::2"), me, &udp[..n]).unwrap();
    assert_eq!(parse_icmp_answer(&buf[..m]), None);
}

#[test]
fn non_first_ipv4_fragments_are_not_answered() {
    let mut req = [0u8; 100];
    let n = build_echo_request4(&mut req, a4("10.0.0.1"), a4("10.0.0.2"), 1, 1, 1, 8).unwrap();
    req[6] = 0x00;
    req[7] = 0x10; // fragment offset 16 (x8 bytes)
    req[10] = 0;
    req[11] = 0;
    let sum = internet_checksum(0, &req[..20]);
    req[10..12].copy_from_slice(&sum.to_be_bytes());
    assert!(must_not_answer(&req[..n]));
    assert!(must_not_answer(&[0x60]), "unreadable");
}

proptest! {
    /// Any bytes: the parser and the guard never panic; an answer's source is the packet's.
    #[test]
    fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let _ = must_not_answer(&bytes);
        if let Some(a) = parse_icmp_answer(&bytes) {
            prop_assert_eq!(Some(a.from), IpPacket::parse(&bytes).ok().map(|p| p.src()));
        }
    }

    /// Time Exceeded for any echo request, cut anywhere by the buffer size, parses back to
    /// that request's ident and seq (or is not built at all).
    #[test]
    fn time_exceeded_round_trips(
        ident in any::<u16>(),
        seq in any::<u16>(),
        len in 0usize..1400,
        room in 0usize..1500,
        v4 in any::<bool>(),
    ) {
        let mut req = [0u8; 1500];
        let mut out = [0u8; 1500];
        let built = if v4 {
            let n = build_echo_request4(&mut req, a4("10.0.0.1"), a4("10.0.0.3"), 1, ident, seq, len).unwrap();
            build_time_exceeded4(&mut out[..room], a4("10.0.0.2"), a4("10.0.0.1"), &req[..n])
        } else {
            let n = build_echo_request6(&mut req, a6("fd00::1"), a6("fd00::3"), 1, ident, seq, len).unwrap();
            build_time_exceeded6(&mut out[..room], a6("fd00::2"), a6("fd00::1"), &req[..n])
        };
        let need = if v4 { 56 } else { 48 };
        match built {
            // An IPv6 error quoting less than the request's headers is not an answer.
            Some(m) if v4 || m >= 48 + 48 => {
                let a = parse_icmp_answer(&out[..m]).unwrap();
                prop_assert_eq!((a.kind, a.ident, a.seq), (AnswerKind::TimeExceeded, ident, seq));
            }
            Some(m) => prop_assert_eq!(parse_icmp_answer(&out[..m]), None),
            None => prop_assert!(room < need),
        }
    }

    /// Mangled answers never panic the parser.
    #[test]
    fn mangled_answers_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let mut req = [0u8; 200];
        let n = build_echo_request6(&mut req, a6("fd00::1"), a6("fd00::3"), 1, 1, 2, 30).unwrap();
        let mut out = [0u8; 300];
        let m = build_time_exceeded6(&mut out, a6("fd00::2"), a6("fd00::1"), &req[..n]).unwrap();
        for (at, x) in &flips {
            out[at % m] ^= x;
        }
        let _ = parse_icmp_answer(&out[..cut % (m + 1)]);
        let _ = must_not_answer(&out[..cut % (m + 1)]);
    }
}
