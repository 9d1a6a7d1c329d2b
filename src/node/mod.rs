//! The whole protocol as a sans-IO state machine (being built).

mod links;
mod ring;
mod stats;

pub use ring::{Ring, Slot};
pub use stats::{DropReason, Stats};

use crate::wire::MacAddr;

/// Which of the node's mesh interfaces a frame arrived on or leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IfaceId(pub u8);

/// A frame the node wrote into the caller's buffer and wants sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Interface to send on.
    pub iface: IfaceId,
    /// Destination MAC (a neighbour, or broadcast).
    pub dst: MacAddr,
    /// Bytes written after the Ethernet header (the caller adds the Ethernet header).
    pub len: usize,
}
