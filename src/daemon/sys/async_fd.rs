//! Registering our handles with tokio's reactor (`AsyncFd::register` is `unsafe` because the
//! fd must stay open and the same for the `AsyncFd`'s lifetime).

use std::io;
use std::os::fd::AsRawFd;

use tokio::io::unix::AsyncFd;

use super::{PacketSocket, Tun};

/// Handles that own their fd for their whole life and never swap it.
pub trait OwnsFd: AsRawFd + private::Sealed {}

impl OwnsFd for PacketSocket {}
impl OwnsFd for Tun {}

mod private {
    pub trait Sealed {}
    impl Sealed for super::PacketSocket {}
    impl Sealed for super::Tun {}
}

/// Wrap `handle` for readiness-based IO on the current tokio runtime.
pub fn register<T: OwnsFd>(handle: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: `OwnsFd` is implemented only for `PacketSocket` (owns a socket2::Socket) and
    // `Tun` (owns an OwnedFd/File); both keep the same open fd until dropped, and the
    // AsyncFd owns the handle, so the fd outlives the registration.
    unsafe { AsyncFd::register(handle).map_err(|e| e.into_parts().1) }
}
