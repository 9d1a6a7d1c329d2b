//! `veil run`: start-up checks in an order that gives the most useful error first, then the
//! event loop, then clean-up. Exit codes follow sysexits(3) and are listed in
//! docs/operator-guide.md.

use std::path::PathBuf;

use super::config::{Config, ConfigError};
use super::control_server::{self, ControlError};
use super::event_loop::{Clock, Daemon, Opened};
use super::state::{StateDir, StateError};
use super::sys::{check_ifname, fill_random, SysError};
use crate::node::{Node, NodeError};

/// Command-line settings of `veil run` (they override the config file).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Config file; without one, every option has its default.
    pub config: Option<PathBuf>,
    /// Mesh interfaces; replace the config's list when given.
    pub interfaces: Vec<String>,
    /// State directory override.
    pub state_dir: Option<PathBuf>,
    /// Control socket override.
    pub control_socket: Option<PathBuf>,
}

/// Why the daemon did not start or stopped; `exit_code` says how it exits.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No mesh interface was named.
    #[error("no mesh interface: pass --interface IF or set `interfaces` in the config")]
    NoInterfaces,
    /// The state directory is unusable or locked by another daemon.
    #[error(transparent)]
    State(#[from] StateError),
    /// A socket, the TUN device or netlink failed.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// The control socket cannot be set up.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The node could not be built.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The async runtime or signal handlers could not start.
    #[error("cannot start the event loop: {0}")]
    Runtime(std::io::Error),
}

impl DaemonError {
    /// Process exit code: 64 usage, 69 interface/device unavailable, 71 OS error, 73 cannot
    /// create a file, 75 another daemon holds the state directory or socket, 77 missing
    /// privilege, 78 bad configuration.
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Config(_) => 78,
            DaemonError::NoInterfaces => 64,
            DaemonError::State(StateError::Busy(_)) => 75,
            DaemonError::State(_) => 73,
            DaemonError::Sys(e) => e.exit_code(),
            DaemonError::Control(ControlError::InUse(_)) => 75,
            DaemonError::Control(_) => 73,
            DaemonError::Node(_) | DaemonError::Runtime(_) => 71,
        }
    }
}

/// The configuration with the command line applied.
pub fn effective_config(opts: &RunOptions) -> Result<Config, DaemonError> {
    let mut cfg = match &opts.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if !opts.interfaces.is_empty() {
        // The file's names were checked when it was loaded; these replace them.
        for name in &opts.interfaces {
            check_ifname(name)?;
        }
        cfg.interfaces = opts.interfaces.clone();
    }
    if let Some(dir) = &opts.state_dir {
        cfg.state_dir = dir.clone();
    }
    if let Some(sock) = &opts.control_socket {
        cfg.control_socket = sock.clone();
    }
    if cfg.interfaces.is_empty() {
        return Err(DaemonError::NoInterfaces);
    }
    Ok(cfg)
}

/// Run the daemon until SIGTERM or SIGINT.
pub fn run(opts: &RunOptions) -> Result<(), DaemonError> {
    let cfg = effective_config(opts)?;
    let node_cfg = cfg
        .node_config()
        .map_err(|(key, problem)| ConfigError::Value {
            path: opts
                .config
                .clone()
                .unwrap_or_else(|| PathBuf::from("(command line)")),
            key,
            problem,
        })?;
    let state = StateDir::open(&cfg.state_dir)?;
    let identity = state.identity()?;
    let epoch = state.next_epoch(unix_secs())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    runtime.block_on(async move {
        // Sockets and the TUN device first: their errors (privileges, interfaces) are the
        // ones an operator most likely has to fix.
        let opened = Opened::open(&cfg)?;
        let listener = control_server::bind(&cfg.control_socket)?;
        let clock = Clock::new();
        let node = Node::new(node_cfg, identity, epoch, random_seed()?, clock.now())?;
        let socket = cfg.control_socket.clone();
        let mut daemon = Daemon::start(cfg, opts.config.clone(), clock, node, opened)?;
        let result = daemon.serve(listener).await;
        let _ = std::fs::remove_file(&socket);
        daemon.shutdown();
        drop(state);
        result
    })
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// 32 bytes from the kernel's RNG: the node's only randomness (its Noise ephemeral keys
/// come from it), so there is no weaker fallback.
fn random_seed() -> Result<[u8; 32], DaemonError> {
    let mut seed = [0u8; 32];
    fill_random(&mut seed).map_err(|source| SysError::Io {
        what: "reading the kernel's randomness (getrandom)".into(),
        source,
    })?;
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_overrides_the_config_and_interfaces_are_required() {
        let opts = RunOptions::default();
        assert!(matches!(
            effective_config(&opts),
            Err(DaemonError::NoInterfaces)
        ));
        assert_eq!(DaemonError::NoInterfaces.exit_code(), 64);
        let opts = RunOptions {
            interfaces: vec!["wlan0".into()],
            state_dir: Some("/tmp/x".into()),
            ..RunOptions::default()
        };
        let cfg = effective_config(&opts).unwrap();
        assert_eq!(cfg.interfaces, vec!["wlan0".to_string()]);
        assert_eq!(cfg.state_dir, PathBuf::from("/tmp/x"));
        // A name from the command line is checked like one from the file (exit 64).
        let bad = RunOptions {
            interfaces: vec!["wlan 0".into()],
            ..RunOptions::default()
        };
        assert_eq!(effective_config(&bad).unwrap_err().exit_code(), 64);
    }

    #[test]
    fn a_missing_config_file_is_a_config_error() {
        let opts = RunOptions {
            config: Some("/nonexistent/veil.toml".into()),
            ..Default::default()
        };
        let err = effective_config(&opts).unwrap_err();
        assert_eq!(err.exit_code(), 78);
        assert!(err.to_string().contains("/nonexistent/veil.toml"));
    }
}
