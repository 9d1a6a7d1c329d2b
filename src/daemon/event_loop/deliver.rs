//! The TUN's write side: the node's packets go to the TUN (or to a waiting `veil ping`),
//! one by one or, with offloads, through the coalescer (`daemon::gro`).

use std::io;

use super::{Daemon, IoCounters};
use crate::daemon::gro::Gro;
use crate::daemon::ping::Pings;
use crate::daemon::sys::Tun;
use crate::node::Node;

impl Daemon {
    /// Hands every packet the node has for the TUN to it (or to a waiting ping).
    pub(super) fn deliver(&mut self) {
        let now = std::time::Instant::now();
        match self.gro.as_mut() {
            Some(gro) => deliver_coalesced(
                &mut self.node,
                gro,
                &mut self.pings,
                self.tun.get_ref(),
                &mut self.counters,
                now,
            ),
            None => self.deliver_plain(now),
        }
    }

    /// Hands the node's packets to the TUN one by one (or to a waiting ping).
    fn deliver_plain(&mut self, now: std::time::Instant) {
        while let Some(len) = self.node.poll_deliver(&mut self.buf[..]) {
            let Some(packet) = self.buf.get(..len) else {
                continue;
            };
            if self.pings.intercept(packet, now) {
                continue;
            }
            if self.tun.get_ref().write(packet).is_err() {
                self.counters.tun_write_dropped += 1;
            }
        }
    }
}

/// Hands the node's packets to the TUN through the coalescer (or to a waiting ping): all
/// of them, in batches of what the coalescer holds.
fn deliver_coalesced(
    node: &mut Node,
    gro: &mut Gro,
    pings: &mut Pings,
    tun: &Tun,
    counters: &mut IoCounters,
    now: std::time::Instant,
) {
    loop {
        if gro.slot().is_none() {
            write_coalesced(gro, tun, counters);
        }
        let Some(slot) = gro.slot() else {
            break;
        };
        let Some(len) = node.poll_deliver(slot) else {
            break;
        };
        if !slot.get(..len).is_some_and(|p| pings.intercept(p, now)) {
            gro.push(len);
        }
    }
    write_coalesced(gro, tun, counters);
}

/// Writes what the coalescer made, counting super-packets and what could not be written.
fn write_coalesced(gro: &mut Gro, tun: &Tun, counters: &mut IoCounters) {
    gro.drain(&mut |w| match tun.write_parts(&w.vnet_hdr, w.parts) {
        Ok(_) if w.segments > 1 => {
            counters.tun_gro_packets += 1;
            counters.tun_gro_segments += w.segments as u64;
        }
        Ok(_) => {}
        Err(e) => {
            counters.tun_write_dropped += w.segments as u64;
            if w.segments > 1 && e.kind() != io::ErrorKind::WouldBlock {
                tracing::debug!("a coalesced write of {} packets failed: {e}", w.segments);
            }
        }
    });
}
