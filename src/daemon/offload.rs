//! TUN offloads: what a TUN opened with `IFF_VNET_HDR` and TSO enabled reads is a
//! `virtio_net_hdr` and then a packet that may be a TCP super-segment of up to 64 KiB. The
//! overlay carries packets of at most the TUN MTU, so each read is cut here into ordinary IP
//! packets with complete headers and checksums, as a NIC doing TSO would. Pure functions
//! over byte slices: nothing here allocates or panics on what the kernel hands over.

/// Length of `struct virtio_net_hdr` (linux/virtio_net.h), the prefix of every read and
/// write on a TUN opened with `IFF_VNET_HDR` (the kernel's default `TUNSETVNETHDRSZ`).
pub const VNET_HDR_LEN: usize = 10;

// From linux/virtio_net.h (libc does not have them).
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum from `csum_start` on is only partial.
pub(super) const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`.
const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub(super) const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub(super) const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN`: a flag on the type, the CWR handling below covers it.
const GSO_ECN: u8 = 0x80;

/// IP protocol number of TCP.
pub(super) const IPPROTO_TCP: u8 = 6;
const TCP_FIN: u8 = 0x01;
/// TCP's PSH flag.
pub(super) const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;
/// Offset of the checksum in a TCP header.
pub(super) const TCP_CSUM_OFFSET: usize = 16;

/// Why a read from the TUN was dropped instead of handed to the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than the header, or than the IP and TCP headers it announces.
    Short,
    /// A GSO type other than TCPv4 or TCPv6 (UDP segmentation is not enabled), or one that
    /// does not match the IP version.
    GsoType,
    /// `gso_size` of zero.
    GsoSize,
    /// `hdr_len` beyond the packet.
    HdrLen,
    /// `csum_start`/`csum_offset` outside the packet or not at the TCP header.
    Csum,
    /// The IP header's length disagrees with what was read (a truncated read).
    IpLength,
    /// The IP and TCP headers leave no room for data in a packet of the MTU.
    Mtu,
}

/// What one read became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// One packet, passed on as it was (its checksum completed if the kernel left it open).
    Plain,
    /// A super-segment cut into this many packets.
    Segments(usize),
}

/// The fields of a `virtio_net_hdr`, in the host's byte order (the TUN's default without
/// `TUNSETVNETLE`/`TUNSETVNETBE`).
struct VnetHdr {
    flags: u8,
    gso_type: u8,
    hdr_len: usize,
    gso_size: usize,
    csum_start: usize,
    csum_offset: usize,
}

impl VnetHdr {
    fn parse(b: &[u8]) -> Option<VnetHdr> {
        let u16_at = |at: usize| {
            Some(usize::from(u16::from_ne_bytes([
                *b.get(at)?,
                *b.get(at + 1)?,
            ])))
        };
        Some(VnetHdr {
            flags: *b.first()?,
            gso_type: *b.get(1)?,
            hdr_len: u16_at(2)?,
            gso_size: u16_at(4)?,
            csum_start: u16_at(6)?,
            csum_offset: u16_at(8)?,
        })
    }
}

/// Turns one read from an offloading TUN (`virtio_net_hdr`, then a packet) into plain IP
/// packets of at most `out.len()` bytes, handing each to `each`. A super-segment is cut in
/// `out`; a single packet is passed from `read` itself (completed in place if needed).
pub fn split(
    read: &mut [u8],
    out: &mut [u8],
    each: &mut dyn FnMut(&[u8]),
) -> Result<Split, Malformed> {
    let hdr = read
        .get(..VNET_HDR_LEN)
        .and_then(VnetHdr::parse)
        .ok_or(Malformed::Short)?;
    let packet = read.get_mut(VNET_HDR_LEN..).ok_or(Malformed::Short)?;
    if hdr.hdr_len > packet.len() {
        return Err(Malformed::HdrLen);
    }
    if hdr.gso_type == GSO_NONE {
        if hdr.flags & F_NEEDS_CSUM != 0 {
            complete_checksum(packet, hdr.csum_start, hdr.csum_offset)?;
        }
        each(packet);
        return Ok(Split::Plain);
    }
    segment(packet, &hdr, out, each).map(Split::Segments)
}

/// Finishes a checksum the kernel left partial: from `start` on, with the pseudo-header sum
/// already in the field, as the kernel's `skb_checksum_help` would (any protocol, IPv6
/// extension headers included).
fn complete_checksum(packet: &mut [u8], start: usize, offset: usize) -> Result<(), Malformed> {
    let at = start.checked_add(offset).ok_or(Malformed::Csum)?;
    if at.checked_add(2).is_none_or(|end| end > packet.len()) {
        return Err(Malformed::Csum);
    }
    let sum = packet.get(start..).map_or(0, |b| sum16(b, 0));
    put_csum(packet, at, sum);
    Ok(())
}

/// The IP header facts segmentation needs.
struct Ip {
    v6: bool,
    /// Where the TCP header starts (`csum_start`, checked against the IP header).
    l4: usize,
    /// Where the data starts: `l4` plus the TCP header's own length (the kernel's `hdr_len`
    /// cannot be trusted: on the forwarding path it is the whole first packet's length).
    data: usize,
}

fn parse_ip(packet: &[u8], hdr: &VnetHdr) -> Result<Ip, Malformed> {
    let first = *packet.first().ok_or(Malformed::Short)?;
    let be16 = |at: usize| read2(packet, at).map(|b| usize::from(u16::from_be_bytes(b)));
    let v6 = match (first >> 4, hdr.gso_type & !GSO_ECN) {
        (4, GSO_TCPV4) => false,
        (6, GSO_TCPV6) => true,
        _ => return Err(Malformed::GsoType),
    };
    let l4 = hdr.csum_start;
    if v6 {
        // Extension headers may sit between the fixed header and TCP: csum_start says where.
        if l4 < 40 {
            return Err(Malformed::Csum);
        }
        if be16(4).ok_or(Malformed::Short)? + 40 != packet.len() {
            return Err(Malformed::IpLength);
        }
    } else {
        if l4 != usize::from(first & 0x0f) * 4 || l4 < 20 {
            return Err(Malformed::Csum);
        }
        if packet.get(9) != Some(&IPPROTO_TCP) {
            return Err(Malformed::GsoType);
        }
        if be16(2).ok_or(Malformed::Short)? != packet.len() {
            return Err(Malformed::IpLength);
        }
    }
    if hdr.csum_offset != TCP_CSUM_OFFSET {
        return Err(Malformed::Csum);
    }
    let offset_byte = *packet.get(l4 + 12).ok_or(Malformed::Short)?;
    let tcp_len = usize::from(offset_byte >> 4) * 4;
    if tcp_len < 20 {
        return Err(Malformed::Short);
    }
    let data = l4 + tcp_len;
    if data > packet.len() {
        return Err(Malformed::Short);
    }
    Ok(Ip { v6, l4, data })
}

/// Cuts a TCP super-segment into packets of at most `out.len()` bytes, as the kernel's
/// `tcp_gso_segment` would: consecutive sequence numbers, CWR on the first only, FIN and PSH
/// on the last only, IPv4 ids counting up, every length and checksum recomputed.
fn segment(
    packet: &[u8],
    hdr: &VnetHdr,
    out: &mut [u8],
    each: &mut dyn FnMut(&[u8]),
) -> Result<usize, Malformed> {
    if hdr.gso_size == 0 {
        return Err(Malformed::GsoSize);
    }
    let ip = parse_ip(packet, hdr)?;
    let (headers, payload) = packet.split_at(ip.data);
    // The kernel sizes segments for the MTU; cutting finer is still valid TCP if it did not.
    let mss = hdr.gso_size.min(out.len().saturating_sub(ip.data));
    if mss == 0 {
        return Err(Malformed::Mtu);
    }
    let seq0 = u32::from_be_bytes(read4(headers, ip.l4 + 4).ok_or(Malformed::Short)?);
    let id0 = u16::from_be_bytes(read2(headers, 4).ok_or(Malformed::Short)?);
    let count = payload.len().div_ceil(mss).max(1);
    let mut rest = payload;
    for i in 0..count {
        let (data, tail) = rest.split_at(mss.min(rest.len()));
        rest = tail;
        let len = ip.data + data.len();
        let seg = out.get_mut(..len).ok_or(Malformed::Mtu)?;
        let (h, d) = seg.split_at_mut(ip.data);
        h.copy_from_slice(headers);
        d.copy_from_slice(data);
        let sent = u32::try_from(mss * i).unwrap_or(u32::MAX);
        if let Some(s) = h.get_mut(ip.l4 + 4..ip.l4 + 8) {
            s.copy_from_slice(&seq0.wrapping_add(sent).to_be_bytes());
        }
        if let Some(flags) = h.get_mut(ip.l4 + 13) {
            if i > 0 {
                *flags &= !TCP_CWR;
            }
            if i + 1 < count {
                *flags &= !(TCP_FIN | TCP_PSH);
            }
        }
        let l4_len = len - ip.l4;
        if ip.v6 {
            put16(h, 4, (len - 40) as u16);
        } else {
            put16(h, 2, len as u16);
            put16(h, 4, id0.wrapping_add(i as u16));
            put16(h, 10, 0);
            let sum = h.get(..ip.l4).map_or(0, |b| sum16(b, 0));
            put_csum(h, 10, sum);
        }
        put16(seg, ip.l4 + TCP_CSUM_OFFSET, 0);
        let pseudo = pseudo_header_sum(seg, ip.v6, l4_len);
        let sum = seg.get(ip.l4..).map_or(pseudo, |b| sum16(b, pseudo));
        put_csum(seg, ip.l4 + TCP_CSUM_OFFSET, sum);
        each(seg);
    }
    Ok(count)
}

/// The TCP pseudo-header's sum: addresses, protocol, TCP length.
pub(super) fn pseudo_header_sum(packet: &[u8], v6: bool, l4_len: usize) -> u64 {
    let addrs = if v6 {
        packet.get(8..40)
    } else {
        packet.get(12..20)
    };
    let sum = addrs.map_or(0, |a| sum16(a, 0));
    sum + u64::from(IPPROTO_TCP) + l4_len as u64
}

/// One's-complement sum of `b` as big-endian 16-bit words (odd tail padded), added to
/// `initial`, unfolded: four bytes at a time into 64 bits, which a 64 KiB packet cannot
/// overflow.
pub(super) fn sum16(b: &[u8], initial: u64) -> u64 {
    let mut sum = initial;
    let mut words = b.chunks_exact(4);
    for w in &mut words {
        sum += w.try_into().map_or(0, |w| u64::from(u32::from_be_bytes(w)));
    }
    let mut tail = [0u8; 4];
    for (t, b) in tail.iter_mut().zip(words.remainder()) {
        *t = *b;
    }
    sum + u64::from(u32::from_be_bytes(tail))
}

/// Folds `sum` to 16 bits, complements it and stores it at `at`; a zero result is sent as
/// 0xffff, which means the same to TCP and is the only valid form for UDP.
pub(super) fn put_csum(b: &mut [u8], at: usize, sum: u64) {
    let csum = !fold(sum);
    put16(b, at, if csum == 0 { 0xffff } else { csum });
}

/// `sum` folded to 16 bits (one's complement, not complemented).
pub(super) fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Stores `v` big-endian at `at`, if it fits.
pub(super) fn put16(b: &mut [u8], at: usize, v: u16) {
    if let Some(d) = b.get_mut(at..at + 2) {
        d.copy_from_slice(&v.to_be_bytes());
    }
}

/// The two bytes at `at`, if there.
pub(super) fn read2(b: &[u8], at: usize) -> Option<[u8; 2]> {
    b.get(at..at + 2)?.try_into().ok()
}

/// The four bytes at `at`, if there.
pub(super) fn read4(b: &[u8], at: usize) -> Option<[u8; 4]> {
    b.get(at..at + 4)?.try_into().ok()
}

#[cfg(test)]
#[path = "offload_tests.rs"]
pub(super) mod tests;
