//! Broadcast (group) keys: each node seals its broadcast frames with its own key and hands
//! `(key id, key)` to every neighbour over their link sessions (`wire::GroupKeyRepr`).

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::aead::{CounterExhausted, OpenError, RecvKey, SealError, SendKey};
use crate::wire::{GroupKeyRepr, TAG_LEN};

/// Our current broadcast key. `Debug` hides the key; it is zeroized when dropped.
#[derive(Debug, Clone)]
pub struct GroupSender {
    repr: GroupKeyRepr,
    send: SendKey,
}

impl GroupSender {
    /// A fresh random key with a random non-zero key id.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> GroupSender {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *key);
        let key_id = rng.next_u32().max(1);
        GroupSender {
            repr: GroupKeyRepr { key_id, key: *key },
            send: SendKey::new(&key),
        }
    }

    /// Replace the key (on schedule, on counter exhaustion, or when a neighbour leaves);
    /// the new key id always differs from the old one.
    pub fn rotate(&mut self, rng: &mut (impl RngCore + CryptoRng)) {
        let old = self.repr.key_id;
        *self = GroupSender::generate(rng);
        if self.repr.key_id == old {
            self.repr.key_id = old.wrapping_add(1).max(1);
        }
    }

    /// The key id carried in our broadcast frames.
    pub fn key_id(&self) -> u32 {
        self.repr.key_id
    }

    /// What to send to each neighbour in a GroupKey message.
    pub fn repr(&self) -> GroupKeyRepr {
        self.repr
    }

    /// Reserve the next counter.
    pub fn next_counter(&mut self) -> Result<u64, CounterExhausted> {
        self.send.next_counter()
    }

    /// Messages sealed with this key so far.
    pub fn sent(&self) -> u64 {
        self.send.sent()
    }

    /// Seal in place, as `SendKey::seal_in_place`.
    pub fn seal_in_place(
        &self,
        counter: u64,
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], SealError> {
        self.send.seal_in_place(counter, aad, buf)
    }
}

impl Drop for GroupSender {
    fn drop(&mut self) {
        // `GroupKeyRepr` is `Copy` (a wire type), so the wipe is done here.
        self.repr.key.zeroize();
    }
}

impl ZeroizeOnDrop for GroupSender {}

/// A neighbour's broadcast key as we hold it, with its own replay window. The key is
/// zeroized when dropped (in the cipher).
#[derive(Debug, Clone)]
pub struct GroupReceiver {
    key_id: u32,
    /// A hash of (key id, key): tells a re-delivery of this key from a new one without
    /// keeping a second copy of the key.
    fingerprint: [u8; 16],
    recv: RecvKey,
}

impl GroupReceiver {
    /// From a GroupKey message received over the neighbour's link session.
    pub fn from_repr(repr: &GroupKeyRepr) -> GroupReceiver {
        GroupReceiver {
            key_id: repr.key_id,
            fingerprint: fingerprint(repr),
            recv: RecvKey::new(&repr.key),
        }
    }

    /// Whether `repr` is the key this receiver already holds (a re-delivery must keep
    /// its replay window).
    pub fn holds(&self, repr: &GroupKeyRepr) -> bool {
        self.key_id == repr.key_id && self.fingerprint == fingerprint(repr)
    }

    /// The key id this receiver opens.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Check replay, verify and decrypt in place, as `RecvKey::open_in_place`.
    pub fn open_in_place(
        &mut self,
        counter: u64,
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), OpenError> {
        self.recv.open_in_place(counter, aad, buf, tag)
    }
}

impl ZeroizeOnDrop for GroupReceiver {}

fn fingerprint(repr: &GroupKeyRepr) -> [u8; 16] {
    super::hash_labeled::<16>(
        b"veilmesh group key fingerprint v1",
        &[&repr.key_id.to_be_bytes(), &repr.key],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::replay::ReplayError;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn group_round_trip_replay_and_rotation() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let mut tx = GroupSender::generate(&mut rng);
        let mut rx = GroupReceiver::from_repr(&tx.repr());
        assert_eq!(rx.key_id(), tx.key_id());
        assert_ne!(tx.key_id(), 0);
        let c = tx.next_counter().unwrap();
        let mut buf = *b"ogm ogm ogm";
        let tag = tx.seal_in_place(c, b"hdr", &mut buf).unwrap();
        let copy = buf;
        rx.open_in_place(c, b"hdr", &mut buf, &tag).unwrap();
        assert_eq!(&buf, b"ogm ogm ogm");
        let replay = rx.open_in_place(c, b"hdr", &mut copy.clone(), &tag);
        assert_eq!(replay, Err(OpenError::Replay(ReplayError::Duplicate)));
        let old = tx.repr();
        tx.rotate(&mut rng);
        assert_ne!(tx.key_id(), old.key_id);
        assert_ne!(tx.repr().key, old.key);
        assert_eq!(tx.sent(), 0);
        tx.next_counter().unwrap();
        let c = tx.next_counter().unwrap(); // a counter rx has not seen: the key must fail
        let mut buf = *b"ogm ogm ogm";
        let tag = tx.seal_in_place(c, b"hdr", &mut buf).unwrap();
        assert_eq!(
            rx.open_in_place(c, b"hdr", &mut buf, &tag),
            Err(OpenError::Decrypt)
        );
    }
}
