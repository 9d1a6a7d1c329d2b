//! Who may make the node spend a handshake (three x25519 operations): one budget per kind
//! of trigger, so a flood of one kind cannot starve another, and a gate per neighbour
//! (docs/protocol.md §6.1); how many announcement signatures (one ed25519 check each) a
//! neighbour may make the node check; and how often it may have the node's whole table.

use crate::routing::seqno::{Gcra, TokenBucket};
use crate::time::{Duration, Instant};

/// Least time between two Inits of one neighbour that we answer (burst `PER_LINK_BURST`).
pub const PER_LINK_PERIOD: Duration = Duration::from_millis(500);
/// Inits of one neighbour answered back to back.
pub const PER_LINK_BURST: u64 = 2;

/// Signature checks of new announcements one neighbour may make us do: 64 per second...
pub const ANNOUNCE_CHECK_PERIOD: Duration = Duration::from_micros(15_625);
/// ...after a burst of a whole table: what a new neighbour's table dump, or the start of a
/// mesh, brings at once.
pub const ANNOUNCE_CHECK_BURST: u64 = crate::node::MAX_ANNOUNCEMENTS as u64;

/// Least time between two whole-table dumps to one neighbour.
pub const TABLE_DUMP_MIN_GAP: Duration = Duration::from_secs(10);

/// What made the node want to spend a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The rekey of a confirmed session, started or answered: budgeted apart, so that
    /// nothing else can keep working links from rekeying.
    Rekey,
    /// A frame carrying the mesh PSK's proof: a tagged hello, an authentic Init.
    Authenticated,
    /// A frame anyone can make: a broadcast from an unknown MAC, an unknown session index.
    Unauthenticated,
}

/// The three budgets, each a token bucket.
pub struct HandshakeBudgets {
    rekey: TokenBucket,
    authenticated: TokenBucket,
    unauthenticated: TokenBucket,
}

impl HandshakeBudgets {
    /// `per_sec` for new links; half as much (at least 2) reserved for rekeys; a quarter
    /// (at least 1) for unauthenticated triggers.
    pub fn new(now: Instant, per_sec: u32) -> Self {
        let rekey = (per_sec / 2).max(2);
        let unauth = (per_sec / 4).max(1);
        HandshakeBudgets {
            rekey: TokenBucket::new(now, rekey, rekey),
            authenticated: TokenBucket::new(now, per_sec, per_sec),
            unauthenticated: TokenBucket::new(now, unauth, unauth),
        }
    }

    /// Take a token from the budget of `trigger`.
    pub fn allow(&mut self, now: Instant, trigger: Trigger) -> bool {
        match trigger {
            Trigger::Rekey => self.rekey.allow(now),
            Trigger::Authenticated => self.authenticated.allow(now),
            Trigger::Unauthenticated => self.unauthenticated.allow(now),
        }
    }
}

/// Whether one neighbour may make us check another announcement's signature now (records
/// it if so).
pub fn announce_check_allows(gate: &mut Gcra, now: Instant) -> bool {
    gate.allow(now, ANNOUNCE_CHECK_PERIOD, ANNOUNCE_CHECK_BURST)
}

/// Whether one neighbour, last sent our whole table at `last`, may have it again now
/// (records it if so).
pub fn table_dump_allows(last: &mut Option<Instant>, now: Instant) -> bool {
    if last.is_some_and(|t| now.saturating_since(t) < TABLE_DUMP_MIN_GAP) {
        return false;
    }
    *last = Some(now);
    true
}

/// Whether one neighbour may have another Init answered now (records it if so).
pub fn per_link_allows(gate: &mut Gcra, now: Instant) -> bool {
    gate.allow(now, PER_LINK_PERIOD, PER_LINK_BURST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exhausted_budget_leaves_the_others_alone() {
        let t = Instant::from_millis(1000);
        let mut b = HandshakeBudgets::new(t, 20);
        let spent = (0..1000)
            .filter(|_| b.allow(t, Trigger::Unauthenticated))
            .count();
        assert_eq!(spent, 5);
        assert!((0..20).all(|_| b.allow(t, Trigger::Authenticated)));
        assert!(!b.allow(t, Trigger::Authenticated));
        assert!((0..10).all(|_| b.allow(t, Trigger::Rekey)));
        assert!(!b.allow(t, Trigger::Rekey));
    }

    #[test]
    fn per_link_gate_allows_a_burst_then_the_period() {
        let t = Instant::from_millis(1000);
        let mut g = Gcra::default();
        assert!(per_link_allows(&mut g, t) && per_link_allows(&mut g, t));
        assert!(!per_link_allows(&mut g, t));
        assert!(per_link_allows(&mut g, t + PER_LINK_PERIOD));
    }
}
