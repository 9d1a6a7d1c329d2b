//! The one-pass circuit build (docs/protocol.md §8.2): one record per relay, each opened with
//! one x25519 by its relay, which then removes it, shifts the rest forward, appends a blank
//! record and masks the whole with a keystream of its own — so the message has one size at
//! every hop, and no relay sees another's record in a form a third relay sees.

use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::hop::{derive, mask, HopKeys};
use super::key::OnionKeyPair;
use super::{OnionError, MAX_HOPS};
use crate::crypto::arr;
use crate::wire::{NodeId, NODE_ID_LEN};
use veil_cipher::TAG_LEN;

/// Bytes an exit's order carries for the layer above (its ephemeral-address label and
/// claim); zero for guards and middles.
pub const EXIT_DATA_LEN: usize = 26;
const ORDER_LEN: usize = 2 + 2 * NODE_ID_LEN + 4 + EXIT_DATA_LEN;
/// One record: onion key seq (4) | ephemeral key (32) | sealed order (64) | tag (16).
pub const RECORD_LEN: usize = 4 + 32 + ORDER_LEN + TAG_LEN;
/// A build's records, always `MAX_HOPS` of them.
pub const BUILD_LEN: usize = MAX_HOPS * RECORD_LEN;
const ORDER_AT: usize = 36;
const EXIT_FLAG: u8 = 0x01;
const RECORD_NONCE: [u8; 12] = [0; 12];

/// What a relay is told to do: its place, where the circuit comes from and goes next, on
/// which link id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopOrder {
    /// The relay is the circuit's exit. (No relay is told its place: it needs none, and a
    /// middle that knew it would know it is two hops from the sender.)
    pub exit: bool,
    /// Where backward cells go: the previous relay (the creator, for the guard).
    pub prev: NodeId,
    /// The next relay (ignored at the exit).
    pub next: NodeId,
    /// The link id of the next leg (ignored at the exit).
    pub next_link: u32,
    /// Exit parameters for the layer above.
    pub exit_data: [u8; EXIT_DATA_LEN],
}

/// One relay of a circuit being built, as the creator knows it.
#[derive(Debug, Clone, Copy)]
pub struct HopSpec {
    /// The relay's onion key.
    pub onion_key: [u8; 32],
    /// The onion key's sequence number.
    pub key_seq: u32,
    /// What the relay is told.
    pub order: HopOrder,
}

impl HopOrder {
    fn encode(&self) -> [u8; ORDER_LEN] {
        let mut out = [0u8; ORDER_LEN];
        out[0] = if self.exit { EXIT_FLAG } else { 0 };
        out[2..18].copy_from_slice(&self.prev.0);
        out[18..34].copy_from_slice(&self.next.0);
        out[34..38].copy_from_slice(&self.next_link.to_be_bytes());
        out[38..].copy_from_slice(&self.exit_data);
        out
    }

    fn decode(b: &[u8; ORDER_LEN]) -> Result<HopOrder, OnionError> {
        // The flag byte's other bits and the byte after it are reserved (zero).
        if b[0] & !EXIT_FLAG != 0 || b[1] != 0 {
            return Err(OnionError::BadShape);
        }
        Ok(HopOrder {
            exit: b[0] & EXIT_FLAG != 0,
            prev: NodeId(arr(&b[2..18])),
            next: NodeId(arr(&b[18..34])),
            next_link: u32::from_be_bytes(arr(&b[34..38])),
            exit_data: arr(&b[38..]),
        })
    }
}

/// Associated data of a record: its clear part and the link id the build arrives on.
fn record_ad(clear: &[u8], in_link: u32) -> [u8; ORDER_AT + 4] {
    let mut ad = [0u8; ORDER_AT + 4];
    ad[..ORDER_AT].copy_from_slice(clear);
    ad[ORDER_AT..].copy_from_slice(&in_link.to_be_bytes());
    ad
}

/// Seal a build for `hops` (1..=`MAX_HOPS`, in path order) whose first leg uses `first_link`:
/// writes the records into `out` and returns each relay's keys. Costs two x25519 per relay.
pub fn seal_build(
    hops: &[HopSpec],
    first_link: u32,
    rng: &mut (impl RngCore + CryptoRng),
    out: &mut [u8; BUILD_LEN],
) -> Result<heapless::Vec<HopKeys, MAX_HOPS>, OnionError> {
    if hops.is_empty() || hops.len() > MAX_HOPS {
        return Err(OnionError::BadShape);
    }
    rng.fill_bytes(out);
    let mut keys = heapless::Vec::new();
    let mut shifts: heapless::Vec<Zeroizing<[u8; 32]>, MAX_HOPS> = heapless::Vec::new();
    let mut in_link = first_link;
    for (j, hop) in hops.iter().enumerate() {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *secret);
        let secret = StaticSecret::from(*secret);
        let ephemeral = PublicKey::from(&secret).to_bytes();
        let shared = secret.diffie_hellman(&PublicKey::from(hop.onion_key));
        if !shared.was_contributory() {
            return Err(OnionError::LowOrderKey);
        }
        let (record_keys, hop_keys) = derive(shared.as_bytes(), &ephemeral, &hop.onion_key);
        let record = &mut out[j * RECORD_LEN..(j + 1) * RECORD_LEN];
        record[..4].copy_from_slice(&hop.key_seq.to_be_bytes());
        record[4..ORDER_AT].copy_from_slice(&ephemeral);
        let ad = record_ad(&record[..ORDER_AT], in_link);
        let (order, tag) = record[ORDER_AT..].split_at_mut(ORDER_LEN);
        order.copy_from_slice(&hop.order.encode());
        let t = record_keys
            .record
            .seal(RECORD_NONCE, &ad, order)
            .map_err(|_| OnionError::Auth)?;
        tag.copy_from_slice(&t);
        // Relay j receives this record after relays 0..j each shifted it one place forward
        // and masked it: undo their masks now so it arrives clear.
        for (i, shift) in shifts.iter().enumerate() {
            let mut stream = [0u8; BUILD_LEN];
            mask(shift, &RECORD_NONCE, &mut stream);
            let at = (j - i - 1) * RECORD_LEN;
            for (r, s) in record.iter_mut().zip(&stream[at..at + RECORD_LEN]) {
                *r ^= s;
            }
        }
        shifts
            .push(record_keys.shift)
            .map_err(|_| OnionError::BadShape)?;
        keys.push(hop_keys).map_err(|_| OnionError::BadShape)?;
        in_link = hop.order.next_link;
    }
    Ok(keys)
}

/// The sequence number of the onion key the first record is sealed to (clear, so the relay
/// picks its current or previous key without trying both).
pub fn build_key_seq(msg: &[u8; BUILD_LEN]) -> u32 {
    u32::from_be_bytes(arr(&msg[..4]))
}

/// The first record's ephemeral key, for the relay's build replay filter.
pub fn build_ephemeral(msg: &[u8; BUILD_LEN]) -> [u8; 32] {
    arr(&msg[4..ORDER_AT])
}

/// Open the first record with `key` (one x25519), then turn `msg` into the build for the next
/// relay in place. `in_link` is the link id the build arrived on.
pub fn open_build(
    key: &OnionKeyPair,
    in_link: u32,
    msg: &mut [u8; BUILD_LEN],
) -> Result<(HopOrder, HopKeys), OnionError> {
    let ephemeral = build_ephemeral(msg);
    let shared = key.agree(&ephemeral)?;
    let (record_keys, hop_keys) = derive(&shared, &ephemeral, &key.public());
    let ad = record_ad(&msg[..ORDER_AT], in_link);
    let mut order = Zeroizing::new(arr::<ORDER_LEN>(&msg[ORDER_AT..ORDER_AT + ORDER_LEN]));
    let tag = arr::<TAG_LEN>(&msg[ORDER_AT + ORDER_LEN..RECORD_LEN]);
    record_keys
        .record
        .open(RECORD_NONCE, &ad, &mut *order, &tag)
        .map_err(|_| OnionError::Auth)?;
    let order = HopOrder::decode(&order)?;
    msg.copy_within(RECORD_LEN.., 0);
    msg[BUILD_LEN - RECORD_LEN..].fill(0);
    mask(&record_keys.shift, &RECORD_NONCE, msg);
    Ok((order, hop_keys))
}
