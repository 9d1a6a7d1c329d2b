//! The raw layer-2 socket: veilmesh frames in and out of one Ethernet/Wi-Fi interface.
//!
//! An AF_PACKET SOCK_DGRAM socket: the kernel builds and strips the Ethernet header, so a
//! payload here is everything after the EtherType, and the peer is named by its MAC.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

use super::error::{check_ifname, SysError, CAP_NET_RAW};
use super::netlink::Netlink;
use crate::wire::MacAddr;

/// EtherType of every veilmesh frame; the socket receives only this type.
pub const ETHERTYPE: u16 = crate::wire::ETHERTYPE;
/// Frames one [`RecvBatch`] or [`SendBatch`] holds.
pub const BATCH: usize = 32;
/// Largest payload a batch buffer holds (the longest frame we build or accept).
pub const FRAME_CAP: usize = crate::wire::MAX_FRAME_LEN;
/// Receive buffer asked for: about 450 frames (kernel memory, used only while frames queue).
pub const RECV_BUFFER: usize = 1 << 20;

/// An AF_PACKET SOCK_DGRAM socket bound to one interface and [`ETHERTYPE`], non-blocking.
#[derive(Debug)]
pub struct PacketSocket {
    socket: Socket,
    ifindex: u32,
    mac: MacAddr,
    mtu: u32,
    name: String,
}

impl PacketSocket {
    /// Opens the socket on interface `ifname`, which must exist, be up and have a MAC.
    pub fn open(ifname: &str) -> Result<PacketSocket, SysError> {
        check_ifname(ifname)?;
        let link = Netlink::open()?
            .link(ifname)?
            .ok_or_else(|| SysError::NoSuchInterface {
                name: ifname.into(),
            })?;
        if !link.up {
            return Err(SysError::InterfaceDown {
                name: ifname.into(),
            });
        }
        let mac = link.mac.ok_or_else(|| SysError::NotEthernet {
            name: ifname.into(),
        })?;
        let what = || format!("opening a raw packet socket on {ifname}");
        let proto = Protocol::from(i32::from(ETHERTYPE.to_be()));
        let socket = Socket::new(Domain::PACKET, Type::DGRAM, Some(proto))
            .map_err(|e| SysError::from_io(e, what(), CAP_NET_RAW))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| SysError::from_io(e, what(), CAP_NET_RAW))?;
        // The default ~208 KB (≈ 90 frames) overflows whenever a busy relay is scheduled
        // late, and every dropped frame costs TCP a retransmission (docs/benchmarks.md §6).
        // SO_RCVBUFFORCE (CAP_NET_ADMIN, which the daemon has) ignores net.core.rmem_max;
        // without the capability fall back to what rmem_max allows.
        if force_recv_buffer(socket.as_raw_fd(), RECV_BUFFER).is_err() {
            let _ = socket.set_recv_buffer_size(RECV_BUFFER);
        }
        bind_ll(socket.as_raw_fd(), link.index).map_err(|e| {
            SysError::from_io(
                e,
                format!("binding the packet socket to {ifname}"),
                CAP_NET_RAW,
            )
        })?;
        Ok(PacketSocket {
            socket,
            ifindex: link.index,
            mac,
            mtu: link.mtu,
            name: ifname.into(),
        })
    }

    /// The receive buffer the kernel gave the socket (it doubles what was asked for).
    pub fn recv_buffer(&self) -> io::Result<usize> {
        self.socket.recv_buffer_size()
    }

    /// The interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Our MAC on that interface (read when the socket was opened).
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The interface's MTU when the socket was opened: the longest payload `send` takes
    /// (a longer one fails with EMSGSIZE).
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Receives one frame: `Ok(Some((len, src)))` with the payload in `buf[..len]`.
    ///
    /// `Ok(None)` means a frame was consumed but is not for us: one we sent ourselves
    /// (PACKET_OUTGOING), one addressed to another host (PACKET_OTHERHOST, seen in
    /// promiscuous mode), or one longer than `buf`. `WouldBlock` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, MacAddr)>> {
        let mut addr = sockaddr_ll(0, MacAddr::default());
        let len = recv_from(self.socket.as_raw_fd(), buf, &mut addr)?;
        if len > buf.len() || !wanted(&addr) {
            return Ok(None);
        }
        Ok(Some((len, source_mac(&addr))))
    }

    /// Sends one frame with `payload` to `dst` (which may be [`MacAddr::BROADCAST`]).
    pub fn send(&self, dst: MacAddr, payload: &[u8]) -> io::Result<()> {
        let addr = sockaddr_ll(self.ifindex, dst);
        let sent = send_to(self.socket.as_raw_fd(), payload, &addr)?;
        if sent != payload.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short packet send",
            ));
        }
        Ok(())
    }

    /// Receives up to [`BATCH`] frames with one recvmmsg; returns how many datagrams were
    /// consumed (including ones [`RecvBatch::iter`] skips). `WouldBlock` when none queued.
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.count = 0;
        let n = recv_mmsg(self.socket.as_raw_fd(), batch)?;
        batch.count = n;
        Ok(n)
    }

    /// Sends the queued frames of `batch` with one sendmmsg and returns how many went out.
    ///
    /// Sent frames are removed from the batch; on a partial send the rest stay queued, in
    /// order, for the next call. On an error nothing was sent: `WouldBlock`/`Interrupted`
    /// keep every frame queued; any other error drops the first queued frame (the one the
    /// kernel refused, e.g. EMSGSIZE) so a bad frame cannot wedge the queue.
    pub fn send_batch(&self, batch: &mut SendBatch) -> io::Result<usize> {
        if batch.is_empty() {
            return Ok(0);
        }
        match send_mmsg(self.socket.as_raw_fd(), self.ifindex, batch.queued()) {
            Ok(n) => {
                batch.consume(n);
                Ok(n)
            }
            Err(e) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) {
                    batch.consume(1);
                }
                Err(e)
            }
        }
    }
}

impl PacketSocket {
    /// Sends up to [`BATCH`] `frames` (destination, payload) from wherever they lie with one
    /// sendmmsg; returns how many the kernel took (the rest are the caller's to drop).
    pub fn send_frames<'a>(
        &self,
        frames: impl Iterator<Item = (MacAddr, &'a [u8])>,
    ) -> io::Result<usize> {
        send_mmsg(self.socket.as_raw_fd(), self.ifindex, frames)
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// Preallocated buffers for [`PacketSocket::recv_batch`]: [`BATCH`] frames of up to
/// [`FRAME_CAP`] bytes, allocated once.
pub struct RecvBatch {
    bufs: Box<[[u8; FRAME_CAP]]>,
    addrs: [libc::sockaddr_ll; BATCH],
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// Allocates the buffers (48 KiB).
    pub fn new() -> RecvBatch {
        RecvBatch {
            bufs: vec![[0u8; FRAME_CAP]; BATCH].into_boxed_slice(),
            addrs: [sockaddr_ll(0, MacAddr::default()); BATCH],
            lens: [0; BATCH],
            truncated: [false; BATCH],
            count: 0,
        }
    }

    /// The received frames for us as (slot, payload, source MAC), skipping our own outgoing
    /// frames, frames for other hosts and frames longer than [`FRAME_CAP`]. Writable: the
    /// node opens them in place and re-seals the ones it relays for
    /// [`PacketSocket::send_frames`].
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut [u8], MacAddr)> + '_ {
        self.bufs
            .iter_mut()
            .zip(&self.addrs)
            .zip(self.lens.iter().zip(&self.truncated))
            .take(self.count)
            .enumerate()
            .filter(|(_, ((_, addr), (_, &trunc)))| !trunc && wanted(addr))
            .map(|(slot, ((buf, addr), (&len, _)))| {
                (
                    slot,
                    buf.get_mut(..len).unwrap_or_default(),
                    source_mac(addr),
                )
            })
    }

    /// The first `len` bytes of the frame in `slot` (one rewritten in place to be sent on).
    pub fn frame(&self, slot: usize, len: usize) -> Option<&[u8]> {
        self.bufs.get(slot)?.get(..len)
    }

    /// How many frames of the last batch were longer than [`FRAME_CAP`] and dropped.
    pub fn truncated(&self) -> usize {
        self.truncated
            .iter()
            .take(self.count)
            .filter(|&&t| t)
            .count()
    }
}

/// Frames queued for one [`PacketSocket::send_batch`], in preallocated buffers.
pub struct SendBatch {
    bufs: Box<[[u8; FRAME_CAP]]>,
    dsts: [MacAddr; BATCH],
    lens: [usize; BATCH],
    /// First queued frame (frames before it were sent by a partial send).
    start: usize,
    /// One past the last queued frame.
    end: usize,
}

impl Default for SendBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl SendBatch {
    /// Allocates the buffers (48 KiB).
    pub fn new() -> SendBatch {
        SendBatch {
            bufs: vec![[0u8; FRAME_CAP]; BATCH].into_boxed_slice(),
            dsts: [MacAddr::default(); BATCH],
            lens: [0; BATCH],
            start: 0,
            end: 0,
        }
    }

    /// Queues the frame `write` puts straight into the batch's next buffer (the node's
    /// `poll_transmit` writes there, so the frame is not copied again): it returns the
    /// destination and length, or None to queue nothing. False when the batch is full.
    pub fn fill(&mut self, write: impl FnOnce(&mut [u8]) -> Option<(MacAddr, usize)>) -> bool {
        if self.end == BATCH {
            if self.start == 0 {
                return false;
            }
            self.compact();
        }
        let (Some(buf), Some(d), Some(l)) = (
            self.bufs.get_mut(self.end),
            self.dsts.get_mut(self.end),
            self.lens.get_mut(self.end),
        ) else {
            return false;
        };
        let Some((dst, len)) = write(&mut buf[..]).filter(|(_, len)| *len <= FRAME_CAP) else {
            return true;
        };
        *d = dst;
        *l = len;
        self.end += 1;
        true
    }

    /// Whether no more frames fit.
    pub fn is_full(&self) -> bool {
        self.end == BATCH && self.start == 0
    }

    /// Frames queued.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops every queued frame.
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Forgets the first `n` queued frames (they were sent or refused).
    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.clear();
        }
    }

    /// Moves the queued frames to the front to make room after a partial send.
    fn compact(&mut self) {
        let (s, e) = (self.start, self.end);
        self.bufs.copy_within(s..e, 0);
        self.dsts.copy_within(s..e, 0);
        self.lens.copy_within(s..e, 0);
        self.end = e - s;
        self.start = 0;
    }

    /// The queued frames as (destination, payload).
    pub(super) fn queued(&self) -> impl Iterator<Item = (MacAddr, &[u8])> + '_ {
        self.bufs
            .iter()
            .zip(self.dsts.iter().zip(&self.lens))
            .take(self.end)
            .skip(self.start)
            .map(|(buf, (&dst, &len))| (dst, buf.get(..len).unwrap_or(&[])))
    }
}

/// Whether the kernel's packet type says the frame was meant for this host.
pub(super) fn wanted(addr: &libc::sockaddr_ll) -> bool {
    !matches!(
        addr.sll_pkttype,
        libc::PACKET_OUTGOING | libc::PACKET_OTHERHOST
    )
}

/// The source MAC the kernel put into a received `sockaddr_ll`.
pub(super) fn source_mac(addr: &libc::sockaddr_ll) -> MacAddr {
    let a = addr.sll_addr;
    MacAddr([a[0], a[1], a[2], a[3], a[4], a[5]])
}

/// A link-layer address for bind/sendto: our EtherType on `ifindex`, peer `mac`.
pub(super) fn sockaddr_ll(ifindex: u32, mac: MacAddr) -> libc::sockaddr_ll {
    let m = mac.0;
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as _,
        sll_protocol: ETHERTYPE.to_be(),
        sll_ifindex: ifindex as _,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: [m[0], m[1], m[2], m[3], m[4], m[5], 0, 0],
    }
}

/// Length of a `sockaddr_ll` for the socket calls.
const LL_LEN: libc::socklen_t = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;

/// Result of a libc call returning -1 on error.
fn cvt(rc: isize) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

/// bind(2) the packet socket to `ifindex` and our EtherType.
fn bind_ll(fd: RawFd, ifindex: u32) -> io::Result<()> {
    let addr = sockaddr_ll(ifindex, MacAddr::default());
    // SAFETY: `addr` is a fully initialised sockaddr_ll and LL_LEN is its size.
    let rc = unsafe { libc::bind(fd, (&addr as *const libc::sockaddr_ll).cast(), LL_LEN) };
    cvt(rc as isize).map(drop)
}

/// recvfrom(2) with MSG_TRUNC, so the returned length is the frame's real length even if
/// it did not fit in `buf`.
fn recv_from(fd: RawFd, buf: &mut [u8], addr: &mut libc::sockaddr_ll) -> io::Result<usize> {
    let mut alen = LL_LEN;
    // SAFETY: `buf` is writable for `buf.len()` bytes and `addr`/`alen` describe a
    // writable sockaddr_ll of LL_LEN bytes; all outlive the call.
    let rc = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC | libc::MSG_DONTWAIT,
            (addr as *mut libc::sockaddr_ll).cast(),
            &mut alen,
        )
    };
    cvt(rc)
}

/// sendto(2) one payload to the link-layer address `addr`.
fn send_to(fd: RawFd, payload: &[u8], addr: &libc::sockaddr_ll) -> io::Result<usize> {
    // SAFETY: `payload` is readable for its length and `addr` is an initialised
    // sockaddr_ll of LL_LEN bytes; both outlive the call.
    let rc = unsafe {
        libc::sendto(
            fd,
            payload.as_ptr().cast(),
            payload.len(),
            libc::MSG_DONTWAIT,
            (addr as *const libc::sockaddr_ll).cast(),
            LL_LEN,
        )
    };
    cvt(rc)
}

/// An all-zero `mmsghdr` (its `msghdr` has private padding fields on musl).
fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is plain old data (integers and raw pointers); all-zero is valid.
    unsafe { mem::zeroed() }
}

/// recvmmsg(2) into the batch's buffers; the iovec/mmsghdr arrays live on the stack and
/// point into `batch` only for the duration of the call.
fn recv_mmsg(fd: RawFd, batch: &mut RecvBatch) -> io::Result<usize> {
    let mut iovs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    let mut msgs = [zeroed_mmsghdr(); BATCH];
    for ((msg, iov), (buf, addr)) in msgs
        .iter_mut()
        .zip(iovs.iter_mut())
        .zip(batch.bufs.iter_mut().zip(batch.addrs.iter_mut()))
    {
        iov.iov_base = buf.as_mut_ptr().cast();
        iov.iov_len = buf.len();
        msg.msg_hdr.msg_iov = iov;
        msg.msg_hdr.msg_iovlen = 1;
        msg.msg_hdr.msg_name = (addr as *mut libc::sockaddr_ll).cast();
        msg.msg_hdr.msg_namelen = LL_LEN;
    }
    // SAFETY: every mmsghdr points at one iovec over a live FRAME_CAP-byte buffer and at a
    // live sockaddr_ll of LL_LEN bytes; all are exclusively borrowed for the call and
    // `BATCH` is the array's length. No timeout pointer (MSG_DONTWAIT).
    let rc = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            BATCH as _,
            libc::MSG_DONTWAIT as _,
            std::ptr::null_mut(),
        )
    };
    let n = cvt(rc as isize)?.min(BATCH);
    for (msg, (len, trunc)) in msgs
        .iter()
        .zip(batch.lens.iter_mut().zip(batch.truncated.iter_mut()))
        .take(n)
    {
        *len = (msg.msg_len as usize).min(FRAME_CAP);
        *trunc = msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
    }
    Ok(n)
}

/// sendmmsg(2) of up to [`BATCH`] `frames`; the address/iovec/mmsghdr arrays live on the
/// stack for the duration of the call. Returns how many frames the kernel took.
fn send_mmsg<'a>(
    fd: RawFd,
    ifindex: u32,
    frames: impl Iterator<Item = (MacAddr, &'a [u8])>,
) -> io::Result<usize> {
    let mut addrs = [sockaddr_ll(ifindex, MacAddr::default()); BATCH];
    let mut iovs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    let mut msgs = [zeroed_mmsghdr(); BATCH];
    let mut count = 0;
    for ((msg, iov), (addr, (dst, payload))) in msgs
        .iter_mut()
        .zip(iovs.iter_mut())
        .zip(addrs.iter_mut().zip(frames))
    {
        *addr = sockaddr_ll(ifindex, dst);
        // sendmsg never writes through iov_base; the cast to *mut is what iovec wants.
        iov.iov_base = payload.as_ptr() as *mut libc::c_void;
        iov.iov_len = payload.len();
        msg.msg_hdr.msg_iov = iov;
        msg.msg_hdr.msg_iovlen = 1;
        msg.msg_hdr.msg_name = (addr as *mut libc::sockaddr_ll).cast();
        msg.msg_hdr.msg_namelen = LL_LEN;
        count += 1;
    }
    if count == 0 {
        return Ok(0);
    }
    // SAFETY: the first `count` mmsghdrs each point at one iovec over a live queued
    // payload (only read) and at an initialised sockaddr_ll; all outlive the call.
    let rc = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), count as _, libc::MSG_DONTWAIT as _) };
    cvt(rc as isize)
}

/// SO_RCVBUFFORCE: a receive buffer of `bytes` regardless of net.core.rmem_max.
fn force_recv_buffer(fd: RawFd, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: fd is an open socket owned by the caller; the option value is a c_int on the
    // stack whose size is passed, as setsockopt(2) requires.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
