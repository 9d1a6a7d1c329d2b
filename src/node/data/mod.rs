//! The data plane: IP packets from the TUN side sealed end to end and sent toward their
//! destination, Data messages relayed hop by hop (in the receive buffer where it can),
//! packets for us opened and queued for the TUN side, and the ICMP errors traceroute
//! needs. The onion circuits will live beside it.
//!
//! It asks the control plane for next hops, keys and addresses, and the link layer to
//! queue or re-seal frames; both come in an `Env` lent for the call.

mod e2e;
mod e2e_table;
mod e2e_wait;
mod ip;
mod onion;

pub(super) use ip::Relay;
pub use onion::{
    CircuitInfo, BUILDS_PER_SEC, BUILD_RETRY, BUILD_TIMEOUT, CIRCUIT_LIFETIME, LOOP_INTERVAL,
    MAX_OWN_CIRCUITS, MAX_RELAY_CIRCUITS, RELAY_IDLE, SPARE_CIRCUITS,
};

#[cfg(test)]
pub(super) use e2e_wait::PROBE_QUOTE_LEN;

use super::control::ControlPlane;
use super::link_layer::LinkLayer;
use super::ring::Ring;
use super::{DropReason, NodeConfig, Shared, Stats};
use crate::routing::seqno::TokenBucket;
use crate::time::Instant;
use crate::wire::MAX_DATA_PACKET_LEN;
use e2e_table::E2eTable;
use e2e_wait::{Probes, Waiting};

/// Largest ttl of data frames we originate (the IP hop limit gives it, capped here).
pub const DATA_TTL: u8 = 64;
/// End-to-end handshakes started for sealed packets under unknown sessions, per second.
pub const E2E_TRIGGERS_PER_SEC: u32 = 20;
/// End-to-end msg 1s from new sources the node reads (two key agreements each before it
/// knows one is genuine), per second and burst over all of them.
pub const E2E_INITS_PER_SEC: u32 = 20;
/// ICMP errors the node generates, per second (and burst), over all destinations.
pub const ICMP_ERRORS_PER_SEC: u32 = 20;

/// The rest of the node, lent to the data plane for one call: routes, keys and addresses
/// (the control plane), the way out (the link layer), and the shared state.
pub(super) struct Env<'a> {
    /// Next hops, peers' keys, the address book.
    pub(super) control: &'a mut ControlPlane,
    /// Queues and re-seals frames for a link.
    pub(super) link: &'a mut LinkLayer,
    /// Configuration, identity, randomness, timers, counters.
    pub(super) shared: &'a mut Shared,
}

/// Forwarding state, end-to-end sessions and the deliver queue.
pub(super) struct DataPlane {
    /// IP packets for the TUN side.
    deliver: Ring<()>,
    /// End-to-end peers and sessions.
    e2e: E2eTable,
    /// Packets waiting for their end-to-end session.
    waiting: Waiting,
    /// The start of recent traceroute probes.
    probes: Probes,
    /// Handshakes started because a sealed packet named a session we do not hold.
    e2e_budget: TokenBucket,
    /// End-to-end msg 1s read (`E2E_INITS_PER_SEC`).
    e2e_init_budget: TokenBucket,
    /// ICMP errors made or sent (`ICMP_ERRORS_PER_SEC`).
    icmp_budget: TokenBucket,
    /// Sequence number of the last Probe a data frame carried.
    probe_seq: u32,
    /// Where ICMP errors are built (allocated once; taken while in use).
    icmp_scratch: Option<Box<[u8; MAX_DATA_PACKET_LEN]>>,
    /// Where a packet that waited for its end-to-end session is taken out to be sealed
    /// (allocated once; taken while in use).
    unheld: Option<Box<[u8; MAX_DATA_PACKET_LEN]>>,
    /// Onion circuits relayed and of our own.
    onion: onion::Onion,
    /// The simulator's instrumented relay: sees what this node can read of what it relays.
    #[cfg(feature = "sim")]
    relay_tap: Option<super::RelayTap>,
}

impl DataPlane {
    /// Empty tables and queues, allocated now and never again.
    pub(super) fn new(cfg: &NodeConfig, now: Instant, filter_key: [u8; 32]) -> DataPlane {
        DataPlane {
            deliver: Ring::new(cfg.deliver_queue),
            e2e: E2eTable::default(),
            waiting: Waiting::default(),
            probes: Probes::default(),
            e2e_budget: TokenBucket::new(now, E2E_TRIGGERS_PER_SEC, E2E_TRIGGERS_PER_SEC),
            e2e_init_budget: TokenBucket::new(now, E2E_INITS_PER_SEC, E2E_INITS_PER_SEC),
            icmp_budget: TokenBucket::new(now, ICMP_ERRORS_PER_SEC, ICMP_ERRORS_PER_SEC),
            probe_seq: 0,
            icmp_scratch: Some(Box::new([0u8; MAX_DATA_PACKET_LEN])),
            unheld: Some(Box::new([0u8; MAX_DATA_PACKET_LEN])),
            onion: onion::Onion::new(now, filter_key),
            #[cfg(feature = "sim")]
            relay_tap: None,
        }
    }

    /// Make this node an instrumented relay (`Node::set_relay_tap`).
    #[cfg(feature = "sim")]
    pub(super) fn set_relay_tap(&mut self, tap: super::RelayTap) {
        self.relay_tap = Some(tap);
    }

    /// Number of nodes held in the end-to-end table.
    pub(super) fn e2e_peers(&self) -> usize {
        self.e2e.len()
    }

    /// The next IP packet for the TUN side, written into `buf`; returns its length.
    pub(super) fn poll_deliver(&mut self, buf: &mut [u8], stats: &mut Stats) -> Option<usize> {
        let slot = self.deliver.front()?;
        let len = slot.len;
        let copied = match (buf.get_mut(..len), slot.buf.get(..len)) {
            (Some(dst), Some(src)) => {
                dst.copy_from_slice(src);
                true
            }
            _ => false,
        };
        self.deliver.pop();
        if !copied {
            stats.drop(DropReason::DeliverQueueFull);
            return None;
        }
        stats.packets_to_tun += 1;
        Some(len)
    }
}
