//! What can go wrong in a lab, each with what to do about it.

use std::path::{Path, PathBuf};

use crate::sim::TopologyError;

/// Why a lab could not be built, found or changed; each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// Namespaces need root.
    #[error("veil lab needs root (network namespaces): run with sudo")]
    NotRoot,
    /// A tool the lab shells out to is not installed.
    #[error("`{0}` not found: run ./install-deps (as root) to install what veil lab needs")]
    MissingTool(&'static str),
    /// Something with this prefix already exists.
    #[error("a lab with prefix {prefix:?} is already up ({what}): remove it with `veil lab down --prefix {prefix}` or pick another --prefix")]
    AlreadyUp {
        /// The prefix.
        prefix: String,
        /// What was found.
        what: String,
    },
    /// No `lab.json` for this prefix.
    #[error(
        "no lab with prefix {prefix:?} is up ({path} not found): start one with `veil lab up`"
    )]
    NotUp {
        /// The prefix.
        prefix: String,
        /// The missing `lab.json`.
        path: PathBuf,
    },
    /// The prefix would make bad or too long names.
    #[error("bad prefix {prefix:?}: {problem}")]
    BadPrefix {
        /// The prefix.
        prefix: String,
        /// What is wrong.
        problem: String,
    },
    /// The topology spec is wrong.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// More nodes than the lab supports.
    #[error("{got} nodes: veil lab runs at most {max}")]
    TooManyNodes {
        /// Nodes asked for.
        got: usize,
        /// `MAX_NODES`.
        max: usize,
    },
    /// A node number outside 1..=N.
    #[error("no node {node}: the lab has nodes 1 to {nodes}")]
    NoNode {
        /// The node asked for.
        node: usize,
        /// Node count.
        nodes: usize,
    },
    /// Two nodes that are not neighbours in the topology.
    #[error("nodes {a} and {b} are not neighbours in {topology}: only its links can be cut, healed or made lossy")]
    NoLink {
        /// One node.
        a: usize,
        /// Other node.
        b: usize,
        /// The topology spec.
        topology: String,
    },
    /// A loss that is not a percentage.
    #[error("loss {0} is not a percentage in 0..=100")]
    BadLoss(f64),
    /// A command failed.
    #[error("{cmd} failed (exit {status:?}): {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: Option<i32>,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A command could not be started.
    #[error("could not run {cmd}: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file or namespace operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `lab.json` is unreadable or inconsistent.
    #[error("{path}: {problem}")]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// `start_daemon` on a node whose daemon runs.
    #[error("node {node}: a daemon is already running (pid {pid})")]
    DaemonRunning {
        /// The node.
        node: usize,
        /// Its pid.
        pid: u32,
    },
    /// The demonstration's ping across the lab got no answer.
    #[error("ping n{from} -> n{to} across the lab got no answer (daemon logs above)")]
    PingFailed {
        /// The pinging node.
        from: usize,
        /// The pinged node.
        to: usize,
    },
    /// The daemon did not exit after the signal.
    #[error("node {node}: daemon pid {pid} still running {secs} s after the signal")]
    DaemonStuck {
        /// The node.
        node: usize,
        /// Its pid.
        pid: u32,
        /// How long we waited.
        secs: u64,
    },
}

impl LabError {
    pub(super) fn io(path: &Path, source: std::io::Error) -> LabError {
        LabError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
