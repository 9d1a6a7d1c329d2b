//! The control plane: routing, the announcement store and the address book.

pub(in crate::node) mod announcements;
pub(in crate::node) mod ipv4;
pub(in crate::node) mod traffic;
