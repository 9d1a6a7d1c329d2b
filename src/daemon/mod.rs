//! The daemon shell (`veil run`): the OS around the sans-IO `node::Node` — packet sockets,
//! the TUN device, netlink, the control socket, signals and state on disk.

pub mod config;
pub mod control;
pub mod control_server;
pub mod event_loop;
pub mod gro;
pub mod identity_file;
pub mod logging;
pub mod offload;
pub mod ping;
pub mod report;
pub mod run;
pub mod state;
#[allow(unsafe_code)] // the one place: raw sockets, TUNSETIFF, recvmmsg (see sys/mod.rs)
pub mod sys;
