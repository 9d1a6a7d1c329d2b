//! A keyed permutation of 96-bit cell nonces: a 4-round Feistel network over two 48-bit
//! halves with HChaCha8 as the round function. A relay's nonce is the permutation of the
//! circuit's cell counter (8 bytes, big-endian) followed by 4 zero bytes; the relay inverts it
//! to get the counter for its replay window, and the zero bytes reject a forged nonce
//! (2^-32) before any AEAD work.

use chacha20::cipher::consts::U4;
use chacha20::cipher::generic_array::GenericArray;
use chacha20::hchacha;
use zeroize::Zeroize;

/// Nonce length (the AEAD's).
pub const NONCE_LEN: usize = 12;
const HALF: usize = NONCE_LEN / 2;
const ROUNDS: u8 = 4;

/// One relay's permutation key for one direction, wiped when dropped.
pub(super) struct NoncePrp([u8; 32]);

impl Drop for NoncePrp {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl NoncePrp {
    /// The permutation under `key`.
    pub(super) fn new(key: &[u8; 32]) -> NoncePrp {
        NoncePrp(*key)
    }

    /// The nonce that carries `counter`.
    pub(super) fn encode(&self, counter: u64) -> [u8; NONCE_LEN] {
        let mut block = [0u8; NONCE_LEN];
        block[..8].copy_from_slice(&counter.to_be_bytes());
        let (mut left, mut right) = split(&block);
        for round in 0..ROUNDS {
            let f = self.round(round, &right);
            let next = xor(&left, &f);
            left = right;
            right = next;
        }
        join(&left, &right)
    }

    /// The counter a nonce carries, or `None` if it is not a permuted counter.
    pub(super) fn decode(&self, nonce: &[u8; NONCE_LEN]) -> Option<u64> {
        let (mut left, mut right) = split(nonce);
        for round in (0..ROUNDS).rev() {
            let prev = xor(&right, &self.round(round, &left));
            right = left;
            left = prev;
        }
        let block = join(&left, &right);
        let (counter, zeros) = block.split_at(8);
        if zeros != [0u8; NONCE_LEN - 8] {
            return None;
        }
        Some(u64::from_be_bytes(super::super::arr(counter)))
    }

    fn round(&self, round: u8, half: &[u8; HALF]) -> [u8; HALF] {
        let mut input = [0u8; 16];
        input[0] = round;
        input[1..=HALF].copy_from_slice(half);
        let out = hchacha::<U4>(
            GenericArray::from_slice(&self.0),
            GenericArray::from_slice(&input),
        );
        super::super::arr(&out[..HALF])
    }
}

fn split(block: &[u8; NONCE_LEN]) -> ([u8; HALF], [u8; HALF]) {
    let (l, r) = block.split_at(HALF);
    (super::super::arr(l), super::super::arr(r))
}

fn join(left: &[u8; HALF], right: &[u8; HALF]) -> [u8; NONCE_LEN] {
    let mut out = [0u8; NONCE_LEN];
    out[..HALF].copy_from_slice(left);
    out[HALF..].copy_from_slice(right);
    out
}

fn xor(a: &[u8; HALF], b: &[u8; HALF]) -> [u8; HALF] {
    let mut out = *a;
    for (o, b) in out.iter_mut().zip(b) {
        *o ^= b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_inverts_encode() {
        let prp = NoncePrp::new(&[7u8; 32]);
        for c in [0u64, 1, 2, 1000, u64::MAX] {
            assert_eq!(prp.decode(&prp.encode(c)), Some(c));
        }
    }

    #[test]
    fn another_key_or_a_flipped_bit_does_not_decode() {
        let a = NoncePrp::new(&[7u8; 32]);
        let b = NoncePrp::new(&[8u8; 32]);
        let n = a.encode(42);
        assert_eq!(b.decode(&n), None);
        for bit in 0..NONCE_LEN * 8 {
            let mut m = n;
            m[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(a.decode(&m), None, "bit {bit}");
        }
    }

    #[test]
    fn consecutive_counters_differ_by_no_constant() {
        let prp = NoncePrp::new(&[9u8; 32]);
        let d1 = xor_all(&prp.encode(1), &prp.encode(2));
        let d2 = xor_all(&prp.encode(2), &prp.encode(3));
        assert_ne!(d1, d2);
    }

    fn xor_all(a: &[u8; NONCE_LEN], b: &[u8; NONCE_LEN]) -> [u8; NONCE_LEN] {
        let mut o = *a;
        for (o, b) in o.iter_mut().zip(b) {
            *o ^= b;
        }
        o
    }
}
