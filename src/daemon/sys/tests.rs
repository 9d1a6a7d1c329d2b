//! Tests against the real kernel, each in a private network namespace of its own thread
//! (see [`private_netns`]), so nothing they create outlives them, even when they fail.

use std::io;
use std::net::{IpAddr, Ipv6Addr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::rtnl::{self, RequestBuf};
use super::*;
use crate::daemon::offload::VNET_HDR_LEN;
use crate::wire::MacAddr;

/// Moves this test's thread into a new, empty network namespace.
///
/// Network namespaces are per thread and cargo runs every test on its own thread, so the
/// namespace (with every interface, address and route the test made) vanishes when the
/// test ends, pass or fail; `ip` commands spawned from this thread inherit it. Returns
/// false when not root (the test then skips), unless `VEIL_NS_TESTS=require`, which makes
/// a skip a failure so CI cannot skip silently.
fn private_netns() -> bool {
    let required = std::env::var("VEIL_NS_TESTS").is_ok_and(|v| v == "require");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    // SAFETY: unshare only changes this thread's namespace membership.
    let ok = root && unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0;
    if !ok {
        assert!(
            !required,
            "VEIL_NS_TESTS=require but cannot create a network namespace (root?)"
        );
        eprintln!("skipped: needs root");
    }
    ok
}

// The tests set up interfaces with netlink rather than by running `ip`: a fork from a test
// thread copies every open fd of the process (other tests' flock'ed state directories, TUN
// fds) into the child until its exec, which makes those tests flaky.

/// Runs one rtnetlink request, encoded by `netlink-packet-route` (a dev-dependency: an
/// independent encoder), through our `Netlink::request`, and decodes the answers with it.
fn rtnl(msg: RouteNetlinkMessage, flags: u16) -> Vec<RouteNetlinkMessage> {
    let seq = 4242;
    let out = encode(msg, NLM_F_REQUEST | NLM_F_ACK | flags, seq);
    let replies = Netlink::open()
        .unwrap()
        .request(&out, seq, "test request")
        .unwrap();
    replies
        .into_iter()
        .map(|(kind, payload)| {
            let mut bytes = RequestBuf::new(kind, 0, seq, &payload).finish();
            bytes.truncate(16 + payload.len());
            NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes)
                .unwrap()
                .payload
        })
        .filter_map(|p| match p {
            NetlinkPayload::InnerMessage(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// `msg` as netlink-packet-route serializes it.
fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    packet.finalize();
    let mut out = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut out);
    out
}

#[test]
fn our_address_and_route_requests_match_netlink_packet_route_byte_for_byte() {
    for (addr, len) in [
        ("fd00::1".parse::<IpAddr>().unwrap(), 48u8),
        ("10.77.0.5".parse().unwrap(), 24),
    ] {
        let mut msg = AddressMessage::default();
        msg.header.family = if addr.is_ipv6() {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        msg.header.prefix_len = len;
        msg.header.index = 7;
        msg.header.scope = AddressScope::Universe;
        msg.attributes.push(AddressAttribute::Local(addr));
        msg.attributes.push(AddressAttribute::Address(addr));
        if addr.is_ipv6() {
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let theirs = encode(RouteNetlinkMessage::NewAddress(msg), flags, 9);
        assert_eq!(
            rtnl::address(libc::RTM_NEWADDR, flags, 9, 7, addr, len),
            theirs,
            "{addr}"
        );

        let mut route = RouteMessage::default();
        route.header.address_family = msg_family(addr);
        route.header.destination_prefix_length = len;
        route.header.table = RouteHeader::RT_TABLE_MAIN;
        route.header.protocol = RouteProtocol::Static;
        route.header.scope = if addr.is_ipv4() {
            RouteScope::Link
        } else {
            RouteScope::Universe
        };
        route.header.kind = RouteType::Unicast;
        let dst = match addr {
            IpAddr::V4(a) => RouteAddress::Inet(a),
            IpAddr::V6(a) => RouteAddress::Inet6(a),
        };
        route.attributes.push(RouteAttribute::Destination(dst));
        route.attributes.push(RouteAttribute::Oif(7));
        let theirs = encode(RouteNetlinkMessage::NewRoute(route), flags, 9);
        assert_eq!(
            rtnl::route(libc::RTM_NEWROUTE, flags, 9, 7, addr, len),
            theirs,
            "{addr}"
        );
    }
}

fn msg_family(addr: IpAddr) -> AddressFamily {
    if addr.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

/// The index of interface `name`.
fn index(name: &str) -> u32 {
    Netlink::open().unwrap().link(name).unwrap().unwrap().index
}

/// `ip link add NAME type veth peer name PEER`.
fn add_veth(name: &str, peer: &str) {
    let mut peer_msg = LinkMessage::default();
    peer_msg.attributes.push(LinkAttribute::IfName(peer.into()));
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.into()));
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        NlLinkInfo::Kind(InfoKind::Veth),
        NlLinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
    ]));
    rtnl(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL);
}

/// `ip link set NAME up`.
fn set_up(name: &str) {
    Netlink::open().unwrap().set_up(index(name)).unwrap();
}

/// `ip link set NAME promisc on`.
fn set_promisc(name: &str) {
    let mut msg = LinkMessage::default();
    msg.header.index = index(name);
    msg.header.flags = LinkFlags::Promisc;
    msg.header.change_mask = LinkFlags::Promisc;
    rtnl(RouteNetlinkMessage::SetLink(msg), 0);
}

/// `ip -6 addr show dev INDEX`: (address, prefix length, flags).
fn addresses(index: u32) -> Vec<(IpAddr, u8, AddressFlags)> {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet6;
    let all = rtnl(RouteNetlinkMessage::GetAddress(msg), NLM_F_DUMP);
    all.into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                let attrs = &a.attributes;
                let addr = attrs.iter().find_map(|x| match x {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })?;
                let flags = attrs.iter().find_map(|x| match x {
                    AddressAttribute::Flags(f) => Some(*f),
                    _ => None,
                });
                Some((
                    addr,
                    a.header.prefix_len,
                    flags.unwrap_or(AddressFlags::empty()),
                ))
            }
            _ => None,
        })
        .collect()
}

/// `ip -6 route show dev INDEX`: (destination, prefix length).
fn routes(index: u32) -> Vec<(IpAddr, u8)> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Inet6;
    let all = rtnl(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP);
    all.into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewRoute(r)
                if r.attributes.contains(&RouteAttribute::Oif(index)) =>
            {
                let dst = r.attributes.iter().find_map(|x| match x {
                    RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some(IpAddr::V6(*a)),
                    _ => None,
                })?;
                Some((dst, r.header.destination_prefix_length))
            }
            _ => None,
        })
        .collect()
}

/// Waits (poll(2), no sleep) up to one second for `fd` to become readable.
fn wait_readable(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, 1000) == 1 }
}

/// A veth pair va <-> vb, both up, with a packet socket on each.
fn veth_pair() -> (PacketSocket, PacketSocket) {
    add_veth("va", "vb");
    set_up("va");
    set_up("vb");
    (
        PacketSocket::open("va").unwrap(),
        PacketSocket::open("vb").unwrap(),
    )
}

/// Receives one frame, waiting for it.
fn recv_one(sock: &PacketSocket, buf: &mut [u8]) -> Option<(usize, MacAddr)> {
    assert!(
        wait_readable(sock.as_raw_fd()),
        "nothing arrived on {}",
        sock.name()
    );
    sock.recv(buf).unwrap()
}

#[test]
fn veth_frames_go_both_ways_with_the_right_source_mac() {
    if !private_netns() {
        return;
    }
    let (a, b) = veth_pair();
    let link = Netlink::open().unwrap().link("va").unwrap().unwrap();
    assert_eq!(Some(a.mac()), link.mac);
    assert_eq!(a.ifindex(), link.index);
    assert_eq!(a.mtu(), 1500);
    assert_ne!(a.mac(), b.mac());
    // As root SO_RCVBUFFORCE applies whatever net.core.rmem_max says (the kernel doubles it).
    assert!(
        a.recv_buffer().unwrap() >= RECV_BUFFER,
        "{:?}",
        a.recv_buffer()
    );

    let mut buf = [0u8; 2000];
    a.send(b.mac(), b"hello from a").unwrap();
    assert_eq!(recv_one(&b, &mut buf), Some((12, a.mac())));
    assert_eq!(&buf[..12], b"hello from a");

    let long = [0x5a; FRAME_CAP];
    b.send(MacAddr::BROADCAST, &long).unwrap();
    assert_eq!(recv_one(&a, &mut buf), Some((FRAME_CAP, b.mac())));
    assert_eq!(&buf[..FRAME_CAP], &long[..]);

    // Neither sender sees its own frame (PACKET_OUTGOING), and nothing else is queued.
    for s in [&a, &b] {
        let e = s.recv(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{}", s.name());
    }
}

#[test]
fn frames_of_another_ethertype_are_not_received() {
    if !private_netns() {
        return;
    }
    let (a, b) = veth_pair();
    let proto = socket2::Protocol::from(i32::from(0x88B6u16.to_be()));
    let other =
        socket2::Socket::new(socket2::Domain::PACKET, socket2::Type::DGRAM, Some(proto)).unwrap();
    let mut addr: libc::sockaddr_ll = unsafe_zeroed_ll();
    addr.sll_family = libc::AF_PACKET as _;
    addr.sll_protocol = 0x88B6u16.to_be();
    addr.sll_ifindex = a.ifindex() as _;
    addr.sll_halen = 6;
    addr.sll_addr[..6].copy_from_slice(&b.mac().0);
    // SAFETY: `addr` is an initialised sockaddr_ll and the payload a live slice.
    let rc = unsafe {
        libc::sendto(
            other.as_raw_fd(),
            b"not ours".as_ptr().cast(),
            8,
            0,
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as _,
        )
    };
    assert_eq!(rc, 8);
    a.send(b.mac(), b"ours").unwrap();
    let mut buf = [0u8; 64];
    // The first frame b sees is the second one sent: the 0x88B6 frame never arrived.
    assert_eq!(recv_one(&b, &mut buf), Some((4, a.mac())));
    assert_eq!(&buf[..4], b"ours");
    assert_eq!(
        b.recv(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
}

/// An all-zero sockaddr_ll.
fn unsafe_zeroed_ll() -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain integers; all-zero is valid.
    unsafe { std::mem::zeroed() }
}

/// Queue a copy of `payload` for `dst` in `batch`; false if nothing was queued.
fn push(batch: &mut SendBatch, dst: MacAddr, payload: &[u8]) -> bool {
    let before = batch.len();
    batch.fill(|buf| {
        buf.get_mut(..payload.len())?.copy_from_slice(payload);
        Some((dst, payload.len()))
    }) && batch.len() > before
}

#[test]
fn batches_send_and_receive_in_order() {
    if !private_netns() {
        return;
    }
    let (a, b) = veth_pair();
    let mut out = SendBatch::new();
    for i in 0..BATCH {
        let payload = vec![i as u8; 1 + i * 40];
        assert!(push(&mut out, b.mac(), &payload), "push {i}");
    }
    assert!(
        !push(&mut out, b.mac(), b"one too many"),
        "a full batch refuses"
    );
    assert!(!push(&mut out, b.mac(), &[0; FRAME_CAP + 1]) || out.len() < BATCH);
    assert_eq!(a.send_batch(&mut out).unwrap(), BATCH);
    assert!(out.is_empty());

    let mut inb = RecvBatch::new();
    let mut got = Vec::new();
    while got.len() < BATCH {
        assert!(wait_readable(b.as_raw_fd()), "only {} arrived", got.len());
        b.recv_batch(&mut inb).unwrap();
        got.extend(inb.iter_mut().map(|(_, p, src)| (p.to_vec(), src)));
    }
    assert_eq!(inb.truncated(), 0);
    for (i, (payload, src)) in got.iter().enumerate() {
        assert_eq!(*src, a.mac());
        assert_eq!(payload, &vec![i as u8; 1 + i * 40]);
    }
    // The sender's batch receive sees none of its own frames.
    let e = a.recv_batch(&mut inb).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn frames_rewritten_in_the_receive_batch_are_sent_from_there() {
    if !private_netns() {
        return;
    }
    let (a, b) = veth_pair();
    for i in 0..4u8 {
        a.send(b.mac(), &[i; 100]).unwrap();
    }
    let mut inb = RecvBatch::new();
    let mut slots = Vec::new();
    while slots.len() < 4 {
        assert!(wait_readable(b.as_raw_fd()), "only {} arrived", slots.len());
        b.recv_batch(&mut inb).unwrap();
        for (slot, frame, _) in inb.iter_mut() {
            // Rewrite in place, as the node does when it relays.
            frame[0] = frame[0].wrapping_add(10);
            slots.push(slot);
        }
    }
    // Every other frame goes back, shortened; an empty iterator sends nothing.
    let back = || {
        slots
            .iter()
            .step_by(2)
            .map(|&s| (a.mac(), inb.frame(s, 50).unwrap()))
    };
    assert_eq!(b.send_frames(back()).unwrap(), 2);
    assert_eq!(b.send_frames(std::iter::empty()).unwrap(), 0);
    let mut buf = [0u8; 128];
    for first in [10u8, 12] {
        assert!(wait_readable(a.as_raw_fd()));
        assert_eq!(recv_one(&a, &mut buf), Some((50, b.mac())));
        assert_eq!(buf[0], first);
        assert!(buf[1..50].iter().all(|&x| x == first - 10));
    }
    assert!(inb.frame(0, FRAME_CAP + 1).is_none());
}

#[test]
fn a_frame_longer_than_the_buffer_is_skipped_not_cut() {
    if !private_netns() {
        return;
    }
    let (a, b) = veth_pair();
    a.send(b.mac(), &[7; 100]).unwrap();
    let mut small = [0u8; 10];
    assert_eq!(recv_one(&b, &mut small), None);
    assert_eq!(
        b.recv(&mut small).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
}

#[test]
fn send_batch_keeps_the_unsent_after_a_partial_send() {
    // Pure bookkeeping: no socket needed.
    let mut batch = SendBatch::new();
    for i in 0..BATCH {
        assert!(push(&mut batch, MacAddr([i as u8; 6]), &[i as u8; 3]));
    }
    batch.consume(5);
    assert_eq!(batch.len(), BATCH - 5);
    // Room appears at the back by compacting the 27 still queued to the front.
    assert!(push(&mut batch, MacAddr([0xee; 6]), b"new"));
    assert_eq!(batch.len(), BATCH - 4);
    let mut lens = Vec::new();
    let mut firsts = Vec::new();
    for (dst, p) in batch.queued() {
        firsts.push(dst.0[0]);
        lens.push(p.to_vec());
    }
    assert_eq!(firsts.first(), Some(&5));
    assert_eq!(firsts.last(), Some(&0xee));
    assert_eq!(lens.last().map(Vec::as_slice), Some(&b"new"[..]));
    batch.clear();
    assert!(batch.is_empty());
}

#[test]
fn only_frames_for_this_host_are_wanted() {
    use super::packet::{sockaddr_ll, source_mac, wanted};
    let mut addr = sockaddr_ll(1, MacAddr([1, 2, 3, 4, 5, 6]));
    for (pkttype, want) in [
        (libc::PACKET_HOST, true),
        (libc::PACKET_BROADCAST, true),
        (libc::PACKET_MULTICAST, true),
        (libc::PACKET_OTHERHOST, false),
        (libc::PACKET_OUTGOING, false),
    ] {
        addr.sll_pkttype = pkttype;
        assert_eq!(wanted(&addr), want, "pkttype {pkttype}");
    }
    assert_eq!(source_mac(&addr), MacAddr([1, 2, 3, 4, 5, 6]));
    assert_eq!(addr.sll_protocol, 0x88B5u16.to_be());
}

#[test]
fn a_missing_interface_is_no_such_interface() {
    // Looking an interface up needs no privilege, so this runs as any user.
    let e = PacketSocket::open("veil-nosuch0").unwrap_err();
    assert!(
        matches!(e, SysError::NoSuchInterface { ref name } if name == "veil-nosuch0"),
        "{e}"
    );
    assert_eq!(e.exit_code(), 69);
    assert!(Netlink::open()
        .unwrap()
        .link("veil-nosuch0")
        .unwrap()
        .is_none());
}

#[test]
fn a_down_interface_is_interface_down() {
    if !private_netns() {
        return;
    }
    add_veth("vdown", "vdown2");
    let e = PacketSocket::open("vdown").unwrap_err();
    assert!(
        matches!(e, SysError::InterfaceDown { ref name } if name == "vdown"),
        "{e}"
    );
    assert!(e.to_string().contains("ip link set vdown up"));
    // The loopback of a fresh namespace is down too, and also has an (all-zero) MAC.
    assert!(matches!(
        PacketSocket::open("lo"),
        Err(SysError::InterfaceDown { .. })
    ));
}

#[test]
fn tun_with_mtu_address_and_route_and_their_removal() {
    if !private_netns() {
        return;
    }
    let tun = Tun::open("veiltun0", false).unwrap();
    assert_eq!(tun.name(), "veiltun0");
    assert!(!tun.offload() && tun.offload_refused().is_none());
    let mut nl = Netlink::open().unwrap();
    let link = nl.link("veiltun0").unwrap().unwrap();
    assert!(!link.up);
    assert_eq!(link.mac, None, "a TUN has no MAC");
    assert!(matches!(
        PacketSocket::open("veiltun0"),
        Err(SysError::InterfaceDown { .. })
    ));

    let autoconf = disable_ipv6_autoconf("veiltun0");
    assert!(matches!(autoconf, Ok(3)), "{autoconf:?}");
    nl.set_mtu(link.index, 1400).unwrap();
    nl.set_up(link.index).unwrap();
    let addr: IpAddr = "fd00:5e11::1".parse().unwrap();
    let net: IpAddr = "fd00:abcd::".parse().unwrap();
    for _ in 0..2 {
        nl.add_address(link.index, addr, 64).unwrap(); // the second time is EEXIST: fine
        nl.add_route(link.index, net, 32).unwrap();
    }
    let now = nl.link("veiltun0").unwrap().unwrap();
    assert!(now.up);
    assert_eq!(now.mtu, 1400);
    let ours: Vec<_> = addresses(link.index)
        .into_iter()
        .filter(|(a, _, _)| *a == addr)
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    let (_, prefix_len, flags) = ours[0];
    assert_eq!(prefix_len, 64);
    assert!(flags.contains(AddressFlags::Nodad), "{flags:?}");
    assert!(
        !flags.contains(AddressFlags::Tentative),
        "NODAD: usable at once: {flags:?}"
    );
    assert!(routes(link.index).contains(&(net, 32)));

    read_the_kernels_packet(&tun, addr, "fd00:abcd::5".parse().unwrap());

    for round in 0..2 {
        nl.del_route(link.index, net, 32).unwrap(); // the second time is ESRCH: fine
        let deleted = nl.del_address(link.index, addr, 64); // EADDRNOTAVAIL: fine
        if round == 1 && qemu_passes_host_errnos() {
            // qemu-user copies the kernel's netlink error messages without translating the
            // errno inside, so a MIPS guest sees x86's EADDRNOTAVAIL (99; MIPS's is 126):
            // an emulator artifact, not ours (on a router the kernel speaks MIPS errnos).
            assert!(
                matches!(deleted, Ok(()) | Err(SysError::Netlink { code: 99, .. })),
                "{deleted:?}"
            );
        } else {
            deleted.unwrap();
        }
    }
    assert!(!addresses(link.index).iter().any(|(a, _, _)| *a == addr));
    assert!(!routes(link.index).contains(&(net, 32)));

    // Another test's fork (the crate's other tests may spawn processes) can hold a copy of
    // the fd until its exec, so wait for the kernel's link event rather than expect the
    // removal at once.
    let monitor = link_monitor();
    drop(tun);
    for _ in 0..8 {
        if nl.link("veiltun0").unwrap().is_none() {
            return;
        }
        let mut event = Vec::with_capacity(8192);
        assert!(
            wait_readable(monitor.as_raw_fd()),
            "no link event after close"
        );
        monitor.recv(&mut event, 0).unwrap();
    }
    panic!("non-persistent TUN still there after its fd was closed");
}

/// Whether this is a MIPS build under qemu-user (the cross scripts set VEIL_UNDER_QEMU),
/// where errnos inside netlink messages arrive with the host's numbering.
fn qemu_passes_host_errnos() -> bool {
    cfg!(target_arch = "mips") && std::env::var_os("VEIL_UNDER_QEMU").is_some()
}

/// An rtnetlink socket subscribed to link events (RTNLGRP_LINK).
fn link_monitor() -> netlink_sys::Socket {
    let mut s = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE).unwrap();
    s.bind_auto().unwrap();
    s.add_membership(libc::RTNLGRP_LINK).unwrap();
    s
}

/// Sends a UDP datagram to `dst`, routed into the TUN, and reads it from the TUN.
fn read_the_kernels_packet(tun: &Tun, src: IpAddr, dst: Ipv6Addr) {
    let udp = UdpSocket::bind((src, 0)).unwrap();
    udp.send_to(b"to the overlay", (dst, 9)).unwrap();
    let mut buf = [0u8; 1500];
    let skip = if tun.offload() { VNET_HDR_LEN } else { 0 };
    // Skip anything else the kernel sends on a fresh interface (MLD reports).
    for _ in 0..16 {
        assert!(
            wait_readable(tun.as_raw_fd()),
            "the kernel sent nothing into the TUN"
        );
        let n = tun.read(&mut buf).unwrap();
        let packet = &buf[skip..n];
        if n >= 40 && packet[0] >> 4 == 6 && packet[6] == 17 && packet[24..40] == dst.octets() {
            assert!(packet.ends_with(b"to the overlay"));
            return;
        }
    }
    panic!("no UDP packet to {dst} came out of the TUN");
}

#[test]
fn tun_offloads_on_refused_and_off() {
    if !private_netns() {
        return;
    }
    // A feature bit the kernel does not know makes TUNSETOFFLOAD fail with EINVAL, as an
    // old kernel refuses TSO: the device must come up plain.
    let cases = [
        ("veiltun2", Some(tun::OFFLOADS), true),
        ("veiltun3", Some(1 << 31), false),
        ("veiltun4", None, false),
    ];
    let mut nl = Netlink::open().unwrap();
    for (k, (name, offloads, on)) in cases.into_iter().enumerate() {
        let tun = Tun::open_with(name, offloads).unwrap();
        assert_eq!(tun.offload(), on, "{name}");
        let refused = tun.offload_refused().and_then(io::Error::raw_os_error);
        let want = (offloads.is_some() && !on).then_some(libc::EINVAL);
        assert_eq!(refused, want, "{name}");
        let index = nl.link(name).unwrap().unwrap().index;
        nl.set_up(index).unwrap();
        let addr: Ipv6Addr = format!("fd00:5e1{k}::1").parse().unwrap();
        let far: Ipv6Addr = format!("fd00:abc{k}::5").parse().unwrap();
        nl.add_address(index, IpAddr::V6(addr), 64).unwrap();
        nl.add_route(index, IpAddr::V6(far), 128).unwrap();
        read_the_kernels_packet(&tun, IpAddr::V6(addr), far);
        write_a_packet_to_the_kernel(&tun, far, addr);
    }
}

/// Writes a UDP datagram from `src` to `dst` (local) into the TUN and receives it.
fn write_a_packet_to_the_kernel(tun: &Tun, src: Ipv6Addr, dst: Ipv6Addr) {
    let udp = UdpSocket::bind((dst, 0)).unwrap();
    udp.set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let port = udp.local_addr().unwrap().port();
    let body = b"from the overlay";
    let len = 8 + body.len();
    let mut p = vec![0u8; 40 + len];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(len as u16).to_be_bytes());
    p[6] = 17;
    p[7] = 64;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p[40..42].copy_from_slice(&9u16.to_be_bytes());
    p[42..44].copy_from_slice(&port.to_be_bytes());
    p[44..46].copy_from_slice(&(len as u16).to_be_bytes());
    p[48..].copy_from_slice(body);
    let mut sum: u32 = 17 + len as u32;
    for w in p[8..40].chunks(2).chain(p[40..].chunks(2)) {
        sum += u32::from(w[0]) << 8 | w.get(1).map_or(0, |&b| u32::from(b));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[46..48].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    // Until the new address's local route is in place the kernel forwards the packet
    // (and, not a router, drops it): send again until it arrives.
    let mut buf = [0u8; 64];
    for _ in 0..50 {
        assert_eq!(tun.write(&p).unwrap(), p.len());
        if let Ok((n, from)) = udp.recv_from(&mut buf) {
            assert_eq!(&buf[..n], body);
            assert_eq!(from.ip(), IpAddr::V6(src));
            return;
        }
    }
    panic!(
        "{}: the packet written into the TUN did not arrive",
        tun.name()
    );
}

#[test]
fn netlink_errors_name_the_operation() {
    if !private_netns() {
        return;
    }
    let mut nl = Netlink::open().unwrap();
    let e = nl.set_mtu(9999, 1400).unwrap_err();
    assert!(
        matches!(
            e,
            SysError::Netlink {
                code: libc::ENODEV,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("set mtu 1400 on ifindex 9999"),
        "{e}"
    );
}

#[test]
fn frames_for_other_hosts_are_skipped_in_promiscuous_mode() {
    if !private_netns() {
        return;
    }
    let (a, b) = veth_pair();
    set_promisc("vb");
    let stranger = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    a.send(stranger, b"for someone else").unwrap();
    let mut buf = [0u8; 64];
    // The kernel hands the promiscuous socket the frame as PACKET_OTHERHOST: skipped.
    assert_eq!(recv_one(&b, &mut buf), None);

    a.send(stranger, b"again").unwrap();
    a.send(b.mac(), b"mine").unwrap();
    let mut inb = RecvBatch::new();
    let mut got = Vec::new();
    let mut consumed = 0;
    while consumed < 2 {
        assert!(wait_readable(b.as_raw_fd()));
        consumed += b.recv_batch(&mut inb).unwrap();
        got.extend(inb.iter_mut().map(|(_, p, src)| (p.to_vec(), src)));
    }
    assert_eq!(got, vec![(b"mine".to_vec(), a.mac())]);
}

/// Removes capability `cap` from this thread's effective set (capabilities are per thread,
/// so other tests keep theirs).
fn drop_effective_capability(cap: u32) {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522,
        pid: 0,
    }; // _LINUX_CAPABILITY_VERSION_3
    let mut data = [Data::default(); 2];
    // SAFETY: header and a 2-element data array are what capget/capset v3 read and write.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget");
    data[(cap / 32) as usize].effective &= !(1 << (cap % 32));
    // SAFETY: as above; pid 0 is this thread.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset");
}

#[test]
fn missing_capabilities_are_permission_errors_naming_them() {
    if !private_netns() {
        return;
    }
    add_veth("va", "vb");
    set_up("va");
    let index = index("va");
    drop_effective_capability(13); // CAP_NET_RAW
    let e = PacketSocket::open("va").unwrap_err();
    assert!(
        matches!(
            e,
            SysError::Permission {
                capability: "CAP_NET_RAW",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.exit_code(), 77);
    assert!(e
        .to_string()
        .starts_with("opening a raw packet socket on va needs CAP_NET_RAW"));

    drop_effective_capability(12); // CAP_NET_ADMIN
    let e = Netlink::open().unwrap().set_mtu(index, 1400).unwrap_err();
    assert!(
        matches!(
            e,
            SysError::Permission {
                capability: "CAP_NET_ADMIN",
                ..
            }
        ),
        "{e}"
    );
    let e = Tun::open("veiltun1", true).unwrap_err();
    assert!(
        matches!(
            e,
            SysError::Permission {
                capability: "CAP_NET_ADMIN",
                ..
            }
        ),
        "{e}"
    );
}
