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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::build::{build_echo6, Echo, EchoKind};
    use crate::overlay::icmp::{build_echo_request6, build_time_exceeded6};
    use std::net::Ipv6Addr;

    const ME: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    const FAR: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 3);
    const RELAY: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);

    fn reply(from: Ipv6Addr, ident: u16, seq: u16) -> Vec<u8> {
        let mut buf = vec![0u8; 200];
        let echo = Echo {
            kind: EchoKind::Reply,
            ident,
            seq,
        };
        let n = build_echo6(&mut buf, &from, &ME, echo, &[7; 8]).unwrap();
        buf.truncate(n);
        buf
    }

    fn answer(rx: &mut oneshot::Receiver<Response>) -> PingReport {
        let r = rx.try_recv().expect("answered");
        serde_json::from_value(r.result.expect("ok")).unwrap()
    }

    #[test]
    fn a_reply_answers_its_request_with_an_rtt_and_is_kept_from_the_tun() {
        let mut pings = Pings::new(0x4242);
        let t0 = Instant::now();
        let (tx, mut rx) = oneshot::channel();
        assert!(pings.register(IpAddr::V6(FAR), 5, Duration::from_secs(1), t0, tx));
        // Someone else's reply (another ident) goes to the TUN device.
        assert!(!pings.intercept(&reply(FAR, 0x1111, 5), t0));
        // A reply from another address with our ident and seq is ours but answers nothing.
        assert!(pings.intercept(&reply(RELAY, 0x4242, 5), t0));
        assert!(rx.try_recv().is_err());
        assert!(pings.intercept(&reply(FAR, 0x4242, 5), t0 + Duration::from_millis(3)));
        let r = answer(&mut rx);
        assert_eq!(
            (r.kind.as_str(), r.seq, r.from),
            ("echo_reply", 5, Some(IpAddr::V6(FAR)))
        );
        assert!((r.rtt_ms.unwrap() - 3.0).abs() < 0.01, "{r:?}");
        assert_eq!(pings.next_deadline(), None);
    }

    #[test]
    fn time_exceeded_from_a_relay_answers_a_traceroute_probe() {
        let mut pings = Pings::new(9);
        let t0 = Instant::now();
        let (tx, mut rx) = oneshot::channel();
        pings.register(IpAddr::V6(FAR), 1, Duration::from_secs(1), t0, tx);
        let mut probe = vec![0u8; 200];
        let n = build_echo_request6(&mut probe, ME, FAR, 1, 9, 1, 16).unwrap();
        let mut err = vec![0u8; 400];
        let m = build_time_exceeded6(&mut err, RELAY, ME, &probe[..n]).unwrap();
        assert!(pings.intercept(&err[..m], t0));
        let r = answer(&mut rx);
        assert_eq!(
            (r.kind.as_str(), r.from),
            ("time_exceeded", Some(IpAddr::V6(RELAY)))
        );
    }

    #[test]
    fn unanswered_requests_time_out_and_the_table_is_bounded() {
        let mut pings = Pings::new(1);
        let t0 = Instant::now();
        let mut receivers = Vec::new();
        for seq in 0..MAX_PENDING_PINGS as u16 {
            let (tx, rx) = oneshot::channel();
            assert!(pings.register(IpAddr::V6(FAR), seq, Duration::from_millis(50), t0, tx));
            receivers.push(rx);
        }
        let (tx, mut full) = oneshot::channel();
        assert!(!pings.register(IpAddr::V6(FAR), 999, Duration::from_millis(50), t0, tx));
        assert!(!full.try_recv().unwrap().ok, "refused when full");
        assert_eq!(pings.next_deadline(), Some(t0 + Duration::from_millis(50)));
        pings.expire(t0 + Duration::from_millis(49));
        assert!(receivers[0].try_recv().is_err(), "not yet");
        pings.expire(t0 + Duration::from_millis(50));
        for rx in &mut receivers {
            assert_eq!(answer(rx).kind, "timeout");
        }
        assert_eq!(pings.next_deadline(), None);
    }
}
