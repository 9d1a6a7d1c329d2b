//! When routes first became whole, how long each disruption took to heal, and per-node
//! rates of control traffic.

use super::metrics::RouteFailure;
use crate::time::{Duration, Instant};

/// Most disruptions a `ConvergenceLog` keeps (later ones are counted, not kept).
pub const MAX_DISRUPTIONS: usize = 1024;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::metrics::RouteOutcome;

    #[test]
    fn convergence_log_tracks_first_convergence_and_disruptions() {
        let mut log = ConvergenceLog::default();
        let fail = Some(RouteFailure {
            src: 0,
            dst: 1,
            outcome: RouteOutcome::NoRoute,
        });
        assert!(log.needs_check());
        log.record(Instant::from_millis(100), fail);
        log.record(Instant::from_millis(200), None);
        assert_eq!(log.first, Some(Instant::from_millis(200)));
        assert!(!log.needs_check());
        log.disrupt(Instant::from_millis(1000));
        assert!(log.needs_check());
        log.record(Instant::from_millis(1100), fail);
        log.record(Instant::from_millis(1500), None);
        assert_eq!(log.first, Some(Instant::from_millis(200)));
        assert_eq!(
            log.disruptions[0].reconverged,
            Some(Instant::from_millis(1500))
        );
        assert_eq!(
            log.worst_reconvergence(Instant::from_millis(9000)),
            Some(Duration::from_millis(500))
        );
        assert_eq!(log.checks, 4);
    }

    #[test]
    fn rates_are_per_second_over_counted_nodes() {
        let s = rate_summary(
            &[0, 100, 0],
            &[500, 300, 9000],
            Duration::from_secs(2),
            |i| i != 2,
        );
        assert_eq!(
            s,
            RateSummary {
                mean: 175.0,
                max: 250.0,
                max_node: 0,
                nodes: 2
            }
        );
        assert_eq!(
            rate_summary(&[0], &[10], Duration::ZERO, |_| true),
            RateSummary::default()
        );
    }
}
