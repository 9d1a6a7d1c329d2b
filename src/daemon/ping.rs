//! Echo requests the daemon sends for `veil ping` / `veil traceroute`, and matching their
//! answers as they come out of the node (they never reach the TUN device).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::control::{PingReport, Response};
use crate::overlay::icmp::{parse_icmp_answer, AnswerKind};

/// Most echo requests waiting for an answer at once; more are refused.
pub const MAX_PENDING_PINGS: usize = 64;

struct Pending {
    seq: u16,
    dst: IpAddr,
    sent: Instant,
    deadline: Instant,
    reply: oneshot::Sender<Response>,
}

/// Outstanding echo requests.
pub struct Pings {
    ident: u16,
    pending: Vec<Pending>,
}

impl Pings {
    /// A table whose requests carry ICMP identifier `ident`.
    pub fn new(ident: u16) -> Pings {
        Pings {
            ident,
            pending: Vec::with_capacity(MAX_PENDING_PINGS),
        }
    }

    /// The ICMP identifier of our requests.
    pub fn ident(&self) -> u16 {
        self.ident
    }

    /// Wait for the answer to (`dst`, `seq`); false (and `reply` answered) when the table is full.
    pub fn register(
        &mut self,
        dst: IpAddr,
        seq: u16,
        timeout: Duration,
        now: Instant,
        reply: oneshot::Sender<Response>,
    ) -> bool {
        if self.pending.len() >= MAX_PENDING_PINGS {
            let _ = reply.send(Response::error("too many pings in flight; try again"));
            return false;
        }
        self.pending.push(Pending {
            seq,
            dst,
            sent: now,
            deadline: now + timeout,
            reply,
        });
        true
    }

    /// If `packet` answers one of our requests, report it and return true.
    pub fn intercept(&mut self, packet: &[u8], now: Instant) -> bool {
        let Some(answer) = parse_icmp_answer(packet) else {
            return false;
        };
        if answer.ident != self.ident {
            return false;
        }
        let kind = match answer.kind {
            AnswerKind::EchoReply => "echo_reply",
            AnswerKind::TimeExceeded => "time_exceeded",
            AnswerKind::Unreachable => "unreachable",
        };
        // An echo reply must come from the address we pinged; errors come from relays.
        let pos = self.pending.iter().position(|p| {
            p.seq == answer.seq && (answer.kind != AnswerKind::EchoReply || p.dst == answer.from)
        });
        if let Some(i) = pos {
            let p = self.pending.swap_remove(i);
            let rtt = now.saturating_duration_since(p.sent).as_secs_f64() * 1000.0;
            let _ = p.reply.send(Response::ok(PingReport {
                seq: p.seq,
                kind: kind.to_string(),
                from: Some(answer.from),
                rtt_ms: Some(rtt),
            }));
        }
        // Ours even if late: the kernel has no socket waiting for it.
        true
    }

    /// Answer every request whose time is up with "timeout".
    pub fn expire(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending.get(i).is_some_and(|p| p.deadline <= now) {
                let p = self.pending.swap_remove(i);
                let _ = p.reply.send(Response::ok(PingReport {
                    seq: p.seq,
                    kind: "timeout".to_string(),
                    from: None,
                    rtt_ms: None,
                }));
            } else {
                i += 1;
            }
        }
    }

    /// The earliest deadline of a pending request.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }
}
