//! IP packets: from the TUN side into the mesh, hop by hop along the routes, and out to the
//! TUN side at the destination.

use crate::node::link_layer::tx::{reseal_relayed, sending_session};
use crate::node::ring::ReserveError;
use crate::node::rx::{Relay, Relayed};
use crate::node::{DropReason, Node, TxMeta, DATA_TTL};
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
        if self.send_data(now, relay.slot, dst, relay.ttl, payload) {
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
        let slot = self.next_hop_slot(&dst)?;
        Some(Relay {
            slot,
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
        let Some(link) = self.links.get_mut(relay.slot) else {
            self.shared.stats.drop(DropReason::NoSession);
            return None;
        };
        let (iface, mac) = (link.iface, link.mac);
        let Some((sess, counter)) = sending_session(link) else {
            self.shared.stats.drop(DropReason::NoSession);
            return None;
        };
        let send = &sess.session.send;
        let resealed = reseal_relayed(
            frame,
            sess.remote_idx,
            counter,
            relay.ttl,
            probe,
            |aad, body| send.seal_in_place(counter, aad, body),
        );
        if resealed.is_err() {
            self.shared.stats.drop(DropReason::MalformedMessage);
            return None;
        }
        self.note_data_sent(now, relay.slot);
        self.shared.stats.forwarded += 1;
        let meta = TxMeta {
            iface,
            dst: mac,
            control: relay.control,
        };
        Some(Relayed {
            meta,
            len: frame.len(),
        })
    }

    /// The link to the next hop toward `dst`, or None (counted).
    pub(in crate::node) fn next_hop_slot(&mut self, dst: &NodeId) -> Option<usize> {
        let Some(id) = self.routing.next_hop(dst) else {
            self.shared.stats.drop(DropReason::NoRoute);
            return None;
        };
        let slot = self.links.table().get(id).map(|e| e.id.slot());
        if slot.is_none() {
            self.shared.stats.drop(DropReason::NoSession);
        }
        slot
    }

    /// Send a Data message with `payload` toward `dst` over the next hop's link session.
    pub(in crate::node) fn forward(
        &mut self,
        now: Instant,
        dst: NodeId,
        ttl: u8,
        payload: &[u8],
    ) -> bool {
        match self.next_hop_slot(&dst) {
            Some(slot) => self.send_data(now, slot, dst, ttl, payload),
            None => false,
        }
    }

    /// Queue a Data message with `payload` for `dst` to the link in `slot`.
    fn send_data(
        &mut self,
        now: Instant,
        slot: usize,
        dst: NodeId,
        ttl: u8,
        payload: &[u8],
    ) -> bool {
        // A Probe rides in the padding when there is room: the next hop's (rate-limited,
        // small) answer keeps fast loss detection going without 1500-byte probe frames.
        let probe = self.next_probe_seq();
        let control = !crate::wire::e2e::carries_packet(payload);
        let sent = self.queue_unicast(slot, control, |w| {
            w.push_data(dst, ttl, payload)?;
            w.push_probe_if_room(probe)
        });
        if sent {
            self.note_data_sent(now, slot);
        }
        sent
    }

    /// Tell routing a data frame went to the link in `slot` (it probes a link gone quiet).
    pub(in crate::node) fn note_data_sent(&mut self, now: Instant, slot: usize) {
        if let Some(id) = self.links.id(slot) {
            let links = self.links.table_mut();
            self.routing.note_data_sent(now, links, id);
        }
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
