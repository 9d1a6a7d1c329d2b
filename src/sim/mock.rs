//! `FloodHost`: a trivial routing host that exercises the simulator without the real node.
//!
//! Every node floods `(origin, seq, hops)` for itself once per `period`; a receiver
//! accepts an entry with a newer seq, or the same seq and fewer hops, takes the sender as
//! next hop and re-floods it, aggregated up to 166 entries per broadcast frame. Along next
//! hops (seq, -hops) strictly increases, so routes never loop. IP packets travel in
//! unicast frames `0x15 | ttl | dst index (u32) | packet` along those next hops.
//!
//! Addresses: node id = "mock" | index (u32) | zeros; overlay address = fd00::index.

use std::collections::VecDeque;
use std::net::Ipv6Addr;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::host::SimHost;
use crate::node::{IfaceId, Transmit};
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, NodeId, MAX_FRAME_LEN};

/// Bytes of one flood entry: origin u32, seq u32, hops u8.
const ENTRY_LEN: usize = 9;
/// Entries in one flood frame.
const ENTRIES_PER_FRAME: usize = (MAX_FRAME_LEN - 1) / ENTRY_LEN;
/// Header of a data frame: type, ttl, destination index.
const DATA_HEADER_LEN: usize = 6;
/// Most frames (or packets) a host queues; more are dropped and counted.
const QUEUE_CAP: usize = 64;
/// Initial ttl of a data frame.
const DATA_TTL: u8 = 64;

/// Settings of every `FloodHost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodConfig {
    /// Time between a node's own floods.
    pub period: Duration,
    /// Longest a route change waits before it is re-flooded (aggregation).
    pub aggregate: Duration,
    /// Most origins a host keeps routes for.
    pub max_nodes: usize,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            period: Duration::from_secs(1),
            aggregate: Duration::from_millis(50),
            max_nodes: 100_000,
        }
    }
}

/// Drop counters of a `FloodHost`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloodDrops {
    /// Frames too short or of an unknown type.
    pub malformed: u64,
    /// Entries for origins beyond `max_nodes`.
    pub table_full: u64,
    /// Packets with no route to their destination.
    pub no_route: u64,
    /// Frames or packets dropped because a queue was full.
    pub queue_full: u64,
    /// Data frames whose ttl ran out.
    pub ttl_expired: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Route {
    valid: bool,
    pending: bool,
    seq: u32,
    hops: u8,
    next_hop: MacAddr,
}

/// The flooding mock host (see the module doc).
#[derive(Debug)]
pub struct FloodHost {
    index: u32,
    epoch: u32,
    cfg: FloodConfig,
    rng: ChaCha20Rng,
    counter: u32,
    next_originate: Option<Instant>,
    flush_at: Option<Instant>,
    flushing: bool,
    routes: Vec<Route>,
    dirty: VecDeque<u32>,
    data_out: VecDeque<(MacAddr, heapless::Vec<u8, MAX_FRAME_LEN>)>,
    deliver: VecDeque<heapless::Vec<u8, MAX_FRAME_LEN>>,
    /// Drop counters.
    pub drops: FloodDrops,
}

/// The node id of mock node `i`.
pub fn mock_node_id(i: usize) -> NodeId {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(b"mock");
    id[4..8].copy_from_slice(&(i as u32).to_be_bytes());
    NodeId(id)
}

/// The overlay address of mock node `i`.
pub fn mock_addr(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, (i >> 16) as u16, i as u16)
}

/// A factory building `FloodHost`s whose RNGs derive from `seed`, index and epoch.
pub fn flood_factory(
    seed: u64,
    cfg: FloodConfig,
) -> impl FnMut(usize, u32, MacAddr, Instant) -> FloodHost {
    move |index, epoch, _mac, _now| FloodHost::new(index, epoch, seed, cfg)
}

impl FloodHost {
    /// Host of node `index` in restart `epoch`.
    pub fn new(index: usize, epoch: u32, seed: u64, cfg: FloodConfig) -> FloodHost {
        let mix =
            seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(epoch) << 48;
        FloodHost {
            index: index as u32,
            epoch,
            cfg,
            rng: ChaCha20Rng::seed_from_u64(mix),
            counter: 0,
            next_originate: None,
            flush_at: None,
            flushing: false,
            routes: Vec::new(),
            dirty: VecDeque::new(),
            data_out: VecDeque::new(),
            deliver: VecDeque::new(),
            drops: FloodDrops::default(),
        }
    }

    /// This host's restart epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// A uniform duration in [lo, hi).
    fn jitter(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = (hi - lo).as_micros().max(1);
        lo + Duration::from_micros(self.rng.next_u64() % span)
    }

    fn route_mut(&mut self, origin: u32) -> Option<&mut Route> {
        let i = origin as usize;
        if i >= self.cfg.max_nodes {
            self.drops.table_full += 1;
            return None;
        }
        if self.routes.len() <= i {
            self.routes.resize(i + 1, Route::default());
        }
        self.routes.get_mut(i)
    }

    /// Takes `(seq, hops)` for `origin` via `via` if it is better; queues a re-flood.
    fn offer(&mut self, now: Instant, origin: u32, seq: u32, hops: u8, via: MacAddr) {
        let Some(r) = self.route_mut(origin) else {
            return;
        };
        if r.valid && !(seq > r.seq || (seq == r.seq && hops < r.hops)) {
            return;
        }
        *r = Route {
            valid: true,
            pending: r.pending,
            seq,
            hops,
            next_hop: via,
        };
        if !r.pending {
            r.pending = true;
            self.dirty.push_back(origin);
        }
        if self.flush_at.is_none() && !self.flushing {
            let half = self.cfg.aggregate.mul_div(1, 2);
            self.flush_at = Some(now + self.jitter(half, self.cfg.aggregate));
        }
    }

    fn on_flood(&mut self, now: Instant, src: MacAddr, frame: &[u8]) {
        for e in frame.get(1..).unwrap_or(&[]).chunks_exact(ENTRY_LEN) {
            let origin = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            let seq = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
            if origin != self.index {
                self.offer(now, origin, seq, e[8].saturating_add(1), src);
            }
        }
    }

    fn on_data(&mut self, frame: &[u8]) {
        let (Some(&ttl), Some(dst)) = (frame.get(1), frame.get(2..DATA_HEADER_LEN)) else {
            self.drops.malformed += 1;
            return;
        };
        let dst = u32::from_be_bytes([dst[0], dst[1], dst[2], dst[3]]);
        let packet = &frame[DATA_HEADER_LEN..];
        if dst == self.index {
            if self.deliver.len() >= QUEUE_CAP {
                self.drops.queue_full += 1;
                return;
            }
            if let Ok(p) = heapless::Vec::from_slice(packet) {
                self.deliver.push_back(p);
            }
        } else if ttl == 0 {
            self.drops.ttl_expired += 1;
        } else {
            self.forward(dst, ttl - 1, packet);
        }
    }

    fn forward(&mut self, dst: u32, ttl: u8, packet: &[u8]) {
        let Some(via) = self
            .routes
            .get(dst as usize)
            .filter(|r| r.valid)
            .map(|r| r.next_hop)
        else {
            self.drops.no_route += 1;
            return;
        };
        if self.data_out.len() >= QUEUE_CAP {
            self.drops.queue_full += 1;
            return;
        }
        let mut frame = heapless::Vec::new();
        let ok = frame.extend_from_slice(&[0x15, ttl]).is_ok()
            && frame.extend_from_slice(&dst.to_be_bytes()).is_ok()
            && frame.extend_from_slice(packet).is_ok();
        if ok {
            self.data_out.push_back((via, frame));
        } else {
            self.drops.malformed += 1;
        }
    }

    /// Writes one aggregated flood frame of pending entries into `buf`.
    fn emit_flood(&mut self, buf: &mut [u8]) -> Option<usize> {
        let first = buf.first_mut()?;
        *first = 0x16;
        let mut len = 1;
        while len + ENTRY_LEN <= buf.len().min(1 + ENTRIES_PER_FRAME * ENTRY_LEN) {
            let Some(origin) = self.dirty.pop_front() else {
                break;
            };
            let Some(r) = self.routes.get_mut(origin as usize) else {
                continue;
            };
            r.pending = false;
            let e = &mut buf[len..len + ENTRY_LEN];
            e[..4].copy_from_slice(&origin.to_be_bytes());
            e[4..8].copy_from_slice(&r.seq.to_be_bytes());
            e[8] = r.hops;
            len += ENTRY_LEN;
        }
        (len > 1).then_some(len)
    }
}

impl SimHost for FloodHost {
    fn node_id(&self) -> NodeId {
        mock_node_id(self.index as usize)
    }

    fn overlay_addr(&self) -> Ipv6Addr {
        mock_addr(self.index as usize)
    }

    fn handle_frame(&mut self, now: Instant, _iface: IfaceId, src: MacAddr, frame: &[u8]) {
        match frame.first() {
            Some(0x16) => self.on_flood(now, src, frame),
            Some(0x15) => self.on_data(frame),
            _ => self.drops.malformed += 1,
        }
    }

    fn handle_ip_packet(&mut self, _now: Instant, packet: &[u8]) {
        let Some(dst) = packet.get(24..40) else {
            self.drops.malformed += 1;
            return;
        };
        let octets: [u8; 16] = dst.try_into().unwrap_or([0; 16]);
        let addr = Ipv6Addr::from(octets);
        let seg = addr.segments();
        if seg[..6] != [0xfd00, 0, 0, 0, 0, 0] {
            self.drops.no_route += 1;
            return;
        }
        let dst = u32::from(seg[6]) << 16 | u32::from(seg[7]);
        self.forward(dst, DATA_TTL, packet);
    }

    fn handle_timeout(&mut self, now: Instant) {
        let Some(next) = self.next_originate else {
            self.next_originate = Some(now + self.jitter(Duration::ZERO, self.cfg.period));
            return;
        };
        if now >= next {
            self.counter = self.counter.wrapping_add(1);
            let seq = self.epoch << 20 | (self.counter & 0xf_ffff);
            let me = self.index;
            self.offer(now, me, seq, 0, MacAddr::default());
            let (lo, hi) = (
                self.cfg.period.mul_div(9, 10),
                self.cfg.period.mul_div(11, 10),
            );
            self.next_originate = Some(now + self.jitter(lo, hi));
        }
        if self.flush_at.is_some_and(|t| now >= t) {
            self.flush_at = None;
            self.flushing = true;
        }
    }

    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some((dst, frame)) = self.data_out.pop_front() {
            let out = buf.get_mut(..frame.len())?;
            out.copy_from_slice(&frame);
            return Some(Transmit {
                iface: IfaceId(0),
                dst,
                len: frame.len(),
            });
        }
        if !self.flushing {
            return None;
        }
        match self.emit_flood(buf) {
            Some(len) => Some(Transmit {
                iface: IfaceId(0),
                dst: MacAddr::BROADCAST,
                len,
            }),
            None => {
                self.flushing = false;
                None
            }
        }
    }

    fn poll_deliver(&mut self, buf: &mut [u8]) -> Option<usize> {
        let p = self.deliver.pop_front()?;
        buf.get_mut(..p.len())?.copy_from_slice(&p);
        Some(p.len())
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self.next_originate {
            None => Some(Instant::ZERO),
            Some(t) => Some(self.flush_at.map_or(t, |f| f.min(t))),
        }
    }

    fn next_hop(&self, dst: &NodeId) -> Option<MacAddr> {
        if dst.0[..4] != *b"mock" {
            return None;
        }
        let i = u32::from_be_bytes([dst.0[4], dst.0[5], dst.0[6], dst.0[7]]);
        self.routes
            .get(i as usize)
            .filter(|r| r.valid && i != self.index)
            .map(|r| r.next_hop)
    }
}
