//! Routing control traffic: turning routing's actions into frames, OGM authentication with
//! parked OGMs while an announcement is fetched, announcements, and housekeeping.

use crate::link::LinkId;
use crate::node::{DropReason, Event, IfaceId, Node, PendingOgm, Timer};
use crate::routing::{Action, AuthVerdict, Dest, OgmAuth};
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, NodeId, OgmRepr, ANNOUNCE_LEN};

/// Passes OGM checks to the announcement store and remembers the verdict, so the node can
/// park OGMs of originators whose announcement it must fetch first.
struct Recording<'a> {
    inner: &'a mut crate::node::Announcements,
    verdict: Option<AuthVerdict>,
}

impl OgmAuth for Recording<'_> {
    fn check(&mut self, ogm: &OgmRepr) -> AuthVerdict {
        let v = self.inner.check(ogm);
        self.verdict = Some(v);
        v
    }
}

/// One message of an OGM broadcast.
enum BatchItem {
    Announce([u8; ANNOUNCE_LEN]),
    Ogm(OgmRepr),
}

/// Push `items` from `*next` on while they fit; `*next` ends at the first that did not.
fn push_items(
    w: &mut crate::wire::MessageWriter<'_>,
    items: &[BatchItem],
    next: &mut usize,
) -> Result<(), crate::wire::Error> {
    while let Some(item) = items.get(*next) {
        let pushed = match item {
            BatchItem::Announce(a) => w.push_announce(a),
            BatchItem::Ogm(o) => w.push_ogm(o),
        };
        match pushed {
            Ok(()) => *next += 1,
            Err(crate::wire::Error::NoSpace) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A parked OGM whose announcement did not arrive within this time is dropped.
const PENDING_OGM_TIMEOUT: Duration = Duration::from_secs(2);
/// On an interface with a session, one hello round in this many also sends a clear hello.
const CLEAR_HELLO_EVERY: u16 = 4;

impl Node {
    /// Drain routing's outputs into frames and events.
    pub(in crate::node) fn drain_routing(&mut self, now: Instant) {
        while let Some(action) = self.routing.poll_action() {
            self.on_action(now, action);
        }
        while let Some(batch) = self.routing.poll_ogm_batch() {
            self.send_ogm_batch(&batch);
        }
        let mut left = 0;
        while let Some(e) = self.routing.poll_event() {
            let authenticated_loss =
                matches!(e, crate::routing::Event::NeighborDown { node: Some(_), .. });
            left += usize::from(authenticated_loss);
            self.shared.push_event(Event::Routing(e));
        }
        self.link.neighbours_left(now, left, &mut self.shared);
        let forgotten = self.routing.originators_forgotten();
        if forgotten != self.originators_forgotten {
            self.originators_forgotten = forgotten;
            self.expire_announcements();
        }
    }

    fn on_action(&mut self, _now: Instant, action: Action) {
        match action {
            Action::SendHello { iface, hello } => {
                let has_session = self.link.has_session_on(iface);
                // The clear hello's PSK tag lets a newcomer start a handshake with us from
                // its authenticated budget (a broadcast from an unknown MAC is a trigger
                // anyone can forge). Once the interface has a session it goes out every
                // CLEAR_HELLO_EVERY rounds only: a newcomer's own clear hellos, every round,
                // already make us start the handshake from ours, and the idle budget pays
                // for padded broadcasts instead (protocol §4.12). Neighbours with a session
                // get the encrypted hello and Ihu every round.
                if !has_session || hello.seq % CLEAR_HELLO_EVERY == 0 {
                    self.link
                        .queue_clear_hello(iface, &hello, &mut self.shared.stats);
                }
                if has_session {
                    let mut entries = heapless::Vec::<_, 64>::new();
                    for e in crate::routing::ihu_entries(self.link.table(), iface) {
                        if entries.push(e).is_err() {
                            break;
                        }
                    }
                    self.link
                        .queue_broadcast(iface, &mut self.shared.stats, |w| {
                            w.push_hello(&hello)?;
                            let fit = entries.len().min(w.ihu_capacity());
                            w.push_ihu(entries.get(..fit).unwrap_or(&[]))
                        });
                }
            }
            Action::SendProbe { iface, mac, seq } => {
                if let Some(id) = self.link.find(iface, mac) {
                    self.link
                        .queue_unicast(id, true, &mut self.shared.stats, |w| w.push_probe(seq));
                }
            }
            Action::SendSeqnoRequest { dest, req } => match dest {
                Dest::AllInterfaces => {
                    for iface in self.link.ifaces() {
                        self.link
                            .queue_broadcast(iface, &mut self.shared.stats, |w| {
                                w.push_seqno_request(&req)
                            });
                    }
                }
                Dest::Neighbor { iface, mac } => {
                    if let Some(id) = self.link.find(iface, mac) {
                        self.link
                            .queue_unicast(id, true, &mut self.shared.stats, |w| {
                                w.push_seqno_request(&req)
                            });
                    }
                }
            },
            Action::RequestAnnounce { iface, mac, node } => {
                if let Some(id) = self.link.find(iface, mac) {
                    self.link
                        .queue_unicast(id, true, &mut self.shared.stats, |w| {
                            w.push_announce_request(&node)
                        });
                }
            }
        }
    }

    /// Broadcast a batch of OGMs on every interface, signing our own with the hash chain
    /// and putting each originator's announcement in front of its first OGM we send.
    fn send_ogm_batch(&mut self, batch: &[OgmRepr]) {
        // At most an announcement and an OGM per entry of the batch: no push can fail.
        let mut items = heapless::Vec::<BatchItem, { 2 * crate::routing::OGM_BATCH_MAX }>::new();
        for ogm in batch {
            let mut ogm = *ogm;
            if ogm.node == self.shared.id {
                let Some(elem) = self.own_chain_element(ogm.seqno) else {
                    continue;
                };
                ogm.chain = elem;
            }
            if let Some(ann) = self.anns.take_unpushed(&ogm.node) {
                let _ = items.push(BatchItem::Announce(ann));
            }
            let _ = items.push(BatchItem::Ogm(ogm));
        }
        for iface in self.link.ifaces() {
            let mut next = 0;
            while next < items.len() {
                let start = next;
                self.link
                    .queue_broadcast(iface, &mut self.shared.stats, |w| {
                        push_items(w, &items, &mut next)
                    });
                if next == start {
                    break;
                }
            }
        }
    }

    /// The chain element for our OGM `seqno`; starts a new chain (with a new announcement,
    /// pushed along with the OGM) when the current one does not cover it.
    fn own_chain_element(&mut self, seqno: u32) -> Option<[u8; 16]> {
        if let Ok(e) = self.chain.element(seqno) {
            return Some(e);
        }
        if !self.adopt_chain(seqno) {
            return None;
        }
        self.chain.element(seqno).ok()
    }

    /// An OGM from a neighbour: authenticate through the announcement store; park it if the
    /// announcement must be fetched first.
    pub(in crate::node) fn on_ogm(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
        ogm: &OgmRepr,
    ) {
        if ogm.node == self.shared.id {
            return;
        }
        self.anns.set_now(now);
        self.anns.set_source(Some((iface, mac)));
        let mut auth = Recording {
            inner: &mut self.anns,
            verdict: None,
        };
        let links = self.link.table_mut();
        self.routing
            .handle_ogm(now, links, (iface, mac), ogm, &mut auth);
        match auth.verdict {
            Some(AuthVerdict::UnknownOriginator) => self.park_ogm(now, iface, mac, ogm),
            // Routing asked for the announcement only if it has no next hop to the originator.
            Some(AuthVerdict::OlderEpoch) if self.routing.next_hop(&ogm.node).is_none() => {
                self.park_ogm(now, iface, mac, ogm)
            }
            Some(AuthVerdict::Invalid) => self.shared.stats.drop(DropReason::OgmInvalid),
            Some(AuthVerdict::Stale | AuthVerdict::OlderEpoch) => {
                self.shared.stats.drop(DropReason::OgmStale)
            }
            _ => {}
        }
    }

    fn park_ogm(&mut self, now: Instant, iface: IfaceId, mac: MacAddr, ogm: &OgmRepr) {
        let pending = PendingOgm {
            iface,
            mac,
            ogm: *ogm,
            since: now,
        };
        // One parked OGM per originator is enough: the newest replaces an older one.
        if let Some(p) = self
            .pending_ogms
            .iter_mut()
            .find(|p| p.ogm.node == ogm.node)
        {
            *p = pending;
        } else if self.pending_ogms.push(pending).is_err() {
            self.shared.stats.drop(DropReason::PendingFull);
            return;
        }
        self.shared
            .timers
            .arm(Timer::PendingOgms, now + PENDING_OGM_TIMEOUT);
    }

    /// A node announcement (ours, a neighbour's, or one we asked for). Returns the node
    /// whose announcement is new to us (first seen, new epoch or new chain).
    pub(in crate::node) fn on_announce(
        &mut self,
        now: Instant,
        source: (IfaceId, MacAddr),
        bytes: &[u8; ANNOUNCE_LEN],
    ) -> Option<NodeId> {
        use super::announcements::{Inserted, Refused, Stored};
        self.anns.set_now(now);
        let (claimed, _, _) = crate::crypto::Announcement::unverified_order(bytes);
        // A node's own word, over its own link session, outranks a route to its old epoch:
        // only it can complete that handshake, so an older announcement from it means it
        // lost its state.
        let link_id = self.link.find(source.0, source.1);
        let own_word = link_id.and_then(|id| self.link.peer(id)) == Some(claimed);
        let reachable =
            (self.routing.next_hop(&claimed).is_some() && !own_word) || claimed == self.shared.id;
        let link = &mut self.link;
        let may_verify = || link_id.is_some_and(|id| link.allow_announce_check(id, now));
        match self.anns.insert(bytes, Some(source), reachable, may_verify) {
            Ok(Inserted {
                stored: Stored::Same,
                ..
            }) => None,
            Ok(Inserted {
                stored,
                ann,
                evicted,
            }) => {
                if let Some(gone) = evicted {
                    self.shared.stats.drop(DropReason::AnnounceEvicted);
                    self.book.forget(&gone);
                }
                // It may be on probation: look again when that would end.
                self.shared.timers.arm(
                    Timer::Probation,
                    now + super::announcements::PROBATION_TIMEOUT,
                );
                let node = ann.node_id();
                if stored == Stored::Restarted {
                    self.routing.forget_restarted(now, node);
                }
                self.learn_addresses(node, &ann);
                self.replay_parked(now, &node);
                Some(node)
            }
            Err(Refused::Invalid) => {
                self.shared.stats.drop(DropReason::AnnounceInvalid);
                None
            }
            Err(Refused::Stale) => {
                self.shared.stats.drop(DropReason::AnnounceStale);
                None
            }
            Err(Refused::Full) => {
                self.shared.stats.drop(DropReason::AnnounceStoreFull);
                None
            }
            Err(Refused::RateLimited) => {
                self.shared.stats.drop(DropReason::AnnounceCheckRateLimited);
                None
            }
        }
    }

    /// A neighbour that is new or restarted (its own announcement is new to us) gets our
    /// whole table at once instead of waiting up to Imax for each originator's next OGM.
    /// At most one per `TABLE_DUMP_MIN_GAP` (`budget.rs`) per neighbour: a member that keeps sending new
    /// announcements of its own must not make us queue hundreds of frames each time.
    pub(in crate::node) fn send_table_to(&mut self, now: Instant, id: LinkId) {
        match self.link.allow_table_dump(id, now) {
            None => return,
            Some(false) => {
                self.shared.stats.drop(DropReason::TableDumpRateLimited);
                return;
            }
            Some(true) => {}
        }
        let mut items: Vec<BatchItem> = Vec::new();
        for ogm in self.routing.advertisements() {
            if let Some(ann) = self.anns.bytes(&ogm.node) {
                items.push(BatchItem::Announce(*ann));
            }
            items.push(BatchItem::Ogm(ogm));
        }
        let mut next = 0;
        while next < items.len() {
            let start = next;
            self.link
                .queue_unicast(id, true, &mut self.shared.stats, |w| {
                    push_items(w, &items, &mut next)
                });
            if next == start {
                break;
            }
        }
    }

    fn replay_parked(&mut self, now: Instant, node: &NodeId) {
        let Some(pos) = self.pending_ogms.iter().position(|p| p.ogm.node == *node) else {
            return;
        };
        let p = self.pending_ogms.swap_remove(pos);
        self.on_ogm(now, p.iface, p.mac, &p.ogm);
    }

    /// A neighbour asks for `node`'s announcement.
    pub(in crate::node) fn on_announce_request(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mac: MacAddr,
        node: &NodeId,
    ) {
        let Some(bytes) = self.anns.bytes(node).copied() else {
            return;
        };
        if !self.announce_budget.allow(now) {
            self.shared.stats.drop(DropReason::AnnounceRateLimited);
            return;
        }
        if let Some(id) = self.link.find(iface, mac) {
            self.link
                .queue_unicast(id, true, &mut self.shared.stats, |w| {
                    w.push_announce(&bytes)
                });
        }
    }

    pub(in crate::node) fn expire_pending_ogms(&mut self, now: Instant) {
        let before = self.pending_ogms.len();
        self.pending_ogms
            .retain(|p| now.saturating_since(p.since) < PENDING_OGM_TIMEOUT);
        for _ in self.pending_ogms.len()..before {
            self.shared.stats.drop(DropReason::PendingExpired);
        }
        let oldest = self.pending_ogms.iter().map(|p| p.since).min();
        self.shared
            .timers
            .set(Timer::PendingOgms, oldest.map(|t| t + PENDING_OGM_TIMEOUT));
    }

    /// Announcements whose node routing forgot, or that stayed on probation too long, go
    /// with the addresses they gave.
    pub(in crate::node) fn expire_announcements(&mut self) {
        let routing = &self.routing;
        let gone = self.anns.expire(|node| routing.route(node).is_some());
        for node in gone {
            self.shared.stats.drop(DropReason::AnnounceExpired);
            self.book.forget(&node);
        }
    }
}
