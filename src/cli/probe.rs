//! `veil ping` and `veil traceroute`: the daemon sends ICMP echo requests from the node's
//! overlay address over the mesh; a relay whose mesh ttl runs out answers "time exceeded".

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::daemon::control::{query_as, ClientError, PingReport, Request, StatusReport};
use crate::overlay::{ipv6_for, mesh_prefix};
use crate::wire::NodeId;

/// What to ping and how.
#[derive(Debug, Clone)]
pub struct PingOptions {
    /// Overlay address.
    pub addr: IpAddr,
    /// Requests to send.
    pub count: u32,
    /// Pause between requests.
    pub interval: Duration,
    /// Echo payload bytes.
    pub size: u16,
    /// Wait for each answer this long.
    pub timeout: Duration,
}

/// `veil ping --json`.
#[derive(Debug, Clone, Serialize)]
pub struct PingSummary {
    /// Address pinged.
    pub addr: IpAddr,
    /// Requests sent.
    pub sent: u32,
    /// Echo replies received.
    pub received: u32,
    /// Each answer, in order.
    pub replies: Vec<PingReport>,
    /// Smallest, mean and largest RTT in ms (absent without replies).
    pub rtt_ms: Option<[f64; 3]>,
}

/// An address, or a node id (32 hex digits) turned into its overlay IPv6 on the daemon's mesh.
pub fn resolve(target: &str, socket: &Path) -> Result<IpAddr, String> {
    if let Ok(addr) = target.parse::<IpAddr>() {
        return Ok(addr);
    }
    let id = parse_node_id(target)
        .ok_or_else(|| format!("{target}: not an IP address or a 32-digit node id"))?;
    let status: StatusReport = query_as(socket, &Request::Status).map_err(|e| e.to_string())?;
    Ok(IpAddr::V6(ipv6_for(
        &mesh_prefix(status.mesh.as_bytes()),
        &id,
    )))
}

fn parse_node_id(s: &str) -> Option<NodeId> {
    crate::hexstr::decode_array(s.trim()).map(NodeId)
}

fn probe(
    socket: &Path,
    addr: IpAddr,
    seq: u16,
    hop_limit: u8,
    size: u16,
    timeout: Duration,
) -> Result<PingReport, ClientError> {
    let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    query_as(
        socket,
        &Request::Ping {
            addr,
            seq,
            hop_limit,
            size,
            timeout_ms,
        },
    )
}

/// Ping; `print` gets each line as it happens (for the text output).
pub fn ping(
    socket: &Path,
    o: &PingOptions,
    mut print: impl FnMut(&str),
) -> Result<PingSummary, ClientError> {
    let mut replies = Vec::new();
    let mut rtts = Vec::new();
    print(&format!(
        "PING {} over the mesh: {} bytes of data",
        o.addr, o.size
    ));
    for i in 0..o.count {
        if i > 0 {
            std::thread::sleep(o.interval);
        }
        let seq = u16::try_from(i % 65536).unwrap_or(0);
        let r = probe(socket, o.addr, seq, 64, o.size, o.timeout)?;
        match (r.kind.as_str(), r.rtt_ms, r.from) {
            ("echo_reply", Some(rtt), Some(from)) => {
                rtts.push(rtt);
                print(&format!(
                    "{} bytes from {from}: seq={seq} time={rtt:.2} ms",
                    o.size
                ));
            }
            (kind, _, from) => print(&format!(
                "seq={seq}: {kind} {}",
                from.map_or(String::new(), |f| format!("from {f}"))
            )),
        }
        replies.push(r);
    }
    let received = u32::try_from(rtts.len()).unwrap_or(u32::MAX);
    let rtt_ms = (!rtts.is_empty()).then(|| {
        let min = rtts.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rtts.iter().copied().fold(0.0, f64::max);
        [min, rtts.iter().sum::<f64>() / rtts.len() as f64, max]
    });
    let loss = 100.0 * f64::from(o.count - received) / f64::from(o.count.max(1));
    print(&format!("--- {} ping statistics ---", o.addr));
    print(&format!(
        "{} transmitted, {received} received, {loss:.0}% packet loss",
        o.count
    ));
    if let Some([min, avg, max]) = rtt_ms {
        print(&format!("rtt min/avg/max = {min:.2}/{avg:.2}/{max:.2} ms"));
    }
    Ok(PingSummary {
        addr: o.addr,
        sent: o.count,
        received,
        replies,
        rtt_ms,
    })
}

/// One hop of `veil traceroute --json`.
#[derive(Debug, Clone, Serialize)]
pub struct TraceHop {
    /// Hop number (the mesh ttl used).
    pub hop: u8,
    /// Who answered (absent if nobody did).
    pub from: Option<IpAddr>,
    /// RTT of each probe in ms (null = no answer).
    pub rtt_ms: Vec<Option<f64>>,
}

/// `veil traceroute --json`.
#[derive(Debug, Clone, Serialize)]
pub struct TraceSummary {
    /// Destination.
    pub addr: IpAddr,
    /// Hops in order.
    pub hops: Vec<TraceHop>,
    /// Whether the destination answered.
    pub reached: bool,
}

/// Traceroute with `queries` probes per hop up to `max_hops`.
pub fn traceroute(
    socket: &Path,
    addr: IpAddr,
    max_hops: u8,
    queries: u8,
    timeout: Duration,
    mut print: impl FnMut(&str),
) -> Result<TraceSummary, ClientError> {
    print(&format!(
        "traceroute to {addr} over the mesh, {max_hops} hops max"
    ));
    let mut hops = Vec::new();
    let mut seq: u16 = 0;
    for hop in 1..=max_hops {
        let mut from = None;
        let mut rtts = Vec::new();
        let mut reached = false;
        for _ in 0..queries.max(1) {
            seq = seq.wrapping_add(1);
            let r = probe(socket, addr, seq, hop, 32, timeout)?;
            from = from.or(r.from);
            reached |= r.kind == "echo_reply";
            rtts.push(r.rtt_ms);
        }
        let times: Vec<String> = rtts
            .iter()
            .map(|r| r.map_or_else(|| "*".to_string(), |t| format!("{t:.2} ms")))
            .collect();
        print(&format!(
            "{hop:2}  {}  {}",
            from.map_or("*".to_string(), |f| f.to_string()),
            times.join("  ")
        ));
        hops.push(TraceHop {
            hop,
            from,
            rtt_ms: rtts,
        });
        if reached {
            return Ok(TraceSummary {
                addr,
                hops,
                reached: true,
            });
        }
    }
    Ok(TraceSummary {
        addr,
        hops,
        reached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_parse_and_other_text_does_not() {
        let id = parse_node_id("000102030405060708090a0b0c0d0e0f").unwrap();
        assert_eq!(id.0[15], 15);
        assert!(parse_node_id("0001").is_none());
        assert!(parse_node_id("zz0102030405060708090a0b0c0d0e0f").is_none());
        assert!(parse_node_id("é00102030405060708090a0b0c0d0e0").is_none());
        assert_eq!(
            resolve("fd00::1", Path::new("/nonexistent")).unwrap(),
            "fd00::1".parse::<IpAddr>().unwrap()
        );
        assert!(resolve("not-an-address", Path::new("/nonexistent")).is_err());
    }
}
