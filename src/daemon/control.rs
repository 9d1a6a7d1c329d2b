//! The control socket's JSON protocol (docs/operator-guide.md, "Control socket"): one request
//! object per line, one response object per line. Shared by the daemon, the CLI and the lab.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest request line the daemon reads; longer ones are refused.
pub const MAX_REQUEST_LEN: usize = 4096;

/// One request, `{"cmd": "status"}` and so on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The node: id, addresses, interfaces, counts.
    Status,
    /// Neighbours on every interface with link quality both ways.
    Neighbors,
    /// Every originator with its route.
    Originators,
    /// Overlay destinations and where they are sent.
    Routes,
    /// Counters: traffic and every drop reason.
    Stats,
    /// Onion circuits: ours, and those we relay.
    Circuits,
    /// One ICMP echo request from our overlay address; answers when it is answered or times out.
    Ping {
        /// Overlay address to ping.
        addr: IpAddr,
        /// Sequence number to put in the request.
        #[serde(default)]
        seq: u16,
        /// Hop limit (mesh ttl): a relay that runs it out answers "time exceeded".
        #[serde(default = "default_hop_limit")]
        hop_limit: u8,
        /// Bytes of echo payload.
        #[serde(default = "default_ping_size")]
        size: u16,
        /// How long to wait for the answer, in milliseconds.
        #[serde(default = "default_ping_timeout")]
        timeout_ms: u32,
    },
}

fn default_hop_limit() -> u8 {
    64
}

fn default_ping_size() -> u16 {
    56
}

fn default_ping_timeout() -> u32 {
    1000
}

/// One response line: `{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// The result (shape depends on the request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// A successful response carrying `value`.
    pub fn ok(value: impl Serialize) -> Response {
        match serde_json::to_value(value) {
            Ok(v) => Response {
                ok: true,
                result: Some(v),
                error: None,
            },
            Err(e) => Response::error(format!("cannot encode the result: {e}")),
        }
    }

    /// A failed response.
    pub fn error(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            result: None,
            error: Some(message.into()),
        }
    }
}

/// `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Daemon version.
    pub version: String,
    /// Node id (hex, 32 digits).
    pub node_id: String,
    /// Mesh name.
    pub mesh: String,
    /// Restart epoch.
    pub epoch: u32,
    /// Overlay IPv6 address.
    pub ipv6: IpAddr,
    /// Overlay IPv4 address, when IPv4 is on and a claim is settled.
    pub ipv4: Option<IpAddr>,
    /// TUN device name.
    pub tun: String,
    /// Mesh interfaces.
    pub interfaces: Vec<InterfaceReport>,
    /// Neighbours that are up.
    pub neighbors: usize,
    /// Originators known.
    pub originators: usize,
    /// Link sessions.
    pub sessions: usize,
    /// Seconds since start.
    pub uptime_secs: u64,
}

/// One mesh interface in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceReport {
    /// Name.
    pub name: String,
    /// Its MAC, when open.
    pub mac: Option<String>,
    /// Whether the daemon is sending and receiving on it.
    pub up: bool,
}

/// One row of `neighbors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeighborReport {
    /// Interface name.
    pub iface: String,
    /// Neighbour MAC.
    pub mac: String,
    /// Node id once authenticated.
    pub node_id: Option<String>,
    /// "up", "down" or "unauthenticated".
    pub state: String,
    /// Share of its hellos we receive (0..=1).
    pub rx_quality: f64,
    /// Share of our hellos it receives (0..=1).
    pub tx_quality: f64,
    /// Link cost (routing metric units; 65535 = unusable).
    pub cost: u16,
    /// Milliseconds since anything was heard from it.
    pub last_seen_ms: u64,
}

/// One row of `circuits`: a circuit of ours or one we relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CircuitReport {
    /// "creator" (ours), "relay" (guard or middle: a relay does not know which) or "exit".
    pub role: String,
    /// Ours: the relays, guard first. A relay's: the previous node and, but at the exit,
    /// the next one. Node ids in hex.
    pub nodes: Vec<String>,
    /// Ours: the ephemeral address it carries.
    pub address: Option<IpAddr>,
    /// Ours: the exit confirmed the build.
    pub built: bool,
    /// Ours: milliseconds from build to build-ok.
    pub build_ms: Option<f64>,
    /// Ours: round-trip time of the last answered loop, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Ours: seconds since it was built.
    pub age_s: Option<f64>,
    /// Ours: cells sent through it.
    pub cells_out: Option<u64>,
    /// Ours: cells received through it.
    pub cells_in: Option<u64>,
    /// Ours: selection rules relaxed to build it ("two_relays" when fewer than three
    /// relays were eligible).
    pub relaxed: Vec<String>,
}

/// A next hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopReport {
    /// Interface name.
    pub iface: String,
    /// Neighbour MAC.
    pub mac: String,
}

/// One row of `originators`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginatorReport {
    /// Node id (hex).
    pub node_id: String,
    /// Its overlay IPv6 address.
    pub ipv6: IpAddr,
    /// Its IPv4 address, when it holds a claim.
    pub ipv4: Option<IpAddr>,
    /// Route metric (65535 = unreachable).
    pub metric: u16,
    /// Selected next hop.
    pub next_hop: Option<HopReport>,
    /// Backup next hop.
    pub backup: Option<HopReport>,
    /// Newest epoch heard.
    pub epoch: u32,
    /// Newest sequence number heard.
    pub seqno: u32,
}

/// One row of `routes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteReport {
    /// Destination prefix (`addr/128` or `addr/32`).
    pub destination: String,
    /// Node behind it.
    pub node_id: String,
    /// Next hop.
    pub via: HopReport,
    /// Metric.
    pub metric: u16,
}

/// `stats`: traffic counters and one counter per drop reason (stable names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReport {
    /// Traffic and activity counters.
    pub counters: BTreeMap<String, u64>,
    /// Drops by reason.
    pub drops: BTreeMap<String, u64>,
}

/// The answer to a `ping`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingReport {
    /// Sequence number.
    pub seq: u16,
    /// "echo_reply", "time_exceeded", "unreachable" or "timeout".
    pub kind: String,
    /// Who answered.
    pub from: Option<IpAddr>,
    /// Round-trip time in milliseconds.
    pub rtt_ms: Option<f64>,
}

/// Why the CLI could not get an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No daemon listens there.
    #[error("cannot reach the daemon at {path}: {source} (is `veil run` running? pass --socket or --config to name its control socket)")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The connection broke or timed out.
    #[error("talking to the daemon at {path}: {source}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The daemon's answer was not a response object.
    #[error("the daemon at {path} sent something that is not a response: {message}")]
    BadResponse {
        /// Socket path.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// The daemon refused the request.
    #[error("the daemon refused: {0}")]
    Refused(String),
}

/// Send one request to the daemon at `path` and return its result.
pub fn query(path: &Path, request: &Request) -> Result<serde_json::Value, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    let wait = match request {
        Request::Ping { timeout_ms, .. } => Duration::from_millis(u64::from(*timeout_ms) + 5000),
        _ => Duration::from_secs(5),
    };
    stream.set_read_timeout(Some(wait)).map_err(io)?;
    let mut line = serde_json::to_string(request).map_err(|e| ClientError::BadResponse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(io)?;
    let response: Response =
        serde_json::from_str(&answer).map_err(|e| ClientError::BadResponse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    match (response.ok, response.result) {
        (true, Some(v)) => Ok(v),
        (true, None) => Ok(serde_json::Value::Null),
        (false, _) => Err(ClientError::Refused(
            response
                .error
                .unwrap_or_else(|| "no reason given".to_string()),
        )),
    }
}

/// Typed form of [`query`].
pub fn query_as<T: serde::de::DeserializeOwned>(
    path: &Path,
    request: &Request,
) -> Result<T, ClientError> {
    let value = query(path, request)?;
    serde_json::from_value(value).map_err(|e| ClientError::BadResponse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_use_the_documented_json() {
        assert_eq!(
            serde_json::to_string(&Request::Status).unwrap(),
            r#"{"cmd":"status"}"#
        );
        let ping: Request = serde_json::from_str(r#"{"cmd":"ping","addr":"fd00::1"}"#).unwrap();
        assert_eq!(
            ping,
            Request::Ping {
                addr: "fd00::1".parse().unwrap(),
                seq: 0,
                hop_limit: 64,
                size: 56,
                timeout_ms: 1000
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"reboot"}"#).is_err());
        let typo = r#"{"cmd":"ping","addr":"fd00::1","hoplimit":3}"#;
        assert!(serde_json::from_str::<Request>(typo).is_err());
    }

    #[test]
    fn responses_round_trip() {
        let ok = Response::ok(vec![1, 2]);
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"ok":true,"result":[1,2]}"#
        );
        let err = Response::error("no");
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"ok":false,"error":"no"}"#
        );
    }

    #[test]
    fn query_reports_a_missing_daemon_with_advice() {
        let err = query(Path::new("/nonexistent/veil.sock"), &Request::Status).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/nonexistent/veil.sock") && text.contains("veil run"),
            "{text}"
        );
    }
}
