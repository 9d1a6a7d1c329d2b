//! IP packets: from the TUN side into the mesh, hop by hop along the routes, and out to the
//! TUN side at the destination.

use crate::link::LinkId;
use crate::node::link_layer::Relayed;
use crate::node::ring::ReserveError;
use crate::node::rx::Relay;
use crate::node::{DropReason, Node, DATA_TTL};
use crate::overlay::{classify, IpPacket, PacketClass};
use crate::time::Instant;
use crate::wire::e2e::MAX_E2E_PACKET_LEN;
use crate::wire::NodeId;

impl Node {
    /// An IP packet from the TUN side (an application on this node sending into the mesh).
    pub fn handle_ip_packet(&mut self, now: Instant, packet: &[u8]) {
        self.shared.stats.packets_from_tun += 1;
        let (class, parsed) = classify(packet, &self.prefix, self.shared.cfg.ipv4_pool.as_ref());
        let dst = match class {
            PacketClass::Noise(_) => {
                self.shared.stats.drop(DropReason::LocalNoise);
                return;
            }
            PacketClass::Unroutable(_) => {
                self.shared.stats.drop(DropReason::NotOverlay);
                return;
            }
            _ => self.book.lookup_class(&class),
        };
        let Some(hop_limit) = parsed.and_then(|p| self.own_source_hop_limit(&p)) else {
            self.shared.stats.drop(DropReason::NotOverlay);
            return;
        };
        let Some(dst) = dst else {
            self.shared.stats.drop(DropReason::NoRoute);
            return;
        };
        if packet.len() > MAX_E2E_PACKET_LEN {
            self.shared.stats.drop(DropReason::PacketTooBig);
            return;
        }
        if dst == self.shared.id {
            self.deliver_local(packet);
        } else if hop_limit == 0 {
            self.shared.stats.drop(DropReason::TtlExpired);
        } else {
            // The mesh ttl counts the same hops as the IP hop limit, so traceroute works.
            self.e2e_send(now, dst, hop_limit.min(DATA_TTL), packet);
        }
        self.drain_routing(now);
    }

    /// The hop limit (IPv6) or TTL (IPv4) of `packet` if its source is one of our own
    /// overlay addresses: only those may appear as the source of what we send.
    fn own_source_hop_limit(&self, packet: &IpPacket<'_>) -> Option<u8> {
        match packet {
            IpPacket::V6(p) => (p.src() == self.addr6).then_some(p.hop_limit()),
            IpPacket::V4(p) => {
                (self.book.lookup_v4(&p.src()) == Some(self.shared.id)).then_some(p.ttl())
            }
        }
    }

    /// A Data message received over a link session: its end-to-end payload is ours, or
    /// goes on toward `dst` unread (copied into a new frame: see `relay_in_place` for the
    /// path that does not copy).
    pub(in crate::node) fn on_data(&mut self, now: Instant, dst: NodeId, ttl: u8, payload: &[u8]) {
        if dst == self.shared.id {
            self.on_e2e_payload(now, payload);
            return;
        }
        let Some(relay) = self.relay_decision(now, dst, ttl, payload) else {
            return;
        };
        if self.send_data(now, relay.link, dst, relay.ttl, payload) {
            self.shared.stats.forwarded += 1;
        }
    }

    /// Where a Data message for another node goes next, or why it goes nowhere (counted;
    /// an expired one gets its source a notice).
    pub(in crate::node) fn relay_decision(
        &mut self,
        now: Instant,
        dst: NodeId,
        ttl: u8,
        payload: &[u8],
    ) -> Option<Relay> {
        #[cfg(feature = "sim")]
        if let Some(tap) = self.relay_tap.as_mut() {
            tap(payload);
        }
        let Some(ttl) = ttl.checked_sub(1).filter(|t| *t > 0) else {
            self.shared.stats.drop(DropReason::TtlExpired);
            self.send_expired_notice(now, payload);
            return None;
        };
        let link = self.next_hop_link(&dst)?;
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
    ) -> Option<Relayed> {
        let probe = self.next_probe_seq();
        let relayed = self.link.reseal_relayed(
            relay.link,
            frame,
            (relay.ttl, probe),
            relay.control,
            &mut self.shared.stats,
        )?;
        self.note_data_sent(now, relay.link);
        self.shared.stats.forwarded += 1;
        Some(relayed)
    }

    /// The link to the next hop toward `dst`, or None (counted).
    pub(in crate::node) fn next_hop_link(&mut self, dst: &NodeId) -> Option<LinkId> {
        let Some(id) = self.routing.next_hop(dst) else {
            self.shared.stats.drop(DropReason::NoRoute);
            return None;
        };
        if !self.link.holds(id) {
            self.shared.stats.drop(DropReason::NoSession);
            return None;
        }
        Some(id)
    }

    /// Send a Data message with `payload` toward `dst` over the next hop's link session.
    pub(in crate::node) fn forward(
        &mut self,
        now: Instant,
        dst: NodeId,
        ttl: u8,
        payload: &[u8],
    ) -> bool {
        match self.next_hop_link(&dst) {
            Some(link) => self.send_data(now, link, dst, ttl, payload),
            None => false,
        }
    }

    /// Queue a Data message with `payload` for `dst` to `link`.
    fn send_data(
        &mut self,
        now: Instant,
        link: LinkId,
        dst: NodeId,
        ttl: u8,
        payload: &[u8],
    ) -> bool {
        // A Probe rides in the padding when there is room: the next hop's (rate-limited,
        // small) answer keeps fast loss detection going without 1500-byte probe frames.
        let probe = self.next_probe_seq();
        let control = !crate::wire::e2e::carries_packet(payload);
        let sent = self
            .link
            .queue_unicast(link, control, &mut self.shared.stats, |w| {
                w.push_data(dst, ttl, payload)?;
                w.push_probe_if_room(probe)
            });
        if sent {
            self.note_data_sent(now, link);
        }
        sent
    }

    /// Tell routing a data frame went to `link` (it probes a link gone quiet).
    pub(in crate::node) fn note_data_sent(&mut self, now: Instant, link: LinkId) {
        let links = self.link.table_mut();
        self.routing.note_data_sent(now, links, link);
    }

    pub(in crate::node) fn next_probe_seq(&mut self) -> u32 {
        self.probe_seq = self.probe_seq.wrapping_add(1);
        self.probe_seq
    }

    pub(in crate::node) fn deliver_local(&mut self, packet: &[u8]) {
        match self.deliver.reserve_copy(packet) {
            Ok(_) => self.deliver.commit_as(packet.len(), ()),
            Err(e) => self.shared.stats.drop(deliver_drop(e)),
        }
    }
}

/// The drop reason when the deliver queue gave no slot.
pub(in crate::node) fn deliver_drop(e: ReserveError) -> DropReason {
    match e {
        ReserveError::Full => DropReason::DeliverQueueFull,
        ReserveError::TooBig => DropReason::PacketTooBig,
    }
}
