use proptest::prelude::*;

use super::*;
use crate::wire::body::*;
use crate::wire::test_support::{cell, owned, Owned};
use crate::wire::{MessageWriter, UNICAST_PLAINTEXT_LEN};

/// Encode `msgs` into a zeroed buffer; returns the bytes up to the end of the last message.
fn encode(msgs: &[Owned]) -> Vec<u8> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut w = MessageWriter::new(&mut buf);
    for m in msgs {
        m.push(&mut w).unwrap();
    }
    let n = w.len();
    buf.truncate(n);
    buf
}

fn parse_all(bytes: &[u8]) -> Vec<Result<Owned, Error>> {
    MessageIter::new(bytes)
        .map(|r| r.map(|m| Owned::from_message(&m)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn a_cell_fills_a_unicast_plaintext_and_round_trips(c in cell()) {
        let mut buf = [0u8; UNICAST_PLAINTEXT_LEN];
        let mut w = MessageWriter::new(&mut buf);
        c.push(&mut w).unwrap();
        prop_assert_eq!(w.remaining(), 0);
        prop_assert_eq!(parse_all(&buf), vec![Ok(c)]);
    }
}

proptest! {
    #[test]
    fn sequences_round_trip(msgs in proptest::collection::vec(owned(), 0..8), pad in 0usize..50) {
        let mut bytes = encode(&msgs);
        bytes.resize(bytes.len() + pad, 0);
        let parsed = parse_all(&bytes);
        let want: Vec<_> = msgs.iter().cloned().map(Ok).collect();
        prop_assert_eq!(parsed, want);
    }

    #[test]
    fn generic_push_reencodes_identically(msgs in proptest::collection::vec(owned(), 0..8)) {
        let bytes = encode(&msgs);
        let mut again = vec![0u8; bytes.len()];
        let mut w = MessageWriter::new(&mut again);
        for m in MessageIter::new(&bytes) {
            w.push(&m.unwrap()).unwrap();
        }
        prop_assert_eq!(w.remaining(), 0);
        prop_assert_eq!(again, bytes);
    }

    #[test]
    fn strict_prefixes_keep_whole_messages_then_fail_once(
        msgs in proptest::collection::vec(owned(), 1..5),
        cut_frac in 0.0f64..1.0,
    ) {
        let bytes = encode(&msgs);
        let cut = (bytes.len() as f64 * cut_frac) as usize;
        let parsed = parse_all(&bytes[..cut]);
        let ends: Vec<usize> = msgs
            .iter()
            .scan(0, |end, m| {
                *end += encode(core::slice::from_ref(m)).len();
                Some(*end)
            })
            .collect();
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        let want: Vec<_> = msgs[..whole].iter().cloned().map(Ok).collect();
        prop_assert_eq!(&parsed[..whole.min(parsed.len())], &want[..]);
        // Every message type byte is non-zero, so a cut inside a message is a truncation.
        match ends.contains(&cut) || cut == 0 {
            true => prop_assert_eq!(parsed.len(), whole),
            false => {
                prop_assert_eq!(parsed.len(), whole + 1);
                prop_assert_eq!(parsed.last(), Some(&Err(Error::Truncated)));
            }
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn iterating_arbitrary_bytes_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        let results: Vec<_> = MessageIter::new(&bytes).collect();
        let errors = results.iter().filter(|r| r.is_err()).count();
        prop_assert!(errors <= 1);
        if errors == 1 {
            prop_assert!(results.last().is_some_and(|r| r.is_err()), "an error ends the sequence");
        }
        for m in results.into_iter().flatten() {
            if let Message::Ihu(it) = m {
                prop_assert_eq!(it.count(), it.len());
            }
        }
    }
}

/// A message with type `ty` and a zero body of `len` bytes.
fn raw(ty: u8, len: usize) -> Vec<u8> {
    let mut v = vec![ty];
    v.extend_from_slice(&(len as u16).to_be_bytes());
    v.resize(3 + len, 0);
    v
}

#[test]
fn fixed_bodies_must_have_exact_length() {
    let fixed = [
        (0x01, HELLO_BODY_LEN),
        (0x03, OGM_BODY_LEN),
        (0x04, ANNOUNCE_BODY_LEN),
        (0x05, ANNOUNCE_REQUEST_BODY_LEN),
        (0x06, SEQNO_REQUEST_BODY_LEN),
        (0x07, GROUP_KEY_BODY_LEN),
        (0x08, PROBE_BODY_LEN),
        (0x09, PROBE_BODY_LEN),
    ];
    for (ty, len) in fixed {
        let ok = parse_all(&raw(ty, len));
        assert_eq!(ok.len(), 1);
        assert!(ok[0].is_ok(), "type {ty:#x}: {ok:?}");
        for bad in [len - 1, len + 1, 0] {
            let want = Error::BadMessageLength {
                msg_type: ty,
                len: bad,
            };
            assert_eq!(parse_all(&raw(ty, bad)), vec![Err(want)], "type {ty:#x}");
        }
    }
}

#[test]
fn variable_bodies_check_their_structure() {
    let ihu_err = |len| Error::BadMessageLength {
        msg_type: 0x02,
        len,
    };
    assert_eq!(parse_all(&raw(0x02, 7)), vec![Err(ihu_err(7))]);
    assert_eq!(parse_all(&raw(0x02, 17)), vec![Err(ihu_err(17))]);
    assert_eq!(parse_all(&raw(0x02, 0)), vec![Ok(Owned::Ihu(vec![]))]);
    assert_eq!(
        parse_all(&raw(0x0A, 16)),
        vec![Err(Error::BadMessageLength {
            msg_type: 0x0A,
            len: 16
        })]
    );
    let empty_data = Owned::Data(crate::wire::NodeId([0; 16]), 0, vec![]);
    assert_eq!(parse_all(&raw(0x0A, 17)), vec![Ok(empty_data)]);
}

#[test]
fn unknown_type_and_truncation_end_the_sequence() {
    let mut bytes = raw(0x08, 4);
    bytes.extend(raw(0x0F, 0));
    bytes.extend(raw(0x08, 4));
    let got = parse_all(&bytes);
    assert_eq!(
        got,
        vec![Ok(Owned::Probe(0)), Err(Error::UnknownMessageType(0x0F))]
    );
    assert_eq!(parse_all(&[0x08]), vec![Err(Error::Truncated)]);
    assert_eq!(parse_all(&[0x08, 0]), vec![Err(Error::Truncated)]);
    assert_eq!(
        parse_all(&[0x08, 0, 4, 1, 2, 3]),
        vec![Err(Error::Truncated)]
    );
}

#[test]
fn pad_ends_the_sequence_and_must_be_all_zero() {
    assert_eq!(parse_all(&[]), vec![]);
    assert_eq!(parse_all(&[0]), vec![]);
    assert_eq!(parse_all(&[0; UNICAST_PLAINTEXT_LEN]), vec![]);
    let mut bytes = raw(0x09, 4);
    bytes.extend([0, 0, 0]);
    bytes.extend(raw(0x08, 4)); // hidden behind the Pad: a non-zero byte
    assert_eq!(
        parse_all(&bytes),
        vec![Ok(Owned::ProbeAck(0)), Err(Error::NonZeroPadding)]
    );
    // A non-zero Pad length field is non-zero padding.
    assert_eq!(parse_all(&[0, 0, 1]), vec![Err(Error::NonZeroPadding)]);
    assert_eq!(
        parse_all(&[0, 0, 0, 0, 0x80]),
        vec![Err(Error::NonZeroPadding)]
    );
}

#[test]
fn iterator_is_fused_after_error() {
    let bytes = raw(0x0F, 0);
    let mut it = MessageIter::new(&bytes);
    assert_eq!(it.next(), Some(Err(Error::UnknownMessageType(0x0F))));
    assert_eq!(it.next(), None);
    assert_eq!(it.next(), None);
}

#[test]
fn ihu_iter_reads_entries_in_order() {
    let body = [1, 2, 3, 4, 5, 6, 0xFF, 0xFE, 9, 9, 9, 9, 9, 9, 0, 1];
    let it = IhuIter::new(&body).unwrap();
    assert_eq!(it.len(), 2);
    let e: Vec<_> = it.collect();
    assert_eq!(e[0].mac, MacAddr([1, 2, 3, 4, 5, 6]));
    assert_eq!(e[0].rx_quality, 0xFFFE);
    assert_eq!(e[1].mac, MacAddr([9; 6]));
    assert_eq!(e[1].rx_quality, 1);
    assert!(IhuIter::new(&body[..15]).is_none());
}

#[test]
fn spec_test_vector() {
    // docs/protocol.md §2.1: Hello(seq 7, 1 s), Probe(0x01020304), then padding.
    let mut buf = [0xAAu8; 20];
    let mut w = MessageWriter::new(&mut buf);
    w.push_hello(&crate::wire::HelloRepr {
        seq: 7,
        interval_10ms: 100,
    })
    .unwrap();
    w.push_probe(0x0102_0304).unwrap();
    assert_eq!(w.finish_padded(), 20);
    assert_eq!(hex::encode(buf), "0100040007006408000401020304000000000000");
}
