//! IP packets: from the TUN side into the mesh, hop by hop along the routes, and out to the
//! TUN side at the destination.

use super::{DataPlane, Env, DATA_TTL};
use crate::link::LinkId;
use crate::node::control::ControlPlane;
use crate::node::link_layer::Relayed;
use crate::node::ring::ReserveError;
use crate::node::{DropReason, Stats};
use crate::overlay::anon::anon_iid_of;
use crate::overlay::{classify, IpPacket, PacketClass, Unroutable};
use crate::time::Instant;
use crate::wire::e2e::MAX_E2E_PACKET_LEN;
use crate::wire::NodeId;

/// Where a Data message being relayed goes next.
pub(in crate::node) struct Relay {
    /// The next hop's link.
    link: LinkId,
    /// Its ttl after this hop.
    ttl: u8,
    /// Whether it counts as control traffic (end-to-end session set-up).
    control: bool,
}

impl DataPlane {
    /// An IP packet from the TUN side (an application on this node sending into the mesh).
    pub(in crate::node) fn handle_ip_packet(
        &mut self,
        now: Instant,
        packet: &[u8],
        env: &mut Env<'_>,
    ) {
        let stats = &mut env.shared.stats;
        stats.packets_from_tun += 1;
        let prefix = env.control.prefix();
        let (class, parsed) = classify(packet, &prefix, env.shared.cfg.ipv4_pool.as_ref());
        let dst = match class {
            PacketClass::Noise(_) => {
                stats.drop(DropReason::LocalNoise);
                return;
            }
            PacketClass::Unroutable(Unroutable::OutsidePrefix) => {
                return self.answer_anonymous(now, parsed, packet, env);
            }
            PacketClass::Unroutable(_) => {
                stats.drop(DropReason::NotOverlay);
                return;
            }
            _ => env.control.book().lookup_class(&class),
        };
        let id = env.shared.id;
        let Some(hop_limit) = parsed.and_then(|p| own_source_hop_limit(&p, env.control, id)) else {
            stats.drop(DropReason::NotOverlay);
            return;
        };
        let Some(dst) = dst else {
            stats.drop(DropReason::NoRoute);
            return;
        };
        if packet.len() > MAX_E2E_PACKET_LEN {
            stats.drop(DropReason::PacketTooBig);
            return;
        }
        if dst == id {
            self.deliver_local(packet, stats);
        } else if hop_limit == 0 {
            stats.drop(DropReason::TtlExpired);
        } else if sends_anonymously(&class, &dst, env) {
            self.onion.anon_send(now, dst, packet, env);
        } else {
            // The mesh ttl counts the same hops as the IP hop limit, so traceroute works.
            self.e2e_send(now, dst, hop_limit.min(DATA_TTL), packet, env);
        }
    }

    /// A packet from our TUN side outside the mesh prefix: an answer to an anonymous sender
    /// if it goes from our address to an ephemeral one, else not for the mesh.
    fn answer_anonymous(
        &mut self,
        now: Instant,
        parsed: Option<IpPacket<'_>>,
        packet: &[u8],
        env: &mut Env<'_>,
    ) {
        let anon = env.control.anon_prefix();
        let iid = match parsed {
            Some(IpPacket::V6(p)) if p.src() == env.control.addr6() => anon_iid_of(&anon, &p.dst()),
            _ => None,
        };
        match iid {
            Some(iid) => self.onion.anon_answer(now, iid, packet, env),
            None => env.shared.stats.drop(DropReason::NotOverlay),
        }
    }

    /// A Data message received over a link session: its end-to-end payload is ours, or
    /// goes on toward `dst` unread (copied into a new frame: see `relay_in_place` for the
    /// path that does not copy).
    pub(in crate::node) fn on_data(
        &mut self,
        now: Instant,
        (dst, ttl): (NodeId, u8),
        payload: &[u8],
        env: &mut Env<'_>,
    ) {
        if dst == env.shared.id {
            self.on_e2e_payload(now, payload, env);
            return;
        }
        let Some(relay) = self.relay_decision(now, (dst, ttl), payload, env) else {
            return;
        };
        if self.send_data(now, relay.link, (dst, relay.ttl), payload, env) {
            env.shared.stats.forwarded += 1;
        }
    }

    /// Where a Data message for `dst` with `ttl` goes next, or why it goes nowhere
    /// (counted; an expired one gets its source a notice).
    pub(in crate::node) fn relay_decision(
        &mut self,
        now: Instant,
        (dst, ttl): (NodeId, u8),
        payload: &[u8],
        env: &mut Env<'_>,
    ) -> Option<Relay> {
        #[cfg(feature = "sim")]
        if let Some(tap) = self.relay_tap.as_mut() {
            tap(payload);
        }
        let Some(ttl) = ttl.checked_sub(1).filter(|t| *t > 0) else {
            env.shared.stats.drop(DropReason::TtlExpired);
            self.send_expired_notice(now, payload, env);
            return None;
        };
        let link = next_hop_link(&dst, env)?;
        Some(Relay {
            link,
            ttl,
            // End-to-end session messages are control traffic; only sealed packets are data.
            control: !crate::wire::e2e::carries_packet(payload),
        })
    }

    /// Re-seal the received unicast `frame`, whose first message is the Data message being
    /// relayed, in place for the next hop; returns it to be sent.
    pub(in crate::node) fn relay_in_place(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        relay: Relay,
        env: &mut Env<'_>,
    ) -> Option<Relayed> {
        let probe = self.next_probe_seq();
        let relayed = env.link.reseal_relayed(
            relay.link,
            frame,
            (relay.ttl, probe),
            relay.control,
            &mut env.shared.stats,
        )?;
        env.control.note_data_sent(now, env.link, relay.link);
        env.shared.stats.forwarded += 1;
        Some(relayed)
    }

    /// Send a Data message with `payload` toward `dst` over the next hop's link session.
    pub(super) fn forward(
        &mut self,
        now: Instant,
        (dst, ttl): (NodeId, u8),
        payload: &[u8],
        env: &mut Env<'_>,
    ) -> bool {
        match next_hop_link(&dst, env) {
            Some(link) => self.send_data(now, link, (dst, ttl), payload, env),
            None => false,
        }
    }

    /// Queue a Data message with `payload` for `dst` with `ttl` to `link`.
    fn send_data(
        &mut self,
        now: Instant,
        link: LinkId,
        (dst, ttl): (NodeId, u8),
        payload: &[u8],
        env: &mut Env<'_>,
    ) -> bool {
        // A Probe rides in the padding when there is room: the next hop's (rate-limited,
        // small) answer keeps fast loss detection going without 1500-byte probe frames.
        let probe = self.next_probe_seq();
        let control = !crate::wire::e2e::carries_packet(payload);
        let sent = env
            .link
            .queue_unicast(link, control, &mut env.shared.stats, |w| {
                w.push_data(dst, ttl, payload)?;
                w.push_probe_if_room(probe)
            });
        if sent {
            env.control.note_data_sent(now, env.link, link);
        }
        sent
    }

    /// The sequence number of the next Probe a data frame carries.
    pub(super) fn next_probe_seq(&mut self) -> u32 {
        self.probe_seq = self.probe_seq.wrapping_add(1);
        self.probe_seq
    }

    /// Queue `packet` for the TUN side.
    pub(super) fn deliver_local(&mut self, packet: &[u8], stats: &mut Stats) {
        match self.deliver.reserve_copy(packet) {
            Ok(_) => self.deliver.commit_as(packet.len(), ()),
            Err(e) => stats.drop(deliver_drop(e)),
        }
    }
}

/// Whether a packet of `class` to `dst` goes through a circuit: IPv6 to another node while
/// `anonymous` is on and `dst` is not one of the `direct` exceptions.
fn sends_anonymously(class: &PacketClass, dst: &NodeId, env: &Env<'_>) -> bool {
    let cfg = &env.shared.cfg;
    let direct = || cfg.direct.contains(&crate::overlay::iid_for(dst));
    cfg.anonymous && matches!(class, PacketClass::Overlay6 { .. }) && !direct()
}

/// The link to the next hop toward `dst`, or None (counted).
pub(super) fn next_hop_link(dst: &NodeId, env: &mut Env<'_>) -> Option<LinkId> {
    let Some(id) = env.control.next_hop(dst) else {
        env.shared.stats.drop(DropReason::NoRoute);
        return None;
    };
    if !env.link.holds(id) {
        env.shared.stats.drop(DropReason::NoSession);
        return None;
    }
    Some(id)
}

/// The hop limit (IPv6) or TTL (IPv4) of `packet` if its source is one of our own (`id`'s)
/// overlay addresses: only those may appear as the source of what we send.
fn own_source_hop_limit(packet: &IpPacket<'_>, control: &ControlPlane, id: NodeId) -> Option<u8> {
    match packet {
        IpPacket::V6(p) => (p.src() == control.addr6()).then_some(p.hop_limit()),
        IpPacket::V4(p) => (control.book().lookup_v4(&p.src()) == Some(id)).then_some(p.ttl()),
    }
}

/// The drop reason when the deliver queue gave no slot.
pub(super) fn deliver_drop(e: ReserveError) -> DropReason {
    match e {
        ReserveError::Full => DropReason::DeliverQueueFull,
        ReserveError::TooBig => DropReason::PacketTooBig,
    }
}
