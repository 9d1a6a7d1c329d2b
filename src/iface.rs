//! The one identifier every layer shares: which of the node's mesh interfaces a frame came
//! in on or leaves by. It lives below routing so that routing need not import the node.

#![forbid(unsafe_code)]

/// Which of the node's mesh interfaces a frame arrived on or leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IfaceId(pub u8);
