//! Test traffic: hand-built UDP/IPv6 packets sent between chosen pairs, counted on delivery.
//!
//! Packet: IPv6 header (40) | UDP header (8, source port = flow id, destination port 9,
//! checksum computed) | sequence number (u64) | `payload_len` zero bytes.

use std::net::Ipv6Addr;

use crate::time::{Duration, Instant};

/// IPv6 header length.
const IPV6_HEADER_LEN: usize = 40;
/// UDP header length.
const UDP_HEADER_LEN: usize = 8;
/// Length of a test packet with no padding.
pub const TEST_PACKET_MIN_LEN: usize = IPV6_HEADER_LEN + UDP_HEADER_LEN + 8;
/// UDP destination port of every test packet (discard).
pub const TEST_UDP_PORT: u16 = 9;
/// Most flows one simulation can have (the flow id is the UDP source port).
pub const MAX_FLOWS: usize = 65_536;
/// Most packets one flow can send (bounds its duplicate-detection bitmap).
pub const MAX_FLOW_PACKETS: u64 = 1 << 24;

/// A periodic flow of test packets from `src` to `dst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowSpec {
    /// Sending node index.
    pub src: usize,
    /// Receiving node index.
    pub dst: usize,
    /// Instant of the first packet.
    pub start: Instant,
    /// Time between packets (non-zero).
    pub interval: Duration,
    /// Number of packets.
    pub count: u64,
    /// Zero bytes after the sequence number.
    pub payload_len: usize,
}

/// What happened to one flow's packets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Packets handed to a live source host.
    pub sent: u64,
    /// Packets the source could not send because it was crashed.
    pub skipped_dead_src: u64,
    /// Distinct packets delivered at the destination.
    pub delivered: u64,
    /// Packets delivered again.
    pub duplicates: u64,
    /// Packets of this flow delivered at a node other than its destination.
    pub misdelivered: u64,
    /// Sum of one-way latencies of distinct deliveries.
    pub latency_total: Duration,
    /// Largest one-way latency.
    pub latency_max: Duration,
    /// First packet sent.
    pub first_send: Option<Instant>,
    /// Last packet sent.
    pub last_send: Option<Instant>,
    /// Last distinct delivery.
    pub last_delivery: Option<Instant>,
    /// Longest wait between the first send or a delivery and the next delivery.
    pub max_delivery_gap: Duration,
    /// Source address of the last distinct delivery (what the destination saw).
    pub last_source: Option<Ipv6Addr>,
}

impl FlowStats {
    /// Distinct deliveries over packets sent (1.0 if nothing was sent).
    pub fn delivery_ratio(&self) -> f64 {
        if self.sent == 0 {
            return 1.0;
        }
        self.delivered as f64 / self.sent as f64
    }

    /// Longest stretch without a delivery: between the first send, the deliveries and the
    /// last send (so a flow that stops being delivered shows the whole outage).
    pub fn longest_gap(&self) -> Duration {
        let prev = self
            .last_delivery
            .or(self.first_send)
            .unwrap_or(Instant::ZERO);
        let tail = self.last_send.map_or(Duration::ZERO, |t| t - prev);
        self.max_delivery_gap.max(tail)
    }

    /// Mean one-way latency of delivered packets.
    pub fn mean_latency(&self) -> Duration {
        match self.delivered {
            0 => Duration::ZERO,
            d => Duration::from_micros(self.latency_total.as_micros() / d),
        }
    }
}

/// The fields of a parsed test packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestPacket {
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// Flow id (UDP source port).
    pub flow: u16,
    /// Sequence number within the flow.
    pub seq: u64,
}

/// Writes a test packet into `buf`; `None` if `buf` is too small.
pub fn build_test_packet(buf: &mut [u8], p: &TestPacket, payload_len: usize) -> Option<usize> {
    let len = TEST_PACKET_MIN_LEN.checked_add(payload_len)?;
    let udp_len = u16::try_from(len - IPV6_HEADER_LEN).ok()?;
    let out = buf.get_mut(..len)?;
    out.fill(0);
    out[0] = 0x60;
    out[4..6].copy_from_slice(&udp_len.to_be_bytes());
    out[6] = 17; // next header: UDP
    out[7] = 64; // hop limit
    out[8..24].copy_from_slice(&p.src.octets());
    out[24..40].copy_from_slice(&p.dst.octets());
    out[40..42].copy_from_slice(&p.flow.to_be_bytes());
    out[42..44].copy_from_slice(&TEST_UDP_PORT.to_be_bytes());
    out[44..46].copy_from_slice(&udp_len.to_be_bytes());
    out[48..56].copy_from_slice(&p.seq.to_be_bytes());
    let sum = match !ones_sum(&out[8..40], &out[40..]) {
        0 => 0xffff,
        s => s,
    };
    out[46..48].copy_from_slice(&sum.to_be_bytes());
    Some(len)
}

/// Parses a test packet; `None` for anything else (checksum included).
pub fn parse_test_packet(pkt: &[u8]) -> Option<TestPacket> {
    let udp = pkt.get(IPV6_HEADER_LEN..)?;
    if pkt.first()? >> 4 != 6 || pkt[6] != 17 || udp.len() < UDP_HEADER_LEN + 8 {
        return None;
    }
    let udp_len = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    if u16::from_be_bytes([udp[2], udp[3]]) != TEST_UDP_PORT || udp_len != udp.len() {
        return None;
    }
    if ones_sum(&pkt[8..40], udp) != 0xffff {
        return None;
    }
    let addr = |r: &[u8]| <[u8; 16]>::try_from(r).ok().map(Ipv6Addr::from);
    Some(TestPacket {
        src: addr(&pkt[8..24])?,
        dst: addr(&pkt[24..40])?,
        flow: u16::from_be_bytes([udp[0], udp[1]]),
        seq: u64::from_be_bytes(udp[8..16].try_into().ok()?),
    })
}

/// The folded ones'-complement sum over the IPv6 pseudo-header (`addrs` = both
/// addresses) and `udp`; 0xffff over a segment carrying a correct checksum.
fn ones_sum(addrs: &[u8], udp: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for c in bytes.chunks(2) {
            sum += u64::from(c[0]) << 8 | u64::from(*c.get(1).unwrap_or(&0));
        }
    };
    add(addrs);
    add(&(udp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 17]);
    add(udp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// One flow and its state.
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    pub(crate) spec: FlowSpec,
    pub(crate) stats: FlowStats,
    /// The flow that answers each newly delivered packet of this one (request/response).
    pub(crate) reply: Option<usize>,
    /// Where a reply flow's packets go: the source address of the request it answers, as
    /// an application answers (an anonymous sender's ephemeral address included).
    pub(crate) answer_to: Option<Ipv6Addr>,
    next_seq: u64,
    seen: Vec<u64>,
}

impl Flow {
    /// A flow that has sent nothing yet.
    pub(crate) fn new(spec: FlowSpec) -> Flow {
        let words = spec.count.div_ceil(64) as usize;
        Flow {
            spec,
            stats: FlowStats::default(),
            reply: None,
            answer_to: None,
            next_seq: 0,
            seen: vec![0; words],
        }
    }

    /// The sequence number to send now and when the one after is due, if any is left.
    pub(crate) fn next_send(&mut self) -> Option<(u64, Option<Instant>)> {
        let seq = self.next_seq;
        if seq >= self.spec.count {
            return None;
        }
        self.next_seq += 1;
        let next = (seq + 1 < self.spec.count).then(|| self.send_time(seq + 1));
        Some((seq, next))
    }

    /// Instant at which packet `seq` is sent.
    pub(crate) fn send_time(&self, seq: u64) -> Instant {
        self.spec.start + Duration::from_micros(self.spec.interval.as_micros().saturating_mul(seq))
    }

    /// Records that packet `seq` was handed to the source host at `now`.
    pub(crate) fn on_sent(&mut self, now: Instant) {
        self.stats.sent += 1;
        self.stats.first_send.get_or_insert(now);
        self.stats.last_send = Some(now);
    }

    /// Records a delivery of packet `seq` at node `at_node` at `now`; true if it is the
    /// first delivery of that packet.
    pub(crate) fn on_delivered(
        &mut self,
        now: Instant,
        (at_node, source): (usize, Ipv6Addr),
        seq: u64,
    ) -> bool {
        if at_node != self.spec.dst {
            self.stats.misdelivered += 1;
            return false;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        let Some(w) = self.seen.get_mut(word) else {
            self.stats.misdelivered += 1;
            return false;
        };
        if *w & (1 << bit) != 0 {
            self.stats.duplicates += 1;
            return false;
        }
        *w |= 1 << bit;
        let latency = now - self.send_time(seq);
        let s = &mut self.stats;
        s.delivered += 1;
        s.last_source = Some(source);
        s.latency_total = s.latency_total + latency;
        s.latency_max = s.latency_max.max(latency);
        let prev = s.last_delivery.or(s.first_send).unwrap_or(now);
        s.max_delivery_gap = s.max_delivery_gap.max(now - prev);
        s.last_delivery = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u64) -> TestPacket {
        TestPacket {
            src: "fd00::1".parse().unwrap(),
            dst: "fd00::2".parse().unwrap(),
            flow: 7,
            seq,
        }
    }

    #[test]
    fn test_packets_round_trip_with_a_valid_checksum() {
        let mut buf = [0u8; 100];
        let len = build_test_packet(&mut buf, &packet(0x0102_0304_0506_0708), 4).unwrap();
        assert_eq!(len, TEST_PACKET_MIN_LEN + 4);
        assert_eq!(buf[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([buf[4], buf[5]]), 20);
        assert_eq!(
            parse_test_packet(&buf[..len]),
            Some(packet(0x0102_0304_0506_0708))
        );
        for flip in [9, 30, 41, 50, len - 1] {
            let mut bad = buf;
            bad[flip] ^= 0x40;
            assert_eq!(parse_test_packet(&bad[..len]), None, "byte {flip} flipped");
        }
        assert_eq!(parse_test_packet(&buf[..len - 1]), None);
        assert_eq!(parse_test_packet(&buf[..20]), None);
        assert_eq!(build_test_packet(&mut buf[..50], &packet(1), 0), None);
    }

    #[test]
    fn flows_count_deliveries_duplicates_latency_and_gaps() {
        let spec = FlowSpec {
            src: 0,
            dst: 3,
            start: Instant::from_millis(1000),
            interval: Duration::from_millis(100),
            count: 5,
            payload_len: 0,
        };
        let mut f = Flow::new(spec);
        let mut sends = Vec::new();
        while let Some((seq, next)) = f.next_send() {
            f.on_sent(f.send_time(seq));
            sends.push((seq, next));
        }
        assert_eq!(sends.len(), 5);
        assert_eq!(sends[0], (0, Some(Instant::from_millis(1100))));
        assert_eq!(sends[4], (4, None));
        f.on_delivered(
            Instant::from_millis(1010),
            (3, std::net::Ipv6Addr::LOCALHOST),
            0,
        );
        f.on_delivered(
            Instant::from_millis(1011),
            (3, std::net::Ipv6Addr::LOCALHOST),
            0,
        );
        f.on_delivered(
            Instant::from_millis(1420),
            (3, std::net::Ipv6Addr::LOCALHOST),
            4,
        );
        f.on_delivered(
            Instant::from_millis(1120),
            (2, std::net::Ipv6Addr::LOCALHOST),
            1,
        );
        let s = &f.stats;
        assert_eq!(
            (s.sent, s.delivered, s.duplicates, s.misdelivered),
            (5, 2, 1, 1)
        );
        assert_eq!(s.latency_max, Duration::from_millis(20));
        assert_eq!(s.mean_latency(), Duration::from_millis(15));
        assert_eq!(s.longest_gap(), Duration::from_millis(410));
        assert!((s.delivery_ratio() - 0.4).abs() < 1e-9);
        // A flow that stops being delivered shows the outage up to its last send.
        let mut g = Flow::new(spec);
        for seq in 0..5 {
            g.next_send();
            g.on_sent(g.send_time(seq));
        }
        g.on_delivered(
            Instant::from_millis(1005),
            (3, std::net::Ipv6Addr::LOCALHOST),
            0,
        );
        assert_eq!(g.stats.longest_gap(), Duration::from_millis(395));
    }
}
