//! Receive-ratio estimator over the last `HELLO_WINDOW` hello slots of one neighbour.
//!
//! Each slot is one hello sequence number of the neighbour. A received hello sets its
//! slot; a hello not received by its expected time is recorded as a virtual miss, so the
//! ratio falls even when the neighbour goes silent. A late hello whose slot was already
//! counted as missed is put back in its place.

use super::metric::{ratio, QUALITY_ONE};

/// Number of hello slots in the window (one u64 bitmap).
pub const HELLO_WINDOW: u16 = 64;
/// The ratio is taken over at least this many slots (unobserved ones counting as half
/// received), so a new neighbour starts uncertain and a lossy link cannot look good from a
/// handful of lucky hellos.
pub const MIN_SLOTS: u16 = 16;
/// A backward jump of more than this many seqnos means the neighbour restarted.
const RESTART_BACKWARD: u16 = 16;

/// What a received hello did to the estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloOutcome {
    /// Counted in its slot.
    Counted,
    /// Same seqno as one already counted (e.g. clear and encrypted copies).
    Duplicate,
    /// Slightly older than the newest: ignored.
    Old,
    /// Jump too large: history restarted at this hello.
    Restarted,
}

/// Sliding-window hello receive ratio.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkEstimator {
    history: u64,
    last_seq: u16,
    /// Virtual misses recorded after `last_seq`; the newest slot is `last_seq + pending`.
    pending: u16,
    /// Number of slots the history represents (≤ HELLO_WINDOW).
    slots: u16,
}

impl LinkEstimator {
    /// Record a hello with sequence number `seq`.
    pub fn on_hello(&mut self, seq: u16) -> HelloOutcome {
        if self.slots == 0 {
            return self.restart(seq);
        }
        let d = seq.wrapping_sub(self.last_seq);
        if d == 0 {
            return HelloOutcome::Duplicate;
        }
        if d > 0x8000 {
            return if d.wrapping_neg() > RESTART_BACKWARD {
                self.restart(seq)
            } else {
                HelloOutcome::Old
            };
        }
        if d > HELLO_WINDOW + self.pending {
            return self.restart(seq);
        }
        if d <= self.pending {
            self.history |= 1u64 << (self.pending - d);
            self.pending -= d;
        } else {
            self.shift(d - self.pending);
            self.history |= 1;
            self.pending = 0;
        }
        self.last_seq = seq;
        HelloOutcome::Counted
    }

    /// Record that the next expected hello did not arrive in time.
    pub fn on_missed(&mut self) {
        if self.slots == 0 {
            return;
        }
        self.shift(1);
        self.pending = (self.pending + 1).min(HELLO_WINDOW);
    }

    /// Whether no hello has been recorded yet.
    pub fn is_empty(&self) -> bool {
        self.slots == 0
    }

    /// Receive ratio over the window, 0..=QUALITY_ONE (0 before any hello).
    pub fn rx_quality(&self) -> u16 {
        if self.slots == 0 {
            return 0;
        }
        let received = (self.history & self.mask()).count_ones();
        let slots = u32::from(self.slots);
        let den = slots.max(u32::from(MIN_SLOTS));
        // Slots not observed yet count as half received: a new link is usable at once (so a
        // fresh mesh converges in seconds) but costs ~3.5x a proven one until its window
        // fills, so it neither beats established paths nor looks good by luck.
        let q = ratio(2 * received + (den - slots), 2 * den);
        if received == den {
            QUALITY_ONE
        } else {
            q
        }
    }

    fn restart(&mut self, seq: u16) -> HelloOutcome {
        *self = LinkEstimator {
            history: 1,
            last_seq: seq,
            pending: 0,
            slots: 1,
        };
        HelloOutcome::Restarted
    }

    fn shift(&mut self, by: u16) {
        self.history = if by >= 64 { 0 } else { self.history << by };
        self.slots = (self.slots + by).min(HELLO_WINDOW);
    }

    fn mask(&self) -> u64 {
        if self.slots >= 64 {
            u64::MAX
        } else {
            (1u64 << self.slots) - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(e: &LinkEstimator) -> u32 {
        (e.rx_quality() as u32 * 100 + 32767) / QUALITY_ONE as u32
    }

    fn full(upto: u16) -> LinkEstimator {
        let mut e = LinkEstimator::default();
        for s in 0..=upto {
            e.on_hello(s);
        }
        e
    }

    #[test]
    fn new_neighbour_starts_uncertain() {
        let mut e = LinkEstimator::default();
        assert_eq!(e.rx_quality(), 0);
        assert_eq!(e.on_hello(10), HelloOutcome::Restarted);
        // 1 of 1 observed, 15 unobserved at one half: 8.5 / 16.
        assert_eq!(pct(&e), 53);
        e.on_missed();
        // 1 of 2 observed, 14 unobserved: 8 / 16.
        assert_eq!(pct(&e), 50);
        assert_eq!(full(15).rx_quality(), QUALITY_ONE);
    }

    #[test]
    fn counts_received_and_missing_slots() {
        let mut e = full(15);
        assert_eq!(e.on_hello(16), HelloOutcome::Counted);
        assert_eq!(e.on_hello(16), HelloOutcome::Duplicate);
        assert_eq!(e.on_hello(19), HelloOutcome::Counted); // 17, 18 lost
        assert_eq!(pct(&e), 90);
        assert_eq!(e.on_hello(18), HelloOutcome::Old);
    }

    #[test]
    fn virtual_misses_then_late_hello_is_put_back() {
        let mut e = full(15);
        e.on_missed();
        e.on_missed();
        assert_eq!(pct(&e), 89);
        // Hello 16 was only late: it fills its slot, slot 17 stays missed.
        assert_eq!(e.on_hello(16), HelloOutcome::Counted);
        assert_eq!(pct(&e), 94);
        assert_eq!(e.on_hello(18), HelloOutcome::Counted);
        assert_eq!(pct(&e), 95);
    }

    #[test]
    fn window_forgets_old_losses_and_restarts_on_jumps() {
        let mut e = LinkEstimator::default();
        e.on_hello(0);
        e.on_hello(10);
        assert!(pct(&e) < 30);
        for s in 11..=80 {
            e.on_hello(s);
        }
        assert_eq!(e.rx_quality(), QUALITY_ONE);
        assert_eq!(e.on_hello(5000), HelloOutcome::Restarted);
        assert_eq!(e.on_hello(3), HelloOutcome::Restarted);
        assert_eq!(e.on_hello(65535), HelloOutcome::Old);
    }
}
