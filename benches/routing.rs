//! Routing costs of one real node R: processing aggregated OGM broadcasts (decrypt, verify
//! each OGM's hash-chain element through the announcement store, update the route, queue
//! the rebroadcast), and next-hop lookups in a table of 1000 originators.
//!
//! R's only neighbour N is played by this file with the public wire and crypto API: it
//! completes a real Noise handshake with R, hands R its group key and the originators'
//! signed announcements, says hello with an Ihu, and broadcasts OGM frames with 28 OGMs
//! (`OGM_BATCH_MAX`), each a fresh seqno with a valid chain element. Results:
//! docs/benchmarks.md.

use std::hint::black_box;
use std::time::Duration as StdDuration;

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use veilmesh::crypto::handshake::MSG3_LEN;
use veilmesh::crypto::hashchain::chain_hash;
use veilmesh::crypto::{
    AcceptPolicy, Announcement, ChainSigner, FrameTagKey, GroupSender, Identity, Initiator,
    MeshPsk, SendKey,
};
use veilmesh::node::{IfaceId, Node, NodeConfig};
use veilmesh::routing::OGM_BATCH_MAX;
use veilmesh::sim::{mac_of, node_factory};
use veilmesh::time::{Duration, Instant};
use veilmesh::wire::{
    emit_encrypted_header, emit_handshake, encrypted_frame_len, plaintext_area_mut,
    split_encrypted_mut, split_tag_mut, EncryptedKind, Error, Frame, HandshakeKind, HelloRepr,
    IhuEntry, MessageWriter, NodeId, OgmRepr, ANNOUNCE_LEN,
};

/// Virtual time between two OGM frames from N: every originator's seqno may be new each
/// time and still pass R's rebroadcast gate (one per 250 ms per originator).
const FRAME_GAP: Duration = Duration::from_millis(250);
/// N says hello every this many frames (3.5 s, its advertised interval is 4 s).
const HELLO_EVERY: u64 = 14;
/// R is rebuilt before its session with N would need a rekey (responder: 320 s).
const FIXTURE_LIFETIME: Duration = Duration::from_secs(250);
const MAC_R: usize = 0;
const MAC_N: usize = 1;

/// Originators with their chains and signed announcements (built once, reused by every
/// fixture: a fresh R has seen no seqno yet).
struct Originators {
    ids: Vec<NodeId>,
    chains: Vec<ChainSigner>,
    anns: Vec<[u8; ANNOUNCE_LEN]>,
}

impl Originators {
    fn new(count: usize) -> Originators {
        let mut o = Originators {
            ids: Vec::new(),
            chains: Vec::new(),
            anns: Vec::new(),
        };
        for i in 0..count {
            let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(1000 + i as u64));
            let chain = ChainSigner::new(&id, 1, 0, 4096).expect("chain");
            let ann = Announcement::for_chain(&id, 1, &chain)
                .sign(&id)
                .expect("sign");
            o.ids.push(id.node_id());
            o.chains.push(chain);
            o.anns.push(ann);
        }
        o
    }
}

/// Real node R, and the state of the neighbour N this file plays.
struct Fixture {
    r: Node,
    now: Instant,
    born: Instant,
    to_r: SendKey,
    r_idx: u32,
    group: GroupSender,
    hello_seq: u16,
    seqnos: Vec<u32>,
    next_orig: usize,
    frames: u64,
    /// Heap allocations made inside R's `handle_frame` of OGM frames (steady state).
    rx_allocs: u64,
    /// OGM frames since the warm-up.
    rx_frames: u64,
}

/// The mesh-PSK tag of a handshake frame from N to R.
fn seal_tag(key: &FrameTagKey, frame: &mut [u8], len: usize) {
    let (covered, tag) = split_tag_mut(frame, len).expect("tag room");
    *tag = key.tag(mac_of(MAC_N), mac_of(MAC_R), covered);
}

impl Fixture {
    fn new(orig: &Originators, round: u64) -> Fixture {
        let now = Instant::ZERO + Duration::from_secs(1);
        let mut factory = node_factory(round, NodeConfig::default());
        let mut r = factory(MAC_R, 1, mac_of(MAC_R), now);
        let mut rng = ChaCha20Rng::seed_from_u64(round);
        let n_identity = Identity::generate(&mut rng);
        let psk = MeshPsk::derive(b"veilmesh", None);
        let mut msg1 = [0u8; 64];
        let (mut init, len) =
            Initiator::new(&n_identity, &psk, [7; 32], 1, &mut msg1).expect("msg1");
        let n_idx = 0x0000_0301;
        let mut frame = [0u8; 1500];
        let tag_key = FrameTagKey::derive(&psk);
        let flen = emit_handshake(HandshakeKind::Init, n_idx, 0, &msg1[..len], &mut frame)
            .expect("init frame");
        seal_tag(&tag_key, &mut frame, flen);
        r.handle_frame(now, IfaceId(0), mac_of(MAC_N), &frame[..flen]);
        let mut resp = None;
        let mut buf = [0u8; 1500];
        while let Some(t) = r.poll_transmit(&mut buf) {
            if let Ok(Frame::Handshake {
                kind: HandshakeKind::Resp,
                sender_idx,
                noise,
                ..
            }) = Frame::parse(&buf[..t.len])
            {
                resp = Some((sender_idx, noise.to_vec()));
            }
        }
        let (r_idx, msg2) = resp.expect("R answers the handshake");
        let mut msg3 = [0u8; MSG3_LEN];
        let (est, len) = init
            .finish(&msg2, &mut msg3, &AcceptPolicy::Open)
            .expect("msg3");
        let flen = emit_handshake(
            HandshakeKind::Finish,
            n_idx,
            r_idx,
            &msg3[..len],
            &mut frame,
        )
        .expect("finish frame");
        seal_tag(&tag_key, &mut frame, flen);
        r.handle_frame(now, IfaceId(0), mac_of(MAC_N), &frame[..flen]);
        assert_eq!(r.sessions(), 1);
        let mut f = Fixture {
            r,
            now,
            born: now,
            to_r: SendKey::new(&est.send_key),
            r_idx,
            group: GroupSender::generate(&mut rng),
            hello_seq: 0,
            seqnos: vec![0; orig.ids.len()],
            next_orig: 0,
            frames: 0,
            rx_allocs: 0,
            rx_frames: 0,
        };
        f.drain();
        let key = f.group.repr();
        f.unicast(|w| w.push_group_key(&key));
        for chunk in orig.anns.chunks(9) {
            f.unicast(|w| chunk.iter().try_for_each(|a| w.push_announce(a)));
        }
        // Warm-up: hellos until the link estimate is settled, one OGM round so every
        // originator is known and routed, then steady frames.
        for _ in 0..4 {
            f.hello();
            f.advance(Duration::from_millis(3500));
        }
        let rounds = orig.ids.len().div_ceil(OGM_BATCH_MAX) as u64;
        for _ in 0..rounds.max(8) {
            f.step(orig);
        }
        assert_eq!(f.r.routing().originator_count(), orig.ids.len());
        for id in &orig.ids {
            assert_eq!(f.r.next_hop(id), Some((IfaceId(0), mac_of(MAC_N))));
        }
        f.rx_allocs = 0;
        f.rx_frames = 0;
        f
    }

    fn expired(&self) -> bool {
        self.now.saturating_since(self.born) >= FIXTURE_LIFETIME
    }

    /// Drain and discard everything R wants to send.
    fn drain(&mut self) {
        let mut buf = [0u8; 1500];
        while self.r.poll_transmit(&mut buf).is_some() {}
        while self.r.poll_event().is_some() {}
    }

    /// Run R's timers up to `now + d`.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.r.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.r.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    fn unicast(&mut self, fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), Error>) {
        let mut frame = [0u8; 1500];
        let counter = self.to_r.next_counter().expect("counter");
        emit_encrypted_header(EncryptedKind::Unicast, self.r_idx, counter, &mut frame)
            .expect("header");
        let mut w = MessageWriter::new(
            plaintext_area_mut(EncryptedKind::Unicast, &mut frame).expect("area"),
        );
        fill(&mut w).expect("messages fit");
        let len = encrypted_frame_len(w.finish_padded());
        let parts = split_encrypted_mut(&mut frame[..len]).expect("parts");
        *parts.tag = self
            .to_r
            .seal_in_place(counter, parts.header, parts.body)
            .expect("seal");
        self.r
            .handle_frame(self.now, IfaceId(0), mac_of(MAC_N), &frame[..len]);
        self.drain();
    }

    /// Build a group-key broadcast frame from N into `frame`; returns its length.
    fn broadcast(
        &mut self,
        frame: &mut [u8; 1500],
        fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), Error>,
    ) -> usize {
        let counter = self.group.next_counter().expect("counter");
        emit_encrypted_header(
            EncryptedKind::Broadcast,
            self.group.key_id(),
            counter,
            frame,
        )
        .expect("header");
        let mut w =
            MessageWriter::new(plaintext_area_mut(EncryptedKind::Broadcast, frame).expect("area"));
        fill(&mut w).expect("messages fit");
        let len = encrypted_frame_len(w.finish());
        let parts = split_encrypted_mut(&mut frame[..len]).expect("parts");
        *parts.tag = self
            .group
            .seal_in_place(counter, parts.header, parts.body)
            .expect("seal");
        len
    }

    fn hello(&mut self) {
        self.hello_seq = self.hello_seq.wrapping_add(1);
        let hello = HelloRepr {
            seq: self.hello_seq,
            interval_10ms: 400,
        };
        let ihu = [IhuEntry {
            mac: mac_of(MAC_R),
            rx_quality: u16::MAX,
        }];
        let mut frame = [0u8; 1500];
        let len = self.broadcast(&mut frame, |w| {
            w.push_hello(&hello)?;
            w.push_ihu(&ihu)
        });
        self.r
            .handle_frame(self.now, IfaceId(0), mac_of(MAC_N), &frame[..len]);
        self.drain();
    }

    /// One frame of `OGM_BATCH_MAX` OGMs (the next originators in turn, each with its next
    /// seqno) handed to R, then R's timers up to the next frame. Returns the time R spent
    /// in `handle_frame` and in its timers and transmits; building N's frame is not counted.
    fn step(&mut self, orig: &Originators) -> (StdDuration, StdDuration) {
        if self.frames.is_multiple_of(HELLO_EVERY) {
            self.hello();
        }
        self.frames += 1;
        let n = orig.ids.len();
        let mut ogms = [None; OGM_BATCH_MAX];
        for slot in ogms.iter_mut().take(n) {
            let k = self.next_orig;
            self.next_orig = (k + 1) % n;
            self.seqnos[k] += 1;
            let seqno = self.seqnos[k];
            *slot = Some(OgmRepr {
                node: orig.ids[k],
                epoch: 1,
                seqno,
                metric: 256,
                ttl: 60,
                flags: 0,
                chain: orig.chains[k].element(seqno).expect("element"),
            });
        }
        let mut frame = [0u8; 1500];
        let len = self.broadcast(&mut frame, |w| {
            ogms.iter().flatten().try_for_each(|o| w.push_ogm(o))
        });
        let allocs = common::allocations();
        let start = std::time::Instant::now();
        self.r
            .handle_frame(self.now, IfaceId(0), mac_of(MAC_N), &frame[..len]);
        let rx = start.elapsed();
        self.rx_allocs += common::allocations() - allocs;
        self.rx_frames += 1;
        let start = std::time::Instant::now();
        self.drain();
        self.advance(FRAME_GAP);
        (rx, start.elapsed())
    }
}

/// Run `iters` OGM frames through the fixture (rebuilt, unmeasured, when it gets old);
/// returns R's time in `handle_frame`, plus its timers if `include_timers`.
fn run_frames(
    fixture: &mut Option<Fixture>,
    orig: &Originators,
    round: &mut u64,
    iters: u64,
    include_timers: bool,
) -> StdDuration {
    let mut total = StdDuration::ZERO;
    for _ in 0..iters {
        if fixture.as_ref().is_none_or(Fixture::expired) {
            *round += 1;
            *fixture = Some(Fixture::new(orig, *round));
        }
        let Some(f) = fixture.as_mut() else {
            continue;
        };
        let (rx, timers) = f.step(orig);
        total += if include_timers { rx + timers } else { rx };
    }
    total
}

fn ogm_processing(c: &mut Criterion) {
    let mut g = c.benchmark_group("ogm");
    g.throughput(Throughput::Elements(OGM_BATCH_MAX as u64));
    for count in [28usize, 1000] {
        let orig = Originators::new(count);
        let mut round = 0;
        let mut fixture = None;
        g.bench_function(BenchmarkId::new("handle_frame", count), |b| {
            b.iter_custom(|iters| run_frames(&mut fixture, &orig, &mut round, iters, false))
        });
        g.bench_function(BenchmarkId::new("with_rebroadcast", count), |b| {
            b.iter_custom(|iters| run_frames(&mut fixture, &orig, &mut round, iters, true))
        });
        if let Some(f) = &fixture {
            let c = f.r.routing().counters();
            eprintln!(
                "ogm/{count}: fixture {round} accepted {}, forwarded {}, rate-limited {}, \
                 invalid {}, stale {}, drops {}, allocations in handle_frame {} over {} frames",
                c.ogm_accepted,
                c.ogm_forwarded,
                c.ogm_forward_rate_limited,
                c.ogm_invalid,
                c.ogm_stale,
                f.r.stats().total_drops(),
                f.rx_allocs,
                f.rx_frames
            );
        }
    }
    g.finish();
}

fn next_hop(c: &mut Criterion) {
    let orig = Originators::new(1000);
    let f = Fixture::new(&orig, 99);
    let r = &f.r;
    assert_eq!(r.routing().originator_count(), 1000);
    let unknown = NodeId([0xEE; 16]);
    let mut g = c.benchmark_group("next_hop_1000");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("node_hit", |b| {
        b.iter(|| {
            i = (i + 1) % orig.ids.len();
            black_box(r.next_hop(black_box(&orig.ids[i])))
        })
    });
    g.bench_function("routing_hit", |b| {
        b.iter(|| {
            i = (i + 1) % orig.ids.len();
            black_box(r.routing().next_hop(black_box(&orig.ids[i])))
        })
    });
    g.bench_function("node_miss", |b| {
        b.iter(|| black_box(r.next_hop(black_box(&unknown))))
    });
    g.finish();

    // Reference: one hash-chain step, the per-OGM verification cost when seqnos advance by 1.
    let mut x = [7u8; 16];
    c.bench_function("chain_hash", |b| {
        b.iter(|| {
            x = chain_hash(black_box(&x));
            x
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(StdDuration::from_secs(1))
        .measurement_time(StdDuration::from_secs(3));
    targets = ogm_processing, next_hop
}
criterion_main!(benches);
