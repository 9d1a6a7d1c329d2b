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

    /// Any character of the file replaced by a visible character that is neither
    /// whitespace nor a hex digit makes it unreadable: header, labels, separators and keys
    /// are all checked. (Whitespace and hex-for-hex swaps are not covered: trimmed, or a
    /// different but well-formed key.)
    #[test]
    fn identity_file_with_a_garbled_character_is_an_error(
        seed in any::<u64>(),
        at in any::<usize>(),
        c in "[g-zG-Z!#%&*+,;=?@^_~]",
    ) {
        let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed));
        let mut text: Vec<char> = id.to_file_string().chars().collect();
        let i = at % text.len();
        let c = c.chars().next().unwrap();
        prop_assume!(text[i] != c);
        text[i] = c;
        let garbled: String = text.into_iter().collect();
        prop_assert!(Identity::from_file_str(&garbled).is_err(), "accepted: {:?}", garbled);
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
