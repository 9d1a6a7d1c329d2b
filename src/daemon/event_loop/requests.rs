//! Answering control requests from the node's state, and the echo requests of `veil ping`.

use std::net::IpAddr;

use tokio::sync::oneshot;
use tokio::time::Duration;

use super::Daemon;
use crate::daemon::control::{InterfaceReport, Request, Response, StatusReport};
use crate::daemon::report;
use crate::overlay::icmp::{build_echo_request4, build_echo_request6};

impl Daemon {
    fn names(&self) -> Vec<String> {
        self.ifaces.iter().map(|f| f.name.clone()).collect()
    }

    pub(super) fn handle_request(&mut self, request: Request, reply: oneshot::Sender<Response>) {
        self.counters.control_requests += 1;
        let names = self.names();
        let now = self.clock.now();
        let response = match request {
            Request::Status => Response::ok(self.status()),
            Request::Neighbors => Response::ok(report::neighbors(&self.node, &names, now)),
            Request::Originators => Response::ok(report::originators(&self.node, &names)),
            Request::Routes => Response::ok(report::routes(&self.node, &names)),
            Request::Stats => Response::ok(report::stats(&self.node, &self.extra_counters())),
            Request::Circuits => Response::ok(report::circuits(&self.node, now)),
            Request::Ping {
                addr,
                seq,
                hop_limit,
                size,
                timeout_ms,
            } => {
                return self.ping(addr, seq, hop_limit, size, timeout_ms, reply);
            }
        };
        let _ = reply.send(response);
    }

    fn ping(
        &mut self,
        dst: IpAddr,
        seq: u16,
        hop_limit: u8,
        size: u16,
        timeout_ms: u32,
        reply: oneshot::Sender<Response>,
    ) {
        let ident = self.pings.ident();
        let payload = usize::from(size);
        let built = match dst {
            IpAddr::V6(d) => build_echo_request6(
                &mut self.buf[..],
                self.node.overlay_ipv6(),
                d,
                hop_limit,
                ident,
                seq,
                payload,
            ),
            IpAddr::V4(d) => match self.node.overlay_ipv4() {
                Some(src) => {
                    build_echo_request4(&mut self.buf[..], src, d, hop_limit, ident, seq, payload)
                }
                None => {
                    let _ = reply.send(Response::error("this node has no IPv4 address"));
                    return;
                }
            },
        };
        let Some(len) = built else {
            let _ = reply.send(Response::error(format!(
                "size {size} does not fit one packet"
            )));
            return;
        };
        if self.node.lookup(&dst).is_none() {
            let _ = reply.send(Response::error(format!(
                "{dst} is not a known overlay address"
            )));
            return;
        }
        let timeout = Duration::from_millis(u64::from(timeout_ms.clamp(10, 60_000)));
        if self
            .pings
            .register(dst, seq, timeout, std::time::Instant::now(), reply)
        {
            if let Some(packet) = self.buf.get(..len) {
                let now = self.clock.now();
                self.node.handle_ip_packet(now, packet);
            }
        }
    }

    fn status(&self) -> StatusReport {
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            node_id: crate::hexstr::encode(&self.node.node_id().0),
            mesh: self.cfg.mesh_name.clone(),
            epoch: self.node.epoch(),
            ipv6: IpAddr::V6(self.node.overlay_ipv6()),
            ipv4: self.node.overlay_ipv4().map(IpAddr::V4),
            tun: self.cfg.tun.clone(),
            interfaces: self
                .ifaces
                .iter()
                .filter(|f| self.cfg.interfaces.contains(&f.name))
                .map(|f| InterfaceReport {
                    name: f.name.clone(),
                    mac: f.mac.map(|m| m.to_string()),
                    up: f.sock.is_some(),
                })
                .collect(),
            neighbors: report::neighbors_up(&self.node),
            originators: self.node.routing().originator_count(),
            sessions: self.node.sessions(),
            uptime_secs: self.clock.start.elapsed().as_secs(),
        }
    }

    fn extra_counters(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        vec![
            ("relayed_in_place", c.relayed_in_place),
            ("tx_busy", c.tx_busy),
            ("tx_errors", c.tx_errors),
            ("rx_errors", c.rx_errors),
            ("rx_oversized", c.rx_oversized),
            ("tun_write_dropped", c.tun_write_dropped),
            ("tun_read_errors", c.tun_read_errors),
            ("tun_gso_packets", c.tun_gso_packets),
            ("tun_gso_segments", c.tun_gso_segments),
            ("tun_gro_packets", c.tun_gro_packets),
            ("tun_gro_segments", c.tun_gro_segments),
            ("tun_malformed", c.tun_malformed),
            ("interface_down", c.interface_down),
            ("control_requests", c.control_requests),
        ]
    }
}
