//! Sequence-number ordering, feasibility distances, rate limiters and dedup sets.

use crate::time::{Duration, Instant};
use crate::wire::OgmRepr;

use super::metric::INFINITY;

/// An originator's (epoch, seqno). Ordering is lexicographic: a higher epoch beats any
/// seqno of a lower epoch, so a restarted node is believed at once. Seqnos never wrap
/// inside an epoch (the originator moves to a new epoch first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SeqKey {
    /// Restart epoch (from the signed announcement).
    pub epoch: u32,
    /// Sequence number within the epoch.
    pub seqno: u32,
}

impl SeqKey {
    /// A key from its parts.
    pub const fn new(epoch: u32, seqno: u32) -> Self {
        SeqKey { epoch, seqno }
    }

    /// The key an OGM carries.
    pub fn of_ogm(ogm: &OgmRepr) -> Self {
        SeqKey::new(ogm.epoch, ogm.seqno)
    }
}

/// Babel's feasibility distance (RFC 8966 §3.5.1): the (seq, metric) we last advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeasibilityDistance {
    /// Newest sequence key we advertised.
    pub seq: SeqKey,
    /// Smallest metric we advertised with that key.
    pub metric: u16,
}

impl FeasibilityDistance {
    /// Whether an advertisement (seq, metric) from a neighbour may be used without
    /// risking a loop: strictly newer, or same seq and strictly smaller metric.
    /// With no distance recorded yet every finite advertisement is feasible.
    pub fn is_feasible(fd: Option<Self>, seq: SeqKey, metric: u16) -> bool {
        if metric == INFINITY {
            return false;
        }
        match fd {
            None => true,
            Some(fd) => seq > fd.seq || (seq == fd.seq && metric < fd.metric),
        }
    }

    /// Record that we advertised (seq, metric); retractions (INFINITY) do not count.
    pub fn record(fd: &mut Option<Self>, seq: SeqKey, metric: u16) {
        if metric == INFINITY {
            return;
        }
        match fd {
            Some(d) if seq < d.seq => {}
            Some(d) if seq == d.seq => d.metric = d.metric.min(metric),
            _ => *fd = Some(FeasibilityDistance { seq, metric }),
        }
    }
}

/// A token bucket: `rate_per_s` tokens per second, at most `burst` stored.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    micro_tokens: u64,
    last: Instant,
    rate_per_s: u32,
    burst: u32,
}

impl TokenBucket {
    /// A full bucket.
    pub const fn new(now: Instant, rate_per_s: u32, burst: u32) -> Self {
        TokenBucket {
            micro_tokens: burst as u64 * 1_000_000,
            last: now,
            rate_per_s,
            burst,
        }
    }

    /// Take one token if available.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_since(self.last).as_micros();
        self.last = self.last.max(now);
        let cap = self.burst as u64 * 1_000_000;
        let refill = elapsed.saturating_mul(self.rate_per_s as u64);
        self.micro_tokens = self.micro_tokens.saturating_add(refill).min(cap);
        if self.micro_tokens >= 1_000_000 {
            self.micro_tokens -= 1_000_000;
            true
        } else {
            false
        }
    }
}

/// A rate gate in 8 bytes (GCRA): sustained one event per `period`, bursts of `burst`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gcra {
    tat: Instant,
}

impl Gcra {
    /// Let one event through if within rate; records it.
    pub fn allow(&mut self, now: Instant, period: Duration, burst: u64) -> bool {
        let tolerance = period.mul_div(burst.saturating_sub(1), 1);
        if now + tolerance < self.tat {
            return false;
        }
        self.tat = self.tat.max(now) + period;
        true
    }
}

/// A small fixed-size set of recently seen keys, each remembered for `window`.
/// When full the oldest entry is overwritten, so the set never grows.
#[derive(Debug)]
pub struct RecentSet<K: Copy + PartialEq, const N: usize> {
    entries: heapless::Vec<(K, Instant), N>,
    window: Duration,
}

impl<K: Copy + PartialEq, const N: usize> RecentSet<K, N> {
    /// An empty set remembering keys for `window`.
    pub const fn new(window: Duration) -> Self {
        RecentSet {
            entries: heapless::Vec::new(),
            window,
        }
    }

    /// True (and remember `key`) if `key` was not seen within the window.
    pub fn insert_if_new(&mut self, now: Instant, key: K) -> bool {
        let window = self.window;
        let fresh = |t: Instant| now.saturating_since(t) < window;
        if self.entries.iter().any(|(k, t)| *k == key && fresh(*t)) {
            return false;
        }
        if let Some(slot) = self
            .entries
            .iter_mut()
            .find(|(k, t)| *k == key || !fresh(*t))
        {
            *slot = (key, now);
            return true;
        }
        if self.entries.push((key, now)).is_err() {
            // Full of fresh entries: overwrite the oldest one.
            if let Some(oldest) = self.entries.iter_mut().min_by_key(|(_, t)| *t) {
                *oldest = (key, now);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_epoch_beats_any_seqno() {
        assert!(SeqKey::new(2, 0) > SeqKey::new(1, u32::MAX));
        assert!(SeqKey::new(1, 5) > SeqKey::new(1, 4));
    }

    #[test]
    fn feasibility_condition() {
        let fd = Some(FeasibilityDistance {
            seq: SeqKey::new(1, 10),
            metric: 500,
        });
        assert!(FeasibilityDistance::is_feasible(
            fd,
            SeqKey::new(1, 11),
            9000
        ));
        assert!(FeasibilityDistance::is_feasible(
            fd,
            SeqKey::new(1, 10),
            499
        ));
        assert!(!FeasibilityDistance::is_feasible(
            fd,
            SeqKey::new(1, 10),
            500
        ));
        assert!(!FeasibilityDistance::is_feasible(fd, SeqKey::new(1, 9), 1));
        assert!(FeasibilityDistance::is_feasible(fd, SeqKey::new(2, 0), 600));
        assert!(!FeasibilityDistance::is_feasible(
            fd,
            SeqKey::new(2, 0),
            INFINITY
        ));
        assert!(FeasibilityDistance::is_feasible(None, SeqKey::new(0, 0), 1));
    }

    #[test]
    fn record_keeps_newest_seq_and_smallest_metric() {
        let mut fd = None;
        FeasibilityDistance::record(&mut fd, SeqKey::new(1, 5), 300);
        FeasibilityDistance::record(&mut fd, SeqKey::new(1, 5), 400);
        assert_eq!(fd.map(|d| d.metric), Some(300));
        FeasibilityDistance::record(&mut fd, SeqKey::new(1, 4), 10);
        assert_eq!(
            fd.map(|d| (d.seq, d.metric)),
            Some((SeqKey::new(1, 5), 300))
        );
        FeasibilityDistance::record(&mut fd, SeqKey::new(1, 6), INFINITY);
        assert_eq!(fd.map(|d| d.seq), Some(SeqKey::new(1, 5)));
        FeasibilityDistance::record(&mut fd, SeqKey::new(1, 6), 700);
        assert_eq!(
            fd.map(|d| (d.seq, d.metric)),
            Some((SeqKey::new(1, 6), 700))
        );
    }

    #[test]
    fn token_bucket_limits_rate() {
        let t0 = Instant::from_millis(0);
        let mut b = TokenBucket::new(t0, 2, 3);
        assert_eq!((0..10).filter(|_| b.allow(t0)).count(), 3);
        assert!(!b.allow(t0 + Duration::from_millis(400)));
        assert!(b.allow(t0 + Duration::from_millis(500)));
        assert!(!b.allow(t0 + Duration::from_millis(600)));
    }

    #[test]
    fn gcra_allows_bursts_then_the_sustained_rate() {
        let p = Duration::from_millis(250);
        let t0 = Instant::from_millis(1000);
        let mut g = Gcra::default();
        assert_eq!((0..10).filter(|_| g.allow(t0, p, 4)).count(), 4);
        assert!(!g.allow(t0 + Duration::from_millis(200), p, 4));
        assert!(g.allow(t0 + Duration::from_millis(250), p, 4));
        // Steady 2/s traffic is never limited.
        let mut g = Gcra::default();
        assert!((0..100).all(|i| g.allow(t0 + Duration::from_millis(500 * i), p, 4)));
    }

    #[test]
    fn recent_set_dedups_within_window_and_stays_bounded() {
        let t0 = Instant::from_millis(0);
        let mut s: RecentSet<u32, 2> = RecentSet::new(Duration::from_secs(1));
        assert!(s.insert_if_new(t0, 1));
        assert!(!s.insert_if_new(t0, 1));
        assert!(s.insert_if_new(t0, 2));
        assert!(s.insert_if_new(t0, 3)); // overwrites the oldest
        assert!(s.insert_if_new(t0 + Duration::from_secs(2), 3));
        assert_eq!(s.entries.len(), 2);
    }
}
