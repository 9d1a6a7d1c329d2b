use proptest::prelude::*;

use super::*;
use crate::wire::body::MAX_DATA_PACKET_LEN;
use crate::wire::test_support::{owned, Owned};
use crate::wire::{
    MessageIter, BROADCAST_FRAME_LENS, MIN_ENCRYPTED_FRAME_LEN, UNICAST_PLAINTEXT_LEN,
};

/// Encoded length of one message.
fn encoded_len(m: &Owned) -> usize {
    let mut buf = vec![0u8; 4096];
    let mut w = MessageWriter::new(&mut buf);
    m.push(&mut w).unwrap();
    w.len()
}

proptest! {
    #[test]
    fn exact_fit_works_and_one_byte_less_writes_nothing(m in owned(), earlier in any::<bool>()) {
        let need = encoded_len(&m);
        let prefix = if earlier { 7 } else { 0 };
        let mut exact = vec![0xAAu8; prefix + need];
        let mut w = MessageWriter::new(&mut exact);
        if earlier {
            w.push_probe(1).unwrap();
        }
        prop_assert!(m.push(&mut w).is_ok());
        prop_assert_eq!(w.len(), prefix + need);
        prop_assert_eq!(w.remaining(), 0);

        let mut short = vec![0xAAu8; need - 1];
        let mut w = MessageWriter::new(&mut short);
        prop_assert_eq!(m.push(&mut w), Err(Error::NoSpace));
        prop_assert_eq!(w.len(), 0);
        let padded = broadcast_plaintext_len(0).min(need - 1);
        prop_assert_eq!(w.finish(), padded);
        prop_assert!(short.iter().skip(padded).all(|&b| b == 0xAA));
    }
}

#[test]
fn failed_push_leaves_earlier_messages_intact() {
    let mut buf = [0xAAu8; 20];
    let mut w = MessageWriter::new(&mut buf);
    w.push_probe(7).unwrap();
    assert_eq!(
        w.push_announce_request(&NodeId([1; 16])),
        Err(Error::NoSpace)
    );
    assert_eq!(w.len(), 7);
    w.push_probe_ack(8).unwrap();
    assert_eq!(w.remaining(), 6);
    assert_eq!(w.finish_padded(), 20);
    assert_eq!(buf[14..], [0; 6]);
    let got: Vec<_> = MessageIter::new(&buf).collect();
    assert_eq!(got, vec![Ok(Message::Probe(7)), Ok(Message::ProbeAck(8))]);
}

#[test]
fn largest_data_packet_fills_a_unicast_plaintext_exactly() {
    let dst = NodeId([3; 16]);
    let packet = [0x45u8; MAX_DATA_PACKET_LEN];
    let mut buf = [0u8; UNICAST_PLAINTEXT_LEN];
    let mut w = MessageWriter::new(&mut buf);
    assert_eq!(
        w.push_data(dst, 9, &[0; MAX_DATA_PACKET_LEN + 1]),
        Err(Error::NoSpace)
    );
    w.push_data(dst, 9, &packet).unwrap();
    assert_eq!(w.remaining(), 0);
    let got: Vec<_> = MessageIter::new(&buf).collect();
    let want = Message::Data {
        dst,
        ttl: 9,
        packet: &packet,
    };
    assert_eq!(got, vec![Ok(want)]);
}

#[test]
fn zero_copy_data_matches_copying_push() {
    let dst = NodeId([4; 16]);
    let packet: Vec<u8> = (0..100u8).collect();
    let mut a = [0u8; 300];
    let mut w = MessageWriter::new(&mut a);
    w.push_probe(1).unwrap();
    let area = w.data_area_mut();
    assert_eq!(area.len(), 300 - 7 - 20);
    area[..100].copy_from_slice(&packet);
    assert_eq!(w.commit_data(dst, 3, 274), Err(Error::NoSpace));
    w.commit_data(dst, 3, 100).unwrap();
    let n = w.finish();

    let mut b = [0u8; 300];
    let mut w = MessageWriter::new(&mut b);
    w.push_probe(1).unwrap();
    w.push_data(dst, 3, &packet).unwrap();
    assert_eq!(w.finish(), n);
    assert_eq!(a[..n], b[..n]);

    let mut tiny = [0u8; 19];
    assert!(MessageWriter::new(&mut tiny).data_area_mut().is_empty());
}

#[test]
fn ihu_capacity_is_what_fits() {
    let entries = [IhuEntry {
        mac: crate::wire::MacAddr([1; 6]),
        rx_quality: 5,
    }; 10];
    let mut buf = [0u8; 3 + 8 * 4 + 7];
    let mut w = MessageWriter::new(&mut buf);
    assert_eq!(w.ihu_capacity(), 4);
    assert_eq!(w.push_ihu(&entries[..5]), Err(Error::NoSpace));
    w.push_ihu(&entries[..4]).unwrap();
    assert_eq!(w.ihu_capacity(), 0);
    w.push_ihu(&[]).unwrap();
    let msgs: Vec<_> = MessageIter::new(&buf).collect();
    assert_eq!(msgs.len(), 2);
    let Ok(Message::Ihu(it)) = msgs[0] else {
        panic!("not an IHU: {msgs:?}");
    };
    assert_eq!(it.collect::<Vec<_>>(), entries[..4].to_vec());
}

#[test]
fn oversized_bodies_are_refused_not_truncated() {
    let mut buf = vec![0u8; 70_000];
    let mut w = MessageWriter::new(&mut buf);
    let packet = vec![0u8; usize::from(u16::MAX) - 16];
    assert_eq!(
        w.push_data(NodeId::default(), 1, &packet),
        Err(Error::BadMessageLength {
            msg_type: 0x0A,
            len: usize::from(u16::MAX) + 1
        })
    );
    assert_eq!(
        w.commit_data(NodeId::default(), 1, packet.len()),
        Err(Error::BadMessageLength {
            msg_type: 0x0A,
            len: usize::from(u16::MAX) + 1
        })
    );
    assert_eq!(w.len(), 0);
    w.push_data(NodeId::default(), 1, &packet[1..]).unwrap();
    assert_eq!(w.len(), 3 + usize::from(u16::MAX));
}

#[test]
fn finish_pads_broadcast_to_its_size_class_and_unicast_to_the_end() {
    let classes = BROADCAST_FRAME_LENS.map(|f| f - MIN_ENCRYPTED_FRAME_LEN);
    assert_eq!(classes, [35, 51, 99, 227, 1471]);
    let mut buf = [0xAAu8; 1471];
    let w = MessageWriter::new(&mut buf);
    assert_eq!(
        w.finish(),
        35,
        "even an empty broadcast has the smallest size"
    );
    assert!(buf[..35].iter().all(|&b| b == 0));
    assert_eq!(buf[35], 0xAA);

    // One OGM fills the second class; a few bytes more take the third.
    let ogm = OgmRepr {
        node: NodeId([1; 16]),
        epoch: 1,
        seqno: 2,
        metric: 3,
        ttl: 4,
        flags: 0,
        chain: [5; 16],
    };
    let mut buf = [0xAAu8; 1471];
    let mut w = MessageWriter::new(&mut buf);
    w.push_ogm(&ogm).unwrap();
    assert_eq!(
        w.finish(),
        51,
        "a 50-byte OGM message fills the smallest class"
    );
    let mut buf = [0xAAu8; 1471];
    let mut w = MessageWriter::new(&mut buf);
    w.push_ogm(&ogm).unwrap();
    w.push_probe(1).unwrap();
    assert_eq!(w.finish(), 99);
    assert!(buf[57..99].iter().all(|&b| b == 0));
    assert_eq!(buf[99], 0xAA);
    // Past the middle class: the whole frame.
    let mut buf = [0xAAu8; 1471];
    let mut w = MessageWriter::new(&mut buf);
    for _ in 0..5 {
        w.push_ogm(&ogm).unwrap();
    }
    assert_eq!(w.finish(), 1471);

    let mut buf = [0xAAu8; 40];
    assert_eq!(MessageWriter::new(&mut buf).finish_padded(), 40);
    assert_eq!(buf, [0; 40]);
}

/// A unicast plaintext as a sender writes it: Data, then a Probe, then zeros.
fn sent_plaintext(packet: &[u8], ttl: u8, probe: u32) -> Vec<u8> {
    let mut buf = vec![0u8; UNICAST_PLAINTEXT_LEN];
    let mut w = MessageWriter::new(&mut buf);
    w.push_data(NodeId([7; 16]), ttl, packet).unwrap();
    match w.push_probe(probe) {
        Ok(()) | Err(Error::NoSpace) => {}
        Err(e) => panic!("{e}"),
    }
    w.finish_padded();
    buf
}

proptest! {
    #[test]
    fn relaying_in_place_equals_writing_the_frame_afresh(
        packet in proptest::collection::vec(any::<u8>(), 0..=MAX_DATA_PACKET_LEN),
        probe_in in any::<u32>(),
        probe_out in any::<u32>(),
        ttl in 1u8..=255,
    ) {
        let mut relayed = sent_plaintext(&packet, 64, probe_in);
        relay_data_in_place(&mut relayed, ttl, probe_out).unwrap();
        prop_assert_eq!(relayed, sent_plaintext(&packet, ttl, probe_out));
    }

    #[test]
    fn relaying_arbitrary_bytes_never_panics(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..1600),
    ) {
        let _ = relay_data_in_place(&mut bytes, 3, 9);
    }
}

#[test]
fn only_a_whole_leading_data_message_is_relayed_in_place() {
    // A Probe first: not a Data message.
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf);
    w.push_probe(1).unwrap();
    w.finish_padded();
    let before = buf;
    assert!(matches!(
        relay_data_in_place(&mut buf, 3, 9),
        Err(Error::BadMessageLength { msg_type: 0x08, .. })
    ));
    assert_eq!(buf, before, "a refused plaintext is left alone");
    // A Data message whose length runs past the plaintext.
    let mut buf = sent_plaintext(&[1; 100], 5, 1);
    buf.truncate(50);
    assert_eq!(relay_data_in_place(&mut buf, 3, 9), Err(Error::Truncated));
    // A Data body shorter than its header.
    let mut buf = [0x0A, 0, 16, 0, 0];
    assert!(relay_data_in_place(&mut buf, 3, 9).is_err());
    assert!(relay_data_in_place(&mut [], 3, 9).is_err());
}
