//! The node's two transmit queues: control frames (hellos, handshakes, broadcasts, probes,
//! table dumps) and data frames, each bounded on its own so neither can crowd the other
//! out, drained alternately so neither waits behind a burst of the other.

use super::tx::TxMeta;
use crate::node::ring::{Ring, Slot};
use crate::node::DropReason;

/// Control and data frames waiting to be sent.
pub(in crate::node) struct TxQueues {
    control: Ring<TxMeta>,
    data: Ring<TxMeta>,
    /// Which queue `front` serves next when both hold frames.
    data_next: bool,
}

impl TxQueues {
    /// Queues of `control` and `data` slots, allocated now and never again.
    pub(in crate::node) fn new(control: usize, data: usize) -> TxQueues {
        TxQueues {
            control: Ring::new(control),
            data: Ring::new(data),
            data_next: false,
        }
    }

    /// The queue a frame of this class goes to.
    pub(in crate::node) fn ring(&mut self, control: bool) -> &mut Ring<TxMeta> {
        if control {
            &mut self.control
        } else {
            &mut self.data
        }
    }

    /// The drop reason when the queue of this class is full.
    pub(in crate::node) fn full_reason(control: bool) -> DropReason {
        if control {
            DropReason::TxControlQueueFull
        } else {
            DropReason::TxDataQueueFull
        }
    }

    /// Whether the next frame comes from the data queue: its turn and it holds one, or the
    /// control queue is empty.
    fn data_turn(&self) -> bool {
        self.data_next && !self.data.is_empty() || self.control.is_empty()
    }

    /// The frame to send next: the queues take turns while both hold frames.
    pub(in crate::node) fn front(&self) -> Option<&Slot<TxMeta>> {
        if self.data_turn() {
            self.data.front()
        } else {
            self.control.front()
        }
    }

    /// Remove the frame `front` returned, and give the other queue the next turn.
    pub(in crate::node) fn pop(&mut self) {
        if self.data_turn() {
            self.data.pop();
            self.data_next = false;
        } else {
            self.control.pop();
            self.data_next = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(q: &mut TxQueues, control: bool, len: usize) -> bool {
        let ring = q.ring(control);
        if ring.reserve().is_none() {
            return false;
        }
        let meta = TxMeta {
            control,
            ..TxMeta::default()
        };
        ring.commit_as(len, meta);
        true
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
    fn a_full_queue_of_one_class_leaves_room_for_the_other() {
        let mut q = TxQueues::new(2, 3);
        assert!(push(&mut q, true, 1) && push(&mut q, true, 2));
        assert!(!push(&mut q, true, 3), "control holds 2");
        assert!(push(&mut q, false, 10), "data still has room");
        let mut q = TxQueues::new(2, 3);
        for i in 0..3 {
            assert!(push(&mut q, false, 10 + i));
        }
        assert!(!push(&mut q, false, 13), "data holds 3");
        assert!(push(&mut q, true, 1), "control still has room");
    }

    #[test]
    fn the_queues_take_turns_and_keep_their_own_order() {
        let mut q = TxQueues::new(8, 8);
        for len in [1, 2, 3] {
            push(&mut q, true, len);
        }
        for len in [10, 11] {
            push(&mut q, false, len);
        }
        assert_eq!(drain(&mut q), vec![1, 10, 2, 11, 3]);
        // Control went last, so data has the next turn.
        push(&mut q, true, 4);
        push(&mut q, false, 12);
        assert_eq!(drain(&mut q), vec![12, 4]);
        assert!(q.front().is_none());
    }
}
