//! A small synchronous rtnetlink client: look up a link, set MTU/up, add and remove
//! addresses and on-link routes.
//!
//! Requests are rare (startup, shutdown, a link check per second), so this blocks on the
//! kernel's answer and allocates freely; it never runs on the frame path.

use std::net::IpAddr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::error::{check_ifname, SysError, CAP_NET_ADMIN};
use crate::wire::MacAddr;

/// Receive buffer for one netlink datagram (the kernel sends at most a page-ish per part).
const RECV_BUF: usize = 64 * 1024;
/// Most answer datagrams we read for one request before giving up (a bound on a confused kernel).
const MAX_REPLIES: usize = 64;

/// What `link` reports about an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// The interface index.
    pub index: u32,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Carrier present and operational (IFF_LOWER_UP or IFF_RUNNING).
    pub running: bool,
    /// The MTU.
    pub mtu: u32,
    /// The 6-byte hardware address, if the link has one (a TUN has none).
    pub mac: Option<MacAddr>,
}

/// A synchronous rtnetlink socket.
pub struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens and connects an rtnetlink socket (needs no privilege; changes need CAP_NET_ADMIN).
    pub fn open() -> Result<Netlink, SysError> {
        let io = |source| SysError::Io {
            what: "opening an rtnetlink socket".into(),
            source,
        };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(io)?;
        socket.bind_auto().map_err(io)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(io)?;
        Ok(Netlink {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Looks up an interface by name; `Ok(None)` when there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<LinkInfo>, SysError> {
        check_ifname(name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        let op = format!("look up interface {name}");
        match self.request(RouteNetlinkMessage::GetLink(msg), 0, &op) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_info(&l)),
                _ => None,
            })),
            Err(SysError::Netlink { code, .. }) if code == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the MTU of interface `index`.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), SysError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        let op = format!("set mtu {mtu} on ifindex {index}");
        self.request(RouteNetlinkMessage::SetLink(msg), 0, &op)
            .map(drop)
    }

    /// Brings interface `index` administratively up.
    pub fn set_up(&mut self, index: u32) -> Result<(), SysError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        let op = format!("set ifindex {index} up");
        self.request(RouteNetlinkMessage::SetLink(msg), 0, &op)
            .map(drop)
    }

    /// Adds `addr/prefix_len` to interface `index`; IPv6 addresses skip duplicate address
    /// detection (IFA_F_NODAD) so they are usable at once. Already present is success.
    pub fn add_address(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), SysError> {
        let msg = address_message(index, addr, prefix_len);
        let op = format!("add address {addr}/{prefix_len} on ifindex {index}");
        let flags = NLM_F_CREATE | NLM_F_EXCL;
        ignore(
            self.request(RouteNetlinkMessage::NewAddress(msg), flags, &op),
            &[libc::EEXIST],
        )
    }

    /// Removes `addr/prefix_len` from interface `index`. Already absent is success.
    pub fn del_address(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), SysError> {
        let msg = address_message(index, addr, prefix_len);
        let op = format!("delete address {addr}/{prefix_len} on ifindex {index}");
        ignore(
            self.request(RouteNetlinkMessage::DelAddress(msg), 0, &op),
            &[libc::ENOENT, libc::ESRCH, libc::EADDRNOTAVAIL, libc::ENODEV],
        )
    }

    /// Adds an on-link route `dst/prefix_len` via interface `index` (no gateway) to the main
    /// table. Already present is success.
    pub fn add_route(&mut self, index: u32, dst: IpAddr, prefix_len: u8) -> Result<(), SysError> {
        let msg = route_message(index, dst, prefix_len);
        let op = format!("add route {dst}/{prefix_len} dev ifindex {index}");
        let flags = NLM_F_CREATE | NLM_F_EXCL;
        ignore(
            self.request(RouteNetlinkMessage::NewRoute(msg), flags, &op),
            &[libc::EEXIST],
        )
    }

    /// Removes the on-link route `dst/prefix_len` via interface `index`. Already absent is success.
    pub fn del_route(&mut self, index: u32, dst: IpAddr, prefix_len: u8) -> Result<(), SysError> {
        let msg = route_message(index, dst, prefix_len);
        let op = format!("delete route {dst}/{prefix_len} dev ifindex {index}");
        ignore(
            self.request(RouteNetlinkMessage::DelRoute(msg), 0, &op),
            &[libc::ENOENT, libc::ESRCH, libc::EADDRNOTAVAIL, libc::ENODEV],
        )
    }

    /// Sends one request with NLM_F_REQUEST | NLM_F_ACK | `flags` and collects the answers
    /// up to the ACK; a kernel error becomes [`SysError::from_netlink`] naming `op`.
    pub(super) fn request(
        &mut self,
        inner: RouteNetlinkMessage,
        flags: u16,
        op: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, SysError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        let io = |source| SysError::from_io(source, format!("netlink: {op}"), CAP_NET_ADMIN);
        self.socket.send(&out, 0).map_err(io)?;

        let mut replies = Vec::new();
        for _ in 0..MAX_REPLIES {
            self.buf.clear();
            self.socket.recv(&mut self.buf, 0).map_err(io)?;
            if self.parse_datagram(seq, op, &mut replies)? {
                return Ok(replies);
            }
        }
        Err(SysError::Io {
            what: format!("netlink: {op}"),
            source: std::io::Error::other("no acknowledgement from the kernel"),
        })
    }

    /// Parses one received datagram; true once the request's ACK (or DONE) was seen.
    fn parse_datagram(
        &self,
        seq: u32,
        op: &str,
        replies: &mut Vec<RouteNetlinkMessage>,
    ) -> Result<bool, SysError> {
        let mut rest: &[u8] = &self.buf;
        while !rest.is_empty() {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest).map_err(|e| {
                SysError::Io {
                    what: format!("netlink: {op}: parsing the kernel's answer"),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
                }
            })?;
            let len = msg.header.length as usize;
            // nlmsg_len counts the header; messages are 4-byte aligned in the datagram.
            let step = (len + 3) & !3;
            rest = rest.get(step.max(1)..).unwrap_or(&[]);
            if msg.header.sequence_number != seq {
                continue; // a stale answer to an earlier request
            }
            match msg.payload {
                NetlinkPayload::Error(err) => {
                    return match err.code {
                        None => Ok(true),
                        Some(code) => Err(SysError::from_netlink(-code.get(), op)),
                    };
                }
                NetlinkPayload::Done(_) => return Ok(true),
                NetlinkPayload::InnerMessage(m) => replies.push(m),
                _ => {}
            }
        }
        Ok(false)
    }
}

/// Treats the listed errnos of `result` as success (idempotent add/delete).
fn ignore(result: Result<Vec<RouteNetlinkMessage>, SysError>, ok: &[i32]) -> Result<(), SysError> {
    match result {
        Ok(_) => Ok(()),
        Err(SysError::Netlink { code, .. }) if ok.contains(&code) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Our view of a kernel link message.
fn link_info(msg: &LinkMessage) -> LinkInfo {
    let flags = msg.header.flags;
    let mut info = LinkInfo {
        index: msg.header.index,
        up: flags.contains(LinkFlags::Up),
        running: flags.intersects(LinkFlags::LowerUp | LinkFlags::Running),
        mtu: 0,
        mac: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::Mtu(mtu) => info.mtu = *mtu,
            LinkAttribute::Address(bytes) => {
                info.mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(MacAddr);
            }
            _ => {}
        }
    }
    info
}

/// The family byte for an address.
fn family(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// An RTM_NEWADDR/RTM_DELADDR body for `addr/prefix_len` on `index`.
fn address_message(index: u32, addr: IpAddr, prefix_len: u8) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = family(addr);
    msg.header.prefix_len = prefix_len;
    msg.header.index = index;
    msg.header.scope = AddressScope::Universe;
    msg.attributes.push(AddressAttribute::Local(addr));
    msg.attributes.push(AddressAttribute::Address(addr));
    if addr.is_ipv6() {
        msg.header.flags = AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    msg
}

/// An RTM_NEWROUTE/RTM_DELROUTE body for the on-link route `dst/prefix_len` via `index`.
fn route_message(index: u32, dst: IpAddr, prefix_len: u8) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family(dst);
    msg.header.destination_prefix_length = prefix_len;
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Static;
    // IPv4 on-link routes are link scope (what `ip route add X dev Y` does); the kernel
    // insists on universe scope for IPv6.
    msg.header.scope = match dst {
        IpAddr::V4(_) => RouteScope::Link,
        IpAddr::V6(_) => RouteScope::Universe,
    };
    msg.header.kind = RouteType::Unicast;
    let dst = match dst {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    };
    msg.attributes.push(RouteAttribute::Destination(dst));
    msg.attributes.push(RouteAttribute::Oif(index));
    msg
}

/// Writes 0 to `/proc/sys/net/ipv6/conf/<ifname>/{accept_ra,autoconf,router_solicitations}`
/// where present, so the kernel does not send router solicitations on the TUN or configure
/// addresses from advertisements. Returns how many of the three files were written; an
/// error names the first one that could not be (callers log it and go on).
pub fn disable_ipv6_autoconf(ifname: &str) -> Result<usize, SysError> {
    check_ifname(ifname)?;
    let mut written = 0;
    let mut first_err = None;
    for knob in ["accept_ra", "autoconf", "router_solicitations"] {
        let path = format!("/proc/sys/net/ipv6/conf/{ifname}/{knob}");
        match std::fs::write(&path, b"0\n") {
            Ok(()) => written += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                first_err.get_or_insert(SysError::Io {
                    what: format!("writing 0 to {path}"),
                    source,
                });
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(written),
    }
}
