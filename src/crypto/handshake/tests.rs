use super::*;

fn id(n: u8) -> Identity {
    Identity::from_secrets([n; 32], [n.wrapping_add(100); 32])
}

fn psk() -> MeshPsk {
    MeshPsk::derive(b"testmesh", Some(b"secret"))
}

struct Run {
    init: Result<Established, HandshakeError>,
    resp: Result<Established, HandshakeError>,
}

/// Runs a full handshake between id(1) (initiator) and id(2), with optional tampering.
fn run(ipsk: &MeshPsk, rpsk: &MeshPsk, ipol: &AcceptPolicy, rpol: &AcceptPolicy) -> Run {
    let (mut m1, mut m2, mut m3) = ([0u8; 256], [0u8; 256], [0u8; 256]);
    let (mut i, n1) = Initiator::new(&id(1), ipsk, [11; 32], 1, &mut m1).unwrap();
    let (mut r, n2) = match Responder::respond(&id(2), rpsk, [22; 32], &m1[..n1], &mut m2) {
        Ok(x) => x,
        Err(e) => {
            return Run {
                init: Err(HandshakeError::Internal),
                resp: Err(e),
            }
        }
    };
    let (est_i, n3) = match i.finish(&m2[..n2], &mut m3, ipol) {
        Ok(x) => x,
        Err(e) => {
            return Run {
                init: Err(e),
                resp: Err(HandshakeError::Internal),
            }
        }
    };
    Run {
        init: Ok(est_i),
        resp: r.finish(&m3[..n3], rpol),
    }
}

#[test]
fn handshake_succeeds_and_keys_cross() {
    let open = AcceptPolicy::Open;
    let run = run(&psk(), &psk(), &open, &open);
    let (i, r) = (run.init.unwrap(), run.resp.unwrap());
    assert_eq!(i.peer, id(2).public());
    assert_eq!(r.peer, id(1).public());
    assert_eq!(i.send_key, r.recv_key);
    assert_eq!(i.recv_key, r.send_key);
    assert_ne!(i.send_key, i.recv_key);
    assert_eq!(i.handshake_hash, r.handshake_hash);
    assert!(i.initiator && !r.initiator);
}

#[test]
fn message_lengths_match_constants() {
    let (mut m1, mut m2, mut m3) = ([0u8; 256], [0u8; 256], [0u8; 256]);
    let (mut i, n1) = Initiator::new(&id(1), &psk(), [1; 32], 1, &mut m1).unwrap();
    let (mut r, n2) = Responder::respond(&id(2), &psk(), [2; 32], &m1[..n1], &mut m2).unwrap();
    let (_, n3) = i.finish(&m2[..n2], &mut m3, &AcceptPolicy::Open).unwrap();
    assert_eq!((n1, n2, n3), (MSG1_LEN, MSG2_LEN, MSG3_LEN));
    assert!(r.finish(&m3[..n3], &AcceptPolicy::Open).is_ok());
}

#[test]
fn wrong_psk_fails_at_msg1() {
    let other = MeshPsk::derive(b"testmesh", None);
    let run = run(&psk(), &other, &AcceptPolicy::Open, &AcceptPolicy::Open);
    assert_eq!(run.resp.unwrap_err(), HandshakeError::Decrypt);
}

#[test]
fn psk_separates_name_and_secret() {
    assert_ne!(
        MeshPsk::derive(b"ab", Some(b"c")),
        MeshPsk::derive(b"a", Some(b"bc"))
    );
    assert_eq!(
        MeshPsk::derive(b"a", None),
        MeshPsk::derive(b"a", Some(b""))
    );
    assert_eq!(format!("{:?}", psk()), "MeshPsk(redacted)");
}

#[test]
fn darknet_refuses_in_both_directions() {
    let open = AcceptPolicy::Open;
    let only3 = AcceptPolicy::allow_list([id(3).public().ed25519]).unwrap();
    let r = run(&psk(), &psk(), &only3, &open);
    assert_eq!(r.init.unwrap_err(), HandshakeError::NotAllowed);
    let r = run(&psk(), &psk(), &open, &only3);
    assert!(r.init.is_ok());
    assert_eq!(r.resp.unwrap_err(), HandshakeError::NotAllowed);
    let both = AcceptPolicy::allow_list([id(1).public().ed25519, id(2).public().ed25519]).unwrap();
    let r = run(&psk(), &psk(), &both, &both);
    assert!(r.init.is_ok() && r.resp.is_ok());
}

#[test]
fn tampered_messages_fail() {
    let open = AcceptPolicy::Open;
    for (msg, pos) in [(1usize, 40usize), (2, 0), (2, 100), (3, 5), (3, 150)] {
        let (mut m1, mut m2, mut m3) = ([0u8; 256], [0u8; 256], [0u8; 256]);
        let (mut i, n1) = Initiator::new(&id(1), &psk(), [1; 32], 1, &mut m1).unwrap();
        if msg == 1 {
            m1[pos] ^= 1;
            let e = Responder::respond(&id(2), &psk(), [2; 32], &m1[..n1], &mut m2);
            assert_eq!(e.err(), Some(HandshakeError::Decrypt));
            continue;
        }
        let (mut r, n2) = Responder::respond(&id(2), &psk(), [2; 32], &m1[..n1], &mut m2).unwrap();
        if msg == 2 {
            m2[pos] ^= 1;
            assert_eq!(
                i.finish(&m2[..n2], &mut m3, &open).err(),
                Some(HandshakeError::Decrypt)
            );
            continue;
        }
        let (_, n3) = i.finish(&m2[..n2], &mut m3, &open).unwrap();
        m3[pos] ^= 1;
        assert_eq!(
            r.finish(&m3[..n3], &open).err(),
            Some(HandshakeError::Decrypt)
        );
    }
}

#[test]
fn wrong_lengths_and_small_buffers_are_typed_errors() {
    let mut m1 = [0u8; 256];
    let mut small = [0u8; 10];
    let e = Initiator::new(&id(1), &psk(), [1; 32], 1, &mut small).err();
    assert_eq!(
        e,
        Some(HandshakeError::BufferTooSmall {
            need: MSG1_LEN,
            got: 10
        })
    );
    let (_, n1) = Initiator::new(&id(1), &psk(), [1; 32], 1, &mut m1).unwrap();
    let e = Responder::respond(&id(2), &psk(), [2; 32], &m1[..n1 - 1], &mut [0u8; 256]).err();
    assert_eq!(
        e,
        Some(HandshakeError::BadLength {
            msg: 1,
            expected: 56,
            got: 55
        })
    );
}

#[test]
fn proof_for_another_static_key_is_rejected() {
    let (mut m1, mut m2, mut m3) = ([0u8; 256], [0u8; 256], [0u8; 256]);
    let (mut i, n1) = Initiator::new(&id(1), &psk(), [1; 32], 1, &mut m1).unwrap();
    // Responder id(2) presents id(3)'s valid proof, which signs id(3)'s x25519 key.
    let mut hs = build(&id(2), &psk(), [2; 32], false).unwrap();
    hs.read_message(&m1[..n1], &mut [0u8; 64]).unwrap();
    let n2 = hs.write_message(&id(3).link_proof(), &mut m2).unwrap();
    let e = i.finish(&m2[..n2], &mut m3, &AcceptPolicy::Open).err();
    assert_eq!(e, Some(HandshakeError::BadIdentityProof));
}

#[test]
fn seeds_make_messages_deterministic() {
    let (mut a, mut b, mut c) = ([0u8; 64], [0u8; 64], [0u8; 64]);
    Initiator::new(&id(1), &psk(), [5; 32], 1, &mut a).unwrap();
    Initiator::new(&id(1), &psk(), [5; 32], 1, &mut b).unwrap();
    Initiator::new(&id(1), &psk(), [6; 32], 1, &mut c).unwrap();
    assert_eq!(a, b);
    assert_ne!(a[..32], c[..32]);
}

#[test]
fn forged_messages_leave_the_state_for_the_genuine_one() {
    let (mut m1, mut m2, mut m3) = ([0u8; 256], [0u8; 256], [0u8; 256]);
    let (mut i, n1) = Initiator::new(&id(1), &psk(), [1; 32], 7, &mut m1).unwrap();
    let got = Responder::read_init(&id(2), &psk(), [2; 32], &m1[..n1]).unwrap();
    assert_eq!(got.init_seq(), 7);
    let (mut r, n2) = got.answer(&id(2), &mut m2).unwrap();
    // Someone without the PSK answers first: random bytes of the right length, then a
    // copy of the genuine msg 2 with one bit flipped.
    let forged: Vec<u8> = (0..MSG2_LEN as u8).map(|b| b.wrapping_mul(31)).collect();
    let e = i.finish(&forged, &mut m3, &AcceptPolicy::Open).unwrap_err();
    assert!(e.keeps_state(), "{e:?}");
    let mut flipped = m2;
    flipped[100] ^= 1;
    let e = i
        .finish(&flipped[..n2], &mut m3, &AcceptPolicy::Open)
        .unwrap_err();
    assert!(e.keeps_state(), "{e:?}");
    let (est_i, n3) = i.finish(&m2[..n2], &mut m3, &AcceptPolicy::Open).unwrap();
    let mut bad3 = m3;
    bad3[5] ^= 1;
    let e = r.finish(&bad3[..n3], &AcceptPolicy::Open).unwrap_err();
    assert!(e.keeps_state(), "{e:?}");
    let est_r = r.finish(&m3[..n3], &AcceptPolicy::Open).unwrap();
    assert_eq!(est_i.send_key, est_r.recv_key);
}
