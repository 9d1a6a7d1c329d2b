//! `veil lab`: an emulated airspace on one machine, with a real `veil run` daemon per node.
//!
//! One network namespace per node with one mesh interface `wlan0`, all plugged into a bridge
//! in an "air" namespace whose nftables filter lets a frame cross only along the links of a
//! topology, with per-link loss. See docs/lab.md. [`Lab`] is the library API (integration
//! tests call it directly); [`cli`] is the command.

pub mod cli;
mod daemon;
mod error;
mod names;
mod netns;
mod ruleset;
mod show;
mod state;
mod sys;
pub mod tcp;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub use error::LabError;
pub use names::{DEFAULT_PREFIX, MAX_NODES, MESH_IF, RUN_ROOT};
pub use netns::{in_netns, require_root};
pub use ruleset::{ETHERTYPE, ETHERTYPE_IPV6};
pub use show::{farthest_pair, node_status, query, render_table, wait_converged, NodeStatus};
pub use state::{LabState, LinkState};
pub use sys::Signal;
pub use tcp::{accept_within, tcp_throughput, Throughput};

use crate::sim::Topology;

/// How to build a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Prefix of every namespace (≤ 10 chars of `[a-z0-9_-]`); tests use unique ones.
    pub prefix: String,
    /// Topology spec (`line:N`, `ring:N`, `grid:WxH`, `diamond`, `random:N[:SEED]`).
    pub topology: String,
    /// Loss of every link in percent (0..=100), each direction independently.
    pub loss_pct: f64,
    /// Seed recorded in lab.json, and used by `random:N` specs without one.
    pub seed: u64,
    /// The `veil` binary the daemons run.
    pub veil_bin: PathBuf,
    /// Run the daemons with this command instead of `veil_bin` (program, then arguments):
    /// a foreign-architecture build under qemu-user, say. Empty: `veil_bin`.
    pub daemon_cmd: Vec<String>,
    /// Start a daemon in every node at once (false: call `start_daemon` yourself).
    pub start_daemons: bool,
    /// TOML lines appended to every node's veil.toml (a key given here replaces the default).
    pub extra_config: Vec<String>,
    /// TOML lines for single nodes: `(node, lines)`, applied after `extra_config`.
    pub node_config: Vec<(usize, Vec<String>)>,
    /// Let IPv6 (EtherType 0x86DD) cross the medium too, along the same links, cuts and
    /// loss as veil's frames: for other mesh daemons that peer over link-local IPv6
    /// (Yggdrasil in the lab benchmark). Off by default, so the medium stays veil-only.
    pub carry_ipv6: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            prefix: DEFAULT_PREFIX.to_string(),
            topology: "line:5".to_string(),
            loss_pct: 0.0,
            seed: 1,
            veil_bin: PathBuf::from("veil"),
            daemon_cmd: Vec::new(),
            start_daemons: true,
            extra_config: Vec::new(),
            node_config: Vec::new(),
            carry_ipv6: false,
        }
    }
}

/// A running lab. Dropping it tears everything down unless [`Lab::keep`] was called or it
/// was found with [`Lab::attach`].
#[derive(Debug)]
pub struct Lab {
    state: LabState,
    /// Daemons started by this process (reaped here; others are polled through /proc).
    children: Vec<Option<Child>>,
    keep: bool,
    torn_down: bool,
}

/// `random:N` gets the seed; every other spec is used as given.
fn resolve_spec(spec: &str, seed: u64) -> String {
    let spec = spec.trim();
    match spec.split(':').collect::<Vec<_>>().as_slice() {
        [kind, n] if kind.eq_ignore_ascii_case("random") => format!("random:{n}:{seed}"),
        _ => spec.to_string(),
    }
}

impl Lab {
    /// Builds the medium for `opts` and (if asked) starts one daemon per node. On any error
    /// whatever was built is removed again.
    pub fn up(opts: &LabOptions) -> Result<Lab, LabError> {
        netns::require_root()?;
        netns::require_tools(&["ip", "nft"])?;
        let prefix = opts.prefix.clone();
        names::check_prefix(&prefix).map_err(|problem| LabError::BadPrefix {
            prefix: prefix.clone(),
            problem,
        })?;
        let topo = Topology::parse(&resolve_spec(&opts.topology, opts.seed))?;
        if topo.len() > MAX_NODES {
            return Err(LabError::TooManyNodes {
                got: topo.len(),
                max: MAX_NODES,
            });
        }
        if !(0.0..=100.0).contains(&opts.loss_pct) {
            return Err(LabError::BadLoss(opts.loss_pct));
        }
        let run_dir = names::run_dir(&prefix);
        check_free(&prefix, &run_dir)?;
        let n = topo.len();
        let state = LabState {
            version: state::STATE_VERSION,
            prefix: prefix.clone(),
            topology: topo.name().to_string(),
            seed: opts.seed,
            nodes: n,
            air_ns: names::air_ns(&prefix),
            node_ns: (1..=n).map(|i| names::node_ns(&prefix, i)).collect(),
            links: LabState::links_of(&topo, Some(state::permille(opts.loss_pct))),
            pids: vec![None; n],
            veil_bin: opts.veil_bin.clone(),
            daemon_cmd: opts.daemon_cmd.clone(),
            run_dir: run_dir.clone(),
            carry_ipv6: opts.carry_ipv6,
        };
        std::fs::create_dir_all(RUN_ROOT).map_err(|e| LabError::io(Path::new(RUN_ROOT), e))?;
        std::fs::create_dir(&run_dir).map_err(|e| LabError::io(&run_dir, e))?;
        // From here on, dropping `lab` on an error removes what was built.
        let mut lab = Lab {
            state,
            children: (0..n).map(|_| None).collect(),
            keep: false,
            torn_down: false,
        };
        lab.state.save()?;
        netns::build(&lab.state)?;
        for i in 1..=n {
            let mut lines = opts.extra_config.clone();
            for (node, extra) in &opts.node_config {
                if *node == i {
                    lines.extend(extra.iter().cloned());
                }
            }
            lab.write_config(i, &lines)?;
        }
        if opts.start_daemons {
            for i in 1..=n {
                lab.start_daemon(i)?;
            }
        }
        Ok(lab)
    }

    /// Finds the lab with `prefix` from its lab.json. The handle does not tear the lab down
    /// when dropped; call [`Lab::down`] for that.
    pub fn attach(prefix: &str) -> Result<Lab, LabError> {
        names::check_prefix(prefix).map_err(|problem| LabError::BadPrefix {
            prefix: prefix.to_string(),
            problem,
        })?;
        let run_dir = names::run_dir(prefix);
        let path = LabState::path_in(&run_dir);
        if !path.exists() {
            return Err(LabError::NotUp {
                prefix: prefix.to_string(),
                path,
            });
        }
        let state = LabState::load(&run_dir)?;
        Ok(Lab {
            children: (0..state.nodes).map(|_| None).collect(),
            state,
            keep: true,
            torn_down: false,
        })
    }

    /// Keeps the lab running after this handle is dropped (`veil lab up`).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Consumes the handle, leaving the lab running; returns its description.
    pub fn into_persistent(mut self) -> LabState {
        self.keep = true;
        self.state.clone()
    }

    /// The lab's persistent description (as in lab.json).
    pub fn state(&self) -> &LabState {
        &self.state
    }

    /// Number of nodes (numbered 1..=len).
    pub fn len(&self) -> usize {
        self.state.nodes
    }

    /// Whether the lab has no nodes (never, for a lab that came up).
    pub fn is_empty(&self) -> bool {
        self.state.nodes == 0
    }

    /// The namespace prefix.
    pub fn prefix(&self) -> &str {
        &self.state.prefix
    }

    /// The air (medium) namespace.
    pub fn air_ns(&self) -> &str {
        &self.state.air_ns
    }

    /// Node `i`'s namespace (1-based).
    pub fn ns_name(&self, i: usize) -> String {
        names::node_ns(&self.state.prefix, i)
    }

    /// Node `i`'s directory: veil.toml, daemon.log, state/, control.sock.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.state.run_dir.join(format!("n{i}"))
    }

    /// Node `i`'s control socket (as written in its veil.toml).
    pub fn control_socket(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("control.sock")
    }

    /// Node `i`'s daemon configuration file.
    pub fn config_path(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("veil.toml")
    }

    /// Node `i`'s daemon log (stdout and stderr).
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("daemon.log")
    }

    /// Node `i`'s daemon state directory (identity, epoch).
    pub fn state_dir(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("state")
    }

    /// The `veil` binary of the daemons.
    pub fn veil_bin(&self) -> &Path {
        &self.state.veil_bin
    }

    /// Checks that node `i` exists.
    pub fn check_node(&self, i: usize) -> Result<(), LabError> {
        if (1..=self.state.nodes).contains(&i) {
            Ok(())
        } else {
            Err(LabError::NoNode {
                node: i,
                nodes: self.state.nodes,
            })
        }
    }

    /// A `Command` running `program` in node `i`'s namespace (configure and spawn it).
    pub fn command_in(&self, i: usize, program: &str) -> Result<Command, LabError> {
        self.check_node(i)?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns_name(i), program]);
        Ok(cmd)
    }

    /// Runs `args` in node `i`'s namespace and waits; a non-zero exit is not an error.
    pub fn exec(&self, i: usize, args: &[&str]) -> Result<Output, LabError> {
        let (program, rest) = args.split_first().ok_or_else(|| LabError::Spawn {
            cmd: "(empty command)".to_string(),
            source: std::io::ErrorKind::InvalidInput.into(),
        })?;
        let mut cmd = self.command_in(i, program)?;
        cmd.args(rest).stdin(Stdio::null());
        let shown = format!("{cmd:?}");
        cmd.output()
            .map_err(|source| LabError::Spawn { cmd: shown, source })
    }

    /// Starts `args` in node `i`'s namespace (stdin null, stdout and stderr piped).
    pub fn spawn_in(&self, i: usize, args: &[&str]) -> Result<Child, LabError> {
        let (program, rest) = args.split_first().ok_or_else(|| LabError::Spawn {
            cmd: "(empty command)".to_string(),
            source: std::io::ErrorKind::InvalidInput.into(),
        })?;
        let mut cmd = self.command_in(i, program)?;
        cmd.args(rest)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let shown = format!("{cmd:?}");
        cmd.spawn()
            .map_err(|source| LabError::Spawn { cmd: shown, source })
    }

    /// Node `i`'s IPv6 link-local address on its mesh interface once duplicate address
    /// detection has finished (the kernel adds it when the interface comes up and it is
    /// unusable while "tentative"); `None` if there is none usable within `timeout`. Other
    /// daemons peer over it in a lab with [`LabOptions::carry_ipv6`].
    pub fn mesh_link_local(
        &self,
        i: usize,
        timeout: std::time::Duration,
    ) -> Result<Option<std::net::Ipv6Addr>, LabError> {
        let start = std::time::Instant::now();
        loop {
            let out = self.exec(
                i,
                &[
                    "ip", "-6", "-o", "addr", "show", "dev", MESH_IF, "scope", "link",
                ],
            )?;
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(addr) = parse_link_local(&text) {
                return Ok(Some(addr));
            }
            if start.elapsed() >= timeout {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Cuts the link `a`–`b`: nothing crosses it until [`Lab::heal`].
    pub fn cut(&mut self, a: usize, b: usize) -> Result<(), LabError> {
        self.change_link(a, b, |l| l.cut = true)
    }

    /// Restores the link `a`–`b` (with the loss it had).
    pub fn heal(&mut self, a: usize, b: usize) -> Result<(), LabError> {
        self.change_link(a, b, |l| l.cut = false)
    }

    /// Sets the loss of link `a`–`b` to `pct` percent (each direction).
    pub fn set_loss(&mut self, a: usize, b: usize, pct: f64) -> Result<(), LabError> {
        if !(0.0..=100.0).contains(&pct) {
            return Err(LabError::BadLoss(pct));
        }
        self.change_link(a, b, |l| l.loss_permille = state::permille(pct))
    }

    fn change_link(
        &mut self,
        a: usize,
        b: usize,
        f: impl FnOnce(&mut LinkState),
    ) -> Result<(), LabError> {
        self.check_node(a)?;
        self.check_node(b)?;
        let topology = self.state.topology.clone();
        let link = self
            .state
            .link_mut(a, b)
            .ok_or(LabError::NoLink { a, b, topology })?;
        f(link);
        netns::apply_ruleset(&self.state)?;
        self.state.save()
    }

    /// Tears the lab down now (daemons, namespaces, run directory), even an attached one.
    /// Best effort: works when parts are already gone.
    pub fn down(mut self) {
        self.teardown();
    }

    /// Removes the lab with `prefix`: from its lab.json if there is one, and in any case
    /// every leftover namespace named like one of its own. Returns how many namespaces
    /// were removed.
    pub fn down_prefix(prefix: &str) -> Result<usize, LabError> {
        netns::require_root()?;
        netns::require_tools(&["ip"])?;
        names::check_prefix(prefix).map_err(|problem| LabError::BadPrefix {
            prefix: prefix.to_string(),
            problem,
        })?;
        let ours = || -> Vec<String> {
            netns::list_netns()
                .into_iter()
                .filter(|n| names::is_lab_ns(prefix, n))
                .collect()
        };
        let before = ours();
        if let Ok(lab) = Lab::attach(prefix) {
            lab.down();
        }
        let stray = ours();
        for ns in &stray {
            for pid in netns::netns_pids(ns) {
                let _ = sys::kill(pid, Signal::Kill, false);
            }
        }
        netns::delete_netns(&stray);
        let _ = std::fs::remove_dir_all(names::run_dir(prefix));
        let after = ours();
        Ok(before.iter().filter(|n| !after.contains(n)).count())
    }

    fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        self.stop_all_daemons();
        let mut all = self.state.node_ns.clone();
        all.push(self.state.air_ns.clone());
        for ns in &all {
            for pid in netns::netns_pids(ns) {
                let _ = sys::kill(pid, Signal::Kill, false);
            }
        }
        netns::delete_netns(&all);
        let _ = std::fs::remove_dir_all(&self.state.run_dir);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.keep {
            self.teardown();
        }
    }
}

/// The first usable (not tentative, not failed DAD) address in `ip -6 -o addr show` output.
fn parse_link_local(text: &str) -> Option<std::net::Ipv6Addr> {
    text.lines()
        .filter(|l| !l.contains("tentative") && !l.contains("dadfailed"))
        .find_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet6")?;
            words.next()?.split('/').next()?.parse().ok()
        })
}

/// Fails with `AlreadyUp` if a lab.json or a namespace of this prefix exists.
fn check_free(prefix: &str, run_dir: &Path) -> Result<(), LabError> {
    let json = LabState::path_in(run_dir);
    let what = if json.exists() {
        Some(json.display().to_string())
    } else if run_dir.exists() {
        Some(run_dir.display().to_string())
    } else {
        netns::list_netns()
            .into_iter()
            .find(|n| names::is_lab_ns(prefix, n))
            .map(|n| format!("namespace {n}"))
    };
    match what {
        Some(what) => Err(LabError::AlreadyUp {
            prefix: prefix.to_string(),
            what,
        }),
        None => Ok(()),
    }
}
