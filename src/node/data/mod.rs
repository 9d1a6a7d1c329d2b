//! The data plane: IP packets forwarded hop by hop, and the end-to-end sessions they travel in.

pub(in crate::node) mod e2e;
pub(in crate::node) mod e2e_table;
pub(in crate::node) mod e2e_wait;
pub(in crate::node) mod ip;
