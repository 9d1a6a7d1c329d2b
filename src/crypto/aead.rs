//! Transport AEAD after the handshake: ChaCha20-Poly1305 in place with a detached tag.
//!
//! Nonce = `00 00 00 00 || counter (u64 little-endian)`; the associated data is the clear
//! frame header (docs/protocol.md §1.3, §3.6). The cipher is keyed once per key, not per packet.

use core::fmt;

use zeroize::ZeroizeOnDrop;

use veil_cipher::Cipher;

use super::replay::{ReplayError, ReplayWindow, REPLAY_WINDOW};
use crate::wire::TAG_LEN;

/// No key sends or accepts a counter at or above this (so the window arithmetic never wraps).
pub const REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 16);
const _: () = assert!(REJECT_AFTER_MESSAGES < u64::MAX - REPLAY_WINDOW);
const _: () = assert!(veil_cipher::TAG_LEN == TAG_LEN);

/// The send counter reached `REJECT_AFTER_MESSAGES`: this key must not send again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("send counter exhausted, rekey required")]
pub struct CounterExhausted;

/// Sealing failed (only for buffers beyond ChaCha20-Poly1305's 256 GiB limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("plaintext too long to seal")]
pub struct SealError;

/// Why a received frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Replayed or too old (checked before decrypting).
    #[error("replay: {0}")]
    Replay(#[from] ReplayError),
    /// Counter at or beyond `REJECT_AFTER_MESSAGES`.
    #[error("counter beyond the reject limit")]
    CounterTooHigh,
    /// The tag did not verify: wrong key, or tampered header or body.
    #[error("authentication tag did not verify")]
    Decrypt,
}

/// The sending half of a key: cipher plus next counter. `Debug` shows the counter only.
#[derive(Clone)]
pub struct SendKey {
    cipher: Cipher,
    counter: u64,
}

impl SendKey {
    /// A send key starting at counter 0.
    pub fn new(key: &[u8; 32]) -> SendKey {
        SendKey {
            cipher: Cipher::new(key),
            counter: 0,
        }
    }

    /// Reserve the next counter, to be written into the frame header before sealing.
    pub fn next_counter(&mut self) -> Result<u64, CounterExhausted> {
        if self.counter >= REJECT_AFTER_MESSAGES {
            return Err(CounterExhausted);
        }
        let c = self.counter;
        self.counter += 1;
        Ok(c)
    }

    /// Number of counters handed out so far (= messages sent).
    pub fn sent(&self) -> u64 {
        self.counter
    }

    /// Encrypt `buf` in place under `counter` and `aad`; returns the tag to append.
    pub fn seal_in_place(
        &self,
        counter: u64,
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], SealError> {
        self.cipher
            .seal(crate::wire::nonce(counter), aad, buf)
            .map_err(|_| SealError)
    }
}

// The key lives only in the cipher, which zeroizes it when dropped.
impl ZeroizeOnDrop for SendKey {}

impl fmt::Debug for SendKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SendKey(counter={})", self.counter)
    }
}

/// The receiving half of a key: cipher plus replay window. `Debug` hides the key.
#[derive(Clone)]
pub struct RecvKey {
    cipher: Cipher,
    window: ReplayWindow,
}

impl RecvKey {
    /// A receive key with an empty replay window.
    pub fn new(key: &[u8; 32]) -> RecvKey {
        RecvKey {
            cipher: Cipher::new(key),
            window: ReplayWindow::new(),
        }
    }

    /// Check replay, verify and decrypt `buf` in place; the window advances only on success.
    /// On error `buf` holds no plaintext (the ciphertext as it was, or zeros).
    pub fn open_in_place(
        &mut self,
        counter: u64,
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), OpenError> {
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(OpenError::CounterTooHigh);
        }
        self.window.check(counter)?;
        self.cipher
            .open(crate::wire::nonce(counter), aad, buf, tag)
            .map_err(|_| OpenError::Decrypt)?;
        self.window.commit(counter);
        Ok(())
    }

    /// Highest counter accepted so far.
    pub fn last_counter(&self) -> u64 {
        self.window.last()
    }
}

impl ZeroizeOnDrop for RecvKey {}

impl fmt::Debug for RecvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecvKey({:?})", self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [9; 32];

    fn sealed(counter: u64) -> ([u8; 13], [u8; 40], [u8; 16]) {
        let aad = [0x15, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, counter as u8];
        let mut buf = [0x42u8; 40];
        let tag = SendKey::new(&KEY)
            .seal_in_place(counter, &aad, &mut buf)
            .unwrap();
        (aad, buf, tag)
    }

    #[test]
    fn round_trip_in_place() {
        let mut tx = SendKey::new(&KEY);
        let mut rx = RecvKey::new(&KEY);
        for i in 0..3u64 {
            let c = tx.next_counter().unwrap();
            assert_eq!(c, i);
            let mut buf = *b"hello mesh";
            let tag = tx.seal_in_place(c, b"hdr", &mut buf).unwrap();
            assert_ne!(&buf, b"hello mesh");
            rx.open_in_place(c, b"hdr", &mut buf, &tag).unwrap();
            assert_eq!(&buf, b"hello mesh");
        }
        assert_eq!(tx.sent(), 3);
        assert_eq!(rx.last_counter(), 2);
    }

    #[test]
    fn tamper_in_body_aad_tag_or_counter_fails_without_consuming_counter() {
        let (aad, buf, tag) = sealed(7);
        let mut rx = RecvKey::new(&KEY);
        let mut b = buf;
        b[3] ^= 1;
        assert_eq!(
            rx.open_in_place(7, &aad, &mut b, &tag),
            Err(OpenError::Decrypt)
        );
        assert_ne!(b, [0x42; 40], "no plaintext left on failure");
        let mut a = aad;
        a[0] ^= 1;
        assert_eq!(
            rx.open_in_place(7, &a, &mut buf.clone(), &tag),
            Err(OpenError::Decrypt)
        );
        let mut t = tag;
        t[15] ^= 1;
        assert_eq!(
            rx.open_in_place(7, &aad, &mut buf.clone(), &t),
            Err(OpenError::Decrypt)
        );
        assert_eq!(
            rx.open_in_place(8, &aad, &mut buf.clone(), &tag),
            Err(OpenError::Decrypt)
        );
        let wrong = RecvKey::new(&[8; 32]).open_in_place(7, &aad, &mut buf.clone(), &tag);
        assert_eq!(wrong, Err(OpenError::Decrypt));
        // The forged attempts did not mark 7 as seen: the genuine frame still opens, once.
        let mut b = buf;
        assert_eq!(rx.open_in_place(7, &aad, &mut b, &tag), Ok(()));
        assert_eq!(b, [0x42; 40]);
        let again = rx.open_in_place(7, &aad, &mut buf.clone(), &tag);
        assert_eq!(again, Err(OpenError::Replay(ReplayError::Duplicate)));
    }

    #[test]
    fn counter_limits() {
        let mut tx = SendKey::new(&KEY);
        tx.counter = REJECT_AFTER_MESSAGES - 1;
        assert_eq!(tx.next_counter(), Ok(REJECT_AFTER_MESSAGES - 1));
        assert_eq!(tx.next_counter(), Err(CounterExhausted));
        let mut rx = RecvKey::new(&KEY);
        let r = rx.open_in_place(REJECT_AFTER_MESSAGES, b"", &mut [], &[0; 16]);
        assert_eq!(r, Err(OpenError::CounterTooHigh));
    }
}
