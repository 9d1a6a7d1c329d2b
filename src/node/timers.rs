//! The node's named deadlines in a `time::TimerTable` (quinn-proto's timer table is the model).
//!
//! Each entry watches one kind of state. Code that gives that state an earlier deadline
//! arms the entry; when the entry fires, its handler does what is due and sets the exact
//! next deadline. A deadline whose state moved on in between (a handshake completed, a
//! parked OGM was used) fires early and finds nothing to do.

use super::Node;
use crate::time::{Duration, Instant, TimerName};

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
    /// Our onion key's rotation and erasure; other relays' records expiring.
    OnionKeys,
    /// Circuits: builds timing out, loops, spare circuits, relayed circuits gone idle.
    Circuits,
}

impl Timer {
    /// Every timer, in the order `handle_timeout` runs them.
    pub const ALL: [Timer; 7] = [
        Timer::Links,
        Timer::GroupKey,
        Timer::PendingOgms,
        Timer::Probation,
        Timer::E2e,
        Timer::OnionKeys,
        Timer::Circuits,
    ];
}

impl TimerName for Timer {
    fn slot(self) -> usize {
        self as usize
    }
}

impl Node {
    /// `timer` is due: the part it belongs to does its work, and its next deadline is set.
    pub(super) fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Links => {
                self.housekeep_links(now);
                let next = self.link.next_deadline(now);
                self.shared.timers.set(Timer::Links, next);
            }
            Timer::GroupKey => {
                self.link.housekeep_group_key(now, &mut self.shared);
                let next = self.link.group_key_deadline();
                self.shared.timers.set(Timer::GroupKey, Some(next));
            }
            Timer::PendingOgms => self.control.expire_pending_ogms(now, &mut self.shared),
            Timer::E2e => {
                let (data, mut env) = self.data_env();
                data.e2e_timers(now, &mut env);
            }
            Timer::Probation => self.control.probation_timer(now, &mut self.shared),
            Timer::OnionKeys => {
                let next = self.control.onion_key_timer(now, &mut self.shared);
                self.shared.timers.set(Timer::OnionKeys, Some(next));
            }
            Timer::Circuits => {
                let (data, mut env) = self.data_env();
                let next = data.onion_timer(now, &mut env);
                self.shared.timers.set(Timer::Circuits, next);
            }
        }
    }
}

/// The node's deadlines by name.
pub type TimerTable = crate::time::TimerTable<Timer, { Timer::ALL.len() }>;

/// How soon a deadline that passed without its work getting done (a refused rekey) is
/// looked at again.
pub(super) const STUCK_RETRY: Duration = Duration::from_millis(100);
