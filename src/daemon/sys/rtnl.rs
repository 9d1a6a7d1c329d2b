//! The few rtnetlink messages the daemon sends, encoded and parsed by hand (rtnetlink(7)):
//! `netlink-packet-route` did the same job but was ~40 % of the router binary, over the 2 MB
//! budget (docs/dependencies.md). Tests check these bytes against that crate's encoding.

use std::net::IpAddr;

use crate::wire::MacAddr;

/// Length of `struct nlmsghdr`.
pub const NLMSG_HDR_LEN: usize = 16;
/// `struct ifinfomsg` length.
const IFINFO_LEN: usize = 16;
/// `struct ifaddrmsg` length.
const IFADDR_LEN: usize = 8;
/// `struct rtmsg` length (8 bytes of fields, then `rtm_flags` u32).
const RTMSG_LEN: usize = 12;

/// IFA_F_NODAD: the address is usable at once, without duplicate address detection.
pub const IFA_F_NODAD: u8 = 0x02;
const IFA_FLAGS: u16 = 8;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One request being built: header, fixed body, attributes.
#[derive(Debug, Clone)]
pub struct RequestBuf {
    bytes: Vec<u8>,
}

impl RequestBuf {
    /// A message of type `kind` with `flags` and sequence number `seq`, then `body`.
    pub fn new(kind: u16, flags: u16, seq: u32, body: &[u8]) -> RequestBuf {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&seq.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        bytes.extend_from_slice(body);
        bytes.resize(align4(bytes.len()), 0);
        RequestBuf { bytes }
    }

    /// Append attribute `kind` with `value` (padded to 4 bytes).
    pub fn attr(mut self, kind: u16, value: &[u8]) -> RequestBuf {
        let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
        self.bytes.extend_from_slice(&len.to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(value);
        self.bytes.resize(align4(self.bytes.len()), 0);
        self
    }

    /// The finished message.
    pub fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        if let Some(field) = self.bytes.get_mut(0..4) {
            field.copy_from_slice(&len.to_ne_bytes());
        }
        self.bytes
    }
}

/// `struct ifinfomsg` for interface `index` with `flags` changed under `change`.
pub fn ifinfo(index: u32, flags: u32, change: u32) -> [u8; IFINFO_LEN] {
    let mut b = [0u8; IFINFO_LEN];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

fn family(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

fn addr_bytes(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// An RTM_NEWADDR / RTM_DELADDR request for `addr/prefix_len` on `index` (IPv6: NODAD).
pub fn address(
    kind: u16,
    flags: u16,
    seq: u32,
    index: u32,
    addr: IpAddr,
    prefix_len: u8,
) -> Vec<u8> {
    let nodad = if addr.is_ipv6() { IFA_F_NODAD } else { 0 };
    let mut body = [0u8; IFADDR_LEN];
    body[0] = family(addr);
    body[1] = prefix_len;
    body[2] = nodad;
    body[3] = RT_SCOPE_UNIVERSE;
    body[4..8].copy_from_slice(&index.to_ne_bytes());
    let bytes = addr_bytes(addr);
    let mut req = RequestBuf::new(kind, flags, seq, &body)
        .attr(libc::IFA_LOCAL, &bytes)
        .attr(libc::IFA_ADDRESS, &bytes);
    if nodad != 0 {
        req = req.attr(IFA_FLAGS, &u32::from(nodad).to_ne_bytes());
    }
    req.finish()
}

/// An RTM_NEWROUTE / RTM_DELROUTE request for the on-link route `dst/prefix_len` via `index`
/// in the main table (IPv4 link scope as `ip route add X dev Y` does; IPv6 needs universe).
pub fn route(kind: u16, flags: u16, seq: u32, index: u32, dst: IpAddr, prefix_len: u8) -> Vec<u8> {
    let scope = if dst.is_ipv4() {
        RT_SCOPE_LINK
    } else {
        RT_SCOPE_UNIVERSE
    };
    let mut body = [0u8; RTMSG_LEN];
    body[..8].copy_from_slice(&[
        family(dst),
        prefix_len,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_STATIC,
        scope,
        RTN_UNICAST,
    ]);
    RequestBuf::new(kind, flags, seq, &body)
        .attr(libc::RTA_DST, &addr_bytes(dst))
        .attr(libc::RTA_OIF, &index.to_ne_bytes())
        .finish()
}

/// One message of a kernel answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer<'a> {
    /// nlmsg_type.
    pub kind: u16,
    /// nlmsg_seq.
    pub seq: u32,
    /// Everything after the header.
    pub payload: &'a [u8],
}

/// The messages of one datagram; stops at the first one that does not fit.
pub fn answers(datagram: &[u8]) -> impl Iterator<Item = Answer<'_>> + '_ {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        let len = read_u32(rest, 0)? as usize;
        let kind = read_u16(rest, 4)?;
        let seq = read_u32(rest, 8)?;
        let payload = rest.get(NLMSG_HDR_LEN..len)?;
        rest = rest.get(align4(len).max(NLMSG_HDR_LEN)..).unwrap_or(&[]);
        Some(Answer { kind, seq, payload })
    })
}

/// The errno of an NLMSG_ERROR payload (0 = acknowledgement).
pub fn error_code(payload: &[u8]) -> Option<i32> {
    payload
        .get(0..4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
        .map(|e| -e)
}

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_ne_bytes)
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
}

/// Attributes `(kind, value)` after a fixed body of `skip` bytes.
fn attrs(payload: &[u8], skip: usize) -> impl Iterator<Item = (u16, &[u8])> + '_ {
    let mut rest = payload.get(skip..).unwrap_or(&[]);
    std::iter::from_fn(move || {
        let len = usize::from(read_u16(rest, 0)?);
        let kind = read_u16(rest, 2)? & 0x3fff; // strip NLA_F_NESTED / NLA_F_NET_BYTEORDER
        let value = rest.get(4..len)?;
        rest = rest.get(align4(len).max(4)..).unwrap_or(&[]);
        Some((kind, value))
    })
}

/// What an RTM_NEWLINK answer says: (index, flags, mtu, mac).
pub fn parse_link(payload: &[u8]) -> Option<(u32, u32, u32, Option<MacAddr>)> {
    let index = read_u32(payload, 4)?;
    let flags = read_u32(payload, 8)?;
    let mut mtu = 0;
    let mut mac = None;
    for (kind, value) in attrs(payload, IFINFO_LEN) {
        match kind {
            libc::IFLA_MTU => mtu = read_u32(value, 0).unwrap_or(0),
            libc::IFLA_ADDRESS => mac = <[u8; 6]>::try_from(value).ok().map(MacAddr),
            _ => {}
        }
    }
    Some((index, flags, mtu, mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_getlink_request_has_the_documented_layout() {
        let msg = RequestBuf::new(libc::RTM_GETLINK, 5, 7, &ifinfo(0, 0, 0))
            .attr(libc::IFLA_IFNAME, b"wlan0\0")
            .finish();
        assert_eq!(msg.len(), 16 + 16 + 12);
        assert_eq!(read_u32(&msg, 0), Some(44));
        assert_eq!(read_u16(&msg, 4), Some(libc::RTM_GETLINK));
        assert_eq!(read_u32(&msg, 8), Some(7));
        assert_eq!(
            &msg[32..44],
            &[10, 0, 3, 0, b'w', b'l', b'a', b'n', b'0', 0, 0, 0]
        );
    }

    #[test]
    fn answers_and_attributes_survive_truncation() {
        let mut link = RequestBuf::new(libc::RTM_NEWLINK, 0, 3, &ifinfo(9, 1, 0))
            .attr(libc::IFLA_MTU, &1451u32.to_ne_bytes())
            .attr(libc::IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1])
            .finish();
        let ack = RequestBuf::new(libc::NLMSG_ERROR as u16, 0, 3, &0i32.to_ne_bytes()).finish();
        link.extend_from_slice(&ack);
        let all: Vec<Answer> = answers(&link).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(
            parse_link(all[0].payload),
            Some((9, 1, 1451, Some(MacAddr([2, 0, 0, 0, 0, 1]))))
        );
        assert_eq!(error_code(all[1].payload), Some(0));
        for cut in 0..link.len() {
            for a in answers(&link[..cut]) {
                let _ = parse_link(a.payload);
            }
        }
        assert_eq!(answers(&link[..20]).count(), 0);
    }

    #[test]
    fn errors_are_positive_errnos() {
        assert_eq!(
            error_code(&(-libc::ENODEV).to_ne_bytes()),
            Some(libc::ENODEV)
        );
        assert_eq!(error_code(&[1, 2]), None);
    }
}
