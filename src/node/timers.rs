//! The node's named deadlines (quinn-proto's timer table is the model).
//!
//! Each entry watches one kind of state. Code that gives that state an earlier deadline
//! arms the entry (`arm`: only ever moves it earlier); when the entry fires, its handler
//! does what is due and sets the exact next deadline (`set`). A deadline whose state moved
//! on in between (a handshake completed, a parked OGM was used) fires early and finds
//! nothing to do — harmless — so state that only moves deadlines later never has to touch
//! the table. `next` is the minimum of a handful of entries: O(1).

use crate::time::Instant;

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

    fn slot(self) -> usize {
        self as usize
    }
}

/// Deadlines by name; `None` = not armed.
#[derive(Debug, Clone, Default)]
pub struct TimerTable {
    at: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    /// Set `timer` to exactly `at` (its handler ran and knows the next deadline).
    pub fn set(&mut self, timer: Timer, at: Option<Instant>) {
        if let Some(entry) = self.at.get_mut(timer.slot()) {
            *entry = at;
        }
    }

    /// Make `timer` fire no later than `at`.
    pub fn arm(&mut self, timer: Timer, at: Instant) {
        if let Some(entry) = self.at.get_mut(timer.slot()) {
            *entry = Some(entry.map_or(at, |t| t.min(at)));
        }
    }

    /// Whether `timer` is due at `now`; a due timer is disarmed (its handler sets the next).
    pub fn take_due(&mut self, timer: Timer, now: Instant) -> bool {
        match self.at.get_mut(timer.slot()) {
            Some(entry) if entry.is_some_and(|t| t <= now) => {
                *entry = None;
                true
            }
            _ => false,
        }
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    #[test]
    fn arming_only_moves_a_deadline_earlier_and_a_due_timer_fires_once() {
        let t = |ms| Instant::ZERO + Duration::from_millis(ms);
        let mut table = TimerTable::default();
        assert_eq!(table.next(), None);
        table.arm(Timer::Links, t(500));
        table.arm(Timer::Links, t(900));
        table.arm(Timer::GroupKey, t(700));
        assert_eq!(table.next(), Some(t(500)));
        table.arm(Timer::Links, t(200));
        assert_eq!(table.next(), Some(t(200)));
        assert!(!table.take_due(Timer::Links, t(199)));
        assert!(!table.take_due(Timer::PendingOgms, t(1000)), "never armed");
        assert!(table.take_due(Timer::Links, t(200)));
        assert!(!table.take_due(Timer::Links, t(200)), "disarmed once taken");
        assert_eq!(table.next(), Some(t(700)));
        table.set(Timer::GroupKey, Some(t(800)));
        assert_eq!(table.next(), Some(t(800)));
        table.set(Timer::GroupKey, None);
        assert_eq!(table.next(), None);
    }
}
