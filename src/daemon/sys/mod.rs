//! The OS-facing pieces of the daemon: the raw packet socket, the TUN device, rtnetlink and
//! the kernel's randomness.
//!
//! Synchronous and tokio-free: every handle is non-blocking and exposes its fd, so the
//! daemon wraps it in `tokio::io::unix::AsyncFd`. All `unsafe` of the daemon lives in this
//! folder, in small functions with a `// SAFETY:` comment each.

mod async_fd;
mod error;
mod netlink;
mod packet;
mod random;
mod rtnl;
mod tun;

#[cfg(test)]
mod tests;

pub use async_fd::{register, OwnsFd};
pub use error::{check_ifname, SysError, CAP_NET_ADMIN, CAP_NET_RAW};
pub use netlink::{disable_ipv6_autoconf, LinkInfo, Netlink};
pub use packet::{PacketSocket, RecvBatch, SendBatch, BATCH, ETHERTYPE, FRAME_CAP, RECV_BUFFER};
pub use random::fill_random;
pub use tun::Tun;
