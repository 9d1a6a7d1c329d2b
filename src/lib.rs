//! veilmesh: an anonymous layer-2 mesh routing daemon.
//!
//! The protocol core (`wire`, `crypto`, `iface`, `link`, `routing`, `overlay`, `node`) is sans-IO: it never
//! reads a clock, opens a socket or touches a global RNG. `sim` drives many nodes over a
//! modelled radio medium. See `docs/architecture.md` for the walk of one packet.
// `deny`, not `forbid`: the OS layers (`daemon::sys`, `lab::sys`, only there) allow it; the
// core modules forbid it themselves.
#![deny(unsafe_code)]

pub mod cli;
pub mod crypto;
pub mod daemon;
pub mod hexstr;
pub mod iface;
#[cfg(feature = "lab")]
pub mod lab;
pub mod link;
pub mod node;
pub mod overlay;
pub mod routing;
#[cfg(feature = "sim")]
pub mod sim;
pub mod time;
pub mod wire;
