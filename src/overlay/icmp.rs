//! ICMP for `veil ping` / `veil traceroute` and for relays: echo requests with a chosen hop
//! limit, Time Exceeded errors quoting the dropped packet, and reading what comes back
//! (docs/protocol.md §6.7). Pure functions over the caller's buffers; no allocation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::build::{
    build_echo6_with, frame, pseudo6, put_checksum, write_ipv4_header, write_ipv6_header, Echo,
    EchoKind, ECHO_HEADER_LEN, ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST,
};
use super::packet::{
    internet_checksum, IpPacket, IPV4_MIN_HEADER_LEN, IPV6_HEADER_LEN, PROTO_ICMP, PROTO_ICMPV6,
};

/// ICMPv6 Destination Unreachable.
pub const ICMPV6_DEST_UNREACHABLE: u8 = 1;
/// ICMPv6 Time Exceeded (code 0: hop limit exceeded in transit).
pub const ICMPV6_TIME_EXCEEDED: u8 = 3;
/// ICMPv4 echo reply.
pub const ICMPV4_ECHO_REPLY: u8 = 0;
/// ICMPv4 Destination Unreachable.
pub const ICMPV4_DEST_UNREACHABLE: u8 = 3;
/// ICMPv4 echo request.
pub const ICMPV4_ECHO_REQUEST: u8 = 8;
/// ICMPv4 Time Exceeded (code 0: TTL exceeded in transit).
pub const ICMPV4_TIME_EXCEEDED: u8 = 11;
/// Largest ICMPv6 error message, quoted packet included (RFC 4443 §2.4 (c): the IPv6
/// minimum MTU).
pub const ICMPV6_ERROR_MAX: usize = 1280;
/// Largest ICMPv4 error message (RFC 1812 §4.3.2.3: at most 576 bytes).
pub const ICMPV4_ERROR_MAX: usize = 576;
/// Hop limit / TTL of the ICMP errors a relay sends.
pub const ICMP_ERROR_HOP_LIMIT: u8 = 64;

/// What an ICMP answer to one of our echo requests says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// The destination answered (ICMPv6 129, ICMPv4 0).
    EchoReply,
    /// A relay dropped the request: its hop limit ran out (ICMPv6 3, ICMPv4 11).
    TimeExceeded,
    /// The destination or a router could not deliver it (ICMPv6 1, ICMPv4 3).
    Unreachable,
}

/// An ICMP answer to an echo request, as `parse_icmp_answer` reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpAnswer {
    /// Who answered (the IP source of the answer).
    pub from: IpAddr,
    /// Reply or error.
    pub kind: AnswerKind,
    /// Echo identifier (of the reply, or of the request quoted in an error).
    pub ident: u16,
    /// Echo sequence number (of the reply, or of the request quoted in an error).
    pub seq: u16,
    /// ICMP code (0 for echo replies; the error's code otherwise).
    pub code: u8,
}

/// Writes an ICMPv6 echo request with hop limit `hop_limit` and `payload_len` payload bytes
/// (0, 1, 2, … mod 256) into `buf`; returns its length, `None` if it does not fit.
pub fn build_echo_request6(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    ident: u16,
    seq: u16,
    payload_len: usize,
) -> Option<usize> {
    let echo = Echo {
        kind: EchoKind::Request,
        ident,
        seq,
    };
    build_echo6_with(
        buf,
        (&src, &dst, hop_limit),
        echo,
        payload_len,
        fill_pattern,
    )
    .ok()
}

/// Writes an IPv4 ICMP echo request (no options, DF set) with TTL `ttl` and `payload_len`
/// payload bytes (0, 1, 2, … mod 256) into `buf`; returns its length, `None` if it does
/// not fit.
pub fn build_echo_request4(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    ident: u16,
    seq: u16,
    payload_len: usize,
) -> Option<usize> {
    let upper_len = ECHO_HEADER_LEN.checked_add(payload_len)?;
    let (hdr, upper) = frame::<IPV4_MIN_HEADER_LEN>(buf, upper_len).ok()?;
    write_ipv4_header(hdr, (&src, &dst), PROTO_ICMP, ttl, upper_len);
    let (h, data) = upper.split_first_chunk_mut::<ECHO_HEADER_LEN>()?;
    let [i0, i1] = ident.to_be_bytes();
    let [s0, s1] = seq.to_be_bytes();
    *h = [ICMPV4_ECHO_REQUEST, 0, 0, 0, i0, i1, s0, s1];
    fill_pattern(data);
    let sum = internet_checksum(0, upper);
    put_checksum(upper, 2, sum);
    Some(IPV4_MIN_HEADER_LEN + upper_len)
}

/// Writes an ICMPv6 Time Exceeded (code 0) from `src` to `dst` quoting as much of
/// `original` as fits both `ICMPV6_ERROR_MAX` and `buf`; returns its length.
pub fn build_time_exceeded6(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    original: &[u8],
) -> Option<usize> {
    let room = buf.len().min(ICMPV6_ERROR_MAX);
    let quote = room.checked_sub(IPV6_HEADER_LEN + ECHO_HEADER_LEN)?;
    let quoted = original.get(..quote.min(original.len()))?;
    let upper_len = ECHO_HEADER_LEN + quoted.len();
    let (hdr, upper) = frame::<IPV6_HEADER_LEN>(buf, upper_len).ok()?;
    write_ipv6_header(
        hdr,
        (&src, &dst),
        PROTO_ICMPV6,
        ICMP_ERROR_HOP_LIMIT,
        upper_len as u16,
    );
    write_error(upper, ICMPV6_TIME_EXCEEDED, quoted)?;
    let sum = internet_checksum(pseudo6(&src, &dst, PROTO_ICMPV6, upper_len), upper);
    put_checksum(upper, 2, sum);
    Some(IPV6_HEADER_LEN + upper_len)
}

/// Writes an ICMPv4 Time Exceeded (code 0) from `src` to `dst` quoting as much of
/// `original` as fits both `ICMPV4_ERROR_MAX` and `buf` (at least its header and 8 bytes:
/// `None` if `buf` is too small for that); returns its length.
pub fn build_time_exceeded4(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    original: &[u8],
) -> Option<usize> {
    let room = buf.len().min(ICMPV4_ERROR_MAX);
    let quote = room.checked_sub(IPV4_MIN_HEADER_LEN + ECHO_HEADER_LEN)?;
    let ihl = usize::from(original.first()? & 0x0f) * 4;
    let quoted = original.get(..quote.min(original.len()))?;
    if quoted.len() < original.len().min(ihl + 8) {
        return None;
    }
    let upper_len = ECHO_HEADER_LEN + quoted.len();
    let (hdr, upper) = frame::<IPV4_MIN_HEADER_LEN>(buf, upper_len).ok()?;
    write_ipv4_header(
        hdr,
        (&src, &dst),
        PROTO_ICMP,
        ICMP_ERROR_HOP_LIMIT,
        upper_len,
    );
    write_error(upper, ICMPV4_TIME_EXCEEDED, quoted)?;
    let sum = internet_checksum(0, upper);
    put_checksum(upper, 2, sum);
    Some(IPV4_MIN_HEADER_LEN + upper_len)
}

/// Whether `packet` must not be answered with an ICMP error: it is one (ICMPv6 types below
/// 128; ICMPv4 3, 4, 5, 11, 12), a non-first IPv4 fragment (its ICMP header, if any, is not
/// in it), or it cannot be read.
pub fn must_not_answer(packet: &[u8]) -> bool {
    match IpPacket::parse(packet) {
        Ok(IpPacket::V6(p)) => match p.upper_layer() {
            Some((PROTO_ICMPV6, icmp)) => icmp.first().is_none_or(|t| *t < 128),
            Some(_) => false,
            None => true,
        },
        Ok(IpPacket::V4(p)) => {
            let hdr = p.as_bytes();
            let offset = hdr
                .get(6..8)
                .map_or(0, |b| u16::from_be_bytes([b[0] & 0x1f, b[1]]));
            if offset != 0 {
                return true;
            }
            p.protocol() == PROTO_ICMP
                && p.payload()
                    .first()
                    .is_none_or(|t| matches!(t, 3 | 4 | 5 | 11 | 12))
        }
        Err(_) => true,
    }
}

/// Reads an echo reply, Time Exceeded or Destination Unreachable answering one of our echo
/// requests (checksums checked); `None` for anything else.
pub fn parse_icmp_answer(packet: &[u8]) -> Option<IcmpAnswer> {
    match IpPacket::parse(packet).ok()? {
        IpPacket::V6(p) => {
            let (PROTO_ICMPV6, icmp) = p.upper_layer()? else {
                return None;
            };
            let pseudo = pseudo6(&p.src(), &p.dst(), PROTO_ICMPV6, icmp.len());
            if internet_checksum(pseudo, icmp) != 0 {
                return None;
            }
            let kind = match *icmp.first()? {
                ICMPV6_ECHO_REPLY => AnswerKind::EchoReply,
                ICMPV6_TIME_EXCEEDED => AnswerKind::TimeExceeded,
                ICMPV6_DEST_UNREACHABLE => AnswerKind::Unreachable,
                _ => return None,
            };
            answer(p.src().into(), kind, icmp, quoted_echo6)
        }
        IpPacket::V4(p) => {
            if p.protocol() != PROTO_ICMP {
                return None;
            }
            let icmp = p.payload();
            if internet_checksum(0, icmp) != 0 {
                return None;
            }
            let kind = match *icmp.first()? {
                ICMPV4_ECHO_REPLY => AnswerKind::EchoReply,
                ICMPV4_TIME_EXCEEDED => AnswerKind::TimeExceeded,
                ICMPV4_DEST_UNREACHABLE => AnswerKind::Unreachable,
                _ => return None,
            };
            answer(p.src().into(), kind, icmp, quoted_echo4)
        }
    }
}

/// The answer in ICMP message `icmp`; for errors, ident and seq come from the echo request
/// `quoted` finds in the quoted packet.
fn answer(
    from: IpAddr,
    kind: AnswerKind,
    icmp: &[u8],
    quoted: fn(&[u8]) -> Option<(u16, u16)>,
) -> Option<IcmpAnswer> {
    let (h, rest) = icmp.split_first_chunk::<ECHO_HEADER_LEN>()?;
    let (ident, seq) = match kind {
        AnswerKind::EchoReply => (
            u16::from_be_bytes([h[4], h[5]]),
            u16::from_be_bytes([h[6], h[7]]),
        ),
        _ => quoted(rest)?,
    };
    Some(IcmpAnswer {
        from,
        kind,
        ident,
        seq,
        code: h[1],
    })
}

/// Identifier and sequence of the ICMPv6 echo request at the start of a quoted packet
/// (possibly cut short after the echo header).
fn quoted_echo6(q: &[u8]) -> Option<(u16, u16)> {
    let hdr = q.first_chunk::<IPV6_HEADER_LEN>()?;
    if hdr[0] >> 4 != 6 || hdr[6] != PROTO_ICMPV6 {
        return None;
    }
    echo_request_ids(q.get(IPV6_HEADER_LEN..)?, ICMPV6_ECHO_REQUEST)
}

/// Identifier and sequence of the ICMPv4 echo request at the start of a quoted packet.
fn quoted_echo4(q: &[u8]) -> Option<(u16, u16)> {
    let first = *q.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < IPV4_MIN_HEADER_LEN || *q.get(9)? != PROTO_ICMP {
        return None;
    }
    echo_request_ids(q.get(ihl..)?, ICMPV4_ECHO_REQUEST)
}

fn echo_request_ids(icmp: &[u8], request_type: u8) -> Option<(u16, u16)> {
    let h = icmp.first_chunk::<ECHO_HEADER_LEN>()?;
    (h[0] == request_type).then(|| {
        (
            u16::from_be_bytes([h[4], h[5]]),
            u16::from_be_bytes([h[6], h[7]]),
        )
    })
}

/// ICMP error header (type, code 0, checksum 0, unused 0) then the quoted bytes.
fn write_error(upper: &mut [u8], ty: u8, quoted: &[u8]) -> Option<()> {
    let (h, data) = upper.split_first_chunk_mut::<ECHO_HEADER_LEN>()?;
    *h = [ty, 0, 0, 0, 0, 0, 0, 0];
    data.get_mut(..quoted.len())?.copy_from_slice(quoted);
    Some(())
}

fn fill_pattern(data: &mut [u8]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b = i as u8;
    }
}

#[cfg(test)]
#[path = "icmp_tests.rs"]
mod tests;
