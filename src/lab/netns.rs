//! Building and removing the medium: namespaces, the bridge, veth pairs and the filter,
//! through `ip` and `nft` (batch mode, so a lab of N nodes costs N + 3 processes).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::names::{self, BRIDGE, MESH_IF};
use super::state::LabState;
use super::{ruleset, sys, LabError};

/// Where `ip netns` keeps its namespace handles.
pub const NETNS_DIR: &str = "/run/netns";

/// Fails with `NotRoot` unless the effective uid is 0.
pub fn require_root() -> Result<(), LabError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse::<u32>().ok());
    match euid {
        Some(0) => Ok(()),
        _ => Err(LabError::NotRoot),
    }
}

/// Fails with `MissingTool` naming the first of `tools` not found on PATH (or in sbin).
pub fn require_tools(tools: &[&'static str]) -> Result<(), LabError> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs: Vec<&str> = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .collect();
    for tool in tools {
        if !dirs.iter().any(|d| Path::new(d).join(tool).is_file()) {
            return Err(LabError::MissingTool(tool));
        }
    }
    Ok(())
}

/// Runs `cmd` with `stdin` fed in; a non-zero exit is an error quoting its stderr.
pub fn run(cmd: &mut Command, stdin: Option<&str>) -> Result<Output, LabError> {
    let shown = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| LabError::Spawn {
        cmd: shown.clone(),
        source: e,
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A write error shows up as the command's own failure below.
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| LabError::Spawn {
        cmd: shown.clone(),
        source: e,
    })?;
    if !out.status.success() {
        return Err(LabError::Command {
            cmd: shown,
            status: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out)
}

/// Names of every network namespace `ip netns` knows.
pub fn list_netns() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// Creates the namespaces, the bridge and one veth pair per node, and loads the filter.
pub fn build(s: &LabState) -> Result<(), LabError> {
    let mut batch = format!("netns add {}\n", s.air_ns);
    for ns in &s.node_ns {
        batch += &format!("netns add {ns}\n");
    }
    run(Command::new("ip").args(["-b", "-"]), Some(&batch))?;

    let mut air = format!(
        "link add {BRIDGE} type bridge stp_state 0 mcast_snooping 0\nlink set {BRIDGE} up\n"
    );
    for (i, ns) in (1..).zip(&s.node_ns) {
        let p = names::port(i);
        air += &format!("link add {p} type veth peer name {MESH_IF} netns {ns}\n");
        air += &format!("link set {p} master {BRIDGE} up\n");
    }
    run(
        Command::new("ip").args(["-n", &s.air_ns, "-b", "-"]),
        Some(&air),
    )?;

    for (i, ns) in (1..).zip(&s.node_ns) {
        let node = format!(
            "link set lo up\nlink set {MESH_IF} address {}\nlink set {MESH_IF} up\n",
            names::mac(i)
        );
        run(Command::new("ip").args(["-n", ns, "-b", "-"]), Some(&node))?;
    }
    apply_ruleset(s)
}

/// Replaces the medium's filter with one for the lab's links, atomically.
pub fn apply_ruleset(s: &LabState) -> Result<(), LabError> {
    let rules = ruleset::ruleset(&s.links, s.carry_ipv6);
    run(
        Command::new("ip").args(["netns", "exec", &s.air_ns, "nft", "-f", "-"]),
        Some(&rules),
    )
    .map(drop)
}

/// Pids of every process in namespace `ns` (empty if it is gone).
pub fn netns_pids(ns: &str) -> Vec<u32> {
    let out = Command::new("ip")
        .args(["netns", "pids", ns])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    })
    .unwrap_or_default()
}

/// Deletes namespaces `names`, ignoring those already gone (best effort, never fails).
pub fn delete_netns(names: &[String]) {
    let present = list_netns();
    let batch: String = names
        .iter()
        .filter(|n| present.contains(n))
        .map(|n| format!("netns del {n}\n"))
        .collect();
    if !batch.is_empty() {
        let _ = run(Command::new("ip").args(["-force", "-b", "-"]), Some(&batch));
    }
}

/// Runs `f` on a fresh thread inside namespace `ns`; sockets it creates stay there.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
    let path = Path::new(NETNS_DIR).join(ns);
    let file = File::open(&path).map_err(|e| LabError::io(&path, e))?;
    let joined = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                sys::setns_net(file.as_fd())?;
                Ok(f())
            })
            .join()
    });
    match joined {
        Ok(result) => result.map_err(|e| LabError::io(&path, e)),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
