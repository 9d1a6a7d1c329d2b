//! `veil status | neighbors | originators | routes | stats | circuits`: ask the daemon, print a table
//! (or the daemon's JSON with `--json`).

use std::path::{Path, PathBuf};

use super::table::Table;
use crate::daemon::config::Config;
use crate::daemon::control::{
    query, query_as, CircuitReport, ClientError, HopReport, NeighborReport, OriginatorReport,
    Request, RouteReport, StatsReport, StatusReport,
};

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// `veil status`.
    Status,
    /// `veil neighbors`.
    Neighbors,
    /// `veil originators`.
    Originators,
    /// `veil routes`.
    Routes,
    /// `veil stats`.
    Stats,
    /// `veil circuits`.
    Circuits,
}

/// Where the daemon's control socket is: `--socket`, else the config's, else the default.
pub fn socket_path(socket: Option<&Path>, config: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(s) = socket {
        return Ok(s.to_path_buf());
    }
    match config {
        Some(c) => Config::load(c)
            .map(|c| c.control_socket)
            .map_err(|e| e.to_string()),
        None => Ok(Config::default().control_socket),
    }
}

/// Run `q` against the daemon at `socket`; the text to print.
pub fn run(q: Query, socket: &Path, json: bool) -> Result<String, ClientError> {
    let request = match q {
        Query::Status => Request::Status,
        Query::Neighbors => Request::Neighbors,
        Query::Originators => Request::Originators,
        Query::Routes => Request::Routes,
        Query::Stats => Request::Stats,
        Query::Circuits => Request::Circuits,
    };
    if json {
        let value = query(socket, &request)?;
        return Ok(format!("{value}\n"));
    }
    Ok(match q {
        Query::Status => render_status(&query_as(socket, &request)?),
        Query::Neighbors => render_neighbors(&query_as::<Vec<_>>(socket, &request)?),
        Query::Originators => render_originators(&query_as::<Vec<_>>(socket, &request)?),
        Query::Routes => render_routes(&query_as::<Vec<_>>(socket, &request)?),
        Query::Stats => render_stats(&query_as(socket, &request)?),
        Query::Circuits => render_circuits(&query_as::<Vec<_>>(socket, &request)?),
    })
}

/// Short form of a node id for tables (the first 16 hex digits, as in the logs).
pub fn short_id(id: &str) -> String {
    id.chars().take(16).collect()
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn hop(h: &Option<HopReport>) -> String {
    h.as_ref()
        .map_or_else(|| "-".to_string(), |h| format!("{} {}", h.mac, h.iface))
}

/// `veil status` as text.
pub fn render_status(s: &StatusReport) -> String {
    let mut t = Table::new(&["FIELD", "VALUE"]);
    let ifaces: Vec<String> = s
        .interfaces
        .iter()
        .map(|i| {
            format!(
                "{}({},{})",
                i.name,
                or_dash(i.mac.as_ref()),
                if i.up { "up" } else { "down" }
            )
        })
        .collect();
    for (k, v) in [
        ("node_id", s.node_id.clone()),
        ("mesh", s.mesh.clone()),
        ("ipv6", s.ipv6.to_string()),
        ("ipv4", or_dash(s.ipv4)),
        ("tun", s.tun.clone()),
        ("interfaces", ifaces.join(",")),
        ("neighbors", s.neighbors.to_string()),
        ("originators", s.originators.to_string()),
        ("sessions", s.sessions.to_string()),
        ("epoch", s.epoch.to_string()),
        ("uptime_secs", s.uptime_secs.to_string()),
        ("version", s.version.clone()),
    ] {
        t.row(vec![k.to_string(), v]);
    }
    t.render()
}

/// `veil circuits` as text: short node ids, times in ms and s.
pub fn render_circuits(rows: &[CircuitReport]) -> String {
    let mut t = Table::new(&[
        "ROLE",
        "NODES",
        "ADDRESS",
        "BUILT",
        "BUILD",
        "RTT",
        "AGE",
        "CELLS-OUT",
        "CELLS-IN",
        "RELAXED",
    ]);
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}ms"));
    for c in rows {
        let nodes: Vec<String> = c.nodes.iter().map(|n| short_id(n)).collect();
        let relaxed = match c.relaxed.is_empty() {
            true => "-".to_string(),
            false => c.relaxed.join(","),
        };
        t.row(vec![
            c.role.clone(),
            nodes.join(">"),
            or_dash(c.address),
            if c.built { "yes" } else { "no" }.to_string(),
            ms(c.build_ms),
            ms(c.rtt_ms),
            c.age_s
                .map_or_else(|| "-".to_string(), |s| format!("{s:.0}s")),
            or_dash(c.cells_out),
            or_dash(c.cells_in),
            relaxed,
        ]);
    }
    t.render()
}

/// `veil neighbors` as text.
pub fn render_neighbors(rows: &[NeighborReport]) -> String {
    let mut t = Table::new(&[
        "IFACE",
        "MAC",
        "NODE",
        "STATE",
        "RX",
        "TX",
        "COST",
        "LAST-SEEN",
    ]);
    for n in rows {
        t.row(vec![
            n.iface.clone(),
            n.mac.clone(),
            n.node_id
                .as_deref()
                .map_or_else(|| "-".to_string(), short_id),
            n.state.clone(),
            format!("{:.0}%", n.rx_quality * 100.0),
            format!("{:.0}%", n.tx_quality * 100.0),
            n.cost.to_string(),
            format!("{:.1}s", n.last_seen_ms as f64 / 1000.0),
        ]);
    }
    t.render()
}

/// `veil originators` as text.
pub fn render_originators(rows: &[OriginatorReport]) -> String {
    let mut t = Table::new(&[
        "NODE", "IPV6", "IPV4", "METRIC", "NEXT-HOP", "BACKUP", "SEQNO",
    ]);
    for o in rows {
        t.row(vec![
            short_id(&o.node_id),
            o.ipv6.to_string(),
            or_dash(o.ipv4),
            o.metric.to_string(),
            hop(&o.next_hop),
            hop(&o.backup),
            format!("{}.{}", o.epoch, o.seqno),
        ]);
    }
    t.render()
}

/// `veil routes` as text.
pub fn render_routes(rows: &[RouteReport]) -> String {
    let mut t = Table::new(&["DESTINATION", "NODE", "VIA", "IFACE", "METRIC"]);
    for r in rows {
        t.row(vec![
            r.destination.clone(),
            short_id(&r.node_id),
            r.via.mac.clone(),
            r.via.iface.clone(),
            r.metric.to_string(),
        ]);
    }
    t.render()
}

/// `veil stats` as text: counters, then every drop reason.
pub fn render_stats(s: &StatsReport) -> String {
    let mut t = Table::new(&["COUNTER", "VALUE"]);
    for (k, v) in &s.counters {
        t.row(vec![k.clone(), v.to_string()]);
    }
    for (k, v) in &s.drops {
        t.row(vec![format!("drop.{k}"), v.to_string()]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::table::parse_rendered;

    #[test]
    fn originator_rows_show_what_the_json_says() {
        let o = OriginatorReport {
            node_id: "0123456789abcdef0123456789abcdef".into(),
            ipv6: "fd12:3456:789a::1".parse().unwrap(),
            ipv4: None,
            metric: 272,
            next_hop: Some(HopReport {
                iface: "wlan0".into(),
                mac: "02:00:00:00:00:02".into(),
            }),
            backup: None,
            epoch: 7,
            seqno: 42,
        };
        let cells = parse_rendered(&render_originators(&[o]));
        assert_eq!(cells[0][0], "NODE");
        assert_eq!(
            cells[1],
            [
                "0123456789abcdef",
                "fd12:3456:789a::1",
                "-",
                "272",
                "02:00:00:00:00:02 wlan0",
                "-",
                "7.42"
            ]
        );
    }

    #[test]
    fn the_socket_comes_from_the_flag_then_the_config_then_the_default() {
        assert_eq!(
            socket_path(Some(Path::new("/x.sock")), None).unwrap(),
            PathBuf::from("/x.sock")
        );
        assert_eq!(
            socket_path(None, None).unwrap(),
            Config::default().control_socket
        );
        assert!(socket_path(None, Some(Path::new("/nonexistent.toml"))).is_err());
    }
}
