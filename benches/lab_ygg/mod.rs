//! Yggdrasil side by side with veil in the lab benchmark: one `yggdrasil` per node of the
//! same lab (same namespaces, same emulated medium), peering over the mesh interface's
//! link-local IPv6 along the lab's links only, measured with the same helpers as veil.
//!
//! The medium normally carries only veil's EtherType; path labs are built with
//! `LabOptions::carry_ipv6`, so IPv6 takes the same per-link verdicts and a line:4 is
//! three Yggdrasil hops as well (checked with `yggdrasilctl getPeers` before measuring).
//! Peers are explicit (`InterfacePeers` on the mesh interface, the lower node of each link
//! dials the higher); multicast discovery is off so nothing depends on beacon timing.

use std::fs::File;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use veilmesh::lab::{Lab, MESH_IF};

use super::BenchResult;

/// Yggdrasil's listener in every node namespace (namespaces are separate: no clash).
const PORT: u16 = 9001;
/// The TUN of every Yggdrasil node (veil's is `veil0`).
const IF_NAME: &str = "ygg0";
/// The MTU Yggdrasil is also measured at (the IPv6 minimum: what fits a real radio frame
/// without fragmentation of the peering TCP stream's segments is not the point here; it
/// is the small-packet cost per byte that 1280 shows).
pub const SMALL_MTU: u64 = 1280;
/// Peering and first route.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The installed Yggdrasil, or why there is none.
#[derive(Debug, Clone)]
pub enum Yggdrasil {
    /// Binaries and the package version.
    Ready {
        bin: PathBuf,
        ctl: Option<PathBuf>,
        version: String,
    },
    /// Not measured (why).
    Unavailable(String),
}

impl Yggdrasil {
    pub fn summary(&self) -> Value {
        match self {
            Yggdrasil::Ready { bin, ctl, version } => json!({
                "available": true,
                "binary": bin.display().to_string(),
                "yggdrasilctl": ctl.as_ref().map(|c| c.display().to_string()),
                "version": version,
            }),
            Yggdrasil::Unavailable(why) => json!({ "available": false, "why": why }),
        }
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// Runs `cmd` quietly; Err is the last line it printed on stderr (or how it failed).
fn run_quiet(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(format!("{} ({})", last.trim(), out.status))
}

fn apt_install() -> Command {
    let mut c = Command::new("apt-get");
    c.args([
        "-o",
        "DPkg::Lock::Timeout=120",
        "install",
        "-y",
        "--no-install-recommends",
        "yggdrasil",
    ])
    .env("DEBIAN_FRONTEND", "noninteractive");
    c
}

/// Finds Yggdrasil (`YGGDRASIL_BIN`, else PATH), installing Debian's package if it is
/// missing. `LAB_BENCH_YGG=0` skips it. Never an error: what fails is the reason it is
/// unavailable.
pub fn prepare() -> Yggdrasil {
    if std::env::var("LAB_BENCH_YGG").is_ok_and(|v| v == "0") {
        return Yggdrasil::Unavailable("skipped (LAB_BENCH_YGG=0)".to_string());
    }
    let found = || {
        std::env::var_os("YGGDRASIL_BIN")
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .or_else(|| find_on_path("yggdrasil"))
    };
    let bin = match found() {
        Some(b) => b,
        None => {
            if find_on_path("apt-get").is_none() {
                return Yggdrasil::Unavailable("not installed, and no apt-get".to_string());
            }
            eprintln!("lab bench: yggdrasil missing, apt-get install -y yggdrasil");
            // An old package list may not know it yet: update once and retry.
            let installed = run_quiet(&mut apt_install()).or_else(|first| {
                run_quiet(Command::new("apt-get").args(["update"]))
                    .map_err(|e| format!("apt-get install: {first}; apt-get update: {e}"))?;
                run_quiet(&mut apt_install()).map_err(|e| format!("apt-get install: {e}"))
            });
            if let Err(why) = installed {
                return Yggdrasil::Unavailable(why);
            }
            match found() {
                Some(b) => b,
                None => {
                    return Yggdrasil::Unavailable(
                        "package installed but no yggdrasil binary".to_string(),
                    )
                }
            }
        }
    };
    let version = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "yggdrasil"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown (not from a Debian package)".to_string());
    Yggdrasil::Ready {
        bin,
        ctl: find_on_path("yggdrasilctl"),
        version,
    }
}

/// The Yggdrasil nodes of one lab. Dropping it kills every process it started and removes
/// its files, also when a measurement fails or panics (the lab's own teardown would kill
/// them too, as it kills whatever runs in its namespaces).
pub struct Mesh {
    children: Vec<Child>,
    dir: PathBuf,
    /// Overlay (200::/7) address per node, node 1 first.
    pub addrs: Vec<Ipv6Addr>,
    /// The TUN MTU Yggdrasil set (node 1's).
    pub if_mtu: u64,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SIGKILL: nothing of Yggdrasil's needs a clean exit; the TUN goes with the fd.
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Mesh {
    /// The pids (after `ip netns exec` exec'd into yggdrasil: checked by name).
    pub fn pids(&self) -> BenchResult<Vec<u32>> {
        let deadline = Instant::now() + Duration::from_secs(5);
        self.children
            .iter()
            .map(|c| {
                let pid = c.id();
                loop {
                    let comm =
                        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                    if comm.trim() == "yggdrasil" {
                        return Ok(pid);
                    }
                    if Instant::now() > deadline {
                        return Err(format!("pid {pid} is {:?}, not yggdrasil", comm.trim()));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
            .collect()
    }

    fn log_tails(&self) -> String {
        (1..=self.children.len())
            .map(|i| {
                let text =
                    std::fs::read_to_string(self.dir.join(format!("n{i}.log"))).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(8)..].join("\n");
                format!("--- yggdrasil n{i} ---\n{tail}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Neighbours of node `i` along the lab's links that are up.
fn neighbours(lab: &Lab, i: usize) -> Vec<usize> {
    lab.state()
        .links
        .iter()
        .filter(|l| !l.cut)
        .filter_map(|l| match (l.a == i, l.b == i) {
            (true, _) => Some(l.b),
            (_, true) => Some(l.a),
            _ => None,
        })
        .collect()
}

/// Node `i`'s config: a fresh `-genconf` (its own keys and defaults) with the peering,
/// admin socket, TUN name and MTU set for the lab.
fn config(
    bin: &Path,
    lab: &Lab,
    i: usize,
    link_local: &[Ipv6Addr],
    dir: &Path,
    mtu: Option<u64>,
) -> BenchResult<Value> {
    let out = Command::new(bin)
        .args(["-genconf", "-json"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("yggdrasil -genconf: {e}"))?;
    let mut conf: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("yggdrasil -genconf -json is not JSON: {e}"))?;
    let obj = conf
        .as_object_mut()
        .ok_or("yggdrasil -genconf -json: not an object")?;
    // The lower node of each link dials the higher one: one TCP session per link.
    let dial: Vec<String> = neighbours(lab, i)
        .into_iter()
        .filter(|&j| j > i)
        .map(|j| format!("tcp://[{}]:{PORT}", link_local[j - 1]))
        .collect();
    obj.insert("Peers".into(), json!([]));
    obj.insert("InterfacePeers".into(), json!({ MESH_IF: dial }));
    obj.insert("Listen".into(), json!([format!("tcp://[::]:{PORT}")]));
    // Only lab links: no multicast discovery (it would work too, the medium filters it per
    // link, but explicit peers do not wait for beacons).
    obj.insert("MulticastInterfaces".into(), json!([]));
    obj.insert(
        "AdminListen".into(),
        json!(format!(
            "unix://{}",
            dir.join(format!("n{i}.sock")).display()
        )),
    );
    obj.insert("IfName".into(), json!(IF_NAME));
    if let Some(m) = mtu {
        obj.insert("IfMTU".into(), json!(m));
    }
    Ok(conf)
}

/// Starts one Yggdrasil per node of `lab` (`mtu` None: its default TUN MTU) and waits
/// until every node has exactly its lab neighbours as peers and the first node reaches
/// the last one.
pub fn start(
    bin: &Path,
    ctl: Option<&Path>,
    lab: &Lab,
    mtu: Option<u64>,
) -> BenchResult<(Mesh, Value)> {
    let n = lab.len();
    let dir = lab.state().run_dir.join(format!(
        "yggdrasil-{}",
        mtu.map_or("default".into(), |m| m.to_string())
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut mesh = Mesh {
        children: Vec::new(),
        dir: dir.clone(),
        addrs: Vec::new(),
        if_mtu: 0,
    };
    let link_local = (1..=n)
        .map(|i| {
            lab.mesh_link_local(i, Duration::from_secs(10))
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("n{i}: no usable link-local address on {MESH_IF}"))
        })
        .collect::<BenchResult<Vec<_>>>()?;
    // Highest node first, each one listening before the next (lower) one starts and dials
    // it: Yggdrasil 0.4 retries a refused peer only once a minute.
    mesh.addrs = vec![Ipv6Addr::UNSPECIFIED; n];
    for i in (1..=n).rev() {
        let conf = config(bin, lab, i, &link_local, &dir, mtu)?;
        let path = dir.join(format!("n{i}.conf"));
        std::fs::write(&path, format!("{conf:#}"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let path_s = path.display().to_string();
        let out = Command::new(bin)
            .args(["-useconffile", &path_s, "-address"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("yggdrasil -address: {e}"))?;
        mesh.addrs[i - 1] = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("yggdrasil -address of n{i}: {e}"))?;
        let log_path = dir.join(format!("n{i}.log"));
        let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = lab
            .command_in(i, &bin.display().to_string())
            .map_err(|e| e.to_string())?;
        cmd.args(["-useconffile", &path_s])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = cmd
            .spawn()
            .map_err(|e| format!("start yggdrasil in n{i}: {e}"))?;
        // Started highest first; `Mesh` keeps node order (pids, logs).
        mesh.children.insert(0, child);
        wait_listening(lab, i)?;
    }
    let label = mtu.map_or("default MTU".into(), |m| format!("MTU {m}"));
    let mut peers = wait_ready(ctl, lab, &mesh)
        .map_err(|e| format!("yggdrasil ({label}): {e}\n{}", mesh.log_tails()))?;
    mesh.if_mtu = tun_mtu(lab, 1).unwrap_or(0);
    peers["configured_if_mtu"] = json!(mtu.map_or("default (65535)".into(), |m| m.to_string()));
    eprintln!(
        "yggdrasil ({label}): TUN MTU {}, peers {} as the lab's links, n1 reaches n{n} after {:.1} s",
        mesh.if_mtu,
        peers["peers_per_node"],
        peers["ready_secs"].as_f64().unwrap_or(f64::NAN)
    );
    Ok((mesh, peers))
}

/// Waits (up to 10 s) until node `i`'s Yggdrasil accepts peers on `PORT`.
fn wait_listening(lab: &Lab, i: usize) -> BenchResult<()> {
    let start = Instant::now();
    let sport = format!("sport = :{PORT}");
    loop {
        let out = lab
            .exec(i, &["ss", "-H", "-6", "-t", "-l", "-n", &sport])
            .map_err(|e| e.to_string())?;
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "n{i}: yggdrasil not listening on port {PORT} after 10 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The MTU Yggdrasil actually set on node `i`'s TUN (0.4 lowers 65535 to what its
/// packets can carry).
fn tun_mtu(lab: &Lab, i: usize) -> Option<u64> {
    let out = lab.exec(i, &["ip", "-o", "link", "show", IF_NAME]).ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    words.find(|w| *w == "mtu")?;
    words.next()?.parse().ok()
}

/// Peer count of node `i` from `yggdrasilctl -json getPeers` (None: no answer yet).
fn peer_count(ctl: &Path, sock: &Path) -> Option<usize> {
    let out = Command::new(ctl)
        .args([
            "-json",
            &format!("-endpoint=unix://{}", sock.display()),
            "getPeers",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    match &v["peers"] {
        Value::Array(a) => Some(a.len()),
        Value::Object(o) => Some(o.len()),
        _ => None,
    }
}

/// Waits for the lab's topology in Yggdrasil's peers (when yggdrasilctl is there) and for
/// a first answer n1 → last; returns the peer counts.
fn wait_ready(ctl: Option<&Path>, lab: &Lab, mesh: &Mesh) -> BenchResult<Value> {
    let n = lab.len();
    let start = Instant::now();
    let expected: Vec<usize> = (1..=n).map(|i| neighbours(lab, i).len()).collect();
    let mut counts = Vec::new();
    if let Some(ctl) = ctl {
        loop {
            counts = (1..=n)
                .map(|i| peer_count(ctl, &mesh.dir.join(format!("n{i}.sock"))))
                .collect::<Vec<_>>();
            if counts
                .iter()
                .zip(&expected)
                .any(|(c, e)| c.is_some_and(|c| c > *e))
            {
                return Err(format!(
                    "more peers than lab neighbours: {counts:?}, expected {expected:?}"
                ));
            }
            if counts.iter().zip(&expected).all(|(c, e)| *c == Some(*e)) {
                break;
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(format!(
                    "peers {counts:?} after {READY_TIMEOUT:?}, expected {expected:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let last = mesh.addrs.last().ok_or("no yggdrasil node")?.to_string();
    loop {
        let ok = lab
            .exec(1, &["ping", "-6", "-c", "1", "-W", "1", &last])
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            break;
        }
        if start.elapsed() > READY_TIMEOUT {
            return Err(format!("n1 does not reach n{n} ({last}) over yggdrasil"));
        }
        // "No route" fails at once: do not spin.
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(json!({
        "peers_per_node": counts,
        "expected_peers": expected,
        "ready_secs": start.elapsed().as_secs_f64(),
    }))
}

/// The last node's overlay address.
pub fn last_addr(mesh: &Mesh) -> BenchResult<IpAddr> {
    mesh.addrs
        .last()
        .map(|a| IpAddr::V6(*a))
        .ok_or_else(|| "no yggdrasil node".to_string())
}

/// veil / yggdrasil for throughput and CPU per GB, both MTUs.
pub fn ratios(veil: &Value, ygg: &Value) -> Value {
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let ratio = |k: &str, run: &str| match (f(veil, k), f(&ygg[run], k)) {
        (Some(a), Some(b)) if b > 0.0 => json!(a / b),
        _ => Value::Null,
    };
    json!({
        "tcp_veil_over_ygg_default_mtu": ratio("tcp_mbit_per_s", "default_mtu"),
        "tcp_veil_over_ygg_mtu_1280": ratio("tcp_mbit_per_s", "mtu_1280"),
        "cpu_per_gb_veil_over_ygg_default_mtu": ratio("cpu_secs_per_gb", "default_mtu"),
        "cpu_per_gb_veil_over_ygg_mtu_1280": ratio("cpu_secs_per_gb", "mtu_1280"),
    })
}
