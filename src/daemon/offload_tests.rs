use proptest::prelude::*;

use super::*;

const ACK: u8 = 0x10;
const SRC4: [u8; 4] = [10, 77, 0, 1];
const DST4: [u8; 4] = [10, 77, 0, 2];
const SRC6: [u8; 16] = [0xfd, 0x11, 0x22, 0x33, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0xfd, 0x11, 0x22, 0x33, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const SEQ: u32 = 0xffff_f000; // wraps within the super-packet
const ID: u16 = 0xfffe; // wraps too

/// The checker's own checksum: 16-bit words summed one by one, carries folded at the end.
pub(in crate::daemon) fn verify_sum(chunks: &[&[u8]]) -> bool {
    let mut sum: u32 = 0;
    for c in chunks {
        let mut i = 0;
        while i < c.len() {
            let hi = u32::from(c[i]) << 8;
            let lo = c.get(i + 1).map_or(0, |&b| u32::from(b));
            sum += hi | lo;
            i += 2;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

/// Whether the TCP or UDP checksum of a whole packet (no extension headers) verifies.
pub(in crate::daemon) fn l4_checksum_ok(p: &[u8], proto: u8) -> bool {
    let (addrs, l4) = if p[0] >> 4 == 6 {
        (&p[8..40], &p[40..])
    } else {
        let ihl = usize::from(p[0] & 0xf) * 4;
        (&p[12..20], &p[ihl..])
    };
    let len = u32::try_from(l4.len()).unwrap();
    let pseudo = [
        0,
        proto,
        (len >> 8) as u8,
        len as u8,
        0,
        0,
        (len >> 24) as u8,
        (len >> 16) as u8,
    ];
    verify_sum(&[addrs, &pseudo, l4])
}

/// An IPv4 or IPv6 TCP packet with `opts` bytes of TCP options, and the kernel's partial
/// checksum (the pseudo-header sum, not complemented) in the TCP checksum field.
fn tcp_packet(v6: bool, opts: usize, flags: u8, payload: &[u8]) -> Vec<u8> {
    let ip_len = if v6 { 40 } else { 20 };
    let tcp_len = 20 + opts;
    let total = ip_len + tcp_len + payload.len();
    let mut p = vec![0u8; total];
    if v6 {
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
        p[6] = 6;
        p[7] = 64;
        p[8..24].copy_from_slice(&SRC6);
        p[24..40].copy_from_slice(&DST6);
    } else {
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[4..6].copy_from_slice(&ID.to_be_bytes());
        p[6] = 0x40; // DF
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&SRC4);
        p[16..20].copy_from_slice(&DST4);
    }
    let t = ip_len;
    p[t..t + 2].copy_from_slice(&40000u16.to_be_bytes());
    p[t + 2..t + 4].copy_from_slice(&443u16.to_be_bytes());
    p[t + 4..t + 8].copy_from_slice(&SEQ.to_be_bytes());
    p[t + 8..t + 12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    p[t + 12] = ((tcp_len / 4) as u8) << 4;
    p[t + 13] = flags;
    p[t + 14..t + 16].copy_from_slice(&500u16.to_be_bytes());
    for (k, b) in p[t + 20..t + tcp_len].iter_mut().enumerate() {
        *b = if k % 4 == 0 { 1 } else { 8 }; // NOP and timestamp-ish filler
    }
    p[t + tcp_len..].copy_from_slice(payload);
    let partial = partial_pseudo(&p, v6, 6, (total - ip_len) as u32);
    p[t + 16..t + 18].copy_from_slice(&partial.to_be_bytes());
    p
}

/// The folded, uncomplemented pseudo-header sum the kernel leaves with CHECKSUM_PARTIAL.
fn partial_pseudo(p: &[u8], v6: bool, proto: u8, len: u32) -> u16 {
    let addrs = if v6 { &p[8..40] } else { &p[12..20] };
    let mut sum: u32 = u32::from(proto) + (len >> 16) + (len & 0xffff);
    for w in addrs.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// A read from the TUN: header (host byte order) then `packet`.
fn read_of(
    flags: u8,
    gso_type: u8,
    hdr_len: u16,
    gso_size: u16,
    start: u16,
    off: u16,
    packet: &[u8],
) -> Vec<u8> {
    let mut r = vec![flags, gso_type];
    for v in [hdr_len, gso_size, start, off] {
        r.extend_from_slice(&v.to_ne_bytes());
    }
    r.extend_from_slice(packet);
    r
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Runs `split` and collects what it handed on.
fn run(read: &mut [u8], mtu: usize) -> (Result<Split, Malformed>, Vec<Vec<u8>>) {
    let mut out = vec![0u8; mtu];
    let mut got = Vec::new();
    let r = split(read, &mut out, &mut |p| got.push(p.to_vec()));
    (r, got)
}

/// Checks every segment of a TCP super-packet and that together they carry `data`.
fn check_segments(segs: &[Vec<u8>], v6: bool, opts: usize, mss: usize, data: &[u8], flags: u8) {
    let ip_len = if v6 { 40 } else { 20 };
    let hdr = ip_len + 20 + opts;
    assert_eq!(segs.len(), data.len().div_ceil(mss));
    let mut carried = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let want_data = if last { data.len() - mss * i } else { mss };
        assert_eq!(s.len(), hdr + want_data, "segment {i} length");
        if v6 {
            assert_eq!(u16::from_be_bytes([s[4], s[5]]) as usize, s.len() - 40);
        } else {
            assert_eq!(u16::from_be_bytes([s[2], s[3]]) as usize, s.len());
            assert_eq!(u16::from_be_bytes([s[4], s[5]]), ID.wrapping_add(i as u16));
            assert!(
                verify_sum(&[&s[..20]]),
                "IPv4 header checksum of segment {i}"
            );
        }
        assert!(l4_checksum_ok(s, 6), "TCP checksum of segment {i}");
        let t = ip_len;
        let seq = u32::from_be_bytes(s[t + 4..t + 8].try_into().unwrap());
        assert_eq!(
            seq,
            SEQ.wrapping_add(carried.len() as u32),
            "segment {i} seq"
        );
        let f = s[t + 13];
        assert_eq!(f & ACK, ACK);
        assert_eq!(
            f & TCP_CWR != 0,
            i == 0 && flags & TCP_CWR != 0,
            "CWR on {i}"
        );
        assert_eq!(f & TCP_FIN != 0, last && flags & TCP_FIN != 0, "FIN on {i}");
        assert_eq!(f & TCP_PSH != 0, last && flags & TCP_PSH != 0, "PSH on {i}");
        carried.extend_from_slice(&s[hdr..]);
    }
    assert_eq!(carried, data);
}

#[test]
fn a_tcp4_super_packet_becomes_mss_segments_that_verify() {
    let data = payload(5000);
    let flags = ACK | TCP_CWR | TCP_PSH | TCP_FIN;
    let p = tcp_packet(false, 12, flags, &data);
    // hdr_len as the kernel may set it on the forwarding path: the whole first packet.
    let mut read = read_of(F_NEEDS_CSUM, GSO_TCPV4, 1451, 1399, 20, 16, &p);
    let (r, segs) = run(&mut read, 1451);
    assert_eq!(r, Ok(Split::Segments(4)));
    check_segments(&segs, false, 12, 1399, &data, flags);
    assert_eq!(segs[3].len(), 20 + 32 + 803, "the short last segment");
}

#[test]
fn a_tcp6_super_packet_becomes_mss_segments_that_verify() {
    let data = payload(4001);
    let flags = ACK | TCP_CWR | TCP_PSH;
    let p = tcp_packet(true, 0, flags, &data);
    let mut read = read_of(F_NEEDS_CSUM, GSO_TCPV6 | GSO_ECN, 60, 1391, 40, 16, &p);
    let (r, segs) = run(&mut read, 1451);
    assert_eq!(r, Ok(Split::Segments(3)));
    check_segments(&segs, true, 0, 1391, &data, flags);
}

#[test]
fn segments_are_cut_to_the_mtu_when_gso_size_is_larger() {
    let data = payload(3000);
    let p = tcp_packet(true, 0, ACK, &data);
    let mut read = read_of(F_NEEDS_CSUM, GSO_TCPV6, 60, 1440, 40, 16, &p);
    let (r, segs) = run(&mut read, 1000);
    assert_eq!(r, Ok(Split::Segments(4)));
    assert!(segs.iter().all(|s| s.len() <= 1000));
    check_segments(&segs, true, 0, 1000 - 60, &data, ACK);
}

#[test]
fn a_super_packet_of_one_segment_or_none_is_one_packet() {
    for n in [0, 1, 1400] {
        let data = payload(n);
        let p = tcp_packet(false, 0, ACK | TCP_FIN, &data);
        let mut read = read_of(F_NEEDS_CSUM, GSO_TCPV4, 40, 1400, 20, 16, &p);
        let (r, segs) = run(&mut read, 1451);
        assert_eq!(r, Ok(Split::Segments(1)), "{n} bytes");
        assert_eq!(segs.len(), 1);
        assert!(l4_checksum_ok(&segs[0], 6));
        assert_eq!(segs[0][20 + 13], ACK | TCP_FIN);
        assert_eq!(&segs[0][40..], &data[..]);
    }
}

#[test]
fn needs_csum_on_a_single_packet_is_completed_in_place() {
    // TCP over IPv4 and UDP over IPv6, each with the kernel's partial sum in the field.
    let tcp = tcp_packet(false, 0, ACK, &payload(333));
    assert!(
        !l4_checksum_ok(&tcp, 6),
        "the partial sum must not verify yet"
    );
    let mut read = read_of(F_NEEDS_CSUM, GSO_NONE, 40, 0, 20, 16, &tcp);
    let (r, got) = run(&mut read, 1451);
    assert_eq!(r, Ok(Split::Plain));
    assert!(l4_checksum_ok(&got[0], 6));
    assert_eq!(got[0][..16], tcp[..16]);
    assert_eq!(got[0][40..], tcp[40..]);

    let body = payload(101);
    let mut udp = vec![0u8; 48 + body.len()];
    udp[0] = 0x60;
    udp[4..6].copy_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    udp[6] = 17;
    udp[8..24].copy_from_slice(&SRC6);
    udp[24..40].copy_from_slice(&DST6);
    udp[40..42].copy_from_slice(&5353u16.to_be_bytes());
    udp[42..44].copy_from_slice(&5202u16.to_be_bytes());
    udp[44..46].copy_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    udp[48..].copy_from_slice(&body);
    let partial = partial_pseudo(&udp, true, 17, (8 + body.len()) as u32);
    udp[46..48].copy_from_slice(&partial.to_be_bytes());
    let mut read = read_of(F_NEEDS_CSUM, GSO_NONE, 48, 0, 40, 6, &udp);
    let (r, got) = run(&mut read, 1451);
    assert_eq!(r, Ok(Split::Plain));
    assert!(l4_checksum_ok(&got[0], 17));
    assert_ne!(got[0][46..48], [0, 0], "UDP over IPv6 needs a checksum");
}

#[test]
fn a_plain_packet_passes_untouched() {
    let tcp = tcp_packet(true, 0, ACK, &payload(99));
    let mut read = read_of(0, GSO_NONE, 0, 0, 0, 0, &tcp);
    let (r, got) = run(&mut read, 1451);
    assert_eq!(r, Ok(Split::Plain));
    assert_eq!(got, vec![tcp]);
}

#[test]
fn malformed_reads_are_errors_and_hand_nothing_on() {
    let p4 = tcp_packet(false, 0, ACK, &payload(3000));
    let p6 = tcp_packet(true, 0, ACK, &payload(3000));
    let len4 = p4.len() as u16;
    let mut truncated = p6.clone();
    truncated.truncate(2000);
    let mut udp_in_v4 = p4.clone();
    udp_in_v4[9] = 17;
    let mut short_tcp = p4.clone();
    short_tcp[20 + 12] = 4 << 4;
    let cases: Vec<(&str, Vec<u8>, Malformed)> = vec![
        ("empty", vec![], Malformed::Short),
        ("half a header", vec![0; 7], Malformed::Short),
        (
            "gso_size 0",
            read_of(1, GSO_TCPV4, 40, 0, 20, 16, &p4),
            Malformed::GsoSize,
        ),
        (
            "hdr_len beyond",
            read_of(1, GSO_TCPV4, len4 + 1, 1400, 20, 16, &p4),
            Malformed::HdrLen,
        ),
        (
            "hdr_len beyond, plain",
            read_of(0, GSO_NONE, len4 + 1, 0, 0, 0, &p4),
            Malformed::HdrLen,
        ),
        (
            "csum_start in the IP header",
            read_of(1, GSO_TCPV4, 40, 1400, 16, 16, &p4),
            Malformed::Csum,
        ),
        (
            "csum_start beyond",
            read_of(1, GSO_TCPV6, 60, 1400, 9000, 16, &p6),
            Malformed::Short,
        ),
        (
            "csum_offset not TCP's",
            read_of(1, GSO_TCPV6, 60, 1400, 40, 6, &p6),
            Malformed::Csum,
        ),
        (
            "NEEDS_CSUM start beyond",
            read_of(1, GSO_NONE, 0, 0, len4, 0, &p4),
            Malformed::Csum,
        ),
        (
            "NEEDS_CSUM field beyond",
            read_of(1, GSO_NONE, 0, 0, 20, len4 - 21, &p4),
            Malformed::Csum,
        ),
        (
            "NEEDS_CSUM offset overflow",
            read_of(1, GSO_NONE, 0, 0, u16::MAX, u16::MAX, &p4),
            Malformed::Csum,
        ),
        (
            "UDP GSO",
            read_of(1, 5, 28, 1400, 20, 6, &p4),
            Malformed::GsoType,
        ),
        (
            "UFO",
            read_of(1, 3, 28, 1400, 20, 6, &p4),
            Malformed::GsoType,
        ),
        (
            "TCPV6 on IPv4",
            read_of(1, GSO_TCPV6, 40, 1400, 20, 16, &p4),
            Malformed::GsoType,
        ),
        (
            "TCPV4 on IPv6",
            read_of(1, GSO_TCPV4, 60, 1400, 40, 16, &p6),
            Malformed::GsoType,
        ),
        (
            "TCPV4 not TCP",
            read_of(1, GSO_TCPV4, 40, 1400, 20, 16, &udp_in_v4),
            Malformed::GsoType,
        ),
        (
            "truncated read",
            read_of(1, GSO_TCPV6, 60, 1400, 40, 16, &truncated),
            Malformed::IpLength,
        ),
        (
            "TCP header under 20",
            read_of(1, GSO_TCPV4, 40, 1400, 20, 16, &short_tcp),
            Malformed::Short,
        ),
        (
            "only the IP header",
            read_of(1, GSO_TCPV4, 20, 1400, 20, 16, &p4[..20]),
            Malformed::IpLength,
        ),
    ];
    for (what, mut read, want) in cases {
        let (r, got) = run(&mut read, 1451);
        assert_eq!(r, Err(want), "{what}");
        assert!(got.is_empty(), "{what}: handed on {} packets", got.len());
    }
    let mut read = read_of(1, GSO_TCPV4, 40, 1400, 20, 16, &p4);
    assert_eq!(
        run(&mut read, 40).0,
        Err(Malformed::Mtu),
        "no room for data"
    );
}

proptest! {
    #[test]
    fn any_read_is_handled_without_panic(
        mut read in proptest::collection::vec(any::<u8>(), 0..300),
        gso in prop_oneof![Just(GSO_NONE), Just(GSO_TCPV4), Just(GSO_TCPV6), any::<u8>()],
        mtu in 0usize..200,
    ) {
        if read.len() > 1 {
            read[1] = gso;
        }
        let (r, got) = run(&mut read, mtu);
        if let Ok(Split::Segments(n)) = r {
            prop_assert_eq!(got.len(), n);
            prop_assert!(got.iter().all(|s| s.len() <= mtu));
        }
    }

    #[test]
    fn any_tcp_super_packet_splits_into_verifying_segments(
        v6 in any::<bool>(),
        opts in 0usize..=10,
        n in 0usize..6000,
        mss in 1u16..1500,
    ) {
        let data = payload(n);
        let p = tcp_packet(v6, opts * 4, ACK | TCP_PSH, &data);
        let (gso, l4) = if v6 { (GSO_TCPV6, 40) } else { (GSO_TCPV4, 20) };
        let mut read = read_of(1, gso, 0, mss, l4, 16, &p);
        let (r, segs) = run(&mut read, 1451);
        let mss = usize::from(mss).min(1451 - l4 as usize - 20 - opts * 4);
        prop_assert_eq!(r, Ok(Split::Segments(n.div_ceil(mss).max(1))));
        if n > 0 {
            check_segments(&segs, v6, opts * 4, mss, &data, ACK | TCP_PSH);
        }
    }
}
