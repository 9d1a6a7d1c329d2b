//! The link layer: neighbours on each interface, their sessions, handshakes and group keys,
//! and the transmit queues frames wait in.

pub(in crate::node) mod budget;
pub(in crate::node) mod group_keys;
pub(in crate::node) mod handshake;
pub(in crate::node) mod links;
pub(in crate::node) mod tx;
pub(in crate::node) mod tx_queues;
