//! Read access to a running simulation: clock, hosts, flows, counters and route metrics.

use super::Sim;
use crate::sim::convergence::ConvergenceLog;
use crate::sim::host::SimHost;
use crate::sim::medium::Medium;
use crate::sim::metrics::{check_routes, route_census, RouteCensus, RouteFailure, Routes};
use crate::sim::scenario::EngineStats;
use crate::sim::stretch::{stretch, CostFn, StretchStats};
use crate::sim::traffic::{FlowSpec, FlowStats};
use crate::time::Instant;
use crate::wire::{MacAddr, NodeId};

impl<H: SimHost> Sim<H> {
    /// The current simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Number of node slots.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Node `i`'s host, if live.
    pub fn host(&self, i: usize) -> Option<&H> {
        self.hosts.get(i)?.as_ref()
    }

    /// Node `i`'s host, if live, for inspection or direct input (drain with `drive`).
    pub fn host_mut(&mut self, i: usize) -> Option<&mut H> {
        self.hosts.get_mut(i)?.as_mut()
    }

    /// Whether node `i` has a running host.
    pub fn is_live(&self, i: usize) -> bool {
        self.hosts.get(i).is_some_and(Option::is_some)
    }

    /// Node `i`'s current epoch (0 until its first restart).
    pub fn epoch(&self, i: usize) -> u32 {
        self.epochs.get(i).copied().unwrap_or(0)
    }

    /// The medium (links, counters).
    pub fn medium(&self) -> &Medium {
        &self.medium
    }

    /// Every flow's statistics, by flow id.
    pub fn flows(&self) -> impl Iterator<Item = (&FlowSpec, &FlowStats)> {
        self.flows.iter().map(|f| (&f.spec, &f.stats))
    }

    /// One flow's statistics.
    pub fn flow_stats(&self, flow: usize) -> Option<&FlowStats> {
        self.flows.get(flow).map(|f| &f.stats)
    }

    /// Convergence history.
    pub fn convergence(&self) -> &ConvergenceLog {
        &self.conv
    }

    /// Engine counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// A hash of every event and transmission so far: equal digests, equal runs.
    pub fn trace_digest(&self) -> u64 {
        self.digest
    }

    /// Control bytes node `i` has sent over all its epochs: always-control frame classes
    /// (Ethernet header included) plus what its hosts reported through the hook.
    pub fn control_bytes(&self, i: usize) -> u64 {
        let hook = self.hook_base.get(i).copied().unwrap_or(0)
            + self.hook_last.get(i).copied().unwrap_or(0);
        self.medium.counters(i).control_bytes() + hook
    }

    /// `control_bytes` of every node, for rates between two snapshots.
    pub fn control_snapshot(&self) -> Vec<u64> {
        (0..self.len()).map(|i| self.control_bytes(i)).collect()
    }

    /// The first pair whose route is broken right now, or `None` if all routes are whole.
    pub fn check_routes(&self) -> Option<RouteFailure> {
        check_routes(self, &self.medium)
    }

    /// Route outcomes over every judged pair right now.
    pub fn route_census(&self) -> RouteCensus {
        route_census(self, &self.medium)
    }

    /// Stretch of the current routes under `cost` (see `stretch::stretch`).
    pub fn stretch(&self, cost: &CostFn, max_destinations: usize) -> StretchStats {
        stretch(self, &self.medium, cost, max_destinations)
    }
}

impl<H: SimHost> Routes for Sim<H> {
    fn node_count(&self) -> usize {
        self.hosts.len()
    }

    fn is_live(&self, i: usize) -> bool {
        self.hosts.get(i).is_some_and(Option::is_some)
    }

    fn id_of(&self, i: usize) -> Option<NodeId> {
        self.is_live(i).then(|| self.ids[i])
    }

    fn next_hop_of(&self, i: usize, dst: &NodeId) -> Option<MacAddr> {
        self.host(i)?.next_hop(dst)
    }
}
