//! IP packets: from the TUN side into the mesh, hop by hop along the routes, and out to the
//! TUN side at the destination.

use super::{DropReason, Node, DATA_TTL};
use crate::overlay::{classify, IpPacket, PacketClass};
use crate::time::Instant;
use crate::wire::e2e::MAX_E2E_PACKET_LEN;
use crate::wire::NodeId;

impl Node {
    /// An IP packet from the TUN side (an application on this node sending into the mesh).
    pub fn handle_ip_packet(&mut self, now: Instant, packet: &[u8]) {
        self.stats.packets_from_tun += 1;
        let class = classify(packet, &self.prefix, self.cfg.ipv4_pool.as_ref());
        let dst = match class {
            PacketClass::Noise(_) => {
                self.stats.drop(DropReason::LocalNoise);
                return;
            }
            PacketClass::Unroutable(_) => {
                self.stats.drop(DropReason::NotOverlay);
                return;
            }
            _ => self.book.lookup_class(&class),
        };
        let Some(hop_limit) = self.own_source_hop_limit(packet) else {
            self.stats.drop(DropReason::NotOverlay);
            return;
        };
        let Some(dst) = dst else {
            self.stats.drop(DropReason::NoRoute);
            return;
        };
        if packet.len() > MAX_E2E_PACKET_LEN {
            self.stats.drop(DropReason::PacketTooBig);
            return;
        }
        if dst == self.id {
            self.deliver_local(packet);
        } else if hop_limit == 0 {
            self.stats.drop(DropReason::TtlExpired);
        } else {
            // The mesh ttl counts the same hops as the IP hop limit, so traceroute works.
            self.e2e_send(now, dst, hop_limit.min(DATA_TTL), packet);
        }
        self.drain_routing(now);
    }

    /// The hop limit (IPv6) or TTL (IPv4) of `packet` if its source is one of our own
    /// overlay addresses: only those may appear as the source of what we send.
    fn own_source_hop_limit(&self, packet: &[u8]) -> Option<u8> {
        match IpPacket::parse(packet).ok()? {
            IpPacket::V6(p) => (p.src() == self.addr6).then_some(p.hop_limit()),
            IpPacket::V4(p) => (self.book.lookup_v4(&p.src()) == Some(self.id)).then_some(p.ttl()),
        }
    }

    /// A Data message received over a link session: its end-to-end payload is ours, or
    /// goes on toward `dst` unread.
    pub(super) fn on_data(&mut self, now: Instant, dst: NodeId, ttl: u8, payload: &[u8]) {
        if dst == self.id {
            self.on_e2e_payload(now, payload);
            return;
        }
        #[cfg(feature = "sim")]
        if let Some(tap) = self.relay_tap.as_mut() {
            tap(payload);
        }
        let Some(ttl) = ttl.checked_sub(1).filter(|t| *t > 0) else {
            self.stats.drop(DropReason::TtlExpired);
            self.send_expired_notice(now, payload);
            return;
        };
        if self.forward(now, dst, ttl, payload) {
            self.stats.forwarded += 1;
        }
    }

    /// Send a Data message with `payload` toward `dst` over the next hop's link session.
    pub(super) fn forward(&mut self, now: Instant, dst: NodeId, ttl: u8, payload: &[u8]) -> bool {
        let Some((iface, mac)) = self.routing.next_hop(&dst) else {
            self.stats.drop(DropReason::NoRoute);
            return false;
        };
        let Some(slot) = self.links.find(iface, mac) else {
            self.stats.drop(DropReason::NoSession);
            return false;
        };
        // A Probe rides in the padding when there is room: the next hop's (rate-limited,
        // small) answer keeps fast loss detection going without 1500-byte probe frames.
        self.probe_seq = self.probe_seq.wrapping_add(1);
        let probe = self.probe_seq;
        // End-to-end session messages are control traffic; only sealed packets are data.
        let control = !crate::wire::e2e::carries_packet(payload);
        let sent = self.queue_unicast(slot, control, |w| {
            w.push_data(dst, ttl, payload)?;
            match w.push_probe(probe) {
                Err(crate::wire::Error::NoSpace) => Ok(()),
                other => other,
            }
        });
        if sent {
            self.routing.note_data_sent(now, iface, mac);
        }
        sent
    }

    pub(super) fn deliver_local(&mut self, packet: &[u8]) {
        let Some(slot) = self.deliver.reserve() else {
            self.stats.drop(DropReason::DeliverQueueFull);
            return;
        };
        let Some(dst) = slot.buf.get_mut(..packet.len()) else {
            self.stats.drop(DropReason::PacketTooBig);
            return;
        };
        dst.copy_from_slice(packet);
        self.deliver.commit_as(packet.len(), ());
    }
}
