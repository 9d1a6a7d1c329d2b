//! Route checks over the hosts' next hops, convergence tracking and control-traffic rates.
//!
//! A pair (src, dst) is judged only when both are live and connected by usable links
//! (up, loss below 1 both ways): routes across a partition are neither required nor
//! possible. Following next hops from src must reach dst over usable links and live
//! nodes, without revisiting a node (so a walk is bounded by N steps).

use super::medium::{index_of, Medium};
use crate::time::{Duration, Instant};
use crate::wire::{MacAddr, NodeId};

/// Most disruptions a `ConvergenceLog` keeps (later ones are counted, not kept).
pub const MAX_DISRUPTIONS: usize = 1024;

/// Read access to every node's routes, by node index.
pub trait Routes {
    /// Number of node slots.
    fn node_count(&self) -> usize;
    /// Whether node `i` is running.
    fn is_live(&self, i: usize) -> bool;
    /// Routing identity of live node `i`.
    fn id_of(&self, i: usize) -> Option<NodeId>;
    /// Node `i`'s next hop toward `dst`.
    fn next_hop_of(&self, i: usize, dst: &NodeId) -> Option<MacAddr>;
}

/// What following the next hops from a source toward a destination found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOutcome {
    /// Reached the destination.
    Reached,
    /// Some node on the way has no next hop.
    NoRoute,
    /// A next hop is not a simulator MAC.
    UnknownMac,
    /// A next hop is not reachable over a usable link.
    NotNeighbour,
    /// A next hop is a crashed node.
    DeadHop,
    /// The walk came back to a node it had visited.
    Loop,
}

/// The first pair whose route is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteFailure {
    /// Source node index.
    pub src: usize,
    /// Destination node index.
    pub dst: usize,
    /// What went wrong.
    pub outcome: RouteOutcome,
}

/// Counts of route outcomes over all judged pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RouteCensus {
    /// Pairs judged.
    pub pairs: u64,
    /// Pairs whose route reaches the destination.
    pub reached: u64,
    /// Pairs lacking a next hop somewhere.
    pub no_route: u64,
    /// Pairs whose route uses a cut link, a dead node or a foreign MAC.
    pub broken: u64,
    /// Pairs whose route loops.
    pub looped: u64,
}

/// Whether a directed link is usable in both directions.
pub fn usable(medium: &Medium, a: usize, b: usize) -> bool {
    let ok = |x, y| medium.link(x, y).is_some_and(|l| l.up && l.loss < 1.0);
    ok(a, b) && ok(b, a)
}

/// Connected components of live nodes over usable links (`u32::MAX` for dead nodes).
pub fn components(routes: &impl Routes, medium: &Medium) -> Vec<u32> {
    let n = routes.node_count();
    let mut comp = vec![u32::MAX; n];
    let mut stack = Vec::new();
    for start in 0..n {
        if comp[start] != u32::MAX || !routes.is_live(start) {
            continue;
        }
        comp[start] = start as u32;
        stack.push(start);
        while let Some(u) = stack.pop() {
            for l in medium.links_from(u) {
                if comp[l.to] == u32::MAX && routes.is_live(l.to) && usable(medium, u, l.to) {
                    comp[l.to] = start as u32;
                    stack.push(l.to);
                }
            }
        }
    }
    comp
}

/// Walks next hops toward one destination from many sources, memoising what each node
/// on a walk leads to, so one destination costs O(N) `next_hop` calls.
pub(crate) struct Resolver {
    state: Vec<Option<RouteOutcome>>,
    on_path: Vec<bool>,
    path: Vec<usize>,
    /// Cost from each resolved node to the destination along its route (if costed).
    pub(crate) cost: Vec<f64>,
}

impl Resolver {
    /// A resolver for `n` nodes.
    pub(crate) fn new(n: usize) -> Resolver {
        Resolver {
            state: vec![None; n],
            on_path: vec![false; n],
            path: Vec::new(),
            cost: vec![0.0; n],
        }
    }

    /// Forgets everything (call before each destination).
    pub(crate) fn reset(&mut self) {
        self.state.fill(None);
    }

    /// Where `src`'s route toward `dst` leads; with `cost`, also fills `self.cost`.
    pub(crate) fn resolve(
        &mut self,
        routes: &impl Routes,
        medium: &Medium,
        (dst, dst_id): (usize, &NodeId),
        src: usize,
        cost: Option<&dyn Fn(f64, f64) -> f64>,
    ) -> RouteOutcome {
        self.path.clear();
        let mut cur = src;
        let outcome = loop {
            if cur == dst {
                self.cost[dst] = 0.0;
                break RouteOutcome::Reached;
            }
            if self.on_path[cur] {
                break RouteOutcome::Loop;
            }
            if let Some(known) = self.state[cur] {
                break known;
            }
            self.on_path[cur] = true;
            self.path.push(cur);
            match step(routes, medium, cur, dst_id) {
                Ok(next) => cur = next,
                Err(o) => break o,
            }
        };
        for (i, &node) in self.path.iter().enumerate().rev() {
            self.on_path[node] = false;
            self.state[node] = Some(outcome);
            if let (RouteOutcome::Reached, Some(f)) = (outcome, cost) {
                let next = self.path.get(i + 1).copied().unwrap_or(cur);
                self.cost[node] = link_cost(medium, node, next, f) + self.cost[next];
            }
        }
        outcome
    }
}

/// One hop of a walk: the next node, or why there is none.
fn step(
    routes: &impl Routes,
    medium: &Medium,
    cur: usize,
    dst_id: &NodeId,
) -> Result<usize, RouteOutcome> {
    let mac = routes
        .next_hop_of(cur, dst_id)
        .ok_or(RouteOutcome::NoRoute)?;
    let next = index_of(&mac, routes.node_count()).ok_or(RouteOutcome::UnknownMac)?;
    if !usable(medium, cur, next) {
        return Err(RouteOutcome::NotNeighbour);
    }
    if !routes.is_live(next) {
        return Err(RouteOutcome::DeadHop);
    }
    Ok(next)
}

/// Cost of the directed link `a -> b` under `f(loss a->b, loss b->a)`.
pub(crate) fn link_cost(medium: &Medium, a: usize, b: usize, f: &dyn Fn(f64, f64) -> f64) -> f64 {
    let loss = |x, y| medium.link(x, y).map_or(1.0, |l| l.loss);
    f(loss(a, b), loss(b, a))
}

/// Calls `visit(src, dst, outcome)` for every judged pair until it returns false.
fn walk_pairs(
    routes: &impl Routes,
    medium: &Medium,
    mut visit: impl FnMut(usize, usize, RouteOutcome) -> bool,
) {
    let n = routes.node_count();
    let comp = components(routes, medium);
    let mut r = Resolver::new(n);
    for dst in 0..n {
        let Some(dst_id) = routes.id_of(dst) else {
            continue;
        };
        r.reset();
        for src in (0..n).filter(|&s| s != dst && comp[s] != u32::MAX && comp[s] == comp[dst]) {
            let outcome = r.resolve(routes, medium, (dst, &dst_id), src, None);
            if !visit(src, dst, outcome) {
                return;
            }
        }
    }
}

/// The first pair whose route does not reach its destination, or `None` if all do.
pub fn check_routes(routes: &impl Routes, medium: &Medium) -> Option<RouteFailure> {
    let mut failure = None;
    walk_pairs(routes, medium, |src, dst, outcome| {
        if outcome != RouteOutcome::Reached {
            failure = Some(RouteFailure { src, dst, outcome });
        }
        failure.is_none()
    });
    failure
}

/// Route outcomes over every judged pair.
pub fn route_census(routes: &impl Routes, medium: &Medium) -> RouteCensus {
    let mut c = RouteCensus::default();
    walk_pairs(routes, medium, |_, _, outcome| {
        c.pairs += 1;
        match outcome {
            RouteOutcome::Reached => c.reached += 1,
            RouteOutcome::NoRoute => c.no_route += 1,
            RouteOutcome::Loop => c.looped += 1,
            _ => c.broken += 1,
        }
        true
    });
    c
}

/// A scenario action that may break routes, and when they were whole again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disruption {
    /// When the action happened.
    pub at: Instant,
    /// First check after `at` at which all routes were whole.
    pub reconverged: Option<Instant>,
}

/// When the routes first became whole, and how long each disruption took to heal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvergenceLog {
    /// First check at which every judged route reached its destination.
    pub first: Option<Instant>,
    /// Disruptions in order (at most `MAX_DISRUPTIONS`).
    pub disruptions: Vec<Disruption>,
    /// Disruptions not kept because the log was full.
    pub disruptions_dropped: u64,
    /// Route checks run.
    pub checks: u64,
    /// The last check's failure, for diagnosis.
    pub last_failure: Option<RouteFailure>,
}

impl ConvergenceLog {
    /// Whether a check is needed (not yet converged, or a disruption is unresolved).
    pub fn needs_check(&self) -> bool {
        self.first.is_none()
            || self
                .disruptions
                .last()
                .is_some_and(|d| d.reconverged.is_none())
    }

    /// Records a disruption at `now`.
    pub fn disrupt(&mut self, now: Instant) {
        if self.disruptions.len() >= MAX_DISRUPTIONS {
            self.disruptions_dropped += 1;
            return;
        }
        self.disruptions.push(Disruption {
            at: now,
            reconverged: None,
        });
    }

    /// Records the result of a check at `now`.
    pub fn record(&mut self, now: Instant, failure: Option<RouteFailure>) {
        self.checks += 1;
        self.last_failure = failure;
        if failure.is_some() {
            return;
        }
        self.first.get_or_insert(now);
        for d in self
            .disruptions
            .iter_mut()
            .filter(|d| d.reconverged.is_none())
        {
            d.reconverged = Some(now);
        }
    }

    /// Longest time any disruption took to heal (unhealed ones count up to `now`).
    pub fn worst_reconvergence(&self, now: Instant) -> Option<Duration> {
        self.disruptions
            .iter()
            .map(|d| d.reconverged.unwrap_or(now) - d.at)
            .max()
    }
}

/// Mean and maximum of a per-node rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RateSummary {
    /// Mean over the nodes counted.
    pub mean: f64,
    /// Maximum over the nodes counted.
    pub max: f64,
    /// Node with the maximum.
    pub max_node: usize,
    /// Nodes counted.
    pub nodes: usize,
}

/// Per-second rates from two cumulative snapshots `window` apart, over nodes in `count`.
pub fn rate_summary(
    before: &[u64],
    after: &[u64],
    window: Duration,
    count: impl Fn(usize) -> bool,
) -> RateSummary {
    let secs = window.as_secs_f64();
    let mut s = RateSummary::default();
    if secs <= 0.0 {
        return s;
    }
    let mut total = 0.0;
    for (i, (b, a)) in before
        .iter()
        .zip(after)
        .enumerate()
        .filter(|(i, _)| count(*i))
    {
        let rate = a.saturating_sub(*b) as f64 / secs;
        total += rate;
        s.nodes += 1;
        if rate > s.max || s.nodes == 1 {
            s.max = rate;
            s.max_node = i;
        }
    }
    if s.nodes > 0 {
        s.mean = total / s.nodes as f64;
    }
    s
}
