//! The exit: forward cells opened and acted on (loops answered, anonymous packets passed on
//! to their destination under the exit's name), and destinations' replies sent back on the
//! circuit that claimed the ephemeral address (docs/protocol.md §8.9).

use super::body::{self, Kind};
use super::{cell_drop, send_cell, send_data, Onion, ANON_CELL_HEADER_LEN, REPLY_CELL_HEADER_LEN};
use crate::crypto::arr;
use crate::crypto::onion::{anon_iid, Direction, OnionError, ANON_IID_LEN};
use crate::node::data::Env;
use crate::node::ring::Ring;
use crate::node::DropReason;
use crate::time::Instant;
use crate::wire::e2e::{emit_anonymous_header, ANON_HEADER_LEN, ANON_REPLY_HEADER_LEN};
use crate::wire::{NodeId, CELL_REGION_LEN, NODE_ID_LEN, TAG_LEN};

impl Onion {
    /// A forward cell at the exit: opened in the scratch buffer and acted on.
    pub(super) fn exit_cell(
        &mut self,
        now: Instant,
        (link, region): (u32, &[u8; CELL_REGION_LEN]),
        deliver: &mut Ring<()>,
        env: &mut Env<'_>,
    ) {
        let Some(c) = self.relayed.by_in.get_mut(&link) else {
            return;
        };
        let scratch = &mut *self.scratch;
        scratch.copy_from_slice(region);
        if let Err(e) = c.layer.open_forward(scratch) {
            env.shared.stats.drop(cell_drop(e));
            return;
        }
        c.last_cell = now;
        let claim = c.claim;
        match body::read(&self.scratch[..]) {
            Some((Kind::Loop, p)) if p.len() == 8 => {
                let payload: [u8; 8] = arr(p);
                self.exit_answer(link, Kind::LoopReply, &payload, env);
            }
            Some((Kind::Anonymous, p)) => {
                // The destination may be the exit itself: then it reads the packet here.
                let mut local = [0u8; body::MAX_PAYLOAD];
                if let Some((parts, len)) = pass_anonymous(now, claim, p, env, &mut local) {
                    let (exit, key_seq, sender, counter) = parts;
                    let payload = local.get(..len).unwrap_or_default();
                    let parts = (exit, key_seq, &sender, counter);
                    self.on_anonymous(now, parts, payload, deliver, env);
                }
            }
            _ => env.shared.stats.drop(DropReason::OnionBadBody),
        }
    }

    /// The exit starts a backward cell of `kind` carrying `payload` on the circuit whose
    /// incoming leg is `link`.
    pub(super) fn exit_answer(&mut self, link: u32, kind: Kind, payload: &[u8], env: &mut Env<'_>) {
        self.exit_send_back(link, (kind, payload.len()), env, |p| {
            p.copy_from_slice(payload)
        });
    }

    /// A destination's reply for the ephemeral address `iid` (an AnonymousReply payload from
    /// `src`): back on the circuit that claimed it, as `src | counter | ciphertext | tag`.
    pub(in crate::node::data) fn exit_reply(
        &mut self,
        now: Instant,
        (src, iid, counter): (NodeId, &[u8; ANON_IID_LEN], u64),
        payload: &[u8],
        env: &mut Env<'_>,
    ) {
        let link = self.relayed.claims.get(iid).map(|c| c.in_link);
        let Some(c) = link.and_then(|l| self.relayed.by_in.get_mut(&l)) else {
            env.shared.stats.drop(DropReason::AnonUnknownAddress);
            return;
        };
        c.last_cell = now;
        let sealed = payload.get(ANON_REPLY_HEADER_LEN..).unwrap_or_default();
        let len = REPLY_CELL_HEADER_LEN + sealed.len();
        let link = c.layer.in_link();
        if self.exit_send_back(link, (Kind::AnonymousReply, len), env, |p| {
            let (head, rest) = p.split_at_mut(REPLY_CELL_HEADER_LEN);
            head[..NODE_ID_LEN].copy_from_slice(&src.0);
            head[NODE_ID_LEN..].copy_from_slice(&counter.to_be_bytes());
            rest.copy_from_slice(sealed);
        }) {
            env.shared.stats.anon_exit_packets += 1;
        }
    }

    /// Send a backward cell of `kind` with a payload of `len` bytes that `fill` writes, on
    /// the circuit whose incoming leg is `link`. Returns whether it was queued.
    fn exit_send_back(
        &mut self,
        link: u32,
        (kind, len): (Kind, usize),
        env: &mut Env<'_>,
        fill: impl FnOnce(&mut [u8]),
    ) -> bool {
        let Some(c) = self.relayed.by_in.get_mut(&link) else {
            return false;
        };
        let layer = &mut c.layer;
        let sent = send_cell((c.prev, link, Direction::Backward), env, |r| {
            let payload = body::payload_mut(r, kind, len).ok_or(OnionError::TooShort)?;
            fill(payload);
            layer.seal_backward(r)
        });
        match sent {
            Ok(sent) => sent,
            Err(e) => {
                env.shared.stats.drop(cell_drop(e));
                false
            }
        }
    }
}

/// The parts of an Anonymous payload: exit, key seq, sender key, counter.
type AnonParts = (NodeId, u32, [u8; 32], u64);

/// An anonymous packet out of a circuit whose claim is `claim`: `dst | key seq | sender key
/// | counter | ciphertext | tag`, passed on to `dst` as an Anonymous payload in our name if
/// the sender key is the one the circuit claimed. When `dst` is us, the payload is written
/// into `local` instead and returned with its parts and length, for us to read.
fn pass_anonymous(
    now: Instant,
    claim: Option<[u8; ANON_IID_LEN]>,
    payload: &[u8],
    env: &mut Env<'_>,
    local: &mut [u8],
) -> Option<(AnonParts, usize)> {
    let (Some(head), Some(sealed)) = (
        payload.first_chunk::<ANON_CELL_HEADER_LEN>(),
        payload.get(ANON_CELL_HEADER_LEN..),
    ) else {
        env.shared.stats.drop(DropReason::OnionBadBody);
        return None;
    };
    if sealed.len() < TAG_LEN {
        env.shared.stats.drop(DropReason::OnionBadBody);
        return None;
    }
    let dst = NodeId(arr(&head[..NODE_ID_LEN]));
    let key_seq = u32::from_be_bytes(arr(&head[NODE_ID_LEN..NODE_ID_LEN + 4]));
    let sender: [u8; 32] = arr(&head[NODE_ID_LEN + 4..NODE_ID_LEN + 36]);
    let counter = u64::from_be_bytes(arr(&head[NODE_ID_LEN + 36..]));
    if claim != Some(anon_iid(&sender)) {
        env.shared.stats.drop(DropReason::AnonNotClaimed);
        return None;
    }
    let me = env.shared.id;
    let len = ANON_HEADER_LEN + sealed.len();
    let write = |area: &mut [u8]| {
        let (head, rest) = area.split_at_mut(ANON_HEADER_LEN);
        rest.copy_from_slice(sealed);
        emit_anonymous_header(head, me, (key_seq, &sender), counter).is_ok()
    };
    if dst == me {
        let written = write(local.get_mut(..len)?);
        env.shared.stats.anon_exit_packets += u64::from(written);
        return written.then_some(((me, key_seq, sender, counter), len));
    }
    if send_data(now, dst, len, env, write) {
        env.shared.stats.anon_exit_packets += 1;
    }
    None
}
