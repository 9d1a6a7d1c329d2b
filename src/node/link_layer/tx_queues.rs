//! The node's transmit queues: one lane per link and one per interface (clear hellos,
//! handshakes, broadcasts), each with a control and a data queue, over one pool of frame
//! slots allocated at start.
//!
//! At send time the lanes holding frames take turns, one frame each, so a neighbour with a
//! deep backlog delays no other neighbour's frames by more than one frame per busy lane;
//! within a lane control goes before data. Each class has a budget of slots of its own (so
//! neither can crowd the other out), and a link may hold at most half the data slots (so
//! one busy or slow neighbour cannot take them all). Every refusal is counted by the caller
//! under `full_reason`. The onion layer's cover cells will be a third class per lane.

use super::tx::TxMeta;
use crate::link::MAX_LINKS;
use crate::node::ring::Slot;
use crate::node::{DropReason, IfaceId};

/// Which lane a frame waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::node) enum Lane {
    /// Frames to the link in this slot of the link table.
    Link(usize),
    /// Frames on this interface bound to no link: broadcasts, clear hellos, handshakes.
    Unlinked(IfaceId),
}

impl Default for Lane {
    fn default() -> Lane {
        Lane::Unlinked(IfaceId::default())
    }
}

/// Number of lanes: one per link slot, then one per possible interface id (the daemon
/// numbers interfaces by their place in its configuration, which may pass `MAX_IFACES`).
const LANES: usize = MAX_LINKS + IFACE_IDS;
/// Interface ids there can be.
const IFACE_IDS: usize = u8::MAX as usize + 1;

/// Marks the end of a slot chain.
const NONE: u16 = u16::MAX;

/// One FIFO of slots, chained through `TxQueues::next`.
#[derive(Debug, Clone, Copy)]
struct Fifo {
    head: u16,
    tail: u16,
    len: u16,
}

impl Fifo {
    const EMPTY: Fifo = Fifo {
        head: NONE,
        tail: NONE,
        len: 0,
    };
}

/// A lane's two queues, control first.
#[derive(Debug, Clone, Copy)]
struct LaneQueues {
    control: Fifo,
    data: Fifo,
}

impl LaneQueues {
    fn is_empty(&self) -> bool {
        self.control.len == 0 && self.data.len == 0
    }

    /// The queue the lane sends from next: control before data.
    fn next_class(&self) -> bool {
        self.control.len > 0
    }

    fn fifo(&mut self, control: bool) -> &mut Fifo {
        if control {
            &mut self.control
        } else {
            &mut self.data
        }
    }
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::node) enum Full {
    /// Its class's slots are all taken.
    Class,
    /// Its link holds its share of the data slots.
    Link,
}

/// Frames waiting to be sent, by lane and class.
pub(in crate::node) struct TxQueues {
    slots: Vec<Slot<TxMeta>>,
    /// The slot after each slot in its FIFO.
    next: Vec<u16>,
    /// Slots holding no frame.
    free: Vec<u16>,
    lanes: Vec<LaneQueues>,
    /// Lanes holding frames, in the order they send; a lane appears at most once.
    active: Vec<u16>,
    active_head: usize,
    active_len: usize,
    control_budget: usize,
    data_budget: usize,
    control_used: usize,
    data_used: usize,
    link_data_cap: usize,
}

impl TxQueues {
    /// Queues for at most `control` control and `data` data frames, allocated now and never
    /// again.
    pub(in crate::node) fn new(control: usize, data: usize) -> TxQueues {
        let (control, data) = (control.max(1), data.max(1));
        // Slot indices are u16 with one value reserved.
        let total = (control + data).min(usize::from(NONE));
        let slots = (0..total).map(|_| Slot::empty()).collect();
        TxQueues {
            slots,
            next: vec![NONE; total],
            free: (0..total as u16).rev().collect(),
            lanes: vec![
                LaneQueues {
                    control: Fifo::EMPTY,
                    data: Fifo::EMPTY,
                };
                LANES
            ],
            active: vec![0; LANES],
            active_head: 0,
            active_len: 0,
            control_budget: control,
            data_budget: data,
            control_used: 0,
            data_used: 0,
            link_data_cap: data.div_ceil(2),
        }
    }

    /// The drop reason when a frame of this class is refused.
    pub(in crate::node) fn full_reason(control: bool, full: Full) -> DropReason {
        match (full, control) {
            (Full::Link, _) => DropReason::TxLinkQueueFull,
            (Full::Class, true) => DropReason::TxControlQueueFull,
            (Full::Class, false) => DropReason::TxDataQueueFull,
        }
    }

    /// The free slot the next `commit` will enqueue a frame of this class in lane `lane`
    /// (its bytes are written there in place), or why there is none.
    pub(in crate::node) fn reserve(
        &mut self,
        lane: Lane,
        control: bool,
    ) -> Result<&mut Slot<TxMeta>, Full> {
        let (used, budget) = if control {
            (self.control_used, self.control_budget)
        } else {
            (self.data_used, self.data_budget)
        };
        // A link slot past the table (none is made) has no lane: refused like a full one.
        let queues = lane_index(lane)
            .and_then(|l| self.lanes.get(l))
            .ok_or(Full::Class)?;
        if used >= budget {
            return Err(Full::Class);
        }
        let link_full = usize::from(queues.data.len) >= self.link_data_cap;
        if !control && matches!(lane, Lane::Link(_)) && link_full {
            return Err(Full::Link);
        }
        let idx = *self.free.last().ok_or(Full::Class)?;
        self.slots.get_mut(usize::from(idx)).ok_or(Full::Class)
    }

    /// Enqueue the slot `reserve` returned, holding `len` bytes described by `meta`, at the
    /// back of its lane's queue of its class.
    pub(in crate::node) fn commit(&mut self, len: usize, meta: TxMeta) {
        let Some(lane) = lane_index(meta.lane) else {
            return;
        };
        let Some(idx) = self.free.pop() else {
            return;
        };
        if let Some(slot) = self.slots.get_mut(usize::from(idx)) {
            slot.len = len;
            slot.meta = meta;
        }
        if let Some(n) = self.next.get_mut(usize::from(idx)) {
            *n = NONE;
        }
        if meta.control {
            self.control_used += 1;
        } else {
            self.data_used += 1;
        }
        let Some(q) = self.lanes.get_mut(lane) else {
            return;
        };
        let was_idle = q.is_empty();
        let fifo = q.fifo(meta.control);
        let old_tail = fifo.tail;
        fifo.tail = idx;
        if fifo.len == 0 {
            fifo.head = idx;
        }
        fifo.len += 1;
        if old_tail != NONE {
            if let Some(n) = self.next.get_mut(usize::from(old_tail)) {
                *n = idx;
            }
        }
        if was_idle {
            self.activate(lane);
        }
    }

    /// The frame to send next: the head of the first active lane's control queue, else of
    /// its data queue.
    pub(in crate::node) fn front(&self) -> Option<&Slot<TxMeta>> {
        let lane = self.front_lane()?;
        let q = self.lanes.get(lane)?;
        let head = if q.next_class() {
            q.control.head
        } else {
            q.data.head
        };
        self.slots.get(usize::from(head))
    }

    /// Remove the frame `front` returned; its lane goes to the back of the turn order if it
    /// still holds frames.
    pub(in crate::node) fn pop(&mut self) {
        let Some(lane) = self.front_lane() else {
            return;
        };
        let Some(q) = self.lanes.get_mut(lane) else {
            return;
        };
        let control = q.next_class();
        let fifo = q.fifo(control);
        let idx = fifo.head;
        fifo.head = self.next.get(usize::from(idx)).copied().unwrap_or(NONE);
        fifo.len = fifo.len.saturating_sub(1);
        if fifo.len == 0 {
            fifo.tail = NONE;
        }
        let now_idle = q.is_empty();
        self.free.push(idx);
        if control {
            self.control_used = self.control_used.saturating_sub(1);
        } else {
            self.data_used = self.data_used.saturating_sub(1);
        }
        self.active_head = (self.active_head + 1) % LANES;
        self.active_len -= 1;
        if !now_idle {
            self.activate(lane);
        }
    }

    /// Frames queued, of both classes.
    #[cfg(test)]
    pub(in crate::node) fn len(&self) -> usize {
        self.control_used + self.data_used
    }

    fn front_lane(&self) -> Option<usize> {
        if self.active_len == 0 {
            return None;
        }
        self.active.get(self.active_head).map(|&l| usize::from(l))
    }

    /// Put `lane` at the back of the turn order (it is not in it).
    fn activate(&mut self, lane: usize) {
        let at = (self.active_head + self.active_len) % LANES;
        if let Some(a) = self.active.get_mut(at) {
            *a = lane as u16;
            self.active_len += 1;
        }
    }
}

/// The lane table's index of `lane`: link slots first, then interfaces.
fn lane_index(lane: Lane) -> Option<usize> {
    match lane {
        Lane::Link(slot) => (slot < MAX_LINKS).then_some(slot),
        Lane::Unlinked(iface) => Some(MAX_LINKS + usize::from(iface.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(q: &mut TxQueues, lane: Lane, control: bool, len: usize) -> Result<(), Full> {
        q.reserve(lane, control)?;
        let meta = TxMeta {
            control,
            lane,
            ..TxMeta::default()
        };
        q.commit(len, meta);
        Ok(())
    }

    fn drain(q: &mut TxQueues) -> Vec<usize> {
        let mut out = Vec::new();
        while let Some(s) = q.front() {
            out.push(s.len);
            q.pop();
        }
        out
    }

    #[test]
    fn a_full_class_leaves_room_for_the_other() {
        let mut q = TxQueues::new(2, 4);
        let a = Lane::Link(1);
        assert!(push(&mut q, a, true, 1).is_ok() && push(&mut q, a, true, 2).is_ok());
        assert_eq!(
            push(&mut q, Lane::Unlinked(IfaceId(0)), true, 3),
            Err(Full::Class)
        );
        assert!(push(&mut q, a, false, 10).is_ok(), "data still has room");
        let mut q = TxQueues::new(2, 4);
        for (i, lane) in [Lane::Link(1), Lane::Link(1), Lane::Link(2), Lane::Link(3)]
            .into_iter()
            .enumerate()
        {
            assert!(push(&mut q, lane, false, 10 + i).is_ok());
        }
        assert_eq!(push(&mut q, Lane::Link(4), false, 14), Err(Full::Class));
        assert!(
            push(&mut q, Lane::Link(4), true, 1).is_ok(),
            "control has room"
        );
    }

    #[test]
    fn one_link_holds_at_most_half_the_data_slots() {
        let mut q = TxQueues::new(4, 8);
        for i in 0..4 {
            assert!(push(&mut q, Lane::Link(7), false, i).is_ok());
        }
        assert_eq!(push(&mut q, Lane::Link(7), false, 4), Err(Full::Link));
        assert_eq!(
            TxQueues::full_reason(false, Full::Link),
            DropReason::TxLinkQueueFull
        );
        assert!(
            push(&mut q, Lane::Link(7), true, 5).is_ok(),
            "control is not capped"
        );
        assert!(
            push(&mut q, Lane::Link(8), false, 6).is_ok(),
            "another link is not"
        );
        assert!(push(&mut q, Lane::Unlinked(IfaceId(0)), false, 7).is_ok());
        assert_eq!(q.len(), 7);
    }

    #[test]
    fn a_backlogged_link_delays_another_by_one_frame() {
        let mut q = TxQueues::new(8, 64);
        for len in 100..130 {
            assert!(push(&mut q, Lane::Link(1), false, len).is_ok());
        }
        assert!(push(&mut q, Lane::Link(2), false, 7).is_ok());
        assert!(push(&mut q, Lane::Unlinked(IfaceId(0)), true, 8).is_ok());
        let sent = drain(&mut q);
        assert_eq!(&sent[..4], &[100, 7, 8, 101], "lanes take turns");
        let link1: Vec<usize> = sent.iter().copied().filter(|&l| l >= 100).collect();
        assert_eq!(
            link1,
            (100..130).collect::<Vec<_>>(),
            "a lane keeps its order"
        );
        assert_eq!(q.len(), 0);
        assert!(q.front().is_none());
    }

    #[test]
    fn every_interface_id_has_a_lane_and_no_frame_is_lost_unnoticed() {
        // The daemon numbers interfaces by their place in its configuration: an id past
        // MAX_IFACES still gets its frames sent.
        let mut q = TxQueues::new(4, 4);
        assert!(push(&mut q, Lane::Unlinked(IfaceId(200)), true, 5).is_ok());
        assert!(push(&mut q, Lane::Unlinked(IfaceId(u8::MAX)), true, 6).is_ok());
        // A link slot the table never makes is refused (the caller counts it), not queued
        // and forgotten.
        assert_eq!(
            push(&mut q, Lane::Link(MAX_LINKS), false, 7),
            Err(Full::Class)
        );
        assert_eq!(drain(&mut q), vec![5, 6]);
    }

    #[test]
    fn control_goes_before_data_within_a_lane_and_slots_are_reused() {
        let mut q = TxQueues::new(2, 2);
        for round in 0..3 {
            assert!(push(&mut q, Lane::Link(3), false, 10 + round).is_ok());
            assert!(push(&mut q, Lane::Link(3), true, 1).is_ok());
            assert!(push(&mut q, Lane::Link(3), true, 2).is_ok());
            assert_eq!(drain(&mut q), vec![1, 2, 10 + round]);
        }
    }
}
