//! Builders and readers of small UDP and ICMPv6 echo packets, with correct checksums.
//!
//! The simulator and tests use them to make TUN traffic; each writes into the caller's
//! buffer and returns the packet length.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::packet::{
    internet_checksum, sum16, Ipv6View, IPV4_MIN_HEADER_LEN, IPV6_HEADER_LEN, PROTO_ICMPV6,
    PROTO_UDP,
};

/// Hop limit / TTL of built packets.
pub const DEFAULT_HOP_LIMIT: u8 = 64;
/// Length of a UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// Length of an ICMPv6 echo header (type, code, checksum, identifier, sequence).
pub const ECHO_HEADER_LEN: usize = 8;
/// ICMPv6 type of an echo request.
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
/// ICMPv6 type of an echo reply.
pub const ICMPV6_ECHO_REPLY: u8 = 129;

/// Why a packet could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The caller's buffer is shorter than the packet.
    #[error("buffer of {have} bytes is too small for a {need}-byte packet")]
    BufferTooSmall {
        /// Packet length.
        need: usize,
        /// Buffer length.
        have: usize,
    },
    /// The payload does not fit the 16-bit length fields.
    #[error("payload of {0} bytes does not fit one IP packet")]
    PayloadTooLarge(usize),
}

/// Why `read_udp6` / `read_echo6` refused a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The next header is not the one asked for (extension headers are not walked).
    #[error("next header {0} is not the expected protocol")]
    Protocol(u8),
    /// Shorter than the UDP or echo header, or UDP length disagrees with the payload.
    #[error("transport header truncated or its length field is wrong")]
    Length,
    /// ICMPv6 type is not echo request or reply.
    #[error("ICMPv6 type {0} is not an echo")]
    NotEcho(u8),
    /// The transport checksum does not verify.
    #[error("transport checksum does not verify")]
    Checksum,
}

/// Echo request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoKind {
    /// ICMPv6 type 128.
    Request,
    /// ICMPv6 type 129.
    Reply,
}

/// The header fields of an ICMPv6 echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    /// Request or reply.
    pub kind: EchoKind,
    /// Identifier.
    pub ident: u16,
    /// Sequence number.
    pub seq: u16,
}

/// A read UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Datagram payload.
    pub payload: &'a [u8],
}

/// Writes an IPv6 UDP packet into `buf`; returns its length.
pub fn build_udp6(
    buf: &mut [u8],
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    ports: (u16, u16),
    payload: &[u8],
) -> Result<usize, BuildError> {
    let upper_len = UDP_HEADER_LEN + payload.len();
    let (hdr, upper) = frame::<IPV6_HEADER_LEN>(buf, upper_len)?;
    write_ipv6_header(
        hdr,
        (src, dst),
        PROTO_UDP,
        DEFAULT_HOP_LIMIT,
        upper_len as u16,
    );
    write_udp(upper, ports, payload);
    let sum = internet_checksum(pseudo6(src, dst, PROTO_UDP, upper_len), upper);
    put_checksum(upper, 6, if sum == 0 { 0xffff } else { sum });
    Ok(IPV6_HEADER_LEN + upper_len)
}

/// Writes an ICMPv6 echo request or reply into `buf`; returns its length.
pub fn build_echo6(
    buf: &mut [u8],
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    echo: Echo,
    payload: &[u8],
) -> Result<usize, BuildError> {
    build_echo6_with(
        buf,
        (src, dst, DEFAULT_HOP_LIMIT),
        echo,
        payload.len(),
        |d| d.copy_from_slice(payload),
    )
}

/// Writes an ICMPv6 echo with hop limit `addrs.2` whose `payload_len` payload bytes are
/// written by `fill`; returns its length.
pub(crate) fn build_echo6_with(
    buf: &mut [u8],
    addrs: (&Ipv6Addr, &Ipv6Addr, u8),
    echo: Echo,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Result<usize, BuildError> {
    let (src, dst, hop_limit) = addrs;
    let upper_len = ECHO_HEADER_LEN.saturating_add(payload_len);
    let (hdr, upper) = frame::<IPV6_HEADER_LEN>(buf, upper_len)?;
    write_ipv6_header(hdr, (src, dst), PROTO_ICMPV6, hop_limit, upper_len as u16);
    let Some((h, data)) = upper.split_first_chunk_mut::<ECHO_HEADER_LEN>() else {
        return Err(BuildError::PayloadTooLarge(payload_len));
    };
    let ty = match echo.kind {
        EchoKind::Request => ICMPV6_ECHO_REQUEST,
        EchoKind::Reply => ICMPV6_ECHO_REPLY,
    };
    let [i0, i1] = echo.ident.to_be_bytes();
    let [s0, s1] = echo.seq.to_be_bytes();
    *h = [ty, 0, 0, 0, i0, i1, s0, s1];
    fill(data);
    let sum = internet_checksum(pseudo6(src, dst, PROTO_ICMPV6, upper_len), upper);
    put_checksum(upper, 2, sum);
    Ok(IPV6_HEADER_LEN + upper_len)
}

/// Writes an IPv4 UDP packet (no options, DF set) into `buf`; returns its length.
pub fn build_udp4(
    buf: &mut [u8],
    src: &Ipv4Addr,
    dst: &Ipv4Addr,
    ports: (u16, u16),
    payload: &[u8],
) -> Result<usize, BuildError> {
    let upper_len = UDP_HEADER_LEN + payload.len();
    let (hdr, upper) = frame::<IPV4_MIN_HEADER_LEN>(buf, upper_len)?;
    write_ipv4_header(hdr, (src, dst), PROTO_UDP, DEFAULT_HOP_LIMIT, upper_len);
    write_udp(upper, ports, payload);
    let pseudo =
        sum16(sum16(0, &src.octets()), &dst.octets()) + u32::from(PROTO_UDP) + upper_len as u32;
    let sum = internet_checksum(pseudo, upper);
    put_checksum(upper, 6, if sum == 0 { 0xffff } else { sum });
    Ok(IPV4_MIN_HEADER_LEN + upper_len)
}

/// Reads a UDP datagram carried directly in an IPv6 packet, checking length and checksum.
pub fn read_udp6<'a>(p: &Ipv6View<'a>) -> Result<Udp<'a>, TransportError> {
    let upper = upper_checked(p, PROTO_UDP)?;
    let Some((h, payload)) = upper.split_first_chunk::<UDP_HEADER_LEN>() else {
        return Err(TransportError::Length);
    };
    if usize::from(u16::from_be_bytes([h[4], h[5]])) != upper.len() {
        return Err(TransportError::Length);
    }
    Ok(Udp {
        src_port: u16::from_be_bytes([h[0], h[1]]),
        dst_port: u16::from_be_bytes([h[2], h[3]]),
        payload,
    })
}

/// Reads an ICMPv6 echo carried directly in an IPv6 packet, checking its checksum.
pub fn read_echo6<'a>(p: &Ipv6View<'a>) -> Result<(Echo, &'a [u8]), TransportError> {
    let upper = upper_checked(p, PROTO_ICMPV6)?;
    let Some((h, payload)) = upper.split_first_chunk::<ECHO_HEADER_LEN>() else {
        return Err(TransportError::Length);
    };
    let kind = match h[0] {
        ICMPV6_ECHO_REQUEST => EchoKind::Request,
        ICMPV6_ECHO_REPLY => EchoKind::Reply,
        t => return Err(TransportError::NotEcho(t)),
    };
    let echo = Echo {
        kind,
        ident: u16::from_be_bytes([h[4], h[5]]),
        seq: u16::from_be_bytes([h[6], h[7]]),
    };
    Ok((echo, payload))
}

fn upper_checked<'a>(p: &Ipv6View<'a>, proto: u8) -> Result<&'a [u8], TransportError> {
    if p.next_header() != proto {
        return Err(TransportError::Protocol(p.next_header()));
    }
    let upper = p.payload();
    let pseudo = pseudo6(&p.src(), &p.dst(), proto, upper.len());
    if internet_checksum(pseudo, upper) != 0 {
        return Err(TransportError::Checksum);
    }
    Ok(upper)
}

/// Splits the first `H + upper_len` bytes of `buf` into the IP header and the rest.
pub(crate) fn frame<const H: usize>(
    buf: &mut [u8],
    upper_len: usize,
) -> Result<(&mut [u8; H], &mut [u8]), BuildError> {
    if upper_len > usize::from(u16::MAX) - H {
        return Err(BuildError::PayloadTooLarge(upper_len));
    }
    let need = H + upper_len;
    let have = buf.len();
    buf.get_mut(..need)
        .and_then(|b| b.split_first_chunk_mut::<H>())
        .ok_or(BuildError::BufferTooSmall { need, have })
}

pub(crate) fn write_ipv6_header(
    hdr: &mut [u8; IPV6_HEADER_LEN],
    (src, dst): (&Ipv6Addr, &Ipv6Addr),
    next: u8,
    hop_limit: u8,
    payload_len: u16,
) {
    let [l0, l1] = payload_len.to_be_bytes();
    let (a, rest) = hdr.split_at_mut(8);
    a.copy_from_slice(&[0x60, 0, 0, 0, l0, l1, next, hop_limit]);
    let (s, d) = rest.split_at_mut(16);
    s.copy_from_slice(&src.octets());
    d.copy_from_slice(&dst.octets());
}

/// An IPv4 header without options (DF set) for `upper_len` bytes after it, with its checksum.
pub(crate) fn write_ipv4_header(
    hdr: &mut [u8; IPV4_MIN_HEADER_LEN],
    (src, dst): (&Ipv4Addr, &Ipv4Addr),
    proto: u8,
    ttl: u8,
    upper_len: usize,
) {
    let [t0, t1] = ((IPV4_MIN_HEADER_LEN + upper_len) as u16).to_be_bytes();
    let [a, b, c, d] = src.octets();
    let [e, f, g, h] = dst.octets();
    *hdr = [
        0x45, 0, t0, t1, 0, 0, 0x40, 0, ttl, proto, 0, 0, a, b, c, d, e, f, g, h,
    ];
    let [c0, c1] = internet_checksum(0, hdr).to_be_bytes();
    hdr[10] = c0;
    hdr[11] = c1;
}

fn write_udp(upper: &mut [u8], ports: (u16, u16), payload: &[u8]) {
    if let Some((h, data)) = upper.split_first_chunk_mut::<UDP_HEADER_LEN>() {
        let [s0, s1] = ports.0.to_be_bytes();
        let [d0, d1] = ports.1.to_be_bytes();
        let [l0, l1] = ((UDP_HEADER_LEN + payload.len()) as u16).to_be_bytes();
        *h = [s0, s1, d0, d1, l0, l1, 0, 0];
        data.copy_from_slice(payload);
    }
}

pub(crate) fn put_checksum(upper: &mut [u8], at: usize, sum: u16) {
    if let Some(c) = upper.get_mut(at..at + 2) {
        c.copy_from_slice(&sum.to_be_bytes());
    }
}

/// The IPv6 pseudo-header sum (RFC 8200 §8.1).
pub(crate) fn pseudo6(src: &Ipv6Addr, dst: &Ipv6Addr, next: u8, upper_len: usize) -> u32 {
    sum16(sum16(0, &src.octets()), &dst.octets()) + u32::from(next) + upper_len as u32
}
