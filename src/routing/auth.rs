//! Origin authentication of OGMs, provided by the node (hash chains anchored in signed
//! announcements) so that routing stays free of crypto.

use crate::wire::OgmRepr;

/// What the authenticator says about one OGM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthVerdict {
    /// The chain element proves the originator issued (epoch, seqno). Also returned for
    /// further copies of the newest verified (epoch, seqno) arriving via other neighbours.
    Valid,
    /// No announcement of this originator (or of this epoch) is known: the node must fetch it.
    UnknownOriginator,
    /// The chain element does not verify: forged.
    Invalid,
    /// Verifies, but (epoch, seqno) is older than the newest verified one: a replay.
    Stale,
    /// The announcement held is of a newer epoch than the OGM's: a replay, or the originator
    /// lost its state and its epoch went back. Routing fetches its announcement if it has
    /// no route to it any more (the older one is then taken, docs/protocol.md §4.2).
    OlderEpoch,
}

/// Checks that an OGM was issued by its originator. Only `Valid` OGMs are used or forwarded.
pub trait OgmAuth {
    /// Verify `ogm.chain` against the originator's announcement for `ogm.epoch`.
    fn check(&mut self, ogm: &OgmRepr) -> AuthVerdict;
}
