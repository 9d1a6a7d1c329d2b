//! The ChaCha20-Poly1305 primitive under veilmesh's `SendKey`/`RecvKey`: ring's assembly on x86_64
//! (3× the speed of the RustCrypto code with run-time AVX2 detection there: docs/benchmarks.md
//! section 1), RustCrypto's `chacha20poly1305` everywhere else (no C toolchain for the router
//! targets, and no room in their size budgets) and on x86_64 with `--cfg veil_portable_aead`
//! (to measure the routers' path on the build machine). Both are RFC 8439; `tests` checks one
//! against the other, veilmesh's `tests/crypto_vectors.rs` both against the published vectors.
//!
//! A crate of its own so that this is where the AEAD's generic code is instantiated and
//! optimised (opt-level 3), even when the crate calling it is built for size.

#![deny(unsafe_code)] // one exception: wiping ring's key, which ring does not do itself

/// Length of the Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// Sealing or opening failed (the caller knows which from the call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipherError;

pub use backend::Cipher;

#[cfg(all(target_arch = "x86_64", not(veil_portable_aead)))]
#[allow(unsafe_code)] // one call, in `drop`
mod backend {
    use core::mem::ManuallyDrop;

    use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};

    use super::{CipherError, TAG_LEN};

    // Skipping the key's drop (ManuallyDrop) is sound only while it has nothing to drop.
    const _: () = assert!(!core::mem::needs_drop::<LessSafeKey>());

    /// A ChaCha20-Poly1305 key expanded once, wiped when dropped.
    pub struct Cipher(ManuallyDrop<LessSafeKey>);

    impl Cipher {
        /// The cipher for `key`.
        pub fn new(key: &[u8; 32]) -> Cipher {
            match UnboundKey::new(&CHACHA20_POLY1305, key) {
                Ok(k) => Cipher(ManuallyDrop::new(LessSafeKey::new(k))),
                Err(_) => unreachable_key(),
            }
        }

        /// Encrypt `buf` in place under `nonce` and `aad`; the tag is returned.
        pub fn seal(
            &self,
            nonce: [u8; 12],
            aad: &[u8],
            buf: &mut [u8],
        ) -> Result<[u8; TAG_LEN], CipherError> {
            let tag = self
                .0
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    buf,
                )
                .map_err(|_| CipherError)?;
            let mut out = [0; TAG_LEN];
            out.copy_from_slice(tag.as_ref());
            Ok(out)
        }

        /// Verify and decrypt `buf` in place; on failure ring zeroes `buf`, so no
        /// unauthenticated plaintext is ever left in it.
        pub fn open(
            &self,
            nonce: [u8; 12],
            aad: &[u8],
            buf: &mut [u8],
            tag: &[u8; TAG_LEN],
        ) -> Result<(), CipherError> {
            self.0
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    Tag::from(*tag),
                    buf,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| CipherError)
        }
    }

    impl Clone for Cipher {
        fn clone(&self) -> Cipher {
            Cipher(ManuallyDrop::new(LessSafeKey::clone(&self.0)))
        }
    }

    impl Drop for Cipher {
        fn drop(&mut self) {
            let key: *mut LessSafeKey = &mut *self.0;
            // SAFETY: the key is plain data owned by `self` (no heap, nothing to drop: the
            // assertion above), is never read again, and is not dropped after this
            // (ManuallyDrop), so an all-zero value is never used as a `LessSafeKey`.
            unsafe { zeroize::zeroize_flat_type(key) }
        }
    }

    /// ring rejected a 32-byte ChaCha20 key, which it never does.
    #[cold]
    fn unreachable_key() -> ! {
        // A refusal here would mean a broken ring build: nothing can be sealed safely.
        std::process::abort()
    }
}

#[cfg(any(not(target_arch = "x86_64"), veil_portable_aead))]
mod backend {
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Tag};

    use super::{CipherError, TAG_LEN};

    /// A ChaCha20-Poly1305 key expanded once (the crate wipes it when dropped).
    #[derive(Clone)]
    pub struct Cipher(ChaCha20Poly1305);

    impl Cipher {
        /// The cipher for `key`.
        pub fn new(key: &[u8; 32]) -> Cipher {
            Cipher(ChaCha20Poly1305::new(key.into()))
        }

        /// Encrypt `buf` in place under `nonce` and `aad`; the tag is returned.
        pub fn seal(
            &self,
            nonce: [u8; 12],
            aad: &[u8],
            buf: &mut [u8],
        ) -> Result<[u8; TAG_LEN], CipherError> {
            let tag = self
                .0
                .encrypt_in_place_detached(&nonce.into(), aad, buf)
                .map_err(|_| CipherError)?;
            Ok(tag.into())
        }

        /// Verify, then decrypt `buf` in place; on failure `buf` is left as it was.
        pub fn open(
            &self,
            nonce: [u8; 12],
            aad: &[u8],
            buf: &mut [u8],
            tag: &[u8; TAG_LEN],
        ) -> Result<(), CipherError> {
            self.0
                .decrypt_in_place_detached(&nonce.into(), aad, buf, Tag::from_slice(tag))
                .map_err(|_| CipherError)
        }
    }
}

#[cfg(all(test, target_arch = "x86_64", not(veil_portable_aead)))]
mod tests {
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Tag};
    use proptest::prelude::*;

    use super::Cipher;

    proptest! {
        /// ring (this build's backend) and RustCrypto (the routers') agree byte for byte.
        #[test]
        fn the_x86_64_backend_matches_the_router_backend(
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 12]>(),
            aad in proptest::collection::vec(any::<u8>(), 0..64),
            plain in proptest::collection::vec(any::<u8>(), 0..1600),
        ) {
            let ours = Cipher::new(&key);
            let theirs = ChaCha20Poly1305::new(&key.into());
            let mut a = plain.clone();
            let mut b = plain.clone();
            let tag = ours.seal(nonce, &aad, &mut a).unwrap();
            let their_tag = theirs.encrypt_in_place_detached(&nonce.into(), &aad, &mut b).unwrap();
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(&tag[..], their_tag.as_slice());
            theirs.decrypt_in_place_detached(&nonce.into(), &aad, &mut b, Tag::from_slice(&tag)).unwrap();
            prop_assert_eq!(&b, &plain);
            ours.open(nonce, &aad, &mut a, &tag).unwrap();
            prop_assert_eq!(&a, &plain);
        }
    }

    #[test]
    fn a_failed_open_leaves_no_plaintext_behind() {
        let c = Cipher::new(&[3; 32]);
        let mut buf = [0x42u8; 100];
        let mut tag = c.seal([1; 12], b"h", &mut buf).unwrap();
        tag[0] ^= 1;
        assert!(c.open([1; 12], b"h", &mut buf, &tag).is_err());
        assert!(
            buf.iter().all(|&b| b != 0x42),
            "no plaintext byte left: {buf:?}"
        );
    }
}
