//! What to do with a packet read from the TUN device (docs/protocol.md §5.5).

use std::net::Ipv4Addr;

use super::address::{iid_of, Iid, MeshPrefix};
use super::ipv4::Ipv4Pool;
use super::packet::{IpPacket, Ipv4View, Ipv6View, PacketError, PROTO_ICMPV6};

/// The verdict on one TUN packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketClass {
    /// To an overlay IPv6 address in our prefix: look the interface id up.
    Overlay6 {
        /// Interface id of the destination.
        iid: Iid,
    },
    /// To an assignable IPv4 address of the pool: look the address up.
    Pool4 {
        /// The destination.
        dst: Ipv4Addr,
    },
    /// Host chatter that never leaves the node: drop quietly (still counted by kind).
    Noise(NoiseKind),
    /// Cannot be sent into the mesh: drop and count by reason.
    Unroutable(Unroutable),
}

/// Local chatter the kernel sends on any interface, dropped without complaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum NoiseKind {
    /// ICMPv6 router solicitation (133): sent as soon as the TUN is up.
    RouterSolicitation,
    /// Other ICMPv6 neighbour discovery (134-137, 141, 142).
    NeighbourDiscovery,
    /// Multicast listener discovery (130-132, 143) and multicast router discovery (151-153).
    Mld,
    /// To a multicast address (ff00::/8, 224.0.0.0/4).
    Multicast,
    /// To a link-local address (fe80::/10, 169.254.0.0/16).
    LinkLocal,
    /// To 255.255.255.255 or the pool's broadcast address.
    Broadcast,
}

/// Why a packet cannot be routed into the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unroutable {
    /// The header is malformed.
    Malformed(PacketError),
    /// IPv6 destination outside the mesh prefix.
    OutsidePrefix,
    /// IPv4 packet but no IPv4 pool is configured.
    NoIpv4Pool,
    /// IPv4 destination outside the pool.
    OutsidePool,
    /// Destination is the pool's network address.
    PoolNetworkAddress,
    /// Unspecified or loopback destination.
    Reserved,
}

impl NoiseKind {
    /// A short stable name for counters and logs.
    pub fn name(&self) -> &'static str {
        match self {
            NoiseKind::RouterSolicitation => "router_solicitation",
            NoiseKind::NeighbourDiscovery => "neighbour_discovery",
            NoiseKind::Mld => "mld",
            NoiseKind::Multicast => "multicast",
            NoiseKind::LinkLocal => "link_local",
            NoiseKind::Broadcast => "broadcast",
        }
    }
}

impl Unroutable {
    /// A short stable name for counters and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Unroutable::Malformed(_) => "malformed",
            Unroutable::OutsidePrefix => "outside_prefix",
            Unroutable::NoIpv4Pool => "no_ipv4_pool",
            Unroutable::OutsidePool => "outside_pool",
            Unroutable::PoolNetworkAddress => "pool_network_address",
            Unroutable::Reserved => "reserved",
        }
    }
}

/// Classifies a raw TUN packet for a mesh with `prefix` and an optional IPv4 `pool`; also
/// returns the checked packet, so that the caller need not parse it again.
pub fn classify<'a>(
    packet: &'a [u8],
    prefix: &MeshPrefix,
    pool: Option<&Ipv4Pool>,
) -> (PacketClass, Option<IpPacket<'a>>) {
    match IpPacket::parse(packet) {
        Ok(p @ IpPacket::V6(v6)) => (classify6(&v6, prefix), Some(p)),
        Ok(p @ IpPacket::V4(v4)) => (classify4(&v4, pool), Some(p)),
        Err(e) => (PacketClass::Unroutable(Unroutable::Malformed(e)), None),
    }
}

/// Classifies a checked IPv6 packet.
pub fn classify6(p: &Ipv6View<'_>, prefix: &MeshPrefix) -> PacketClass {
    if let Some(kind) = icmpv6_noise(p) {
        return PacketClass::Noise(kind);
    }
    let dst = p.dst();
    if dst.is_multicast() {
        PacketClass::Noise(NoiseKind::Multicast)
    } else if dst.is_unicast_link_local() {
        PacketClass::Noise(NoiseKind::LinkLocal)
    } else if dst.is_unspecified() || dst.is_loopback() {
        PacketClass::Unroutable(Unroutable::Reserved)
    } else if let Some(iid) = iid_of(prefix, &dst) {
        PacketClass::Overlay6 { iid }
    } else {
        PacketClass::Unroutable(Unroutable::OutsidePrefix)
    }
}

/// Classifies a checked IPv4 packet.
pub fn classify4(p: &Ipv4View<'_>, pool: Option<&Ipv4Pool>) -> PacketClass {
    let dst = p.dst();
    if dst.is_broadcast() || pool.is_some_and(|pl| dst == pl.broadcast()) {
        return PacketClass::Noise(NoiseKind::Broadcast);
    }
    if dst.is_multicast() {
        return PacketClass::Noise(NoiseKind::Multicast);
    }
    if dst.is_link_local() {
        return PacketClass::Noise(NoiseKind::LinkLocal);
    }
    if dst.is_unspecified() || dst.is_loopback() {
        return PacketClass::Unroutable(Unroutable::Reserved);
    }
    match pool {
        None => PacketClass::Unroutable(Unroutable::NoIpv4Pool),
        Some(pl) if dst == pl.network() => PacketClass::Unroutable(Unroutable::PoolNetworkAddress),
        Some(pl) if pl.contains(&dst) => PacketClass::Pool4 { dst },
        Some(_) => PacketClass::Unroutable(Unroutable::OutsidePool),
    }
}

/// ND and MLD messages, found directly or behind one hop-by-hop header.
fn icmpv6_noise(p: &Ipv6View<'_>) -> Option<NoiseKind> {
    let (proto, upper) = p.upper_layer()?;
    if proto != PROTO_ICMPV6 {
        return None;
    }
    match upper.first()? {
        133 => Some(NoiseKind::RouterSolicitation),
        134..=137 | 141 | 142 => Some(NoiseKind::NeighbourDiscovery),
        130..=132 | 143 | 151..=153 => Some(NoiseKind::Mld),
        _ => None,
    }
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
