use proptest::prelude::*;

use super::*;
use crate::wire::test_support::hello;
use crate::wire::{MessageIter, MessageWriter, UNICAST_PLAINTEXT_LEN};

fn handshake_kind() -> impl Strategy<Value = HandshakeKind> {
    prop_oneof![
        Just(HandshakeKind::Init),
        Just(HandshakeKind::Resp),
        Just(HandshakeKind::Finish)
    ]
}

/// Valid (sender, receiver) indices for `kind`.
fn indices(kind: HandshakeKind, s: u32, r: u32) -> (u32, u32) {
    let s = s.max(1);
    match kind {
        HandshakeKind::Init => (s, 0),
        _ => (s, r.max(1)),
    }
}

/// A whole encrypted frame with the given plaintext copied in and a recognisable tag.
fn encrypted(kind: EncryptedKind, idx: u32, ctr: u64, plaintext: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; encrypted_frame_len(plaintext.len())];
    assert_eq!(emit_encrypted_header(kind, idx, ctr, &mut buf), Ok(13));
    let parts = split_encrypted_mut(&mut buf).unwrap();
    parts.body.copy_from_slice(plaintext);
    parts.tag.fill(0xEE);
    buf
}

proptest! {
    #[test]
    fn hello_round_trips(h in hello(), pad in 0usize..40) {
        let mut buf = [0x55u8; HELLO_FRAME_LEN + 40];
        prop_assert_eq!(emit_hello(&h, &mut buf), Ok(HELLO_FRAME_LEN));
        prop_assert_eq!(buf[1], 0, "flags are sent as 0");
        // The tag is carried (zero until the node seals it); link-layer padding after it
        // is ignored.
        let tag = TagParts { covered: &buf[..CLEAR_HELLO_BODY_LEN], tag: &[0; FRAME_TAG_LEN] };
        let want = Frame::Hello { hello: h, tag };
        prop_assert_eq!(Frame::parse(&buf[..HELLO_FRAME_LEN + pad]), Ok(want));
        for cut in 0..HELLO_FRAME_LEN {
            prop_assert_eq!(Frame::parse(&buf[..cut]), Err(Error::Truncated));
        }
    }

    #[test]
    fn handshake_round_trips(
        kind in handshake_kind(),
        s in any::<u32>(),
        r in any::<u32>(),
        noise in proptest::collection::vec(any::<u8>(), 0..200),
        pad in 0usize..40,
    ) {
        let (s, r) = indices(kind, s, r);
        let mut buf = vec![0x55u8; HANDSHAKE_HEADER_LEN + noise.len() + FRAME_TAG_LEN + pad];
        let n = emit_handshake(kind, s, r, &noise, &mut buf).unwrap();
        prop_assert_eq!(n, HANDSHAKE_HEADER_LEN + noise.len() + FRAME_TAG_LEN);
        let covered = &buf[..HANDSHAKE_HEADER_LEN + noise.len()];
        let tag = TagParts { covered, tag: &[0; FRAME_TAG_LEN] };
        let want = Frame::Handshake { kind, sender_idx: s, receiver_idx: r, noise: &noise, tag };
        prop_assert_eq!(Frame::parse(&buf), Ok(want));
        for cut in 0..n {
            prop_assert_eq!(Frame::parse(&buf[..cut]), Err(Error::Truncated));
        }
    }

    #[test]
    fn encrypted_round_trips(
        unicast in any::<bool>(),
        idx in 1u32..,
        ctr in any::<u64>(),
        body in proptest::collection::vec(any::<u8>(), 0..MAX_BROADCAST_PLAINTEXT_LEN),
    ) {
        let (kind, body) = match unicast {
            true => (EncryptedKind::Unicast, {
                let mut b = body.clone();
                b.resize(UNICAST_PLAINTEXT_LEN, 0);
                b
            }),
            false => (EncryptedKind::Broadcast, body),
        };
        let buf = encrypted(kind, idx, ctr, &body);
        let f = match Frame::parse(&buf).unwrap() {
            Frame::Unicast(f) if unicast => f,
            Frame::Broadcast(f) if !unicast => f,
            other => panic!("wrong frame {other:?}"),
        };
        prop_assert_eq!(f.kind(), kind);
        prop_assert_eq!(f.index_or_key_id(), idx);
        prop_assert_eq!(f.counter(), ctr);
        prop_assert_eq!(f.ciphertext(), &body[..]);
        prop_assert_eq!(f.tag(), &[0xEE; TAG_LEN]);
        prop_assert_eq!(&f.header()[..], &buf[..ENCRYPTED_HEADER_LEN]);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = Frame::parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_valid_type_bytes(
        first in 0x11u8..=0x16,
        rest in proptest::collection::vec(any::<u8>(), 0..1600),
    ) {
        let mut bytes = rest;
        bytes.insert(0, first);
        let _ = Frame::parse(&bytes);
    }
}

#[test]
fn zero_copy_handshake_matches_copying_emit() {
    let noise = [7u8; 48];
    let mut a = [0u8; 100];
    let area = handshake_noise_mut(&mut a);
    assert_eq!(area.len(), 100 - HANDSHAKE_HEADER_LEN - FRAME_TAG_LEN);
    area[..48].copy_from_slice(&noise);
    let n = emit_handshake_header(HandshakeKind::Resp, 9, 3, 48, &mut a).unwrap();
    let mut b = [0u8; 100];
    assert_eq!(
        emit_handshake(HandshakeKind::Resp, 9, 3, &noise, &mut b),
        Ok(n)
    );
    assert_eq!(a[..n], b[..n]);
    assert_eq!(a[..11], [0x13, 0, 0, 0, 9, 0, 0, 0, 3, 0, 48]);
    assert_eq!(handshake_noise_mut(&mut [0u8; 10]).len(), 0);
    assert_eq!(handshake_noise_mut(&mut [0u8; 2000]).len(), MAX_NOISE_LEN);
}

#[test]
fn handshake_index_rules() {
    let mut buf = [0u8; 64];
    use HandshakeKind::*;
    for (kind, s, r) in [(Init, 0, 0), (Init, 1, 1), (Resp, 1, 0), (Finish, 0, 1)] {
        assert_eq!(
            emit_handshake(kind, s, r, &[], &mut buf),
            Err(Error::BadIndex)
        );
        // The same header built by hand is rejected on parse.
        buf[..11].copy_from_slice(&[kind.type_byte(), 0, 0, 0, s as u8, 0, 0, 0, r as u8, 0, 0]);
        assert_eq!(
            Frame::parse(&buf[..11 + FRAME_TAG_LEN]),
            Err(Error::BadIndex)
        );
    }
}

#[test]
fn exact_buffers_fit_and_one_less_does_not() {
    let h = HelloRepr {
        seq: 1,
        interval_10ms: 2,
    };
    assert_eq!(emit_hello(&h, &mut [0; HELLO_FRAME_LEN]), Ok(22));
    assert_eq!(
        emit_hello(&h, &mut [0; HELLO_FRAME_LEN - 1]),
        Err(Error::NoSpace)
    );

    let noise = [1u8; 32];
    let k = HandshakeKind::Init;
    assert_eq!(emit_handshake(k, 5, 0, &noise, &mut [0; 59]), Ok(59));
    assert_eq!(
        emit_handshake(k, 5, 0, &noise, &mut [0; 58]),
        Err(Error::NoSpace)
    );
    assert_eq!(
        emit_handshake_header(k, 5, 0, 32, &mut [0; 58]),
        Err(Error::NoSpace)
    );
    let too_long = MAX_NOISE_LEN + 1;
    assert_eq!(
        emit_handshake_header(k, 5, 0, too_long, &mut [0; 2000]),
        Err(Error::BadFrameLength(MAX_FRAME_LEN + 1))
    );

    let u = EncryptedKind::Unicast;
    assert_eq!(emit_encrypted_header(u, 1, 2, &mut [0; 13]), Ok(13));
    assert_eq!(
        emit_encrypted_header(u, 1, 2, &mut [0; 12]),
        Err(Error::NoSpace)
    );
    assert_eq!(
        emit_encrypted_header(u, 0, 2, &mut [0; 13]),
        Err(Error::BadIndex)
    );
    let b = EncryptedKind::Broadcast;
    assert_eq!(emit_encrypted_header(b, 0, 2, &mut [0; 13]), Ok(13));

    assert_eq!(
        plaintext_area_mut(u, &mut [0; 1500]).map(|a| a.len()),
        Ok(1471)
    );
    assert_eq!(plaintext_area_mut(u, &mut [0; 1499]), Err(Error::NoSpace));
    assert_eq!(
        plaintext_area_mut(b, &mut [0; 2000]).map(|a| a.len()),
        Ok(1471)
    );
    assert_eq!(plaintext_area_mut(b, &mut [0; 29]).map(|a| a.len()), Ok(0));
    assert_eq!(plaintext_area_mut(b, &mut [0; 28]), Err(Error::NoSpace));
}

#[test]
fn bad_first_bytes_and_lengths() {
    assert_eq!(Frame::parse(&[]), Err(Error::Truncated));
    assert_eq!(
        Frame::parse(&[0x21, 0, 0, 0, 0, 0]),
        Err(Error::BadVersion(2))
    );
    assert_eq!(Frame::parse(&[0x05; 6]), Err(Error::BadVersion(0)));
    assert_eq!(Frame::parse(&[0x10; 6]), Err(Error::UnknownFrameType(0x10)));
    assert_eq!(Frame::parse(&[0x17; 6]), Err(Error::UnknownFrameType(0x17)));
    let mut long = vec![0u8; MAX_FRAME_LEN + 1];
    long[0] = 0x11;
    assert_eq!(Frame::parse(&long), Err(Error::BadFrameLength(1501)));

    let unicast = encrypted(EncryptedKind::Unicast, 4, 9, &[0; UNICAST_PLAINTEXT_LEN]);
    for cut in [0, 1, 13, 28, 29, 1499] {
        let want = match cut {
            0 => Error::Truncated,
            n => Error::BadFrameLength(n),
        };
        assert_eq!(Frame::parse(&unicast[..cut]), Err(want));
    }
    let mut zero_idx = unicast.clone();
    zero_idx[1..5].fill(0);
    assert_eq!(Frame::parse(&zero_idx), Err(Error::BadIndex));
}

#[test]
fn broadcast_prefixes_are_rejected_or_parse_consistently() {
    let buf = encrypted(EncryptedKind::Broadcast, 0, 77, &[3; 40]);
    for cut in 0..buf.len() {
        match Frame::parse(&buf[..cut]) {
            Err(Error::Truncated) => assert_eq!(cut, 0),
            Err(e) => {
                assert!(cut < MIN_ENCRYPTED_FRAME_LEN);
                assert_eq!(e, Error::BadFrameLength(cut));
            }
            Ok(Frame::Broadcast(f)) => {
                // Same header; the last 16 bytes are read as the tag, so AEAD will reject it.
                assert!(cut >= MIN_ENCRYPTED_FRAME_LEN);
                assert_eq!(&f.header()[..], &buf[..13]);
                assert_eq!(f.ciphertext().len(), cut - MIN_ENCRYPTED_FRAME_LEN);
            }
            Ok(other) => panic!("prefix parsed as {other:?}"),
        }
    }
}

#[test]
fn nonce_is_counter_little_endian_after_four_zero_bytes() {
    assert_eq!(
        nonce(0x0102_0304_0506_0708),
        [0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]
    );
}

#[test]
fn unicast_built_in_place_parses_back_to_its_messages() {
    let mut buf = [0xAAu8; UNICAST_FRAME_LEN];
    emit_encrypted_header(EncryptedKind::Unicast, 42, 7, &mut buf).unwrap();
    let mut w = MessageWriter::new(plaintext_area_mut(EncryptedKind::Unicast, &mut buf).unwrap());
    w.push_probe(5).unwrap();
    assert_eq!(w.finish_padded(), UNICAST_PLAINTEXT_LEN);
    let parts = split_encrypted_mut(&mut buf).unwrap();
    assert_eq!(parts.body.len(), UNICAST_PLAINTEXT_LEN);
    parts.tag.fill(1); // stands in for sealing
    let Ok(Frame::Unicast(f)) = Frame::parse(&buf) else {
        panic!("not a unicast frame");
    };
    let msgs: Vec<_> = MessageIter::new(f.ciphertext()).collect();
    assert_eq!(msgs, vec![Ok(crate::wire::Message::Probe(5))]);
}

#[test]
fn broadcast_finish_pads_frames_to_the_smallest_class_above_ethernet_minimum() {
    let mut buf = [0xAAu8; MAX_FRAME_LEN];
    emit_encrypted_header(EncryptedKind::Broadcast, 3, 1, &mut buf).unwrap();
    let mut w = MessageWriter::new(plaintext_area_mut(EncryptedKind::Broadcast, &mut buf).unwrap());
    w.push_probe(5).unwrap();
    let len = encrypted_frame_len(w.finish());
    assert_eq!(len, crate::wire::BROADCAST_FRAME_LENS[0]);
    assert!(len >= MIN_FRAME_LEN);
    let parts = split_encrypted_mut(&mut buf[..len]).unwrap();
    assert_eq!(parts.body[7..], [0; 28]);
    assert_eq!(
        split_encrypted_mut(&mut [0; 28]).err(),
        Some(Error::BadFrameLength(28))
    );
    assert_eq!(
        split_encrypted_mut(&mut [0; 1501]).err(),
        Some(Error::BadFrameLength(1501))
    );
}

#[test]
fn spec_test_vectors() {
    // docs/protocol.md §1.5.
    let mut buf = [0u8; 64];
    let h = HelloRepr {
        seq: 7,
        interval_10ms: 100,
    };
    let n = emit_hello(&h, &mut buf).unwrap();
    // Tags are zero until the node seals them (its test vectors: docs/protocol.md §3.9).
    let zero_tag = "00".repeat(FRAME_TAG_LEN);
    assert_eq!(hex::encode(&buf[..n]), format!("110000070064{zero_tag}"));
    let n = emit_handshake(HandshakeKind::Init, 0x0A0B_0C0D, 0, &[0xEE; 2], &mut buf).unwrap();
    assert_eq!(
        hex::encode(&buf[..n]),
        format!("120a0b0c0d000000000002eeee{zero_tag}")
    );
    let n = emit_encrypted_header(EncryptedKind::Broadcast, 5, 0x0102, &mut buf).unwrap();
    assert_eq!(hex::encode(&buf[..n]), "16000000050000000000000102");
    assert_eq!(hex::encode(nonce(0x0102)), "000000000201000000000000");
}
