//! The interface the simulator drives: one sans-IO protocol instance per simulated node.

use std::net::Ipv6Addr;

use crate::node::{IfaceId, Transmit};
use crate::time::Instant;
use crate::wire::{MacAddr, NodeId};

/// A sans-IO node as the simulator sees it.
///
/// The simulator drives each host quinn-style: after every input (`handle_*`) it drains
/// `poll_transmit` until `None`, then `poll_deliver` until `None`, then reads
/// `poll_timeout` and calls `handle_timeout` once that instant is reached. A freshly
/// built host gets no input at all: it is drained the same way at the instant it is
/// created, so its first `poll_timeout` is how it starts itself.
pub trait SimHost {
    /// The node's routing identity (what other hosts' `next_hop` is asked about).
    fn node_id(&self) -> NodeId;
    /// The overlay address test traffic to this node is sent to.
    fn overlay_addr(&self) -> Ipv6Addr;
    /// A frame arrived from neighbour `src` (bytes after the Ethernet header).
    fn handle_frame(&mut self, now: Instant, iface: IfaceId, src: MacAddr, frame: &[u8]);
    /// An IP packet arrived from the local TUN device.
    fn handle_ip_packet(&mut self, now: Instant, packet: &[u8]);
    /// The instant last returned by `poll_timeout` has been reached.
    fn handle_timeout(&mut self, now: Instant);
    /// Writes the next frame to send into `buf` (bytes after the Ethernet header).
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit>;
    /// Writes the next IP packet for the local TUN device into `buf`, returning its length.
    fn poll_deliver(&mut self, buf: &mut [u8]) -> Option<usize>;
    /// The next instant at which `handle_timeout` must be called, if any.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The MAC of the neighbour this node currently forwards to for `dst`.
    fn next_hop(&self, dst: &NodeId) -> Option<MacAddr>;
    /// Cumulative bytes (Ethernet header included, as the medium counts) of unicast (0x15)
    /// frames this host sent that carried control rather than user data; 0 if it does not
    /// count.
    fn control_bytes_sent(&self) -> u64 {
        0
    }
    /// Onion circuit builds of this host so far, if it builds any.
    fn circuit_builds(&self) -> Option<CircuitBuilds> {
        None
    }
}

/// A host's onion circuit builds: attempts, outcomes and how long the successful ones took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CircuitBuilds {
    /// Builds sent.
    pub sent: u64,
    /// Builds the exit confirmed.
    pub built: u64,
    /// Builds that timed out.
    pub timed_out: u64,
    /// Build times, in the buckets of `node::BUILD_MS_BOUNDS`.
    pub ms_buckets: Vec<u64>,
}
