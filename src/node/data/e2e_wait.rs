//! Packets waiting for their end-to-end session, and the first bytes of recent traceroute
//! probes (so a relay's ttl-expired notice can be turned into the ICMP error it stands for).
//! Both are fixed arrays allocated once.

use crate::time::{Duration, Instant};
use crate::wire::e2e::MAX_E2E_PACKET_LEN;
use crate::wire::NodeId;

/// Packets held while handshakes run, over all peers.
pub const E2E_WAIT_SLOTS: usize = 32;
/// A held packet whose session is not up within this time is dropped.
pub const E2E_WAIT_TIMEOUT: Duration = Duration::from_secs(3);
/// Probes remembered for ttl-expired notices.
pub const PROBE_SLOTS: usize = 16;
/// Bytes kept of each probe: the IP header and what follows, enough for any traceroute
/// to match the error to its probe.
pub const PROBE_QUOTE_LEN: usize = 96;

#[derive(Debug, Clone, Copy)]
struct Held {
    node: NodeId,
    ttl: u8,
    len: usize,
    since: Instant,
}

/// Packets waiting for their peer's session.
pub struct Waiting {
    held: [Option<Held>; E2E_WAIT_SLOTS],
    bufs: Box<[[u8; MAX_E2E_PACKET_LEN]; E2E_WAIT_SLOTS]>,
}

impl Default for Waiting {
    fn default() -> Self {
        Waiting {
            held: [None; E2E_WAIT_SLOTS],
            bufs: Box::new([[0; MAX_E2E_PACKET_LEN]; E2E_WAIT_SLOTS]),
        }
    }
}

impl Waiting {
    /// Hold `packet` for `node`. False if every slot is taken (or it is too long).
    pub fn hold(&mut self, node: NodeId, ttl: u8, packet: &[u8], now: Instant) -> bool {
        let Some(i) = self.held.iter().position(Option::is_none) else {
            return false;
        };
        let (Some(buf), Some(slot)) = (self.bufs.get_mut(i), self.held.get_mut(i)) else {
            return false;
        };
        let Some(dst) = buf.get_mut(..packet.len()) else {
            return false;
        };
        dst.copy_from_slice(packet);
        *slot = Some(Held {
            node,
            ttl,
            len: packet.len(),
            since: now,
        });
        true
    }

    /// Whether any packet is held.
    pub fn holds_any(&self) -> bool {
        self.held.iter().any(Option::is_some)
    }

    /// Take the oldest packet held for `node` into `out`: its length and ttl.
    pub fn take_for(&mut self, node: &NodeId, out: &mut [u8]) -> Option<(usize, u8)> {
        let i = self
            .held
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.filter(|h| h.node == *node).map(|h| (i, h.since)))
            .min_by_key(|(_, since)| *since)
            .map(|(i, _)| i)?;
        let held = self.held.get_mut(i)?.take()?;
        let src = self.bufs.get(i)?.get(..held.len)?;
        out.get_mut(..held.len)?.copy_from_slice(src);
        Some((held.len, held.ttl))
    }

    /// Drop packets held longer than `E2E_WAIT_TIMEOUT`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        for slot in &mut self.held {
            if slot.is_some_and(|h| now.saturating_since(h.since) >= E2E_WAIT_TIMEOUT) {
                *slot = None;
                dropped += 1;
            }
        }
        dropped
    }

    /// When the oldest held packet expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        let oldest = self.held.iter().flatten().map(|h| h.since).min();
        oldest.map(|t| t + E2E_WAIT_TIMEOUT)
    }
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    remote_idx: u32,
    counter: u64,
    len: usize,
    quote: [u8; PROBE_QUOTE_LEN],
}

/// The first bytes of the last `PROBE_SLOTS` packets sent with a small hop limit, by the
/// (session index, counter) they went out under.
#[derive(Default)]
pub struct Probes {
    ring: [Option<Probe>; PROBE_SLOTS],
    next: usize,
}

impl Probes {
    /// Remember the start of `packet`, sealed under `remote_idx` with `counter`.
    pub fn record(&mut self, remote_idx: u32, counter: u64, packet: &[u8]) {
        let len = packet.len().min(PROBE_QUOTE_LEN);
        let mut quote = [0u8; PROBE_QUOTE_LEN];
        if let (Some(q), Some(p)) = (quote.get_mut(..len), packet.get(..len)) {
            q.copy_from_slice(p);
        }
        if let Some(slot) = self.ring.get_mut(self.next) {
            *slot = Some(Probe {
                remote_idx,
                counter,
                len,
                quote,
            });
        }
        self.next = (self.next + 1) % PROBE_SLOTS;
    }

    /// The recorded start of the packet sent under (`remote_idx`, `counter`), once.
    pub fn take(&mut self, remote_idx: u32, counter: u64, out: &mut [u8]) -> Option<usize> {
        let slot = self
            .ring
            .iter_mut()
            .find(|p| p.is_some_and(|p| p.remote_idx == remote_idx && p.counter == counter))?;
        let probe = slot.take()?;
        let quote = probe.quote.get(..probe.len)?;
        out.get_mut(..probe.len)?.copy_from_slice(quote);
        Some(probe.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_packets_come_back_oldest_first_per_node_and_expire() {
        let mut w = Waiting::default();
        let (a, b) = (NodeId([1; 16]), NodeId([2; 16]));
        let t = |ms| Instant::ZERO + Duration::from_millis(ms);
        assert!(w.hold(a, 5, b"first", t(0)));
        assert!(w.hold(b, 6, b"other", t(1)));
        assert!(w.hold(a, 7, b"second", t(2)));
        let mut out = [0u8; 64];
        assert_eq!(w.take_for(&a, &mut out), Some((5, 5)));
        assert_eq!(&out[..5], b"first");
        assert_eq!(w.take_for(&a, &mut out), Some((6, 7)));
        assert_eq!(w.take_for(&a, &mut out), None);
        assert_eq!(w.next_expiry(), Some(t(1) + E2E_WAIT_TIMEOUT));
        assert_eq!(w.expire(t(1) + E2E_WAIT_TIMEOUT), 1);
        assert_eq!(w.next_expiry(), None);
        for _ in 0..E2E_WAIT_SLOTS {
            assert!(w.hold(a, 1, b"x", t(5)));
        }
        assert!(!w.hold(a, 1, b"x", t(5)), "full");
    }

    #[test]
    fn a_probe_is_found_by_its_index_and_counter_once() {
        let mut p = Probes::default();
        for c in 0..20u64 {
            p.record(9, c, &[c as u8; 200]);
        }
        let mut out = [0u8; PROBE_QUOTE_LEN];
        assert_eq!(p.take(9, 2, &mut out), None, "overwritten");
        assert_eq!(p.take(9, 19, &mut out), Some(PROBE_QUOTE_LEN));
        assert_eq!(out, [19; PROBE_QUOTE_LEN]);
        assert_eq!(p.take(9, 19, &mut out), None, "taken once");
        assert_eq!(p.take(8, 18, &mut out), None, "other session");
    }
}
