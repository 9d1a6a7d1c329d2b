//! The node's view of the link table (`crate::link`): per neighbour, the pending handshake,
//! current and previous session and the neighbour's group key, next to routing's part of
//! the same entry. A session index names its slot so lookups are O(1).

use crate::crypto::{GroupReceiver, Initiator, PublicIdentity, Responder, Session};
use crate::link::{LinkId, LinkTable};
use crate::node::index::{slot_of, which_named, Which};
use crate::node::timers::STUCK_RETRY;
use crate::node::IfaceId;
use crate::routing::seqno::Gcra;
use crate::routing::{eviction_rank, Neighbor, NeighborSlot};
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, NodeId};

pub use crate::link::MAX_LINKS;
/// A handshake not completed within this time is abandoned.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Least time between two handshakes we start toward one neighbour.
pub const HANDSHAKE_RETRY: Duration = Duration::from_secs(1);
/// A link with no session and no frame heard for this long is forgotten.
pub const IDLE_LINK_TIMEOUT: Duration = Duration::from_secs(60);
/// A session that authenticated nothing for this long no longer protects its link: an
/// older Init (the peer lost its state) or another identity behind the MAC is accepted.
pub const SESSION_SILENT_AFTER: Duration = Duration::from_secs(10);
/// Forged or broken Resp/Finish messages one pending handshake reads (each costs a key
/// agreement) before it ignores the rest until it times out.
pub const MAX_FAILED_READS: u8 = 4;

/// An established transport session and the indices that name it on the air.
pub struct LinkSession {
    /// Our index: the peer puts it in the frames it sends us.
    pub local_idx: u32,
    /// The peer's index: we put it in the frames we send.
    pub remote_idx: u32,
    /// Keys, counters, replay window, rekey timers.
    pub session: Session,
    /// Whether the peer has used it: an initiator's session counts only once a frame from
    /// the responder opened under it (the responder may have refused our identity).
    pub confirmed: bool,
    /// When the handshake completed.
    pub since: Instant,
}

/// A handshake in progress.
pub enum Pending {
    /// We sent HandshakeInit and wait for HandshakeResp.
    Initiating {
        /// Noise state.
        hs: Box<Initiator>,
        /// Our index for the session being made.
        local_idx: u32,
        /// When we sent the Init.
        since: Instant,
        /// Resp messages that failed to authenticate so far.
        failed: u8,
    },
    /// We answered an Init and wait for HandshakeFinish.
    Responding {
        /// Noise state.
        hs: Box<Responder>,
        /// Our index for the session being made.
        local_idx: u32,
        /// The initiator's index.
        remote_idx: u32,
        /// When we sent the Resp.
        since: Instant,
        /// The initiator's handshake sequence number.
        init_seq: u64,
        /// Finish messages that failed to authenticate so far.
        failed: u8,
    },
}

impl Pending {
    /// Our index of the session this handshake makes.
    pub fn local_idx(&self) -> u32 {
        match self {
            Pending::Initiating { local_idx, .. } | Pending::Responding { local_idx, .. } => {
                *local_idx
            }
        }
    }

    /// When the handshake started.
    pub fn since(&self) -> Instant {
        match self {
            Pending::Initiating { since, .. } | Pending::Responding { since, .. } => *since,
        }
    }

    /// Count a message that failed to authenticate; false once there were too many.
    pub fn note_failed_read(&mut self) -> bool {
        let failed = match self {
            Pending::Initiating { failed, .. } | Pending::Responding { failed, .. } => failed,
        };
        *failed = failed.saturating_add(1);
        *failed < MAX_FAILED_READS
    }

    /// Whether this handshake already read too many bad messages to try another.
    pub fn read_budget_spent(&self) -> bool {
        match self {
            Pending::Initiating { failed, .. } | Pending::Responding { failed, .. } => {
                *failed >= MAX_FAILED_READS
            }
        }
    }
}

/// Everything the node knows about one neighbour on one interface.
pub struct Link {
    /// Interface the neighbour is on (the table entry's key, copied: it never changes).
    pub(super) iface: IfaceId,
    /// The neighbour's MAC (the table entry's key, copied).
    pub(super) mac: MacAddr,
    /// A handshake in progress.
    pub(super) pending: Option<Pending>,
    /// The session we send with.
    pub(super) current: Option<LinkSession>,
    /// The session before the last rekey, kept for receiving until it expires.
    pub(super) previous: Option<LinkSession>,
    /// The neighbour's verified identity, once a handshake completed.
    pub(super) peer: Option<PublicIdentity>,
    /// Node id of `peer`.
    pub(super) node: Option<NodeId>,
    /// The neighbour's broadcast key.
    pub(super) group: Option<GroupReceiver>,
    /// Its key before the last rotation, for broadcasts still in flight.
    pub(super) group_previous: Option<GroupReceiver>,
    /// When we last started a handshake toward it.
    pub(super) last_attempt: Option<Instant>,
    /// When we last asked it for its group key.
    pub(super) last_group_request: Option<Instant>,
    /// When we last sent it our whole table.
    pub(super) last_table_dump: Option<Instant>,
    /// When we last heard any frame from it.
    pub(super) last_heard: Instant,
    /// When a frame from it last opened under a session or its group key.
    pub(super) last_authenticated: Option<Instant>,
    /// Highest handshake sequence number of an Init from this MAC we answered.
    pub(super) peer_init_seq: Option<u64>,
    /// Rate of Inits from this MAC we answer.
    pub(super) answer_gate: Gcra,
    /// Rate of signature checks of new announcements this neighbour sent.
    pub(super) announce_check_gate: Gcra,
}

impl Link {
    fn new(iface: IfaceId, mac: MacAddr, now: Instant) -> Self {
        Link {
            iface,
            mac,
            pending: None,
            current: None,
            previous: None,
            peer: None,
            node: None,
            group: None,
            group_previous: None,
            last_attempt: None,
            last_group_request: None,
            last_table_dump: None,
            last_heard: now,
            last_authenticated: None,
            peer_init_seq: None,
            answer_gate: Gcra::default(),
            announce_check_gate: Gcra::default(),
        }
    }

    /// Whether a handshake that completed with `node` must be refused: another identity
    /// answering in place of the one whose session on this MAC is alive (a member with a
    /// spoofed MAC).
    pub fn refuses_identity(&self, now: Instant, node: NodeId) -> bool {
        self.session_alive(now) && self.node != Some(node)
    }

    /// Whether a confirmed session authenticated a frame from this neighbour lately: then
    /// nothing unconfirmed may take its place.
    pub fn session_alive(&self, now: Instant) -> bool {
        self.current.as_ref().is_some_and(|s| s.confirmed)
            && self
                .last_authenticated
                .is_some_and(|t| now.saturating_since(t) < SESSION_SILENT_AFTER)
    }

    /// When housekeeping next has something to do for this link (see `housekeep_links`):
    /// the pending handshake times out, a session is still unconfirmed or expires, the
    /// current session is due for a rekey (no sooner than a retry allows), or the link is
    /// idle long enough to forget (if `forgettable`: routing holds no part of it). The
    /// message-count rekey is left out: 2^32 frames within `REKEY_AFTER_TIME` is beyond
    /// any radio, so the time-based rekey always comes first.
    pub fn deadline(&self, forgettable: bool) -> Option<Instant> {
        let pending = self.pending.as_ref().map(|p| p.since() + HANDSHAKE_TIMEOUT);
        let previous = self
            .previous
            .as_ref()
            .map(|s| s.session.timers.expires_at());
        let current = self.current.as_ref().map(|s| {
            let retry = self
                .last_attempt
                .map_or(Instant::ZERO, |t| t + HANDSHAKE_RETRY);
            let rekey = s.session.timers.rekey_at().max(retry);
            let mut at = s.session.timers.expires_at().min(rekey);
            if !s.confirmed {
                at = at.min(s.since + HANDSHAKE_TIMEOUT);
            }
            at
        });
        let idle = forgettable.then_some(self.last_heard + IDLE_LINK_TIMEOUT);
        [pending, previous, current]
            .into_iter()
            .flatten()
            .min()
            .or(idle)
    }

    /// Whether it holds nothing: no session, no handshake.
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.pending.is_none()
    }

    /// Whether we may start a handshake toward this neighbour now.
    pub fn may_initiate(&self, now: Instant) -> bool {
        self.pending.is_none()
            && self
                .last_attempt
                .is_none_or(|t| now.saturating_since(t) >= HANDSHAKE_RETRY)
    }
}

/// One entry of the node's link table: its sessions, and routing's part.
pub struct LinkState {
    /// Sessions, handshake, group key.
    pub(super) link: Link,
    /// Routing's part (link quality, liveness), while routing holds the neighbour.
    pub neighbor: Option<Neighbor>,
}

impl NeighborSlot for LinkState {
    fn neighbor(&self) -> Option<&Neighbor> {
        self.neighbor.as_ref()
    }

    fn neighbor_slot(&mut self) -> &mut Option<Neighbor> {
        &mut self.neighbor
    }

    fn with_neighbor(n: Neighbor) -> Self {
        LinkState {
            link: Link::new(n.iface, n.mac, n.last_heard),
            neighbor: Some(n),
        }
    }

    fn idle(&self) -> bool {
        self.link.is_idle()
    }

    fn last_heard(&self) -> Instant {
        let routing = self
            .neighbor
            .as_ref()
            .map_or(Instant::ZERO, |n| n.last_heard);
        self.link.last_heard.max(routing)
    }
}

/// The node's link table, addressed by slot inside the node (a session index carries it).
#[derive(Default)]
pub struct Links {
    table: LinkTable<LinkState>,
}

impl Links {
    /// The whole table, for routing's calls.
    pub fn table(&self) -> &LinkTable<LinkState> {
        &self.table
    }

    /// The whole table, mutably, for routing's calls.
    pub fn table_mut(&mut self) -> &mut LinkTable<LinkState> {
        &mut self.table
    }

    /// The id of the link in `slot`.
    pub fn id(&self, slot: usize) -> Option<LinkId> {
        self.table.id_at(slot)
    }

    /// The slot of the link to `mac` on `iface`.
    pub fn find(&self, iface: IfaceId, mac: MacAddr) -> Option<usize> {
        self.table.find(iface, mac).map(LinkId::slot)
    }

    /// The link to `mac` on `iface`.
    pub fn by_mac(&self, iface: IfaceId, mac: MacAddr) -> Option<&Link> {
        self.find(iface, mac).and_then(|s| self.get(s))
    }

    /// The link to `mac` on `iface`, mutably.
    pub fn by_mac_mut(&mut self, iface: IfaceId, mac: MacAddr) -> Option<&mut Link> {
        self.find(iface, mac).and_then(|s| self.get_mut(s))
    }

    /// The link `id`.
    pub fn by_id(&self, id: LinkId) -> Option<&Link> {
        self.table.get(id).map(|e| &e.state.link)
    }

    /// The link `id`, mutably.
    pub fn by_id_mut(&mut self, id: LinkId) -> Option<&mut Link> {
        self.table.get_mut(id).map(|e| &mut e.state.link)
    }

    /// The link in `slot`.
    pub fn get(&self, slot: usize) -> Option<&Link> {
        let id = self.table.id_at(slot)?;
        self.table.get(id).map(|e| &e.state.link)
    }

    /// The link in `slot`, mutably.
    pub fn get_mut(&mut self, slot: usize) -> Option<&mut Link> {
        let id = self.table.id_at(slot)?;
        self.table.get_mut(id).map(|e| &mut e.state.link)
    }

    /// Whether routing holds a part of the link in `slot` (then routing forgets it).
    pub fn routing_holds(&self, slot: usize) -> bool {
        let id = self.table.id_at(slot);
        id.and_then(|id| self.table.get(id))
            .is_some_and(|e| e.state.neighbor.is_some())
    }

    /// The slot for `mac` on `iface`, creating it; when full, the least recently heard link
    /// without a session or a neighbour routing uses is evicted. `None` if there is none.
    pub fn find_or_insert(&mut self, iface: IfaceId, mac: MacAddr, now: Instant) -> Option<usize> {
        if let Some(slot) = self.find(iface, mac) {
            return Some(slot);
        }
        let state = LinkState {
            link: Link::new(iface, mac, now),
            neighbor: None,
        };
        let inserted = self.table.insert(iface, mac, state, eviction_rank).ok()?;
        Some(inserted.id.slot())
    }

    /// The link and session named by a received index.
    pub fn by_index(&mut self, idx: u32) -> Option<(usize, Which)> {
        let slot = slot_of(idx);
        let link = self.get(slot)?;
        let local = |s: &Option<LinkSession>| s.as_ref().map(|s| s.local_idx);
        which_named(idx, local(&link.current), local(&link.previous)).map(|w| (slot, w))
    }

    /// The slot whose pending handshake has index `idx`.
    pub fn by_pending_index(&self, idx: u32) -> Option<usize> {
        let slot = slot_of(idx);
        let link = self.get(slot)?;
        link.pending
            .as_ref()
            .is_some_and(|p| p.local_idx() == idx)
            .then_some(slot)
    }

    /// The earliest deadline of any link (`Link::deadline`) after housekeeping at `now`.
    /// A link still due then wanted something it could not have (a rekey the handshake
    /// budget refused): it is looked at again `STUCK_RETRY` later, not in a busy loop.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        self.table
            .iter()
            .filter_map(|e| e.state.link.deadline(e.state.neighbor.is_none()))
            .map(|due| if due <= now { now + STUCK_RETRY } else { due })
            .min()
    }

    /// Iterate over occupied slots.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Link)> {
        self.table.iter().map(|e| (e.id.slot(), &e.state.link))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(i: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, i])
    }

    #[test]
    fn full_table_evicts_only_links_without_session() {
        let mut links = Links::default();
        let t = Instant::from_millis(1);
        // Two interfaces, each with its share (`MAX_LINKS_PER_IFACE`) full.
        for i in 0..MAX_LINKS {
            let iface = IfaceId((i / crate::link::MAX_LINKS_PER_IFACE) as u8);
            let s = links.find_or_insert(iface, mac(i as u8), t + Duration::from_millis(i as u64));
            assert_eq!(s, Some(i));
        }
        // The oldest on the interface (slot 0) goes first.
        let s = links.find_or_insert(IfaceId(0), mac(200), t + Duration::from_secs(1));
        assert_eq!(s, Some(0));
        assert_eq!(links.find(IfaceId(0), mac(0)), None);
        assert_eq!(links.find(IfaceId(1), mac(200)), None);
        assert_eq!(links.find(IfaceId(0), mac(200)), Some(0));
    }
}
