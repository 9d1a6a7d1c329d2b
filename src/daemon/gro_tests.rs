use proptest::prelude::*;

use super::*;
use crate::daemon::offload::tests::{l4_checksum_ok, verify_sum};
use crate::daemon::offload::{split, Split};

const SLOT: usize = 1500;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const URG: u8 = 0x20;
const ECE: u8 = 0x40;
const CWR: u8 = 0x80;
const SRC4: [u8; 4] = [10, 77, 0, 1];
const DST4: [u8; 4] = [10, 77, 0, 2];
const SRC6: [u8; 16] = [0xfd, 0x11, 0x22, 0x33, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0xfd, 0x11, 0x22, 0x33, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// Near the wrap, so a run of segments wraps the sequence number.
const SEQ0: u32 = 0xffff_f000;
const ID0: u16 = 0xfffe;
const MSS: usize = 1340;

/// The test's own checksum: big-endian words summed one by one, folded, complemented;
/// zero sent as 0xffff (the same to TCP, and what `offload::split` writes).
fn csum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for c in chunks {
        for w in c.chunks(2) {
            sum += u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xffff,
        c => c,
    }
}

/// A TCP segment to build, every field settable.
#[derive(Clone)]
struct Tcp {
    v6: bool,
    sport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    opts: Vec<u8>,
    id: u16,
    tos: u8,
    ttl: u8,
    /// IPv4 flags and fragment offset (DF by default).
    frag: u16,
    /// IPv4 options (a multiple of 4 bytes).
    ip_opts: Vec<u8>,
    /// IPv6 next header: TCP, or a hop-by-hop header (8 bytes) before it.
    hop_by_hop: bool,
    payload: Vec<u8>,
}

impl Tcp {
    fn new(v6: bool, i: usize, len: usize) -> Tcp {
        Tcp {
            v6,
            sport: 40000,
            seq: SEQ0.wrapping_add((i * MSS) as u32),
            ack: 0x1234_5678,
            flags: ACK,
            window: 500,
            opts: timestamps(7, 9),
            id: ID0.wrapping_add(i as u16),
            tos: 0,
            ttl: 64,
            frag: 0x4000,
            ip_opts: Vec::new(),
            hop_by_hop: false,
            payload: (0..len).map(|k| (k * 7 + i * 13) as u8).collect(),
        }
    }

    fn build(&self) -> Vec<u8> {
        let ip_len = if self.v6 {
            40 + if self.hop_by_hop { 8 } else { 0 }
        } else {
            20 + self.ip_opts.len()
        };
        let tcp_len = 20 + self.opts.len();
        let total = ip_len + tcp_len + self.payload.len();
        let mut p = vec![0u8; total];
        if self.v6 {
            p[0] = 0x60 | self.tos >> 4;
            p[1] = self.tos << 4;
            p[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
            p[6] = if self.hop_by_hop { 0 } else { 6 };
            p[7] = self.ttl;
            p[8..24].copy_from_slice(&SRC6);
            p[24..40].copy_from_slice(&DST6);
            if self.hop_by_hop {
                p[40] = 6; // then TCP; length 0 = 8 bytes, PadN filling
                p[42] = 1;
                p[43] = 4;
            }
        } else {
            p[0] = 0x40 | (ip_len / 4) as u8;
            p[1] = self.tos;
            p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            p[4..6].copy_from_slice(&self.id.to_be_bytes());
            p[6..8].copy_from_slice(&self.frag.to_be_bytes());
            p[8] = self.ttl;
            p[9] = 6;
            p[12..16].copy_from_slice(&SRC4);
            p[16..20].copy_from_slice(&DST4);
            p[20..ip_len].copy_from_slice(&self.ip_opts);
            let c = csum(&[&p[..ip_len]]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        let t = ip_len;
        p[t..t + 2].copy_from_slice(&self.sport.to_be_bytes());
        p[t + 2..t + 4].copy_from_slice(&443u16.to_be_bytes());
        p[t + 4..t + 8].copy_from_slice(&self.seq.to_be_bytes());
        p[t + 8..t + 12].copy_from_slice(&self.ack.to_be_bytes());
        p[t + 12] = ((tcp_len / 4) as u8) << 4;
        p[t + 13] = self.flags;
        p[t + 14..t + 16].copy_from_slice(&self.window.to_be_bytes());
        p[t + 20..t + tcp_len].copy_from_slice(&self.opts);
        p[t + tcp_len..].copy_from_slice(&self.payload);
        let c = tcp_csum(&p, self.v6, t);
        p[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
        p
    }
}

/// The TCP checksum of `p` whose TCP header is at `t` (the field itself taken as zero).
fn tcp_csum(p: &[u8], v6: bool, t: usize) -> u16 {
    let addrs = if v6 { &p[8..40] } else { &p[12..20] };
    let len = (p.len() - t) as u32;
    let pseudo = [0, 0, (len >> 8) as u8, len as u8, 0, 6];
    let mut l4 = p[t..].to_vec();
    l4[16] = 0;
    l4[17] = 0;
    csum(&[addrs, &pseudo, &l4])
}

/// NOP, NOP, timestamp option.
fn timestamps(val: u32, ecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10];
    o.extend_from_slice(&val.to_be_bytes());
    o.extend_from_slice(&ecr.to_be_bytes());
    o
}

/// What a drain handed out: the header, the bytes after it joined, the segment count.
#[derive(Debug, Clone)]
struct Out {
    hdr: [u8; VNET_HDR_LEN],
    bytes: Vec<u8>,
    segments: usize,
}

/// Puts `packets` through a coalescer (draining early when it is full), returns the writes.
fn coalesce(packets: &[Vec<u8>]) -> Vec<Out> {
    let mut gro = Gro::new(SLOT);
    let mut outs = Vec::new();
    let mut collect = |c: &Coalesced<'_>| {
        outs.push(Out {
            hdr: c.vnet_hdr,
            bytes: c.parts.concat(),
            segments: c.segments,
        })
    };
    for p in packets {
        if gro.slot().is_none() {
            gro.drain(&mut collect);
        }
        let slot = gro.slot().expect("a slot after a drain");
        slot[..p.len()].copy_from_slice(p);
        gro.push(p.len());
    }
    gro.drain(&mut collect);
    outs
}

/// Cuts a write back into packets as the daemon's read side would.
fn cut(o: &Out) -> Vec<Vec<u8>> {
    let mut read = o.hdr.to_vec();
    read.extend_from_slice(&o.bytes);
    let mut buf = vec![0u8; SLOT];
    let mut got = Vec::new();
    let r = split(&mut read, &mut buf, &mut |p| got.push(p.to_vec()));
    match r {
        Ok(Split::Plain) => assert_eq!(o.segments, 1, "a plain write of {} segments", o.segments),
        Ok(Split::Segments(n)) => assert_eq!(n, o.segments),
        Err(e) => panic!("a write does not cut back: {e:?}"),
    }
    got
}

/// The hosts and, for what may be a TCP segment, the ports (looser than the coalescer's
/// own test, so that what it keys this does too).
fn flow_of(p: &[u8]) -> Option<(Vec<u8>, Option<[u8; 4]>)> {
    let (pair, l4, tcp) = match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0xf) * 4;
            (p.get(12..20)?, ihl, p.get(9) == Some(&6))
        }
        6 => (p.get(8..40)?, 40, p.get(6) == Some(&6)),
        _ => return None,
    };
    let ports = p.get(l4..l4 + 4).filter(|_| tcp);
    Some((pair.to_vec(), ports.map(|b| b.try_into().unwrap())))
}

/// Whether the order of `a` and `b` must be kept: same hosts, and not two TCP flows on
/// different ports.
fn related(a: &[u8], b: &[u8]) -> bool {
    match (flow_of(a), flow_of(b)) {
        (Some((pa, Some(fa))), Some((pb, Some(fb)))) => pa == pb && fa == fb,
        (Some((pa, _)), Some((pb, _))) => pa == pb,
        _ => false,
    }
}

/// Cut back, the writes give exactly `input`, with no two related packets swapped.
fn assert_lossless(input: &[Vec<u8>], outs: &[Out]) {
    let mut used = vec![false; input.len()];
    let mut order = Vec::new();
    for o in outs {
        assert!(o.segments <= MAX_SEGMENTS);
        assert!(
            o.bytes.len() <= 0xffff,
            "a write of {} bytes",
            o.bytes.len()
        );
        for p in cut(o) {
            let at = (0..input.len()).find(|&i| !used[i] && input[i] == p);
            let at = at.unwrap_or_else(|| panic!("a packet that was not delivered: {p:?}"));
            used[at] = true;
            order.push(at);
        }
    }
    assert!(used.iter().all(|&u| u), "lost packets: {used:?}");
    for (k, &i) in order.iter().enumerate() {
        for &j in &order[k + 1..] {
            assert!(
                i < j || !related(&input[i], &input[j]),
                "packet {j} now comes after packet {i} of its flow"
            );
        }
    }
}

/// The writes' segment counts.
fn shape(outs: &[Out]) -> Vec<usize> {
    outs.iter().map(|o| o.segments).collect()
}

fn run_of(v6: bool, n: usize, last_len: usize) -> Vec<Tcp> {
    (0..n)
        .map(|i| Tcp::new(v6, i, if i + 1 == n { last_len } else { MSS }))
        .collect()
}

fn built(segs: &[Tcp]) -> Vec<Vec<u8>> {
    segs.iter().map(Tcp::build).collect()
}

/// Checks a super-packet's headers as the kernel will see them.
fn check_super(o: &Out, v6: bool, segments: &[Vec<u8>]) {
    let l4 = if v6 { 40 } else { 20 };
    let data = l4 + 32;
    let hdr = |at: usize| usize::from(u16::from_ne_bytes([o.hdr[at], o.hdr[at + 1]]));
    assert_eq!(o.hdr[0], 1, "NEEDS_CSUM");
    assert_eq!(o.hdr[1], if v6 { 4 } else { 1 }, "GSO type");
    assert_eq!(hdr(2), data, "hdr_len");
    assert_eq!(hdr(4), segments[0].len() - data, "gso_size");
    assert_eq!((hdr(6), hdr(8)), (l4, 16), "csum_start, csum_offset");
    let p = &o.bytes;
    let want_len: usize = data + segments.iter().map(|s| s.len() - data).sum::<usize>();
    assert_eq!(p.len(), want_len);
    if v6 {
        assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])), p.len() - 40);
    } else {
        assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
        assert!(verify_sum(&[&p[..20]]), "IPv4 header checksum");
    }
    // What the kernel does with NEEDS_CSUM: sum from csum_start on, field included.
    let mut done = p.clone();
    let c = csum(&[&done[l4..]]);
    done[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    assert!(
        l4_checksum_ok(&done, 6),
        "the pseudo-header sum in the field"
    );
    let last_psh = segments.last().unwrap()[l4 + 13] & PSH;
    assert_eq!(p[l4 + 13], ACK | last_psh, "flags: PSH of the last segment");
}

#[test]
fn a_tcp4_run_becomes_one_super_packet_that_cuts_back_exactly() {
    let mut segs = run_of(false, 6, 500);
    segs[5].flags |= PSH;
    let input = built(&segs);
    let outs = coalesce(&input);
    assert_eq!(shape(&outs), [6]);
    check_super(&outs[0], false, &input);
    assert_lossless(&input, &outs);
}

#[test]
fn a_tcp6_run_becomes_one_super_packet_that_cuts_back_exactly() {
    let input = built(&run_of(true, 9, MSS));
    let outs = coalesce(&input);
    assert_eq!(shape(&outs), [9]);
    check_super(&outs[0], true, &input);
    assert_lossless(&input, &outs);
}

#[test]
fn interleaved_flows_coalesce_each_in_first_packet_order() {
    let a = run_of(false, 3, MSS);
    let mut b = run_of(true, 3, MSS);
    let mut c = run_of(false, 3, MSS);
    for s in &mut c {
        s.sport = 40001;
    }
    for s in &mut b {
        s.ttl = 3;
    }
    let mut input = Vec::new();
    for i in 0..3 {
        input.extend([a[i].build(), b[i].build(), c[i].build()]);
    }
    let outs = coalesce(&input);
    assert_eq!(shape(&outs), [3, 3, 3]);
    let sport = |o: &Out| u16::from_be_bytes([o.bytes[20], o.bytes[21]]);
    assert_eq!(sport(&outs[0]), 40000, "flow a first");
    assert_eq!(outs[1].bytes[0] >> 4, 6, "then b");
    assert_eq!(sport(&outs[2]), 40001, "then c");
    assert_lossless(&input, &outs);
}

#[test]
fn what_must_not_coalesce_passes_through_unchanged() {
    type Change = fn(&mut Tcp);
    let cases: Vec<(&str, Change)> = vec![
        ("another flow", |t| t.sport = 1),
        ("a gap in the sequence", |t| t.seq = t.seq.wrapping_add(1)),
        ("a repeated sequence number", |t| {
            t.seq = t.seq.wrapping_sub(MSS as u32)
        }),
        ("ECE", |t| t.flags |= ECE),
        ("CWR", |t| t.flags |= CWR),
        ("SYN", |t| t.flags |= SYN),
        ("FIN", |t| t.flags |= FIN),
        ("RST", |t| t.flags |= RST),
        ("URG", |t| t.flags |= URG),
        ("no ACK", |t| t.flags = PSH),
        ("another ack", |t| t.ack += 1),
        ("another window", |t| t.window += 1),
        ("other timestamps", |t| t.opts = timestamps(8, 9)),
        ("other options, same length", |t| t.opts[1] = 0),
        ("no options", |t| t.opts.clear()),
        ("ECN CE set", |t| t.tos = 3),
        ("another ttl", |t| t.ttl = 63),
        ("an IPv4 id that does not count up", |t| {
            t.id = t.id.wrapping_add(1)
        }),
        ("IPv4 without DF", |t| t.frag = 0),
        ("an IPv4 fragment", |t| t.frag = 0x2000),
        ("a later IPv4 fragment", |t| t.frag = 0x0010),
        ("IPv4 options", |t| t.ip_opts = vec![1, 1, 1, 0]),
        ("no payload", |t| t.payload.clear()),
        ("longer than the first", |t| t.payload.push(0)),
    ];
    for (what, change) in cases {
        let segs = run_of(false, 3, MSS);
        let mut second = segs[1].clone();
        change(&mut second);
        let input = vec![segs[0].build(), second.build(), segs[2].build()];
        let outs = coalesce(&input);
        assert_eq!(outs[0].segments, 1, "{what}: joined the first");
        assert_eq!(outs[0].bytes, input[0], "{what}: the first was changed");
        assert!(
            outs.iter().any(|o| o.bytes == input[1]),
            "{what}: the second changed"
        );
        assert!(
            outs.iter().all(|o| o.segments == 1),
            "{what}: {:?}",
            shape(&outs)
        );
        assert_lossless(&input, &outs);
    }
}

#[test]
fn ipv6_specific_cases_do_not_coalesce() {
    type Change = fn(&mut Tcp);
    let cases: Vec<(&str, Change)> = vec![
        ("an extension header", |t| t.hop_by_hop = true),
        ("another traffic class (ECN CE)", |t| t.tos = 3),
        ("another hop limit", |t| t.ttl = 1),
    ];
    for (what, change) in cases {
        let segs = run_of(true, 2, MSS);
        let mut second = segs[1].clone();
        change(&mut second);
        let input = vec![segs[0].build(), second.build()];
        let outs = coalesce(&input);
        assert_eq!(shape(&outs), [1, 1], "{what}");
        assert_eq!(outs[1].bytes, input[1], "{what}");
        assert_lossless(&input, &outs);
    }
}

#[test]
fn a_first_packet_with_options_or_ext_headers_is_never_grown() {
    let mut segs = run_of(false, 2, MSS);
    for s in &mut segs {
        s.ip_opts = vec![1, 1, 1, 0];
    }
    let input = built(&segs);
    assert_eq!(shape(&coalesce(&input)), [1, 1]);
    let mut segs = run_of(true, 2, MSS);
    for s in &mut segs {
        s.hop_by_hop = true;
    }
    let input = built(&segs);
    let outs = coalesce(&input);
    assert_eq!(shape(&outs), [1, 1]);
    assert_eq!(outs[0].bytes, input[0]);
}

#[test]
fn a_short_segment_ends_a_super_packet_and_psh_too() {
    let mut segs = run_of(false, 5, MSS);
    segs[1].payload.truncate(100);
    for s in &mut segs[2..] {
        s.seq = s.seq.wrapping_sub((MSS - 100) as u32);
    }
    segs[3].flags |= PSH;
    let input = built(&segs);
    let outs = coalesce(&input);
    assert_eq!(shape(&outs), [2, 2, 1]);
    assert_lossless(&input, &outs);
}

#[test]
fn a_psh_first_segment_takes_nothing_after_it() {
    let mut segs = run_of(true, 2, MSS);
    segs[0].flags |= PSH;
    let input = built(&segs);
    assert_eq!(shape(&coalesce(&input)), [1, 1]);
}

#[test]
fn super_packets_stay_within_64_kib() {
    let input = built(&run_of(false, 60, MSS));
    let outs = coalesce(&input);
    let fit = (0xffff - 52) / MSS;
    assert_eq!(outs[0].segments, fit, "{:?}", shape(&outs));
    assert!(outs.iter().all(|o| o.bytes.len() <= 0xffff));
    assert_lossless(&input, &outs);
    // 64 packets fill the arena: the 61st starts a new batch; nothing is lost.
    let input = built(&run_of(true, 100, 700));
    let outs = coalesce(&input);
    assert!(outs.iter().all(|o| o.bytes.len() <= 0xffff));
    assert_lossless(&input, &outs);
}

#[test]
fn bad_checksums_are_never_coalesced() {
    // A bad first segment, then a bad middle one: each goes out alone for the kernel to
    // drop, the good ones around still coalesce.
    let mut input = built(&run_of(false, 5, MSS));
    let last = input[0].len() - 1;
    input[0][last] ^= 1;
    input[3][last] ^= 1;
    let outs = coalesce(&input);
    assert_eq!(shape(&outs), [1, 2, 1, 1]);
    assert_eq!(outs[0].bytes, input[0]);
    assert_eq!(outs[2].bytes, input[3]);
    assert_lossless(&input, &outs);
    let mut input = built(&run_of(false, 2, MSS));
    input[1][10] ^= 1; // the IPv4 header checksum
    assert_eq!(shape(&coalesce(&input)), [1, 1]);
}

/// `p` (TCP at `t`, data of even length) with a TCP checksum field of 0 that still
/// verifies: the field's value moved into the last payload word.
fn zero_checksum_field(mut p: Vec<u8>, t: usize) -> Vec<u8> {
    let c = u32::from(u16::from_be_bytes([p[t + 16], p[t + 17]]));
    p[t + 16..t + 18].fill(0);
    let at = p.len() - 2;
    let mut w = u32::from(u16::from_be_bytes([p[at], p[at + 1]])) + c;
    w = (w & 0xffff) + (w >> 16);
    p[at..].copy_from_slice(&(w as u16).to_be_bytes());
    p
}

#[test]
fn a_zero_checksum_field_is_never_coalesced() {
    let input = built(&run_of(false, 3, MSS));
    let zero = zero_checksum_field(input[1].clone(), 20);
    assert!(l4_checksum_ok(&zero, 6), "the checker accepts it");
    let middle = vec![input[0].clone(), zero.clone(), input[2].clone()];
    assert_eq!(shape(&coalesce(&middle)), [1, 1, 1]);
    let first = vec![zero, input[2].clone()];
    let outs = coalesce(&first);
    assert_eq!(shape(&outs), [1, 1]);
    assert_eq!(outs[0].bytes, first[0]);
}

#[test]
fn any_other_packet_of_the_flow_or_hosts_closes_it() {
    let segs = run_of(false, 3, MSS);
    let mut ack = segs[1].clone();
    ack.payload.clear();
    let mut icmp = segs[1].build();
    icmp[9] = 1;
    for between in [ack.build(), icmp] {
        let input = vec![segs[0].build(), between, segs[1].build(), segs[2].build()];
        let outs = coalesce(&input);
        assert_eq!(shape(&outs), [1, 1, 2]);
        assert_lossless(&input, &outs);
    }
    // A packet that is no IP at all touches no flow.
    let input = vec![segs[0].build(), vec![0x17; 30], segs[1].build()];
    assert_eq!(shape(&coalesce(&input)), [2, 1]);
}

#[test]
fn as_many_flows_as_slots_coalesce_and_more_lose_nothing() {
    for (flows, joined) in [(MAX_FLOWS, true), (MAX_FLOWS + 3, false)] {
        let mut input = Vec::new();
        for i in 0..3 {
            for f in 0..flows {
                let mut t = Tcp::new(f % 2 == 0, i, MSS);
                t.sport = 1000 + f as u16;
                input.push(t.build());
            }
        }
        let outs = coalesce(&input);
        if joined {
            assert_eq!(shape(&outs), vec![3; flows]);
        }
        assert_lossless(&input, &outs);
    }
}

#[test]
fn slots_run_out_and_come_back_without_reallocating() {
    let mut gro = Gro::new(SLOT);
    let arena = gro.arena.as_ptr();
    for round in 0..3 {
        for n in 0..MAX_PACKETS {
            assert!(gro.slot().is_some(), "round {round}, packet {n}");
            gro.push(60);
        }
        assert!(gro.slot().is_none());
        let mut writes = 0;
        gro.drain(&mut |_| writes += 1);
        assert_eq!(writes, MAX_PACKETS);
        assert_eq!(gro.packets.capacity(), MAX_PACKETS);
        assert_eq!(gro.writes.capacity(), MAX_PACKETS);
        assert_eq!(gro.arena.as_ptr(), arena);
    }
}

/// One step of a generated stream: which flow, and what happens to its next segment.
#[derive(Debug, Clone)]
enum Step {
    Next(u8),
    Short(u8),
    Psh(u8),
    Gap(u8),
    Other(u8),
}

fn step() -> impl Strategy<Value = Step> {
    let flow = 0u8..3;
    prop_oneof![
        6 => flow.clone().prop_map(Step::Next),
        1 => flow.clone().prop_map(Step::Short),
        1 => flow.clone().prop_map(Step::Psh),
        1 => flow.clone().prop_map(Step::Gap),
        1 => flow.prop_map(Step::Other),
    ]
}

/// Builds the stream: flows 0 and 2 IPv4 (different ports), flow 1 IPv6.
fn stream(steps: &[Step], mss: usize) -> Vec<Vec<u8>> {
    let mut next = [(SEQ0, ID0); 3];
    steps
        .iter()
        .map(|s| {
            let (f, len, flags, gap) = match *s {
                Step::Next(f) => (f, mss, ACK, 0),
                Step::Short(f) => (f, mss / 3, ACK, 0),
                Step::Psh(f) => (f, mss, ACK | PSH, 0),
                Step::Gap(f) => (f, mss, ACK, 1000),
                Step::Other(f) => (f, 10, ACK | FIN, 0),
            };
            let k = usize::from(f);
            let mut t = Tcp::new(f == 1, 0, len);
            t.sport = 2000 + u16::from(f);
            t.seq = next[k].0.wrapping_add(gap);
            t.id = next[k].1;
            t.flags = flags;
            next[k] = (t.seq.wrapping_add(len as u32), t.id.wrapping_add(1));
            t.build()
        })
        .collect()
}

proptest! {
    #[test]
    fn any_bytes_pass_through_unchanged_without_panic(
        packets in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..200), 0..80),
        version in prop_oneof![Just(0x45u8), Just(0x60), any::<u8>()],
    ) {
        let packets: Vec<Vec<u8>> = packets
            .into_iter()
            .map(|mut p| {
                if let Some(b) = p.first_mut() {
                    *b = version;
                }
                p
            })
            .collect();
        let outs = coalesce(&packets);
        prop_assert!(outs.iter().all(|o| o.segments == 1 && o.hdr == [0; VNET_HDR_LEN]));
        let got: Vec<Vec<u8>> = outs.into_iter().map(|o| o.bytes).collect();
        prop_assert_eq!(got, packets);
    }

    #[test]
    fn generated_streams_cut_back_exactly_in_flow_order(
        steps in proptest::collection::vec(step(), 0..120),
        mss in 1usize..1400,
    ) {
        let input = stream(&steps, mss);
        assert_lossless(&input, &coalesce(&input));
    }

    #[test]
    fn corrupted_streams_lose_and_reorder_nothing(
        steps in proptest::collection::vec(step(), 1..60),
        flips in proptest::collection::vec((any::<usize>(), any::<usize>(), 1u8..=255), 0..8),
    ) {
        let mut input = stream(&steps, 600);
        for (p, at, x) in flips {
            let n = input.len();
            let packet = &mut input[p % n];
            let len = packet.len();
            packet[at % len] ^= x;
        }
        assert_lossless(&input, &coalesce(&input));
    }
}
