//! The structure-aware node harness: one real `Node`, and a deterministic peer that this
//! harness plays with the crate's public crypto (handshake, session keys, group key, hash
//! chain, announcements), so fuzzed plaintext is sealed under the live session and gets
//! past decryption.
//!
//! Set-up (every run): the node starts with a fixed identity and seed on interface 0; the
//! peer completes a Noise handshake with it and sends its group key and announcement. Then
//! the input is read as a sequence of actions:
//!
//! ```text
//! input   = config-flags u8, action*
//! action  = op u8 (taken mod OPS), then per op:
//!   0 frame        src u8, len u16 LE, bytes     any bytes as a frame from a MAC
//!   1 unicast      flags u8, len u16 LE, bytes   plaintext sealed under the peer's session
//!   2 unicast-msgs len u16 LE, bytes             `arbitrary` messages, sealed as 1
//!   3 broadcast    flags u8, len u16 LE, bytes   plaintext sealed under the peer's group key
//!   4 bcast-msgs   len u16 LE, bytes             `arbitrary` messages, sealed as 3
//!   5 ip           len u16 LE, bytes             `handle_ip_packet`
//!   6 ip-udp       dst u8, len u16 LE, bytes     a valid UDP/IPv6 packet from the node
//!   7 replay       pick u8, flips u8, (at u16 LE, xor u8)*   a frame seen before, altered
//!   8 advance      centis u16 LE                 time passes (10 ms units), timers run
//!   9 rehandshake  flags u8                      the peer starts a new handshake
//!  10 peer-ogm     far u8, seq u16 LE, metric u16 LE, ttl u8   a valid signed OGM
//!  11 iface        flags u8                      interface removed / added back
//!  12 hello        src u8, seq u16 LE, interval u16 LE         a clear hello
//! ```
//!
//! Missing bytes read as zero and a length longer than the rest takes the rest, so every
//! input is valid. After every action the node's output is drained and the peer reacts to
//! it (answers handshakes, reads its unicast and broadcast frames, answers announcement
//! requests); whatever the node sends must parse. `tests/fuzz_seeds.rs` in the main crate
//! writes the seed inputs in this format.

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use veilmesh::crypto::handshake::{MSG1_LEN, MSG2_LEN, MSG3_LEN};
use veilmesh::crypto::onion::{seal_build, HopOrder, HopSpec, OnionKeyRecord, EXIT_DATA_LEN};
use veilmesh::crypto::{
    AcceptPolicy, Announcement, ChainSigner, FrameTagKey, GroupReceiver, GroupSender, Identity,
    Initiator, MeshPsk, Responder, Session,
};
use veilmesh::node::{IfaceId, Node, NodeConfig};
use veilmesh::overlay::build::build_udp6;
use veilmesh::overlay::{ipv6_for, mesh_prefix, DEFAULT_POOL};
use veilmesh::time::{Duration, Instant};
use veilmesh::wire::{
    emit_encrypted_header, emit_handshake, split_encrypted_mut, split_tag_mut, EncryptedKind,
    Frame, GroupKeyRepr, HandshakeKind, HelloRepr, IhuEntry, MacAddr, Message, MessageIter,
    MessageWriter, NodeId, OgmRepr, OnionHeader, SeqnoRequestRepr, ANNOUNCE_LEN, BUILD_RECORDS_LEN,
    ENCRYPTED_HEADER_LEN, FRAME_TAG_LEN, MAX_BROADCAST_PLAINTEXT_LEN, MAX_FRAME_LEN,
    UNICAST_FRAME_LEN, UNICAST_PLAINTEXT_LEN,
};

/// Number of actions; an op byte is taken modulo this.
pub const OPS: u8 = 13;
/// The node's MAC on interface 0.
pub const NODE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
/// The peer's MAC.
pub const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
/// A neighbour that never completes a handshake.
pub const STRANGER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 3]);
const IFACE: IfaceId = IfaceId(0);
/// Chain length of the peer and of the far node (short: built once, but kept cheap).
const CHAIN_LEN: u16 = 512;
/// Epoch of every identity here.
const EPOCH: u32 = 1;
/// The longer of handshake messages 2 and 3.
const MAX_MSG_LEN: usize = if MSG2_LEN > MSG3_LEN {
    MSG2_LEN
} else {
    MSG3_LEN
};
/// Frames remembered for `replay`.
const HISTORY: usize = 32;
/// Most rounds of node output and peer answers after one action.
const PUMP_ROUNDS: usize = 8;

/// Identities, chains and announcements built once per process (deterministic).
struct Fixed {
    node: Identity,
    peer: Identity,
    far: Identity,
    peer_chain: ChainSigner,
    far_chain: ChainSigner,
    peer_ann: [u8; ANNOUNCE_LEN],
    far_ann: [u8; ANNOUNCE_LEN],
    /// The node's own identity announcing a newer epoch (a clone of it elsewhere).
    node_newer_ann: [u8; ANNOUNCE_LEN],
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let node = Identity::from_secrets([1; 32], [2; 32]);
        let peer = Identity::from_secrets([3; 32], [4; 32]);
        let far = Identity::from_secrets([5; 32], [6; 32]);
        let chain = |id: &Identity, epoch| ChainSigner::new(id, epoch, 0, CHAIN_LEN).unwrap();
        let ann = |id: &Identity, epoch, c: &ChainSigner| {
            Announcement::for_chain(id, epoch, c).sign(id).unwrap()
        };
        let peer_chain = chain(&peer, EPOCH);
        let far_chain = chain(&far, EPOCH);
        let node_chain = chain(&node, EPOCH + 1);
        Fixed {
            peer_ann: ann(&peer, EPOCH, &peer_chain),
            far_ann: ann(&far, EPOCH, &far_chain),
            node_newer_ann: ann(&node, EPOCH + 1, &node_chain),
            node,
            peer,
            far,
            peer_chain,
            far_chain,
        }
    })
}

/// Whom a fuzzed message names.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Who {
    /// The node under test.
    Node,
    /// The peer.
    Peer,
    /// A node two hops away, behind the peer.
    Far,
    /// Any id.
    Raw([u8; 16]),
}

impl Who {
    fn id(self) -> NodeId {
        let f = fixed();
        match self {
            Who::Node => f.node.node_id(),
            Who::Peer => f.peer.node_id(),
            Who::Far => f.far.node_id(),
            Who::Raw(b) => NodeId(b),
        }
    }
}

/// A MAC a fuzzed message names.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum MacChoice {
    /// The node's.
    Node,
    /// The peer's.
    Peer,
    /// Any.
    Raw([u8; 6]),
}

impl MacChoice {
    fn mac(self) -> MacAddr {
        match self {
            MacChoice::Node => NODE_MAC,
            MacChoice::Peer => PEER_MAC,
            MacChoice::Raw(b) => MacAddr(b),
        }
    }
}

/// Which announcement bytes a message carries.
#[derive(Debug, Clone, Arbitrary)]
pub enum AnnChoice {
    /// The peer's (valid).
    Peer,
    /// The far node's (valid).
    Far,
    /// The node's own identity in a newer epoch (valid: a clone of its identity).
    NodeNewer,
    /// A valid one with one byte changed.
    Flipped {
        /// Which of the three.
        far: bool,
        /// Where.
        at: u8,
        /// With what (0 is made 1).
        xor: u8,
    },
    /// Any bytes.
    Raw(Box<[u8; ANNOUNCE_LEN]>),
}

impl AnnChoice {
    fn bytes(&self) -> [u8; ANNOUNCE_LEN] {
        let f = fixed();
        match self {
            AnnChoice::Peer => f.peer_ann,
            AnnChoice::Far => f.far_ann,
            AnnChoice::NodeNewer => f.node_newer_ann,
            AnnChoice::Flipped { far, at, xor } => {
                let mut b = if *far { f.far_ann } else { f.peer_ann };
                b[usize::from(*at) % ANNOUNCE_LEN] ^= (*xor).max(1);
                b
            }
            AnnChoice::Raw(b) => **b,
        }
    }
}

/// An IP packet inside a Data message.
#[derive(Debug, Clone, Arbitrary)]
pub enum PacketChoice {
    /// Any bytes.
    Raw(Vec<u8>),
    /// A valid UDP/IPv6 packet between two overlay addresses.
    Udp {
        /// Source.
        src: Who,
        /// Destination.
        dst: Who,
        /// Hop limit byte written over the default.
        hop_limit: Option<u8>,
        /// The datagram.
        payload: Vec<u8>,
    },
}

/// One message the fuzzer builds; written with `MessageWriter`, so lengths are right.
#[derive(Debug, Clone, Arbitrary)]
pub enum FuzzMsg {
    /// Encrypted hello.
    Hello(u16, u16),
    /// IHU entries.
    Ihu(Vec<(MacChoice, u16)>),
    /// Any OGM.
    Ogm {
        /// Originator.
        node: Who,
        /// Epoch.
        epoch: u32,
        /// Seqno.
        seqno: u32,
        /// Metric.
        metric: u16,
        /// TTL.
        ttl: u8,
        /// Flags.
        flags: u8,
        /// Chain element.
        chain: [u8; 16],
    },
    /// An OGM of the peer or the far node with its genuine chain element.
    SignedOgm {
        /// The far node's, else the peer's.
        far: bool,
        /// Seqno (taken modulo the chain length).
        seqno: u16,
        /// Metric.
        metric: u16,
        /// TTL.
        ttl: u8,
    },
    /// An announcement.
    Announce(AnnChoice),
    /// An announcement request.
    AnnounceRequest(Who),
    /// A seqno request.
    SeqnoRequest {
        /// For whom.
        node: Who,
        /// Epoch.
        epoch: u32,
        /// Seqno.
        seqno: u32,
        /// Hop limit.
        hop_limit: u8,
    },
    /// A group key (the peer's own, or any).
    GroupKey(Option<(u32, [u8; 32])>),
    /// A probe.
    Probe(u32),
    /// A probe answer.
    ProbeAck(u32),
    /// A group key request.
    GroupKeyRequest,
    /// A Data message.
    Data {
        /// Destination.
        dst: Who,
        /// TTL.
        ttl: u8,
        /// The packet.
        packet: PacketChoice,
    },
    /// An onion key record (any bytes, cut or zero-padded to its length).
    OnionKey(Vec<u8>),
    /// A circuit build: one sealed to the node's onion key (the node is its exit, the peer
    /// the creator), or any bytes.
    Build {
        /// Destination.
        dst: Who,
        /// TTL.
        ttl: u8,
        /// Link id.
        link: u32,
        /// Seal a genuine build instead of using `raw`.
        sealed: bool,
        /// The records otherwise (cut or zero-padded).
        raw: Vec<u8>,
    },
    /// An onion cell with any region.
    Cell {
        /// Destination.
        dst: Who,
        /// TTL.
        ttl: u8,
        /// Link id.
        link: u32,
        /// Direction byte.
        flags: u8,
        /// The region (cut or zero-padded).
        region: Vec<u8>,
    },
}

/// `bytes` cut or zero-padded to `N`.
fn padded<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = bytes.len().min(N);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// The peer's view of a handshake it is in.
enum PeerPending {
    Initiating {
        hs: Initiator,
        local_idx: u32,
    },
    Responding {
        hs: Responder,
        local_idx: u32,
        remote_idx: u32,
    },
}

/// A session the peer holds with the node.
struct PeerSession {
    session: Session,
    local_idx: u32,
    remote_idx: u32,
}

/// The harness: the node, the peer's state, virtual time and the frames seen.
pub struct Harness {
    node: Node,
    now: Instant,
    psk: MeshPsk,
    mesh: String,
    pending: Option<PeerPending>,
    current: Option<PeerSession>,
    previous: Option<PeerSession>,
    group: GroupSender,
    node_group: Option<GroupReceiver>,
    next_idx: u32,
    seed: u8,
    /// The peer's handshake sequence number (grows with every Init it sends).
    init_seq: u64,
    /// Tags the peer's clear frames as a member's.
    tag_key: FrameTagKey,
    history: Vec<Vec<u8>>,
    iface_up: bool,
    /// When the peer last spoke up after a clear hello.
    last_talk: Option<Instant>,
    /// Frames for the node from the peer, waiting for the next pump round.
    to_node: Vec<Vec<u8>>,
}

fn mac_for(src: u8) -> MacAddr {
    match src % 4 {
        0 => PEER_MAC,
        1 => STRANGER_MAC,
        2 => NODE_MAC,
        _ => MacAddr([src, 1, 2, 3, 4, 5]),
    }
}

impl Harness {
    /// A node with a live session to the peer. `flags`: bit 0 IPv4 pool, bit 1 tiny
    /// queues, bit 2 a mesh secret, bit 3 a short hello interval.
    pub fn new(flags: u8) -> Harness {
        let f = fixed();
        let now = Instant::from_millis(1_000);
        let mut cfg = NodeConfig::default();
        if flags & 1 != 0 {
            cfg.ipv4_pool = Some(DEFAULT_POOL);
        }
        if flags & 2 != 0 {
            cfg.tx_queue = 4;
            cfg.deliver_queue = 2;
        }
        if flags & 4 != 0 {
            cfg.mesh_secret = Some(vec![0x5a; 16].into());
        }
        if flags & 8 != 0 {
            cfg.hello_interval = Duration::from_millis(500);
        }
        let psk = MeshPsk::derive(cfg.mesh_name.as_bytes(), cfg.mesh_secret.as_deref());
        let tag_key = FrameTagKey::derive(&psk);
        let mesh = cfg.mesh_name.clone();
        let mut node = Node::new(cfg, f.node.clone(), EPOCH, [9; 32], now).unwrap();
        assert!(node.add_interface(now, IFACE, NODE_MAC));
        let group = GroupSender::generate(&mut ChaCha20Rng::from_seed([11; 32]));
        let mut h = Harness {
            node,
            now,
            psk,
            mesh,
            pending: None,
            current: None,
            previous: None,
            group,
            node_group: None,
            next_idx: 0x100,
            seed: 0,
            init_seq: 1 << 32,
            tag_key,
            history: Vec::new(),
            iface_up: true,
            last_talk: None,
            to_node: Vec::new(),
        };
        h.start_handshake(0);
        h.pump();
        assert_eq!(h.node.sessions(), 1, "set-up handshake failed");
        h
    }

    /// Run the actions in `input` (after its config byte), then 40 quiet seconds (the
    /// housekeeping, handshake and parked-OGM timeouts run over the state left behind;
    /// rekeys and expiry need an `advance` action of minutes).
    pub fn run(input: &[u8]) -> Harness {
        let mut h = Harness::run_actions(input);
        h.advance(Duration::from_secs(40));
        h
    }

    /// Run the actions in `input` only.
    pub fn run_actions(input: &[u8]) -> Harness {
        let mut r = Reader(input);
        let mut h = Harness::new(r.u8());
        while !r.0.is_empty() {
            h.action(&mut r);
        }
        h
    }

    /// The node under test.
    pub fn node(&self) -> &Node {
        &self.node
    }

    fn action(&mut self, r: &mut Reader<'_>) {
        match r.u8() % OPS {
            0 => {
                let src = mac_for(r.u8());
                let bytes = r.chunk();
                self.deliver(src, bytes);
            }
            1 => {
                let flags = r.u8();
                let plain = r.chunk();
                self.send_unicast(flags, |buf| {
                    let n = plain.len().min(buf.len());
                    buf[..n].copy_from_slice(&plain[..n]);
                });
            }
            2 => {
                let msgs = decode_msgs(r.chunk());
                let mut tmp = vec![0u8; UNICAST_PLAINTEXT_LEN];
                self.write_msgs(&msgs, &mut tmp);
                self.send_unicast(0, |buf| buf.copy_from_slice(&tmp));
            }
            3 => {
                let flags = r.u8();
                let plain = r.chunk().to_vec();
                self.send_broadcast(flags, &plain);
            }
            4 => {
                let msgs = decode_msgs(r.chunk());
                let mut tmp = vec![0u8; MAX_BROADCAST_PLAINTEXT_LEN];
                let len = self.write_msgs(&msgs, &mut tmp);
                tmp.truncate(veilmesh::wire::broadcast_plaintext_len(len));
                self.send_broadcast(0, &tmp);
            }
            5 => {
                let p = r.chunk().to_vec();
                self.node.handle_ip_packet(self.now, &p);
                self.pump();
            }
            6 => {
                let dst = match r.u8() % 4 {
                    0 => Who::Peer,
                    1 => Who::Far,
                    2 => Who::Node,
                    _ => Who::Raw([0xee; 16]),
                };
                let payload = r.chunk().to_vec();
                if let Some(p) = self.udp(Who::Node, dst, None, &payload) {
                    self.node.handle_ip_packet(self.now, &p);
                    self.pump();
                }
            }
            7 => {
                let pick = usize::from(r.u8());
                let flips = r.u8() % 8;
                let mut frame = match self.history.len() {
                    0 => Vec::new(),
                    n => self.history[pick % n].clone(),
                };
                for _ in 0..flips {
                    let at = usize::from(r.u16());
                    let x = r.u8();
                    if !frame.is_empty() {
                        let n = frame.len();
                        frame[at % n] ^= x;
                    }
                }
                self.deliver(PEER_MAC, &frame);
            }
            8 => {
                let centis = u64::from(r.u16());
                self.advance(Duration::from_millis(centis * 10));
            }
            9 => {
                let flags = r.u8();
                self.start_handshake(flags);
                self.pump();
            }
            10 => {
                let far = r.u8() & 1 == 1;
                let seqno = r.u16();
                let metric = r.u16();
                let ttl = r.u8();
                let msg = FuzzMsg::SignedOgm {
                    far,
                    seqno,
                    metric,
                    ttl,
                };
                let mut tmp = vec![0u8; MAX_BROADCAST_PLAINTEXT_LEN];
                let len = self.write_msgs(&[msg], &mut tmp);
                tmp.truncate(veilmesh::wire::broadcast_plaintext_len(len));
                self.send_broadcast(0, &tmp);
            }
            11 => {
                let flags = r.u8();
                if self.iface_up {
                    self.node.remove_interface(self.now, IFACE);
                } else {
                    let mac = if flags & 1 == 0 {
                        NODE_MAC
                    } else {
                        MacAddr([2, 0, 0, 0, 0, 9])
                    };
                    self.node.add_interface(self.now, IFACE, mac);
                }
                self.iface_up = !self.iface_up;
                self.pump();
            }
            _ => {
                let src = mac_for(r.u8());
                let hello = HelloRepr {
                    seq: r.u16(),
                    interval_10ms: r.u16(),
                };
                let mut buf = [0u8; 64];
                let len = veilmesh::wire::emit_hello(&hello, &mut buf).unwrap();
                self.seal_clear(src, &mut buf[..len]);
                self.deliver(src, &buf[..len]);
            }
        }
    }

    /// Give the node a frame from `src`, then drain it.
    fn deliver(&mut self, src: MacAddr, frame: &[u8]) {
        self.node.handle_frame(self.now, IFACE, src, frame);
        self.pump();
    }

    /// Let `d` pass: the node's timers fire where it asks, but at most 64 times (in steps of
    /// at least `d / 64`, so some fire late, as in a busy daemon), then at the end.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        let step = Duration::from_micros(d.as_micros() / 64);
        for _ in 0..64 {
            match self.node.poll_timeout() {
                Some(t) if t <= end => {
                    // Never backwards, never past the end.
                    let next = t.max(self.now + step);
                    self.now = if next > end { end } else { next };
                    self.node.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = end;
        self.node.handle_timeout(self.now);
        self.pump();
    }

    /// Drain the node's output, let the peer answer, repeat while anything moves.
    fn pump(&mut self) {
        let mut buf = vec![0u8; MAX_FRAME_LEN];
        for _ in 0..PUMP_ROUNDS {
            while let Some(t) = self.node.poll_transmit(&mut buf) {
                assert!(t.len <= MAX_FRAME_LEN);
                let frame = buf[..t.len].to_vec();
                if t.dst == PEER_MAC || t.dst.is_broadcast() {
                    self.peer_reads(&frame);
                }
                self.remember(frame);
            }
            let mut out = [0u8; 2048];
            while let Some(n) = self.node.poll_deliver(&mut out) {
                assert!(n <= out.len());
            }
            while self.node.poll_event().is_some() {}
            if self.to_node.is_empty() {
                break;
            }
            for mut frame in std::mem::take(&mut self.to_node) {
                self.seal_clear(PEER_MAC, &mut frame);
                self.node.handle_frame(self.now, IFACE, PEER_MAC, &frame);
                self.remember(frame);
            }
        }
        self.to_node.clear();
    }

    /// Give a clear frame (hello, handshake) from `src` the mesh-PSK tag a member would:
    /// the fuzzer's bytes then reach the handshake and routing code, not only the tag check.
    fn seal_clear(&self, src: MacAddr, frame: &mut [u8]) {
        let (len, dst) = match Frame::parse(frame) {
            Ok(Frame::Hello { tag, .. }) => (tag.covered.len(), MacAddr::BROADCAST),
            Ok(Frame::Handshake { tag, .. }) => (tag.covered.len(), NODE_MAC),
            _ => return,
        };
        if let Some((covered, tag)) = split_tag_mut(frame, len + FRAME_TAG_LEN) {
            *tag = self.tag_key.tag(src, dst, covered);
        }
    }

    fn remember(&mut self, frame: Vec<u8>) {
        if self.history.len() == HISTORY {
            self.history.remove(0);
        }
        self.history.push(frame);
    }

    fn next_seed(&mut self) -> [u8; 32] {
        self.seed = self.seed.wrapping_add(1);
        [self.seed; 32]
    }

    /// Queue a handshake frame from the peer to the node; returns its bytes.
    fn send_handshake(&mut self, kind: HandshakeKind, idx: (u32, u32), noise: &[u8]) -> Vec<u8> {
        let mut frame = [0u8; MAX_FRAME_LEN];
        let n = emit_handshake(kind, idx.0, idx.1, noise, &mut frame).unwrap();
        self.to_node.push(frame[..n].to_vec());
        frame[..n].to_vec()
    }

    fn new_idx(&mut self) -> u32 {
        self.next_idx = self.next_idx.wrapping_add(1).max(1);
        self.next_idx
    }

    /// The peer starts a handshake (queued for the next pump round); flags bit 0 corrupts
    /// msg 1, bit 1 sends it twice.
    fn start_handshake(&mut self, flags: u8) {
        let seed = self.next_seed();
        let mut msg1 = [0u8; MSG1_LEN];
        self.init_seq += 1;
        let Ok((hs, len)) =
            Initiator::new(&fixed().peer, &self.psk, seed, self.init_seq, &mut msg1)
        else {
            return;
        };
        if flags & 1 != 0 {
            msg1[usize::from(flags >> 2) % len] ^= 0x80;
        }
        let local_idx = self.new_idx();
        self.pending = Some(PeerPending::Initiating { hs, local_idx });
        let sent = self.send_handshake(HandshakeKind::Init, (local_idx, 0), &msg1[..len]);
        if flags & 2 != 0 {
            self.to_node.push(sent);
        }
    }

    /// The peer reads a frame the node sent to it (or broadcast).
    fn peer_reads(&mut self, frame: &[u8]) {
        let parsed = Frame::parse(frame).expect("the node sent a frame that does not parse");
        match parsed {
            Frame::Hello { .. } => {
                // The node is looking for neighbours: a peer without a session handshakes,
                // one with a session says something under it (at most every 30 s), which
                // tells a node that lost the session to make a new one.
                let quiet = self
                    .last_talk
                    .is_none_or(|t| self.now.saturating_since(t) >= Duration::from_secs(30));
                if self.current.is_none() && self.pending.is_none() {
                    self.start_handshake(0);
                } else if quiet {
                    self.last_talk = Some(self.now);
                    let mut tmp = vec![0u8; UNICAST_PLAINTEXT_LEN];
                    self.write_msgs(&[FuzzMsg::Probe(0)], &mut tmp);
                    self.queue_unicast(0, &tmp);
                }
            }
            Frame::Handshake {
                kind,
                sender_idx,
                receiver_idx,
                noise,
                ..
            } => self.peer_handshake(kind, sender_idx, receiver_idx, noise),
            Frame::Unicast(f) => {
                let mut body = f.ciphertext().to_vec();
                let idx = f.index_or_key_id();
                let opened = [self.current.as_mut(), self.previous.as_mut()]
                    .into_iter()
                    .flatten()
                    .filter(|s| s.local_idx == idx)
                    .any(|s| {
                        s.session
                            .recv
                            .open_in_place(f.counter(), f.header(), &mut body, f.tag())
                            .is_ok()
                    });
                if opened {
                    self.peer_messages(&body);
                }
            }
            Frame::Broadcast(f) => {
                let mut body = f.ciphertext().to_vec();
                let opened = self.node_group.as_mut().is_some_and(|g| {
                    g.key_id() == f.index_or_key_id()
                        && g.open_in_place(f.counter(), f.header(), &mut body, f.tag())
                            .is_ok()
                });
                if opened {
                    self.peer_messages(&body);
                }
            }
        }
    }

    /// Messages the node sent, decrypted: all must parse. The peer learns the node's group
    /// key and answers announcement requests.
    fn peer_messages(&mut self, plain: &[u8]) {
        let mut answer = Vec::new();
        for m in MessageIter::new(plain) {
            match m.expect("the node sent a message that does not parse") {
                Message::GroupKey(k) => self.node_group = Some(GroupReceiver::from_repr(&k)),
                Message::AnnounceRequest(id) => {
                    let f = fixed();
                    if id == f.far.node_id() {
                        answer.push(FuzzMsg::Announce(AnnChoice::Far));
                    } else if id == f.peer.node_id() {
                        answer.push(FuzzMsg::Announce(AnnChoice::Peer));
                    }
                }
                _ => {}
            }
        }
        if !answer.is_empty() {
            let mut tmp = vec![0u8; UNICAST_PLAINTEXT_LEN];
            self.write_msgs(&answer, &mut tmp);
            self.queue_unicast(0, &tmp);
        }
    }

    fn peer_handshake(&mut self, kind: HandshakeKind, sender: u32, receiver: u32, noise: &[u8]) {
        let f = fixed();
        let mut out = [0u8; MAX_MSG_LEN];
        match (kind, self.pending.take()) {
            (HandshakeKind::Init, pending) => {
                // The node's Init wins over ours only if its MAC is lower (it is).
                drop(pending);
                let seed = self.next_seed();
                let Ok((hs, len)) = Responder::respond(&f.peer, &self.psk, seed, noise, &mut out)
                else {
                    return;
                };
                let local_idx = self.new_idx();
                self.pending = Some(PeerPending::Responding {
                    hs,
                    local_idx,
                    remote_idx: sender,
                });
                self.send_handshake(HandshakeKind::Resp, (local_idx, sender), &out[..len]);
            }
            (HandshakeKind::Resp, Some(PeerPending::Initiating { mut hs, local_idx }))
                if receiver == local_idx =>
            {
                let Ok((est, len)) = hs.finish(noise, &mut out, &AcceptPolicy::Open) else {
                    return;
                };
                self.send_handshake(HandshakeKind::Finish, (local_idx, sender), &out[..len]);
                self.install(Session::new(&est, self.now), local_idx, sender);
            }
            (
                HandshakeKind::Finish,
                Some(PeerPending::Responding {
                    mut hs,
                    local_idx,
                    remote_idx,
                }),
            ) if receiver == local_idx && sender == remote_idx => {
                if let Ok(est) = hs.finish(noise, &AcceptPolicy::Open) {
                    self.install(Session::new(&est, self.now), local_idx, remote_idx);
                }
            }
            (_, pending) => self.pending = pending,
        }
    }

    /// A completed handshake: the new session is current; send the group key and
    /// announcement under it (which also confirms it to the node).
    fn install(&mut self, session: Session, local_idx: u32, remote_idx: u32) {
        self.previous = self.current.take();
        self.current = Some(PeerSession {
            session,
            local_idx,
            remote_idx,
        });
        let msgs = [FuzzMsg::GroupKey(None), FuzzMsg::Announce(AnnChoice::Peer)];
        let mut tmp = vec![0u8; UNICAST_PLAINTEXT_LEN];
        self.write_msgs(&msgs, &mut tmp);
        self.queue_unicast(0, &tmp);
    }

    /// Seal a unicast frame under the peer's current session and queue it for the node.
    /// `flags` bit 0: use the previous session; bit 1: break the tag.
    fn queue_unicast(&mut self, flags: u8, plain: &[u8]) {
        let sess = if flags & 1 != 0 && self.previous.is_some() {
            self.previous.as_mut()
        } else {
            self.current.as_mut()
        };
        let Some(s) = sess else {
            return;
        };
        let Ok(counter) = s.session.send.next_counter() else {
            return;
        };
        let mut frame = vec![0u8; UNICAST_FRAME_LEN];
        emit_encrypted_header(EncryptedKind::Unicast, s.remote_idx, counter, &mut frame).unwrap();
        let n = plain.len().min(UNICAST_PLAINTEXT_LEN);
        frame[ENCRYPTED_HEADER_LEN..ENCRYPTED_HEADER_LEN + n].copy_from_slice(&plain[..n]);
        let parts = split_encrypted_mut(&mut frame).unwrap();
        *parts.tag = s
            .session
            .send
            .seal_in_place(counter, parts.header, parts.body)
            .unwrap();
        if flags & 2 != 0 {
            frame[UNICAST_FRAME_LEN - 1] ^= 1;
        }
        self.to_node.push(frame);
    }

    fn send_unicast(&mut self, flags: u8, fill: impl FnOnce(&mut [u8])) {
        let mut plain = vec![0u8; UNICAST_PLAINTEXT_LEN];
        fill(&mut plain);
        self.queue_unicast(flags, &plain);
        self.pump();
    }

    /// Seal `plain` under the peer's group key and deliver it; flags bit 0 breaks the tag.
    fn send_broadcast(&mut self, flags: u8, plain: &[u8]) {
        let Ok(counter) = self.group.next_counter() else {
            return;
        };
        let n = plain.len().min(MAX_BROADCAST_PLAINTEXT_LEN);
        let mut frame = vec![0u8; veilmesh::wire::encrypted_frame_len(n)];
        emit_encrypted_header(
            EncryptedKind::Broadcast,
            self.group.key_id(),
            counter,
            &mut frame,
        )
        .unwrap();
        frame[ENCRYPTED_HEADER_LEN..ENCRYPTED_HEADER_LEN + n].copy_from_slice(&plain[..n]);
        let parts = split_encrypted_mut(&mut frame).unwrap();
        *parts.tag = self
            .group
            .seal_in_place(counter, parts.header, parts.body)
            .unwrap();
        if flags & 1 != 0 {
            let last = frame.len() - 1;
            frame[last] ^= 1;
        }
        self.deliver(PEER_MAC, &frame);
    }

    fn udp(&self, src: Who, dst: Who, hop_limit: Option<u8>, payload: &[u8]) -> Option<Vec<u8>> {
        let prefix = mesh_prefix(self.mesh.as_bytes());
        let (s, d) = (ipv6_for(&prefix, &src.id()), ipv6_for(&prefix, &dst.id()));
        let mut buf = vec![0u8; payload.len() + 64];
        let n = build_udp6(&mut buf, &s, &d, (4000, 5000), payload).ok()?;
        buf.truncate(n);
        if let Some(h) = hop_limit {
            buf[7] = h;
        }
        Some(buf)
    }

    /// A genuine one-relay build to the node under test (its current onion key), from the
    /// peer, on leg `link`.
    fn sealed_build(&self, link: u32) -> [u8; BUILD_RECORDS_LEN] {
        let record = self.node.onion_key_record();
        let (_, seq) = OnionKeyRecord::unverified_order(&record);
        let spec = HopSpec {
            onion_key: record[24..56].try_into().unwrap_or([0; 32]),
            key_seq: seq,
            order: HopOrder {
                exit: true,
                prev: Who::Peer.id(),
                next: NodeId([0; 16]),
                next_link: 0,
                exit_data: [0; EXIT_DATA_LEN],
            },
        };
        let mut out = [0u8; BUILD_RECORDS_LEN];
        let mut rng = ChaCha20Rng::seed_from_u64(u64::from(link));
        let _ = seal_build(&[spec], link, &mut rng, &mut out);
        out
    }

    /// Write as many of `msgs` as fit into `buf`; returns the bytes written.
    fn write_msgs(&self, msgs: &[FuzzMsg], buf: &mut [u8]) -> usize {
        let f = fixed();
        let mut w = MessageWriter::new(buf);
        for m in msgs {
            let _ = match m {
                FuzzMsg::Hello(seq, interval_10ms) => w.push_hello(&HelloRepr {
                    seq: *seq,
                    interval_10ms: *interval_10ms,
                }),
                FuzzMsg::Ihu(entries) => {
                    let e: Vec<IhuEntry> = entries
                        .iter()
                        .map(|(mac, q)| IhuEntry {
                            mac: mac.mac(),
                            rx_quality: *q,
                        })
                        .collect();
                    w.push_ihu(&e)
                }
                FuzzMsg::Ogm {
                    node,
                    epoch,
                    seqno,
                    metric,
                    ttl,
                    flags,
                    chain,
                } => w.push_ogm(&OgmRepr {
                    node: node.id(),
                    epoch: *epoch,
                    seqno: *seqno,
                    metric: *metric,
                    ttl: *ttl,
                    flags: *flags,
                    chain: *chain,
                }),
                FuzzMsg::SignedOgm {
                    far,
                    seqno,
                    metric,
                    ttl,
                } => {
                    let (id, chain) = if *far {
                        (f.far.node_id(), &f.far_chain)
                    } else {
                        (f.peer.node_id(), &f.peer_chain)
                    };
                    let seqno = u32::from(*seqno % CHAIN_LEN);
                    w.push_ogm(&OgmRepr {
                        node: id,
                        epoch: EPOCH,
                        seqno,
                        metric: *metric,
                        ttl: *ttl,
                        flags: 0,
                        chain: chain.element(seqno).unwrap(),
                    })
                }
                FuzzMsg::Announce(a) => w.push_announce(&a.bytes()),
                FuzzMsg::AnnounceRequest(who) => w.push_announce_request(&who.id()),
                FuzzMsg::SeqnoRequest {
                    node,
                    epoch,
                    seqno,
                    hop_limit,
                } => w.push_seqno_request(&SeqnoRequestRepr {
                    node: node.id(),
                    epoch: *epoch,
                    seqno: *seqno,
                    hop_limit: *hop_limit,
                }),
                FuzzMsg::GroupKey(k) => w.push_group_key(&match k {
                    None => self.group.repr(),
                    Some((key_id, key)) => GroupKeyRepr {
                        key_id: *key_id,
                        key: *key,
                    },
                }),
                FuzzMsg::Probe(s) => w.push_probe(*s),
                FuzzMsg::ProbeAck(s) => w.push_probe_ack(*s),
                FuzzMsg::GroupKeyRequest => w.push_group_key_request(),
                FuzzMsg::Data { dst, ttl, packet } => {
                    let p = match packet {
                        PacketChoice::Raw(b) => Some(b.clone()),
                        PacketChoice::Udp {
                            src,
                            dst,
                            hop_limit,
                            payload,
                        } => self.udp(*src, *dst, *hop_limit, payload),
                    };
                    match p {
                        Some(p) => w.push_data(dst.id(), *ttl, &p),
                        None => Ok(()),
                    }
                }
                FuzzMsg::OnionKey(bytes) => w.push_onion_key(&padded(bytes)),
                FuzzMsg::Build {
                    dst,
                    ttl,
                    link,
                    sealed,
                    raw,
                } => {
                    let header = OnionHeader {
                        dst: dst.id(),
                        ttl: *ttl,
                        link: *link,
                    };
                    let records = match sealed {
                        true => self.sealed_build(*link),
                        false => padded(raw),
                    };
                    w.push_build(&header, &records)
                }
                FuzzMsg::Cell {
                    dst,
                    ttl,
                    link,
                    flags,
                    region,
                } => {
                    let header = OnionHeader {
                        dst: dst.id(),
                        ttl: *ttl,
                        link: *link,
                    };
                    w.push_cell(&header, *flags, |r| {
                        *r = padded(region);
                        Ok(())
                    })
                }
            };
        }
        w.len()
    }
}

/// Decode a message list with `arbitrary` (any bytes give some list).
fn decode_msgs(bytes: &[u8]) -> Vec<FuzzMsg> {
    let mut u = Unstructured::new(bytes);
    let mut out = Vec::new();
    while !u.is_empty() && out.len() < 64 {
        match FuzzMsg::arbitrary(&mut u) {
            Ok(m) => out.push(m),
            Err(_) => break,
        }
    }
    out
}

/// Reads the action stream: missing bytes are zeros, lengths are cut to what is left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn chunk(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16()).min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}
