//! The event queue (ordered by time, then insertion) and the pool of in-flight frames.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::time::Instant;
use crate::wire::MAX_FRAME_LEN;

/// What happens when an event fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// Frame `slot` from node `from` arrives at node `to`.
    Frame { to: u32, from: u32, slot: u32 },
    /// Node `node`'s timer, valid only if its generation is still `gen`.
    Timer { node: u32, gen: u32 },
    /// Flow `flow` sends its next packet.
    Flow { flow: u32 },
    /// Reply flow `flow` answers packet `seq` of its request flow.
    Reply { flow: u32, seq: u64 },
    /// Scheduled scenario action `idx`.
    Action { idx: u32 },
    /// Periodic route check.
    Check,
}

/// An event at `at`; `seq` breaks ties in insertion order, so runs are reproducible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) at: Instant,
    pub(crate) seq: u64,
    pub(crate) kind: EventKind,
}

impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest event first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Pending events, earliest first.
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    heap: BinaryHeap<Event>,
    next_seq: u64,
}

impl EventQueue {
    /// Schedules `kind` at `at`.
    pub(crate) fn push(&mut self, at: Instant, kind: EventKind) {
        self.heap.push(Event {
            at,
            seq: self.next_seq,
            kind,
        });
        self.next_seq += 1;
    }

    /// Removes the earliest event if it is due at or before `until`.
    pub(crate) fn pop_until(&mut self, until: Instant) -> Option<Event> {
        if self.heap.peek()?.at > until {
            return None;
        }
        self.heap.pop()
    }

    /// Events pending.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

/// Frame buffers shared by all receptions of one transmission, reused once every
/// reception has fired, so steady-state runs do not allocate per frame.
#[derive(Debug)]
pub(crate) struct FramePool {
    slots: Vec<(Vec<u8>, u32)>,
    free: Vec<u32>,
    cap: usize,
}

impl FramePool {
    /// A pool holding at most `cap` frames at once.
    pub(crate) fn new(cap: usize) -> FramePool {
        FramePool {
            slots: Vec::new(),
            free: Vec::new(),
            cap,
        }
    }

    /// Stores a copy of `frame` for `refs` receptions; `None` if the pool is full.
    pub(crate) fn alloc(&mut self, frame: &[u8], refs: u32) -> Option<u32> {
        let idx = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < self.cap => {
                self.slots.push((Vec::with_capacity(MAX_FRAME_LEN), 0));
                (self.slots.len() - 1) as u32
            }
            None => return None,
        };
        let slot = self.slots.get_mut(idx as usize)?;
        slot.0.clear();
        slot.0.extend_from_slice(frame);
        slot.1 = refs;
        Some(idx)
    }

    /// The frame in `slot`.
    pub(crate) fn get(&self, slot: u32) -> &[u8] {
        self.slots.get(slot as usize).map_or(&[], |s| &s.0)
    }

    /// Drops one reference to `slot`, freeing it with the last one.
    pub(crate) fn release(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.1 = s.1.saturating_sub(1);
            if s.1 == 0 {
                self.free.push(slot);
            }
        }
    }

    /// Slots ever allocated (the pool's high-water mark).
    pub(crate) fn high_water(&self) -> usize {
        self.slots.len()
    }
}
