//! The relay's build replay filter (docs/protocol.md §8.7): a Bloom filter of the build
//! records' ephemeral keys per onion key, for the current and the previous key; a build is
//! only ever opened with one of those two, and a filter goes with its key. Allocated at the
//! first build a key sees, so nodes that relay nothing hold none.

use crate::crypto::hash_labeled;

/// Bits of one filter (32 KiB): a false positive about 1e-3 once it holds 10 000 builds
/// (the most one key sees at 3 builds a second, far above a neighbourhood's need).
const BITS: usize = 1 << 18;
const HASHES: usize = 3;

struct Generation {
    seq: u32,
    bits: Box<[u64; BITS / 64]>,
}

/// Ephemeral keys seen under our two live onion keys.
pub(super) struct BuildFilter {
    key: [u8; 32],
    generations: [Option<Generation>; 2],
}

impl BuildFilter {
    /// An empty filter whose positions are keyed by `key` (so no one can aim at them).
    pub(super) fn new(key: [u8; 32]) -> BuildFilter {
        BuildFilter {
            key,
            generations: [None, None],
        }
    }

    /// Whether `ephemeral` was seen under onion key `seq`; records it if not.
    pub(super) fn check_and_insert(&mut self, seq: u32, ephemeral: &[u8; 32]) -> bool {
        let positions = self.positions(ephemeral);
        let generation = self.generation(seq);
        let seen = positions
            .iter()
            .all(|&p| generation.bits[p / 64] & (1 << (p % 64)) != 0);
        for p in positions {
            generation.bits[p / 64] |= 1 << (p % 64);
        }
        seen
    }

    fn positions(&self, ephemeral: &[u8; 32]) -> [usize; HASHES] {
        let h = hash_labeled::<16>(b"veilmesh build filter v1", &[&self.key, ephemeral]);
        core::array::from_fn(|i| {
            let word = u32::from_le_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]]);
            word as usize % BITS
        })
    }

    /// The generation of `seq`, replacing the older one when `seq` is new.
    fn generation(&mut self, seq: u32) -> &mut Generation {
        let at = match &self.generations {
            [Some(g), _] if g.seq == seq => 0,
            [_, Some(g)] if g.seq == seq => 1,
            [None, _] => 0,
            [_, None] => 1,
            [Some(a), Some(b)] => usize::from(b.seq < a.seq),
        };
        let slot = &mut self.generations[at];
        if slot.as_ref().is_some_and(|g| g.seq != seq) {
            *slot = None;
        }
        slot.get_or_insert_with(|| Generation {
            seq,
            bits: Box::new([0; BITS / 64]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_seen_once_per_onion_key_and_old_generations_go() {
        let mut f = BuildFilter::new([1; 32]);
        assert!(!f.check_and_insert(1, &[7; 32]));
        assert!(f.check_and_insert(1, &[7; 32]));
        assert!(!f.check_and_insert(2, &[7; 32]));
        assert!(!f.check_and_insert(1, &[8; 32]));
        // A third key replaces the oldest generation.
        assert!(!f.check_and_insert(3, &[9; 32]));
        assert!(f.check_and_insert(2, &[7; 32]));
        assert!(!f.check_and_insert(1, &[7; 32]));
    }

    #[test]
    fn false_positives_are_rare() {
        let mut f = BuildFilter::new([2; 32]);
        let key = |i: u32| {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            k
        };
        for i in 0u32..10_000 {
            f.check_and_insert(1, &key(i));
        }
        // Expected about 1.3 in 1000 once 10 000 are in.
        let hits = (10_000u32..11_000)
            .filter(|&i| f.check_and_insert(1, &key(i)))
            .count();
        assert!(hits <= 6, "{hits} false positives in 1000");
    }
}
