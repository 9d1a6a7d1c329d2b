//! The lab's only unsafe code: entering a network namespace and signalling a process.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Signals the lab sends to daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// SIGTERM: ask to stop cleanly.
    Term,
    /// SIGKILL: stop now (a crash, as far as the mesh can tell).
    Kill,
    /// SIGINT: like Ctrl-C.
    Int,
}

impl Signal {
    fn raw(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Int => libc::SIGINT,
        }
    }
}

/// Moves the calling thread into the network namespace `fd` refers to.
pub fn setns_net(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: setns takes a file descriptor (kept open by the borrow) and a flag; it only
    // changes the calling thread's namespace and touches no memory of ours.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `sig` to process `pid` (or, with `group`, to its whole process group).
pub fn kill(pid: u32, sig: Signal, group: bool) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|p| *p > 1)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad pid"))?;
    let target = if group { -pid } else { pid };
    // SAFETY: kill(2) with a positive pid or a negative process-group id (never 0 or -1,
    // which would hit our own group or every process) has no memory effects.
    let rc = unsafe { libc::kill(target, sig.raw()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raw layer-2 sockets for the medium's own tests (the daemon has its own).
#[cfg(test)]
pub mod packet {
    use std::ffi::CString;
    use std::io;
    use std::mem::MaybeUninit;
    use std::time::Duration;

    use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

    /// An AF_PACKET datagram socket on one interface and EtherType (the kernel adds and
    /// strips the Ethernet header).
    pub struct PacketSocket {
        sock: Socket,
        ifindex: i32,
        ethertype: u16,
    }

    fn link_addr(ifindex: i32, ethertype: u16, dst: [u8; 6]) -> SockAddr {
        let mut storage = SockAddrStorage::zeroed();
        // SAFETY: the storage is zeroed and large enough for any sockaddr, including
        // sockaddr_ll; every field written is plain data.
        let len = unsafe {
            let ll = storage.view_as::<libc::sockaddr_ll>();
            ll.sll_family = libc::AF_PACKET as libc::sa_family_t;
            ll.sll_protocol = ethertype.to_be();
            ll.sll_ifindex = ifindex;
            ll.sll_halen = 6;
            ll.sll_addr[..6].copy_from_slice(&dst);
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t
        };
        // SAFETY: the storage holds an initialised sockaddr_ll of `len` bytes.
        unsafe { SockAddr::new(storage, len) }
    }

    impl PacketSocket {
        /// Opens and binds a socket on `ifname` (in the calling thread's namespace).
        pub fn open(ifname: &str, ethertype: u16) -> io::Result<PacketSocket> {
            let name = CString::new(ifname).map_err(|_| io::ErrorKind::InvalidInput)?;
            // SAFETY: a valid NUL-terminated string; the call only reads it.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            if ifindex == 0 {
                return Err(io::Error::last_os_error());
            }
            let ifindex = i32::try_from(ifindex).map_err(|_| io::ErrorKind::InvalidData)?;
            let proto = Protocol::from(i32::from(ethertype.to_be()));
            let sock = Socket::new(Domain::PACKET, Type::DGRAM, Some(proto))?;
            sock.bind(&link_addr(ifindex, ethertype, [0; 6]))?;
            Ok(PacketSocket {
                sock,
                ifindex,
                ethertype,
            })
        }

        /// Sends `payload` to `dst` (ff:ff:ff:ff:ff:ff for broadcast).
        pub fn send(&self, dst: [u8; 6], payload: &[u8]) -> io::Result<()> {
            let addr = link_addr(self.ifindex, self.ethertype, dst);
            self.sock.send_to(payload, &addr).map(drop)
        }

        /// Every payload received until nothing arrives for `quiet`.
        pub fn drain(&self, quiet: Duration) -> io::Result<Vec<Vec<u8>>> {
            self.sock.set_read_timeout(Some(quiet))?;
            let mut got = Vec::new();
            let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
            loop {
                match self.sock.recv(&mut buf) {
                    Ok(n) => got.push(
                        buf[..n]
                            .iter()
                            // SAFETY: recv initialised the first n bytes.
                            .map(|b| unsafe { b.assume_init() })
                            .collect(),
                    ),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        return Ok(got)
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}
