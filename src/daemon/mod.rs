//! The daemon shell (`veil run`, issue 3): configuration today; sockets, TUN and the
//! control socket come next. Everything here is IO around the sans-IO `node::Node`.

pub mod config;
pub mod state;
#[allow(unsafe_code)] // the one place: raw sockets, TUNSETIFF, recvmmsg (see sys/mod.rs)
pub mod sys;
