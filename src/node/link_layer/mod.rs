//! The link layer: the neighbours on each interface, their sessions, handshakes and group
//! keys, and the transmit queues frames wait in until `poll_transmit`.
//!
//! The other parts name a neighbour by its `LinkId` and ask this layer to queue a frame to
//! it, to re-seal a relayed frame for it, or to open what it sent; routing's part of each
//! link table entry is lent to the control plane (`table_mut`). Inside, a link is found by
//! its slot, which a session index carries in its low byte.

mod budget;
mod group_keys;
mod handshake;
mod links;
mod open;
mod tx;
mod tx_queues;

pub use budget::{ANNOUNCE_CHECK_BURST, ANNOUNCE_CHECK_PERIOD};
pub use links::{HANDSHAKE_RETRY, HANDSHAKE_TIMEOUT, MAX_LINKS, SESSION_SILENT_AFTER};

pub(super) use budget::Trigger;
pub(super) use tx::Relayed;

#[cfg(test)]
pub(super) use group_keys::GROUP_KEY_LIFETIME;
#[cfg(test)]
pub(super) use links::IDLE_LINK_TIMEOUT;

use rand_chacha::ChaCha20Rng;

use super::{DropReason, NodeConfig, Stats, Transmit, MAX_IFACES};
use crate::crypto::{FrameTagKey, GroupSender, MeshPsk};
use crate::iface::IfaceId;
use crate::link::{LinkId, LinkTable};
use crate::time::Instant;
use crate::wire::{GroupKeyRepr, MacAddr, Message, NodeId, TagParts, MAX_FRAME_LEN};
use budget::HandshakeBudgets;
use links::{LinkState, Links};
use tx_queues::{Full, TxQueues};

/// A neighbour whose link session just came up: routing and the caller are to be told.
#[derive(Debug, Clone, Copy)]
pub(super) struct SessionUp {
    /// Interface it is on.
    pub(super) iface: IfaceId,
    /// Its MAC.
    pub(super) mac: MacAddr,
    /// Its verified node id.
    pub(super) node: NodeId,
}

/// What link housekeeping found: neighbours whose session ended, links to forget, and
/// neighbours due for a rekey.
pub(super) struct Swept {
    /// Neighbours whose session ended (routing is told before their links go).
    pub(super) lost: heapless::Vec<(IfaceId, MacAddr), MAX_LINKS>,
    /// Links to forget.
    pub(super) forget: heapless::Vec<LinkId, MAX_LINKS>,
    /// Neighbours whose current session wants a rekey.
    pub(super) rekey: heapless::Vec<(IfaceId, MacAddr), MAX_LINKS>,
}

/// Sessions, handshakes and group keys of the neighbours on every interface, and the
/// queues frames wait in.
pub(super) struct LinkLayer {
    /// Our interfaces, with our MAC on each.
    ifaces: heapless::Vec<(IfaceId, MacAddr), MAX_IFACES>,
    /// The link table: per neighbour its sessions and group key, next to routing's part.
    links: Links,
    /// Our group key: it seals our broadcasts.
    group: GroupSender,
    /// When `group` was made.
    group_since: Instant,
    /// Who may make us spend a handshake.
    hs_budgets: HandshakeBudgets,
    /// Tags clear hellos and handshakes with the mesh PSK.
    tag_key: FrameTagKey,
    /// Sequence number of the last handshake we started (link or end to end).
    init_seq: u64,
    /// Frames waiting for `poll_transmit`.
    tx: TxQueues,
    /// Where `handle_frame` copies a received frame to open it in place (allocated once;
    /// taken while in use).
    scratch: Option<Box<[u8; MAX_FRAME_LEN]>>,
}

impl LinkLayer {
    /// No interface and no neighbour yet; a fresh group key from `rng`.
    pub(super) fn new(
        cfg: &NodeConfig,
        psk: &MeshPsk,
        epoch: u32,
        rng: &mut ChaCha20Rng,
        now: Instant,
    ) -> LinkLayer {
        LinkLayer {
            ifaces: heapless::Vec::new(),
            links: Links::default(),
            group: GroupSender::generate(rng),
            group_since: now,
            hs_budgets: HandshakeBudgets::new(now, cfg.handshakes_per_sec),
            tag_key: FrameTagKey::derive(psk),
            // Grows across restarts with the epoch (docs/protocol.md §3.5).
            init_seq: u64::from(epoch) << 32,
            tx: TxQueues::new(cfg.tx_control_queue, cfg.tx_queue),
            scratch: Some(Box::new([0u8; MAX_FRAME_LEN])),
        }
    }

    /// Our MAC on `iface`, if it is attached.
    pub(super) fn mac_of(&self, iface: IfaceId) -> Option<MacAddr> {
        self.ifaces
            .iter()
            .find(|(i, _)| *i == iface)
            .map(|(_, m)| *m)
    }

    /// Attach `iface` with our `mac` on it. False if there are too many.
    pub(super) fn add_interface(&mut self, iface: IfaceId, mac: MacAddr) -> bool {
        self.ifaces.push((iface, mac)).is_ok()
    }

    /// Detach `iface` from the list (its links go with `links_on` and `forget`).
    pub(super) fn remove_interface(&mut self, iface: IfaceId) {
        if let Some(pos) = self.ifaces.iter().position(|(i, _)| *i == iface) {
            self.ifaces.remove(pos);
        }
    }

    /// Every attached interface (a copy: queuing a frame on each borrows the layer).
    pub(super) fn ifaces(&self) -> heapless::Vec<IfaceId, MAX_IFACES> {
        self.ifaces.iter().map(|(i, _)| *i).collect()
    }

    /// Whether `mac` is ours on one of our interfaces.
    pub(super) fn is_own_mac(&self, mac: MacAddr) -> bool {
        self.ifaces.iter().any(|&(_, m)| m == mac)
    }

    /// Whether a clear hello from `src` carries the mesh PSK's tag.
    pub(super) fn hello_tag_ok(&self, src: MacAddr, tag: &TagParts<'_>) -> bool {
        self.tag_key
            .verify(src, MacAddr::BROADCAST, tag.covered, tag.tag)
    }

    /// Whether a handshake frame from `src` to us on `iface` carries the mesh PSK's tag.
    pub(super) fn handshake_tag_ok(
        &self,
        iface: IfaceId,
        src: MacAddr,
        tag: &TagParts<'_>,
    ) -> bool {
        self.mac_of(iface)
            .is_some_and(|dst| self.tag_key.verify(src, dst, tag.covered, tag.tag))
    }

    /// The whole link table, for routing's calls.
    pub(super) fn table(&self) -> &LinkTable<LinkState> {
        self.links.table()
    }

    /// The whole link table, mutably, for routing's calls.
    pub(super) fn table_mut(&mut self) -> &mut LinkTable<LinkState> {
        self.links.table_mut()
    }

    /// The link to `mac` on `iface`.
    pub(super) fn find(&self, iface: IfaceId, mac: MacAddr) -> Option<LinkId> {
        self.links.table().find(iface, mac)
    }

    /// Whether `id` names a link held now.
    pub(super) fn holds(&self, id: LinkId) -> bool {
        self.links.table().get(id).is_some()
    }

    /// The interface and neighbour MAC of link `id`.
    pub(super) fn link_key(&self, id: LinkId) -> Option<(IfaceId, MacAddr)> {
        self.links.table().get(id).map(|e| (e.iface, e.mac))
    }

    /// The verified node behind link `id`, once a handshake with it completed.
    pub(super) fn peer(&self, id: LinkId) -> Option<NodeId> {
        self.links.by_id(id).and_then(|l| l.node)
    }

    /// Number of neighbours with an established (confirmed) link session.
    pub(super) fn sessions(&self) -> usize {
        self.links
            .iter()
            .filter(|(_, l)| l.current.as_ref().is_some_and(|s| s.confirmed))
            .count()
    }

    /// Whether any neighbour on `iface` holds a session with us.
    pub(super) fn has_session_on(&self, iface: IfaceId) -> bool {
        self.links
            .iter()
            .any(|(_, l)| l.iface == iface && l.current.is_some())
    }

    /// Whether the neighbour `mac` on `iface` holds a session that authenticated a frame
    /// lately (`Link::session_alive`).
    pub(super) fn session_alive(&self, iface: IfaceId, mac: MacAddr, now: Instant) -> bool {
        self.links
            .by_mac(iface, mac)
            .is_some_and(|l| l.session_alive(now))
    }

    /// Whether the neighbour of `id` may make us check another announcement's signature
    /// now (recorded if so).
    pub(super) fn allow_announce_check(&mut self, id: LinkId, now: Instant) -> bool {
        self.links
            .by_id_mut(id)
            .is_some_and(|l| budget::announce_check_allows(&mut l.announce_check_gate, now))
    }

    /// Whether we may send the neighbour of `id` our whole table now (recorded if so);
    /// `None` if there is no such link.
    pub(super) fn allow_table_dump(&mut self, id: LinkId, now: Instant) -> Option<bool> {
        let link = self.links.by_id_mut(id)?;
        Some(budget::table_dump_allows(&mut link.last_table_dump, now))
    }

    /// A frame from the link `id` authenticated: it is alive. Returns its node, if known;
    /// `None` if there is no such link.
    pub(super) fn mark_authenticated(
        &mut self,
        id: LinkId,
        now: Instant,
    ) -> Option<Option<NodeId>> {
        let link = self.links.by_id_mut(id)?;
        link.last_heard = now;
        link.last_authenticated = Some(now);
        Some(link.node)
    }

    /// A GroupKey message from `mac` on `iface`.
    pub(super) fn receive_group_key(&mut self, iface: IfaceId, mac: MacAddr, key: &GroupKeyRepr) {
        if let Some(link) = self.links.by_mac_mut(iface, mac) {
            group_keys::receive_group_key(link, key);
        }
    }

    /// Send our group key to `mac` on `iface` (it asked for it).
    pub(super) fn send_group_key(&mut self, iface: IfaceId, mac: MacAddr, stats: &mut Stats) {
        if let Some(id) = self.find(iface, mac) {
            let key = self.group.repr();
            self.queue_unicast(id, true, stats, |w| w.push_group_key(&key));
        }
    }

    /// Broadcast `msgs` in one frame on `iface` under our group key. False if `iface` is
    /// not attached, or they do not fit in one frame or were not queued.
    pub(super) fn broadcast_messages(
        &mut self,
        iface: IfaceId,
        msgs: &[Message<'_>],
        stats: &mut Stats,
    ) -> bool {
        if self.mac_of(iface).is_none() {
            return false;
        }
        self.queue_broadcast(iface, stats, |w| msgs.iter().try_for_each(|m| w.push(m)))
    }

    /// The sequence number of a handshake we start now (link and end-to-end handshakes
    /// count in one sequence).
    pub(super) fn next_init_seq(&mut self) -> u64 {
        self.init_seq = self.init_seq.saturating_add(1);
        self.init_seq
    }

    /// The buffer `handle_frame` copies a received frame into (give it back with
    /// `put_scratch`); `None` while it is out.
    pub(super) fn take_scratch(&mut self) -> Option<Box<[u8; MAX_FRAME_LEN]>> {
        self.scratch.take()
    }

    /// Give back the buffer `take_scratch` lent.
    pub(super) fn put_scratch(&mut self, buf: Box<[u8; MAX_FRAME_LEN]>) {
        self.scratch = Some(buf);
    }

    /// The interface the next frame `poll_transmit` gives goes out on (frames whose link
    /// went away since they were queued are dropped first, so `poll_transmit` gives that
    /// frame).
    pub(super) fn next_transmit_iface(&mut self, stats: &mut Stats) -> Option<IfaceId> {
        self.drop_unsealable(stats);
        self.tx.front().map(|slot| slot.meta.iface)
    }

    /// The next frame to send, written into `buf` and sealed there under the key current
    /// now (lazy transmit: frames wait in the queues unsealed).
    pub(super) fn poll_transmit(&mut self, buf: &mut [u8], stats: &mut Stats) -> Option<Transmit> {
        loop {
            self.drop_unsealable(stats);
            let slot = self.tx.front()?;
            let len = slot.len;
            let meta = slot.meta;
            let (Some(dst), Some(src)) = (buf.get_mut(..len), slot.buf.get(..len)) else {
                // The caller's buffer is too small: the frame is dropped, not truncated.
                self.tx.pop();
                stats.drop(TxQueues::full_reason(meta.control, Full::Class));
                return None;
            };
            dst.copy_from_slice(src);
            self.tx.pop();
            if self.seal_now(meta.seal, dst) {
                return Some(Relayed { meta, len }.sent(stats));
            }
            // Its key's counter is spent (a rekey is due): dropped, try the next one.
            stats.drop(DropReason::NoSession);
        }
    }

    /// Drop frames at the front whose key went away while they waited (counted).
    fn drop_unsealable(&mut self, stats: &mut Stats) {
        while let Some(slot) = self.tx.front() {
            if self.can_seal(slot.meta.seal) {
                return;
            }
            self.tx.pop();
            stats.drop(DropReason::NoSession);
        }
    }

    /// When the group key timer is due next: when our key reaches its lifetime.
    pub(super) fn group_key_deadline(&self) -> Instant {
        self.group_since + group_keys::GROUP_KEY_LIFETIME
    }

    /// The earliest deadline of any link after housekeeping at `now`.
    pub(super) fn next_deadline(&self, now: Instant) -> Option<Instant> {
        self.links.next_deadline(now)
    }

    /// Forget the links `ids`.
    pub(super) fn forget(&mut self, ids: &[LinkId]) {
        for id in ids {
            self.links.table_mut().remove(*id);
        }
    }

    /// Every link on `iface`, to forget, and among them those with a session (lost).
    pub(super) fn links_on(&self, iface: IfaceId) -> Swept {
        let mut swept = Swept {
            lost: heapless::Vec::new(),
            forget: heapless::Vec::new(),
            rekey: heapless::Vec::new(),
        };
        for e in self.links.table().iter().filter(|e| e.iface == iface) {
            if e.state.link.current.is_some() {
                let _ = swept.lost.push((e.iface, e.mac));
            }
            let _ = swept.forget.push(e.id);
        }
        swept
    }

    /// Whether a handshake with `mac` on `iface` is in progress (`None`: no such link).
    #[cfg(test)]
    pub(super) fn handshake_pending(&self, iface: IfaceId, mac: MacAddr) -> Option<bool> {
        self.links.by_mac(iface, mac).map(|l| l.pending.is_some())
    }

    /// Whether link `id` holds a current session.
    pub(super) fn has_session(&self, id: LinkId) -> bool {
        self.links.by_id(id).is_some_and(|l| l.current.is_some())
    }
}
