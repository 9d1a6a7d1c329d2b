//! The radio medium: who hears whom, loss, latency, per-sender serialization, accounting.

use rand_core::RngCore;

pub use super::counters::{FrameClass, NodeCounters, FRAME_CLASSES};
use super::topology::{LinkParams, Topology};
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, ETH_HEADER_LEN};

/// The MAC of simulator node `i`: `02:00:00` followed by `i` as 24 bits.
pub fn mac_of(i: usize) -> MacAddr {
    MacAddr([0x02, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8])
}

/// The node index a MAC belongs to, if it is one of the first `n` simulator MACs.
pub fn index_of(mac: &MacAddr, n: usize) -> Option<usize> {
    let b = mac.0;
    if b[..3] != [0x02, 0, 0] {
        return None;
    }
    let i = (b[3] as usize) << 16 | (b[4] as usize) << 8 | b[5] as usize;
    (i < n).then_some(i)
}

/// Medium-wide settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediumConfig {
    /// Per-frame radio overhead in bytes (802.11 MAC header, LLC/SNAP, FCS) for airtime.
    pub overhead_bytes: usize,
    /// A frame that would wait longer than this for its sender's radio is dropped.
    pub max_backlog: Duration,
    /// Extra attempts for a lost unicast (802.11 ARQ); 0 = none.
    pub unicast_retries: u8,
}

impl Default for MediumConfig {
    fn default() -> Self {
        MediumConfig {
            overhead_bytes: 36,
            max_backlog: Duration::from_millis(100),
            unicast_retries: 0,
        }
    }
}

/// Why a runtime change to the medium was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MediumError {
    /// No link between the two nodes in the topology.
    #[error("no link from node {from} to node {to}")]
    NoSuchLink {
        /// Sender side.
        from: usize,
        /// Receiver side.
        to: usize,
    },
    /// A loss outside [0, 1].
    #[error("loss {0} is not a probability in [0, 1]")]
    BadLoss(f64),
}

/// The state of one directed link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkState {
    /// Receiving node.
    pub to: usize,
    /// False while cut.
    pub up: bool,
    /// Loss probability.
    pub loss: f64,
    /// Latency after airtime.
    pub latency: Duration,
    /// Bitrate in bit/s.
    pub bitrate_bps: u64,
}

#[derive(Debug, Clone, Copy)]
struct OutLink {
    state: LinkState,
    /// `loss` scaled to u64, compared against a raw RNG draw (no float per frame).
    loss_threshold: u64,
}

/// One scheduled reception of a transmitted frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reception {
    /// Receiving node.
    pub to: usize,
    /// Arrival instant.
    pub at: Instant,
}

/// The shared radio medium of all nodes.
#[derive(Debug, Clone)]
pub struct Medium {
    cfg: MediumConfig,
    out: Vec<Vec<OutLink>>,
    bcast_bitrate: Vec<u64>,
    busy_until: Vec<Instant>,
    counters: Vec<NodeCounters>,
}

impl Medium {
    /// A medium with the topology's links, all up.
    pub fn new(topo: &Topology, cfg: MediumConfig) -> Medium {
        let n = topo.len();
        let mut out: Vec<Vec<OutLink>> = vec![Vec::new(); n];
        for l in topo.links() {
            out[l.a].push(out_link(l.b, &l.params));
            out[l.b].push(out_link(l.a, &l.params));
        }
        out.iter_mut()
            .for_each(|v| v.sort_unstable_by_key(|o| o.state.to));
        let bcast_bitrate = out
            .iter()
            .map(|v| {
                v.iter()
                    .map(|o| o.state.bitrate_bps)
                    .min()
                    .unwrap_or(54_000_000)
            })
            .collect();
        Medium {
            cfg,
            out,
            bcast_bitrate,
            busy_until: vec![Instant::ZERO; n],
            counters: vec![NodeCounters::default(); n],
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// The medium's settings.
    pub fn config(&self) -> &MediumConfig {
        &self.cfg
    }

    /// Airtime of a frame of `len` bytes (after the Ethernet header) at `bitrate_bps`.
    pub fn airtime(&self, len: usize, bitrate_bps: u64) -> Duration {
        let bits = (len + ETH_HEADER_LEN + self.cfg.overhead_bytes) as u64 * 8;
        Duration::from_micros(
            bits.saturating_mul(1_000_000)
                .div_ceil(bitrate_bps.max(1))
                .max(1),
        )
    }

    /// The directed links out of `from` (cut ones included, with `up == false`).
    pub fn links_from(&self, from: usize) -> impl Iterator<Item = &LinkState> {
        self.out.get(from).into_iter().flatten().map(|o| &o.state)
    }

    /// The directed link `from -> to`, if the topology has it.
    pub fn link(&self, from: usize, to: usize) -> Option<&LinkState> {
        self.find(from, to).map(|o| &o.state)
    }

    /// Counters of node `i` (default for an out-of-range index).
    pub fn counters(&self, i: usize) -> NodeCounters {
        self.counters.get(i).cloned().unwrap_or_default()
    }

    /// Counters of every node, by index.
    pub fn all_counters(&self) -> &[NodeCounters] {
        &self.counters
    }

    /// Cuts both directions of the link `a - b`.
    pub fn cut(&mut self, a: usize, b: usize) -> Result<(), MediumError> {
        self.set_up(a, b, false)
    }

    /// Restores both directions of the link `a - b`.
    pub fn heal(&mut self, a: usize, b: usize) -> Result<(), MediumError> {
        self.set_up(a, b, true)
    }

    /// Sets the loss of the directed link `from -> to`.
    pub fn set_loss(&mut self, from: usize, to: usize, loss: f64) -> Result<(), MediumError> {
        if !(0.0..=1.0).contains(&loss) {
            return Err(MediumError::BadLoss(loss));
        }
        let link = self
            .find_mut(from, to)
            .ok_or(MediumError::NoSuchLink { from, to })?;
        let up = link.state.up;
        *link = out_link(
            to,
            &LinkParams {
                loss,
                ..params_of(&link.state)
            },
        );
        link.state.up = up;
        Ok(())
    }

    /// Puts a frame from `src` on the air and appends its receptions to `out`.
    ///
    /// The sender's radio sends one frame at a time: the frame starts when the previous
    /// one ended, and each receiver gets it one link latency after its last bit. Returns
    /// false (and counts a queue drop) when the frame would wait longer than `max_backlog`.
    pub fn transmit(
        &mut self,
        now: Instant,
        src: usize,
        dst: MacAddr,
        frame: &[u8],
        rng: &mut impl RngCore,
        out: &mut Vec<Reception>,
    ) -> bool {
        let Some(busy) = self.busy_until.get(src).copied() else {
            return false;
        };
        let start = busy.max(now);
        if start - now > self.cfg.max_backlog {
            self.counters[src].tx_queue_drops += 1;
            return false;
        }
        let class = FrameClass::of(frame) as usize;
        let on_air = (frame.len() + ETH_HEADER_LEN) as u64;
        self.counters[src].sent_frames[class] += 1;
        self.counters[src].sent_bytes[class] += on_air;
        let end = if dst.is_broadcast() {
            self.broadcast(start, src, frame.len(), rng, out)
        } else {
            self.unicast(start, src, dst, frame.len(), rng, out)
        };
        self.busy_until[src] = end;
        for r in out.iter() {
            self.counters[r.to].rx_frames += 1;
            self.counters[r.to].rx_bytes += on_air;
        }
        true
    }

    /// Every node in range hears the frame, each with its link's independent loss.
    fn broadcast(
        &mut self,
        start: Instant,
        src: usize,
        len: usize,
        rng: &mut impl RngCore,
        out: &mut Vec<Reception>,
    ) -> Instant {
        let end = start + self.airtime(len, self.bcast_bitrate[src]);
        for link in self.out[src].iter().filter(|l| l.state.up) {
            if lost(link, rng) {
                self.counters[link.state.to].rx_lost += 1;
            } else {
                out.push(Reception {
                    to: link.state.to,
                    at: end + link.state.latency,
                });
            }
        }
        end
    }

    /// Only the node owning `dst` hears the frame, if a live link leads to it; a lost
    /// attempt is retried up to `unicast_retries` times, each costing airtime.
    fn unicast(
        &mut self,
        start: Instant,
        src: usize,
        dst: MacAddr,
        len: usize,
        rng: &mut impl RngCore,
        out: &mut Vec<Reception>,
    ) -> Instant {
        let link = index_of(&dst, self.out.len())
            .and_then(|to| self.find(src, to))
            .filter(|l| l.state.up)
            .copied();
        let Some(link) = link else {
            self.counters[src].tx_unreachable += 1;
            return start + self.airtime(len, self.bcast_bitrate[src]);
        };
        let air = self.airtime(len, link.state.bitrate_bps);
        let mut t = start;
        for _ in 0..=self.cfg.unicast_retries {
            t += air;
            if !lost(&link, rng) {
                out.push(Reception {
                    to: link.state.to,
                    at: t + link.state.latency,
                });
                return t;
            }
        }
        self.counters[link.state.to].rx_lost += 1;
        t
    }

    fn set_up(&mut self, a: usize, b: usize, up: bool) -> Result<(), MediumError> {
        self.find(a, b)
            .ok_or(MediumError::NoSuchLink { from: a, to: b })?;
        self.find(b, a)
            .ok_or(MediumError::NoSuchLink { from: b, to: a })?;
        for (x, y) in [(a, b), (b, a)] {
            if let Some(l) = self.find_mut(x, y) {
                l.state.up = up;
            }
        }
        Ok(())
    }

    fn find(&self, from: usize, to: usize) -> Option<&OutLink> {
        let v = self.out.get(from)?;
        v.binary_search_by_key(&to, |o| o.state.to)
            .ok()
            .map(|i| &v[i])
    }

    fn find_mut(&mut self, from: usize, to: usize) -> Option<&mut OutLink> {
        let v = self.out.get_mut(from)?;
        let i = v.binary_search_by_key(&to, |o| o.state.to).ok()?;
        v.get_mut(i)
    }
}

fn out_link(to: usize, p: &LinkParams) -> OutLink {
    OutLink {
        state: LinkState {
            to,
            up: true,
            loss: p.loss,
            latency: p.latency,
            bitrate_bps: p.bitrate_bps,
        },
        loss_threshold: (p.loss * 18_446_744_073_709_551_616.0) as u64,
    }
}

fn params_of(s: &LinkState) -> LinkParams {
    LinkParams {
        loss: s.loss,
        latency: s.latency,
        bitrate_bps: s.bitrate_bps,
    }
}

/// Draws whether a frame on a link with this loss is lost.
fn lost(link: &OutLink, rng: &mut impl RngCore) -> bool {
    if link.state.loss <= 0.0 {
        false
    } else if link.state.loss >= 1.0 {
        true
    } else {
        rng.next_u64() < link.loss_threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn medium(spec: &str) -> Medium {
        Medium::new(&spec.parse().unwrap(), MediumConfig::default())
    }

    fn send(
        m: &mut Medium,
        now: Instant,
        src: usize,
        dst: MacAddr,
        frame: &[u8],
        rng: &mut ChaCha20Rng,
    ) -> Vec<Reception> {
        let mut out = Vec::new();
        assert!(m.transmit(now, src, dst, frame, rng, &mut out));
        out
    }

    #[test]
    fn macs_map_to_indices_and_back() {
        assert_eq!(mac_of(0x01_02_03).0, [2, 0, 0, 1, 2, 3]);
        for i in [0, 1, 255, 256, 99_999] {
            assert_eq!(index_of(&mac_of(i), 100_000), Some(i));
        }
        assert_eq!(index_of(&mac_of(10), 10), None);
        assert_eq!(index_of(&MacAddr::BROADCAST, 10), None);
        assert_eq!(index_of(&MacAddr([0x12, 0, 0, 0, 0, 1]), 10), None);
    }

    #[test]
    fn broadcast_reaches_exactly_the_neighbours_in_range() {
        let mut m = medium("grid:3x3");
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let frame = [0x16u8; 100];
        let air = m.airtime(100, 54_000_000);
        let out = send(
            &mut m,
            Instant::ZERO,
            4,
            MacAddr::BROADCAST,
            &frame,
            &mut rng,
        );
        let at = Instant::ZERO + air + Duration::from_millis(1);
        assert_eq!(
            out.iter().map(|r| (r.to, r.at)).collect::<Vec<_>>(),
            vec![(1, at), (3, at), (5, at), (7, at)]
        );
        let corner = send(
            &mut m,
            Instant::ZERO,
            0,
            MacAddr::BROADCAST,
            &frame,
            &mut rng,
        );
        assert_eq!(corner.iter().map(|r| r.to).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(m.counters(1).rx_frames, 2);
        assert_eq!(m.counters(4).rx_frames, 0);
    }

    #[test]
    fn unicast_reaches_only_the_addressed_neighbour() {
        let mut m = medium("line:3");
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let out = send(&mut m, Instant::ZERO, 1, mac_of(2), &[0x15; 1500], &mut rng);
        assert_eq!(out.iter().map(|r| r.to).collect::<Vec<_>>(), vec![2]);
        // Node 2 is not in node 0's range: the frame costs airtime and reaches nobody.
        assert!(send(&mut m, Instant::ZERO, 0, mac_of(2), &[0x15; 10], &mut rng).is_empty());
        assert_eq!(m.counters(0).tx_unreachable, 1);
        assert_eq!(m.counters(0).sent_frames[FrameClass::Unicast as usize], 1);
    }

    #[test]
    fn loss_follows_the_configured_probability_and_the_seed() {
        let count = |seed| {
            let mut t: Topology = "line:2".parse().unwrap();
            t.set_all_loss(0.3).unwrap();
            let mut m = Medium::new(&t, MediumConfig::default());
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut got = 0;
            for k in 0..20_000u64 {
                let now = Instant::from_millis(k);
                got += send(&mut m, now, 0, MacAddr::BROADCAST, &[0x11; 6], &mut rng).len();
            }
            assert_eq!(m.counters(1).rx_lost + got as u64, 20_000);
            got
        };
        let a = count(42);
        let ratio = a as f64 / 20_000.0;
        assert!((ratio - 0.7).abs() < 0.015, "delivered {ratio}");
        assert_eq!(a, count(42));
        assert_ne!(a, count(43));
    }

    #[test]
    fn a_sender_serializes_its_frames_and_drops_beyond_the_backlog() {
        let mut m = medium("line:2");
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        assert_eq!(m.airtime(1500, 54_000_000), Duration::from_micros(230));
        let first = send(&mut m, Instant::ZERO, 0, mac_of(1), &[0x15; 1500], &mut rng);
        let second = send(&mut m, Instant::ZERO, 0, mac_of(1), &[0x15; 1500], &mut rng);
        assert_eq!(first[0].at, Instant::from_micros(230 + 1000));
        assert_eq!(second[0].at, Instant::from_micros(460 + 1000));
        // 100 ms of backlog is about 434 full frames; the rest are dropped.
        let mut out = Vec::new();
        let sent = (0..1000)
            .filter(|_| {
                m.transmit(
                    Instant::ZERO,
                    0,
                    mac_of(1),
                    &[0x15; 1500],
                    &mut rng,
                    &mut out,
                )
            })
            .count();
        assert_eq!(sent, 433);
        assert_eq!(m.counters(0).tx_queue_drops, 1000 - 433);
    }

    #[test]
    fn cut_heal_and_set_loss_change_delivery() {
        let mut m = medium("line:3");
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let hear = |m: &mut Medium, rng: &mut ChaCha20Rng, src| {
            send(m, Instant::ZERO, src, MacAddr::BROADCAST, &[0x16; 20], rng)
                .iter()
                .map(|r| r.to)
                .collect::<Vec<_>>()
        };
        m.cut(1, 2).unwrap();
        assert_eq!(hear(&mut m, &mut rng, 1), vec![0]);
        assert!(hear(&mut m, &mut rng, 2).is_empty());
        m.set_loss(1, 2, 0.5).unwrap();
        assert!(
            !m.link(1, 2).unwrap().up,
            "changing loss must not heal a cut"
        );
        m.heal(2, 1).unwrap();
        m.set_loss(1, 2, 1.0).unwrap();
        assert_eq!(hear(&mut m, &mut rng, 1), vec![0]);
        assert_eq!(hear(&mut m, &mut rng, 2), vec![1]);
        assert_eq!(m.cut(0, 2), Err(MediumError::NoSuchLink { from: 0, to: 2 }));
        assert_eq!(m.set_loss(0, 1, 2.0), Err(MediumError::BadLoss(2.0)));
    }

    #[test]
    fn frames_are_counted_by_class() {
        let mut m = medium("line:2");
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for (frame, dst) in [
            (&[0x11u8; 6][..], MacAddr::BROADCAST),
            (&[0x13; 100], mac_of(1)),
            (&[0x15; 1500], mac_of(1)),
            (&[0x16; 50], MacAddr::BROADCAST),
            (&[0x42; 3], MacAddr::BROADCAST),
        ] {
            send(&mut m, Instant::ZERO, 0, dst, frame, &mut rng);
        }
        let c = m.counters(0);
        assert_eq!(c.sent_frames, [1, 1, 1, 1, 1]);
        assert_eq!(c.sent_bytes, [20, 114, 1514, 64, 17]);
        assert_eq!(c.control_bytes(), 20 + 114 + 64);
        assert_eq!(c.total_sent_bytes(), 20 + 114 + 1514 + 64 + 17);
        assert_eq!(m.counters(1).rx_bytes, c.total_sent_bytes());
        assert_eq!(FrameClass::of(&[]), FrameClass::Other);
    }
}
