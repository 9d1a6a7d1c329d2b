//! Sliding anti-replay window over 64-bit counters (RFC 6479 style ring of bitmap blocks).
//!
//! `check` before decrypting, `commit` only after the tag verified, so forged packets can
//! neither advance the window nor mark counters as seen.

/// Bitmap blocks of a transport window (a power of two, so the ring index is a mask).
const TRANSPORT_BLOCKS: usize = 64;
const BLOCK_BITS: u64 = 64;
/// How far behind the highest counter seen a packet may arrive: 4032 packets.
pub const REPLAY_WINDOW: u64 = (TRANSPORT_BLOCKS as u64 - 1) * BLOCK_BITS;

/// Why a counter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Older than the window: cannot tell whether it was seen.
    #[error("counter is older than the replay window")]
    TooOld,
    /// Seen before.
    #[error("counter was already received")]
    Duplicate,
}

/// Anti-replay state for one receive key, O(1) per packet: `BLOCKS` (a power of two, at
/// least 2) bitmap words of 64 counters each. The transport's default is 512 bytes; an onion
/// circuit's (2 blocks, 64 cells behind) is 24.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayWindow<const BLOCKS: usize = TRANSPORT_BLOCKS> {
    /// Highest committed counter (0 with an empty bitmap before the first packet).
    last: u64,
    bitmap: [u64; BLOCKS],
}

impl<const BLOCKS: usize> Default for ReplayWindow<BLOCKS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const BLOCKS: usize> core::fmt::Debug for ReplayWindow<BLOCKS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ReplayWindow(last={})", self.last)
    }
}

impl<const BLOCKS: usize> ReplayWindow<BLOCKS> {
    /// How far behind the highest counter seen a counter may arrive.
    pub const WINDOW: u64 = (BLOCKS as u64 - 1) * BLOCK_BITS;
    const VALID: () = assert!(BLOCKS >= 2 && BLOCKS.is_power_of_two());

    /// An empty window: every counter is acceptable once.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID;
        ReplayWindow {
            last: 0,
            bitmap: [0; BLOCKS],
        }
    }

    /// Whether `counter` may be accepted; does not change state.
    pub fn check(&self, counter: u64) -> Result<(), ReplayError> {
        if counter > self.last {
            return Ok(());
        }
        if self.last - counter > Self::WINDOW {
            return Err(ReplayError::TooOld);
        }
        let (block, bit) = Self::position(counter);
        if self.bitmap[block] & bit != 0 {
            Err(ReplayError::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Record `counter` as received. Call only after `check` passed and the tag verified.
    pub fn commit(&mut self, counter: u64) {
        if counter > self.last {
            let current = self.last / BLOCK_BITS;
            let target = counter / BLOCK_BITS;
            // Clear the blocks the window slides over; at most BLOCKS of them.
            let steps = (target - current).min(BLOCKS as u64);
            for i in 1..=steps {
                let block = (current.wrapping_add(i) as usize) & (BLOCKS - 1);
                self.bitmap[block] = 0;
            }
            self.last = counter;
        }
        let (block, bit) = Self::position(counter);
        self.bitmap[block] |= bit;
    }

    /// `check` then `commit` in one step, for callers that have already authenticated.
    pub fn check_and_commit(&mut self, counter: u64) -> Result<(), ReplayError> {
        self.check(counter)?;
        self.commit(counter);
        Ok(())
    }

    /// Highest counter committed so far.
    pub fn last(&self) -> u64 {
        self.last
    }

    fn position(counter: u64) -> (usize, u64) {
        let block = ((counter / BLOCK_BITS) as usize) & (BLOCKS - 1);
        (block, 1u64 << (counter % BLOCK_BITS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_packets_and_duplicates() {
        let mut w: ReplayWindow = ReplayWindow::new();
        assert_eq!(w.check_and_commit(0), Ok(()));
        assert_eq!(w.check_and_commit(0), Err(ReplayError::Duplicate));
        assert_eq!(w.check_and_commit(1), Ok(()));
        assert_eq!(w.check_and_commit(1), Err(ReplayError::Duplicate));
    }

    #[test]
    fn check_alone_does_not_commit() {
        let mut w: ReplayWindow = ReplayWindow::new();
        assert_eq!(w.check(5), Ok(()));
        assert_eq!(w.check(5), Ok(()));
        assert_eq!(w.last(), 0);
        w.commit(5);
        assert_eq!(w.check(5), Err(ReplayError::Duplicate));
    }

    #[test]
    fn out_of_order_within_window() {
        let mut w: ReplayWindow = ReplayWindow::new();
        for c in [10u64, 5, 9, 1, 3000, 2000, 11] {
            assert_eq!(w.check_and_commit(c), Ok(()), "counter {c}");
        }
        for c in [10u64, 5, 9, 1, 3000, 2000, 11] {
            assert_eq!(w.check(c), Err(ReplayError::Duplicate), "counter {c}");
        }
        assert_eq!(w.check(2), Ok(()));
    }

    #[test]
    fn old_edge_of_window() {
        let mut w: ReplayWindow = ReplayWindow::new();
        w.commit(10_000);
        assert_eq!(w.check(10_000 - REPLAY_WINDOW), Ok(()));
        assert_eq!(
            w.check(10_000 - REPLAY_WINDOW - 1),
            Err(ReplayError::TooOld)
        );
        assert_eq!(w.check_and_commit(10_000 - REPLAY_WINDOW), Ok(()));
        assert_eq!(w.check(10_000 - REPLAY_WINDOW), Err(ReplayError::Duplicate));
    }

    #[test]
    fn far_ahead_clears_the_ring() {
        let mut w: ReplayWindow = ReplayWindow::new();
        for c in 0..100 {
            w.commit(c);
        }
        let far = 1_000_000u64;
        assert_eq!(w.check_and_commit(far), Ok(()));
        assert_eq!(w.check(99), Err(ReplayError::TooOld));
        // Counters that alias old ring positions must read as unseen.
        for c in (far - REPLAY_WINDOW)..far {
            assert_eq!(w.check(c), Ok(()), "counter {c}");
        }
    }

    #[test]
    fn ring_wraps_many_times_without_stale_bits() {
        let mut w: ReplayWindow = ReplayWindow::new();
        let mut c = 0u64;
        while c < 50_000 {
            assert_eq!(w.check_and_commit(c), Ok(()), "counter {c}");
            c += 3;
        }
        let last = w.last();
        assert_eq!(w.check(last - 1), Ok(()));
        assert_eq!(w.check(last - 3), Err(ReplayError::Duplicate));
        assert_eq!(w.check(last - REPLAY_WINDOW - 3), Err(ReplayError::TooOld));
    }

    #[test]
    fn works_near_the_top_of_the_counter_space() {
        let mut w: ReplayWindow = ReplayWindow::new();
        let top = u64::MAX - 1;
        assert_eq!(w.check_and_commit(top), Ok(()));
        assert_eq!(w.check_and_commit(u64::MAX), Ok(()));
        assert_eq!(w.check(top), Err(ReplayError::Duplicate));
        assert_eq!(w.check(top - 1), Ok(()));
    }

    #[test]
    fn a_two_block_window_holds_64_behind() {
        let mut w = ReplayWindow::<2>::new();
        assert_eq!(ReplayWindow::<2>::WINDOW, 64);
        for c in 0..200u64 {
            assert_eq!(w.check_and_commit(c), Ok(()), "counter {c}");
        }
        assert_eq!(w.check(199 - 64), Err(ReplayError::Duplicate));
        assert_eq!(w.check(199 - 65), Err(ReplayError::TooOld));
        assert_eq!(w.check_and_commit(300), Ok(()));
        for c in (300 - 64)..300 {
            assert_eq!(w.check(c), Ok(()), "counter {c}");
        }
    }
}
