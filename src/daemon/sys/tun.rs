//! The TUN device: IPv6 packets between the kernel and the overlay.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use super::error::{check_ifname, SysError, CAP_NET_ADMIN};
use crate::daemon::gro::MAX_SEGMENTS;
use crate::daemon::offload::VNET_HDR_LEN;

/// Path of the TUN clone device.
const TUN_PATH: &str = "/dev/net/tun";
/// What TUNSETOFFLOAD asks for: checksum offload and TCP segmentation for both families
/// (not UDP segmentation: `offload::split` cuts TCP only).
pub(super) const OFFLOADS: libc::c_uint = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;

/// A non-blocking layer-3 TUN device without packet information header (IFF_TUN |
/// IFF_NO_PI). Plain, every read returns one bare IP packet and every write takes one; with
/// offloads (IFF_VNET_HDR and TSO), every read and write starts with a `virtio_net_hdr` and
/// a read may be a TCP super-segment (see `daemon::offload`).
///
/// The device is not persistent: it disappears, with its addresses and routes, when this
/// value (its only file descriptor) is dropped.
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
    offload: bool,
    refused: Option<io::Error>,
}

impl Tun {
    /// Creates the TUN device `name` (or attaches to an existing non-persistent one of that
    /// name owned by us); a name with `%d` lets the kernel pick the number. With `offload`,
    /// it asks for IFF_VNET_HDR and TSO, and falls back to a plain device if the kernel
    /// refuses either.
    pub fn open(name: &str, offload: bool) -> Result<Tun, SysError> {
        Tun::open_with(name, offload.then_some(OFFLOADS))
    }

    /// `open` asking TUNSETOFFLOAD for `offloads`, if any.
    pub(super) fn open_with(name: &str, offloads: Option<libc::c_uint>) -> Result<Tun, SysError> {
        check_ifname(name)?;
        let mut refused = None;
        if let Some(features) = offloads {
            let file = open_dev()?;
            let flags = (libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
            // The flags of an attached fd cannot change: a refusal closes it (which removes
            // the device again) and the plain device below is a new one.
            match set_iff(&file, name, flags).and_then(|n| set_offload(&file, features).map(|()| n))
            {
                Ok(name) => {
                    return Ok(Tun {
                        file,
                        name,
                        offload: true,
                        refused: None,
                    })
                }
                Err(e) => refused = Some(e),
            }
        }
        let file = open_dev()?;
        let flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
        let name = set_iff(&file, name, flags).map_err(|source| {
            SysError::from_io(source, format!("creating TUN device {name}"), CAP_NET_ADMIN)
        })?;
        Ok(Tun {
            file,
            name,
            offload: false,
            refused,
        })
    }

    /// The device's name as the kernel gave it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether reads and writes carry a `virtio_net_hdr` (offloads on).
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// Why the kernel refused offloads, if they were asked for and refused.
    pub fn offload_refused(&self) -> Option<&io::Error> {
        self.refused.as_ref()
    }

    /// Reads one packet (with offloads: its `virtio_net_hdr` first); `WouldBlock` when none
    /// is queued. A packet longer than `buf` is truncated to `buf.len()`.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        fd_read(self.file.as_raw_fd(), buf)
    }

    /// Writes one IP packet (with offloads: behind an all-zero `virtio_net_hdr`, a plain
    /// packet whose checksums the kernel checks); `WouldBlock` when the device queue is full.
    pub fn write(&self, packet: &[u8]) -> io::Result<usize> {
        if !self.offload {
            return fd_write(self.file.as_raw_fd(), packet);
        }
        self.write_parts(&[0; VNET_HDR_LEN], &[packet])
    }

    /// Writes `vnet_hdr` and then `parts` as one packet with one `writev` (offloads only:
    /// a coalesced super-packet, `daemon::gro`); returns the bytes after the header.
    pub fn write_parts(&self, vnet_hdr: &[u8; VNET_HDR_LEN], parts: &[&[u8]]) -> io::Result<usize> {
        let mut iov = [IoSlice::new(&[]); 1 + MAX_SEGMENTS];
        if parts.len() >= iov.len() {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        iov[0] = IoSlice::new(vnet_hdr);
        for (slot, part) in iov[1..].iter_mut().zip(parts) {
            *slot = IoSlice::new(part);
        }
        let n = (&self.file).write_vectored(&iov[..1 + parts.len()])?;
        Ok(n.saturating_sub(VNET_HDR_LEN))
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// TUNSETIFF on `file`: creates/attaches the interface and returns the name the kernel chose.
fn set_iff(file: &File, name: &str, flags: libc::c_short) -> io::Result<String> {
    let mut req = ifreq_named(name);
    req.ifr_ifru.ifru_flags = flags;
    // SAFETY: `req` is a valid, initialised `ifreq` that outlives the call; TUNSETIFF reads
    // and writes only within it, and the fd is a live /dev/net/tun descriptor.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF as _, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ifreq_name(&req))
}

/// TUNSETOFFLOAD on `file`: the offloads the TUN device may hand us.
fn set_offload(file: &File, features: libc::c_uint) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its argument by value and touches no memory of ours; the
    // fd is a live /dev/net/tun descriptor.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::TUNSETOFFLOAD as _,
            features as libc::c_ulong,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens the TUN clone device, non-blocking.
fn open_dev() -> Result<File, SysError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(TUN_PATH)
        .map_err(open_error)
}

/// A zeroed `ifreq` whose name is `name` (already checked to fit with its NUL).
pub(super) fn ifreq_named(name: &str) -> libc::ifreq {
    // SAFETY: `ifreq` is plain old data (a char array and a union of integers, sockaddrs
    // and a pointer); all-zero is a valid value of every member.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *dst = libc::c_char::from_ne_bytes([src]);
    }
    req
}

/// The NUL-terminated name in an `ifreq`.
fn ifreq_name(req: &libc::ifreq) -> String {
    let bytes: Vec<u8> = req
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c.to_ne_bytes()[0])
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// read(2) on a raw fd.
pub(super) fn fd_read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid writable region of `buf.len()` bytes for the whole call.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// write(2) on a raw fd.
pub(super) fn fd_write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid readable region of `buf.len()` bytes for the whole call.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Why `/dev/net/tun` did not open, in the operator's terms.
fn open_error(source: io::Error) -> SysError {
    match source.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENXIO) | Some(libc::ENODEV) => SysError::NoTunDevice,
        // Opening the node is a plain file permission: CAP_NET_ADMIN does not help.
        Some(libc::EACCES) => SysError::TunDeviceMode,
        _ => SysError::from_io(source, format!("opening {TUN_PATH}"), CAP_NET_ADMIN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_errors_say_what_to_fix() {
        let e = |errno| open_error(io::Error::from_raw_os_error(errno));
        assert!(matches!(e(libc::ENOENT), SysError::NoTunDevice));
        assert!(matches!(e(libc::ENODEV), SysError::NoTunDevice));
        assert!(matches!(e(libc::EACCES), SysError::TunDeviceMode));
        assert!(matches!(e(libc::EPERM), SysError::Permission { .. }));
        assert!(matches!(e(libc::EMFILE), SysError::Io { .. }));
    }
}
