//! `random:N:SEED`: a connected random geometric graph in the unit square.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::topology::{LinkParams, Topology, TopologyError};

/// Mean degree aimed for first.
const RANDOM_TARGET_DEGREE: f64 = 8.0;
/// Placements tried before giving up.
const RANDOM_MAX_PLACEMENTS: u32 = 64;

/// Random geometric graph: place, pick the radius giving the target mean degree, keep it
/// if connected; else raise the target by one (up to a cap), then re-place.
pub(super) fn random(n: usize, seed: u64) -> Result<Topology, TopologyError> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let max_degree = (n - 1) as f64;
    let cap = RANDOM_TARGET_DEGREE.max((n as f64).ln().ceil() + 4.0) + 2.0;
    for _ in 0..RANDOM_MAX_PLACEMENTS {
        let pos: Vec<(f64, f64)> = (0..n).map(|_| (unit(&mut rng), unit(&mut rng))).collect();
        let mut target = RANDOM_TARGET_DEGREE;
        while target <= cap {
            let r = radius_for_degree(&pos, target.min(max_degree));
            let mut t = Topology::new(n)?;
            for (a, b) in pairs_within(&pos, r) {
                t.add_link(a, b, LinkParams::default())?;
            }
            if t.is_connected() {
                t.set_positions(pos);
                return Ok(t);
            }
            target += 1.0;
        }
    }
    Err(TopologyError::NotConnected {
        n,
        seed,
        attempts: RANDOM_MAX_PLACEMENTS,
    })
}

/// A uniform float in [0, 1) from the top 53 bits.
fn unit(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// The smallest radius (to bisection precision) whose mean degree reaches `target`.
fn radius_for_degree(pos: &[(f64, f64)], target: f64) -> f64 {
    let n = pos.len() as f64;
    let want_pairs = (target * n / 2.0).ceil() as usize;
    let guess = (target / (std::f64::consts::PI * n)).sqrt();
    let mut hi = (3.0 * guess).min(std::f64::consts::SQRT_2);
    if pairs_within(pos, hi).len() < want_pairs {
        hi = std::f64::consts::SQRT_2;
    }
    let mut lo = 0.0;
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if pairs_within(pos, mid).len() >= want_pairs {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// All pairs `(a < b)` at distance at most `r`, sorted, found through a grid of cells.
fn pairs_within(pos: &[(f64, f64)], r: f64) -> Vec<(usize, usize)> {
    // Cells at least `r` wide, so a pair within `r` sits in adjacent cells; at most ~4n
    // cells so a tiny `r` cannot blow up memory.
    let max_cells = 2 * (pos.len() as f64).sqrt().ceil() as usize + 1;
    let cells = ((1.0 / r.max(1e-9)).floor() as usize).clamp(1, max_cells);
    let cell_of = |v: f64| ((v * cells as f64) as usize).min(cells - 1);
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); cells * cells];
    for (i, &(x, y)) in pos.iter().enumerate() {
        buckets[cell_of(y) * cells + cell_of(x)].push(i);
    }
    let r2 = r * r;
    let mut out = Vec::new();
    for (i, &(x, y)) in pos.iter().enumerate() {
        let (cx, cy) = (cell_of(x), cell_of(y));
        for ny in cy.saturating_sub(1)..=(cy + 1).min(cells - 1) {
            for nx in cx.saturating_sub(1)..=(cx + 1).min(cells - 1) {
                for &j in &buckets[ny * cells + nx] {
                    let (dx, dy) = (pos[j].0 - x, pos[j].1 - y);
                    if j > i && dx * dx + dy * dy <= r2 {
                        out.push((i, j));
                    }
                }
            }
        }
    }
    out.sort_unstable();
    out
}
