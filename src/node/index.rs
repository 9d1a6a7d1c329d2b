//! Session indices: a random index whose low byte names the slot of its entry (in the link
//! table and the end-to-end table alike), so a received index finds its session in O(1).

use rand_core::RngCore;

/// The slot a session index names: its low byte.
pub(super) fn slot_of(idx: u32) -> usize {
    (idx & 0xFF) as usize
}

/// A fresh, non-zero session index for `slot`: random high bits, the slot in the low byte.
pub(super) fn new_index(slot: usize, rng: &mut impl RngCore) -> u32 {
    let high = (rng.next_u32() & 0xFFFF_FF00).max(0x100);
    high | (slot as u32 & 0xFF)
}

/// Which of an entry's two sessions, given their local indices, the received `idx` names.
pub(super) fn which_named(idx: u32, current: Option<u32>, previous: Option<u32>) -> Option<Which> {
    if current == Some(idx) {
        Some(Which::Current)
    } else if previous == Some(idx) {
        Some(Which::Previous)
    } else {
        None
    }
}

/// Which session of an entry a received index named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    /// The current session.
    Current,
    /// The session before the last rekey.
    Previous,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn index_names_its_slot_and_is_never_zero() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for slot in [0usize, 1, 127] {
            let idx = new_index(slot, &mut rng);
            assert_ne!(idx, 0);
            assert_eq!((idx & 0xFF) as usize, slot);
        }
    }
}
