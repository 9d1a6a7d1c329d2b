//! Single-instance tests of the `Routing` facade: authentication verdicts, epochs,
//! seqno requests, Trickle resets.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::harness::{fake_chain, id, mac, FakeAuth, IF0};
use super::metric::QUALITY_ONE;
use super::test_router::TestRouter;
use super::*;
use crate::wire::{HelloRepr, SeqnoRequestRepr};

const T0: Instant = Instant::from_millis(1_000);

/// Node 0 with neighbours 1 and 2 authenticated and clean links (16 hellos + Ihu each).
fn router() -> (TestRouter, FakeAuth) {
    let mut r = TestRouter::new(id(0), 1, T0, ChaCha20Rng::seed_from_u64(9));
    r.add_interface(T0, IF0, mac(0));
    for n in 1..=2 {
        r.neighbor_authenticated(T0, IF0, mac(n), id(n));
        for seq in 0..16 {
            let h = HelloRepr {
                seq,
                interval_10ms: 400,
            };
            r.handle_hello(T0, IF0, mac(n), &h, true);
        }
        let ihu = [IhuEntry {
            mac: mac(0),
            rx_quality: QUALITY_ONE,
        }];
        r.handle_ihu(T0, IF0, mac(n), ihu);
    }
    drain(&mut r);
    let auth = FakeAuth {
        known: (0..10).map(id).collect(),
        ..FakeAuth::default()
    };
    (r, auth)
}

/// Neighbour `n` sends a clean hello (`seq`, 4 s interval) and an Ihu that hears us fully.
fn clean_hello(r: &mut TestRouter, now: Instant, n: usize, seq: u16) {
    let h = HelloRepr {
        seq,
        interval_10ms: 400,
    };
    r.handle_hello(now, IF0, mac(n), &h, true);
    let ihu = [IhuEntry {
        mac: mac(0),
        rx_quality: QUALITY_ONE,
    }];
    r.handle_ihu(now, IF0, mac(n), ihu);
}

fn ogm(node: usize, epoch: u32, seqno: u32, metric: u16) -> OgmRepr {
    OgmRepr {
        node: id(node),
        epoch,
        seqno,
        metric,
        ttl: 10,
        flags: 0,
        chain: fake_chain(id(node), epoch, seqno),
    }
}

fn drain(r: &mut TestRouter) -> (Vec<Action>, Vec<OgmRepr>) {
    r.handle_timeout(r.poll_timeout().unwrap_or(T0).max(T0));
    let mut actions = Vec::new();
    while let Some(a) = r.poll_action() {
        actions.push(a);
    }
    while r.poll_event().is_some() {}
    let mut ogms = Vec::new();
    // Force the aggregation deadline.
    if let Some(f) = r.ctx.flush_at {
        r.handle_timeout(f);
    }
    while let Some(b) = r.poll_ogm_batch() {
        ogms.extend(b.iter().copied());
    }
    (actions, ogms)
}

fn of(node: usize, ogms: Vec<OgmRepr>) -> Vec<OgmRepr> {
    ogms.into_iter().filter(|o| o.node == id(node)).collect()
}

#[test]
fn forged_and_replayed_ogms_are_never_used_or_forwarded() {
    let (mut r, mut auth) = router();
    let mut forged = ogm(5, 1, 10, 100);
    forged.chain[0] ^= 1;
    r.handle_ogm(T0, IF0, mac(1), &forged, &mut auth);
    assert_eq!(r.next_hop(&id(5)), None);
    assert_eq!(r.counters().ogm_invalid, 1);
    r.handle_ogm(T0, IF0, mac(1), &ogm(5, 1, 10, 100), &mut auth);
    assert_eq!(r.next_hop(&id(5)), Some((IF0, mac(1))));
    let out = of(5, drain(&mut r).1);
    assert_eq!(out.len(), 1);
    // A replay of seqno 9 via another neighbour: the authenticator says Stale.
    r.handle_ogm(T0, IF0, mac(2), &ogm(5, 1, 9, 0), &mut auth);
    assert_eq!(r.counters().ogm_stale, 1);
    assert_eq!(r.next_hop(&id(5)), Some((IF0, mac(1))));
    // The same copy again from the same neighbour is a duplicate, caught before auth.
    r.handle_ogm(T0, IF0, mac(1), &ogm(5, 1, 10, 100), &mut auth);
    assert_eq!(r.counters().ogm_duplicate, 1);
    assert!(of(5, drain(&mut r).1).is_empty());
    // From a MAC without a session: dropped.
    r.handle_ogm(T0, IF0, mac(7), &ogm(5, 1, 11, 100), &mut auth);
    assert_eq!(r.counters().ogm_unknown_neighbor, 1);
}

#[test]
fn unknown_originator_asks_for_its_announcement_rate_limited() {
    let (mut r, mut auth) = router();
    auth.known.retain(|n| *n != id(6));
    r.handle_ogm(T0, IF0, mac(1), &ogm(6, 1, 1, 0), &mut auth);
    r.handle_ogm(T0, IF0, mac(2), &ogm(6, 1, 1, 0), &mut auth);
    let (actions, out) = drain(&mut r);
    let asks: Vec<_> = actions
        .iter()
        .filter(|a| matches!(a, Action::RequestAnnounce { .. }))
        .collect();
    assert_eq!(
        asks,
        vec![&Action::RequestAnnounce {
            iface: IF0,
            mac: mac(1),
            node: id(6)
        }]
    );
    assert!(of(6, out).is_empty());
    assert_eq!(r.next_hop(&id(6)), None);
    assert_eq!(r.counters().announce_requests_suppressed, 1);
}

#[test]
fn restarted_originator_with_higher_epoch_is_believed_at_once() {
    let (mut r, mut auth) = router();
    r.handle_ogm(T0, IF0, mac(1), &ogm(5, 1, 1000, 0), &mut auth);
    drain(&mut r);
    // Epoch 2 restarts at seqno 1, even with a worse metric than we advertised.
    let t = T0 + Duration::from_millis(500);
    r.handle_ogm(t, IF0, mac(1), &ogm(5, 2, 1, 900), &mut auth);
    let route = r.route(&id(5)).unwrap();
    assert_eq!(route.latest, SeqKey::new(2, 1));
    assert_eq!(route.next_hop, r.links.find(IF0, mac(1)));
    assert!(route.next_hop.is_some());
    let fwd = of(5, drain(&mut r).1);
    assert_eq!(fwd.len(), 1);
    assert_eq!(
        (fwd[0].epoch, fwd[0].seqno, fwd[0].metric, fwd[0].ttl),
        (2, 1, 1188, 9)
    );
    // An old-epoch OGM is now older than what neighbour 1 advertised: dropped early.
    r.handle_ogm(t, IF0, mac(1), &ogm(5, 1, 2000, 0), &mut auth);
    assert_eq!(r.counters().ogm_old, 1);
}

#[test]
fn rebroadcasts_only_the_selected_next_hops_copy_once() {
    let (mut r, mut auth) = router();
    r.handle_ogm(T0, IF0, mac(1), &ogm(5, 1, 1, 0), &mut auth);
    r.handle_ogm(T0, IF0, mac(2), &ogm(5, 1, 1, 300), &mut auth);
    let out = of(5, drain(&mut r).1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].metric, 288);
    // Newer seqno arrives first from the non-selected neighbour: used, not forwarded.
    r.handle_ogm(T0, IF0, mac(2), &ogm(5, 1, 2, 300), &mut auth);
    assert!(of(5, drain(&mut r).1).is_empty());
    r.handle_ogm(T0, IF0, mac(1), &ogm(5, 1, 2, 0), &mut auth);
    let out = of(5, drain(&mut r).1);
    assert_eq!((out.len(), out[0].seqno), (1, 2));
    assert_eq!(r.backup_hop(&id(5)), Some((IF0, mac(2))));
    assert_eq!(r.counters().ogm_forwarded, 2);
}

#[test]
fn seqno_request_for_us_bumps_seqno_once_per_second() {
    let (mut r, _) = router();
    let before = r.own_seq();
    let req = SeqnoRequestRepr {
        node: id(0),
        epoch: 1,
        seqno: before.seqno + 1,
        hop_limit: 5,
    };
    r.handle_seqno_request(T0, IF0, mac(1), &req);
    assert_eq!(r.own_seq().seqno, before.seqno + 1);
    assert_eq!(r.counters().seqno_bumps, 1);
    let own = of(0, drain(&mut r).1);
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].seqno, r.own_seq().seqno);
    assert_eq!(r.ogm_interval(), OGM_TRICKLE.imin);
    // A second request (other neighbour, higher seqno) within a second: rate-limited.
    let req2 = SeqnoRequestRepr {
        seqno: before.seqno + 2,
        ..req
    };
    r.handle_seqno_request(T0 + Duration::from_millis(100), IF0, mac(2), &req2);
    assert_eq!(r.counters().seqno_bumps_rate_limited, 1);
    assert_eq!(r.counters().seqno_bumps, 1);
    // The same request again is a duplicate.
    r.handle_seqno_request(T0 + Duration::from_millis(200), IF0, mac(2), &req2);
    assert_eq!(r.counters().seqno_requests_duplicate, 1);
}

#[test]
fn seqno_request_is_forwarded_toward_the_originator_or_answered() {
    let (mut r, mut auth) = router();
    r.handle_ogm(T0, IF0, mac(1), &ogm(5, 1, 7, 0), &mut auth);
    drain(&mut r);
    let req = SeqnoRequestRepr {
        node: id(5),
        epoch: 1,
        seqno: 8,
        hop_limit: 4,
    };
    r.handle_seqno_request(T0, IF0, mac(2), &req);
    let (actions, _) = drain(&mut r);
    assert!(actions.contains(&Action::SendSeqnoRequest {
        dest: Dest::Neighbor {
            iface: IF0,
            mac: mac(1)
        },
        req: SeqnoRequestRepr {
            hop_limit: 3,
            ..req
        }
    }));
    // A request we can satisfy (seqno 7 ≥ 7) is answered with a one-hop OGM.
    let req = SeqnoRequestRepr { seqno: 7, ..req };
    r.handle_seqno_request(T0, IF0, mac(2), &req);
    let out = of(5, drain(&mut r).1);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].seqno, out[0].ttl, out[0].metric), (7, 1, 288));
    // Requests from one neighbour are rate-limited (burst 8, then 4/s).
    for s in 100..120 {
        let req = SeqnoRequestRepr { seqno: s, ..req };
        r.handle_seqno_request(T0, IF0, mac(2), &req);
    }
    assert!(r.counters().seqno_requests_rate_limited >= 10);
}

#[test]
fn trickle_backs_off_when_quiet_and_resets_on_new_neighbour() {
    let (mut r, _) = router();
    let mut now = T0;
    let (mut next_hello, mut seq) = (T0, 16u16);
    while now < T0 + Duration::from_secs(120) {
        now = r.poll_timeout().unwrap().min(next_hello);
        if now >= next_hello {
            // Both neighbours keep sending clean hellos and Ihus.
            next_hello = now + Duration::from_millis(3500);
            seq += 1;
            for n in 1..=2 {
                clean_hello(&mut r, now, n, seq);
            }
        }
        r.handle_timeout(now);
        while r.poll_action().is_some() {}
        while r.poll_ogm_batch().is_some() {}
        while r.poll_event().is_some() {}
    }
    assert_eq!(r.ogm_interval(), Duration::from_secs(32));
    let originated = r.counters().ogm_originated;
    assert!((6..=10).contains(&originated), "{originated}");
    r.neighbor_authenticated(now, IF0, mac(3), id(3));
    assert_eq!(r.ogm_interval(), Duration::from_secs(1));
    assert!(r.poll_timeout().unwrap() < now + Duration::from_secs(1));
}

#[test]
fn silent_originator_expires_then_is_forgotten() {
    let (mut r, mut auth) = router();
    r.handle_ogm(T0, IF0, mac(1), &ogm(5, 1, 1, 0), &mut auth);
    assert!(r.next_hop(&id(5)).is_some());
    let mut now = T0;
    let mut seq = 16u16;
    let mut lost_at = None;
    while now < T0 + ROUTE_EXPIRY + ORIGINATOR_GC + Duration::from_secs(5) {
        now += Duration::from_millis(500);
        if now.as_micros().is_multiple_of(3_500_000) {
            seq += 1;
            clean_hello(&mut r, now, 1, seq);
        }
        r.handle_timeout(now);
        while r.poll_action().is_some() {}
        while r.poll_ogm_batch().is_some() {}
        while let Some(e) = r.poll_event() {
            if let Event::RouteChanged {
                node,
                next_hop: None,
                ..
            } = e
            {
                if node == id(5) && lost_at.is_none() {
                    lost_at = Some(now);
                }
            }
        }
    }
    let lost_at = lost_at.expect("route expired");
    assert!(lost_at.saturating_since(T0) >= ROUTE_EXPIRY);
    // Within the 500 ms step of this loop (the expiry itself is exact, see
    // `a_route_entry_expires_exactly_at_route_expiry`).
    assert!(lost_at.saturating_since(T0) <= ROUTE_EXPIRY + Duration::from_millis(500));
    assert_eq!(r.counters().routes_expired, 1);
    assert_eq!(r.counters().originators_expired, 1);
    assert!(r.route(&id(5)).is_none());
    assert!(r
        .neighbors()
        .any(|n| n.mac == mac(1) && n.state == NeighborState::Up));
}

#[test]
fn a_fast_originator_cannot_make_us_flood_faster_than_4_per_second() {
    let (mut r, mut auth) = router();
    for s in 1..=20 {
        r.handle_ogm(T0, IF0, mac(1), &ogm(5, 1, s, 0), &mut auth);
    }
    assert_eq!(r.counters().ogm_forwarded, 4);
    assert_eq!(r.counters().ogm_forward_rate_limited, 16);
    // The route itself follows the newest seqno.
    assert_eq!(r.route(&id(5)).unwrap().latest, SeqKey::new(1, 20));
    let t = T0 + Duration::from_millis(250);
    r.handle_ogm(t, IF0, mac(1), &ogm(5, 1, 21, 0), &mut auth);
    assert_eq!(r.counters().ogm_forwarded, 5);
}

#[test]
fn a_configured_hello_interval_sets_the_gaps_and_is_advertised() {
    let mut r = TestRouter::new(id(0), 1, T0, ChaCha20Rng::seed_from_u64(3));
    r.set_hello_interval(Duration::from_millis(1000));
    assert_eq!(r.hello_interval(), Duration::from_millis(1000));
    r.add_interface(T0, IF0, mac(0));
    let mut sent = Vec::new();
    let mut now = T0;
    while now < T0 + Duration::from_secs(10) {
        // Step at least 1 ms: a deadline already due must not spin the loop.
        let next = r.poll_timeout().unwrap_or(now + Duration::from_millis(100));
        now = next.max(now + Duration::from_millis(1));
        r.handle_timeout(now);
        while let Some(a) = r.poll_action() {
            if let Action::SendHello { hello, .. } = a {
                assert_eq!(hello.interval_10ms, 100);
                sent.push(now);
            }
        }
        while r.poll_ogm_batch().is_some() {}
    }
    // 10 s at gaps in [0.75, 1) s: 10 to 14 hellos (4 s default would give 2 or 3).
    assert!((10..=14).contains(&sent.len()), "{} hellos", sent.len());
    r.set_hello_interval(Duration::from_millis(1));
    assert_eq!(r.hello_interval(), Duration::from_millis(500), "clamped");
}

#[test]
fn a_retraction_older_than_the_newest_verified_ogm_still_withdraws_its_route() {
    let (mut r, mut auth) = router();
    r.handle_ogm(T0, IF0, mac(1), &ogm(5, 1, 10, 100), &mut auth);
    // 2 relays a newer OGM of 5 on a worse path: kept as the alternative.
    r.handle_ogm(T0, IF0, mac(2), &ogm(5, 1, 11, 400), &mut auth);
    assert_eq!(r.next_hop(&id(5)), Some((IF0, mac(1))));
    drain(&mut r);
    // 1 lost its route before seqno 11 reached it: its retraction carries seqno 10. It is
    // not a replay to drop as stale, it takes 1's advertisement away.
    let mut retraction = ogm(5, 1, 10, INFINITY);
    retraction.ttl = 1;
    r.handle_ogm(T0, IF0, mac(1), &retraction, &mut auth);
    assert_eq!(r.counters().ogm_stale, 0);
    assert_eq!(r.counters().retractions_received, 1);
    assert_eq!(r.next_hop(&id(5)), Some((IF0, mac(2))));
    // An unverified retraction never becomes the originator's newest known OGM, and one from
    // a neighbour we hold no advertisement of changes nothing.
    let mut far = ogm(5, 1, 50, INFINITY);
    far.chain = [0; crate::wire::CHAIN_ELEMENT_LEN];
    r.handle_ogm(T0, IF0, mac(1), &far, &mut auth);
    assert_eq!(r.route(&id(5)).map(|i| i.latest.seqno), Some(11));
    r.handle_ogm(T0, IF0, mac(2), &ogm(6, 1, 3, INFINITY), &mut auth);
    assert_eq!(r.counters().retractions_ignored, 1);
    assert_eq!(r.next_hop(&id(5)), Some((IF0, mac(2))));
}

#[test]
fn an_older_epoch_is_fetched_once_its_originator_is_lost_and_a_restart_forgets_it() {
    let (mut r, mut auth) = router();
    r.handle_ogm(T0, IF0, mac(1), &ogm(5, 2, 10, 100), &mut auth);
    assert!(!of(5, drain(&mut r).1).is_empty(), "rebroadcast");
    // While 5 is reachable, an OGM of an older epoch is a replay: dropped, nothing fetched.
    r.handle_ogm(T0, IF0, mac(2), &ogm(5, 1, 50, 100), &mut auth);
    assert_eq!(r.counters().ogm_stale, 1);
    let asks = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| matches!(a, Action::RequestAnnounce { node, .. } if *node == id(5)))
            .count()
    };
    assert_eq!(asks(&drain(&mut r).0), 0);
    // 5 says it restarted in epoch 1: what we advertised of epoch 2 is withdrawn at once,
    // and 5 is forgotten.
    r.forget_restarted(T0, id(5));
    let (_, ogms) = drain(&mut r);
    let retraction = of(5, ogms);
    assert_eq!(retraction.len(), 1);
    assert_eq!((retraction[0].epoch, retraction[0].metric), (2, INFINITY));
    assert!(r.route(&id(5)).is_none());
    assert_eq!(r.counters().originators_restarted, 1);
    // An epoch-1 OGM through a neighbour whose node still holds epoch 2's announcement:
    // now that 5 is lost, its announcement is fetched.
    r.handle_ogm(T0, IF0, mac(2), &ogm(5, 1, 51, 100), &mut auth);
    assert_eq!(asks(&drain(&mut r).0), 1);
    // With the epoch-1 announcement in place, its OGMs make a fresh originator.
    auth.latest.insert(id(5), SeqKey { epoch: 1, seqno: 0 });
    r.handle_ogm(T0, IF0, mac(2), &ogm(5, 1, 52, 100), &mut auth);
    assert_eq!(r.next_hop(&id(5)), Some((IF0, mac(2))));
}

/// What `run_idle` saw: actions and events with the instant they came out.
#[derive(Default)]
struct Seen {
    actions: Vec<(Instant, Action)>,
    events: Vec<(Instant, Event)>,
}

/// Run `r` at its own deadlines from `from` to `until`, neighbours 1 and 2 sending clean
/// hellos and Ihus every 3.5 s (hello `seq` onward). Checks after every step that no timer
/// fires later than its state needs and none is left due.
fn run_idle(r: &mut TestRouter, from: Instant, until: Instant, seq: &mut u16) -> Seen {
    let mut seen = Seen::default();
    let mut next_hello = from;
    loop {
        let now = r.poll_timeout().unwrap_or(until).min(next_hello).max(from);
        if now > until {
            return seen;
        }
        if now >= next_hello {
            next_hello = now + Duration::from_millis(3500);
            *seq = seq.wrapping_add(1);
            for n in 1..=2 {
                clean_hello(r, now, n, *seq);
            }
        }
        r.handle_timeout(now);
        r.assert_nothing_due(now);
        while let Some(a) = r.poll_action() {
            seen.actions.push((now, a));
        }
        while r.poll_ogm_batch().is_some() {}
        while let Some(e) = r.poll_event() {
            seen.events.push((now, e));
        }
        r.assert_timers_cover_state(now);
    }
}

/// When `node`'s route was first lost in `seen`.
fn lost_at(seen: &Seen, node: usize) -> Option<Instant> {
    seen.events.iter().find_map(|(t, e)| match e {
        Event::RouteChanged {
            node: n,
            next_hop: None,
            ..
        } if *n == id(node) => Some(*t),
        _ => None,
    })
}

#[test]
fn a_route_entry_expires_exactly_at_route_expiry() {
    let (mut r, mut auth) = router();
    // Off the old 1 s sweep's phase: it expired this entry up to 1 s late.
    let t1 = T0 + Duration::from_millis(300);
    r.handle_ogm(t1, IF0, mac(1), &ogm(5, 1, 1, 0), &mut auth);
    let seen = run_idle(
        &mut r,
        t1,
        t1 + ROUTE_EXPIRY + Duration::from_secs(5),
        &mut 15,
    );
    assert_eq!(lost_at(&seen, 5), Some(t1 + ROUTE_EXPIRY));
    assert_eq!(r.counters().routes_expired, 1);
}

#[test]
fn an_unreachable_originator_is_forgotten_exactly_at_originator_gc() {
    let (mut r, mut auth) = router();
    let t1 = T0 + Duration::from_millis(300);
    r.handle_ogm(t1, IF0, mac(1), &ogm(5, 1, 1, 0), &mut auth);
    // 1 withdraws it 700 ms later: unreachable since t1, the last time it had a route.
    let t2 = t1 + Duration::from_millis(700);
    let mut retraction = ogm(5, 1, 1, INFINITY);
    retraction.ttl = 1;
    r.handle_ogm(t2, IF0, mac(1), &retraction, &mut auth);
    assert_eq!(r.next_hop(&id(5)), None);
    let mut seq = 15;
    let gc = t1 + ORIGINATOR_GC;
    let just_before = Instant::from_micros(gc.as_micros() - 1);
    run_idle(&mut r, t2, just_before, &mut seq);
    assert!(r.route(&id(5)).is_some(), "kept until ORIGINATOR_GC");
    assert_eq!(r.counters().routes_expired, 1, "the retraction's entry");
    run_idle(&mut r, just_before, gc, &mut seq);
    assert!(r.route(&id(5)).is_none(), "forgotten at ORIGINATOR_GC");
    assert_eq!(r.counters().originators_expired, 1);
}

#[test]
fn seqno_requests_for_an_originator_with_only_infeasible_routes_are_retried_at_their_gap() {
    let (mut r, mut auth) = router();
    let t1 = T0 + Duration::from_millis(300);
    // Selected through 1 and advertised by us at seqno 5: feasibility distance (5, 388).
    r.handle_ogm(t1, IF0, mac(1), &ogm(5, 1, 5, 100), &mut auth);
    // 2 offers the same seqno at a metric no better than ours: infeasible (it may loop).
    r.handle_ogm(t1, IF0, mac(2), &ogm(5, 1, 5, 700), &mut auth);
    assert_eq!(r.next_hop(&id(5)), Some((IF0, mac(1))));
    // 1 withdraws: only the infeasible route is left, and a request goes out at once...
    let t2 = t1 + Duration::from_millis(400);
    let mut retraction = ogm(5, 1, 5, INFINITY);
    retraction.ttl = 1;
    r.handle_ogm(t2, IF0, mac(1), &retraction, &mut auth);
    let mut asked = Vec::new();
    while let Some(a) = r.poll_action() {
        if matches!(a, Action::SendSeqnoRequest { req, .. } if req.node == id(5)) {
            asked.push(t2);
        }
    }
    // ...then again exactly SEQNO_REQUEST_MIN_GAP apart, SEQNO_REQUEST_RETRIES in all.
    let seen = run_idle(&mut r, t2, t2 + Duration::from_secs(10), &mut 15);
    asked.extend(seen.actions.iter().filter_map(|(t, a)| {
        matches!(a, Action::SendSeqnoRequest { req, .. } if req.node == id(5)).then_some(*t)
    }));
    let gap = requests::SEQNO_REQUEST_MIN_GAP;
    assert_eq!(asked, vec![t2, t2 + gap, t2 + gap + gap]);
    assert_eq!(r.next_hop(&id(5)), None);
}

#[test]
fn poll_timeout_of_an_idle_router_is_its_earliest_named_deadline() {
    let mut r = TestRouter::new(id(0), 1, T0, ChaCha20Rng::seed_from_u64(4));
    assert_eq!(r.poll_timeout(), Some(r.trickle.deadline()));
    let (mut r2, mut auth) = router();
    r2.handle_ogm(T0, IF0, mac(1), &ogm(5, 1, 1, 0), &mut auth);
    r2.handle_ogm(T0, IF0, mac(2), &ogm(6, 1, 1, INFINITY - 1), &mut auth);
    r.add_interface(T0, IF0, mac(0));
    for r in [&r, &r2] {
        let exact = timers::Timer::ALL.map(|t| r.exact_deadline(&r.links, t));
        for (t, e) in timers::Timer::ALL.iter().zip(exact) {
            assert_eq!(r.ctx.timers.get(*t), e, "{t:?}");
        }
        assert_eq!(r.poll_timeout(), exact.into_iter().flatten().min());
    }
}

#[test]
fn a_trickle_called_late_catches_up_stuck_retry_later_instead_of_spinning() {
    let mut r = TestRouter::new(id(0), 1, T0, ChaCha20Rng::seed_from_u64(4));
    // Called just before the end of the second interval (1 s + 2 s): the first interval's
    // OGM goes now, and the second interval's instant has passed as well.
    let now = T0 + Duration::from_millis(2999);
    r.handle_timeout(now);
    assert_eq!(r.counters().ogm_originated, 1);
    assert!(
        r.trickle.deadline() <= now,
        "this seed's second instant is already due"
    );
    r.assert_nothing_due(now);
    let trickle = r.ctx.timers.get(timers::Timer::Trickle);
    assert_eq!(trickle, Some(now + STUCK_RETRY));
    r.handle_timeout(now + STUCK_RETRY);
    assert_eq!(r.counters().ogm_originated, 2);
    r.assert_nothing_due(now + STUCK_RETRY);
}
