//! A malicious member for the simulator: an honest `Node` (it completes handshakes, holds
//! sessions and a group key, forwards like everybody else) wrapped in a `SimHost` that
//! also injects crafted messages under its own group key, re-sends raw frames it heard or
//! sent, and can blackhole data it is asked to forward or never relay OGMs.

use std::collections::VecDeque;
use std::net::Ipv6Addr;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veilmesh::crypto::ChainSigner;
use veilmesh::node::{IfaceId, Node, NodeConfig, Transmit};
use veilmesh::sim::{node_factory, SimHost};
use veilmesh::time::{Duration, Instant};
use veilmesh::wire::{MacAddr, Message, NodeId, OgmRepr, ANNOUNCE_LEN, OGM_BODY_LEN, TAG_LEN};

/// Most raw frames the adversary records.
pub const MAX_CAPTURED: usize = 512;

/// What the adversary injects on its schedule.
pub enum Attack {
    /// Nothing: the node behaves honestly (apart from `blackhole` / `quiet`).
    None,
    /// OGMs claiming to come from `victim` with newer seqnos and random chain elements.
    ForgeOgms {
        /// The originator impersonated.
        victim: NodeId,
    },
    /// Genuine OGMs of `victim` for seqnos the mesh has long moved past, metric 0.
    ReplayOgms {
        /// The originator replayed.
        victim: NodeId,
        /// The victim's chain (only its already published elements are used).
        chain: ChainSigner,
    },
    /// Control: genuine OGMs of `victim` for the *next* seqno, metric 0. Needs the
    /// victim's chain secret, which no real adversary has.
    GenuineFreshOgms {
        /// The originator.
        victim: NodeId,
        /// The victim's chain.
        chain: ChainSigner,
    },
    /// V's *current* OGM (its element was on the air) again, metric 0: the metric lie of
    /// a relay, out of scope for the protocol (documented, not defended).
    RepeatCurrentOgm {
        /// The originator.
        victim: NodeId,
        /// The victim's chain (only the element already published is used).
        chain: ChainSigner,
    },
    /// These announcements every period, each round followed by an OGM for the next
    /// seqno of `ogms` (victim, epoch, chain), if given: what would win routes if one of
    /// the announcements (anchoring that chain for the victim) were accepted.
    Announces {
        /// The announcements.
        anns: Vec<[u8; ANNOUNCE_LEN]>,
        /// Victim, epoch and the chain the OGMs are signed with.
        ogms: Option<(NodeId, u32, ChainSigner)>,
    },
}

/// A raw frame the adversary heard or sent.
#[derive(Clone)]
pub struct Captured {
    /// When.
    pub at: Instant,
    /// Who sent it (the adversary's own MAC for frames it sent).
    pub src: MacAddr,
    /// Where it went.
    pub dst: MacAddr,
    /// Bytes after the Ethernet header.
    pub bytes: Vec<u8>,
}

/// The malicious part of a host.
pub struct Adversary {
    /// What to inject.
    pub attack: Attack,
    /// First injection.
    pub start: Instant,
    /// No injection at or after this.
    pub stop: Instant,
    /// Time between injections.
    pub period: Duration,
    /// Drop every data frame the node forwards (keep everything else).
    pub blackhole: bool,
    /// Never send OGM frames (own or relayed): neighbours hold no advertisement from us.
    pub quiet: bool,
    /// Record frames heard and sent within this window.
    pub capture: Option<(Instant, Instant)>,
    /// Re-send each recorded frame this long after it was recorded, from our own MAC.
    pub resend_after: Option<Duration>,
    /// Messages injected so far.
    pub injected: u64,
    /// Injection rounds so far.
    pub rounds: u64,
    /// Data frames dropped by `blackhole`.
    pub blackholed: u64,
    /// Raw frames re-sent.
    pub resent: u64,
    /// Recorded frames.
    pub captured: Vec<Captured>,
    mac: MacAddr,
    next: Instant,
    rng: ChaCha20Rng,
    victim_latest: Option<(u32, u32, Instant)>,
    resend: VecDeque<(Instant, MacAddr, Vec<u8>)>,
}

impl Adversary {
    /// An adversary running `attack` every `period` from `start` until `stop`.
    pub fn new(attack: Attack, start: Instant, stop: Instant, period: Duration) -> Self {
        Adversary {
            attack,
            start,
            stop,
            period,
            blackhole: false,
            quiet: false,
            capture: None,
            resend_after: None,
            injected: 0,
            rounds: 0,
            blackholed: 0,
            resent: 0,
            captured: Vec::new(),
            mac: MacAddr::default(),
            next: start,
            rng: ChaCha20Rng::seed_from_u64(0xbad),
            victim_latest: None,
            resend: VecDeque::new(),
        }
    }

    fn wake(&self) -> Option<Instant> {
        let inject = (self.next < self.stop).then_some(self.next);
        let resend = self.resend.front().map(|r| r.0);
        match (inject, resend) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn capturing(&self, now: Instant) -> bool {
        self.capture.is_some_and(|(a, b)| a <= now && now < b) && self.captured.len() < MAX_CAPTURED
    }

    fn record(&mut self, now: Instant, src: MacAddr, dst: MacAddr, bytes: &[u8]) {
        if !self.capturing(now) {
            return;
        }
        self.captured.push(Captured {
            at: now,
            src,
            dst,
            bytes: bytes.to_vec(),
        });
        if let Some(d) = self.resend_after {
            // Re-sent from our MAC: a broadcast stays a broadcast, a unicast to us goes
            // back to its sender, one we sent goes to its destination again.
            let to = if dst.is_broadcast() || src == self.mac {
                dst
            } else {
                src
            };
            self.resend.push_back((now + d, to, bytes.to_vec()));
        }
    }

    /// The victim's newest (epoch, seqno) as our honest node sees it, and since when.
    fn track(&mut self, now: Instant, node: &Node, victim: &NodeId) -> Option<(u32, u32, Instant)> {
        let latest = node.routing().route(victim)?.latest;
        match self.victim_latest {
            Some((e, s, _)) if (e, s) == (latest.epoch, latest.seqno) => {}
            _ => self.victim_latest = Some((latest.epoch, latest.seqno, now)),
        }
        self.victim_latest
    }

    /// The messages of one injection.
    fn craft(&mut self, now: Instant, node: &Node) -> Vec<OgmOrAnn> {
        let mut out = Vec::new();
        match &self.attack {
            Attack::None => {}
            Attack::ForgeOgms { victim } => {
                let victim = *victim;
                let Some((epoch, seq, _)) = self.track(now, node, &victim) else {
                    return out;
                };
                // Next seqnos (checked within MAX_CHAIN_GAP), a far jump (needs a
                // resync), beyond the chain (needs a newer announcement), next epoch.
                for (e, s) in [
                    (epoch, seq + 1),
                    (epoch, seq + 2),
                    (epoch, seq + 100),
                    (epoch, seq + 1000),
                    (epoch, seq + 5000),
                    (epoch + 1, 1),
                ] {
                    let mut chain = [0u8; 16];
                    self.rng.fill_bytes(&mut chain);
                    out.push(OgmOrAnn::Ogm(ogm(victim, e, s, chain)));
                }
            }
            Attack::ReplayOgms { victim, chain } => {
                let (victim, chain) = (*victim, chain.clone());
                let Some((epoch, seq, since)) = self.track(now, node, &victim) else {
                    return out;
                };
                // Only OGMs the whole mesh has had something newer than for a while: the
                // current one with a lower metric would be the (out of scope) metric lie.
                if now.saturating_since(since) < Duration::from_secs(2) {
                    return out;
                }
                for s in seq.saturating_sub(8).max(1)..seq {
                    if let Ok(elem) = chain.element(s) {
                        out.push(OgmOrAnn::Ogm(ogm(victim, epoch, s, elem)));
                    }
                }
            }
            Attack::GenuineFreshOgms { victim, chain } => {
                let (victim, chain) = (*victim, chain.clone());
                let Some((epoch, seq, _)) = self.track(now, node, &victim) else {
                    return out;
                };
                if let Ok(elem) = chain.element(seq + 1) {
                    out.push(OgmOrAnn::Ogm(ogm(victim, epoch, seq + 1, elem)));
                }
            }
            Attack::RepeatCurrentOgm { victim, chain } => {
                let (victim, chain) = (*victim, chain.clone());
                let Some((epoch, seq, _)) = self.track(now, node, &victim) else {
                    return out;
                };
                if let Ok(elem) = chain.element(seq) {
                    out.push(OgmOrAnn::Ogm(ogm(victim, epoch, seq, elem)));
                }
            }
            Attack::Announces { anns, ogms } => {
                out.extend(anns.iter().map(|a| OgmOrAnn::Ann(*a)));
                if let Some((victim, epoch, chain)) = ogms {
                    let seq = self.rounds as u32 + 1;
                    if let Ok(elem) = chain.element(seq) {
                        out.push(OgmOrAnn::Ogm(ogm(*victim, *epoch, seq, elem)));
                    }
                }
            }
        }
        out
    }
}

/// One crafted message.
enum OgmOrAnn {
    Ogm(OgmRepr),
    Ann([u8; ANNOUNCE_LEN]),
}

fn ogm(node: NodeId, epoch: u32, seqno: u32, chain: [u8; 16]) -> OgmRepr {
    OgmRepr {
        node,
        epoch,
        seqno,
        metric: 0,
        ttl: 64,
        flags: 0,
        chain,
    }
}

/// A simulated host: an honest node, optionally with an adversary around it.
pub struct Host {
    /// The protocol node.
    pub node: Node,
    /// The malicious part, if this host is the adversary.
    pub adv: Option<Adversary>,
    out: VecDeque<(MacAddr, Vec<u8>)>,
}

impl Host {
    /// Move everything the node wants to send into our queue, through the adversary's
    /// filters (blackhole, quiet) and recorder.
    fn pump(&mut self, now: Instant) {
        let mut buf = vec![0u8; 1500];
        loop {
            let control_before = self.node.stats().unicast_control_bytes_out;
            let Some(tx) = self.node.poll_transmit(&mut buf) else {
                break;
            };
            let bytes = &buf[..tx.len];
            if let Some(adv) = self.adv.as_mut() {
                // A unicast frame the node did not count as control carries data.
                let unicast = !tx.dst.is_broadcast() && bytes.first() == Some(&0x15);
                let control = self.node.stats().unicast_control_bytes_out != control_before;
                if adv.blackhole && unicast && !control {
                    adv.blackholed += 1;
                    continue;
                }
                let broadcast = tx.dst.is_broadcast() && bytes.first() == Some(&0x16);
                if adv.quiet && broadcast && tx.len >= MIN_OGM_FRAME {
                    continue;
                }
                let own = adv.mac;
                adv.record(now, own, tx.dst, bytes);
            }
            self.out.push_back((tx.dst, bytes.to_vec()));
        }
    }

    fn tick(&mut self, now: Instant) {
        self.pump(now);
        let Some(adv) = self.adv.as_mut() else {
            return;
        };
        if now < adv.next || now >= adv.stop {
            return;
        }
        while adv.next <= now {
            adv.next += adv.period;
        }
        let items = adv.craft(now, &self.node);
        adv.rounds += 1;
        // As many messages per frame as fit; announcements 159 bytes, OGMs 47.
        for chunk in items.chunks(8) {
            let msgs: Vec<Message<'_>> = chunk
                .iter()
                .map(|i| match i {
                    OgmOrAnn::Ogm(o) => Message::Ogm(*o),
                    OgmOrAnn::Ann(a) => Message::Announce(a),
                })
                .collect();
            if self.node.broadcast_messages(IfaceId(0), &msgs) {
                adv.injected += msgs.len() as u64;
            }
        }
        // Injected frames bypass the filters (they are ours, whatever their size).
        let mut buf = vec![0u8; 1500];
        while let Some(tx) = self.node.poll_transmit(&mut buf) {
            self.out.push_back((tx.dst, buf[..tx.len].to_vec()));
        }
    }
}

/// Smallest broadcast frame carrying an OGM: header, one OGM message, tag.
const MIN_OGM_FRAME: usize = 13 + 3 + OGM_BODY_LEN + TAG_LEN;

impl SimHost for Host {
    fn node_id(&self) -> NodeId {
        self.node.node_id()
    }

    fn overlay_addr(&self) -> Ipv6Addr {
        self.node.overlay_ipv6()
    }

    fn handle_frame(&mut self, now: Instant, iface: IfaceId, src: MacAddr, frame: &[u8]) {
        if let Some(adv) = self.adv.as_mut() {
            // Handshake and unicast frames reach us only if addressed to us.
            let to_us = matches!(frame.first(), Some(0x12..=0x15));
            let dst = if to_us { adv.mac } else { MacAddr::BROADCAST };
            adv.record(now, src, dst, frame);
        }
        self.node.handle_frame(now, iface, src, frame);
        self.pump(now);
    }

    fn handle_ip_packet(&mut self, now: Instant, packet: &[u8]) {
        self.node.handle_ip_packet(now, packet);
        self.pump(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.node.poll_timeout().is_some_and(|t| t <= now) {
            self.node.handle_timeout(now);
        }
        self.tick(now);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some(adv) = self.adv.as_mut() {
            if adv.resend.front().is_some_and(|r| r.0 <= now) {
                let (_, dst, bytes) = adv.resend.pop_front()?;
                adv.resent += 1;
                buf.get_mut(..bytes.len())?.copy_from_slice(&bytes);
                return Some(transmit(dst, bytes.len()));
            }
        }
        let (dst, bytes) = self.out.pop_front()?;
        buf.get_mut(..bytes.len())?.copy_from_slice(&bytes);
        Some(transmit(dst, bytes.len()))
    }

    fn poll_deliver(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.node.poll_deliver(buf)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let node = self.node.poll_timeout();
        match (node, self.adv.as_ref().and_then(Adversary::wake)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn next_hop(&self, dst: &NodeId) -> Option<MacAddr> {
        self.node.next_hop(dst).map(|(_, mac)| mac)
    }

    fn control_bytes_sent(&self) -> u64 {
        self.node.stats().unicast_control_bytes_out
    }
}

fn transmit(dst: MacAddr, len: usize) -> Transmit {
    Transmit {
        iface: IfaceId(0),
        dst,
        len,
    }
}

/// A factory of hosts: node `adversary` gets the adversary `make_adv()` builds (again on a
/// restart), every other node is honest.
pub fn host_factory(
    seed: u64,
    adversary: usize,
    mut make_adv: impl FnMut() -> Adversary + 'static,
) -> impl FnMut(usize, u32, MacAddr, Instant) -> Host {
    let mut nodes = node_factory(seed, NodeConfig::default());
    move |index, epoch, mac, now| Host {
        node: nodes(index, epoch, mac, now),
        adv: (index == adversary).then(|| Adversary { mac, ..make_adv() }),
        out: VecDeque::new(),
    }
}
