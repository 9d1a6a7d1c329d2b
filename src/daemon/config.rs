//! `veil run`'s configuration: a TOML file, every option with a default, and errors that
//! name the file, the line and what is wrong. Documented in docs/operator-guide.md.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::sys::check_ifname;
use crate::crypto::{AcceptPolicy, SecretBytes};
use crate::node::NodeConfig;
use crate::overlay::Ipv4Pool;

/// The daemon's configuration, as read from TOML (unknown keys are errors: typos must not
/// be silently ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Mesh name: nodes of one mesh must agree on it (PSK input and overlay /48).
    pub mesh_name: String,
    /// Mesh interfaces (wifi in ad-hoc / 802.11s mode, or any Ethernet-like interface).
    pub interfaces: Vec<String>,
    /// "opennet" (anyone with the mesh name and secret) or "darknet" (allow-list only).
    pub mode: Mode,
    /// Hex-encoded mesh secret; without it, a node cannot even complete a handshake.
    pub mesh_secret: Option<SecretString>,
    /// Darknet: ed25519 public keys (hex) allowed to complete a handshake.
    pub allow: Vec<String>,
    /// Where the identity and the restart epoch live.
    pub state_dir: PathBuf,
    /// Name of the TUN device.
    pub tun: String,
    /// Claim an IPv4 address from `ipv4_pool` as well as the IPv6 one.
    pub ipv4: bool,
    /// The IPv4 pool, `a.b.c.d/len`.
    pub ipv4_pool: String,
    /// Unix control socket (owner-only).
    pub control_socket: PathBuf,
    /// Relay other nodes' onion circuits (docs/protocol.md §8.7); off, this node still
    /// routes and forwards, but refuses builds and says so in its onion key record.
    pub relay: bool,
    /// Send IPv6 traffic to other nodes through a circuit of three relays, from an
    /// ephemeral address (docs/protocol.md §8.9); veil0's MTU is then 1280.
    pub anonymous: bool,
    /// Overlay IPv6 addresses that get direct mode while `anonymous` is on (they see who
    /// talks to them). Reloaded by SIGHUP, like `anonymous`.
    pub direct: Vec<String>,
    /// Protocol timers.
    pub timers: Timers,
}

/// A secret as written in the configuration: zeroized on drop, redacted in `Debug` and in
/// parse errors.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // serde's own message would quote a value of the wrong type.
        String::deserialize(d).map(SecretString).map_err(|_| {
            serde::de::Error::custom("must be a string of hex digits (the value is not shown)")
        })
    }
}

impl SecretString {
    /// The text (hex, as the operator wrote it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(text: String) -> Self {
        SecretString(text)
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for SecretString {}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(redacted)")
    }
}

/// `[timers]`: protocol timers an operator may tune.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timers {
    /// Milliseconds between our hellos (500..=60000): shorter finds lost neighbours sooner
    /// when idle and costs more airtime (loss under traffic is found by probes anyway).
    pub hello_interval_ms: u64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            hello_interval_ms: crate::routing::HELLO_INTERVAL.as_millis(),
        }
    }
}

/// Who may join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Anyone who knows the mesh name (and secret, if set).
    Opennet,
    /// Only identities in `allow`.
    Darknet,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mesh_name: "veilmesh".to_string(),
            interfaces: Vec::new(),
            mode: Mode::Opennet,
            mesh_secret: None,
            allow: Vec::new(),
            state_dir: PathBuf::from("/var/lib/veilmesh"),
            tun: "veil0".to_string(),
            ipv4: false,
            ipv4_pool: "10.77.0.0/16".to_string(),
            control_socket: PathBuf::from("/var/run/veilmesh/control.sock"),
            relay: true,
            anonymous: false,
            direct: Vec::new(),
            timers: Timers::default(),
        }
    }
}

/// What is wrong with a configuration; each message names the file and says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Not valid TOML, or a key or value the daemon does not know (the message has the line).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("{path}: {key}: {problem}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The option.
        key: &'static str,
        /// What is wrong and what to do.
        problem: String,
    },
}

impl Config {
    /// Read and check `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // The file may hold mesh_secret.
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&Zeroizing::new(text), path)
    }

    /// Parse and check TOML `text` (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: syntax_message(&e, text),
        })?;
        cfg.check_os_names()
            .and_then(|()| cfg.node_config().map(drop))
            .map_err(|(key, problem)| ConfigError::Value {
                path: path.to_path_buf(),
                key,
                problem,
            })?;
        Ok(cfg)
    }

    /// One line for `veil check-config`: what this configuration will run.
    pub fn summary(&self) -> String {
        let secret = if self.mesh_secret.is_some() {
            "with a mesh secret"
        } else {
            "no mesh secret"
        };
        let mode = match self.mode {
            Mode::Opennet => "opennet".to_string(),
            Mode::Darknet => format!("darknet, {} allowed keys", self.allow.len()),
        };
        format!(
            "mesh \"{}\", {mode}, {secret}, interfaces {}, state in {}, control socket {}",
            self.mesh_name,
            self.interfaces.join(" "),
            self.state_dir.display(),
            self.control_socket.display()
        )
    }

    /// Names the kernel will be handed: interface names fit `IFNAMSIZ`, the control socket
    /// path fits `sun_path`, paths are absolute (a daemon's working directory is arbitrary).
    fn check_os_names(&self) -> Result<(), (&'static str, String)> {
        for name in &self.interfaces {
            check_ifname(name).map_err(|e| ("interfaces", e.to_string()))?;
        }
        check_ifname(&self.tun).map_err(|e| ("tun", e.to_string()))?;
        if !self.state_dir.is_absolute() {
            return Err(("state_dir", "must be an absolute path".to_string()));
        }
        let sock = self.control_socket.as_os_str().len();
        if !self.control_socket.is_absolute() || sock > MAX_SOCKET_PATH {
            return Err((
                "control_socket",
                format!("must be an absolute path of at most {MAX_SOCKET_PATH} bytes"),
            ));
        }
        Ok(())
    }

    /// The node's part of the configuration; `Err((option, problem))` if a value is wrong.
    pub fn node_config(&self) -> Result<NodeConfig, (&'static str, String)> {
        if self.mesh_name.is_empty() || self.mesh_name.len() > 64 {
            return Err(("mesh_name", "must be 1 to 64 bytes".to_string()));
        }
        let mesh_secret = match &self.mesh_secret {
            None => None,
            Some(h) => Some(
                crate::hexstr::decode(h.expose().trim())
                    .map(SecretBytes::from)
                    .filter(|s| s.len() >= 16)
                    .ok_or((
                        "mesh_secret",
                        "must be at least 16 bytes of hex (e.g. `openssl rand -hex 32`)"
                            .to_string(),
                    ))?,
            ),
        };
        let policy = match self.mode {
            Mode::Opennet if !self.allow.is_empty() => {
                return Err(("allow", "only used with mode = \"darknet\"".to_string()));
            }
            Mode::Opennet => AcceptPolicy::Open,
            Mode::Darknet => darknet_policy(&self.allow)?,
        };
        let ipv4_pool = if self.ipv4 {
            Some(
                self.ipv4_pool
                    .parse::<Ipv4Pool>()
                    .map_err(|e| ("ipv4_pool", e.to_string()))?,
            )
        } else {
            None
        };
        let hello = self.timers.hello_interval_ms;
        if !(500..=60_000).contains(&hello) {
            return Err((
                "timers.hello_interval_ms",
                "must be 500 to 60000".to_string(),
            ));
        }
        Ok(NodeConfig {
            mesh_name: self.mesh_name.clone(),
            mesh_secret,
            policy,
            ipv4_pool,
            hello_interval: crate::time::Duration::from_millis(hello),
            relay: self.relay,
            anonymous: self.anonymous,
            direct: self.direct_iids()?,
            ..NodeConfig::default()
        })
    }

    /// The interface ids of the `direct` addresses; each must be an overlay address of this
    /// mesh.
    pub fn direct_iids(&self) -> Result<Vec<crate::overlay::Iid>, (&'static str, String)> {
        let prefix = crate::overlay::mesh_prefix(self.mesh_name.as_bytes());
        self.direct
            .iter()
            .map(|text| {
                let iid = text
                    .parse::<std::net::Ipv6Addr>()
                    .ok()
                    .and_then(|a| crate::overlay::iid_of(&prefix, &a));
                iid.ok_or((
                    "direct",
                    format!("`{text}` is not an overlay IPv6 address of this mesh ({prefix})"),
                ))
            })
            .collect()
    }
}

/// The parser's message with the line and column, but not the line itself, which the
/// parser would quote and which may hold the mesh secret (a log must never show it).
fn syntax_message(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim_end().replace('\n', " | ");
    let Some(span) = e.span() else {
        return message;
    };
    let before = text.as_bytes().get(..span.start).unwrap_or(text.as_bytes());
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    // Characters, not bytes: UTF-8 continuation bytes do not start one.
    let column = before
        .get(line_start..)
        .unwrap_or_default()
        .iter()
        .filter(|&&b| b & 0xc0 != 0x80)
        .count()
        + 1;
    format!("line {line}, column {column}: {message}")
}

/// Longest Unix socket path (`sun_path` is 108 bytes with its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

fn darknet_policy(allow: &[String]) -> Result<AcceptPolicy, (&'static str, String)> {
    if allow.is_empty() {
        return Err((
            "allow",
            "darknet mode needs at least one ed25519 public key (see `veil id`)".to_string(),
        ));
    }
    let mut keys = Vec::with_capacity(allow.len());
    for (i, k) in allow.iter().enumerate() {
        let key: [u8; 32] = crate::hexstr::decode_array::<32>(k.trim()).ok_or((
            "allow",
            format!("entry {} is not a 64-digit hex ed25519 public key", i + 1),
        ))?;
        keys.push(key);
    }
    AcceptPolicy::allow_list(keys).map_err(|e| ("allow", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/veilmesh.toml"))
    }

    #[test]
    fn empty_file_gives_every_default() {
        let cfg = parse("").unwrap();
        assert_eq!(cfg, Config::default());
        let node = cfg.node_config().unwrap();
        assert_eq!(node.mesh_name, "veilmesh");
        assert!(node.ipv4_pool.is_none());
    }

    #[test]
    fn anonymous_mode_and_its_direct_exceptions_are_read_and_checked() {
        let off = parse("").unwrap().node_config().unwrap();
        assert!(!off.anonymous && off.direct.is_empty());
        let on =
            parse("anonymous = true\ndirect = [\"fdfb:9112:e04a:6ff0:99f1:3d16:6b26:7914\"]\n")
                .unwrap()
                .node_config()
                .unwrap();
        assert!(on.anonymous);
        assert_eq!(
            on.direct,
            vec![[0x6f, 0xf0, 0x99, 0xf1, 0x3d, 0x16, 0x6b, 0x26, 0x79, 0x14]]
        );
        let err = parse("direct = [\"fd00::1\"]\n").unwrap_err().to_string();
        assert!(err.contains("direct") && err.contains("fd00::1"), "{err}");
        assert!(err.contains("fdfb:9112:e04a::/48"), "{err}");
        assert!(parse("direct = [\"not an address\"]\n").is_err());
    }

    #[test]
    fn relaying_is_on_unless_turned_off() {
        assert!(parse("").unwrap().node_config().unwrap().relay);
        let off = parse("relay = false\n").unwrap();
        assert!(!off.node_config().unwrap().relay);
        assert!(parse("relay = \"no\"\n").is_err());
    }

    #[test]
    fn timers_are_read_and_checked() {
        let cfg = parse("[timers]\nhello_interval_ms = 1000\n").unwrap();
        let node = cfg.node_config().unwrap();
        assert_eq!(
            node.hello_interval,
            crate::time::Duration::from_millis(1000)
        );
        let err = parse("[timers]\nhello_interval_ms = 100\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("timers.hello_interval_ms") && err.contains("500"),
            "{err}"
        );
        assert!(parse("[timers]\nhello_ms = 1000\n").is_err());
    }

    #[test]
    fn a_full_darknet_config() {
        let key = "11".repeat(32);
        let cfg = parse(&format!(
            "mesh_name = \"camp\"\ninterfaces = [\"wlan0\", \"wlan1\"]\nmode = \"darknet\"\n\
             allow = [\"{key}\"]\nmesh_secret = \"{}\"\nipv4 = true\nipv4_pool = \"10.9.0.0/24\"\n",
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(cfg.interfaces, ["wlan0", "wlan1"]);
        let node = cfg.node_config().unwrap();
        assert!(node.policy.permits(&[0x11; 32]));
        assert!(!node.policy.permits(&[0x22; 32]));
        assert_eq!(node.mesh_secret.as_deref(), Some(&[0xab; 32][..]));
        assert_eq!(node.ipv4_pool.unwrap().to_string(), "10.9.0.0/24");
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_problem() {
        let typo = parse("mesh_name = \"x\"\ninterfacs = [\"wlan0\"]\n")
            .unwrap_err()
            .to_string();
        assert!(typo.contains("/etc/veilmesh.toml"), "{typo}");
        assert!(typo.contains("line 2"), "{typo}");
        assert!(typo.contains("interfacs"), "{typo}");
        let mode = parse("mode = \"closed\"").unwrap_err().to_string();
        assert!(mode.contains("line 1") && mode.contains("closed"), "{mode}");
        let dark = parse("mode = \"darknet\"").unwrap_err().to_string();
        assert!(dark.contains("allow") && dark.contains("veil id"), "{dark}");
        let key = parse("mode = \"darknet\"\nallow = [\"abc\"]")
            .unwrap_err()
            .to_string();
        assert!(key.contains("entry 1"), "{key}");
        let secret = parse("mesh_secret = \"00\"").unwrap_err().to_string();
        assert!(secret.contains("16 bytes"), "{secret}");
        let pool = parse("ipv4 = true\nipv4_pool = \"10.77.0.0/33\"")
            .unwrap_err()
            .to_string();
        assert!(pool.contains("ipv4_pool"), "{pool}");
        let open_allow = parse(&format!("allow = [\"{}\"]", "11".repeat(32))).unwrap_err();
        assert!(open_allow.to_string().contains("darknet"));
    }

    #[test]
    fn names_handed_to_the_kernel_are_checked() {
        let long = parse("interfaces = [\"wlan0\", \"averyveryverylong0\"]")
            .unwrap_err()
            .to_string();
        assert!(
            long.contains("interfaces") && long.contains("averyveryverylong0"),
            "{long}"
        );
        assert!(parse("interfaces = [\"\"]").is_err());
        assert!(parse("interfaces = [\"wlan 0\"]").is_err());
        assert!(parse("tun = \"veil/0\"")
            .unwrap_err()
            .to_string()
            .contains("tun"));
        let rel = parse("state_dir = \"var/lib/veilmesh\"")
            .unwrap_err()
            .to_string();
        assert!(
            rel.contains("state_dir") && rel.contains("absolute"),
            "{rel}"
        );
        let sock = format!("control_socket = \"/{}\"", "s".repeat(107));
        assert!(parse(&sock)
            .unwrap_err()
            .to_string()
            .contains("control_socket"));
        let ok = format!("control_socket = \"/{}\"", "s".repeat(106));
        assert!(parse(&ok).is_ok());
        assert!(parse("interfaces = [\"phy0-mesh0\", \"wlan1\"]\ntun = \"veil0\"").is_ok());
    }

    #[test]
    fn the_summary_says_what_will_run() {
        let cfg = parse("mesh_name = \"camp\"\ninterfaces = [\"wlan0\", \"eth1\"]").unwrap();
        let line = cfg.summary();
        assert!(
            line.contains("\"camp\"") && line.contains("wlan0 eth1"),
            "{line}"
        );
        assert!(
            line.contains("opennet") && line.contains("no mesh secret"),
            "{line}"
        );
    }

    #[test]
    fn unreadable_file_is_an_error_naming_it() {
        let e = Config::load(Path::new("/nonexistent/veil.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/veil.toml"), "{e}");
    }
}
