//! Our broadcast key and our neighbours': rotation (on time, on message count, when a
//! darknet neighbour's session ends), delivery, and the receivers kept per link
//! (docs/protocol.md §3.4).

use super::links::Link;
use super::LinkLayer;
use crate::crypto::{AcceptPolicy, GroupReceiver};
use crate::node::Shared;
use crate::time::{Duration, Instant};
use crate::wire::GroupKeyRepr;

/// A group key is replaced after this long.
pub const GROUP_KEY_LIFETIME: Duration = Duration::from_secs(900);
/// A group key is replaced after sealing this many frames (far below the counter limit).
pub const GROUP_KEY_MAX_MESSAGES: u64 = 1 << 32;

/// Why our group key is due for replacement now, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateReason {
    /// It is older than `GROUP_KEY_LIFETIME`.
    Age,
    /// It sealed `GROUP_KEY_MAX_MESSAGES` frames.
    Messages,
}

/// Whether a key made at `since` that sealed `sent` frames must be replaced at `now`.
pub fn rotation_due(since: Instant, sent: u64, now: Instant) -> Option<RotateReason> {
    if sent >= GROUP_KEY_MAX_MESSAGES {
        Some(RotateReason::Messages)
    } else if now.saturating_since(since) >= GROUP_KEY_LIFETIME {
        Some(RotateReason::Age)
    } else {
        None
    }
}

impl LinkLayer {
    /// Replace our group key and hand the new one to every neighbour we hold a confirmed
    /// session with and routing considers up, ahead of any broadcast sealed with it (one
    /// transmit queue, in order).
    fn rotate_group_key(&mut self, now: Instant, shared: &mut Shared) {
        self.group.rotate(&mut shared.rng);
        self.group_since = now;
        shared.stats.group_key_rotations += 1;
        let key = self.group.repr();
        // Only to neighbours routing still hears: one that left keeps its session until
        // it expires, but must not get the new key.
        let slots: heapless::Vec<usize, { super::MAX_LINKS }> = self
            .links
            .table()
            .iter()
            .filter(|e| e.state.neighbor.as_ref().is_some_and(|n| n.is_up()))
            .filter(|e| e.state.link.current.as_ref().is_some_and(|s| s.confirmed))
            .map(|e| e.id.slot())
            .collect();
        for slot in slots {
            self.queue_unicast_slot(slot, true, &mut shared.stats, |w| w.push_group_key(&key));
        }
    }

    /// The group key timer: rotate our key when its time or message count is up.
    pub(in crate::node) fn housekeep_group_key(&mut self, now: Instant, shared: &mut Shared) {
        if rotation_due(self.group_since, self.group.sent(), now).is_some() {
            self.rotate_group_key(now, shared);
        }
    }

    /// This many authenticated neighbours were just lost (routing gave up on them, or
    /// their session ended): in a darknet, whoever left must not read what we broadcast
    /// from now on.
    pub(in crate::node) fn neighbours_left(
        &mut self,
        now: Instant,
        left: usize,
        shared: &mut Shared,
    ) {
        if left > 0 && matches!(shared.cfg.policy, AcceptPolicy::AllowList(_)) {
            self.rotate_group_key(now, shared);
        }
    }
}

/// A GroupKey message from the neighbour of `link`: a key already held changes nothing
/// (its replay window stays); a new one becomes current and the old one is kept for frames
/// still in flight.
pub fn receive_group_key(link: &mut Link, repr: &GroupKeyRepr) {
    if link.group.as_ref().is_some_and(|g| g.holds(repr))
        || link.group_previous.as_ref().is_some_and(|g| g.holds(repr))
    {
        return;
    }
    link.group_previous = link.group.take();
    link.group = Some(GroupReceiver::from_repr(repr));
}

/// The receiver of `link` for broadcasts under `key_id`: the current key or the one before.
pub fn receiver_for(link: &mut Link, key_id: u32) -> Option<&mut GroupReceiver> {
    if link.group.as_ref().is_some_and(|g| g.key_id() == key_id) {
        link.group.as_mut()
    } else {
        link.group_previous
            .as_mut()
            .filter(|g| g.key_id() == key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_due_on_age_and_on_message_count() {
        let t = Instant::from_millis(5);
        assert_eq!(
            rotation_due(t, 0, t + GROUP_KEY_LIFETIME),
            Some(RotateReason::Age)
        );
        assert_eq!(rotation_due(t, 0, t + Duration::from_secs(899)), None);
        assert_eq!(
            rotation_due(t, GROUP_KEY_MAX_MESSAGES, t),
            Some(RotateReason::Messages)
        );
        assert_eq!(rotation_due(t, GROUP_KEY_MAX_MESSAGES - 1, t), None);
    }
}
