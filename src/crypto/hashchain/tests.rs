use super::*;

fn signer(start: u32, len: u16) -> ChainSigner {
    ChainSigner::from_seed([5; 16], start, len).unwrap()
}

#[test]
fn every_element_hashes_to_the_anchor() {
    let s = signer(1000, 300);
    for q in 1000..1300u32 {
        let e = s.element(q).unwrap();
        assert_eq!(iterate(e, q - 1000 + 1), s.anchor(), "seqno {q}");
    }
    assert_eq!(s.element(999), Err(ChainError::OutsideChain(999)));
    assert_eq!(s.element(1300), Err(ChainError::OutsideChain(1300)));
    assert_eq!(s.next_start(), 1300);
}

#[test]
fn checkpoints_are_bounded_and_match_naive_chain() {
    let s = signer(0, MAX_CHAIN_LEN);
    assert_eq!(s.checkpoints.len(), 128);
    assert!(core::mem::size_of::<ChainSigner>() < 2200);
    // x_{L-1} is the first element: seed hashed L-1 times.
    assert_eq!(
        s.element(0).unwrap(),
        iterate([5; 16], u32::from(MAX_CHAIN_LEN) - 1)
    );
    assert_eq!(s.element(u32::from(MAX_CHAIN_LEN) - 1).unwrap(), [5; 16]);
    assert_eq!(
        ChainSigner::from_seed([5; 16], 0, 0).err(),
        Some(ChainError::BadLength(0))
    );
    let too_long = MAX_CHAIN_LEN + 1;
    assert_eq!(
        ChainSigner::from_seed([5; 16], 0, too_long).err(),
        Some(ChainError::BadLength(too_long))
    );
}

#[test]
fn sequential_verification_duplicates_and_older() {
    let s = signer(10, 100);
    let mut v = ChainVerifier::new(s.anchor(), 10, 100).unwrap();
    assert_eq!(v.last_verified(), None);
    for q in 10..20 {
        assert_eq!(v.verify(q, &s.element(q).unwrap()), Ok(ChainStatus::Fresh));
    }
    assert_eq!(v.last_verified(), Some(19));
    assert_eq!(
        v.verify(19, &s.element(19).unwrap()),
        Ok(ChainStatus::Duplicate)
    );
    assert_eq!(v.verify(19, &[0; 16]), Err(ChainError::Forged));
    assert_eq!(
        v.verify(12, &s.element(12).unwrap()),
        Ok(ChainStatus::Older)
    );
    assert_eq!(
        v.verify(12, &s.element(13).unwrap()),
        Err(ChainError::Forged)
    );
    assert_eq!(v.last_verified(), Some(19));
}

#[test]
fn gaps_within_bound_are_fine_beyond_need_resync() {
    let s = signer(0, 4096);
    let mut v = ChainVerifier::new(s.anchor(), 0, 4096).unwrap();
    let q = MAX_CHAIN_GAP - 1; // k = MAX_CHAIN_GAP hashes from the anchor
    assert_eq!(v.verify(q, &s.element(q).unwrap()), Ok(ChainStatus::Fresh));
    let far = q + MAX_CHAIN_GAP + 1;
    let e = s.element(far).unwrap();
    assert_eq!(
        v.verify(far, &e),
        Err(ChainError::GapTooLarge(MAX_CHAIN_GAP + 1))
    );
    assert_eq!(v.last_verified(), Some(q));
    assert_eq!(v.verify_resync(far, &e), Ok(ChainStatus::Fresh));
    assert_eq!(
        v.verify(0, &s.element(0).unwrap()),
        Err(ChainError::TooOld(far))
    );
}

#[test]
fn forgeries_do_not_advance_the_verifier() {
    let s = signer(0, 200);
    let other = ChainSigner::from_seed([6; 16], 0, 200).unwrap();
    let mut v = ChainVerifier::new(s.anchor(), 0, 200).unwrap();
    assert_eq!(
        v.verify(5, &other.element(5).unwrap()),
        Err(ChainError::Forged)
    );
    // Replaying an element under a later seqno fails: it is one hash short.
    let e4 = s.element(4).unwrap();
    assert_eq!(v.verify(5, &e4), Err(ChainError::Forged));
    assert_eq!(v.last_verified(), None);
    assert_eq!(v.verify(4, &e4), Ok(ChainStatus::Fresh));
    assert_eq!(v.verify(200, &[0; 16]), Err(ChainError::OutsideChain(200)));
    assert!(!v.covers(200) && v.covers(199));
}

#[test]
fn chain_wraps_around_u32_seqnos() {
    let start = u32::MAX - 10;
    let s = signer(start, 40);
    let mut v = ChainVerifier::new(s.anchor(), start, 40).unwrap();
    for q in [u32::MAX - 1, u32::MAX, 0, 5, 28] {
        assert_eq!(
            v.verify(q, &s.element(q).unwrap()),
            Ok(ChainStatus::Fresh),
            "seqno {q}"
        );
    }
    assert_eq!(v.last_verified(), Some(28));
    assert_eq!(s.element(29), Err(ChainError::OutsideChain(29)));
}

#[test]
fn seed_depends_on_epoch_and_start() {
    let id = Identity::from_secrets([1; 32], [2; 32]);
    let a = chain_seed(&id, 1, 0);
    assert_ne!(a, chain_seed(&id, 2, 0));
    assert_ne!(a, chain_seed(&id, 1, 4096));
    assert_ne!(
        a,
        chain_seed(&Identity::from_secrets([3; 32], [2; 32]), 1, 0)
    );
    assert_eq!(a, chain_seed(&id, 1, 0));
}
