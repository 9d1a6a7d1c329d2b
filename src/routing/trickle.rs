//! The Trickle algorithm (RFC 6206) with the randomness passed in.

use rand_core::RngCore;

use crate::time::{Duration, Instant};

/// Trickle parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrickleConfig {
    /// Smallest interval.
    pub imin: Duration,
    /// Number of doublings from Imin to Imax.
    pub doublings: u8,
    /// Redundancy constant: transmission is suppressed after hearing k consistent ones.
    pub k: u8,
}

impl TrickleConfig {
    /// Largest interval: Imin · 2^doublings.
    pub fn imax(&self) -> Duration {
        self.imin.mul_div(1u64 << self.doublings.min(32), 1)
    }
}

/// One Trickle timer.
#[derive(Debug, Clone)]
pub struct Trickle {
    cfg: TrickleConfig,
    interval: Duration,
    start: Instant,
    t: Instant,
    fired: bool,
    counter: u8,
}

impl Trickle {
    /// A timer starting its first interval (of length Imin) at `now`.
    pub fn new(cfg: TrickleConfig, now: Instant, rng: &mut impl RngCore) -> Self {
        let mut tr = Trickle {
            cfg,
            interval: cfg.imin,
            start: now,
            t: now,
            fired: false,
            counter: 0,
        };
        tr.begin_interval(now, rng);
        tr
    }

    /// Current interval length I.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// When `handle_timeout` next has work.
    pub fn deadline(&self) -> Instant {
        if self.fired {
            self.start + self.interval
        } else {
            self.t
        }
    }

    /// A consistent transmission was heard (RFC 6206 rule 3).
    pub fn hear_consistent(&mut self) {
        self.counter = self.counter.saturating_add(1);
    }

    /// An inconsistency or external event (rule 6): back to Imin unless already there.
    /// Returns whether the timer was actually reset.
    pub fn reset(&mut self, now: Instant, rng: &mut impl RngCore) -> bool {
        if self.interval <= self.cfg.imin {
            return false;
        }
        self.interval = self.cfg.imin;
        self.begin_interval(now, rng);
        true
    }

    /// Advance to `now`; true if the caller should transmit now (rule 4).
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut impl RngCore) -> bool {
        let mut transmit = false;
        if !self.fired && now >= self.t {
            self.fired = true;
            transmit = self.counter < self.cfg.k;
        }
        let end = self.start + self.interval;
        if self.fired && now >= end {
            // Rule 5: double (capped), start the next interval where this one ended,
            // or at `now` if the caller was late by more than a whole interval.
            self.interval = (self.interval + self.interval).min(self.cfg.imax());
            let next = if now.saturating_since(end) >= self.interval {
                now
            } else {
                end
            };
            self.begin_interval(next, rng);
            if !transmit && now >= self.t {
                self.fired = true;
                transmit = self.counter < self.cfg.k;
            }
        }
        transmit
    }

    /// Rule 2: c = 0, t uniform in [I/2, I).
    fn begin_interval(&mut self, start: Instant, rng: &mut impl RngCore) {
        self.start = start;
        self.counter = 0;
        self.fired = false;
        let half = self.interval.mul_div(1, 2);
        let span = (self.interval - half).as_micros().max(1);
        self.t = start + half + Duration::from_micros(rng.next_u64() % span);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn cfg(k: u8) -> TrickleConfig {
        TrickleConfig {
            imin: Duration::from_secs(1),
            doublings: 5,
            k,
        }
    }

    /// Runs the timer at its deadlines until `until`, returning transmit times (ms).
    fn run(tr: &mut Trickle, rng: &mut ChaCha20Rng, until: Instant) -> Vec<u64> {
        let mut sent = Vec::new();
        while tr.deadline() <= until {
            let now = tr.deadline();
            if tr.handle_timeout(now, rng) {
                sent.push(now.as_micros() / 1000);
            }
        }
        sent
    }

    #[test]
    fn intervals_double_up_to_imax() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut tr = Trickle::new(cfg(1), Instant::ZERO, &mut rng);
        assert_eq!(tr.interval(), Duration::from_secs(1));
        let sent = run(&mut tr, &mut rng, Instant::from_millis(1000 + 2000 + 4000));
        assert_eq!(sent.len(), 3);
        assert!((500..1000).contains(&sent[0]));
        assert!((2000..3000).contains(&sent[1]));
        assert!((5000..7000).contains(&sent[2]));
        run(&mut tr, &mut rng, Instant::from_secs_for_test(400));
        assert_eq!(tr.interval(), Duration::from_secs(32));
    }

    #[test]
    fn reset_returns_to_imin_only_when_above() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let mut tr = Trickle::new(cfg(1), Instant::ZERO, &mut rng);
        assert!(!tr.reset(Instant::ZERO, &mut rng));
        run(&mut tr, &mut rng, Instant::from_millis(10_000));
        assert!(tr.interval() > Duration::from_secs(1));
        let now = Instant::from_millis(10_000);
        assert!(tr.reset(now, &mut rng));
        assert_eq!(tr.interval(), Duration::from_secs(1));
        let d = tr.deadline().saturating_since(now);
        assert!(d >= Duration::from_millis(500) && d < Duration::from_secs(1));
    }

    #[test]
    fn k_consistent_transmissions_suppress() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut tr = Trickle::new(cfg(2), Instant::ZERO, &mut rng);
        tr.hear_consistent();
        tr.hear_consistent();
        let t = tr.deadline();
        assert!(!tr.handle_timeout(t, &mut rng));
        // The counter resets with the next interval, so it transmits again.
        let sent = run(&mut tr, &mut rng, Instant::from_millis(3000));
        assert_eq!(sent.len(), 1);
    }

    trait ForTest {
        fn from_secs_for_test(s: u64) -> Instant;
    }
    impl ForTest for Instant {
        fn from_secs_for_test(s: u64) -> Instant {
            Instant::from_millis(s * 1000)
        }
    }
}
