//! Counters for everything the node sends, receives and drops: every drop has a reason.

use serde::Serialize;

macro_rules! drop_reasons {
    ($($variant:ident => $name:literal: $doc:literal,)+) => {
        /// Why the node dropped a frame, a message or a packet.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum DropReason {
            $(#[doc = $doc] $variant,)+
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)+];

            /// Stable snake_case name used in `veil stats` and JSON.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)+
                }
            }
        }
    };
}

drop_reasons! {
    MalformedFrame => "malformed_frame": "frame failed to parse",
    OwnSourceMac => "own_source_mac": "frame claiming one of our own MAC addresses as its source (a loop or a spoof)",
    BadFrameTag => "bad_frame_tag": "clear hello or handshake frame without a valid mesh-PSK tag (an outsider, or another mesh)",
    HandshakeReplay => "handshake_replay": "HandshakeInit no newer than one already taken from that MAC (a replay)",
    IdentityConflict => "identity_conflict": "handshake from a MAC whose live session belongs to another identity",
    MalformedMessage => "malformed_message": "a message inside a decrypted frame failed to parse",
    UnknownSession => "unknown_session": "unicast frame for a session index we do not have",
    UnknownGroupKey => "unknown_group_key": "broadcast frame under a group key we do not have",
    DecryptFailed => "decrypt_failed": "authentication tag did not verify",
    Replay => "replay": "counter already seen or too old for the replay window",
    HandshakeFailed => "handshake_failed": "handshake message rejected (wrong PSK, bad proof, tampered)",
    NotAllowed => "not_allowed": "peer identity not in the darknet allow-list",
    HandshakeRateLimited => "handshake_rate_limited": "over a handshake budget: this neighbour's, new links', rekeys' or unauthenticated triggers'",
    NeighborTableFull => "neighbor_table_full": "no room for another neighbour",
    OgmInvalid => "ogm_invalid": "OGM whose hash-chain element did not verify",
    OgmStale => "ogm_stale": "OGM older than what we already have (replay)",
    AnnounceInvalid => "announce_invalid": "node announcement with a bad signature or layout",
    AnnounceStale => "announce_stale": "node announcement older than the one we hold",
    AddressClaimRejected => "address_claim_rejected": "announcement claiming an address its key does not own",
    PendingFull => "pending_full": "no room to park an OGM while its announcement is fetched",
    PendingExpired => "pending_expired": "a parked OGM whose announcement never arrived",
    AnnounceStoreFull => "announce_store_full": "no room for another node's announcement",
    AnnounceEvicted => "announce_evicted": "announcement on probation (no OGM of its node verified yet) dropped to make room for a newer one from the same neighbour, or in a full store",
    AnnounceExpired => "announce_expired": "announcement dropped: on probation for 30 s, or its node forgotten by routing",
    AnnounceRateLimited => "announce_rate_limited": "too many announcement requests to answer",
    AnnounceCheckRateLimited => "announce_check_rate_limited": "new announcement not checked: its sender is over its budget of signature checks (64/s after a burst of a whole table)",
    TableDumpRateLimited => "table_dump_rate_limited": "whole-table dump to a neighbour not sent: one went to it less than 10 s ago",
    NoRoute => "no_route": "IP packet for a destination we have no route to",
    NoSession => "no_session": "next hop has no established link session",
    TtlExpired => "ttl_expired": "data frame whose hop limit ran out",
    NotOverlay => "not_overlay": "IP packet from the TUN side not addressed to the overlay",
    LocalNoise => "local_noise": "router solicitations and other link-local noise from the kernel",
    PacketTooBig => "packet_too_big": "IP packet larger than the overlay MTU",
    TxControlQueueFull => "tx_control_queue_full": "control frame not sent: the control transmit queue is full",
    TxDataQueueFull => "tx_data_queue_full": "data frame not sent: the data transmit queue is full",
    TxLinkQueueFull => "tx_link_queue_full": "data frame not sent: its link already holds half the data transmit slots",
    DeliverQueueFull => "deliver_queue_full": "queue toward the TUN device full",
    EventQueueFull => "event_queue_full": "event queue full (events are informational)",
    IcmpRateLimited => "icmp_rate_limited": "ICMP error (Time Exceeded) not sent: over the node's ICMP error budget",
    E2eNoKey => "e2e_no_key": "no signed announcement (so no key) of the node an end-to-end message is for or from",
    E2eHandshakeFailed => "e2e_handshake_failed": "end-to-end handshake message that did not authenticate",
    E2eReplay => "e2e_replay": "end-to-end msg 1 no newer than one answered, or a sealed packet seen before",
    E2eUnknownIndex => "e2e_unknown_index": "end-to-end message for a session or handshake we do not hold",
    E2eDecryptFailed => "e2e_decrypt_failed": "sealed packet whose tag did not verify",
    ForgedSource => "forged_source": "sealed packet whose source address is not an address of the node that sealed it",
    E2eWaitFull => "e2e_wait_full": "no room to hold a packet while its end-to-end session is set up",
    E2eWaitExpired => "e2e_wait_expired": "packet held for an end-to-end session that did not come up in time",
    E2eMalformed => "e2e_malformed": "end-to-end payload that failed to parse",
    E2eRateLimited => "e2e_rate_limited": "end-to-end msg 1 not read (two key agreements each): over its source's or the node's budget",
    OnionKeyUnknownNode => "onion_key_unknown_node": "onion key record of a node whose announcement we do not hold (it cannot be checked)",
    OnionKeyInvalid => "onion_key_invalid": "onion key record with a bad signature or layout",
    OnionKeyStale => "onion_key_stale": "onion key record no newer than the one we hold",
    OnionKeyStoreFull => "onion_key_store_full": "no room for another relay's onion key record",
    OnionKeyCheckRateLimited => "onion_key_check_rate_limited": "new onion key record not checked: over the node's budget of signature checks",
    OnionBuildRefused => "onion_build_refused": "circuit build for us refused: this node does not relay (`relay = false`)",
    OnionBuildRateLimited => "onion_build_rate_limited": "circuit build not opened (one x25519 each): over the node's budget of builds per second",
    OnionLinkTaken => "onion_link_taken": "circuit build naming a link id one of our relayed circuits already uses",
    OnionCircuitsFull => "onion_circuits_full": "circuit build refused: the node relays as many circuits as it holds",
    OnionBuildUnknownKey => "onion_build_unknown_key": "circuit build sealed to an onion key we no longer (or never) held",
    OnionBuildReplay => "onion_build_replay": "circuit build whose ephemeral key we saw before under the same onion key (a replay)",
    OnionBuildAuth => "onion_build_auth": "circuit build record that failed to open (tampered, or not for us)",
    OnionUnknownCircuit => "onion_unknown_circuit": "onion cell for a circuit we do not hold (gone idle, or never built)",
    OnionCellAuth => "onion_cell_auth": "onion cell whose layer did not authenticate (tampered or tagged: dropped at the first honest relay)",
    OnionCellReplay => "onion_cell_replay": "onion cell whose counter was seen before on its circuit",
    OnionCellStale => "onion_cell_stale": "onion cell older than its circuit's replay window",
    OnionBadBody => "onion_bad_body": "opened onion cell whose content is malformed or unexpected",
    OnionBuildTimeout => "onion_build_timeout": "circuit of our own whose build-ok did not come back in time",
    OnionNoRelays => "onion_no_relays": "no circuit built: fewer than two relays whose onion keys we hold and can route to",
    AnonNoCircuit => "anon_no_circuit": "anonymous packet dropped: no circuit of ours is built yet (one is being built)",
    AnonNoKey => "anon_no_key": "anonymous packet dropped: we hold no onion key of its destination",
    AnonUnsupported => "anon_unsupported": "anonymous packet dropped: only IPv6 TCP, UDP and ICMPv6 without extension headers are carried",
    AnonNotClaimed => "anon_not_claimed": "anonymous packet at the exit whose sender key is not the one its circuit claimed",
    AnonClaimTaken => "anon_claim_taken": "circuit build refused at the exit: its address is claimed by another circuit",
    AnonUnknownAddress => "anon_unknown_address": "packet or reply for an ephemeral address we hold no flow or claim for",
    AnonFlowRateLimited => "anon_flow_rate_limited": "new anonymous flow not opened (one x25519 each): over the node's budget per second",
    AnonUnknownKey => "anon_unknown_key": "anonymous packet sealed to an onion key we no longer (or never) held",
    AnonAuth => "anon_auth": "anonymous packet or reply that failed to authenticate",
    AnonReplay => "anon_replay": "anonymous packet or reply seen before, or older than its flow's window",
    AnonForgedSource => "anon_forged_source": "anonymous packet whose addresses are not its flow's",
    AnonFlowEvicted => "anon_flow_evicted": "anonymous flow forgotten to make room for a new one (the table is full)",
}

/// Upper bounds (ms) of the build-time buckets of `Stats::onion_build_ms`; the last is
/// "longer than the one before".
pub const BUILD_MS_BOUNDS: [u64; 13] = [
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1000,
    1500,
    2000,
    u64::MAX,
];

/// Traffic and drop counters of one node.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Frames received from the mesh.
    pub frames_in: u64,
    /// Frames handed to the caller for sending.
    pub frames_out: u64,
    /// Bytes received (after the Ethernet header).
    pub bytes_in: u64,
    /// Bytes sent (after the Ethernet header).
    pub bytes_out: u64,
    /// Bytes sent in control frames (hellos, handshakes, broadcasts, probes, control-only unicast).
    pub control_bytes_out: u64,
    /// Bytes sent in unicast frames that carried only control messages.
    pub unicast_control_bytes_out: u64,
    /// Number of such frames.
    pub unicast_control_frames_out: u64,
    /// IP packets accepted from the TUN side.
    pub packets_from_tun: u64,
    /// IP packets delivered to the TUN side.
    pub packets_to_tun: u64,
    /// Data frames forwarded for other nodes.
    pub forwarded: u64,
    /// Link sessions established.
    pub sessions_established: u64,
    /// Ttl-expired notices this node sent as a relay (the source makes the ICMP error).
    pub icmp_errors_sent: u64,
    /// ICMP Time Exceeded errors this node gave its own TUN side for a relay's notice.
    pub icmp_errors_made: u64,
    /// End-to-end sessions established (either side).
    pub e2e_sessions_established: u64,
    /// Times our group (broadcast) key was replaced.
    pub group_key_rotations: u64,
    /// Circuit builds of our own sent.
    pub onion_builds_sent: u64,
    /// Circuits of our own whose exit confirmed the build.
    pub onion_circuits_built: u64,
    /// Circuits of our own that died (a loop went unanswered).
    pub onion_circuits_broken: u64,
    /// Builds of our own through two relays only (fewer were eligible).
    pub onion_two_relay_builds: u64,
    /// Circuits we accepted to relay.
    pub onion_circuits_relayed: u64,
    /// Cells we passed on as a relay (either way).
    pub onion_cells_relayed: u64,
    /// IP packets of ours sent anonymously through a circuit.
    pub anon_packets_sent: u64,
    /// Replies to our anonymous packets delivered to our TUN side.
    pub anon_replies_received: u64,
    /// Anonymous packets passed on as an exit, and replies passed back.
    pub anon_exit_packets: u64,
    /// Anonymous senders' packets delivered to our TUN side.
    pub anon_packets_received: u64,
    /// Replies we sent to anonymous senders.
    pub anon_replies_sent: u64,
    /// Build times of our circuits (build sent to build-ok): counts per bucket, bucket k
    /// holding those up to `BUILD_MS_BOUNDS[k]` ms (the last, anything longer). Reports
    /// name each bucket (`onion_build_ms_le_10` …, `onion_build_ms_gt_2000`).
    #[serde(skip)]
    pub onion_build_ms: [u64; BUILD_MS_BOUNDS.len()],
    #[serde(skip)]
    drops: DropCounters,
}

/// One counter per `DropReason`.
#[derive(Debug, Clone)]
struct DropCounters([u64; DROP_REASONS]);

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters([0; DROP_REASONS])
    }
}

const DROP_REASONS: usize = 80;
const _: () = assert!(DropReason::ALL.len() == DROP_REASONS);

impl Stats {
    /// Count one drop.
    pub fn drop(&mut self, reason: DropReason) {
        if let Some(c) = self.drops.0.get_mut(reason as usize) {
            *c += 1;
        }
    }

    /// How many drops for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops.0.get(reason as usize).copied().unwrap_or(0)
    }

    /// All drop counters with their names, in a fixed order.
    pub fn drop_counters(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (r.as_str(), self.drops(*r)))
    }

    /// Count one circuit build that took `ms` milliseconds.
    pub fn record_build_ms(&mut self, ms: u64) {
        let bucket = BUILD_MS_BOUNDS.iter().position(|&b| ms <= b);
        if let Some(c) = bucket.and_then(|k| self.onion_build_ms.get_mut(k)) {
            *c += 1;
        }
    }

    /// Total drops over all reasons.
    pub fn total_drops(&self) -> u64 {
        self.drops.0.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_own_counter() {
        let mut s = Stats::default();
        s.drop(DropReason::Replay);
        s.drop(DropReason::Replay);
        s.drop(DropReason::EventQueueFull);
        assert_eq!(s.drops(DropReason::Replay), 2);
        assert_eq!(s.drops(DropReason::EventQueueFull), 1);
        assert_eq!(s.drops(DropReason::MalformedFrame), 0);
        assert_eq!(s.total_drops(), 3);
        let names: Vec<_> = s.drop_counters().map(|(n, _)| n).collect();
        assert_eq!(names.len(), DropReason::ALL.len());
        assert!(names.contains(&"replay"));
    }
}
