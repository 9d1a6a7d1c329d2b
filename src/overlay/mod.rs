//! Overlay addresses and IP packet handling on the TUN side (docs/protocol.md §5).
//!
//! Sans-IO and allocation-free per packet: address derivation, the decentralised IPv4
//! claim table, zero-copy IP header views, packet classification and the address book.

pub mod address;
pub mod build;
pub mod claims;
pub mod classify;
pub mod ipv4;
pub mod packet;
