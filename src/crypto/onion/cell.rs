//! Per-cell onion layers (docs/protocol.md §8.4, §8.5). A cell's layered part is
//! `slots (MAX_HOPS × SLOT_LEN) | body`; a slot is `tag (16) | nonce (12)`. Forward, every
//! relay reads the first slot, checks its replay window with the counter its nonce carries,
//! opens its layer of the body, drops the slot, shifts the rest forward and masks them with
//! a keystream of its own. Backward, every relay seals a layer under a nonce of its own
//! counter and puts its slot first, masking the others; the creator undoes all of it. No
//! cell depends on another (loss, reordering and mixing are normal here).

use veil_cipher::TAG_LEN;
use zeroize::Zeroizing;

use super::hop::{mask, HopKeys};
use super::prp::NONCE_LEN;
use super::{OnionError, MAX_HOPS};
use crate::crypto::arr;
use crate::crypto::replay::ReplayWindow;

/// One relay's slot: tag | nonce.
pub const SLOT_LEN: usize = TAG_LEN + NONCE_LEN;
/// All slots of a cell.
pub const SLOTS_LEN: usize = MAX_HOPS * SLOT_LEN;

/// Cells behind the newest a relay still accepts (mixing reorders cells of different
/// circuits, never of one, so this is for loss and the link's own reordering).
type CellWindow = ReplayWindow<2>;

/// Which way a cell travels; authenticated in every layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Creator → exit.
    Forward,
    /// Exit → creator.
    Backward,
}

impl Direction {
    /// The wire flag byte.
    pub fn flag(self) -> u8 {
        match self {
            Direction::Forward => 0,
            Direction::Backward => 1,
        }
    }

    /// The direction a wire flag byte names, if any.
    pub fn from_flag(flag: u8) -> Option<Direction> {
        match flag {
            0 => Some(Direction::Forward),
            1 => Some(Direction::Backward),
            _ => None,
        }
    }
}

/// Associated data of a layer: the link id of the leg into the relay, the direction, and the
/// slots after the relay's own as it sees them — so a bit flipped anywhere in a forward cell
/// after one relay fails at the next. Backward the slots are left out (zeros): the relays
/// nearer the creator shift some of them out before it could check them (which erases any
/// mark there), and every slot the creator reads is checked by its own layer's tag.
fn layer_ad(link: u32, dir: Direction, slots: &[u8; SLOTS_LEN]) -> [u8; AD_LEN] {
    let rest = match dir {
        Direction::Forward => &slots[SLOT_LEN..],
        Direction::Backward => &[][..],
    };
    let mut ad = [0u8; AD_LEN];
    ad[..4].copy_from_slice(&link.to_be_bytes());
    ad[4] = dir.flag();
    ad[5..5 + rest.len()].copy_from_slice(rest);
    ad
}

const AD_LEN: usize = 5 + SLOTS_LEN - SLOT_LEN;

fn split(region: &mut [u8]) -> Result<(&mut [u8; SLOTS_LEN], &mut [u8]), OnionError> {
    if region.len() < SLOTS_LEN {
        return Err(OnionError::TooShort);
    }
    let (slots, body) = region.split_at_mut(SLOTS_LEN);
    let slots = <&mut [u8; SLOTS_LEN]>::try_from(slots).map_err(|_| OnionError::TooShort)?;
    Ok((slots, body))
}

fn read_slot(slots: &[u8; SLOTS_LEN]) -> ([u8; TAG_LEN], [u8; NONCE_LEN]) {
    (arr(&slots[..TAG_LEN]), arr(&slots[TAG_LEN..SLOT_LEN]))
}

/// A relay's side of one circuit.
pub struct RelayLayer {
    keys: HopKeys,
    in_link: u32,
    window: CellWindow,
    next_backward: u64,
}

impl core::fmt::Debug for RelayLayer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RelayLayer(in_link={:#x})", self.in_link)
    }
}

impl RelayLayer {
    /// The layer for a circuit whose build arrived on `in_link`.
    pub fn new(keys: HopKeys, in_link: u32) -> RelayLayer {
        RelayLayer {
            keys,
            in_link,
            window: CellWindow::new(),
            next_backward: 0,
        }
    }

    /// The link id of the leg into this relay (backward cells leave on it).
    pub fn in_link(&self) -> u32 {
        self.in_link
    }

    /// Open this relay's layer of a forward cell in place and prepare it for the next relay.
    /// On error the region is unchanged except for a failed tag's body (drop the cell).
    pub fn open_forward(&mut self, region: &mut [u8]) -> Result<(), OnionError> {
        let (slots, body) = split(region)?;
        let (tag, nonce) = read_slot(slots);
        let counter = self.keys.fwd_nonce.decode(&nonce).ok_or(OnionError::Auth)?;
        self.window.check(counter).map_err(OnionError::Replay)?;
        let ad = layer_ad(self.in_link, Direction::Forward, slots);
        self.keys
            .fwd_cipher()
            .open(nonce, &ad, body, &tag)
            .map_err(|_| OnionError::Auth)?;
        self.window.commit(counter);
        slots.copy_within(SLOT_LEN.., 0);
        slots[SLOTS_LEN - SLOT_LEN..].fill(0);
        mask(&self.keys.fwd_header, &nonce, slots);
        Ok(())
    }

    /// Seal this relay's layer of a backward cell in place (the exit starts a backward cell
    /// the same way, over its plaintext body).
    pub fn seal_backward(&mut self, region: &mut [u8]) -> Result<(), OnionError> {
        let (slots, body) = split(region)?;
        let counter = self.next_backward;
        self.next_backward = counter.checked_add(1).ok_or(OnionError::CounterExhausted)?;
        let nonce = self.keys.bwd_nonce.encode(counter);
        slots.copy_within(..SLOTS_LEN - SLOT_LEN, SLOT_LEN);
        mask(&self.keys.bwd_header, &nonce, &mut slots[SLOT_LEN..]);
        let ad = layer_ad(self.in_link, Direction::Backward, slots);
        let tag = self
            .keys
            .bwd_cipher()
            .seal(nonce, &ad, body)
            .map_err(|_| OnionError::Auth)?;
        slots[..TAG_LEN].copy_from_slice(&tag);
        slots[TAG_LEN..SLOT_LEN].copy_from_slice(&nonce);
        Ok(())
    }
}

/// One relay of a circuit as its creator holds it.
struct CreatorHop {
    keys: HopKeys,
    /// The link id of the leg into this relay.
    link: u32,
}

/// The creator's side of one circuit: seals forward cells through every layer and opens
/// backward cells, checking the exit's counter against a replay window.
pub struct CreatorCircuit {
    hops: heapless::Vec<CreatorHop, MAX_HOPS>,
    next_forward: u64,
    exit_window: CellWindow,
    /// Keys the unused slots of a circuit shorter than `MAX_HOPS`.
    pad: Zeroizing<[u8; 32]>,
}

impl core::fmt::Debug for CreatorCircuit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "CreatorCircuit(hops={})", self.hops.len())
    }
}

impl CreatorCircuit {
    /// The circuit of `keys` (from `seal_build`) whose legs use `links` (the first leg's id,
    /// then each relay's `next_link`); `pad` is a fresh random key.
    pub fn new(
        keys: heapless::Vec<HopKeys, MAX_HOPS>,
        links: &[u32],
        pad: [u8; 32],
    ) -> Result<CreatorCircuit, OnionError> {
        if keys.is_empty() || keys.len() != links.len() {
            return Err(OnionError::BadShape);
        }
        let mut hops = heapless::Vec::new();
        for (keys, &link) in keys.into_iter().zip(links) {
            hops.push(CreatorHop { keys, link })
                .map_err(|_| OnionError::BadShape)?;
        }
        Ok(CreatorCircuit {
            hops,
            next_forward: 0,
            exit_window: CellWindow::new(),
            pad: Zeroizing::new(pad),
        })
    }

    /// Relays in the circuit.
    pub fn hops(&self) -> usize {
        self.hops.len()
    }

    /// The link id of the first leg (the guard's incoming circuit).
    pub fn first_link(&self) -> u32 {
        self.hops.first().map_or(0, |h| h.link)
    }

    /// Seal a forward cell whose `region` holds the plaintext body after the slots: one
    /// layer per relay, the exit's innermost.
    pub fn seal_forward(&mut self, region: &mut [u8]) -> Result<(), OnionError> {
        let (slots, body) = split(region)?;
        let counter = self.next_forward;
        self.next_forward = counter.checked_add(1).ok_or(OnionError::CounterExhausted)?;
        let mut nonces = [[0u8; NONCE_LEN]; MAX_HOPS];
        for (n, hop) in nonces.iter_mut().zip(&self.hops) {
            *n = hop.keys.fwd_nonce.encode(counter);
        }
        // What the exit sees after its own slot is junk: the pad slots and the blanks each
        // relay appends, shifted and masked on the way. Work it out, then walk inwards-out:
        // relay j's view of the slots after its own is its AD, so its tag needs it.
        let hops = self.hops.len();
        let mut pad_nonce = [0u8; NONCE_LEN];
        pad_nonce[..8].copy_from_slice(&counter.to_be_bytes());
        slots.fill(0);
        mask(&self.pad, &pad_nonce, &mut slots[hops * SLOT_LEN..]);
        for (hop, nonce) in self.hops.iter().zip(&nonces).take(hops - 1) {
            slots.copy_within(SLOT_LEN.., 0);
            slots[SLOTS_LEN - SLOT_LEN..].fill(0);
            mask(&hop.keys.fwd_header, nonce, slots);
        }
        for (j, hop) in self.hops.iter().enumerate().rev() {
            let ad = layer_ad(hop.link, Direction::Forward, slots);
            let tag = hop
                .keys
                .fwd_cipher()
                .seal(nonces[j], &ad, body)
                .map_err(|_| OnionError::Auth)?;
            slots[..TAG_LEN].copy_from_slice(&tag);
            slots[TAG_LEN..SLOT_LEN].copy_from_slice(&nonces[j]);
            // Relay j-1 turns its view into this one by a shift and its mask: undo both.
            if let Some(prev) = j.checked_sub(1).and_then(|p| self.hops.get(p)) {
                mask(&prev.keys.fwd_header, &nonces[j - 1], slots);
                slots.copy_within(..SLOTS_LEN - SLOT_LEN, SLOT_LEN);
            }
        }
        Ok(())
    }

    /// Open a backward cell in place: every relay's layer from the guard inwards. On error
    /// the cell is dropped silently (nothing is sent back).
    pub fn open_backward(&mut self, region: &mut [u8]) -> Result<(), OnionError> {
        let (slots, body) = split(region)?;
        let last = self.hops.len().saturating_sub(1);
        let mut exit_counter = 0;
        for (i, hop) in self.hops.iter().enumerate() {
            let (tag, nonce) = read_slot(slots);
            let counter = hop.keys.bwd_nonce.decode(&nonce).ok_or(OnionError::Auth)?;
            if i == last {
                self.exit_window
                    .check(counter)
                    .map_err(OnionError::Replay)?;
                exit_counter = counter;
            }
            let ad = layer_ad(hop.link, Direction::Backward, slots);
            mask(&hop.keys.bwd_header, &nonce, &mut slots[SLOT_LEN..]);
            slots.copy_within(SLOT_LEN.., 0);
            hop.keys
                .bwd_cipher()
                .open(nonce, &ad, body, &tag)
                .map_err(|_| OnionError::Auth)?;
        }
        self.exit_window.commit(exit_counter);
        Ok(())
    }
}
