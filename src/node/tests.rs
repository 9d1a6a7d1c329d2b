//! Node-level tests: two nodes wired back to back, and hostile input.

use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::control::signed_chain;
use super::*;
use crate::crypto::Identity;
use crate::time::Duration;

/// Shortcuts into the parts, for tests that play one message or step directly.
impl Node {
    fn on_announce(
        &mut self,
        now: Instant,
        source: (IfaceId, MacAddr),
        bytes: &[u8; crate::wire::ANNOUNCE_LEN],
    ) -> Option<NodeId> {
        self.control
            .on_announce(now, source, bytes, &mut self.link, &mut self.shared)
    }

    fn on_ogm(&mut self, now: Instant, iface: IfaceId, mac: MacAddr, ogm: &crate::wire::OgmRepr) {
        self.control
            .on_ogm(now, (iface, mac), ogm, &mut self.link, &mut self.shared)
    }

    fn adopt_chain(&mut self, start: u32) -> bool {
        let (identity, epoch) = (&self.shared.identity, self.shared.epoch);
        self.control.adopt_chain(start, identity, epoch)
    }

    fn own_ann(&self) -> [u8; crate::wire::ANNOUNCE_LEN] {
        *self.control.own_announcement()
    }

    fn on_e2e_payload(&mut self, now: Instant, payload: &[u8]) {
        let (data, mut env) = self.data_env();
        data.on_e2e_payload(now, payload, &mut env);
    }

    fn e2e_send(&mut self, now: Instant, dst: NodeId, ttl: u8, packet: &[u8]) {
        let (data, mut env) = self.data_env();
        data.e2e_send(now, dst, ttl, packet, &mut env);
    }
}

pub(super) fn node(i: u8, now: Instant) -> Node {
    node_with(i, now, NodeConfig::default())
}

fn node_with(i: u8, now: Instant, cfg: NodeConfig) -> Node {
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(i));
    let id = Identity::generate(&mut rng);
    let mut n = Node::new(cfg, id, 1, [i; 32], now).unwrap();
    n.add_interface(now, IfaceId(0), mac(i));
    n
}

/// A UDP packet from `a`'s overlay address to `b`'s carrying `payload`, and its length.
fn udp_between(a: &Node, b: &Node, payload: &[u8]) -> ([u8; 200], usize) {
    let mut pkt = [0u8; 200];
    let len = crate::overlay::build::build_udp6(
        &mut pkt,
        &a.overlay_ipv6(),
        &b.overlay_ipv6(),
        (5, 9),
        payload,
    )
    .unwrap();
    (pkt, len)
}

fn mac(i: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, i])
}

/// Send one packet from `a` to `b` and pass frames both ways until `b` delivers it: `a`
/// and `b` then hold an end-to-end session.
fn connect_e2e(a: &mut Node, b: &mut Node, now: Instant) {
    let (pkt, len) = udp_between(a, b, b"hi");
    a.handle_ip_packet(now, &pkt[..len]);
    let mut buf = [0u8; 1500];
    for _ in 0..4 {
        while let Some(t) = a.poll_transmit(&mut buf) {
            b.handle_frame(now, IfaceId(0), mac(1), &buf[..t.len]);
        }
        while let Some(t) = b.poll_transmit(&mut buf) {
            a.handle_frame(now, IfaceId(0), mac(2), &buf[..t.len]);
        }
    }
    assert!(
        b.poll_deliver(&mut buf).is_some(),
        "the first packet arrived"
    );
    assert_eq!(b.stats().e2e_sessions_established, 1);
}

/// Run two directly connected nodes for `secs` of virtual time; returns every frame sent.
pub(super) fn run_pair(a: &mut Node, b: &mut Node, start: Instant, secs: u64) -> Vec<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1500];
    let end = start + Duration::from_secs(secs);
    let mut now = start;
    while now < end {
        a.handle_timeout(now);
        b.handle_timeout(now);
        loop {
            let mut moved = false;
            while let Some(t) = a.poll_transmit(&mut buf) {
                seen.push(buf[..t.len].to_vec());
                b.handle_frame(now, IfaceId(0), mac(1), &buf[..t.len]);
                moved = true;
            }
            while let Some(t) = b.poll_transmit(&mut buf) {
                seen.push(buf[..t.len].to_vec());
                a.handle_frame(now, IfaceId(0), mac(2), &buf[..t.len]);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        now += Duration::from_millis(10);
    }
    seen
}

#[test]
fn two_nodes_pair_route_and_carry_a_packet() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 10);
    assert_eq!(a.sessions(), 1);
    assert_eq!(b.sessions(), 1);
    assert_eq!(a.next_hop(&b.node_id()), Some((IfaceId(0), mac(2))));
    let (pkt, len) = udp_between(&a, &b, b"hello");
    let now = t0 + Duration::from_secs(10);
    connect_e2e(&mut a, &mut b, now);
    a.handle_ip_packet(now, &pkt[..len]);
    let mut frame = [0u8; 1500];
    let mut sent = None;
    while let Some(t) = a.poll_transmit(&mut frame) {
        if t.len == crate::wire::UNICAST_FRAME_LEN {
            sent = Some(t);
            b.handle_frame(now, IfaceId(0), mac(1), &frame[..t.len]);
        }
    }
    assert!(sent.is_some(), "a sent a data frame");
    let mut out = [0u8; 1500];
    let n = b.poll_deliver(&mut out).expect("b delivers the packet");
    assert_eq!(&out[..n], &pkt[..len]);
    // The same frame again is a replay.
    b.handle_frame(
        now,
        IfaceId(0),
        mac(1),
        &frame[..crate::wire::UNICAST_FRAME_LEN],
    );
    assert_eq!(b.stats().drops(DropReason::Replay), 1);
    assert!(b.poll_deliver(&mut out).is_none());
}

#[test]
fn frames_from_our_own_mac_are_dropped_and_counted() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    let now = t0 + Duration::from_secs(1);
    b.handle_timeout(now);
    let mut buf = [0u8; 1500];
    let hello = loop {
        let t = b.poll_transmit(&mut buf).expect("b says hello");
        if matches!(
            crate::wire::Frame::parse(&buf[..t.len]),
            Ok(crate::wire::Frame::Hello { .. })
        ) {
            break buf[..t.len].to_vec();
        }
    };
    let mut out = [0u8; 1500];
    while a.poll_transmit(&mut out).is_some() {}
    // b's hello spoofed with a's own MAC (or looped back by a bridge): no neighbour, no
    // handshake with ourselves.
    a.handle_frame(now, IfaceId(0), mac(1), &hello);
    assert_eq!(a.stats().drops(DropReason::OwnSourceMac), 1);
    assert_eq!(a.neighbors().count(), 0);
    assert!(
        a.poll_transmit(&mut out).is_none(),
        "a answered its own MAC"
    );
    // The same hello from b's MAC starts a handshake (so the check above can fail).
    a.handle_frame(now, IfaceId(0), mac(2), &hello);
    assert_eq!(a.neighbors().count(), 1);
    assert!(
        a.poll_transmit(&mut out).is_some(),
        "a answers a real neighbour"
    );
    assert_eq!(a.stats().drops(DropReason::OwnSourceMac), 1);
}

#[test]
fn sessions_rekey_on_time_and_traffic_keeps_flowing() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 10);
    assert_eq!(a.stats().sessions_established, 1);
    // REKEY_AFTER_TIME is 300 s: by 400 s each side has made a second session, and the
    // link never went away in between.
    run_pair(&mut a, &mut b, t0 + Duration::from_secs(10), 390);
    assert_eq!(a.stats().sessions_established, 2);
    assert_eq!(b.stats().sessions_established, 2);
    assert_eq!(a.sessions(), 1);
    assert_eq!(a.next_hop(&b.node_id()), Some((IfaceId(0), mac(2))));
    assert_eq!(a.stats().drops(DropReason::DecryptFailed), 0);
}

#[test]
fn own_announcement_keeps_the_ipv4_claim_across_chains() {
    let t0 = Instant::ZERO;
    let cfg = NodeConfig {
        ipv4_pool: Some("10.77.0.0/16".parse().unwrap()),
        ..NodeConfig::default()
    };
    let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(3));
    let mut n = Node::new(cfg, id, 1, [3; 32], t0).unwrap();
    let me = n.node_id();
    // The stored copy (what requests are answered with and what is pushed) is the signed one.
    assert_eq!(n.announcement(&me).unwrap().ipv4_claim, Some(0));
    assert_eq!(n.own_ann(), *n.control.announcement_bytes(&me).unwrap());
    assert!(n.overlay_ipv4().is_some());
    // A new hash chain (the old one ran out) is announced with the same claim.
    assert!(n.adopt_chain(5000));
    let ann = n.announcement(&me).unwrap();
    assert_eq!((ann.chain_start, ann.ipv4_claim), (5000, Some(0)));
    assert!(n.control.chain().element(5000).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes, and valid frames with bytes flipped or cut, never panic the node,
    /// and every frame that does not parse is counted.
    #[test]
    fn hostile_frames_are_counted_never_panic(
        garbage in proptest::collection::vec(any::<u8>(), 0..1600),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
        pick in any::<usize>(),
    ) {
        let t0 = Instant::ZERO;
        let (mut a, mut b) = (node(1, t0), node(2, t0));
        let frames = run_pair(&mut a, &mut b, t0, 3);
        prop_assume!(!frames.is_empty());
        let now = t0 + Duration::from_secs(3);
        let before = b.stats().frames_in;
        b.handle_frame(now, IfaceId(0), mac(1), &garbage);
        let mut frame = frames[pick % frames.len()].clone();
        for (at, x) in &flips {
            let i = at % frame.len();
            frame[i] ^= x | 1;
        }
        b.handle_frame(now, IfaceId(0), mac(1), &frame);
        let end = cut % (frame.len() + 1);
        b.handle_frame(now, IfaceId(0), mac(1), &frame[..end]);
        b.handle_timeout(now + Duration::from_secs(1));
        prop_assert_eq!(b.stats().frames_in, before + 3);
        // Still healthy: the session with a survives.
        prop_assert_eq!(b.sessions(), 1);
    }
}

#[test]
fn a_member_handshaking_from_a_neighbours_mac_does_not_take_its_live_session() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 10);
    assert_eq!(a.sessions(), 1);
    // m is another member (it has the PSK) with b's MAC: it hears what a sends and talks
    // to a as b would.
    let start = t0 + Duration::from_secs(10);
    let mut m = {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let id = Identity::generate(&mut rng);
        let mut n = Node::new(NodeConfig::default(), id, 1, [3; 32], start).unwrap();
        n.add_interface(start, IfaceId(0), mac(2));
        n
    };
    let mut buf = [0u8; 1500];
    let mut now = start;
    while now < start + Duration::from_secs(20) {
        for n in [&mut a, &mut b, &mut m] {
            n.handle_timeout(now);
        }
        loop {
            let mut moved = false;
            while let Some(t) = a.poll_transmit(&mut buf) {
                b.handle_frame(now, IfaceId(0), mac(1), &buf[..t.len]);
                m.handle_frame(now, IfaceId(0), mac(1), &buf[..t.len]);
                moved = true;
            }
            for from in [&mut b, &mut m] {
                while let Some(t) = from.poll_transmit(&mut buf) {
                    a.handle_frame(now, IfaceId(0), mac(2), &buf[..t.len]);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        now += Duration::from_millis(10);
    }
    let link = a.link.find(IfaceId(0), mac(2)).unwrap();
    assert_eq!(
        a.link.peer(link),
        Some(b.node_id()),
        "b's session was replaced"
    );
    assert!(
        a.stats().drops(DropReason::IdentityConflict) > 0,
        "m never got that far"
    );
    assert_eq!(a.sessions(), 1);
    assert_eq!(a.next_hop(&b.node_id()), Some((IfaceId(0), mac(2))));
}

/// Run nodes whose interface MACs are `mac(1)`, `mac(2)`, … (`nodes[i]` has `mac(i + 1)`)
/// for `secs` from `start`; `hears(from, to)` says whether a frame gets through.
fn run_mesh(nodes: &mut [Node], hears: impl Fn(usize, usize) -> bool, start: Instant, secs: u64) {
    let mut buf = [0u8; 1500];
    let mut now = start;
    while now < start + Duration::from_secs(secs) {
        for n in nodes.iter_mut() {
            n.handle_timeout(now);
        }
        loop {
            let mut moved = false;
            for from in 0..nodes.len() {
                while let Some(t) = nodes[from].poll_transmit(&mut buf) {
                    moved = true;
                    for to in (0..nodes.len()).filter(|&to| to != from && hears(from, to)) {
                        if t.dst == MacAddr::BROADCAST || t.dst == mac(to as u8 + 1) {
                            let src = mac(from as u8 + 1);
                            nodes[to].handle_frame(now, IfaceId(0), src, &buf[..t.len]);
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
        now += Duration::from_millis(10);
    }
}

/// The next broadcast frame `n` sends after `now` (its hello, at the latest).
fn next_broadcast(n: &mut Node, mut now: Instant) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    loop {
        n.handle_timeout(now);
        while let Some(t) = n.poll_transmit(&mut buf) {
            if t.dst == MacAddr::BROADCAST && buf[0] == 0x16 {
                return buf[..t.len].to_vec();
            }
        }
        now += Duration::from_millis(10);
    }
}

#[test]
fn a_group_key_delivered_again_keeps_its_replay_window() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 10);
    let now = t0 + Duration::from_secs(10);
    let recorded = next_broadcast(&mut b, now);
    a.handle_frame(now, IfaceId(0), mac(2), &recorded);
    let replays = a.stats().drops(DropReason::Replay);
    // An outsider sends one broadcast from b's MAC under a key id a does not know: a asks
    // b for its key again, and b sends the same key.
    let mut spoof = recorded.clone();
    spoof[1..5].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
    a.handle_frame(now, IfaceId(0), mac(2), &spoof);
    let mut buf = [0u8; 1500];
    let mut asked = false;
    while let Some(t) = a.poll_transmit(&mut buf) {
        asked |= t.dst == mac(2);
        b.handle_frame(now, IfaceId(0), mac(1), &buf[..t.len]);
    }
    assert!(asked, "a did not ask b for its key");
    let mut answered = false;
    while let Some(t) = b.poll_transmit(&mut buf) {
        answered |= t.dst == mac(1);
        a.handle_frame(now, IfaceId(0), mac(2), &buf[..t.len]);
    }
    assert!(answered, "b did not send its key again");
    // The recorded broadcast is still a replay.
    a.handle_frame(now, IfaceId(0), mac(2), &recorded);
    assert_eq!(a.stats().drops(DropReason::Replay), replays + 1);
}

#[test]
fn group_keys_rotate_on_time_without_losing_broadcasts() {
    let t0 = Instant::ZERO;
    let mut nodes = vec![node(1, t0), node(2, t0)];
    run_mesh(&mut nodes, |_, _| true, t0, 10);
    let before = nodes[1].stats().drops(DropReason::UnknownGroupKey);
    run_mesh(
        &mut nodes,
        |_, _| true,
        t0 + Duration::from_secs(10),
        link_layer::GROUP_KEY_LIFETIME.as_micros() / 1_000_000 + 30,
    );
    assert!(nodes[0].stats().group_key_rotations >= 1);
    let missed = nodes[1].stats().drops(DropReason::UnknownGroupKey) - before;
    assert_eq!(missed, 0, "b missed broadcasts under a's new key");
    assert_eq!(nodes[0].sessions(), 1);
    assert_eq!(nodes[1].sessions(), 1);
}

#[test]
fn a_darknet_member_that_left_cannot_read_later_broadcasts() {
    let t0 = Instant::ZERO;
    let ids: Vec<Identity> = (1..=3u8)
        .map(|i| Identity::generate(&mut ChaCha20Rng::seed_from_u64(u64::from(i))))
        .collect();
    let allowed = ids.iter().map(|id| id.public().ed25519);
    let cfg = NodeConfig {
        policy: crate::crypto::AcceptPolicy::allow_list(allowed).unwrap(),
        ..NodeConfig::default()
    };
    let mut nodes: Vec<Node> = ids
        .into_iter()
        .zip(1..=3u8)
        .map(|(id, i)| {
            let mut n = Node::new(cfg.clone(), id, 1, [i; 32], t0).unwrap();
            n.add_interface(t0, IfaceId(0), mac(i));
            n
        })
        .collect();
    run_mesh(&mut nodes, |_, _| true, t0, 10);
    assert!(nodes.iter().all(|n| n.sessions() == 2));
    // c (index 2) leaves: nobody hears it any more, but it keeps listening.
    let left = t0 + Duration::from_secs(10);
    let rotations = nodes[0].stats().group_key_rotations;
    run_mesh(&mut nodes, |from, _| from != 2, left, 30);
    assert!(
        nodes[0].stats().group_key_rotations > rotations,
        "a kept its key"
    );
    let now = left + Duration::from_secs(30);
    let later = next_broadcast(&mut nodes[0], now);
    let c = &mut nodes[2];
    let (opened, unknown) = (
        c.stats().frames_in,
        c.stats().drops(DropReason::UnknownGroupKey),
    );
    c.handle_frame(now, IfaceId(0), mac(1), &later);
    assert_eq!(c.stats().frames_in, opened + 1);
    assert_eq!(
        c.stats().drops(DropReason::UnknownGroupKey),
        unknown + 1,
        "c opened a broadcast a sent after it left"
    );
    // b, still a member, reads it.
    let b = &mut nodes[1];
    let unknown = b.stats().drops(DropReason::UnknownGroupKey);
    b.handle_frame(now, IfaceId(0), mac(1), &later);
    assert_eq!(b.stats().drops(DropReason::UnknownGroupKey), unknown);
    assert_eq!(b.stats().drops(DropReason::DecryptFailed), 0);
}

#[test]
fn a_neighbour_renewing_its_announcement_gets_one_table_dump_per_gap() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 10);
    // Well after the dump that followed the handshake.
    let now = t0 + Duration::from_secs(30);
    let mut buf = [0u8; 1500];
    while a.poll_transmit(&mut buf).is_some() {}
    let link = b.link.find(IfaceId(0), mac(1)).unwrap();
    let mut dumps_to_b = 0;
    for round in 0..5u32 {
        // b starts a new chain (a new announcement of itself) and sends it over the
        // session: to a, b looks new or restarted each time.
        assert!(b.adopt_chain(1000 * (round + 1)));
        let ann = b.own_ann();
        let stats = &mut b.shared.stats;
        assert!(b
            .link
            .queue_unicast(link, true, stats, |w| w.push_announce(&ann)));
        while let Some(t) = b.poll_transmit(&mut buf) {
            if t.dst == mac(1) {
                a.handle_frame(now, IfaceId(0), mac(2), &buf[..t.len]);
            }
        }
        while let Some(t) = a.poll_transmit(&mut buf) {
            dumps_to_b += usize::from(t.dst == mac(2));
        }
    }
    assert_eq!(dumps_to_b, 1, "a dumped its table {dumps_to_b} times");
    assert_eq!(a.stats().drops(DropReason::TableDumpRateLimited), 4);
}

/// Hand `b` everything `a` sends; returns how many packets `b` delivered to its TUN side.
fn deliver_all(a: &mut Node, b: &mut Node, now: Instant) -> usize {
    let (mut buf, mut out) = ([0u8; 1500], [0u8; 1500]);
    let mut delivered = 0;
    while let Some(t) = a.poll_transmit(&mut buf) {
        b.handle_frame(now, IfaceId(0), mac(1), &buf[..t.len]);
        while b.poll_deliver(&mut out).is_some() {
            delivered += 1;
        }
    }
    delivered
}

#[test]
fn control_and_data_frames_cannot_crowd_each_other_out() {
    let t0 = Instant::ZERO;
    let cfg = NodeConfig {
        tx_queue: 16,
        tx_control_queue: 4,
        ..NodeConfig::default()
    };
    let (mut a, mut b) = (node_with(1, t0, cfg), node(2, t0));
    run_pair(&mut a, &mut b, t0, 10);
    assert_eq!(a.sessions(), 1);
    connect_e2e(&mut a, &mut b, t0 + Duration::from_secs(10));
    let (pkt, len) = udp_between(&a, &b, b"x");
    // Control piles up unsent (hellos and OGMs of 10 s) beyond its queue...
    let mut now = t0 + Duration::from_secs(10);
    for _ in 0..100 {
        now += Duration::from_millis(100);
        a.handle_timeout(now);
    }
    assert!(a.stats().drops(DropReason::TxControlQueueFull) > 0);
    // ...and data still gets every one of its slots (one link may take half of them).
    for _ in 0..8 {
        a.handle_ip_packet(now, &pkt[..len]);
    }
    assert_eq!(a.stats().drops(DropReason::TxLinkQueueFull), 0);
    assert_eq!(deliver_all(&mut a, &mut b, now), 8);
    // The reverse: data beyond its queue is dropped and counted, control still goes out.
    for _ in 0..20 {
        a.handle_ip_packet(now, &pkt[..len]);
    }
    assert_eq!(a.stats().drops(DropReason::TxLinkQueueFull), 12);
    let control_before = a.stats().control_bytes_out;
    a.handle_timeout(now + Duration::from_secs(5));
    assert_eq!(deliver_all(&mut a, &mut b, now), 8);
    assert!(
        a.stats().control_bytes_out > control_before,
        "a hello went out past a full data queue"
    );
}

/// Announcements of `n` identities made up from `seed`, each validly signed by its own key.
fn made_up_announcements(seed: u64, n: usize) -> Vec<[u8; crate::wire::ANNOUNCE_LEN]> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let id = Identity::generate(&mut rng);
            let chain = crate::crypto::ChainSigner::new(&id, 1, 0, 64).unwrap();
            crate::crypto::Announcement::for_chain(&id, 1, &chain)
                .sign(&id)
                .unwrap()
        })
        .collect()
}

#[test]
fn a_neighbour_pushing_new_announcements_gets_a_bounded_number_checked() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 10);
    let now = t0 + Duration::from_secs(10);
    let from_b = (IfaceId(0), mac(2));
    let burst = ANNOUNCE_CHECK_BURST as usize;
    let anns = made_up_announcements(77, burst + 188);
    for ann in &anns[..burst + 88] {
        a.on_announce(now, from_b, ann);
    }
    let limited = |n: &Node| n.stats().drops(DropReason::AnnounceCheckRateLimited);
    assert_eq!(limited(&a), 88);
    // A second later, 64 more signature checks are b's due.
    for ann in &anns[burst + 88..] {
        a.on_announce(now + Duration::from_secs(1), from_b, ann);
    }
    assert_eq!(limited(&a), 88 + 100 - 64);
    // Copies of what is held cost no check and no budget.
    let held = a.control.announcement_bytes(&b.node_id()).copied().unwrap();
    assert_eq!(
        a.on_announce(now + Duration::from_secs(1), from_b, &held),
        None
    );
    assert_eq!(limited(&a), 88 + 36);
}

#[test]
fn every_session_expiring_in_one_tick_is_reported_to_routing() {
    // A hub with 20 spokes (more than the 16 lost-session notices the housekeeping once had
    // room for per tick): sessions made together at start expire together at
    // REJECT_AFTER_TIME, because from 10 s on only broadcasts get through (no rekey).
    let t0 = Instant::ZERO;
    let spokes = 20;
    let mut nodes: Vec<Node> = (1..=spokes + 1).map(|i| node(i as u8, t0)).collect();
    let star = |from: usize, to: usize| from == 0 || to == 0;
    let mut buf = [0u8; 1500];
    let mut now = t0;
    let mut down_at = Vec::new();
    while now < t0 + crate::crypto::session::REJECT_AFTER_TIME + Duration::from_secs(2) {
        for n in nodes.iter_mut() {
            n.handle_timeout(now);
        }
        let unicast_ok = now < t0 + Duration::from_secs(10);
        let mut moved = true;
        while moved {
            moved = false;
            for from in 0..nodes.len() {
                while let Some(t) = nodes[from].poll_transmit(&mut buf) {
                    moved = true;
                    let broadcast = t.dst == MacAddr::BROADCAST;
                    for to in (0..nodes.len()).filter(|&to| to != from && star(from, to)) {
                        if broadcast || (unicast_ok && t.dst == mac(to as u8 + 1)) {
                            let src = mac(from as u8 + 1);
                            nodes[to].handle_frame(now, IfaceId(0), src, &buf[..t.len]);
                        }
                    }
                }
            }
        }
        while let Some(e) = nodes[0].poll_event() {
            if let Event::Routing(crate::routing::Event::NeighborDown {
                reason: crate::routing::DownReason::Deauthenticated,
                ..
            }) = e
            {
                down_at.push(now);
            }
        }
        if now == t0 + Duration::from_secs(10) {
            assert_eq!(nodes[0].sessions(), spokes, "every spoke has its session");
        }
        now += Duration::from_millis(10);
    }
    assert_eq!(down_at.len(), spokes, "each lost session reported once");
    let first = down_at[0];
    let same_tick = down_at.iter().filter(|t| **t == first).count();
    assert!(
        same_tick > 16,
        "only {same_tick} expired in one tick: {down_at:?}"
    );
    assert_eq!(nodes[0].sessions(), 0);
}

#[test]
fn an_older_announcement_is_taken_on_its_nodes_own_word_only() {
    let t0 = Instant::ZERO;
    let mut nodes: Vec<Node> = (1..=3u8).map(|i| node(i, t0)).collect();
    run_mesh(&mut nodes, |_, _| true, t0, 10);
    let now = t0 + Duration::from_secs(10);
    let c = nodes[2].node_id();
    assert!(nodes[0]
        .routing()
        .route(&c)
        .is_some_and(|r| r.next_hop.is_some()));
    // c's announcement of an older epoch (0; it runs in 1), validly signed: what c would
    // send after losing its state, or what anyone who recorded it could replay.
    let c_identity = Identity::generate(&mut ChaCha20Rng::seed_from_u64(3));
    let (_, older) = signed_chain(&c_identity, 0, 0, None).unwrap();
    let a = &mut nodes[0];
    // Relayed by b while a reaches c: a replay, refused.
    assert_eq!(a.on_announce(now, (IfaceId(0), mac(2)), &older), None);
    assert_eq!(a.stats().drops(DropReason::AnnounceStale), 1);
    assert!(a.routing().route(&c).is_some());
    // Over c's own session: c restarted. Its old epoch is forgotten at once.
    assert_eq!(a.on_announce(now, (IfaceId(0), mac(3)), &older), Some(c));
    assert!(a.routing().route(&c).is_none());
    assert_eq!(a.routing().counters().originators_restarted, 1);
    assert_eq!(a.announcement(&c).map(|ann| ann.epoch), Some(0));
}

#[test]
fn an_older_epoch_relayed_behind_a_retraction_is_fetched_and_parked() {
    let t0 = Instant::ZERO;
    let mut nodes: Vec<Node> = (1..=3u8).map(|i| node(i, t0)).collect();
    run_mesh(&mut nodes, |_, _| true, t0, 10);
    // c goes silent: a and b lose it, b retracts its route to a.
    run_mesh(
        &mut nodes,
        |f, t| f != 2 && t != 2,
        t0 + Duration::from_secs(10),
        30,
    );
    let now = t0 + Duration::from_secs(40);
    let c = nodes[2].node_id();
    assert!(
        nodes[0].routing().next_hop(&c).is_none(),
        "a still reaches c"
    );
    // c came back in an older epoch (0; it ran in 1) and b relays its first OGM to a.
    let c_identity = Identity::generate(&mut ChaCha20Rng::seed_from_u64(3));
    let (chain, _) = signed_chain(&c_identity, 0, 0, None).unwrap();
    let ogm = crate::wire::OgmRepr {
        node: c,
        epoch: 0,
        seqno: 1,
        metric: 300,
        ttl: 63,
        flags: 0,
        chain: chain.element(1).unwrap(),
    };
    let a = &mut nodes[0];
    a.on_ogm(now, IfaceId(0), mac(2), &ogm);
    assert_eq!(a.routing().counters().ogm_older_epoch_fetched, 1);
    assert_eq!(a.routing().counters().ogm_old, 0);
    assert_eq!(
        a.control.pending_ogms(),
        1,
        "the OGM waits for the announcement"
    );
}

#[test]
fn link_deadlines_fire_when_due_not_on_a_periodic_tick() {
    use super::link_layer::{Trigger, IDLE_LINK_TIMEOUT};
    let t0 = Instant::ZERO;
    let mut a = node(1, t0);
    let ms = Duration::from_millis;
    // Nothing but routing and the group key's lifetime wakes a node without links.
    assert_eq!(
        a.shared.timers.next(),
        Some(t0 + link_layer::GROUP_KEY_LIFETIME)
    );
    // A handshake toward a MAC that never answers, started between two old 500 ms ticks.
    let start = t0 + ms(300);
    let to = (IfaceId(0), mac(9));
    a.link
        .maybe_initiate(start, to, Trigger::Authenticated, &mut a.shared);
    let pending = |a: &Node| a.link.handshake_pending(IfaceId(0), mac(9));
    assert_eq!(pending(&a), Some(true));
    assert_eq!(
        a.poll_timeout(),
        Some(start + HANDSHAKE_TIMEOUT).min(a.routing().poll_timeout())
    );
    a.handle_timeout(start + (HANDSHAKE_TIMEOUT - ms(1)));
    assert_eq!(pending(&a), Some(true));
    a.handle_timeout(start + HANDSHAKE_TIMEOUT);
    assert_eq!(
        pending(&a),
        Some(false),
        "abandoned the moment it timed out"
    );
    // The link, now idle, is forgotten when it has been silent for IDLE_LINK_TIMEOUT.
    assert_eq!(a.shared.timers.next(), Some(start + IDLE_LINK_TIMEOUT));
    a.handle_timeout(start + (IDLE_LINK_TIMEOUT - ms(1)));
    assert!(a.link.find(IfaceId(0), mac(9)).is_some());
    a.handle_timeout(start + IDLE_LINK_TIMEOUT);
    assert!(a.link.find(IfaceId(0), mac(9)).is_none());
    assert_eq!(
        a.shared.timers.next(),
        Some(t0 + link_layer::GROUP_KEY_LIFETIME)
    );
}

#[test]
fn clear_hellos_thin_out_once_the_interface_has_a_session() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    let first = run_pair(&mut a, &mut b, t0, 2);
    assert!(a.sessions() == 1 && b.sessions() == 1);
    let rest = run_pair(&mut a, &mut b, t0 + Duration::from_secs(2), 120);
    let count = |frames: &[Vec<u8>], kind: u8| frames.iter().filter(|f| f[0] == kind).count();
    assert!(
        count(&first, 0x11) >= 1,
        "discovery starts with a clear hello"
    );
    // Two nodes, one encrypted hello each per round; a clear one every fourth round.
    let (clear, rounds) = (count(&rest, 0x11), count(&rest, 0x16));
    assert!(rounds > 40, "{rounds} broadcasts");
    assert!(
        clear > 0,
        "newcomers still hear a tagged hello now and then"
    );
    assert!(
        clear * 3 < rounds,
        "{clear} clear hellos for {rounds} broadcasts"
    );
}

#[test]
fn a_member_sealing_a_packet_under_anothers_address_is_dropped_at_the_destination() {
    let t0 = Instant::ZERO;
    let mut nodes: Vec<Node> = (1..=3u8).map(|i| node(i, t0)).collect();
    run_mesh(&mut nodes, |_, _| true, t0, 10);
    let d = nodes[2].node_id();
    let (honest, hlen) = udp_between(&nodes[1], &nodes[2], b"honest");
    let (forged, flen) = udp_between(&nodes[0], &nodes[2], b"forged");
    // Member m (nodes[1]) seals, under its own session with d, one packet from its own
    // address and one claiming to come from a (nodes[0]).
    let now = t0 + Duration::from_secs(10);
    nodes[1].e2e_send(now, d, DATA_TTL, &honest[..hlen]);
    run_mesh(&mut nodes, |_, _| true, now, 1);
    let now = now + Duration::from_secs(1);
    nodes[1].e2e_send(now, d, DATA_TTL, &forged[..flen]);
    run_mesh(&mut nodes, |_, _| true, now, 1);
    let mut out = [0u8; 1500];
    let mut delivered = Vec::new();
    while let Some(n) = nodes[2].poll_deliver(&mut out) {
        delivered.push(out[..n].to_vec());
    }
    assert_eq!(delivered, vec![honest[..hlen].to_vec()]);
    assert_eq!(nodes[2].stats().drops(DropReason::ForgedSource), 1);
}

/// Every frame `n` has queued, as (destination, bytes).
fn drain_frames(n: &mut Node) -> Vec<(MacAddr, Vec<u8>)> {
    let mut buf = [0u8; 1500];
    let mut out = Vec::new();
    while let Some(t) = n.poll_transmit(&mut buf) {
        out.push((t.dst, buf[..t.len].to_vec()));
    }
    out
}

#[test]
fn a_relay_reseals_in_the_receive_buffer_the_frame_it_would_have_queued() {
    // Two identical lines 1–2–3: the relay of one copies (handle_frame), the other's
    // relays in the receive buffer (handle_frame_mut).
    let t0 = Instant::ZERO;
    let line = |_| {
        let mut nodes: Vec<Node> = (1..=3u8).map(|i| node(i, t0)).collect();
        run_mesh(&mut nodes, |a, b| a.abs_diff(b) == 1, t0, 20);
        let (pkt, len) = udp_between(&nodes[0], &nodes[2], b"session set-up");
        let now = t0 + Duration::from_secs(20);
        nodes[0].handle_ip_packet(now, &pkt[..len]);
        run_mesh(&mut nodes, |a, b| a.abs_diff(b) == 1, now, 1);
        let mut sink = [0u8; 1500];
        assert!(nodes[2].poll_deliver(&mut sink).is_some(), "session set up");
        nodes
    };
    let (mut copying, mut in_place) = (line(0), line(1));
    let now = t0 + Duration::from_secs(21);
    let (pkt, len) = udp_between(&copying[0], &copying[2], b"relayed without a copy");
    let mut sent = Vec::new();
    for nodes in [&mut copying, &mut in_place] {
        nodes[0].handle_ip_packet(now, &pkt[..len]);
        let frames = drain_frames(&mut nodes[0]);
        assert_eq!(frames.len(), 1, "one sealed data frame");
        sent.push(frames);
    }
    assert_eq!(sent[0], sent[1], "both sources sent the same frame");
    let (_, frame) = &sent[0][0];

    copying[1].handle_frame(now, IfaceId(0), mac(1), frame);
    let queued = drain_frames(&mut copying[1]);
    let mut buf = frame.clone();
    let t = in_place[1]
        .handle_frame_mut(now, IfaceId(0), mac(1), &mut buf)
        .expect("relayed in place");
    assert_eq!((t.iface, t.dst, t.len), (IfaceId(0), mac(3), 1500));
    let mut from_buffer = vec![(t.dst, buf[..t.len].to_vec())];
    from_buffer.extend(drain_frames(&mut in_place[1]));
    // The same frames, byte for byte; the queued relayed frame waits its link lane's turn.
    let (mut queued, mut from_buffer) = (queued, from_buffer);
    queued.sort();
    from_buffer.sort();
    assert_eq!(queued, from_buffer, "same frames, byte for byte");
    assert_eq!(in_place[1].stats().forwarded, copying[1].stats().forwarded);
    assert_eq!(
        in_place[1].stats().frames_out,
        copying[1].stats().frames_out
    );

    // The destination opens it and delivers the packet.
    in_place[2].handle_frame_mut(now, IfaceId(0), mac(2), &mut buf[..t.len]);
    let mut out = [0u8; 1500];
    let n = in_place[2].poll_deliver(&mut out).expect("delivered");
    assert_eq!(&out[..n], &pkt[..len]);

    // The same frame again, or a tampered one, is not relayed and leaves nothing to send.
    let mut again = frame.clone();
    assert!(in_place[1]
        .handle_frame_mut(now, IfaceId(0), mac(1), &mut again)
        .is_none());
    assert_eq!(in_place[1].stats().drops(DropReason::Replay), 1);
    in_place[0].handle_ip_packet(now, &pkt[..len]);
    let (_, mut bad) = drain_frames(&mut in_place[0]).remove(0);
    bad[100] ^= 1;
    assert!(in_place[1]
        .handle_frame_mut(now, IfaceId(0), mac(1), &mut bad)
        .is_none());
    assert_eq!(in_place[1].stats().drops(DropReason::DecryptFailed), 1);
    assert!(drain_frames(&mut in_place[1]).is_empty());
}

#[test]
fn one_link_table_entry_holds_a_neighbours_session_and_routing_part_until_both_let_go() {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 10);
    let entries: Vec<_> = a.link.table().iter().collect();
    assert_eq!(entries.len(), 1, "one entry for b, not one per layer");
    let e = entries[0];
    assert!(e.state.neighbor.as_ref().is_some_and(|n| n.is_up()));
    assert!(a.link.has_session(e.id));
    assert_eq!(a.routing().next_hop(&b.node_id()), Some(e.id));
    assert_eq!(a.link_key(e.id), Some((IfaceId(0), mac(2))));

    // b falls silent. Routing lets go first (down after 4 hellos, forgotten 60 s after
    // the last one), the session keeps the entry until it expires (360 s), then it goes.
    let mut now = t0 + Duration::from_secs(10);
    let end = now + Duration::from_secs(420);
    let (mut steps, mut session_only, mut buf) = (0, false, [0u8; 1500]);
    while let Some(next) = a.poll_timeout().filter(|t| *t <= end) {
        assert!(next >= now, "a deadline in the past: {next:?} < {now:?}");
        now = next;
        a.handle_timeout(now);
        while a.poll_transmit(&mut buf).is_some() {}
        steps += 1;
        if let [e] = a.link.table().iter().collect::<Vec<_>>()[..] {
            session_only |= e.state.neighbor.is_none() && a.link.has_session(e.id);
        }
    }
    assert!(
        session_only,
        "routing forgot b while the session still held the entry"
    );
    assert_eq!(
        a.link.table().iter().count(),
        0,
        "both let go: the entry is gone"
    );
    assert_eq!(a.routing().next_hop(&b.node_id()), None);
    assert!(steps < 2000, "{steps} timer wake-ups in 420 s");
}

#[test]
fn replayed_and_forged_msg1_floods_are_read_only_within_their_budgets() {
    use crate::crypto::e2e::{E2eEnds, E2eInitiator, E2E_MSG1_LEN};
    use crate::wire::e2e::{emit_init, E2E_INIT_LEN};
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 10);
    let now = t0 + Duration::from_secs(10);
    // The msg 1 a would send b, recorded by a relay and played back 200 times in a second.
    let b_key = b.announcement(&b.node_id()).unwrap().identity;
    let ends = E2eEnds {
        initiator: a.node_id(),
        responder: b.node_id(),
    };
    let mut msg1 = [0u8; E2E_MSG1_LEN];
    E2eInitiator::new(&a.shared.identity, &b_key, ends, [7; 32], 1, &mut msg1).unwrap();
    let mut init = [0u8; E2E_INIT_LEN];
    let n = emit_init(&mut init, a.node_id(), 0x100, &msg1).unwrap();
    for i in 0..200u64 {
        b.on_e2e_payload(now + Duration::from_millis(i * 5), &init[..n]);
    }
    let (read_replays, limited) = (
        b.stats().drops(DropReason::E2eReplay),
        b.stats().drops(DropReason::E2eRateLimited),
    );
    // One answered, the burst and one per E2E_INIT_PERIOD after it read (and refused as
    // replays), every other one not even read.
    assert!(read_replays <= 3, "{read_replays} replays read");
    assert_eq!(1 + read_replays + limited, 200);
    assert_eq!(b.stats().drops(DropReason::E2eHandshakeFailed), 0);

    // A member naming 40 other announced nodes as the source (it cannot make their msg 1,
    // but b learns that only after the key agreements): new sources share one budget.
    let later = now + Duration::from_secs(2);
    let forged: Vec<NodeId> = made_up_announcements(5, 40)
        .iter()
        .filter_map(|ann| b.on_announce(later, (IfaceId(0), mac(1)), ann))
        .collect();
    assert_eq!(forged.len(), 40);
    for src in forged {
        let n = emit_init(&mut init, src, 0x100, &msg1).unwrap();
        b.on_e2e_payload(later, &init[..n]);
    }
    let failed = b.stats().drops(DropReason::E2eHandshakeFailed);
    assert_eq!(failed, u64::from(E2E_INITS_PER_SEC), "read, and refused");
    let limited_now = b.stats().drops(DropReason::E2eRateLimited) - limited;
    assert_eq!(limited_now, 40 - failed);
}

/// Two nodes with a link session and an end-to-end session, and the time it is.
fn linked_pair() -> (Node, Node, Instant) {
    let t0 = Instant::ZERO;
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    run_pair(&mut a, &mut b, t0, 2);
    let now = t0 + Duration::from_secs(2);
    connect_e2e(&mut a, &mut b, now);
    (a, b, now)
}

#[test]
fn a_frame_whose_link_went_away_while_it_waited_is_dropped_not_sealed() {
    // Lazy transmit: unicast frames wait unsealed and take their key and counter when sent,
    // so a frame queued for a link that is forgotten before the caller drains never leaves.
    let (mut a, b, now) = linked_pair();
    let (pkt, len) = udp_between(&a, &b, b"late");
    a.handle_ip_packet(now, &pkt[..len]);
    assert!(
        a.next_transmit_iface().is_some(),
        "the packet's frame is queued"
    );
    let before = a.stats().drops(DropReason::NoSession);
    assert!(a.remove_interface(now, IfaceId(0)));
    let mut buf = [0u8; 1500];
    while let Some(t) = a.poll_transmit(&mut buf) {
        assert_ne!(
            t.len,
            crate::wire::UNICAST_FRAME_LEN,
            "a unicast frame left for a forgotten link"
        );
    }
    assert!(a.stats().drops(DropReason::NoSession) > before);
}

#[test]
fn queued_frames_take_their_counters_in_the_order_they_are_sent() {
    // Two packets queued back to back go out with consecutive counters of the session
    // current when they are sent (header bytes 5..13: the counter, big-endian).
    let (mut a, mut b, now) = linked_pair();
    for payload in [b"one", b"two"] {
        let (pkt, len) = udp_between(&a, &b, payload);
        a.handle_ip_packet(now, &pkt[..len]);
    }
    let mut counters = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(t) = a.poll_transmit(&mut buf) {
        if t.len == crate::wire::UNICAST_FRAME_LEN {
            counters.push(u64::from_be_bytes(buf[5..13].try_into().unwrap()));
            b.handle_frame(now, IfaceId(0), mac(1), &buf[..t.len]);
        }
    }
    assert_eq!(counters.len(), 2);
    assert_eq!(counters[1], counters[0] + 1);
    assert_eq!(b.stats().total_drops(), 0, "b opened both");
    assert!(b.poll_deliver(&mut buf).is_some() && b.poll_deliver(&mut buf).is_some());
}
