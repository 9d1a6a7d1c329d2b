//! The node's named deadlines in a `time::TimerTable` (quinn-proto's timer table is the model).
//!
//! Each entry watches one kind of state. Code that gives that state an earlier deadline
//! arms the entry; when the entry fires, its handler does what is due and sets the exact
//! next deadline. A deadline whose state moved on in between (a handshake completed, a
//! parked OGM was used) fires early and finds nothing to do.

use crate::time::TimerName;

/// One of the node's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The earliest link deadline: a handshake timeout, an unconfirmed or expiring session,
    /// a rekey, a link idle long enough to forget.
    Links,
    /// Replacing our group key by age.
    GroupKey,
    /// The oldest parked OGM's expiry.
    PendingOgms,
    /// The oldest announcement on probation.
    Probation,
    /// End-to-end peers' deadlines (handshakes, sessions, idle) and waiting packets.
    E2e,
}

impl Timer {
    /// Every timer, in the order `handle_timeout` runs them.
    pub const ALL: [Timer; 5] = [
        Timer::Links,
        Timer::GroupKey,
        Timer::PendingOgms,
        Timer::Probation,
        Timer::E2e,
    ];
}

impl TimerName for Timer {
    fn slot(self) -> usize {
        self as usize
    }
}

/// The node's deadlines by name.
pub type TimerTable = crate::time::TimerTable<Timer, { Timer::ALL.len() }>;
