//! What the control socket reports, read off the sans-IO node (no IO here, so it is tested
//! with plain nodes).

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::hexstr;
use crate::node::{IfaceId, Node};
use crate::overlay::ipv6_for;
use crate::routing::{NeighborState, RouteInfo};
use crate::time::Instant;
use crate::wire::MacAddr;

use super::control::{
    CircuitReport, HopReport, NeighborReport, OriginatorReport, RouteReport, StatsReport,
};

/// The name of `iface` in `names` (indexed by interface id), or "?" for an unknown one.
pub fn name_of(names: &[String], iface: IfaceId) -> String {
    names
        .get(usize::from(iface.0))
        .cloned()
        .unwrap_or_else(|| "?".to_string())
}

fn hop(names: &[String], hop: Option<(IfaceId, MacAddr)>) -> Option<HopReport> {
    hop.map(|(iface, mac)| HopReport {
        iface: name_of(names, iface),
        mac: mac.to_string(),
    })
}

fn quality(q: u16) -> f64 {
    f64::from(q) / f64::from(u16::MAX)
}

/// Neighbours, sorted by interface and MAC.
pub fn neighbors(node: &Node, names: &[String], now: Instant) -> Vec<NeighborReport> {
    let mut rows: Vec<NeighborReport> = node
        .neighbors()
        .map(|n| NeighborReport {
            iface: name_of(names, n.iface),
            mac: n.mac.to_string(),
            node_id: n.node.as_ref().map(|n| hexstr::encode(&n.0)),
            state: match n.state {
                NeighborState::Up => "up",
                NeighborState::Down => "down",
                NeighborState::Unauthenticated => "unauthenticated",
            }
            .to_string(),
            rx_quality: quality(n.rx_quality),
            tx_quality: quality(n.tx_quality),
            cost: n.cost,
            last_seen_ms: now.saturating_since(n.last_heard).as_millis(),
        })
        .collect();
    rows.sort_by(|a, b| (&a.iface, &a.mac).cmp(&(&b.iface, &b.mac)));
    rows
}

fn originator(node: &Node, names: &[String], r: &RouteInfo) -> OriginatorReport {
    OriginatorReport {
        node_id: hexstr::encode(&r.node.0),
        ipv6: IpAddr::V6(ipv6_for(&node.mesh_prefix(), &r.node)),
        ipv4: node
            .address_book()
            .claims()
            .and_then(|c| c.address_of(&r.node))
            .map(IpAddr::V4),
        metric: r.metric,
        next_hop: hop(names, r.next_hop.and_then(|l| node.link_key(l))),
        backup: hop(names, r.backup.and_then(|l| node.link_key(l))),
        epoch: r.latest.epoch,
        seqno: r.latest.seqno,
    }
}

/// Originators, sorted by metric then id.
pub fn originators(node: &Node, names: &[String]) -> Vec<OriginatorReport> {
    let mut rows: Vec<OriginatorReport> = node
        .routing()
        .originators()
        .map(|r| originator(node, names, &r))
        .collect();
    rows.sort_by(|a, b| (a.metric, &a.node_id).cmp(&(b.metric, &b.node_id)));
    rows
}

/// Routes: one host route per reachable originator address.
pub fn routes(node: &Node, names: &[String]) -> Vec<RouteReport> {
    let mut rows = Vec::new();
    for o in originators(node, names) {
        let Some(via) = o.next_hop else { continue };
        rows.push(RouteReport {
            destination: format!("{}/128", o.ipv6),
            node_id: o.node_id.clone(),
            via: via.clone(),
            metric: o.metric,
        });
        if let Some(v4) = o.ipv4 {
            rows.push(RouteReport {
                destination: format!("{v4}/32"),
                node_id: o.node_id,
                via,
                metric: o.metric,
            });
        }
    }
    rows
}

/// `veil circuits`: ours first (oldest first), then the ones we relay.
pub fn circuits(node: &Node, now: Instant) -> Vec<CircuitReport> {
    let anon = crate::overlay::anon::anon_prefix(&node.mesh_prefix());
    let ms = |us: u64| us as f64 / 1000.0;
    let mut own = node.circuits(now);
    own.sort_by_key(|c| core::cmp::Reverse(c.age_ms));
    let mut rows: Vec<CircuitReport> = own
        .iter()
        .map(|c| CircuitReport {
            role: "creator".to_string(),
            nodes: c.relays.iter().map(|n| hexstr::encode(&n.0)).collect(),
            address: Some(IpAddr::V6(crate::overlay::anon::anon_address(
                &anon,
                &c.address_iid,
            ))),
            built: c.built,
            build_ms: c.build_us.map(ms),
            rtt_ms: c.rtt_us.map(ms),
            age_s: Some(c.age_ms as f64 / 1000.0),
            cells_out: Some(c.cells_out),
            cells_in: Some(c.cells_in),
            relaxed: match c.relays.len() < 3 {
                true => vec!["two_relays".to_string()],
                false => Vec::new(),
            },
        })
        .collect();
    rows.extend(node.relayed_legs().iter().map(|(prev, next)| {
        let mut nodes = vec![hexstr::encode(&prev.0)];
        nodes.extend(next.map(|n| hexstr::encode(&n.0)));
        CircuitReport {
            role: if next.is_some() { "relay" } else { "exit" }.to_string(),
            nodes,
            address: None,
            built: true,
            build_ms: None,
            rtt_ms: None,
            age_s: None,
            cells_out: None,
            cells_in: None,
            relaxed: Vec::new(),
        }
    }));
    rows
}

/// Node counters plus the daemon's own (`extra`), and every drop reason.
pub fn stats(node: &Node, extra: &[(&str, u64)]) -> StatsReport {
    let s = node.stats();
    // Every field of `Stats` (its Serialize skips only the drop array), so a counter added
    // to the node shows up here without a second list to keep in step.
    let mut counters: BTreeMap<String, u64> = serde_json::to_value(s)
        .and_then(serde_json::from_value)
        .unwrap_or_default();
    counters.extend(extra.iter().map(|(k, v)| (k.to_string(), *v)));
    counters.extend(build_time_counters(s));
    let drops = s.drop_counters().map(|(k, v)| (k.to_string(), v)).collect();
    StatsReport { counters, drops }
}

/// The build-time histogram as counters, one per bucket.
fn build_time_counters(s: &crate::node::Stats) -> impl Iterator<Item = (String, u64)> + '_ {
    let bounds = crate::node::BUILD_MS_BOUNDS;
    bounds.into_iter().enumerate().map(move |(k, bound)| {
        let name = match bound {
            u64::MAX => format!(
                "onion_build_ms_gt_{}",
                bounds.get(k.wrapping_sub(1)).copied().unwrap_or(0)
            ),
            b => format!("onion_build_ms_le_{b}"),
        };
        (name, s.onion_build_ms.get(k).copied().unwrap_or(0))
    })
}

/// How many neighbours are up.
pub fn neighbors_up(node: &Node) -> usize {
    node.neighbors()
        .filter(|n| n.state == NeighborState::Up)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Identity;
    use crate::node::NodeConfig;
    use rand_chacha::rand_core::SeedableRng;

    fn node() -> Node {
        let id = Identity::generate(&mut rand_chacha::ChaCha20Rng::from_seed([7; 32]));
        Node::new(NodeConfig::default(), id, 1, [1; 32], Instant::ZERO).unwrap()
    }

    #[test]
    fn a_lone_node_reports_empty_tables_and_every_drop_reason() {
        let n = node();
        let names = vec!["wlan0".to_string()];
        assert!(neighbors(&n, &names, Instant::ZERO).is_empty());
        assert!(routes(&n, &names).is_empty());
        let s = stats(&n, &[("tun_write_errors", 3)]);
        assert_eq!(s.counters.get("tun_write_errors"), Some(&3));
        assert_eq!(s.counters.get("frames_in"), Some(&0));
        assert_eq!(
            s.counters.get("icmp_errors_sent"),
            Some(&0),
            "every Stats field"
        );
        assert_eq!(s.counters.get("onion_build_ms_le_10"), Some(&0));
        assert_eq!(s.counters.get("onion_build_ms_gt_2000"), Some(&0));
        assert_eq!(s.drops.len(), n.stats().drop_counters().count());
        assert!(s.drops.contains_key("malformed_frame"));
    }

    #[test]
    fn interface_names_by_id() {
        let names = vec!["wlan0".to_string()];
        assert_eq!(name_of(&names, IfaceId(0)), "wlan0");
        assert_eq!(name_of(&names, IfaceId(3)), "?");
    }
}
