//! Property tests: every crypto parser rejects arbitrary input with an error, never a panic.

use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::{Announcement, ChainVerifier, Identity, MeshPsk, Responder};
use crate::wire::ANNOUNCE_LEN;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn identity_file_parser_never_panics(text in ".{0,400}") {
        let _ = Identity::from_file_str(&text);
    }

    #[test]
    fn identity_file_with_garbled_lines_is_an_error(seed in any::<u64>(), at in any::<usize>(), c in any::<char>()) {
        let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed));
        let mut text: Vec<char> = id.to_file_string().chars().collect();
        let i = at % text.len();
        prop_assume!(text[i] != c && !(text[i].is_ascii_hexdigit() && c.is_ascii_hexdigit()));
        text[i] = c;
        let garbled: String = text.into_iter().collect();
        // Either rejected, or (a changed hex digit in the other case) a different identity.
        if let Ok(other) = Identity::from_file_str(&garbled) {
            prop_assert_ne!(other.public(), id.public());
        }
    }

    #[test]
    fn arbitrary_announcements_do_not_verify(bytes in proptest::collection::vec(any::<u8>(), ANNOUNCE_LEN)) {
        let arr: [u8; ANNOUNCE_LEN] = bytes.try_into().unwrap();
        prop_assert!(Announcement::parse_and_verify(&arr).is_err());
        let _ = Announcement::unverified_order(&arr);
    }

    #[test]
    fn arbitrary_handshake_messages_are_refused(msg in proptest::collection::vec(any::<u8>(), 0..300)) {
        let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let psk = MeshPsk::derive(b"veilmesh", None);
        let mut out = [0u8; 300];
        prop_assert!(Responder::respond(&id, &psk, [7; 32], &msg, &mut out).is_err());
    }

    #[test]
    fn chain_verifier_never_panics(anchor in any::<[u8; 16]>(), start in any::<u32>(), len in 1u16..=8192, seqno in any::<u32>(), elem in any::<[u8; 16]>()) {
        if let Ok(mut v) = ChainVerifier::new(anchor, start, len) {
            let _ = v.verify(seqno, &elem);
        }
    }
}
