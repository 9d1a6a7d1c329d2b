//! Onion circuits in the node (docs/protocol.md §8.7, §8.8): the relay side (builds opened
//! with our onion key, cells passed on through our layer, the exit's answers) and the
//! creator side (circuits of our own, built through relays whose onion keys we hold, kept
//! alive with loops). Builds and cells travel between relays as messages routed by the mesh
//! like Data, each filling one 1500-byte unicast frame; nodes on the way forward them unread.

mod body;
mod creator;
mod exit;
mod filter;
mod receiver;
mod relay;
mod sender;

pub use creator::{CircuitInfo, BUILD_RETRY, SPARE_CIRCUITS};

use super::ip::next_hop_link;
use super::{DataPlane, Env, DATA_TTL};
use crate::crypto::onion::{Direction, OnionError};
use crate::crypto::replay::ReplayError;
use crate::node::DropReason;
use crate::routing::seqno::TokenBucket;
use crate::time::{Duration, Instant};
use crate::wire::{OnionHeader, BUILD_RECORDS_LEN, CELL_REGION_LEN};
use creator::OwnCircuits;
use filter::BuildFilter;
use relay::RelayTable;

/// Most circuits a node relays (about 400 bytes each).
pub const MAX_RELAY_CIRCUITS: usize = 1024;
/// Builds a relay opens per second (and burst): one x25519 each.
pub const BUILDS_PER_SEC: u32 = 50;
/// A relayed circuit that carried no cell for this long is forgotten.
pub const RELAY_IDLE: Duration = Duration::from_secs(90);
/// Most circuits of our own, built or being built.
pub const MAX_OWN_CIRCUITS: usize = 4;
/// A build not answered within this time has failed.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(2);
/// A built circuit of our own gets a loop this often, and is dead when one is not answered
/// before the next is due.
pub const LOOP_INTERVAL: Duration = Duration::from_secs(20);
/// A circuit of our own is replaced after this long (new flows get a fresh one).
pub const CIRCUIT_LIFETIME: Duration = Duration::from_secs(600);

/// A forward Anonymous cell's payload before its ciphertext: destination, onion key seq,
/// sender key, counter.
const ANON_CELL_HEADER_LEN: usize = crate::wire::NODE_ID_LEN + 4 + 32 + 8;
/// A backward AnonymousReply cell's payload before its ciphertext: source, counter.
const REPLY_CELL_HEADER_LEN: usize = crate::wire::NODE_ID_LEN + 8;
// An anonymous packet of the largest size fits one cell either way.
const _: () = assert!(
    ANON_CELL_HEADER_LEN + crate::overlay::anon::ANON_MTU + crate::wire::TAG_LEN
        <= body::MAX_PAYLOAD
);
const _: () = assert!(
    REPLY_CELL_HEADER_LEN + crate::overlay::anon::ANON_MTU + crate::wire::TAG_LEN
        <= body::MAX_PAYLOAD
);

/// The onion state of a node: circuits relayed and circuits of its own.
pub(in crate::node) struct Onion {
    relayed: RelayTable,
    own: OwnCircuits,
    filter: BuildFilter,
    build_budget: TokenBucket,
    /// Anonymous senders whose packets reach us.
    peers: receiver::AnonPeers,
    /// Where a cell for us is opened (allocated once).
    scratch: Box<[u8; CELL_REGION_LEN]>,
}

impl Onion {
    /// Empty tables; `filter_key` keys the build filter.
    pub(in crate::node) fn new(now: Instant, filter_key: [u8; 32]) -> Onion {
        Onion {
            relayed: RelayTable::default(),
            own: OwnCircuits::default(),
            filter: BuildFilter::new(filter_key),
            build_budget: TokenBucket::new(now, BUILDS_PER_SEC, BUILDS_PER_SEC),
            peers: receiver::AnonPeers::new(now),
            scratch: Box::new([0; CELL_REGION_LEN]),
        }
    }
}

/// Open an anonymous flow's `packet` in place under `recv` with `ad` and `tag` (protocol
/// §8.9); the drop reason if it is a replay or does not authenticate.
fn open_flow(
    recv: &mut crate::crypto::aead::RecvKey,
    (counter, ad): (u64, &[u8]),
    packet: &mut [u8],
    tag: &[u8],
) -> Result<(), DropReason> {
    let tag: [u8; crate::wire::TAG_LEN] = crate::crypto::arr(tag);
    match recv.open_in_place(counter, ad, packet, &tag) {
        Ok(()) => Ok(()),
        Err(crate::crypto::OpenError::Replay(_)) => Err(DropReason::AnonReplay),
        Err(_) => Err(DropReason::AnonAuth),
    }
}

/// Make room in a flow table of at most `max` entries for `key`: when it is new and the
/// table full, forget the entry used least recently (`used`), counted.
fn make_room<K: Ord + Copy, V>(
    table: &mut std::collections::BTreeMap<K, V>,
    (key, max): (&K, usize),
    used: impl Fn(&V) -> Instant,
    stats: &mut crate::node::Stats,
) {
    if table.contains_key(key) || table.len() < max {
        return;
    }
    let oldest = table.iter().min_by_key(|(_, v)| used(v)).map(|(k, _)| *k);
    if let Some(k) = oldest {
        table.remove(&k);
        stats.drop(DropReason::AnonFlowEvicted);
    }
}

/// The drop reason of a failed cell operation.
fn cell_drop(e: OnionError) -> DropReason {
    match e {
        OnionError::Replay(ReplayError::Duplicate) => DropReason::OnionCellReplay,
        OnionError::Replay(_) => DropReason::OnionCellStale,
        _ => DropReason::OnionCellAuth,
    }
}

impl DataPlane {
    /// A Build message: ours to open, or on toward its relay unread.
    pub(in crate::node) fn on_build(
        &mut self,
        now: Instant,
        header: &OnionHeader,
        records: &[u8; BUILD_RECORDS_LEN],
        env: &mut Env<'_>,
    ) {
        if header.dst != env.shared.id {
            pass_on(header, env, |w, h| w.push_build(h, records));
            return;
        }
        self.onion.open_build(now, header.link, records, env);
    }

    /// A Cell message: ours (a relay's layer, the exit's, or a circuit of our own), or on
    /// toward its relay unread.
    pub(in crate::node) fn on_cell(
        &mut self,
        now: Instant,
        (header, flags): (&OnionHeader, u8),
        region: &[u8; CELL_REGION_LEN],
        env: &mut Env<'_>,
    ) {
        if header.dst != env.shared.id {
            pass_on(header, env, |w, h| {
                w.push_cell(h, flags, |r| {
                    r.copy_from_slice(region);
                    Ok(())
                })
            });
            return;
        }
        match Direction::from_flag(flags) {
            Some(Direction::Forward) => {
                let deliver = &mut self.deliver;
                self.onion
                    .forward_cell(now, (header.link, region), deliver, env)
            }
            Some(Direction::Backward) => {
                let deliver = &mut self.deliver;
                self.onion
                    .backward_cell(now, (header.link, region), deliver, env)
            }
            None => env.shared.stats.drop(DropReason::MalformedMessage),
        }
    }

    /// The circuits timer: builds that timed out, loops due or unanswered, circuits to
    /// replace or to build, relayed circuits gone idle. Returns the next deadline, if any.
    pub(in crate::node) fn onion_timer(
        &mut self,
        now: Instant,
        env: &mut Env<'_>,
    ) -> Option<Instant> {
        let deadlines = [
            self.onion.relayed.expire(now),
            self.onion.peers.expire(now),
            self.onion.maintain(now, env),
        ];
        deadlines.into_iter().flatten().min()
    }

    /// Our own circuits, for the CLI and tests.
    pub(in crate::node) fn circuits(&self, now: Instant) -> Vec<CircuitInfo> {
        self.onion.own.infos(now)
    }

    /// Send a loop through our oldest built circuit now (benchmarks and tests drive cells
    /// with it); false if none is built or the loop could not be queued.
    #[cfg(feature = "sim")]
    pub(in crate::node) fn send_circuit_loop(&mut self, now: Instant, env: &mut Env<'_>) -> bool {
        match self.onion.first_built() {
            Some(link) => self.onion.send_loop(now, link, env),
            None => false,
        }
    }

    /// Number of circuits this node relays.
    pub(in crate::node) fn relayed_circuits(&self) -> usize {
        self.onion.relayed.len()
    }

    /// The previous and next node of every circuit this node relays.
    pub(in crate::node) fn relayed_legs(
        &self,
    ) -> Vec<(crate::wire::NodeId, Option<crate::wire::NodeId>)> {
        self.onion.relayed.legs()
    }
}

/// Forward a Build or Cell for another node one hop on, with its ttl less one.
fn pass_on(
    header: &OnionHeader,
    env: &mut Env<'_>,
    push: impl FnOnce(
        &mut crate::wire::MessageWriter<'_>,
        &OnionHeader,
    ) -> Result<(), crate::wire::Error>,
) {
    let Some(ttl) = header.ttl.checked_sub(1).filter(|t| *t > 0) else {
        env.shared.stats.drop(DropReason::TtlExpired);
        return;
    };
    let Some(link) = next_hop_link(&header.dst, env) else {
        return;
    };
    let next = OnionHeader { ttl, ..*header };
    if env
        .link
        .queue_unicast(link, false, &mut env.shared.stats, |w| push(w, &next))
    {
        env.shared.stats.forwarded += 1;
    }
}

/// Queue a Data message for `dst` whose end-to-end payload of `len` bytes `fill` writes in
/// the frame (false from `fill` sends nothing). Returns whether it was queued.
fn send_data(
    now: Instant,
    dst: crate::wire::NodeId,
    len: usize,
    env: &mut Env<'_>,
    fill: impl FnOnce(&mut [u8]) -> bool,
) -> bool {
    let Some(hop) = next_hop_link(&dst, env) else {
        return false;
    };
    let sent = env
        .link
        .queue_unicast(hop, false, &mut env.shared.stats, |w| {
            let area = w
                .data_area_mut()
                .get_mut(..len)
                .ok_or(crate::wire::Error::NoSpace)?;
            if !fill(area) {
                return Err(crate::wire::Error::NoSpace);
            }
            w.commit_data(dst, DATA_TTL, len)
        });
    if sent {
        env.control.note_data_sent(now, env.link, hop);
    }
    sent
}

/// Queue a Build for `dst` on leg `link`; false if there is no way there (counted) or the
/// queue refused it (counted).
fn send_build(
    (dst, link): (crate::wire::NodeId, u32),
    records: &[u8; BUILD_RECORDS_LEN],
    env: &mut Env<'_>,
) -> bool {
    let Some(hop) = next_hop_link(&dst, env) else {
        return false;
    };
    let header = OnionHeader {
        dst,
        ttl: DATA_TTL,
        link,
    };
    env.link
        .queue_unicast(hop, false, &mut env.shared.stats, |w| {
            w.push_build(&header, records)
        })
}

/// Queue a cell for `dst` on leg `link` whose region `fill` writes (and seals) in the frame;
/// an error from `fill` sends nothing and is returned.
fn send_cell(
    (dst, link, dir): (crate::wire::NodeId, u32, Direction),
    env: &mut Env<'_>,
    fill: impl FnOnce(&mut [u8; CELL_REGION_LEN]) -> Result<(), OnionError>,
) -> Result<bool, OnionError> {
    let Some(hop) = next_hop_link(&dst, env) else {
        return Ok(false);
    };
    let header = OnionHeader {
        dst,
        ttl: DATA_TTL,
        link,
    };
    let mut failed = None;
    let sent = env
        .link
        .queue_unicast(hop, false, &mut env.shared.stats, |w| {
            w.push_cell(&header, dir.flag(), |r| {
                fill(r).map_err(|e| {
                    failed = Some(e);
                    crate::wire::Error::NoSpace
                })
            })
        });
    match failed {
        Some(e) => Err(e),
        None => Ok(sent),
    }
}
