//! One `veil run` per node: its veil.toml, starting it inside the node's namespace in its
//! own process group (so a terminal's Ctrl-C reaches only `veil lab`), and stopping it.

use std::fs::OpenOptions;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use super::names::MESH_IF;
use super::{sys, Lab, LabError, Signal};

/// Mesh name of every lab node.
pub const LAB_MESH: &str = "veil-lab";
/// IPv4 pool of every lab.
pub const LAB_IPV4_POOL: &str = "10.77.0.0/24";
/// How long `kill_daemon` waits for the exit.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long teardown gives daemons after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// Poll interval while waiting for an exit.
const POLL: Duration = Duration::from_millis(20);

/// The veil.toml of a node with directory `dir`; a key set in `extra` replaces the default.
pub fn config_text(dir: &std::path::Path, extra: &[String]) -> String {
    let defaults = [
        ("mesh_name", format!("{LAB_MESH:?}")),
        ("interfaces", format!("[{MESH_IF:?}]")),
        (
            "state_dir",
            format!("{:?}", dir.join("state").display().to_string()),
        ),
        (
            "control_socket",
            format!("{:?}", dir.join("control.sock").display().to_string()),
        ),
        ("ipv4", "true".to_string()),
        ("ipv4_pool", format!("{LAB_IPV4_POOL:?}")),
        ("tun", "\"veil0\"".to_string()),
    ];
    let key_of = |line: &str| line.split('=').next().map(|k| k.trim().to_string());
    let overridden: Vec<String> = extra.iter().filter_map(|l| key_of(l)).collect();
    let mut out = String::from("# Written by veil lab.\n");
    for (key, value) in defaults {
        if !overridden.iter().any(|k| k == key) {
            out += &format!("{key} = {value}\n");
        }
    }
    for line in extra {
        out += line;
        out.push('\n');
    }
    out
}

impl Lab {
    /// (Re)writes node `i`'s veil.toml with `extra` TOML lines; takes effect at the next
    /// `start_daemon(i)`.
    pub fn write_config(&self, i: usize, extra: &[String]) -> Result<(), LabError> {
        self.check_node(i)?;
        let dir = self.node_dir(i);
        std::fs::create_dir_all(dir.join("state")).map_err(|e| LabError::io(&dir, e))?;
        let path = self.config_path(i);
        std::fs::write(&path, config_text(&dir, extra)).map_err(|e| LabError::io(&path, e))
    }

    /// Starts `veil run -v --config <config_path(i)>` (through the lab's daemon command if it
    /// has one) in node `i`'s namespace, output appended to `log_path(i)`; records the pid in
    /// lab.json.
    pub fn start_daemon(&mut self, i: usize) -> Result<u32, LabError> {
        self.check_node(i)?;
        if let Some(pid) = self.daemon_pid(i) {
            return Err(LabError::DaemonRunning { node: i, pid });
        }
        let log_path = self.log_path(i);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| LabError::io(&log_path, e))?;
        let err = log.try_clone().map_err(|e| LabError::io(&log_path, e))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns_name(i)]);
        if self.state.daemon_cmd.is_empty() {
            cmd.arg(&self.state.veil_bin);
        } else {
            cmd.args(&self.state.daemon_cmd);
        }
        cmd.arg("run")
            .arg("-v")
            .arg("--config")
            .arg(self.config_path(i))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0);
        let shown = format!("{cmd:?}");
        let child = cmd
            .spawn()
            .map_err(|source| LabError::Spawn { cmd: shown, source })?;
        let pid = child.id();
        if let Some(slot) = self.children.get_mut(i - 1) {
            *slot = Some(child);
        }
        if let Some(slot) = self.state.pids.get_mut(i - 1) {
            *slot = Some(pid);
        }
        self.state.save()?;
        Ok(pid)
    }

    /// Node `i`'s daemon pid, if it is running.
    pub fn daemon_pid(&mut self, i: usize) -> Option<u32> {
        let pid = (*self.state.pids.get(i.checked_sub(1)?)?)?;
        self.alive(i, pid).then_some(pid)
    }

    /// Sends `sig` to node `i`'s daemon and waits (up to 10 s) until it has exited.
    /// A node without a running daemon is fine.
    pub fn kill_daemon(&mut self, i: usize, sig: Signal) -> Result<(), LabError> {
        self.check_node(i)?;
        let Some(pid) = self.daemon_pid(i) else {
            return Ok(());
        };
        let _ = sys::kill(pid, sig, true);
        let deadline = Instant::now() + KILL_WAIT;
        while self.alive(i, pid) {
            if Instant::now() > deadline {
                return Err(LabError::DaemonStuck {
                    node: i,
                    pid,
                    secs: KILL_WAIT.as_secs(),
                });
            }
            std::thread::sleep(POLL);
        }
        if let Some(slot) = self.state.pids.get_mut(i - 1) {
            *slot = None;
        }
        self.state.save()
    }

    /// The last `lines` lines of node `i`'s daemon log (empty if there is none).
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM to every daemon, up to 2 s grace, then SIGKILL; never fails.
    pub(super) fn stop_all_daemons(&mut self) {
        let running: Vec<(usize, u32)> = (1..=self.len())
            .filter_map(|i| self.daemon_pid(i).map(|p| (i, p)))
            .collect();
        for &(_, pid) in &running {
            let _ = sys::kill(pid, Signal::Term, true);
        }
        let deadline = Instant::now() + TERM_GRACE;
        while running.iter().any(|&(i, p)| self.alive(i, p)) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        for &(i, pid) in &running {
            if self.alive(i, pid) {
                let _ = sys::kill(pid, Signal::Kill, true);
            }
        }
        for &(i, pid) in &running {
            let deadline = Instant::now() + TERM_GRACE;
            while self.alive(i, pid) && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
        }
        self.state.pids.iter_mut().for_each(|p| *p = None);
    }

    /// Whether node `i`'s daemon `pid` still runs: reaped here if it is our child,
    /// otherwise checked in /proc (and that it is really the daemon of node `i`).
    fn alive(&mut self, i: usize, pid: u32) -> bool {
        if let Some(Some(child)) = self.children.get_mut(i.wrapping_sub(1)) {
            if child.id() == pid {
                return matches!(child.try_wait(), Ok(None));
            }
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let config = self.config_path(i).display().to_string();
        let ours = String::from_utf8_lossy(&cmdline).contains(&config);
        !stat.is_empty() && !zombie && ours
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn config_has_the_lab_defaults_and_extra_keys_replace_them() {
        let dir = Path::new("/run/veil-lab/t-/n2");
        let text = config_text(dir, &[]);
        let cfg = crate::daemon::config::Config::parse(&text, Path::new("x")).unwrap();
        assert_eq!(cfg.mesh_name, "veil-lab");
        assert_eq!(cfg.interfaces, vec!["wlan0".to_string()]);
        assert_eq!(cfg.state_dir, dir.join("state"));
        assert_eq!(cfg.control_socket, dir.join("control.sock"));
        assert!(cfg.ipv4);
        assert_eq!(cfg.ipv4_pool, "10.77.0.0/24");
        assert_eq!(cfg.tun, "veil0");

        let extra = vec![
            "ipv4 = false".to_string(),
            "mesh_secret = \"00112233445566778899aabbccddeeff\"".to_string(),
        ];
        let text = config_text(dir, &extra);
        let cfg = crate::daemon::config::Config::parse(&text, Path::new("x")).unwrap();
        assert!(!cfg.ipv4);
        assert!(cfg.mesh_secret.is_some());
        assert_eq!(text.matches("ipv4 =").count(), 1);
    }
}
