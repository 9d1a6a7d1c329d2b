//! Routing control traffic: turning routing's actions into frames, OGM authentication with
//! parked OGMs while an announcement is fetched, announcements, and housekeeping.

use super::ControlPlane;
use crate::crypto::Identity;
use crate::link::LinkId;
use crate::node::link_layer::LinkLayer;
use crate::node::{DropReason, Event, IfaceId, Shared, Stats, Timer};
use crate::routing::{Action, AuthVerdict, Dest, OgmAuth};
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, NodeId, OgmRepr, ANNOUNCE_LEN, ONION_KEY_LEN};

/// An OGM waiting for its originator's announcement.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingOgm {
    /// Interface it came in on.
    pub(super) iface: IfaceId,
    /// The neighbour that sent it.
    pub(super) mac: MacAddr,
    /// The OGM.
    pub(super) ogm: OgmRepr,
    /// When it was parked.
    pub(super) since: Instant,
}

/// Passes OGM checks to the announcement store and remembers the verdict, so the node can
/// park OGMs of originators whose announcement it must fetch first.
struct Recording<'a> {
    inner: &'a mut super::Announcements,
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
    OnionKey([u8; ONION_KEY_LEN]),
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
            BatchItem::OnionKey(k) => w.push_onion_key(k),
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

impl ControlPlane {
    /// Drain routing's outputs into frames (queued on `link`) and events.
    pub(in crate::node) fn drain(
        &mut self,
        now: Instant,
        link: &mut LinkLayer,
        shared: &mut Shared,
    ) {
        while let Some(action) = self.routing.poll_action() {
            on_action(action, link, &mut shared.stats);
        }
        while let Some(batch) = self.routing.poll_ogm_batch() {
            self.send_ogm_batch(&batch, link, shared);
        }
        let mut left = 0;
        while let Some(e) = self.routing.poll_event() {
            let authenticated_loss =
                matches!(e, crate::routing::Event::NeighborDown { node: Some(_), .. });
            left += usize::from(authenticated_loss);
            shared.push_event(Event::Routing(e));
        }
        link.neighbours_left(now, left, shared);
        let forgotten = self.routing.originators_forgotten();
        if forgotten != self.originators_forgotten {
            self.originators_forgotten = forgotten;
            self.expire_announcements(&mut shared.stats);
        }
    }

    /// Broadcast a batch of OGMs on every interface, signing our own with the hash chain
    /// and putting each originator's announcement in front of its first OGM we send.
    fn send_ogm_batch(&mut self, batch: &[OgmRepr], link: &mut LinkLayer, shared: &mut Shared) {
        // At most an announcement, an onion key and an OGM per entry of the batch: no push
        // can fail.
        let mut items = heapless::Vec::<BatchItem, { 3 * crate::routing::OGM_BATCH_MAX }>::new();
        for ogm in batch {
            let mut ogm = *ogm;
            if ogm.node == shared.id {
                let Some(elem) = self.own_chain_element(ogm.seqno, &shared.identity, shared.epoch)
                else {
                    continue;
                };
                ogm.chain = elem;
            }
            if let Some(ann) = self.anns.take_unpushed(&ogm.node) {
                let _ = items.push(BatchItem::Announce(ann));
            }
            if let Some(key) = self.onion_keys.take_unpushed(&shared.id, &ogm.node) {
                let _ = items.push(BatchItem::OnionKey(key));
            }
            let _ = items.push(BatchItem::Ogm(ogm));
        }
        for iface in link.ifaces() {
            let mut next = 0;
            while next < items.len() {
                let start = next;
                link.queue_broadcast(iface, &mut shared.stats, |w| {
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
    fn own_chain_element(
        &mut self,
        seqno: u32,
        identity: &Identity,
        epoch: u32,
    ) -> Option<[u8; 16]> {
        if let Ok(e) = self.chain.element(seqno) {
            return Some(e);
        }
        if !self.adopt_chain(seqno, identity, epoch) {
            return None;
        }
        self.chain.element(seqno).ok()
    }

    /// An OGM from a neighbour: authenticate through the announcement store; park it if the
    /// announcement must be fetched first.
    pub(in crate::node) fn on_ogm(
        &mut self,
        now: Instant,
        (iface, mac): (IfaceId, MacAddr),
        ogm: &OgmRepr,
        link: &mut LinkLayer,
        shared: &mut Shared,
    ) {
        if ogm.node == shared.id {
            return;
        }
        self.anns.set_now(now);
        self.anns.set_source(Some((iface, mac)));
        let mut auth = Recording {
            inner: &mut self.anns,
            verdict: None,
        };
        let links = link.table_mut();
        self.routing
            .handle_ogm(now, links, (iface, mac), ogm, &mut auth);
        match auth.verdict {
            Some(AuthVerdict::UnknownOriginator) => self.park_ogm(now, (iface, mac), ogm, shared),
            // Routing asked for the announcement only if it has no next hop to the originator.
            Some(AuthVerdict::OlderEpoch) if self.routing.next_hop(&ogm.node).is_none() => {
                self.park_ogm(now, (iface, mac), ogm, shared)
            }
            Some(AuthVerdict::Invalid) => shared.stats.drop(DropReason::OgmInvalid),
            Some(AuthVerdict::Stale | AuthVerdict::OlderEpoch) => {
                shared.stats.drop(DropReason::OgmStale)
            }
            _ => {}
        }
    }

    fn park_ogm(
        &mut self,
        now: Instant,
        (iface, mac): (IfaceId, MacAddr),
        ogm: &OgmRepr,
        shared: &mut Shared,
    ) {
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
            shared.stats.drop(DropReason::PendingFull);
            return;
        }
        shared
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
        link: &mut LinkLayer,
        shared: &mut Shared,
    ) -> Option<NodeId> {
        use super::announcements::{Inserted, Refused, Stored};
        self.anns.set_now(now);
        let (claimed, _, _) = crate::crypto::Announcement::unverified_order(bytes);
        // A node's own word, over its own link session, outranks a route to its old epoch:
        // only it can complete that handshake, so an older announcement from it means it
        // lost its state.
        let link_id = link.find(source.0, source.1);
        let own_word = link_id.and_then(|id| link.peer(id)) == Some(claimed);
        let reachable =
            (self.routing.next_hop(&claimed).is_some() && !own_word) || claimed == shared.id;
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
                    shared.stats.drop(DropReason::AnnounceEvicted);
                    self.book.forget(&gone);
                }
                // It may be on probation: look again when that would end.
                shared.timers.arm(
                    Timer::Probation,
                    now + super::announcements::PROBATION_TIMEOUT,
                );
                let node = ann.node_id();
                if stored == Stored::Restarted {
                    self.routing.forget_restarted(now, node);
                }
                self.learn_addresses(node, &ann, link, shared);
                self.replay_parked(now, &node, link, shared);
                Some(node)
            }
            Err(Refused::Invalid) => {
                shared.stats.drop(DropReason::AnnounceInvalid);
                None
            }
            Err(Refused::Stale) => {
                shared.stats.drop(DropReason::AnnounceStale);
                None
            }
            Err(Refused::Full) => {
                shared.stats.drop(DropReason::AnnounceStoreFull);
                None
            }
            Err(Refused::RateLimited) => {
                shared.stats.drop(DropReason::AnnounceCheckRateLimited);
                None
            }
        }
    }

    /// An Announce message from `source`. A neighbour announcing itself anew over its
    /// link session (`unicast`) gets our whole table.
    pub(in crate::node) fn on_announce_message(
        &mut self,
        now: Instant,
        source: (IfaceId, MacAddr),
        (bytes, unicast): (&[u8; ANNOUNCE_LEN], bool),
        link: &mut LinkLayer,
        shared: &mut Shared,
    ) {
        let fresh = self.on_announce(now, source, bytes, link, shared);
        let id = link.find(source.0, source.1);
        let from_itself = id
            .and_then(|id| link.peer(id))
            .is_some_and(|node| Some(node) == fresh);
        if unicast && from_itself {
            if let Some(id) = id {
                self.send_table_to(now, id, link, &mut shared.stats);
            }
        }
    }

    /// Answer a Probe with a small broadcast ProbeAck: any authenticated frame from us
    /// proves the link alive to every neighbour, and a 1500-byte unicast answer would cost
    /// 25x the airtime. Data frames carry a Probe in their padding, so answers are
    /// rate-limited to one per `PROBE_ACK_MIN_GAP` per interface.
    pub(in crate::node) fn answer_probe(
        &mut self,
        now: Instant,
        iface: IfaceId,
        seq: u32,
        link: &mut LinkLayer,
        stats: &mut Stats,
    ) {
        if link.mac_of(iface).is_none() {
            return;
        }
        let last = self.last_probe_ack.iter_mut().find(|(i, _)| *i == iface);
        let recent = last
            .as_ref()
            .is_some_and(|(_, t)| now.saturating_since(*t) < super::PROBE_ACK_MIN_GAP);
        if recent {
            return;
        }
        match last {
            Some((_, t)) => *t = now,
            // One entry per attached interface, dropped when it goes: there is room.
            None => {
                let _ = self.last_probe_ack.push((iface, now));
            }
        }
        link.queue_broadcast(iface, stats, |w| w.push_probe_ack(seq));
    }

    /// A neighbour that is new or restarted (its own announcement is new to us) gets our
    /// whole table at once instead of waiting up to Imax for each originator's next OGM.
    /// At most one per `TABLE_DUMP_MIN_GAP` (`budget.rs`) per neighbour: a member that keeps sending new
    /// announcements of its own must not make us queue hundreds of frames each time.
    fn send_table_to(&mut self, now: Instant, id: LinkId, link: &mut LinkLayer, stats: &mut Stats) {
        match link.allow_table_dump(id, now) {
            None => return,
            Some(false) => {
                stats.drop(DropReason::TableDumpRateLimited);
                return;
            }
            Some(true) => {}
        }
        let own = self.own_id;
        let mut items: Vec<BatchItem> = Vec::new();
        for ogm in self.routing.advertisements() {
            if let Some(ann) = self.anns.bytes(&ogm.node) {
                items.push(BatchItem::Announce(*ann));
            }
            if let Some(key) = self.onion_keys.bytes(&own, &ogm.node) {
                items.push(BatchItem::OnionKey(*key));
            }
            items.push(BatchItem::Ogm(ogm));
        }
        let mut next = 0;
        while next < items.len() {
            let start = next;
            link.queue_unicast(id, true, stats, |w| push_items(w, &items, &mut next));
            if next == start {
                break;
            }
        }
    }

    fn replay_parked(
        &mut self,
        now: Instant,
        node: &NodeId,
        link: &mut LinkLayer,
        shared: &mut Shared,
    ) {
        let Some(pos) = self.pending_ogms.iter().position(|p| p.ogm.node == *node) else {
            return;
        };
        let p = self.pending_ogms.swap_remove(pos);
        self.on_ogm(now, (p.iface, p.mac), &p.ogm, link, shared);
    }

    /// A neighbour asks for `node`'s announcement.
    pub(in crate::node) fn on_announce_request(
        &mut self,
        now: Instant,
        (iface, mac): (IfaceId, MacAddr),
        node: &NodeId,
        link: &mut LinkLayer,
        stats: &mut Stats,
    ) {
        let Some(bytes) = self.anns.bytes(node).copied() else {
            return;
        };
        if !self.announce_budget.allow(now) {
            stats.drop(DropReason::AnnounceRateLimited);
            return;
        }
        let key = self.onion_keys.bytes(&self.own_id, node).copied();
        if let Some(id) = link.find(iface, mac) {
            link.queue_unicast(id, true, stats, |w| {
                w.push_announce(&bytes)?;
                key.map_or(Ok(()), |k| w.push_onion_key(&k))
            });
        }
    }

    /// The parked-OGM timer: OGMs parked too long go (counted).
    pub(in crate::node) fn expire_pending_ogms(&mut self, now: Instant, shared: &mut Shared) {
        let before = self.pending_ogms.len();
        self.pending_ogms
            .retain(|p| now.saturating_since(p.since) < PENDING_OGM_TIMEOUT);
        for _ in self.pending_ogms.len()..before {
            shared.stats.drop(DropReason::PendingExpired);
        }
        let oldest = self.pending_ogms.iter().map(|p| p.since).min();
        shared
            .timers
            .set(Timer::PendingOgms, oldest.map(|t| t + PENDING_OGM_TIMEOUT));
    }

    /// Announcements whose node routing forgot, or that stayed on probation too long, go
    /// with the addresses they gave.
    pub(super) fn expire_announcements(&mut self, stats: &mut Stats) {
        let routing = &self.routing;
        let gone = self.anns.expire(|node| routing.route(node).is_some());
        for node in gone {
            stats.drop(DropReason::AnnounceExpired);
            self.book.forget(&node);
            self.onion_keys.forget(&node);
        }
    }

    /// An OnionKey message: a relay's record, checked against its node's announcement and
    /// kept if newer than the one held (it is pushed on with that node's next OGM).
    pub(in crate::node) fn on_onion_key(
        &mut self,
        now: Instant,
        bytes: &[u8; ONION_KEY_LEN],
        stats: &mut Stats,
    ) {
        use super::onion_keys::KeyRefused;
        let (anns, budget) = (&self.anns, &mut self.onion_key_checks);
        let mut limited = false;
        let signer = |node: &NodeId| {
            let identity = anns.get(node).map(|a| a.identity)?;
            // Only a record newer than the one held costs a signature check.
            limited = !budget.allow(now);
            (!limited).then_some(identity)
        };
        let reason = match self.onion_keys.insert(&self.own_id, bytes, signer, now) {
            Ok(_) => return,
            Err(KeyRefused::UnknownNode) if limited => DropReason::OnionKeyCheckRateLimited,
            Err(KeyRefused::UnknownNode) => DropReason::OnionKeyUnknownNode,
            Err(KeyRefused::Invalid) => DropReason::OnionKeyInvalid,
            Err(KeyRefused::Stale) => DropReason::OnionKeyStale,
            Err(KeyRefused::Full) => DropReason::OnionKeyStoreFull,
        };
        stats.drop(reason);
    }
}

/// Turn one of routing's actions into a frame queued on `link`.
fn on_action(action: Action, link: &mut LinkLayer, stats: &mut Stats) {
    match action {
        Action::SendHello { iface, hello } => {
            let has_session = link.has_session_on(iface);
            // The clear hello's PSK tag lets a newcomer start a handshake with us from
            // its authenticated budget (a broadcast from an unknown MAC is a trigger
            // anyone can forge). Once the interface has a session it goes out every
            // CLEAR_HELLO_EVERY rounds only: a newcomer's own clear hellos, every round,
            // already make us start the handshake from ours, and the idle budget pays
            // for padded broadcasts instead (protocol §4.12). Neighbours with a session
            // get the encrypted hello and Ihu every round.
            if !has_session || hello.seq % CLEAR_HELLO_EVERY == 0 {
                link.queue_clear_hello(iface, &hello, stats);
            }
            if has_session {
                let mut entries = heapless::Vec::<_, 64>::new();
                for e in crate::routing::ihu_entries(link.table(), iface) {
                    if entries.push(e).is_err() {
                        break;
                    }
                }
                link.queue_broadcast(iface, stats, |w| {
                    w.push_hello(&hello)?;
                    let fit = entries.len().min(w.ihu_capacity());
                    w.push_ihu(entries.get(..fit).unwrap_or(&[]))
                });
            }
        }
        Action::SendProbe { iface, mac, seq } => {
            if let Some(id) = link.find(iface, mac) {
                link.queue_unicast(id, true, stats, |w| w.push_probe(seq));
            }
        }
        Action::SendSeqnoRequest { dest, req } => match dest {
            Dest::AllInterfaces => {
                for iface in link.ifaces() {
                    link.queue_broadcast(iface, stats, |w| w.push_seqno_request(&req));
                }
            }
            Dest::Neighbor { iface, mac } => {
                if let Some(id) = link.find(iface, mac) {
                    link.queue_unicast(id, true, stats, |w| w.push_seqno_request(&req));
                }
            }
        },
        Action::RequestAnnounce { iface, mac, node } => {
            if let Some(id) = link.find(iface, mac) {
                link.queue_unicast(id, true, stats, |w| w.push_announce_request(&node));
            }
        }
    }
}
