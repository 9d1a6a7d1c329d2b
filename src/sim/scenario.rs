//! What a run is configured with and may do: settings, scheduled actions, errors, counters.

use super::medium::{MediumConfig, MediumError};
use crate::time::Duration;

/// Settings of one simulation run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    /// Seed of the medium's loss RNG (hosts seed themselves through the factory).
    pub seed: u64,
    /// Medium settings.
    pub medium: MediumConfig,
    /// Simulated time between route checks while not converged.
    pub check_interval: Duration,
    /// Most frames on the air at once (beyond that, frames are dropped and counted).
    pub max_frames_in_flight: usize,
    /// Most transmits (and deliveries) drained from a host after one input.
    pub drain_cap: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            medium: MediumConfig::default(),
            check_interval: Duration::from_millis(100),
            max_frames_in_flight: 1 << 20,
            drain_cap: 4096,
        }
    }
}

/// A change to the world, applied now or at a scheduled instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Cut both directions of the link `a - b`.
    Cut {
        /// One end.
        a: usize,
        /// Other end.
        b: usize,
    },
    /// Restore both directions of the link `a - b`.
    Heal {
        /// One end.
        a: usize,
        /// Other end.
        b: usize,
    },
    /// Set the loss of the directed link `from -> to`.
    SetLoss {
        /// Sender side.
        from: usize,
        /// Receiver side.
        to: usize,
        /// New loss probability.
        loss: f64,
    },
    /// Remove the node's host: its timers stop and frames to it vanish.
    Crash(usize),
    /// Replace the node's host by a new one from the factory with the next epoch.
    Restart(usize),
    /// Replace the node's host by a new one with this epoch, which may be lower than the
    /// last (a node that lost its state and took its epoch from a clock that went back).
    RestartAtEpoch {
        /// The node.
        node: usize,
        /// Its new epoch.
        epoch: u32,
    },
}

/// Why a scenario request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A node index beyond the topology.
    #[error("node {node} does not exist (the topology has {n} nodes)")]
    NodeOutOfRange {
        /// The index given.
        node: usize,
        /// Node count.
        n: usize,
    },
    /// A link change the medium refused.
    #[error(transparent)]
    Medium(#[from] MediumError),
    /// A flow specification that cannot run.
    #[error("bad flow: {0}")]
    BadFlow(&'static str),
    /// More flows than `traffic::MAX_FLOWS`.
    #[error("too many flows (limit {0})")]
    TooManyFlows(usize),
    /// More scheduled actions than `MAX_ACTIONS`.
    #[error("too many scheduled actions (limit {0})")]
    TooManyActions(usize),
    /// An action scheduled before the current simulated time.
    #[error("action scheduled at {at_us} us, before the current time {now_us} us")]
    InThePast {
        /// Requested instant.
        at_us: u64,
        /// Current instant.
        now_us: u64,
    },
}

/// Most actions one run may schedule.
pub const MAX_ACTIONS: usize = 1 << 20;

/// Engine counters: how much happened, and everything dropped or ignored, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    /// Events processed.
    pub events: u64,
    /// Frames handed to a live host.
    pub frames_delivered: u64,
    /// Frames that arrived at a crashed node.
    pub frames_to_dead: u64,
    /// Frames dropped because `max_frames_in_flight` was reached.
    pub pool_exhausted: u64,
    /// Timer events superseded by a later reschedule or a crash.
    pub stale_timers: u64,
    /// Times a host still had output after `drain_cap` polls.
    pub drain_cap_hits: u64,
    /// Transmits whose length exceeded the buffer.
    pub bad_transmits: u64,
    /// Deliveries whose length exceeded the buffer.
    pub bad_deliveries: u64,
    /// Timers pushed 1 us ahead because a host kept asking for the current instant.
    pub timer_spin_breaks: u64,
    /// Delivered packets that were not test traffic.
    pub stray_deliveries: u64,
    /// Scheduled actions that failed when applied.
    pub failed_actions: u64,
    /// Factory calls (initial builds and restarts).
    pub hosts_built: u64,
    /// Most events pending at once.
    pub max_queue_len: usize,
    /// Most frame buffers in use at once.
    pub frame_pool_high_water: usize,
}
