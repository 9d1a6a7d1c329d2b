//! Overlay addresses and IP packet handling on the TUN side (docs/protocol.md §5).
//!
//! Sans-IO and allocation-free per packet: key-derived IPv6 addresses (`address`), anonymous
//! senders' ephemeral addresses and the rewrite to and from them (`anon`), the
//! optional IPv4 pool (`ipv4`) and its decentralised conflict rule (`claims`), zero-copy IP
//! header views (`packet`), the verdict on each TUN packet (`classify`), the map from
//! destination address to node (`book`), test-traffic builders (`build`), and ICMP echo
//! requests, Time Exceeded errors and answers for ping and traceroute (`icmp`).

#![forbid(unsafe_code)]

pub mod address;
pub mod anon;
pub mod book;
pub mod build;
pub mod claims;
pub mod classify;
pub mod icmp;
pub mod ipv4;
pub mod packet;

pub use address::{
    address_belongs_to, iid_for, iid_of, ipv6_for, mesh_prefix, Iid, MeshPrefix, IID_LEN,
};
pub use book::{AddressBook, BookCounters, Learned, Learned6, MAX_BOOK_ENTRIES};
pub use claims::{ClaimCounters, ClaimError, ClaimOutcome, Ipv4Claim, Ipv4Claims, MAX_CLAIMS};
pub use classify::{classify, classify4, classify6, NoiseKind, PacketClass, Unroutable};
pub use icmp::{
    build_echo_request4, build_echo_request6, parse_icmp_answer, AnswerKind, IcmpAnswer,
};
pub use ipv4::{Ipv4Pool, PoolError, DEFAULT_POOL, MAX_CLAIM_INDEX};
pub use packet::{IpPacket, Ipv4View, Ipv6View, PacketError};

#[cfg(test)]
mod vectors_tests;
