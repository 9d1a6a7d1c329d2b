//! A bounded ring of fixed-size frame buffers, allocated once: the node's queues.
//!
//! Frames are built in place in a slot (`reserve` then `commit_as`), so queueing a frame never
//! allocates and never copies more than once.

use crate::wire::MAX_FRAME_LEN;

/// One queued frame or packet and its metadata.
pub struct Slot<M> {
    /// What the consumer needs to know about the bytes (destination, class, ...).
    pub meta: M,
    /// Number of valid bytes in `buf`.
    pub len: usize,
    /// The bytes.
    pub buf: [u8; MAX_FRAME_LEN],
}

/// A FIFO of at most `capacity` slots.
pub struct Ring<M> {
    slots: Vec<Slot<M>>,
    head: usize,
    len: usize,
}

impl<M: Default> Slot<M> {
    /// A slot holding nothing.
    pub fn empty() -> Self {
        Slot {
            meta: M::default(),
            len: 0,
            buf: [0; MAX_FRAME_LEN],
        }
    }
}

impl<M: Default> Ring<M> {
    /// A ring of `capacity` slots (at least one), allocated now and never again.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let slots = (0..capacity).map(|_| Slot::empty()).collect();
        Ring {
            slots,
            head: 0,
            len: 0,
        }
    }
}

/// Why `reserve_copy` gave no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveError {
    /// Every slot is queued.
    Full,
    /// The bytes are longer than a slot.
    TooBig,
}

impl<M> Ring<M> {
    /// The slot the next `commit_as` will enqueue, or `None` when full (the caller counts
    /// the drop under its reason).
    pub fn reserve(&mut self) -> Option<&mut Slot<M>> {
        if self.len == self.slots.len() {
            return None;
        }
        let idx = (self.head + self.len) % self.slots.len();
        self.slots.get_mut(idx)
    }

    /// `reserve`, then copy `bytes` to the start of the slot (not yet enqueued: the caller
    /// may work on them in place before `commit_as`).
    pub fn reserve_copy(&mut self, bytes: &[u8]) -> Result<&mut Slot<M>, ReserveError> {
        let slot = self.reserve().ok_or(ReserveError::Full)?;
        slot.buf
            .get_mut(..bytes.len())
            .ok_or(ReserveError::TooBig)?
            .copy_from_slice(bytes);
        Ok(slot)
    }

    /// Enqueue the slot last returned by `reserve`, holding `len` bytes described by `meta`.
    pub fn commit_as(&mut self, len: usize, meta: M) {
        if self.len == self.slots.len() {
            return;
        }
        let idx = (self.head + self.len) % self.slots.len();
        if let Some(slot) = self.slots.get_mut(idx) {
            slot.len = len;
            slot.meta = meta;
            self.len += 1;
        }
    }

    /// The oldest queued slot.
    pub fn front(&self) -> Option<&Slot<M>> {
        if self.len == 0 {
            return None;
        }
        self.slots.get(self.head)
    }

    /// Remove the oldest queued slot.
    pub fn pop(&mut self) {
        if self.len > 0 {
            self.head = (self.head + 1) % self.slots.len();
            self.len -= 1;
        }
    }

    /// Number of queued slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_and_counted_overflow() {
        let mut r: Ring<u8> = Ring::new(2);
        for i in 0..3u8 {
            if r.reserve().is_some() {
                r.commit_as(1, i);
            }
        }
        assert_eq!(r.len(), 2);
        assert_eq!(r.front().map(|s| s.meta), Some(0));
        r.pop();
        assert_eq!(r.front().map(|s| s.meta), Some(1));
        r.pop();
        assert!(r.is_empty());
        assert!(r.front().is_none());
        // After wrapping, the ring keeps working.
        assert!(r.reserve().is_some());
        r.commit_as(1, 9);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn reserve_copy_fills_a_slot_without_enqueuing_it() {
        let mut r: Ring<()> = Ring::new(1);
        let big = [7u8; MAX_FRAME_LEN + 1];
        assert_eq!(r.reserve_copy(&big).err(), Some(ReserveError::TooBig));
        let slot = r.reserve_copy(b"abc").unwrap();
        assert_eq!(&slot.buf[..3], b"abc");
        assert!(r.is_empty());
        r.commit_as(3, ());
        assert_eq!(r.reserve_copy(b"d").err(), Some(ReserveError::Full));
        assert_eq!(r.front().map(|s| &s.buf[..s.len]), Some(&b"abc"[..]));
    }

    #[test]
    fn reserve_without_commit_enqueues_nothing() {
        let mut r: Ring<()> = Ring::new(1);
        assert!(r.reserve().is_some());
        assert!(r.is_empty());
    }
}
