//! A small synchronous rtnetlink client: look up a link, set MTU/up, add and remove
//! addresses and on-link routes.
//!
//! Requests are rare (startup, shutdown, a link check per second), so this blocks on the
//! kernel's answer, for at most [`REPLY_TIMEOUT`], and allocates freely; it never runs on
//! the frame path.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::error::{check_ifname, SysError, CAP_NET_ADMIN};
use super::rtnl::{self, RequestBuf};
use crate::wire::MacAddr;

const NLM_F_REQUEST: u16 = libc::NLM_F_REQUEST as u16;
const NLM_F_ACK: u16 = libc::NLM_F_ACK as u16;
const NLM_F_CREATE: u16 = libc::NLM_F_CREATE as u16;
const NLM_F_EXCL: u16 = libc::NLM_F_EXCL as u16;

/// Receive buffer for one netlink datagram (the kernel sends at most a page-ish per part).
const RECV_BUF: usize = 64 * 1024;
/// Most answer datagrams we read for one request before giving up (a bound on a confused kernel).
const MAX_REPLIES: usize = 64;
/// Longest wait for the kernel's answer to one request. The kernel answers in microseconds;
/// this bounds a lost answer, which would otherwise block the event loop for good.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

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

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Looks up an interface by name; `Ok(None)` when there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<LinkInfo>, SysError> {
        check_ifname(name)?;
        let mut ifname = name.as_bytes().to_vec();
        ifname.push(0);
        let seq = self.next_seq();
        let msg = RequestBuf::new(
            libc::RTM_GETLINK,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            &rtnl::ifinfo(0, 0, 0),
        )
        .attr(libc::IFLA_IFNAME, &ifname)
        .finish();
        let op = format!("look up interface {name}");
        match self.request(&msg, seq, &op) {
            Ok(replies) => Ok(replies
                .iter()
                .filter(|(kind, _)| *kind == libc::RTM_NEWLINK)
                .find_map(|(_, payload)| rtnl::parse_link(payload))
                .map(link_info)),
            Err(SysError::Netlink { code, .. }) if code == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the MTU of interface `index`.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), SysError> {
        let seq = self.next_seq();
        let msg = RequestBuf::new(
            libc::RTM_SETLINK,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            &rtnl::ifinfo(index, 0, 0),
        )
        .attr(libc::IFLA_MTU, &mtu.to_ne_bytes())
        .finish();
        let op = format!("set mtu {mtu} on ifindex {index}");
        self.request(&msg, seq, &op).map(drop)
    }

    /// Brings interface `index` administratively up.
    pub fn set_up(&mut self, index: u32) -> Result<(), SysError> {
        let up = libc::IFF_UP as u32;
        let seq = self.next_seq();
        let msg = RequestBuf::new(
            libc::RTM_SETLINK,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            &rtnl::ifinfo(index, up, up),
        )
        .finish();
        let op = format!("set ifindex {index} up");
        self.request(&msg, seq, &op).map(drop)
    }

    /// Adds `addr/prefix_len` to interface `index`; IPv6 addresses skip duplicate address
    /// detection (IFA_F_NODAD) so they are usable at once. Already present is success.
    pub fn add_address(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), SysError> {
        let seq = self.next_seq();
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let msg = rtnl::address(libc::RTM_NEWADDR, flags, seq, index, addr, prefix_len);
        let op = format!("add address {addr}/{prefix_len} on ifindex {index}");
        ignore(self.request(&msg, seq, &op), &[libc::EEXIST])
    }

    /// Removes `addr/prefix_len` from interface `index`. Already absent is success.
    pub fn del_address(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), SysError> {
        let seq = self.next_seq();
        let msg = rtnl::address(
            libc::RTM_DELADDR,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            index,
            addr,
            prefix_len,
        );
        let op = format!("delete address {addr}/{prefix_len} on ifindex {index}");
        ignore(self.request(&msg, seq, &op), &ALREADY_GONE)
    }

    /// Adds an on-link route `dst/prefix_len` via interface `index` (no gateway) to the main
    /// table. Already present is success.
    pub fn add_route(&mut self, index: u32, dst: IpAddr, prefix_len: u8) -> Result<(), SysError> {
        let seq = self.next_seq();
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let msg = rtnl::route(libc::RTM_NEWROUTE, flags, seq, index, dst, prefix_len);
        let op = format!("add route {dst}/{prefix_len} dev ifindex {index}");
        ignore(self.request(&msg, seq, &op), &[libc::EEXIST])
    }

    /// Removes the on-link route `dst/prefix_len` via interface `index`. Already absent is success.
    pub fn del_route(&mut self, index: u32, dst: IpAddr, prefix_len: u8) -> Result<(), SysError> {
        let seq = self.next_seq();
        let msg = rtnl::route(
            libc::RTM_DELROUTE,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            index,
            dst,
            prefix_len,
        );
        let op = format!("delete route {dst}/{prefix_len} dev ifindex {index}");
        ignore(self.request(&msg, seq, &op), &ALREADY_GONE)
    }

    /// Sends one request (built with sequence number `seq`) and collects the answers
    /// `(type, payload)` up to the ACK or DONE; a kernel error becomes
    /// [`SysError::from_netlink`] naming `op`, no ACK within [`REPLY_TIMEOUT`]
    /// [`SysError::NetlinkTimeout`].
    pub(super) fn request(
        &mut self,
        msg: &[u8],
        seq: u32,
        op: &str,
    ) -> Result<Vec<(u16, Vec<u8>)>, SysError> {
        let io = |source| SysError::from_io(source, format!("netlink: {op}"), CAP_NET_ADMIN);
        let timed_out = || SysError::NetlinkTimeout {
            op: op.to_string(),
            after: REPLY_TIMEOUT,
        };
        self.socket.send(msg, 0).map_err(io)?;
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut replies = Vec::new();
        let mut datagrams = 0;
        while datagrams < MAX_REPLIES {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out());
            }
            // Per datagram, so stale answers trickling in cannot stretch the total wait.
            socket2::SockRef::from(&self.socket)
                .set_read_timeout(Some(left))
                .map_err(io)?;
            self.buf.clear();
            match self.socket.recv(&mut self.buf, 0) {
                Ok(_) => datagrams += 1,
                // SO_RCVTIMEO makes a signal interrupt recv even under SA_RESTART.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(timed_out());
                }
                Err(e) => return Err(io(e)),
            }
            for answer in rtnl::answers(&self.buf) {
                if answer.seq != seq {
                    continue; // a stale answer to an earlier request
                }
                match answer.kind {
                    k if k == libc::NLMSG_ERROR as u16 => {
                        return match rtnl::error_code(answer.payload) {
                            Some(0) => Ok(replies),
                            Some(code) => Err(SysError::from_netlink(code, op)),
                            None => Err(SysError::Io {
                                what: format!("netlink: {op}"),
                                source: std::io::Error::other("truncated error message"),
                            }),
                        };
                    }
                    k if k == libc::NLMSG_DONE as u16 => return Ok(replies),
                    k => replies.push((k, answer.payload.to_vec())),
                }
            }
        }
        Err(SysError::Io {
            what: format!("netlink: {op}"),
            source: std::io::Error::other("no acknowledgement from the kernel"),
        })
    }
}

/// Errnos of a delete whose target is already gone (idempotent delete).
const ALREADY_GONE: [i32; 4] = [libc::ENOENT, libc::ESRCH, libc::EADDRNOTAVAIL, libc::ENODEV];

/// Treats the listed errnos of `result` as success (idempotent add/delete).
fn ignore<T>(result: Result<T, SysError>, ok: &[i32]) -> Result<(), SysError> {
    match result {
        Ok(_) => Ok(()),
        Err(SysError::Netlink { code, .. }) if ok.contains(&code) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Our view of a kernel link message.
fn link_info((index, flags, mtu, mac): (u32, u32, u32, Option<MacAddr>)) -> LinkInfo {
    let lower_up = 0x10000; // IFF_LOWER_UP
    LinkInfo {
        index,
        up: flags & libc::IFF_UP as u32 != 0,
        running: flags & (lower_up | libc::IFF_RUNNING as u32) != 0,
        mtu,
        mac,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What `request` returned and how long it took.
    type Outcome = (Result<Vec<(u16, Vec<u8>)>, SysError>, Duration);

    /// Runs `request(msg, wait_for, …)` on its own thread: `None` if it has not returned
    /// after 30 s (an unbounded wait would otherwise hang the test run, not fail it).
    fn request_on_thread(msg: Vec<u8>, wait_for: u32) -> Option<Outcome> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let started = Instant::now();
            let result = Netlink::open().and_then(|mut nl| nl.request(&msg, wait_for, "test"));
            let _ = tx.send((result, started.elapsed()));
        });
        rx.recv_timeout(Duration::from_secs(30)).ok()
    }

    /// RTM_GETLINK for `lo` (in every namespace, no privilege needed) with `flags`.
    fn get_lo(flags: u16, seq: u32) -> Vec<u8> {
        RequestBuf::new(libc::RTM_GETLINK, flags, seq, &rtnl::ifinfo(0, 0, 0))
            .attr(libc::IFLA_IFNAME, b"lo\0")
            .finish()
    }

    fn assert_timed_out(outcome: Option<Outcome>) {
        let (result, took) = outcome.expect("request still blocked after 30 s");
        match result {
            Err(e @ SysError::NetlinkTimeout { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("test: the kernel did not answer a netlink request within 2 s"),
                    "{msg}"
                );
                assert_eq!(e.exit_code(), 71);
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(
            took >= REPLY_TIMEOUT - Duration::from_millis(50),
            "{took:?}"
        );
    }

    #[test]
    fn a_request_the_kernel_never_acknowledges_times_out() {
        // Without NLM_F_ACK the kernel sends the link and nothing after it.
        assert_timed_out(request_on_thread(get_lo(NLM_F_REQUEST, 1), 1));
    }

    #[test]
    fn answers_to_another_sequence_number_do_not_end_the_wait() {
        // The kernel acknowledges seq 1; we wait for seq 2, which never comes.
        assert_timed_out(request_on_thread(get_lo(NLM_F_REQUEST | NLM_F_ACK, 1), 2));
    }

    #[test]
    fn an_acknowledged_request_still_returns_its_answer() {
        let (result, _) = request_on_thread(get_lo(NLM_F_REQUEST | NLM_F_ACK, 1), 1)
            .expect("request still blocked after 30 s");
        let replies = result.unwrap();
        assert!(replies.iter().any(|(kind, _)| *kind == libc::RTM_NEWLINK));
    }
}
