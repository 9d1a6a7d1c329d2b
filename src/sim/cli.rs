//! `veil sim`: arguments, and the standard scenario run for any host factory.
//!
//! The scenario: every link gets `--loss`; the run lasts `--duration`; in the second
//! half, `--flows` seeded random pairs send one test packet per 100 ms until 90% of the
//! duration; control traffic is measured over the second half; routes, stretch and
//! delivery are read at the end.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::engine::Sim;
use super::host::SimHost;
use super::report::{ReportInputs, SimReport};
use super::scenario::{SimConfig, SimError};
use super::stretch::etx_cost;
use super::topology::{Topology, TopologyError};
use super::traffic::FlowSpec;
use crate::time::{Duration, Instant};
use crate::wire::MacAddr;

/// Time between test packets of one flow.
const FLOW_INTERVAL: Duration = Duration::from_millis(100);
/// Most destinations stretch is computed over.
const STRETCH_DESTINATIONS: usize = 1024;

/// Arguments of `veil sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Topology: line:N, ring:N, grid:WxH, diamond or random:N:SEED.
    #[arg(long, short, value_parser = parse_topology)]
    pub topology: Topology,
    /// Seed of the run (medium loss, host randomness, flow pairs).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated time, e.g. 60s, 500ms, 2m.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Loss on every link, in percent (0-100).
    #[arg(long, default_value_t = 0.0, value_parser = parse_loss_pct)]
    pub loss: f64,
    /// Number of test flows between random pairs.
    #[arg(long, default_value_t = 10)]
    pub flows: usize,
    /// Hop penalty added to each link's ETX cost when computing stretch.
    #[arg(long, default_value_t = 0.0)]
    pub hop_penalty: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Every node keeps an onion circuit built (and reports builds: success, latency).
    #[arg(long)]
    pub circuits: bool,
    /// Use the built-in flooding mock host instead of the protocol node.
    #[arg(long, hide = true)]
    pub mock_host: bool,
}

/// Why `veil sim` could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The topology could not be built.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The scenario was refused.
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// A duration string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a duration: expected a number and a unit (us, ms, s, m, h), e.g. 60s or 500ms"
)]
pub struct DurationParseError(pub String);

/// Parses `60s`, `500ms`, `1.5s`, `2m`, `250us`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, DurationParseError> {
    let err = || DurationParseError(s.to_string());
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(err)?;
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| err())?;
    let micros_per = match unit.trim() {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" | "min" => 60e6,
        "h" => 3600e6,
        _ => return Err(err()),
    };
    let micros = value * micros_per;
    if !micros.is_finite() || !(0.0..=1e15).contains(&micros) {
        return Err(err());
    }
    Ok(Duration::from_micros(micros.round() as u64))
}

/// Parses a loss percentage in [0, 100].
pub fn parse_loss_pct(s: &str) -> Result<f64, String> {
    match s.trim().trim_end_matches('%').parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a loss percentage between 0 and 100")),
    }
}

/// Parses a topology spec (for clap).
pub fn parse_topology(s: &str) -> Result<Topology, TopologyError> {
    Topology::parse(s)
}

/// Runs the standard scenario (module doc) with hosts from `factory`.
pub fn run_cli<H, F>(args: &SimArgs, factory: F) -> Result<SimReport, CliError>
where
    H: SimHost,
    F: FnMut(usize, u32, MacAddr, Instant) -> H + 'static,
{
    let mut topo = args.topology.clone();
    topo.set_all_loss(args.loss / 100.0)?;
    let cfg = SimConfig {
        seed: args.seed,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(&topo, cfg, factory);
    let end = Instant::ZERO + args.duration;
    let half = Instant::ZERO + args.duration.mul_div(1, 2);
    add_flows(&mut sim, args, half, end)?;
    sim.run_until(half);
    let control_before = sim.control_snapshot();
    sim.run_until(end);
    let control_after = sim.control_snapshot();
    let stretch = sim.stretch(&etx_cost(args.hop_penalty), STRETCH_DESTINATIONS);
    let inputs = ReportInputs {
        seed: args.seed,
        loss_pct: args.loss,
        window: (half, end),
        control_before,
        control_after,
        stretch,
    };
    Ok(SimReport::collect(
        &sim,
        topo.name(),
        topo.links().len(),
        topo.mean_degree(),
        inputs,
    ))
}

/// `args.flows` seeded random pairs sending from `start` until 90% of the run.
fn add_flows<H: SimHost>(
    sim: &mut Sim<H>,
    args: &SimArgs,
    start: Instant,
    end: Instant,
) -> Result<(), SimError> {
    let n = sim.len() as u64;
    if n < 2 {
        return Ok(());
    }
    let mut rng = ChaCha20Rng::seed_from_u64(args.seed ^ 0x666c_6f77_7061_6972);
    let stop = start + (end - start).mul_div(4, 5);
    let count = (stop - start).as_micros() / FLOW_INTERVAL.as_micros();
    for _ in 0..args.flows {
        let src = rng.next_u64() % n;
        let dst = (src + 1 + rng.next_u64() % (n - 1)) % n;
        sim.add_flow(FlowSpec {
            src: src as usize,
            dst: dst as usize,
            start,
            interval: FLOW_INTERVAL,
            count,
            payload_len: 0,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::mock::{flood_factory, FloodConfig};
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: SimArgs,
    }

    fn args(line: &[&str]) -> Result<SimArgs, clap::Error> {
        Wrap::try_parse_from(std::iter::once("sim").chain(line.iter().copied())).map(|w| w.args)
    }

    #[test]
    fn durations_and_losses_parse_or_say_why_not() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        for bad in ["60", "s", "1.2.3s", "5 parsecs", "-3s", ""] {
            assert_eq!(
                parse_duration(bad),
                Err(DurationParseError(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(parse_loss_pct("12.5"), Ok(12.5));
        assert_eq!(parse_loss_pct("3%"), Ok(3.0));
        assert!(parse_loss_pct("101")
            .unwrap_err()
            .contains("between 0 and 100"));
        assert!(parse_loss_pct("NaN").is_err());
    }

    #[test]
    fn arguments_parse_with_defaults_and_reject_bad_topologies() {
        let a = args(&["--topology", "diamond"]).unwrap();
        assert_eq!(
            (a.seed, a.duration, a.loss, a.flows, a.json),
            (1, Duration::from_secs(60), 0.0, 10, false)
        );
        let b = args(&[
            "-t",
            "grid:3x3",
            "--seed",
            "9",
            "--duration",
            "5s",
            "--loss",
            "10",
            "--json",
        ])
        .unwrap();
        assert_eq!(
            (b.topology.len(), b.seed, b.loss, b.json),
            (9, 9, 10.0, true)
        );
        let err = args(&["--topology", "hexagon:7"]).unwrap_err().to_string();
        assert!(err.contains("unknown topology \"hexagon\""), "{err}");
        assert!(args(&["--topology", "line:3", "--duration", "soon"])
            .unwrap_err()
            .to_string()
            .contains("not a duration"));
        assert!(args(&["--topology", "line:3", "--loss", "150"]).is_err());
    }

    #[test]
    fn the_standard_scenario_runs_and_reports() {
        let a = args(&[
            "-t",
            "ring:8",
            "--seed",
            "3",
            "--duration",
            "10s",
            "--loss",
            "5",
        ])
        .unwrap();
        let report = run_cli(&a, flood_factory(3, FloodConfig::default())).unwrap();
        assert_eq!((report.nodes, report.links, report.flows), (8, 8, 10));
        assert!(
            report.converged && report.convergence_time_s.unwrap() < 5.0,
            "{report:?}"
        );
        assert_eq!(report.packets_sent, 10 * 40);
        assert!(
            report.delivery_ratio > 0.7 && report.delivery_ratio <= 1.0,
            "{}",
            report.delivery_ratio
        );
        assert!(report.control_bps.mean > 0.0 && report.control_bps.nodes == 8);
        assert_eq!(report.control_window_s, (5.0, 10.0));
        let again = run_cli(&a, flood_factory(3, FloodConfig::default())).unwrap();
        assert_eq!(report, again);
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["nodes"], 8);
        assert_eq!(json["routes"]["pairs"], report.routes.pairs);
        let text = report.render_text();
        assert!(
            text.contains("ring:8") && text.contains("convergence") && text.contains("B/s"),
            "{text}"
        );
    }
}
