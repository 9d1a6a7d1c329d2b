//! Route checks over the hosts' next hops, convergence tracking and control-traffic rates.
//!
//! A pair (src, dst) is judged only when both are live and connected by usable links
//! (up, loss below 1 both ways): routes across a partition are neither required nor
//! possible. Following next hops from src must reach dst over usable links and live
//! nodes, without revisiting a node (so a walk is bounded by N steps).

use super::medium::{index_of, Medium};
use crate::wire::{MacAddr, NodeId};

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sim::medium::{mac_of, MediumConfig};
    use crate::sim::topology::Topology;

    /// Hand-written routes: `table[i][d]` is node i's next hop (an index) toward node d.
    pub(crate) struct Static {
        pub(crate) table: Vec<Vec<Option<usize>>>,
        pub(crate) live: Vec<bool>,
    }

    pub(crate) fn id(i: usize) -> NodeId {
        NodeId([i as u8 + 1; 16])
    }

    impl Routes for Static {
        fn node_count(&self) -> usize {
            self.table.len()
        }
        fn is_live(&self, i: usize) -> bool {
            self.live[i]
        }
        fn id_of(&self, i: usize) -> Option<NodeId> {
            self.live[i].then(|| id(i))
        }
        fn next_hop_of(&self, i: usize, dst: &NodeId) -> Option<MacAddr> {
            let d = (0..self.table.len()).find(|&d| id(d) == *dst)?;
            self.table[i][d].map(mac_of)
        }
    }

    /// Shortest-index-distance routes on a line: toward d, step one index toward it.
    pub(crate) fn line_routes(n: usize) -> Static {
        let table = (0..n)
            .map(|i| {
                (0..n)
                    .map(|d| (i != d).then(|| if d > i { i + 1 } else { i - 1 }))
                    .collect()
            })
            .collect();
        Static {
            table,
            live: vec![true; n],
        }
    }

    fn medium(spec: &str) -> Medium {
        Medium::new(&spec.parse::<Topology>().unwrap(), MediumConfig::default())
    }

    #[test]
    fn correct_routes_pass_and_every_failure_kind_is_named() {
        let m = medium("line:4");
        let mut r = line_routes(4);
        assert_eq!(check_routes(&r, &m), None);
        assert_eq!(
            route_census(&r, &m),
            RouteCensus {
                pairs: 12,
                reached: 12,
                ..Default::default()
            }
        );
        // 1 -> 0 goes to 2, and 2 -> 0 goes back to 1: both loop, and so does 3 via 2.
        r.table[1][0] = Some(2);
        assert_eq!(
            check_routes(&r, &m),
            Some(RouteFailure {
                src: 1,
                dst: 0,
                outcome: RouteOutcome::Loop
            })
        );
        assert_eq!(route_census(&r, &m).looped, 3);
        r.table[1][0] = None;
        assert_eq!(check_routes(&r, &m).unwrap().outcome, RouteOutcome::NoRoute);
        r.table[1][0] = Some(3);
        assert_eq!(
            check_routes(&r, &m).unwrap().outcome,
            RouteOutcome::NotNeighbour
        );
        r.table[1][0] = Some(0);
        r.table[0][3] = Some(7);
        assert_eq!(
            check_routes(&r, &m).unwrap().outcome,
            RouteOutcome::UnknownMac
        );
    }

    #[test]
    fn a_two_node_loop_on_a_ring_is_caught_within_n_steps() {
        let m = medium("ring:5");
        let mut r = line_routes(5);
        // On the ring 0-1-2-3-4-0, send 4 -> 0 around the long way via 3, and 3 -> 0 back
        // to 4: a loop not involving the source's first hop.
        r.table[2][0] = Some(3);
        r.table[3][0] = Some(4);
        r.table[4][0] = Some(3);
        let census = route_census(&r, &m);
        assert_eq!(census.looped, 3);
        assert_eq!(census.reached, 20 - 3);
    }

    #[test]
    fn dead_nodes_and_partitions_are_judged_correctly() {
        let mut m = medium("line:4");
        let mut r = line_routes(4);
        r.live[3] = false;
        assert_eq!(route_census(&r, &m).pairs, 6);
        assert_eq!(check_routes(&r, &m), None);
        r.live[3] = true;
        r.live[2] = false;
        // 3 is cut off by 2's death: only 0 <-> 1 is judged.
        assert_eq!(
            route_census(&r, &m),
            RouteCensus {
                pairs: 2,
                reached: 2,
                ..Default::default()
            }
        );
        r.live[2] = true;
        r.table[3][0] = Some(2);
        r.table[2][0] = Some(1);
        m.cut(1, 2).unwrap();
        // Across the cut nothing is judged; within each side routes are fine.
        assert_eq!(check_routes(&r, &m), None);
        assert_eq!(route_census(&r, &m).pairs, 4);
        m.heal(1, 2).unwrap();
        m.set_loss(2, 3, 1.0).unwrap();
        assert_eq!(components(&r, &m), vec![0, 0, 0, 3]);
        // On ring 0-1-2-3-0 with 1 dead, 0 and 2 still connect via 3; a route via 1 is dead.
        let ring = medium("ring:4");
        let mut dead_hop = line_routes(4);
        dead_hop.live[1] = false;
        dead_hop.table[0][2] = Some(1);
        assert_eq!(
            check_routes(&dead_hop, &ring).unwrap().outcome,
            RouteOutcome::DeadHop
        );
    }
}
