//! A deterministic discrete-event simulator of many sans-IO nodes over a radio medium.
//!
//! # What it models
//!
//! - **Nodes** are anything implementing [`SimHost`]; node `i` has MAC `02:00:00:ii:ii:ii`
//!   and one interface (`IfaceId(0)`). Hosts are driven quinn-style (see [`SimHost`]).
//!   A crash drops the host (its timers stop, frames to it vanish); a restart builds a new
//!   one through the factory with the next epoch.
//! - **Range** is the topology's adjacency: a broadcast reaches every neighbour over an up
//!   link, each with its own independent loss draw; a unicast reaches only the neighbour
//!   owning the destination MAC (or nobody, still costing airtime).
//! - **Loss** is per directed link, drawn from one seeded ChaCha20 stream in event order.
//! - **Airtime**: each sender's radio sends one frame at a time; a frame takes
//!   `(len + 14 + overhead) * 8 / bitrate` (broadcasts at the sender's lowest link
//!   bitrate) and waits for the sender's previous frame. A frame that would wait longer
//!   than `max_backlog` is dropped and counted. Receivers get the frame one link latency
//!   after its last bit.
//! - **Runtime changes**: cut/heal links, change a link's loss, crash/restart nodes, all
//!   at scheduled instants. Link state is sampled when a frame is sent (frames already in
//!   flight still arrive).
//! - **Test traffic**: UDP/IPv6 packets handed to a source host's `handle_ip_packet` and
//!   counted when a host's `poll_deliver` returns them; a reply flow (`add_reply_flow`)
//!   answers each request the moment it first arrives (request/response).
//!
//! # What it does not model
//!
//! No collisions, carrier sense, hidden or exposed terminals, or interference between
//! senders: two neighbours may transmit at once and both frames arrive. No capture
//! effect, fading, or distance-dependent loss (loss is a per-link constant until
//! changed). No MAC-layer retransmission unless `MediumConfig::unicast_retries` is set.
//! No CPU time: hosts compute instantly. One interface per node.
//!
//! # Metrics
//!
//! - **Convergence**: every `check_interval` (100 ms) while not converged, every live
//!   node must have a next hop toward every live node it is connected to over usable
//!   links (up, loss below 1 both ways), and following next hops must reach the
//!   destination over usable links and live nodes without revisiting a node. The first
//!   check that passes is the convergence time; each scenario action restarts checking
//!   and records when routes were whole again (`ConvergenceLog`).
//! - **Stretch**: cost of the path the next hops take over the cheapest path's cost,
//!   both under a caller-chosen link cost (`etx_cost(hop_penalty)` by default).
//! - **Delivery**: per test flow, distinct packets delivered at the destination over
//!   packets sent, latency, and the longest gap between deliveries.
//! - **Control traffic**: per node, bytes of always-control frames (0x11–0x14, 0x16)
//!   plus the host's `control_bytes_sent` hook; rates between two snapshots.
//!
//! # Determinism
//!
//! Events are ordered by (time, insertion sequence); every collection iterated in order
//! is a `Vec`; randomness comes only from seeds. The same topology, config, factory and
//! scenario give the same run bit for bit (`Sim::trace_digest` checks it).
//!
//! # Use
//!
//! ```
//! use veilmesh::sim::{mock, Action, FlowSpec, Sim, SimConfig, Topology, etx_cost};
//! use veilmesh::time::{Duration, Instant};
//!
//! let topo: Topology = "grid:4x4".parse().unwrap();
//! let cfg = SimConfig { seed: 7, ..SimConfig::default() };
//! let mut sim = Sim::new(&topo, cfg, mock::flood_factory(7, mock::FloodConfig::default()));
//! let flow = sim
//!     .add_flow(FlowSpec {
//!         src: 0,
//!         dst: 15,
//!         start: Instant::from_millis(5_000),
//!         interval: Duration::from_millis(100),
//!         count: 50,
//!         payload_len: 0,
//!     })
//!     .unwrap();
//! sim.schedule(Instant::from_millis(6_000), Action::Cut { a: 0, b: 1 }).unwrap();
//! sim.run_until(Instant::from_millis(12_000));
//! assert!(sim.convergence().first.is_some());
//! assert!(sim.check_routes().is_none());
//! let stretch = sim.stretch(&etx_cost(0.0), 1024);
//! assert!(stretch.max < 1.5);
//! assert!(sim.flow_stats(flow).unwrap().delivery_ratio() > 0.8);
//! ```

#![forbid(unsafe_code)]

pub mod cli;
pub mod convergence;
pub mod counters;
pub mod engine;
pub mod host;
pub mod medium;
pub mod metrics;
pub mod mock;
pub mod node_host;
mod queue;
mod random_graph;
pub mod report;
pub mod scenario;
pub mod stretch;
pub mod topology;
pub mod traffic;

#[cfg(test)]
mod tests;

pub use cli::{run_cli, CliError, SimArgs};
pub use convergence::{ConvergenceLog, Disruption, RateSummary};
pub use engine::{Factory, Sim};
pub use host::{CircuitBuilds, SimHost};
pub use medium::{index_of, mac_of, FrameClass, Medium, MediumConfig, MediumError, NodeCounters};
pub use metrics::{RouteCensus, RouteFailure, RouteOutcome, Routes};
pub use node_host::{node_factory, sim_identity};
pub use report::SimReport;
pub use scenario::{Action, EngineStats, SimConfig, SimError};
pub use stretch::{etx_cost, CostFn, StretchStats};
pub use topology::{LinkParams, Topology, TopologyError};
pub use traffic::{FlowSpec, FlowStats};
