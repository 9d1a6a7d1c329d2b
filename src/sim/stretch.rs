//! Route stretch: the cost of the path the routes take over the cheapest path's cost.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::medium::Medium;
use super::metrics::{components, link_cost, Resolver, RouteOutcome, Routes};

/// A link cost from (loss forward, loss reverse); must be non-negative, infinite = unusable.
pub type CostFn = dyn Fn(f64, f64) -> f64;

/// ETX in 1/256 units plus a hop penalty: `256 / ((1-p_fwd)(1-p_rev)) + hop_penalty`,
/// i.e. `256/(1-p)^2 + hop_penalty` on a symmetric link; infinite if either loss is 1.
pub fn etx_cost(hop_penalty: f64) -> impl Fn(f64, f64) -> f64 {
    move |fwd, rev| {
        let delivery = (1.0 - fwd) * (1.0 - rev);
        if delivery <= 0.0 {
            f64::INFINITY
        } else {
            256.0 / delivery + hop_penalty
        }
    }
}

/// Stretch over the pairs whose routes reach their destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StretchStats {
    /// Destinations examined.
    pub destinations: usize,
    /// Pairs with a working route and a finite best cost.
    pub pairs: u64,
    /// Mean of route cost / best cost.
    pub mean: f64,
    /// Maximum of route cost / best cost.
    pub max: f64,
    /// Pairs taking a path more than 0.1% costlier than the best.
    pub suboptimal: u64,
    /// Judged pairs whose route does not reach the destination.
    pub unrouted: u64,
}

/// Stretch of the current routes under `cost`, over at most `max_destinations`
/// destinations spread evenly over the node indices (all sources each).
pub fn stretch(
    routes: &impl Routes,
    medium: &Medium,
    cost: &CostFn,
    max_destinations: usize,
) -> StretchStats {
    let n = routes.node_count();
    let comp = components(routes, medium);
    let step = n.div_ceil(max_destinations.max(1)).max(1);
    let mut r = Resolver::new(n);
    let mut best = vec![f64::INFINITY; n];
    let mut s = StretchStats::default();
    let mut total = 0.0;
    for dst in (0..n).step_by(step) {
        let Some(dst_id) = routes.id_of(dst) else {
            continue;
        };
        s.destinations += 1;
        r.reset();
        best_costs(routes, medium, dst, cost, &mut best);
        for src in (0..n).filter(|&x| x != dst && comp[x] != u32::MAX && comp[x] == comp[dst]) {
            if r.resolve(routes, medium, (dst, &dst_id), src, Some(cost)) != RouteOutcome::Reached {
                s.unrouted += 1;
                continue;
            }
            if !(best[src].is_finite() && best[src] > 0.0 && r.cost[src].is_finite()) {
                continue;
            }
            let ratio = r.cost[src] / best[src];
            s.pairs += 1;
            total += ratio;
            s.max = s.max.max(ratio);
            if ratio > 1.001 {
                s.suboptimal += 1;
            }
        }
    }
    if s.pairs > 0 {
        s.mean = total / s.pairs as f64;
    }
    s
}

/// Dijkstra toward `dst`: `best[i]` = cheapest cost from `i` to `dst` over usable links
/// between live nodes.
pub fn best_costs(
    routes: &impl Routes,
    medium: &Medium,
    dst: usize,
    cost: &CostFn,
    best: &mut [f64],
) {
    best.fill(f64::INFINITY);
    let mut heap = BinaryHeap::new();
    if let Some(b) = best.get_mut(dst) {
        *b = 0.0;
        heap.push(Reverse((0u64, dst)));
    }
    // Non-negative floats order like their bit patterns.
    while let Some(Reverse((bits, k))) = heap.pop() {
        let dk = f64::from_bits(bits);
        if dk > best[k] {
            continue;
        }
        for l in medium.links_from(k) {
            let i = l.to;
            if !l.up || !routes.is_live(i) {
                continue;
            }
            let c = link_cost(medium, i, k, cost);
            let up_back = medium.link(i, k).is_some_and(|b| b.up);
            if !(c.is_finite() && c >= 0.0 && up_back) {
                continue;
            }
            let d = dk + c;
            if d < best[i] {
                best[i] = d;
                heap.push(Reverse((d.to_bits(), i)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::medium::MediumConfig;
    use crate::sim::metrics::tests::{line_routes, Static};
    use crate::sim::topology::{LinkParams, Topology};

    #[test]
    fn etx_cost_matches_the_formula() {
        let c = etx_cost(0.0);
        assert_eq!(c(0.0, 0.0), 256.0);
        assert_eq!(c(0.5, 0.5), 1024.0);
        assert_eq!(etx_cost(10.0)(0.2, 0.0), 330.0);
        assert!(c(1.0, 0.0).is_infinite());
    }

    #[test]
    fn stretch_compares_the_taken_path_with_the_cheapest() {
        // Diamond A=0, B=1, C=2, D=3; the A-B-D side loses half its frames.
        let mut t = Topology::new(4).unwrap();
        let lossy = LinkParams {
            loss: 0.5,
            ..LinkParams::default()
        };
        t.add_link(0, 1, lossy).unwrap();
        t.add_link(1, 3, lossy).unwrap();
        t.add_link(0, 2, LinkParams::default()).unwrap();
        t.add_link(2, 3, LinkParams::default()).unwrap();
        let m = Medium::new(&t, MediumConfig::default());
        // Neighbours use their direct link, 1 <-> 2 goes through A, A <-> D through `b`.
        let via = |b: usize| {
            let mut table = vec![vec![None; 4]; 4];
            for (i, d) in [
                (0, 1),
                (1, 0),
                (0, 2),
                (2, 0),
                (1, 3),
                (3, 1),
                (2, 3),
                (3, 2),
            ] {
                table[i][d] = Some(d);
            }
            for (i, d, hop) in [(1, 2, 0), (2, 1, 0), (0, 3, b), (3, 0, b)] {
                table[i][d] = Some(hop);
            }
            Static {
                table,
                live: vec![true; 4],
            }
        };
        let good = stretch(&via(2), &m, &etx_cost(0.0), 16);
        assert_eq!((good.pairs, good.max, good.suboptimal), (12, 1.0, 0));
        // Via B: 1024 + 1024 against 256 + 256, both ways.
        let bad = stretch(&via(1), &m, &etx_cost(0.0), 16);
        assert_eq!((bad.max, bad.suboptimal), (4.0, 2));
        let mut best = vec![0.0; 4];
        best_costs(&via(1), &m, 3, &etx_cost(0.0), &mut best);
        assert_eq!(best, vec![512.0, 1024.0, 256.0, 0.0]);
    }

    #[test]
    fn stretch_samples_destinations_and_counts_unrouted_pairs() {
        let m = Medium::new(&"line:6".parse().unwrap(), MediumConfig::default());
        let mut r = line_routes(6);
        assert_eq!(stretch(&r, &m, &etx_cost(0.0), 3).destinations, 3);
        r.table[5][0] = None;
        let s = stretch(&r, &m, &etx_cost(0.0), 6);
        assert_eq!(
            (s.destinations, s.pairs, s.unrouted, s.mean),
            (6, 29, 1, 1.0)
        );
    }
}
