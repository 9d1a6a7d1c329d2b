//! Node-level tests of the data path's ttl (from the IP hop limit), Time Exceeded for a
//! relay's ttl-expired notice (the relay cannot read the packet: the source makes the
//! error), the notices' rate limit, and detaching/reattaching an interface.

use std::net::IpAddr;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::data::PROBE_QUOTE_LEN;
use super::*;
use crate::crypto::Identity;
use crate::overlay::icmp::{build_time_exceeded6, ICMPV6_ERROR_MAX};
use crate::overlay::{build_echo_request4, build_echo_request6, parse_icmp_answer, AnswerKind};
use crate::time::Duration;

/// Nodes 0..n on a line (i hears i-1 and i+1), one interface each.
struct Line {
    nodes: Vec<Node>,
    macs: Vec<MacAddr>,
    now: Instant,
    delivered: Vec<Vec<Vec<u8>>>,
}

fn mac(i: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, i])
}

impl Line {
    fn new(pools: &[bool]) -> Line {
        let now = Instant::ZERO;
        let mut nodes = Vec::new();
        let mut macs = Vec::new();
        for (i, pool) in pools.iter().enumerate() {
            let i = i as u8 + 1;
            let cfg = NodeConfig {
                ipv4_pool: pool.then(|| "10.77.0.0/16".parse().unwrap()),
                ..NodeConfig::default()
            };
            let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(u64::from(i)));
            let mut n = Node::new(cfg, id, 1, [i; 32], now).unwrap();
            n.add_interface(now, IfaceId(0), mac(i));
            nodes.push(n);
            macs.push(mac(i));
        }
        let delivered = vec![Vec::new(); nodes.len()];
        Line {
            nodes,
            macs,
            now,
            delivered,
        }
    }

    /// Move every queued frame to the neighbours that hear it, until quiet.
    fn exchange(&mut self) {
        let mut buf = [0u8; 1500];
        loop {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                while let Some(t) = self.nodes[i].poll_transmit(&mut buf) {
                    moved = true;
                    for j in [i.wrapping_sub(1), i + 1] {
                        let hears = j < self.nodes.len()
                            && (t.dst == MacAddr::BROADCAST || t.dst == self.macs[j]);
                        if hears {
                            let src = self.macs[i];
                            self.nodes[j].handle_frame(self.now, IfaceId(0), src, &buf[..t.len]);
                        }
                    }
                }
                while let Some(n) = self.nodes[i].poll_deliver(&mut buf) {
                    self.delivered[i].push(buf[..n].to_vec());
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn run(&mut self, millis: u64) {
        let end = self.now + Duration::from_millis(millis);
        while self.now < end {
            for n in &mut self.nodes {
                n.handle_timeout(self.now);
            }
            self.exchange();
            self.now += Duration::from_millis(10);
        }
    }

    /// Node `i` sends `packet` from its TUN side; frames move at once.
    fn send(&mut self, i: usize, packet: &[u8]) {
        self.nodes[i].handle_ip_packet(self.now, packet);
        self.exchange();
    }

    fn converged(pools: &[bool]) -> Line {
        let mut line = Line::new(pools);
        line.run(15_000);
        let far = line.nodes[2].node_id();
        assert!(line.nodes[0].next_hop(&far).is_some(), "1 routes to 3");
        for d in &mut line.delivered {
            d.clear();
        }
        line
    }

    fn addr6(&self, i: usize) -> std::net::Ipv6Addr {
        self.nodes[i].overlay_ipv6()
    }
}

fn echo6(line: &Line, hop_limit: u8, seq: u16) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let n = build_echo_request6(
        &mut buf,
        line.addr6(0),
        line.addr6(2),
        hop_limit,
        0x77,
        seq,
        32,
    )
    .unwrap();
    buf[..n].to_vec()
}

#[test]
fn relay_answers_an_expired_echo_with_time_exceeded() {
    let mut line = Line::converged(&[false; 3]);
    line.send(0, &echo6(&line, 1, 5));
    assert_eq!(line.nodes[1].stats().drops(DropReason::TtlExpired), 1);
    assert_eq!(
        line.nodes[1].stats().icmp_errors_sent,
        1,
        "the relay's notice"
    );
    assert_eq!(line.nodes[0].stats().icmp_errors_made, 1);
    assert!(line.delivered[2].is_empty(), "3 never sees it");
    assert_eq!(
        line.delivered[0].len(),
        1,
        "1 gets the error on its TUN side"
    );
    let a = parse_icmp_answer(&line.delivered[0][0]).unwrap();
    assert_eq!(a.from, IpAddr::V6(line.addr6(1)));
    assert_eq!(
        (a.kind, a.ident, a.seq),
        (AnswerKind::TimeExceeded, 0x77, 5)
    );
}

#[test]
fn mesh_ttl_follows_the_hop_limit() {
    let mut line = Line::converged(&[false; 3]);
    let req = echo6(&line, 2, 6);
    line.send(0, &req);
    assert_eq!(line.delivered[2], vec![req], "hop limit 2 reaches 3");
    assert!(line.delivered[0].is_empty());
    assert_eq!(line.nodes[1].stats().drops(DropReason::TtlExpired), 0);
    // Hop limit 0 never leaves the node.
    let sent = line.nodes[0].stats().frames_out;
    line.send(0, &echo6(&line, 0, 7));
    assert_eq!(line.nodes[0].stats().drops(DropReason::TtlExpired), 1);
    assert_eq!(line.nodes[0].stats().frames_out, sent);
    // A large hop limit still caps the mesh ttl at DATA_TTL (and arrives).
    line.send(0, &echo6(&line, 255, 8));
    assert_eq!(line.delivered[2].len(), 2);
}

#[test]
fn icmp_errors_are_never_answered() {
    let mut line = Line::converged(&[false; 3]);
    let mut buf = [0u8; 1500];
    let quoted = echo6(&line, 1, 1);
    let n = build_time_exceeded6(&mut buf, line.addr6(0), line.addr6(2), &quoted).unwrap();
    buf[7] = 1; // hop limit 1 (not covered by the checksum)
    line.send(0, &buf[..n]);
    assert_eq!(line.nodes[1].stats().drops(DropReason::TtlExpired), 1);
    // The relay cannot tell an error from anything else; the source, which can, makes none.
    assert_eq!(line.nodes[1].stats().icmp_errors_sent, 1);
    assert_eq!(line.nodes[0].stats().icmp_errors_made, 0);
    assert!(line.delivered[0].is_empty());
}

#[test]
fn time_exceeded_is_rate_limited() {
    let mut line = Line::converged(&[false; 3]);
    for seq in 0..30 {
        line.send(0, &echo6(&line, 1, seq));
    }
    let relay = line.nodes[1].stats();
    assert_eq!(relay.drops(DropReason::TtlExpired), 30);
    assert_eq!(relay.icmp_errors_sent, u64::from(ICMP_ERRORS_PER_SEC));
    assert_eq!(relay.drops(DropReason::IcmpRateLimited), 10);
    assert_eq!(line.delivered[0].len(), 20);
    // The budget refills: a second later the relay answers again.
    line.run(1000);
    line.send(0, &echo6(&line, 1, 99));
    assert_eq!(line.nodes[1].stats().icmp_errors_sent, 21);
}

#[test]
fn ipv4_time_exceeded_comes_from_the_relays_ipv4() {
    let mut line = Line::converged(&[true; 3]);
    let (me, relay, far) = (
        line.nodes[0].overlay_ipv4().unwrap(),
        line.nodes[1].overlay_ipv4().unwrap(),
        line.nodes[2].overlay_ipv4().unwrap(),
    );
    let mut buf = [0u8; 1500];
    let n = build_echo_request4(&mut buf, me, far, 1, 0x42, 3, 100).unwrap();
    line.send(0, &buf[..n]);
    assert_eq!(line.nodes[1].stats().icmp_errors_sent, 1);
    let a = parse_icmp_answer(&line.delivered[0][0]).unwrap();
    assert_eq!(a.from, IpAddr::V4(relay));
    assert_eq!(
        (a.kind, a.ident, a.seq),
        (AnswerKind::TimeExceeded, 0x42, 3)
    );
    // TTL 2 reaches node 3.
    let n = build_echo_request4(&mut buf, me, far, 2, 0x42, 4, 100).unwrap();
    line.send(0, &buf[..n]);
    assert_eq!(line.delivered[2], vec![buf[..n].to_vec()]);
}

#[test]
fn relay_without_ipv4_sends_no_ipv4_error() {
    let mut line = Line::converged(&[true, false, true]);
    let (me, far) = (
        line.nodes[0].overlay_ipv4().unwrap(),
        line.nodes[2].overlay_ipv4().unwrap(),
    );
    let mut buf = [0u8; 1500];
    let n = build_echo_request4(&mut buf, me, far, 1, 1, 1, 8).unwrap();
    line.send(0, &buf[..n]);
    assert_eq!(line.nodes[1].stats().drops(DropReason::TtlExpired), 1);
    // The source has no IPv4 address of the relay to send the error from.
    assert_eq!(line.nodes[1].stats().icmp_errors_sent, 1);
    assert_eq!(line.nodes[0].stats().icmp_errors_made, 0);
    assert!(line.delivered[0].is_empty());
}

#[test]
fn the_error_quotes_the_start_of_the_probe() {
    let mut line = Line::converged(&[false; 3]);
    let mut buf = [0u8; 1500];
    let n = build_echo_request6(&mut buf, line.addr6(0), line.addr6(2), 1, 9, 9, 1300).unwrap();
    line.send(0, &buf[..n]);
    let got = &line.delivered[0][0];
    assert_eq!(got.len(), 48 + PROBE_QUOTE_LEN);
    assert!(got.len() <= ICMPV6_ERROR_MAX);
    assert_eq!(&got[48..], &buf[..PROBE_QUOTE_LEN]);
}

#[test]
fn remove_interface_forgets_its_links_and_add_starts_clean() {
    let mut line = Line::converged(&[false; 3]);
    let (one, three) = (line.nodes[0].node_id(), line.nodes[2].node_id());
    assert_eq!(line.nodes[1].sessions(), 2);
    let now = line.now;
    assert!(line.nodes[1].remove_interface(now, IfaceId(0)));
    assert!(
        !line.nodes[1].remove_interface(now, IfaceId(0)),
        "already gone"
    );
    let relay = &line.nodes[1];
    assert_eq!(relay.sessions(), 0);
    assert_eq!(relay.link.table().iter().count(), 0);
    assert_eq!(relay.neighbors().count(), 0);
    assert_eq!(relay.next_hop(&one), None);
    assert_eq!(relay.next_hop(&three), None);
    // Back with a new MAC: sessions and routes come back through it.
    line.macs[1] = mac(12);
    assert!(line.nodes[1].add_interface(now, IfaceId(0), mac(12)));
    line.run(20_000);
    assert_eq!(line.nodes[1].next_hop(&one), Some((IfaceId(0), mac(1))));
    assert_eq!(line.nodes[1].next_hop(&three), Some((IfaceId(0), mac(3))));
    assert_eq!(line.nodes[0].next_hop(&three), Some((IfaceId(0), mac(12))));
    line.delivered[2].clear();
    let req = echo6(&line, 2, 1);
    line.send(0, &req);
    assert_eq!(line.delivered[2], vec![req]);
}
