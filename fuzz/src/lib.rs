//! Shared code of the fuzz targets: walking parsed frames and messages to the end (with
//! round-trip checks), and the structure-aware node harness (`harness`).
//!
//! Panicking is the point here: every `assert!` is a property the parsers promise.

pub mod harness;

use std::hint::black_box;

use veilmesh::crypto::aead::RecvKey;
use veilmesh::wire::{
    emit_encrypted_header, emit_handshake, emit_hello, split_tag_mut, EncryptedKind, Frame,
    Message, MessageIter, MessageWriter, FRAME_TAG_LEN, MAX_FRAME_LEN,
};

/// Parse `bytes` as a frame and walk every part of what comes back; check that what parses
/// emits back to the same bytes and parses again the same.
pub fn walk_frame(bytes: &[u8]) {
    let Ok(frame) = Frame::parse(bytes) else {
        return;
    };
    assert!(bytes.len() <= MAX_FRAME_LEN, "accepted an oversized frame");
    let mut buf = [0u8; MAX_FRAME_LEN];
    match frame {
        Frame::Hello { hello, tag } => {
            let len = emit_hello(&hello, &mut buf).expect("a parsed hello emits");
            copy_tag(&mut buf, len, tag.tag);
            // The flags byte is ignored on receipt and sent as 0: only the rest round-trips.
            match Frame::parse(&buf[..len]) {
                Ok(Frame::Hello {
                    hello: again,
                    tag: t,
                }) => {
                    assert_eq!(again, hello);
                    assert_eq!(t.tag, tag.tag);
                }
                other => panic!("a re-emitted hello parses as {other:?}"),
            }
        }
        Frame::Handshake {
            kind,
            sender_idx,
            receiver_idx,
            noise,
            tag,
        } => {
            let len = emit_handshake(kind, sender_idx, receiver_idx, noise, &mut buf)
                .expect("a parsed handshake emits");
            copy_tag(&mut buf, len, tag.tag);
            assert_eq!(Frame::parse(&buf[..len]), Ok(frame));
            // Link-layer padding after the Noise message is all the frame may add.
            assert_eq!(&bytes[..len], &buf[..len]);
        }
        Frame::Unicast(f) | Frame::Broadcast(f) => {
            let kind = f.kind();
            assert_eq!(
                matches!(frame, Frame::Unicast(_)),
                kind == EncryptedKind::Unicast
            );
            let n = emit_encrypted_header(kind, f.index_or_key_id(), f.counter(), &mut buf)
                .expect("a parsed header emits");
            assert_eq!(&buf[..n], f.header());
            assert_eq!(
                f.header().len() + f.ciphertext().len() + f.tag().len(),
                bytes.len()
            );
            // The ciphertext as if it were plaintext, and an open that must fail cleanly.
            walk_messages(f.ciphertext());
            let mut body = f.ciphertext().to_vec();
            let mut key = RecvKey::new(&[0x42; 32]);
            let _ = black_box(key.open_in_place(f.counter(), f.header(), &mut body, f.tag()));
        }
    }
}

/// Put `tag` where the emit functions leave a zero tag.
fn copy_tag(buf: &mut [u8], len: usize, tag: &[u8; FRAME_TAG_LEN]) {
    let (_, at) = split_tag_mut(buf, len).expect("an emitted clear frame has a tag");
    *at = *tag;
}

/// Iterate over the messages of `plaintext` to the end; every message re-encodes and parses
/// back equal.
pub fn walk_messages(plaintext: &[u8]) {
    let mut iter = MessageIter::new(plaintext);
    let mut buf = vec![0u8; plaintext.len().max(64)];
    for item in iter.by_ref() {
        let Ok(msg) = item else {
            continue;
        };
        walk_message(&msg);
        let mut w = MessageWriter::new(&mut buf);
        // The writer may refuse what it would never send (too long a packet): fine.
        if w.push(&msg).is_ok() {
            let len = w.len();
            let mut again = MessageIter::new(&buf[..len]);
            assert_eq!(again.next(), Some(Ok(msg)), "message does not round-trip");
            assert_eq!(again.next(), None);
        }
    }
    // Fused: nothing after the end or the first error.
    assert!(iter.next().is_none());
}

fn walk_message(msg: &Message<'_>) {
    black_box(msg.message_type());
    match msg {
        Message::Ihu(entries) => {
            let n = entries.len();
            assert_eq!((*entries).count(), n);
            for e in *entries {
                black_box(e);
            }
        }
        Message::Data { packet, .. } => {
            // The end-to-end payload a destination reads (docs/protocol.md §7.2).
            if let Ok(payload) = veilmesh::wire::e2e::E2ePayload::parse(packet) {
                black_box(payload);
                let mut copy = packet.to_vec();
                assert!(
                    veilmesh::wire::e2e::split_sealed_mut(&mut copy).is_ok()
                        || !matches!(payload, veilmesh::wire::e2e::E2ePayload::Sealed { .. })
                );
            }
        }
        other => {
            black_box(other);
        }
    }
}
