//! Zero-copy views of the IP packets the TUN device hands us (docs/protocol.md §5.5).
//!
//! `IpPacket::parse` checks version and lengths once; the fixed header is then held as a
//! `&[u8; N]`, so no accessor can index out of bounds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Length of an IPv4 header without options.
pub const IPV4_MIN_HEADER_LEN: usize = 20;
/// Length of the fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;
/// IP protocol number / next header of ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IP protocol number of ICMP (v4).
pub const PROTO_ICMP: u8 = 1;
/// IPv6 next header of the hop-by-hop options header.
pub const PROTO_HOP_BY_HOP: u8 = 0;

/// What was wrong with a packet from the TUN device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Zero bytes.
    #[error("empty IP packet")]
    Empty,
    /// The version nibble is neither 4 nor 6.
    #[error("IP version {0} is neither 4 nor 6")]
    Version(u8),
    /// Fewer bytes than the fixed header.
    #[error("{have}-byte packet is shorter than the {need}-byte IPv{version} header")]
    ShortHeader {
        /// 4 or 6.
        version: u8,
        /// Bytes the header needs.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// IPv4 IHL below 5 or beyond the packet.
    #[error("IPv4 header length {ihl} words is invalid for a {have}-byte packet")]
    Ipv4HeaderLength {
        /// The IHL field (32-bit words).
        ihl: u8,
        /// Bytes present.
        have: usize,
    },
    /// IPv4 total length below the header length or not the packet's length.
    #[error("IPv4 total length {total} does not match the {have}-byte packet")]
    Ipv4TotalLength {
        /// The total length field.
        total: u16,
        /// Bytes present.
        have: usize,
    },
    /// IPv4 header checksum does not verify.
    #[error("IPv4 header checksum does not verify")]
    Ipv4Checksum,
    /// IPv6 payload length + 40 is not the packet's length.
    #[error("IPv6 payload length {payload} + 40 does not match the {have}-byte packet")]
    Ipv6PayloadLength {
        /// The payload length field.
        payload: u16,
        /// Bytes present.
        have: usize,
    },
}

/// A checked IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4View<'a> {
    hdr: &'a [u8; IPV4_MIN_HEADER_LEN],
    packet: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Ipv4View<'a> {
    /// Checks version, IHL, total length (must equal `buf.len()`) and header checksum.
    pub fn parse(buf: &'a [u8]) -> Result<Self, PacketError> {
        let have = buf.len();
        let hdr = buf
            .first_chunk::<IPV4_MIN_HEADER_LEN>()
            .ok_or(PacketError::ShortHeader {
                version: 4,
                need: IPV4_MIN_HEADER_LEN,
                have,
            })?;
        if hdr[0] >> 4 != 4 {
            return Err(PacketError::Version(hdr[0] >> 4));
        }
        let ihl = hdr[0] & 0x0f;
        let hl = usize::from(ihl) * 4;
        let bad_ihl = PacketError::Ipv4HeaderLength { ihl, have };
        if hl < IPV4_MIN_HEADER_LEN {
            return Err(bad_ihl);
        }
        let header = buf.get(..hl).ok_or(bad_ihl)?;
        let total = u16::from_be_bytes([hdr[2], hdr[3]]);
        if usize::from(total) != have {
            return Err(PacketError::Ipv4TotalLength { total, have });
        }
        if internet_checksum(0, header) != 0 {
            return Err(PacketError::Ipv4Checksum);
        }
        let payload = buf.get(hl..).unwrap_or_default();
        Ok(Ipv4View {
            hdr,
            packet: buf,
            payload,
        })
    }

    /// Header length in bytes (with options).
    pub fn header_len(&self) -> usize {
        self.packet.len() - self.payload.len()
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.hdr[8]
    }

    /// Upper-layer protocol number.
    pub fn protocol(&self) -> u8 {
        self.hdr[9]
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.hdr[12], self.hdr[13], self.hdr[14], self.hdr[15])
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.hdr[16], self.hdr[17], self.hdr[18], self.hdr[19])
    }

    /// Bytes after the header.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.packet
    }
}

/// A checked IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6View<'a> {
    hdr: &'a [u8; IPV6_HEADER_LEN],
    packet: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Ipv6View<'a> {
    /// Checks version and that payload length + 40 equals `buf.len()` (no jumbograms).
    pub fn parse(buf: &'a [u8]) -> Result<Self, PacketError> {
        let have = buf.len();
        let hdr = buf
            .first_chunk::<IPV6_HEADER_LEN>()
            .ok_or(PacketError::ShortHeader {
                version: 6,
                need: IPV6_HEADER_LEN,
                have,
            })?;
        if hdr[0] >> 4 != 6 {
            return Err(PacketError::Version(hdr[0] >> 4));
        }
        let payload_len = u16::from_be_bytes([hdr[4], hdr[5]]);
        if usize::from(payload_len) + IPV6_HEADER_LEN != have {
            return Err(PacketError::Ipv6PayloadLength {
                payload: payload_len,
                have,
            });
        }
        let payload = buf.get(IPV6_HEADER_LEN..).unwrap_or_default();
        Ok(Ipv6View {
            hdr,
            packet: buf,
            payload,
        })
    }

    /// The next header field of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.hdr[6]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.hdr[7]
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        addr6(self.hdr, 8)
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        addr6(self.hdr, 24)
    }

    /// Bytes after the fixed header (extension headers included).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.packet
    }

    /// The upper-layer protocol and its bytes, skipping at most one hop-by-hop header
    /// (as MLD reports carry); `None` if that header is truncated.
    pub fn upper_layer(&self) -> Option<(u8, &'a [u8])> {
        if self.next_header() != PROTO_HOP_BY_HOP {
            return Some((self.next_header(), self.payload));
        }
        let [next, len, ..] = *self.payload else {
            return None;
        };
        let skip = (usize::from(len) + 1) * 8;
        Some((next, self.payload.get(skip..)?))
    }
}

/// A checked IPv4 or IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpPacket<'a> {
    /// An IPv4 packet.
    V4(Ipv4View<'a>),
    /// An IPv6 packet.
    V6(Ipv6View<'a>),
}

impl<'a> IpPacket<'a> {
    /// Dispatches on the version nibble and checks the header.
    pub fn parse(buf: &'a [u8]) -> Result<Self, PacketError> {
        match buf.first().map(|b| b >> 4) {
            None => Err(PacketError::Empty),
            Some(4) => Ipv4View::parse(buf).map(IpPacket::V4),
            Some(6) => Ipv6View::parse(buf).map(IpPacket::V6),
            Some(v) => Err(PacketError::Version(v)),
        }
    }

    /// 4 or 6.
    pub fn version(&self) -> u8 {
        match self {
            IpPacket::V4(_) => 4,
            IpPacket::V6(_) => 6,
        }
    }

    /// Source address.
    pub fn src(&self) -> IpAddr {
        match self {
            IpPacket::V4(p) => p.src().into(),
            IpPacket::V6(p) => p.src().into(),
        }
    }

    /// Destination address.
    pub fn dst(&self) -> IpAddr {
        match self {
            IpPacket::V4(p) => p.dst().into(),
            IpPacket::V6(p) => p.dst().into(),
        }
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            IpPacket::V4(p) => p.as_bytes(),
            IpPacket::V6(p) => p.as_bytes(),
        }
    }
}

fn addr6(hdr: &[u8; IPV6_HEADER_LEN], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    if let Some(s) = hdr.get(at..at + 16) {
        o.copy_from_slice(s);
    }
    Ipv6Addr::from(o)
}

/// The one's-complement sum of `data` folded onto `acc`, complemented (RFC 1071).
///
/// Returns 0 over data that already carries a correct checksum.
pub fn internet_checksum(acc: u32, data: &[u8]) -> u16 {
    let mut sum = sum16(acc, data);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Adds `data` as big-endian 16-bit words to `acc` (an odd last byte is padded with 0).
pub(crate) fn sum16(acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    let mut sum = u64::from(acc);
    for c in &mut chunks {
        if let [a, b] = *c {
            sum += u64::from(u16::from_be_bytes([a, b]));
        }
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum > 0xffff_ffff {
        sum = (sum & 0xffff_ffff) + (sum >> 32);
    }
    sum as u32
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
