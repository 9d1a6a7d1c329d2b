//! The summary of one run, for people (`render_text`) and scripts (`to_json`).

use std::fmt::Write as _;

use super::convergence::{rate_summary, RateSummary};
use super::engine::Sim;
use super::host::{CircuitBuilds, SimHost};
use super::metrics::RouteCensus;
use super::scenario::EngineStats;
use super::stretch::StretchStats;
use crate::time::{Duration, Instant};

/// Everything `veil sim` prints.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SimReport {
    /// Topology spec.
    pub topology: String,
    /// Node count.
    pub nodes: usize,
    /// Undirected link count.
    pub links: usize,
    /// Mean neighbours per node.
    pub mean_degree: f64,
    /// Run seed.
    pub seed: u64,
    /// Loss applied to every link, in percent.
    pub loss_pct: f64,
    /// Simulated time in seconds.
    pub duration_s: f64,
    /// Whether every judged route was whole at some check.
    pub converged: bool,
    /// First simulated time at which it was.
    pub convergence_time_s: Option<f64>,
    /// Route checks run.
    pub route_checks: u64,
    /// Route outcomes at the end of the run.
    pub routes: RouteCensus,
    /// Route stretch at the end of the run.
    pub stretch: StretchStats,
    /// Test flows.
    pub flows: usize,
    /// Test packets sent.
    pub packets_sent: u64,
    /// Distinct test packets delivered.
    pub packets_delivered: u64,
    /// Delivered / sent over all flows.
    pub delivery_ratio: f64,
    /// Longest delivery gap of any flow, seconds.
    pub longest_gap_s: f64,
    /// Mean one-way latency of delivered packets, milliseconds.
    pub mean_latency_ms: f64,
    /// Start and end of the control-traffic window, seconds.
    pub control_window_s: (f64, f64),
    /// Control bytes per second per live node over the window.
    pub control_bps: RateSummary,
    /// Frames put on the air.
    pub frames_sent: u64,
    /// Bytes put on the air (Ethernet header included).
    pub bytes_sent: u64,
    /// Engine counters.
    pub engine: EngineStats,
    /// Onion circuit builds over all hosts, when they build any.
    pub circuits: Option<CircuitReport>,
    /// Wall-clock seconds the run took (filled in by the caller, which owns a clock).
    pub wall_time_s: Option<f64>,
}

/// Onion circuit builds over all hosts of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CircuitReport {
    /// Builds sent.
    pub builds_sent: u64,
    /// Builds the exit confirmed.
    pub built: u64,
    /// Builds that timed out.
    pub timed_out: u64,
    /// Confirmed / decided (confirmed + timed out): one attempt's chance.
    pub success_ratio: f64,
    /// A circuit within one retry, if attempts fail independently: 1 − (1 − ratio)².
    pub within_one_retry: f64,
    /// Build time of the median confirmed build: at most this many ms (a bucket bound).
    pub p50_ms_at_most: Option<u64>,
    /// Build time of the 95th percentile: at most this many ms (`None` past 2000 ms).
    pub p95_ms_at_most: Option<u64>,
}

impl CircuitReport {
    /// Sum the hosts' builds; `None` if no host built any.
    fn collect(builds: impl Iterator<Item = CircuitBuilds>) -> Option<CircuitReport> {
        let mut total = CircuitBuilds {
            ms_buckets: vec![0; crate::node::BUILD_MS_BOUNDS.len()],
            ..CircuitBuilds::default()
        };
        for b in builds {
            total.sent += b.sent;
            total.built += b.built;
            total.timed_out += b.timed_out;
            for (t, n) in total.ms_buckets.iter_mut().zip(&b.ms_buckets) {
                *t += n;
            }
        }
        if total.sent == 0 {
            return None;
        }
        let decided = total.built + total.timed_out;
        let ratio = if decided == 0 {
            0.0
        } else {
            total.built as f64 / decided as f64
        };
        Some(CircuitReport {
            builds_sent: total.sent,
            built: total.built,
            timed_out: total.timed_out,
            success_ratio: ratio,
            within_one_retry: 1.0 - (1.0 - ratio) * (1.0 - ratio),
            p50_ms_at_most: percentile_bound(&total.ms_buckets, 0.5),
            p95_ms_at_most: percentile_bound(&total.ms_buckets, 0.95),
        })
    }
}

/// The bucket bound under which a fraction `q` of the counted builds fall.
fn percentile_bound(buckets: &[u64], q: f64) -> Option<u64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let want = (total as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (n, bound) in buckets.iter().zip(crate::node::BUILD_MS_BOUNDS) {
        seen += n;
        if seen >= want {
            return (bound != u64::MAX).then_some(bound);
        }
    }
    None
}

/// What a report needs beyond the simulation itself.
#[derive(Debug, Clone)]
pub struct ReportInputs {
    /// Run seed.
    pub seed: u64,
    /// Loss applied to every link, in percent.
    pub loss_pct: f64,
    /// Control-traffic window start and end.
    pub window: (Instant, Instant),
    /// `Sim::control_snapshot` at the window start.
    pub control_before: Vec<u64>,
    /// `Sim::control_snapshot` at the window end.
    pub control_after: Vec<u64>,
    /// Stretch already computed by the caller (it picks the cost function).
    pub stretch: StretchStats,
}

impl SimReport {
    /// Collects the report of `sim` with topology `name` and mean degree `degree`.
    pub fn collect<H: SimHost>(
        sim: &Sim<H>,
        name: &str,
        links: usize,
        degree: f64,
        inp: ReportInputs,
    ) -> SimReport {
        let (mut sent, mut delivered, mut gap, mut latency_us) = (0, 0, Duration::ZERO, 0u64);
        for (_, s) in sim.flows() {
            sent += s.sent;
            delivered += s.delivered;
            gap = gap.max(s.longest_gap());
            latency_us += s.latency_total.as_micros();
        }
        let window = inp.window.1 - inp.window.0;
        let control_bps = rate_summary(&inp.control_before, &inp.control_after, window, |i| {
            sim.is_live(i)
        });
        let counters = sim.medium().all_counters();
        let conv = sim.convergence();
        SimReport {
            topology: name.to_string(),
            nodes: sim.len(),
            links,
            mean_degree: degree,
            seed: inp.seed,
            loss_pct: inp.loss_pct,
            duration_s: secs(sim.now() - Instant::ZERO),
            converged: conv.first.is_some(),
            convergence_time_s: conv.first.map(|t| secs(t - Instant::ZERO)),
            route_checks: conv.checks,
            routes: sim.route_census(),
            stretch: inp.stretch,
            flows: sim.flows().count(),
            packets_sent: sent,
            packets_delivered: delivered,
            delivery_ratio: if sent == 0 {
                1.0
            } else {
                delivered as f64 / sent as f64
            },
            longest_gap_s: secs(gap),
            mean_latency_ms: if delivered == 0 {
                0.0
            } else {
                latency_us as f64 / delivered as f64 / 1000.0
            },
            control_window_s: (
                secs(inp.window.0 - Instant::ZERO),
                secs(inp.window.1 - Instant::ZERO),
            ),
            control_bps,
            frames_sent: counters.iter().map(|c| c.total_sent_frames()).sum(),
            bytes_sent: counters.iter().map(|c| c.total_sent_bytes()).sum(),
            engine: sim.stats().clone(),
            circuits: CircuitReport::collect(
                (0..sim.len()).filter_map(|i| sim.host(i).and_then(SimHost::circuit_builds)),
            ),
            wall_time_s: None,
        }
    }

    /// One JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A few aligned lines for people.
    pub fn render_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "veil sim: {} ({} nodes, {} links, mean degree {:.2}), seed {}, loss {}%, {} s simulated",
            self.topology, self.nodes, self.links, self.mean_degree, self.seed, self.loss_pct, self.duration_s
        );
        let conv = match self.convergence_time_s {
            Some(t) => format!("{t:.3} s"),
            None => "not converged".to_string(),
        };
        let _ = writeln!(
            o,
            "convergence  {conv} ({} route checks)",
            self.route_checks
        );
        let r = &self.routes;
        let _ = writeln!(
            o,
            "routes       {} pairs: {} reached, {} no route, {} broken, {} looped",
            r.pairs, r.reached, r.no_route, r.broken, r.looped
        );
        let s = &self.stretch;
        let _ = writeln!(
            o,
            "stretch      mean {:.3}, max {:.3} ({} pairs, {} suboptimal, {} destinations)",
            s.mean, s.max, s.pairs, s.suboptimal, s.destinations
        );
        let _ = writeln!(
            o,
            "delivery     {:.2}% ({}/{} packets, {} flows), longest gap {:.3} s, mean latency {:.2} ms",
            self.delivery_ratio * 100.0,
            self.packets_delivered,
            self.packets_sent,
            self.flows,
            self.longest_gap_s,
            self.mean_latency_ms
        );
        let c = &self.control_bps;
        let _ = writeln!(
            o,
            "control      mean {:.0} B/s per node, max {:.0} B/s (node {}), window {:.1}-{:.1} s",
            c.mean, c.max, c.max_node, self.control_window_s.0, self.control_window_s.1
        );
        let _ = writeln!(
            o,
            "medium       {} frames, {} bytes sent; {} events",
            self.frames_sent, self.bytes_sent, self.engine.events
        );
        if let Some(c) = &self.circuits {
            let bound = |b: Option<u64>| b.map_or("> 2000".to_string(), |b| format!("≤ {b}"));
            let _ = writeln!(
                o,
                "circuits     {} builds, {} confirmed, {} timed out: {:.1}% per attempt, {:.1}% within one retry; build p50 {} ms, p95 {} ms",
                c.builds_sent,
                c.built,
                c.timed_out,
                c.success_ratio * 100.0,
                c.within_one_retry * 100.0,
                bound(c.p50_ms_at_most),
                bound(c.p95_ms_at_most)
            );
        }
        if let Some(w) = self.wall_time_s {
            let _ = writeln!(o, "wall time    {w:.2} s");
        }
        o
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
