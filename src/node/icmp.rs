//! ICMP errors a relay sends: Time Exceeded to the source of a Data message whose ttl ran
//! out, so traceroute through the mesh shows every relay (docs/protocol.md §6.7).

use std::net::IpAddr;

use super::{DropReason, Node, DATA_TTL};
use crate::overlay::icmp::{build_time_exceeded4, build_time_exceeded6, must_not_answer};
use crate::overlay::IpPacket;
use crate::time::Instant;

impl Node {
    /// `packet` was dropped here because its ttl ran out: send its source (a node in our
    /// address book other than us) an ICMP Time Exceeded from our own overlay address of
    /// the same family, within the node's ICMP error budget.
    pub(super) fn send_time_exceeded(&mut self, now: Instant, packet: &[u8]) {
        if must_not_answer(packet) {
            return;
        }
        let Ok(ip) = IpPacket::parse(packet) else {
            return;
        };
        let to = ip.src();
        let Some(node) = self.book.lookup(&to).filter(|n| *n != self.id) else {
            return;
        };
        let from = match to {
            IpAddr::V6(_) => IpAddr::V6(self.addr6),
            IpAddr::V4(_) => match self.overlay_ipv4() {
                Some(a) => IpAddr::V4(a),
                None => return,
            },
        };
        if !self.icmp_budget.allow(now) {
            self.stats.drop(DropReason::IcmpRateLimited);
            return;
        }
        let Some(mut buf) = self.icmp_scratch.take() else {
            return;
        };
        let built = match (from, to) {
            (IpAddr::V6(f), IpAddr::V6(t)) => build_time_exceeded6(&mut buf[..], f, t, packet),
            (IpAddr::V4(f), IpAddr::V4(t)) => build_time_exceeded4(&mut buf[..], f, t, packet),
            _ => None,
        };
        if let Some(error) = built.and_then(|n| buf.get(..n)) {
            if self.forward(now, node, DATA_TTL, error) {
                self.stats.icmp_errors_sent += 1;
            }
        }
        self.icmp_scratch = Some(buf);
    }
}
