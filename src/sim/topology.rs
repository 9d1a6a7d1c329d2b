//! Which nodes can hear each other, and how good each link is, parsed from a short spec.
//!
//! Specs: `line:N`, `ring:N`, `grid:WxH` (4-neighbour), `diamond` (A–B–D, A–C–D) and
//! `random:N:SEED` (random geometric graph in the unit square, connected, mean degree
//! about 8). Node `i` of a spec is simulator node `i`; in `diamond` A=0, B=1, C=2, D=3.

use std::collections::BTreeSet;
use std::str::FromStr;

use super::random_graph::random;
use crate::time::Duration;

/// Most nodes a topology may have (MACs encode the index in 24 bits; memory does the rest).
pub const MAX_NODES: usize = 100_000;

/// The properties of one link, the same in both directions unless changed at runtime.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkParams {
    /// Probability that a frame on this link is lost, in [0, 1].
    pub loss: f64,
    /// Propagation plus processing delay added after the frame's airtime.
    pub latency: Duration,
    /// Radio bitrate in bit/s, for airtime.
    pub bitrate_bps: u64,
}

impl Default for LinkParams {
    fn default() -> Self {
        LinkParams {
            loss: 0.0,
            latency: Duration::from_millis(1),
            bitrate_bps: 54_000_000,
        }
    }
}

/// An undirected link between nodes `a < b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Lower node index.
    pub a: usize,
    /// Higher node index.
    pub b: usize,
    /// Link properties (both directions).
    pub params: LinkParams,
}

/// Why a topology spec or a link could not be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// The part before the first `:` names no known topology.
    #[error(
        "unknown topology {kind:?}: expected line:N, ring:N, grid:WxH, diamond or random:N:SEED"
    )]
    UnknownKind {
        /// The kind as given.
        kind: String,
    },
    /// The spec has the wrong number of fields.
    #[error("bad topology {spec:?}: expected {expected}")]
    BadShape {
        /// The spec as given.
        spec: String,
        /// The form that was expected.
        expected: &'static str,
    },
    /// A field is not a non-negative integer.
    #[error("bad topology {spec:?}: {what} {value:?} is not a non-negative integer")]
    BadNumber {
        /// The spec as given.
        spec: String,
        /// Which field.
        what: &'static str,
        /// The field as given.
        value: String,
    },
    /// A size is below the minimum for its kind.
    #[error("bad topology {spec:?}: {what} must be at least {min}, got {got}")]
    TooSmall {
        /// The spec as given.
        spec: String,
        /// Which field.
        what: &'static str,
        /// Smallest accepted value.
        min: usize,
        /// The value given.
        got: usize,
    },
    /// More nodes than `MAX_NODES`.
    #[error("topology has {got} nodes, more than the limit of {max}")]
    TooManyNodes {
        /// Nodes asked for.
        got: usize,
        /// `MAX_NODES`.
        max: usize,
    },
    /// A link names a node that does not exist.
    #[error("link {a}-{b}: node index out of range (topology has {n} nodes)")]
    NodeOutOfRange {
        /// One end.
        a: usize,
        /// Other end.
        b: usize,
        /// Node count.
        n: usize,
    },
    /// A link from a node to itself.
    #[error("link {a}-{a} connects a node to itself")]
    SelfLoop {
        /// The node.
        a: usize,
    },
    /// The same link twice.
    #[error("link {a}-{b} is listed twice")]
    DuplicateLink {
        /// One end.
        a: usize,
        /// Other end.
        b: usize,
    },
    /// A loss outside [0, 1] (or NaN).
    #[error("loss {0} is not a probability in [0, 1]")]
    BadLoss(f64),
    /// A zero bitrate.
    #[error("link bitrate must be positive")]
    BadBitrate,
    /// `random:` found no connected placement.
    #[error("random:{n}:{seed}: no connected placement after {attempts} attempts")]
    NotConnected {
        /// Node count.
        n: usize,
        /// Seed.
        seed: u64,
        /// Placements tried.
        attempts: u32,
    },
}

/// A set of nodes and undirected links between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    name: String,
    n: usize,
    links: Vec<Link>,
    present: BTreeSet<(usize, usize)>,
    positions: Vec<(f64, f64)>,
}

impl Topology {
    /// `n` nodes and no links.
    pub fn new(n: usize) -> Result<Self, TopologyError> {
        if n > MAX_NODES {
            return Err(TopologyError::TooManyNodes {
                got: n,
                max: MAX_NODES,
            });
        }
        Ok(Topology {
            name: format!("custom:{n}"),
            n,
            links: Vec::new(),
            present: BTreeSet::new(),
            positions: Vec::new(),
        })
    }

    /// Adds an undirected link between `a` and `b`.
    pub fn add_link(
        &mut self,
        a: usize,
        b: usize,
        params: LinkParams,
    ) -> Result<(), TopologyError> {
        check_params(&params)?;
        if a >= self.n || b >= self.n {
            return Err(TopologyError::NodeOutOfRange { a, b, n: self.n });
        }
        if a == b {
            return Err(TopologyError::SelfLoop { a });
        }
        let (a, b) = (a.min(b), a.max(b));
        if !self.present.insert((a, b)) {
            return Err(TopologyError::DuplicateLink { a, b });
        }
        self.links.push(Link { a, b, params });
        Ok(())
    }

    /// Sets the loss of every link (both directions).
    pub fn set_all_loss(&mut self, loss: f64) -> Result<(), TopologyError> {
        if !(0.0..=1.0).contains(&loss) {
            return Err(TopologyError::BadLoss(loss));
        }
        self.links.iter_mut().for_each(|l| l.params.loss = loss);
        Ok(())
    }

    /// The spec this topology was parsed from (or `custom:N`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the topology has no nodes.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// All links, in insertion order.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// Records where each node sits (for generators that place nodes).
    pub(crate) fn set_positions(&mut self, positions: Vec<(f64, f64)>) {
        self.positions = positions;
    }

    /// Node positions in the unit square (`random:` only; empty otherwise).
    pub fn positions(&self) -> &[(f64, f64)] {
        &self.positions
    }

    /// Neighbour lists, each sorted ascending.
    pub fn adjacency(&self) -> Vec<Vec<usize>> {
        let mut adj = vec![Vec::new(); self.n];
        for l in &self.links {
            adj[l.a].push(l.b);
            adj[l.b].push(l.a);
        }
        adj.iter_mut().for_each(|v| v.sort_unstable());
        adj
    }

    /// Mean number of neighbours per node.
    pub fn mean_degree(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        2.0 * self.links.len() as f64 / self.n as f64
    }

    /// Whether every node can reach every other.
    pub fn is_connected(&self) -> bool {
        let adj = self.adjacency();
        let mut seen = vec![false; self.n];
        let mut stack = vec![0usize];
        let mut count = 0;
        if self.n == 0 {
            return true;
        }
        seen[0] = true;
        while let Some(u) = stack.pop() {
            count += 1;
            for &v in &adj[u] {
                if !seen[v] {
                    seen[v] = true;
                    stack.push(v);
                }
            }
        }
        count == self.n
    }

    /// Parses a spec such as `grid:10x10` or `random:1000:7`.
    pub fn parse(spec: &str) -> Result<Self, TopologyError> {
        let spec = spec.trim();
        let parts: Vec<&str> = spec.split(':').collect();
        let kind = parts.first().copied().unwrap_or("").to_ascii_lowercase();
        let mut topo = match (kind.as_str(), parts.len()) {
            ("line", 2) => line(size(spec, "N", parts[1], 2)?)?,
            ("ring", 2) => ring(size(spec, "N", parts[1], 3)?)?,
            ("grid", 2) => {
                let (w, h) = parts[1]
                    .split_once(['x', 'X'])
                    .ok_or_else(|| shape(spec, "grid:WxH, e.g. grid:10x10"))?;
                grid(size(spec, "W", w, 1)?, size(spec, "H", h, 1)?, spec)?
            }
            ("diamond", 1) => diamond()?,
            ("random", 3) => {
                let n = size(spec, "N", parts[1], 2)?;
                let seed = number(spec, "SEED", parts[2])?;
                random(n, seed)?
            }
            ("line", _) | ("ring", _) => return Err(shape(spec, "line:N or ring:N, e.g. line:5")),
            ("grid", _) => return Err(shape(spec, "grid:WxH, e.g. grid:10x10")),
            ("diamond", _) => return Err(shape(spec, "diamond (no parameters)")),
            ("random", _) => return Err(shape(spec, "random:N:SEED, e.g. random:100:1")),
            _ => return Err(TopologyError::UnknownKind { kind }),
        };
        topo.name = spec.to_string();
        Ok(topo)
    }
}

impl FromStr for Topology {
    type Err = TopologyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topology::parse(s)
    }
}

fn check_params(p: &LinkParams) -> Result<(), TopologyError> {
    if !(0.0..=1.0).contains(&p.loss) {
        return Err(TopologyError::BadLoss(p.loss));
    }
    if p.bitrate_bps == 0 {
        return Err(TopologyError::BadBitrate);
    }
    Ok(())
}

fn shape(spec: &str, expected: &'static str) -> TopologyError {
    TopologyError::BadShape {
        spec: spec.to_string(),
        expected,
    }
}

fn number(spec: &str, what: &'static str, value: &str) -> Result<u64, TopologyError> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| TopologyError::BadNumber {
            spec: spec.to_string(),
            what,
            value: value.to_string(),
        })
}

fn size(spec: &str, what: &'static str, value: &str, min: usize) -> Result<usize, TopologyError> {
    let v = number(spec, what, value)?;
    let v = usize::try_from(v).unwrap_or(usize::MAX);
    if v < min {
        return Err(TopologyError::TooSmall {
            spec: spec.to_string(),
            what,
            min,
            got: v,
        });
    }
    if v > MAX_NODES {
        return Err(TopologyError::TooManyNodes {
            got: v,
            max: MAX_NODES,
        });
    }
    Ok(v)
}

fn line(n: usize) -> Result<Topology, TopologyError> {
    let mut t = Topology::new(n)?;
    for i in 1..n {
        t.add_link(i - 1, i, LinkParams::default())?;
    }
    Ok(t)
}

fn ring(n: usize) -> Result<Topology, TopologyError> {
    let mut t = line(n)?;
    t.add_link(n - 1, 0, LinkParams::default())?;
    Ok(t)
}

fn grid(w: usize, h: usize, spec: &str) -> Result<Topology, TopologyError> {
    let n = w.saturating_mul(h);
    if n < 2 {
        return Err(TopologyError::TooSmall {
            spec: spec.to_string(),
            what: "W*H",
            min: 2,
            got: n,
        });
    }
    let mut t = Topology::new(n)?;
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if x + 1 < w {
                t.add_link(i, i + 1, LinkParams::default())?;
            }
            if y + 1 < h {
                t.add_link(i, i + w, LinkParams::default())?;
            }
        }
    }
    Ok(t)
}

fn diamond() -> Result<Topology, TopologyError> {
    let mut t = Topology::new(4)?;
    for (a, b) in [(0, 1), (0, 2), (1, 3), (2, 3)] {
        t.add_link(a, b, LinkParams::default())?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(t: &Topology) -> Vec<(usize, usize)> {
        t.links().iter().map(|l| (l.a, l.b)).collect()
    }

    #[test]
    fn fixed_shapes_have_the_expected_links() {
        let line: Topology = "line:4".parse().unwrap();
        assert_eq!(
            (line.len(), pairs(&line)),
            (4, vec![(0, 1), (1, 2), (2, 3)])
        );
        let ring: Topology = "ring:4".parse().unwrap();
        assert_eq!(pairs(&ring), vec![(0, 1), (1, 2), (2, 3), (0, 3)]);
        let grid: Topology = "grid:3x2".parse().unwrap();
        assert_eq!(
            pairs(&grid),
            vec![(0, 1), (0, 3), (1, 2), (1, 4), (2, 5), (3, 4), (4, 5)]
        );
        let d: Topology = " Diamond ".parse().unwrap();
        assert_eq!(pairs(&d), vec![(0, 1), (0, 2), (1, 3), (2, 3)]);
        assert_eq!(d.name(), "Diamond");
        for t in [&line, &ring, &grid, &d] {
            assert!(t.is_connected());
            assert!(t.links().iter().all(|l| l.params == LinkParams::default()));
        }
        assert_eq!(grid.adjacency()[4], vec![1, 3, 5]);
    }

    #[test]
    fn random_graphs_are_connected_reproducible_and_moderately_dense() {
        for (n, seed) in [(50, 1), (200, 2), (1000, 3)] {
            let t = Topology::parse(&format!("random:{n}:{seed}")).unwrap();
            assert_eq!(t.len(), n);
            assert_eq!(t.positions().len(), n);
            assert!(t.is_connected(), "random:{n}:{seed}");
            let d = t.mean_degree();
            assert!(
                (6.0..=11.0).contains(&d),
                "random:{n}:{seed} mean degree {d}"
            );
            assert_eq!(t, Topology::parse(&format!("random:{n}:{seed}")).unwrap());
        }
        let a = Topology::parse("random:100:1").unwrap();
        let b = Topology::parse("random:100:2").unwrap();
        assert_ne!(pairs(&a), pairs(&b));
        // Too few nodes for degree 8: the graph is simply complete.
        assert_eq!(Topology::parse("random:4:9").unwrap().links().len(), 6);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |s: &str| Topology::parse(s).unwrap_err();
        assert!(matches!(err("star:5"), TopologyError::UnknownKind { kind } if kind == "star"));
        assert!(matches!(err("line"), TopologyError::BadShape { .. }));
        assert!(matches!(err("line:5:6"), TopologyError::BadShape { .. }));
        assert!(matches!(err("grid:5"), TopologyError::BadShape { .. }));
        assert!(matches!(err("diamond:4"), TopologyError::BadShape { .. }));
        assert!(matches!(err("random:10"), TopologyError::BadShape { .. }));
        assert!(matches!(
            err("line:x"),
            TopologyError::BadNumber { what: "N", .. }
        ));
        assert!(matches!(
            err("random:10:-1"),
            TopologyError::BadNumber { what: "SEED", .. }
        ));
        assert!(matches!(
            err("ring:2"),
            TopologyError::TooSmall { min: 3, got: 2, .. }
        ));
        assert!(matches!(
            err("line:1"),
            TopologyError::TooSmall { min: 2, got: 1, .. }
        ));
        assert!(matches!(err("grid:1x1"), TopologyError::TooSmall { .. }));
        assert!(matches!(
            err("grid:0x9"),
            TopologyError::TooSmall { what: "W", .. }
        ));
        assert!(matches!(
            err("line:100001"),
            TopologyError::TooManyNodes { .. }
        ));
        assert!(matches!(
            err("grid:1000x1000"),
            TopologyError::TooManyNodes { .. }
        ));
        let msg = err("star:5").to_string();
        assert!(msg.contains("star") && msg.contains("grid:WxH"), "{msg}");
        assert!(err("ring:2").to_string().contains("at least 3"));
    }

    #[test]
    fn add_link_rejects_bad_links() {
        let mut t = Topology::new(3).unwrap();
        let p = LinkParams::default();
        t.add_link(0, 1, p).unwrap();
        assert_eq!(
            t.add_link(1, 0, p),
            Err(TopologyError::DuplicateLink { a: 0, b: 1 })
        );
        assert_eq!(t.add_link(2, 2, p), Err(TopologyError::SelfLoop { a: 2 }));
        assert_eq!(
            t.add_link(0, 3, p),
            Err(TopologyError::NodeOutOfRange { a: 0, b: 3, n: 3 })
        );
        let lossy = LinkParams { loss: 1.5, ..p };
        assert_eq!(t.add_link(1, 2, lossy), Err(TopologyError::BadLoss(1.5)));
        let silent = LinkParams {
            bitrate_bps: 0,
            ..p
        };
        assert_eq!(t.add_link(1, 2, silent), Err(TopologyError::BadBitrate));
        assert!(!t.is_connected());
        t.set_all_loss(0.25).unwrap();
        assert_eq!(t.links()[0].params.loss, 0.25);
        assert!(t.set_all_loss(-0.1).is_err());
    }
}
