//! A link session after the handshake: both keys plus the rekey/expiry policy.

use super::aead::{RecvKey, SendKey};
use super::handshake::Established;
use super::identity::PublicIdentity;
use crate::time::{Duration, Instant};

pub use super::aead::REJECT_AFTER_MESSAGES;

/// The initiator starts a new handshake once a session is this old.
pub const REKEY_AFTER_TIME: Duration = Duration::from_secs(300);
/// The responder waits this much longer, so normally only one side starts the rekey.
pub const RESPONDER_REKEY_DELAY: Duration = Duration::from_secs(20);
/// A session is dropped (neither sends nor accepts) once it is this old.
pub const REJECT_AFTER_TIME: Duration = Duration::from_secs(360);
/// Either side starts a rekey after sending this many messages.
pub const REKEY_AFTER_MESSAGES: u64 = 1 << 32;

/// When a session must be renewed and when it dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimers {
    established: Instant,
    initiator: bool,
}

impl SessionTimers {
    /// Timers for a session completed at `now`.
    pub fn new(now: Instant, initiator: bool) -> Self {
        SessionTimers {
            established: now,
            initiator,
        }
    }

    /// When this side should start a rekey by time.
    pub fn rekey_at(&self) -> Instant {
        let extra = if self.initiator {
            Duration::ZERO
        } else {
            RESPONDER_REKEY_DELAY
        };
        self.established + REKEY_AFTER_TIME + extra
    }

    /// When the session expires.
    pub fn expires_at(&self) -> Instant {
        self.established + REJECT_AFTER_TIME
    }

    /// Whether to start a new handshake, given the messages sent with the current key.
    pub fn needs_rekey(&self, now: Instant, sent: u64) -> bool {
        now >= self.rekey_at() || sent >= REKEY_AFTER_MESSAGES
    }

    /// Whether the session must no longer be used.
    pub fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at()
    }
}

/// An established link session with one neighbour. Its keys are zeroized when dropped;
/// `Debug` shows neither.
#[derive(Debug, Clone)]
pub struct Session {
    /// The neighbour's verified identity.
    pub peer: PublicIdentity,
    /// Our direction.
    pub send: SendKey,
    /// The neighbour's direction, with its replay window.
    pub recv: RecvKey,
    /// Rekey and expiry policy.
    pub timers: SessionTimers,
}

impl Session {
    /// A session from a completed handshake at `now`.
    pub fn new(est: &Established, now: Instant) -> Session {
        Session {
            peer: est.peer,
            send: SendKey::new(&est.send_key),
            recv: RecvKey::new(&est.recv_key),
            timers: SessionTimers::new(now, est.initiator),
        }
    }

    /// Whether to start a new handshake now.
    pub fn needs_rekey(&self, now: Instant) -> bool {
        self.timers.needs_rekey(now, self.send.sent())
    }

    /// Whether the session must be dropped.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.timers.is_expired(now)
    }
}

impl zeroize::ZeroizeOnDrop for Session {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rekey_and_expiry_times() {
        let t0 = Instant::from_millis(1000);
        let i = SessionTimers::new(t0, true);
        let r = SessionTimers::new(t0, false);
        let just_before = t0 + (REKEY_AFTER_TIME - Duration::from_micros(1));
        assert!(!i.needs_rekey(just_before, 0));
        assert!(i.needs_rekey(t0 + REKEY_AFTER_TIME, 0));
        assert!(!r.needs_rekey(t0 + REKEY_AFTER_TIME, 0));
        assert!(r.needs_rekey(t0 + REKEY_AFTER_TIME + RESPONDER_REKEY_DELAY, 0));
        assert!(r.needs_rekey(t0, REKEY_AFTER_MESSAGES));
        assert!(!i.is_expired(t0 + (REJECT_AFTER_TIME - Duration::from_micros(1))));
        assert!(i.is_expired(t0 + REJECT_AFTER_TIME));
    }

    #[test]
    fn session_from_established_round_trips() {
        let est = |initiator, a, b| Established {
            peer: PublicIdentity {
                ed25519: [1; 32],
                x25519: [2; 32],
            },
            send_key: a,
            recv_key: b,
            initiator,
            handshake_hash: [0; 32],
        };
        let now = Instant::ZERO;
        let mut a = Session::new(&est(true, [3; 32], [4; 32]), now);
        let mut b = Session::new(&est(false, [4; 32], [3; 32]), now);
        let c = a.send.next_counter().unwrap();
        let mut buf = [7u8; 20];
        let tag = a.send.seal_in_place(c, b"h", &mut buf).unwrap();
        b.recv.open_in_place(c, b"h", &mut buf, &tag).unwrap();
        assert_eq!(buf, [7; 20]);
        assert!(!a.needs_rekey(now) && !b.is_expired(now));
    }
}
