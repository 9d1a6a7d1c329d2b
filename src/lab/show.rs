//! Reading the daemons through their control sockets (`veil status|originators --json`):
//! convergence, the status table, and which pair of nodes is farthest apart.

use std::collections::VecDeque;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Lab, LabState};

/// How long one CLI query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Time between convergence polls.
const POLL: Duration = Duration::from_millis(500);

/// One row of the status table (fields the daemon did not report are None).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeStatus {
    /// Node number.
    pub node: usize,
    /// Its namespace.
    pub ns: String,
    /// Node id as the daemon prints it.
    pub node_id: Option<String>,
    /// Overlay IPv6 address.
    pub ipv6: Option<String>,
    /// Overlay IPv4 address, if claimed.
    pub ipv4: Option<String>,
    /// Number of neighbours.
    pub neighbors: Option<u64>,
    /// Number of originators known.
    pub originators: Option<u64>,
    /// Why the daemon could not be asked, if it could not.
    pub error: Option<String>,
}

/// Runs `<veil_bin> <what> --socket <node i's socket> --json` and parses its output.
pub fn query(lab: &Lab, i: usize, what: &str) -> Result<Value, String> {
    let mut child = Command::new(lab.veil_bin())
        .arg(what)
        .arg("--socket")
        .arg(lab.control_socket(i))
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", lab.veil_bin().display()))?;
    let deadline = Instant::now() + QUERY_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`veil {what}` timed out"));
            }
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    if !status.success() {
        return Err(format!("`veil {what}` failed: {}", err.trim()));
    }
    serde_json::from_str(&out).map_err(|e| format!("`veil {what} --json`: {e}"))
}

/// Node `i`'s row, from `veil status --json`.
pub fn node_status(lab: &Lab, i: usize) -> NodeStatus {
    let mut row = NodeStatus {
        node: i,
        ns: lab.ns_name(i),
        ..NodeStatus::default()
    };
    match query(lab, i, "status") {
        Ok(v) => {
            let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            let count = |k: &str| {
                v.get(k)
                    .and_then(|x| x.as_u64().or_else(|| x.as_array().map(|a| a.len() as u64)))
            };
            row.node_id = text("node_id");
            row.ipv6 = text("ipv6");
            row.ipv4 = text("ipv4");
            row.neighbors = count("neighbors");
            row.originators = count("originators");
        }
        Err(e) => row.error = Some(e),
    }
    row
}

/// Polls every node's `veil originators --json` until each lists the other `len - 1`
/// nodes; returns how long it took, or after `timeout` which nodes had not converged.
/// `stop` is checked between polls: when it returns true the wait ends with an error.
pub fn wait_converged(
    lab: &Lab,
    timeout: Duration,
    stop: &dyn Fn() -> bool,
) -> Result<Duration, String> {
    let start = Instant::now();
    let want = lab.len().saturating_sub(1);
    loop {
        let mut missing = Vec::new();
        for i in 1..=lab.len() {
            match query(lab, i, "originators") {
                Ok(Value::Array(a)) if a.len() >= want => {}
                Ok(Value::Array(a)) => {
                    missing.push(format!("n{i}: {}/{want} originators", a.len()))
                }
                Ok(_) => missing.push(format!("n{i}: `veil originators --json` is not an array")),
                Err(e) => missing.push(format!("n{i}: {e}")),
            }
        }
        if missing.is_empty() {
            return Ok(start.elapsed());
        }
        if stop() {
            return Err("interrupted".to_string());
        }
        if start.elapsed() >= timeout {
            return Err(format!(
                "not converged after {} s: {}",
                timeout.as_secs(),
                missing.join("; ")
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// The status table, one line per node.
pub fn render_table(rows: &[NodeStatus]) -> String {
    let dash = || "-".to_string();
    let mut out = format!(
        "{:<5} {:<14} {:<18} {:<40} {:<15} {:>5} {:>5}\n",
        "node", "namespace", "node id", "overlay IPv6", "IPv4", "nbrs", "origs"
    );
    for r in rows {
        let id: String = r
            .node_id
            .clone()
            .unwrap_or_else(dash)
            .chars()
            .take(16)
            .collect();
        let n = |x: Option<u64>| x.map_or_else(dash, |v| v.to_string());
        out += &format!(
            "{:<5} {:<14} {:<18} {:<40} {:<15} {:>5} {:>5}",
            format!("n{}", r.node),
            r.ns,
            id,
            r.ipv6.clone().unwrap_or_else(dash),
            r.ipv4.clone().unwrap_or_else(dash),
            n(r.neighbors),
            n(r.originators)
        );
        if let Some(e) = &r.error {
            out += &format!("  ({e})");
        }
        out.push('\n');
    }
    out
}

/// The two nodes (1-based) the most hops apart over links that are not cut, lowest first.
pub fn farthest_pair(state: &LabState) -> (usize, usize) {
    let n = state.nodes;
    let mut adj = vec![Vec::new(); n + 1];
    for l in state.links.iter().filter(|l| !l.cut && l.b <= n) {
        adj[l.a].push(l.b);
        adj[l.b].push(l.a);
    }
    let mut best = (1, n.max(1), 0);
    for src in 1..=n {
        let mut dist = vec![usize::MAX; n + 1];
        dist[src] = 0;
        let mut queue = VecDeque::from([src]);
        while let Some(u) = queue.pop_front() {
            for &v in &adj[u] {
                if dist[v] == usize::MAX {
                    dist[v] = dist[u] + 1;
                    queue.push_back(v);
                }
            }
        }
        for (dst, &d) in dist.iter().enumerate().skip(src + 1) {
            if d != usize::MAX && d > best.2 {
                best = (src, dst, d);
            }
        }
    }
    (best.0, best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_missing_fields_as_dashes_and_errors_inline() {
        let rows = [
            NodeStatus {
                node: 1,
                ns: "vl-n1".into(),
                node_id: Some("0123456789abcdef0123".into()),
                ipv6: Some("fd00::1".into()),
                ipv4: None,
                neighbors: Some(1),
                originators: Some(4),
                error: None,
            },
            NodeStatus {
                node: 2,
                ns: "vl-n2".into(),
                error: Some("`veil status` failed: no socket".into()),
                ..NodeStatus::default()
            },
        ];
        let t = render_table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("n1    vl-n1          0123456789abcdef   fd00::1"));
        assert!(!lines[1].contains("0123456789abcdef0"));
        assert!(lines[1].ends_with("    1     4"), "{t}");
        assert!(lines[2].contains("(`veil status` failed: no socket)"));
    }

    #[test]
    fn farthest_pair_follows_the_links_that_are_up() {
        use crate::lab::state::{permille, STATE_VERSION};
        use crate::sim::Topology;
        let state = |spec: &str| {
            let topo = Topology::parse(spec).unwrap();
            LabState {
                version: STATE_VERSION,
                prefix: "t-".into(),
                topology: spec.into(),
                seed: 1,
                nodes: topo.len(),
                air_ns: "t-air".into(),
                node_ns: (1..=topo.len()).map(|i| format!("t-n{i}")).collect(),
                links: LabState::links_of(&topo, Some(permille(0.0))),
                pids: vec![None; topo.len()],
                veil_bin: "veil".into(),
                daemon_cmd: Vec::new(),
                run_dir: "/nonexistent".into(),
                carry_ipv6: false,
            }
        };
        assert_eq!(farthest_pair(&state("line:5")), (1, 5));
        assert_eq!(farthest_pair(&state("grid:3x3")), (1, 9));
        assert_eq!(farthest_pair(&state("diamond")), (1, 4));
        let mut ring = state("ring:6");
        assert_eq!(farthest_pair(&ring), (1, 4));
        ring.link_mut(1, 6).unwrap().cut = true;
        assert_eq!(farthest_pair(&ring), (1, 6));
    }
}
