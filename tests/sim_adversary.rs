//! An active, malicious member against honest nodes, in the deterministic simulator.
//!
//! Threat-model row (DESIGN.md): "an active member must not forge another node's routing
//! messages, replay old ones, or hijack its overlay address". The adversary `M` is a full
//! member: it ran the link handshakes (it knows the mesh PSK), holds sessions with its
//! neighbours and its own group key, forwards like an honest node, and on a schedule
//! broadcasts crafted messages under its own group key (`Node::broadcast_messages`), or
//! re-sends raw frames it recorded. It blackholes every data frame it is asked to forward,
//! so any route an attack wins through it shows up as lost traffic.
//!
//! Topology: a ring of 8 with a chord 3-5; the victim `V` = 0, `M` = 4 sits opposite, so
//! no honest best path toward `V` uses it; flows run from `M`'s neighbours 3 and 5 to `V`.
//! Each run records every honest node's next hop toward `V` once routes are settled and
//! then checks, every second of the attack, that it is unchanged, that the path reaches
//! `V` without touching `M`, and that no installed metric is below what the real hop
//! count allows (a link costs at least 288). Flows must deliver every packet.
//!
//! Covered:
//! - forged OGMs for `V` (next seqnos, far jumps, beyond the chain, next epoch; random
//!   chain elements, metric 0): dropped as `ogm_invalid` (or unverifiable / unknown) at
//!   `M`'s neighbours and never forwarded;
//! - replayed genuine old OGMs of `V` with metric 0: dropped by the per-neighbour
//!   freshness check (`ogm_old`) when `M` also relays honestly, and by the hash chain
//!   (`ogm_stale`) when `M` never relayed `V` so that check has nothing to compare with
//!   (even if both checks were gone, an old seqno fails the feasibility condition, so
//!   these runs detect a missing check by its counter, not by a route change);
//! - announcements with `V`'s keys signed by something else, a tampered genuine one, and
//!   stale copies: `announce_invalid` / `announce_stale`; the OGMs `M` signs for `V` with
//!   the chain those forgeries anchor stay unverifiable (`ogm_unknown_originator`); every
//!   honest node keeps `V`'s genuine announcement and maps `V`'s overlay address to `V`;
//! - link-layer replay: frames `M` heard or sent, re-sent seconds later from `M`'s MAC and
//!   with the original sender's MAC spoofed: `replay`, `unknown_session`,
//!   `unknown_group_key`; no packet is delivered twice, and no handshake is forced (a
//!   frame naming an unknown session starts a handshake only toward a MAC we hold no
//!   working session with, i.e. a restarted peer);
//! - controls: the same injection path carrying what only a real key holder could make
//!   (a fresh genuine OGM of `V`; `M`'s own newer announcement; an announcement signed
//!   with `V`'s key, followed by OGMs on `M`'s chain) is accepted and diverts routes
//!   toward `V` through `M`, which loses the traffic. So the rejections above are due to the checks. In the controls
//!   `M` does not relay OGMs: an `M` that also relays honestly re-advertises `V` at the
//!   same seqno with its real metric, which makes its own lie infeasible at its
//!   neighbours (routes toward `V` then flap to unreachable instead of through `M`).
//!
//! Out of scope (known limitation, as in Babel and BATMAN): a relay lying about the
//! metric of a genuine, fresh OGM it forwards. Only origin and freshness are
//! authenticated; a member that re-sends the *current* OGM of `V` with metric 0 attracts
//! routes toward `V` exactly like the control does. The replay scenario therefore only
//! replays OGMs the mesh has held something newer than for 2 s, and
//! `known_limitation_metric_lie_on_the_current_ogm_attracts_routes` pins the limitation. Also out of scope here:
//! IPv4 claims (the node does not feed announcement claims to the address book yet) and
//! floods aimed at memory or CPU.

mod common;

use common::*;
use ed25519_dalek::{Signer, SigningKey};
use veilmesh::crypto::hashchain::DEFAULT_CHAIN_LEN;
use veilmesh::crypto::{hash_labeled, Announcement, ChainSigner};
use veilmesh::node::{DropReason, IfaceId};
use veilmesh::sim::{mac_of, FlowSpec, Sim, SimHost};
use veilmesh::time::Duration;
use veilmesh::wire::ANNOUNCE_LEN;

#[test]
fn forged_ogms_for_the_victim_are_rejected() {
    let victim = identity(V).node_id();
    let sim = run_attack("forge", move || attacker(Attack::ForgeOgms { victim }));
    let rounds = adversary(&sim).rounds;
    print_drops(
        &sim,
        "forge",
        &[DropReason::OgmInvalid, DropReason::OgmStale],
    );
    assert!(rounds >= 45, "forge: only {rounds} injections");
    for n in SOURCES {
        let invalid = drops(&sim, n, DropReason::OgmInvalid);
        // Per round: seq+1, +2, +100 are checked directly, +1000 by the once-a-second
        // resync; beyond the chain and the next epoch need an announcement M cannot make.
        assert_eq!(invalid, 4 * rounds, "forge: node {n}: invalid");
        let c = host(&sim, n).node.routing().counters();
        assert_eq!(c.ogm_unknown_originator, 2 * rounds, "forge: node {n}");
        assert_eq!(
            c.ogm_invalid, invalid,
            "forge: node {n}: routing and node disagree"
        );
    }
    // Nobody forwarded a forgery: nodes out of M's reach never saw one.
    for i in [0, 1, 2, 6, 7] {
        assert_eq!(drops(&sim, i, DropReason::OgmInvalid), 0, "forge: node {i}");
    }
}

/// Control for the forgery test: the same injection carrying what only V's chain secret
/// can make (the next genuine OGM of V, metric 0) wins the routes of M's neighbours and
/// M swallows their traffic. The forgery test passes because of the chain check.
#[test]
fn control_genuine_fresh_ogms_do_hijack() {
    let victim = identity(V).node_id();
    let mut sim = sim(move || {
        let mut a = attacker(Attack::GenuineFreshOgms {
            victim,
            chain: chain_of(V),
        });
        // Relaying V's OGMs honestly would re-advertise V with M's real metric at the
        // same seqno and undo the lie (neighbours then find M's route infeasible).
        a.quiet = true;
        a
    });
    let flows = add_flows(&mut sim);
    sim.run_until(secs(44));
    let baseline = routes(&sim);
    let mut diverted = 0;
    for t in 45..=100 {
        sim.run_until(secs(t));
        let now = routes(&sim);
        if now != baseline {
            diverted += 1;
        }
        if t % 5 == 0 {
            let paths: Vec<_> = SOURCES.iter().map(|&n| path_to_victim(&sim, n)).collect();
            eprintln!("control t={t}: routes {now:?}, paths from sources {paths:?}");
        }
    }
    // Routes toward V were off their honest choice for most of the attack, and M's
    // neighbours send to M.
    assert!(
        diverted >= 50,
        "control: routes diverted in only {diverted} s"
    );
    for n in SOURCES {
        assert_eq!(next_hop(&sim, n, V), Some(M), "control: node {n}");
    }
    for &f in &flows {
        let st = sim.flow_stats(f).unwrap();
        eprintln!(
            "control: flow {f}: {} of {} delivered",
            st.delivered, st.sent
        );
        assert!(st.delivery_ratio() < 0.5, "control: flow {f}: {st:?}");
    }
    assert!(adversary(&sim).blackholed > 2000);
}

/// The known, out-of-scope limitation, pinned so that it stays visible: a member that
/// repeats V's *current* OGM (genuine element, heard on the air) with metric 0 is a relay
/// lying about a fresh OGM's metric, which hash chains cannot catch (Babel and BATMAN
/// share it). It wins the routes of its neighbours like the control above. If a future
/// defence (e.g. metric bounds from link measurements) stops it, invert this test.
#[test]
fn known_limitation_metric_lie_on_the_current_ogm_attracts_routes() {
    let victim = identity(V).node_id();
    let mut sim = sim(move || {
        let mut a = attacker(Attack::RepeatCurrentOgm {
            victim,
            chain: chain_of(V),
        });
        a.quiet = true;
        a
    });
    let flows = add_flows(&mut sim);
    sim.run_until(secs(100));
    for n in SOURCES {
        eprintln!("metric lie: {n} -> V: {:?}", path_to_victim(&sim, n));
        assert_eq!(next_hop(&sim, n, V), Some(M), "metric lie: node {n}");
    }
    for &f in &flows {
        let st = sim.flow_stats(f).unwrap();
        eprintln!(
            "metric lie: flow {f}: {} of {} delivered",
            st.delivered, st.sent
        );
        assert!(st.delivery_ratio() < 0.5, "metric lie: flow {f}: {st:?}");
    }
}

/// Replays of genuine old OGMs of V (metric 0) by a member that also relays honestly:
/// its neighbours hold its newer advertisement of V, so the replays die at the
/// per-neighbour freshness check before any hashing.
#[test]
fn replayed_old_ogms_are_dropped_as_old() {
    let victim = identity(V).node_id();
    let sim = run_attack("replay", move || {
        attacker(Attack::ReplayOgms {
            victim,
            chain: chain_of(V),
        })
    });
    let injected = adversary(&sim).injected;
    print_drops(
        &sim,
        "replay",
        &[DropReason::OgmInvalid, DropReason::OgmStale],
    );
    eprintln!("replay: {injected} OGMs injected");
    assert!(injected >= 100, "replay: only {injected} injected");
    for n in SOURCES {
        let c = host(&sim, n).node.routing().counters();
        assert_eq!(c.ogm_old, injected, "replay: node {n}: {c:?}");
        assert_eq!(
            drops(&sim, n, DropReason::OgmInvalid),
            0,
            "replay: genuine elements"
        );
    }
}

/// The same replays by a member that never relays OGMs: its neighbours hold no
/// advertisement from it, so the replays reach the hash chain and are dropped as stale.
#[test]
fn replayed_old_ogms_are_dropped_as_stale_by_the_chain() {
    let victim = identity(V).node_id();
    let sim = run_attack("replay-quiet", move || {
        let mut a = attacker(Attack::ReplayOgms {
            victim,
            chain: chain_of(V),
        });
        a.quiet = true;
        a
    });
    let injected = adversary(&sim).injected;
    print_drops(
        &sim,
        "replay-quiet",
        &[DropReason::OgmInvalid, DropReason::OgmStale],
    );
    eprintln!("replay-quiet: {injected} OGMs injected");
    assert!(injected >= 100, "replay-quiet: only {injected} injected");
    for n in SOURCES {
        let stale = drops(&sim, n, DropReason::OgmStale);
        assert_eq!(stale, injected, "replay-quiet: node {n}");
        let c = host(&sim, n).node.routing().counters();
        assert_eq!(c.ogm_stale, stale, "replay-quiet: node {n}");
    }
}

/// V's genuine epoch-0 announcement, as every node holds it.
fn genuine_announcement(i: usize) -> [u8; ANNOUNCE_LEN] {
    Announcement::for_chain(&identity(i), 0, &chain_of(i))
        .sign(&identity(i))
        .unwrap()
}

fn set_epoch(bytes: &mut [u8; ANNOUNCE_LEN], epoch: u32) {
    bytes[64..68].copy_from_slice(&epoch.to_be_bytes());
}

/// The chain M anchors in the announcements it forges for V (epoch 1).
fn m_chain() -> ChainSigner {
    ChainSigner::new(&identity(M), 1, 0, DEFAULT_CHAIN_LEN).unwrap()
}

/// What M broadcasts every second to take over V's identity, none of it signed by V.
fn forged_announcements() -> Vec<[u8; ANNOUNCE_LEN]> {
    let genuine = genuine_announcement(V);
    let m_chain = m_chain();
    // V's keys, a newer epoch and M's chain anchor, signed by a key M holds.
    let mut resigned = genuine;
    set_epoch(&mut resigned, 1);
    resigned[74..90].copy_from_slice(&m_chain.anchor());
    let digest = hash_labeled::<32>(b"veilmesh announce v1", &[&resigned[..92]]);
    let sig = SigningKey::from_bytes(&[0x4d; 32]).sign(&digest);
    resigned[92..].copy_from_slice(&sig.to_bytes());
    // M's own signed announcement with V's public keys put in.
    let mut swapped = Announcement::for_chain(&identity(M), 1, &m_chain)
        .sign(&identity(M))
        .unwrap();
    swapped[..64].copy_from_slice(&genuine[..64]);
    // V's genuine announcement with a newer epoch written in.
    let mut bumped = genuine;
    set_epoch(&mut bumped, 1);
    // Same epoch, another anchor: a conflicting copy of what everyone holds.
    let mut conflicting = genuine;
    conflicting[74..90].copy_from_slice(&m_chain.anchor());
    vec![resigned, swapped, bumped, conflicting, genuine]
}

#[test]
fn announcements_for_the_victim_not_signed_by_it_are_rejected() {
    let victim = identity(V).node_id();
    let sim = run_attack("announce", move || {
        attacker(Attack::Announces {
            anns: forged_announcements(),
            ogms: Some((victim, 1, m_chain())),
        })
    });
    let rounds = adversary(&sim).rounds;
    print_drops(
        &sim,
        "announce",
        &[DropReason::AnnounceInvalid, DropReason::AnnounceStale],
    );
    assert!(rounds >= 45, "announce: only {rounds} rounds");
    for n in SOURCES {
        // Three forgeries per round claim a newer epoch and fail the signature; the
        // conflicting copy of the current epoch is refused before any signature check;
        // V's genuine announcement is a copy already held (no drop).
        let invalid = drops(&sim, n, DropReason::AnnounceInvalid);
        let stale = drops(&sim, n, DropReason::AnnounceStale);
        assert_eq!(invalid, 3 * rounds, "announce: node {n}");
        assert_eq!(stale, rounds, "announce: node {n}");
        // The OGMs signed with M's chain name an epoch of V nobody could verify.
        let c = host(&sim, n).node.routing().counters();
        assert_eq!(c.ogm_unknown_originator, rounds, "announce: node {n}");
    }
    let expected = Announcement::parse_and_verify(&genuine_announcement(V)).unwrap();
    let (v, m) = (host(&sim, V), host(&sim, M));
    for i in honest() {
        let node = &host(&sim, i).node;
        assert_eq!(node.announcement(&v.node_id()), Some(&expected), "node {i}");
        let book = node.address_book();
        assert_eq!(
            book.lookup_v6(&v.overlay_addr()),
            Some(v.node_id()),
            "node {i}"
        );
        assert_eq!(
            book.lookup_v6(&m.overlay_addr()),
            Some(m.node_id()),
            "node {i}"
        );
        assert_eq!(book.counters().iid_conflicts, 0, "node {i}");
    }
}

/// Control for the announcement test: through the same injection path, M's own newer
/// announcement and one really signed with V's key (anchoring M's chain, as the forgeries
/// do) are accepted, and the OGMs M then signs for V divert routes through M and lose
/// the traffic. So the rejections above come from the signature check.
#[test]
fn control_announcements_signed_by_their_key_are_accepted() {
    let own = Announcement::for_chain(&identity(M), 7, &m_chain())
        .sign(&identity(M))
        .unwrap();
    let as_victim = Announcement::for_chain(&identity(V), 1, &m_chain())
        .sign(&identity(V))
        .unwrap();
    let victim = identity(V).node_id();
    let mut sim = sim(move || {
        let mut a = attacker(Attack::Announces {
            anns: vec![own, as_victim],
            ogms: Some((victim, 1, m_chain())),
        });
        // See control_genuine_fresh_ogms_do_hijack.
        a.quiet = true;
        a
    });
    let flows = add_flows(&mut sim);
    sim.run_until(secs(100));
    let (v, m) = (host(&sim, V).node_id(), host(&sim, M).node_id());
    for n in SOURCES {
        let node = &host(&sim, n).node;
        assert_eq!(node.announcement(&m).map(|a| a.epoch), Some(7), "node {n}");
        let held = node.announcement(&v).unwrap();
        assert_eq!(
            (held.epoch, held.anchor),
            (1, m_chain().anchor()),
            "node {n}"
        );
        assert_eq!(drops(&sim, n, DropReason::AnnounceInvalid), 0);
        assert_eq!(next_hop(&sim, n, V), Some(M), "node {n}");
    }
    for &f in &flows {
        let st = sim.flow_stats(f).unwrap();
        eprintln!(
            "announce control: flow {f}: {} of {} delivered",
            st.delivered, st.sent
        );
        assert!(
            st.delivery_ratio() < 0.5,
            "announce control: flow {f}: {st:?}"
        );
    }
}

/// Frames M heard or sent in 45..50 s, delivered at 52 s to M's neighbours (and M's own
/// honest node) with the original sender's MAC, and re-sent from M's MAC 10 s after
/// they were recorded: every copy is dropped by the replay window, or names a
/// session or group key the receiver does not hold. Routes and traffic are unaffected,
/// and no data packet is delivered twice (a flow 3 -> M gives M data frames to replay).
#[test]
fn replayed_link_frames_are_dropped() {
    let mut sim = sim(|| {
        let mut a = attacker(Attack::None);
        a.capture = Some((secs(45), secs(50)));
        a.resend_after = Some(Duration::from_secs(10));
        a
    });
    let flows = add_flows(&mut sim);
    let to_m = sim
        .add_flow(FlowSpec {
            src: 3,
            dst: M,
            start: secs(42),
            interval: Duration::from_millis(100),
            count: 500,
            payload_len: 0,
        })
        .unwrap();
    sim.run_until(secs(44));
    let baseline = routes(&sim);
    let reasons = [
        DropReason::Replay,
        DropReason::UnknownSession,
        DropReason::UnknownGroupKey,
        DropReason::DecryptFailed,
    ];
    let before: Vec<Vec<u64>> = (0..N)
        .map(|i| reasons.iter().map(|r| drops(&sim, i, *r)).collect())
        .collect();
    let sessions_before: Vec<u64> = (0..N)
        .map(|i| host(&sim, i).node.stats().sessions_established)
        .collect();
    let neighbours = topology().adjacency()[M].clone();
    let mut to_m_copies = 0;
    for t in 45..=100 {
        sim.run_until(secs(t));
        assert_routes_hold(&sim, &baseline, "link replay");
        // Before the re-sends from M's MAC start (55 s): they make neighbours rekey.
        if t == 52 {
            to_m_copies = spoofed_replay(&mut sim, &neighbours);
        }
    }
    assert_full_delivery(&sim, &flows, "link replay");
    let st = sim.flow_stats(to_m).unwrap();
    assert_eq!(
        (st.delivered, st.duplicates),
        (st.sent, 0),
        "3 -> M: {st:?}"
    );
    let adv = adversary(&sim);
    eprintln!(
        "link replay: {} frames recorded, {} re-sent from M",
        adv.captured.len(),
        adv.resent
    );
    assert_eq!(adv.resent, adv.captured.len() as u64);
    let delta = |i: usize, k: usize| drops(&sim, i, reasons[k]) - before[i][k];
    for (i, before) in sessions_before.iter().enumerate() {
        let d: Vec<String> = (0..reasons.len())
            .map(|k| format!("{}+{}", reasons[k].as_str(), delta(i, k)))
            .collect();
        let s = host(&sim, i).node.stats().sessions_established - before;
        eprintln!("link replay: node {i}: {} sessions+{s}", d.join(" "));
    }
    for n in [3, 5] {
        assert!(delta(n, 0) > 0, "node {n}: no replay drops");
        assert!(
            delta(n, 1) > 0 && delta(n, 2) > 0,
            "node {n}: no session/key drops"
        );
        assert_eq!(delta(n, 3), 0, "node {n}: a replay got past the window");
    }
    // M's honest node holds every session and key these frames were made with: each
    // spoofed copy it got (data from the 3 -> M flow among them) died in the window.
    assert_eq!(delta(M, 0), to_m_copies, "M: replay drops");
    assert!(to_m_copies > 50);
    // A unicast frame naming an unknown session starts a handshake only toward a MAC we
    // hold no working session with (a restarted peer): replays cannot force rekeys.
    for n in [3, 5, M] {
        let rekeys = host(&sim, n).node.stats().sessions_established - sessions_before[n];
        assert_eq!(
            rekeys, 0,
            "node {n}: {rekeys} new sessions forced by replays"
        );
    }
}

/// Deliver every frame M recorded from another node to M's neighbours (and M's own
/// honest node) as if that node had sent it again: a spoofed source MAC.
/// Returns how many encrypted copies went to M.
fn spoofed_replay(sim: &mut Sim<Host>, neighbours: &[usize]) -> u64 {
    let now = sim.now();
    let frames = adversary(sim).captured.clone();
    let (mut delivered, mut to_m) = (0, 0);
    for c in frames.iter().filter(|c| c.src != mac_of(M)) {
        for &to in neighbours.iter().chain([M].iter()) {
            if mac_of(to) == c.src {
                continue;
            }
            sim.host_mut(to)
                .unwrap()
                .handle_frame(now, IfaceId(0), c.src, &c.bytes);
            sim.drive(to);
            delivered += 1;
            // Clear hellos carry nothing to replay-protect; count the encrypted ones.
            let encrypted = matches!(c.bytes.first(), Some(0x15 | 0x16));
            to_m += u64::from(to == M && encrypted);
        }
    }
    eprintln!("link replay: {delivered} spoofed copies delivered at {now:?}");
    assert!(delivered > 100);
    to_m
}

/// Announcements of `n` identities M made up (signed by their own keys: each verifies),
/// without any OGM.
fn sybil_announcements(n: usize) -> Vec<[u8; ANNOUNCE_LEN]> {
    use rand_chacha::rand_core::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x5b11);
    (0..n)
        .map(|_| {
            let id = veilmesh::crypto::Identity::generate(&mut rng);
            let chain = ChainSigner::new(&id, 0, 0, 16).unwrap();
            Announcement::for_chain(&id, 0, &chain).sign(&id).unwrap()
        })
        .collect()
}

/// A member pushes 4200 self-made signed identities every 10 s (the attack of issue 8:
/// they filled the 4096-entry store for good and locked every newcomer out). Each neighbour of M keeps
/// at most its probation share of them, and node 7, cut off until 60 s, arrives as a
/// genuine newcomer: every honest node has its announcement and a route to it within 10 s.
#[test]
fn sybil_announcements_fill_only_their_share_and_a_newcomer_gets_in() {
    use veilmesh::node::{ANNOUNCE_CHECK_BURST, MAX_PROBATION_PER_SOURCE};
    use veilmesh::sim::Action;
    const NEWCOMER: usize = 7;
    let mut sim = sim(|| {
        let mut a = attacker(Attack::Announces {
            anns: sybil_announcements(4200),
            ogms: None,
        });
        a.period = Duration::from_secs(10);
        a.stop = secs(120);
        a
    });
    for b in [0, 6] {
        sim.apply(Action::Cut { a: NEWCOMER, b }).unwrap();
        sim.schedule(secs(60), Action::Heal { a: NEWCOMER, b })
            .unwrap();
    }
    let newcomer = host(&sim, NEWCOMER).node_id();
    sim.run_until(secs(59));
    for i in honest().filter(|&i| i != NEWCOMER) {
        assert!(host(&sim, i).node.routing().route(&newcomer).is_none());
    }
    let mut all_in = None;
    for ms in (0..=10_000).step_by(250) {
        sim.run_until(secs(60) + Duration::from_millis(ms));
        let known = |i: usize| {
            let n = &host(&sim, i).node;
            n.announcement(&newcomer).is_some() && n.next_hop(&newcomer).is_some()
        };
        if honest().filter(|&i| i != NEWCOMER).all(known) {
            all_in = Some(ms);
            break;
        }
    }
    eprintln!("sybil: every honest node routes to the newcomer after {all_in:?} ms");
    assert!(all_in.is_some(), "the newcomer did not get in within 10 s");
    sim.run_until(secs(120));
    let rounds = adversary(&sim).rounds;
    assert!(rounds >= 7, "sybil: only {rounds} rounds");
    for n in [3, 5] {
        let node = &host(&sim, n).node;
        let held = node.announcement_count();
        let evicted = drops(&sim, n, DropReason::AnnounceEvicted);
        let unchecked = drops(&sim, n, DropReason::AnnounceCheckRateLimited);
        eprintln!(
            "sybil: node {n} holds {held} announcements, evicted {evicted}, {unchecked} not checked"
        );
        assert!(
            held <= N + MAX_PROBATION_PER_SOURCE,
            "node {n} holds {held}"
        );
        // Each eviction followed a signature check, of which M gets its burst plus 64/s.
        let checked_max = ANNOUNCE_CHECK_BURST + 120 * 64;
        assert!(
            evicted > 4200 && evicted <= checked_max,
            "node {n}: {evicted} evicted"
        );
    }
    // Nobody else forwards them: they never anchored an OGM.
    let far = &host(&sim, 0).node;
    assert!(
        far.announcement_count() <= N,
        "V holds {}",
        far.announcement_count()
    );
}
