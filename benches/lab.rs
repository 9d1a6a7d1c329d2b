//! The lab benchmark: real `veil run` daemons in network namespaces (`veil lab`), measured
//! from outside. It reports and never fails on slowness; it fails only when something does
//! not work at all (no lab, no convergence, no transfer).
//!
//! * line:2 and line:4 — TCP first→last over IPv6 (Mbit/s), `ping -6` RTT, daemon CPU
//!   seconds per GB carried (utime + stime of every daemon), peak RSS (VmHWM); line:4 again
//!   with coalesced TUN writes off (`VEIL_TUN_GRO=0`) and with TUN offloads off
//!   (`VEIL_TUN_OFFLOAD=0`), for the side-by-side.
//! * line:5 — idle bytes/s per node from `veil stats` counters after convergence.
//! * diamond — a UDP datagram every 2 ms n1→n4, the link it uses is cut: longest gap.
//! * Yggdrasil side by side (`lab_ygg`): in the line:2 and line:4 labs, after veil, one
//!   `yggdrasil` per node peering along the same links (the medium carries IPv6 there), TCP
//!   first→last over its 200::/7 addresses at its default TUN MTU and at 1280, measured the
//!   same way; the table shows veil/Yggdrasil. Debian's package is installed if missing;
//!   if that fails it says why and measures veil alone (`LAB_BENCH_YGG=0` skips it).
//!
//! Needs root. `cargo bench --bench lab` (add `-- --json` or `LAB_BENCH_JSON=1` for JSON).
//! `LAB_BENCH_PREFIX` (default `vlb`) starts every lab's name; `LAB_BENCH_ONLY=tun` runs
//! only line:2 and line:4 with coalesced TUN writes on and off, alternating,
//! `LAB_BENCH_ROUNDS` times (default 2).
//! Results: docs/benchmarks.md, "Lab benchmark".

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use veilmesh::daemon::control::{query_as, OriginatorReport, Request, StatsReport, StatusReport};
use veilmesh::lab::{in_netns, tcp_throughput, wait_converged, Lab, LabOptions};

/// Length of each TCP transfer.
const TCP_SECS: u64 = 5;
/// Idle time after convergence before the idle window starts (first handshakes settle).
const IDLE_SETTLE_SECS: u64 = 15;
/// Length of the idle window.
const IDLE_SECS: u64 = 20;
/// Interval of the reroute flow.
const FLOW_INTERVAL: Duration = Duration::from_millis(2);
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
const TCP_PORT: u16 = 5201;
const UDP_PORT: u16 = 5202;

type BenchResult<T> = Result<T, String>;

mod lab_report;
mod lab_ygg;

fn main() -> ExitCode {
    if veilmesh::lab::require_root().is_err() {
        println!("lab bench: needs root, skipped");
        return ExitCode::SUCCESS;
    }
    let json_out = std::env::args().any(|a| a == "--json")
        || std::env::var("LAB_BENCH_JSON").is_ok_and(|v| v == "1");
    let bin = veil_bin();
    if !bin.exists() {
        eprintln!(
            "lab bench: {} not found (build it: cargo build --release, or set VEIL_BIN)",
            bin.display()
        );
        return ExitCode::FAILURE;
    }
    eprintln!("lab bench: daemons run {}", bin.display());
    match run_all(&bin) {
        Ok(results) => {
            if json_out {
                println!("{results:#}");
            } else {
                lab_report::print_table(&results);
            }
            // Yggdrasil that is there but does not peer or carry is a broken comparison
            // (unavailable is not: that is reported and veil's numbers stand alone).
            let broken = ygg_errors(&results);
            if broken.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!("lab bench: yggdrasil did not work: {}", broken.join("; "));
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("lab bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `error` of every Yggdrasil run in `results`, as "topology run: error".
fn ygg_errors(results: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["line2", "line4"] {
        for run in ["default_mtu", "mtu_1280"] {
            if let Some(e) = results[key]["yggdrasil"][run]["error"].as_str() {
                let first = e.lines().next().unwrap_or("");
                out.push(format!("{key} {run}: {first}"));
            }
        }
    }
    out
}

/// `VEIL_BIN`, else the binary cargo built for this bench, else target/release/veil.
fn veil_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("VEIL_BIN") {
        return PathBuf::from(p);
    }
    if let Some(p) = option_env!("CARGO_BIN_EXE_veil") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/veil")
}

fn run_all(bin: &std::path::Path) -> BenchResult<Value> {
    let started = Instant::now();
    let prefix = std::env::var("LAB_BENCH_PREFIX").unwrap_or_else(|_| "vlb".to_string());
    if std::env::var("LAB_BENCH_ONLY").is_ok_and(|v| v == "tun") {
        return tun_rounds(bin, &prefix, started);
    }
    let ygg = lab_ygg::prepare();
    if let lab_ygg::Yggdrasil::Unavailable(why) = &ygg {
        eprintln!("lab bench: yggdrasil: not available ({why}); measuring veil only");
    }
    let p = |suffix: &str| format!("{prefix}{suffix}");
    let line2 = path_bench(bin, Some(&ygg), &p("l2"), "line:2", TunMode::Gro)?;
    let line4 = path_bench(bin, Some(&ygg), &p("l4"), "line:4", TunMode::Gro)?;
    // veil alone: Yggdrasil does not depend on veil's TUN offloads.
    let line4_no_gro = path_bench(bin, None, &p("l4g"), "line:4", TunMode::NoGro)?;
    let line4_plain = path_bench(bin, None, &p("l4p"), "line:4", TunMode::Plain)?;
    let idle = idle_bench(bin, &p("l5"), "line:5")?;
    let reroute = reroute_bench(bin, &p("dia"))?;
    Ok(json!({
        "line2": line2,
        "line4": line4,
        "line4_no_gro": line4_no_gro,
        "line4_no_offload": line4_plain,
        "idle_line5": idle,
        "reroute_diamond": reroute,
        "yggdrasil": ygg.summary(),
        "wall_secs": started.elapsed().as_secs_f64(),
    }))
}

/// `LAB_BENCH_ONLY=tun`: line:2 and line:4, each with coalesced TUN writes on then off,
/// `LAB_BENCH_ROUNDS` times, so that on and off see the same machine load.
fn tun_rounds(bin: &std::path::Path, prefix: &str, started: Instant) -> BenchResult<Value> {
    let mut runs = Vec::new();
    for round in 1..=env_secs("LAB_BENCH_ROUNDS", 2) {
        for (topology, short) in [("line:2", "l2"), ("line:4", "l4")] {
            for mode in [TunMode::Gro, TunMode::NoGro] {
                let name = format!("{prefix}{short}{}", mode.suffix());
                let mut v = path_bench(bin, None, &name, topology, mode)?;
                v["round"] = json!(round);
                runs.push(v);
            }
        }
    }
    Ok(json!({ "tun_rounds": runs, "wall_secs": started.elapsed().as_secs_f64() }))
}

/// How the daemons' TUN runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TunMode {
    /// The default: offloads on, writes coalesced.
    Gro,
    /// Offloads on, writes not coalesced (`VEIL_TUN_GRO=0`).
    NoGro,
    /// Offloads off (`VEIL_TUN_OFFLOAD=0`).
    Plain,
}

impl TunMode {
    /// The environment the daemons get, if any.
    fn env(self) -> Option<&'static str> {
        match self {
            TunMode::Gro => None,
            TunMode::NoGro => Some("VEIL_TUN_GRO=0"),
            TunMode::Plain => Some("VEIL_TUN_OFFLOAD=0"),
        }
    }

    /// What the mode adds to a lab's prefix and to a label.
    fn suffix(self) -> &'static str {
        match self {
            TunMode::Gro => "",
            TunMode::NoGro => "g",
            TunMode::Plain => "p",
        }
    }

    /// The mode as the JSON names it.
    fn name(self) -> &'static str {
        match self {
            TunMode::Gro => "gro",
            TunMode::NoGro => "no_gro",
            TunMode::Plain => "no_offload",
        }
    }
}

/// How [`lab_up`] brings a lab up.
#[derive(Clone, Copy)]
struct Up {
    /// The medium carries IPv6 along the links too (for Yggdrasil's peering).
    carry_ipv6: bool,
    /// The daemons' TUN mode.
    tun: TunMode,
}

impl Up {
    /// veil alone, as it runs by default: no IPv6 on the medium, TUN offloads and GRO on.
    const VEIL: Up = Up {
        carry_ipv6: false,
        tun: TunMode::Gro,
    };
}

/// Brings a lab up (removing a leftover of a crashed run first) and waits for convergence.
fn lab_up(
    bin: &std::path::Path,
    prefix: &str,
    topology: &str,
    up: Up,
) -> BenchResult<(Lab, Duration)> {
    let _ = Lab::down_prefix(prefix);
    let daemon_cmd = match up.tun.env() {
        None => Vec::new(),
        Some(env) => vec![
            "env".to_string(),
            env.to_string(),
            bin.display().to_string(),
        ],
    };
    let opts = LabOptions {
        prefix: prefix.to_string(),
        topology: topology.to_string(),
        veil_bin: bin.to_path_buf(),
        daemon_cmd,
        carry_ipv6: up.carry_ipv6,
        ..LabOptions::default()
    };
    let lab = Lab::up(&opts).map_err(|e| format!("{topology}: lab did not come up: {e}"))?;
    match wait_converged(&lab, CONVERGE_TIMEOUT, &|| false) {
        Ok(d) => {
            eprintln!("{topology}: converged in {:.1} s", d.as_secs_f64());
            Ok((lab, d))
        }
        Err(e) => Err(format!("{topology}: {e}\n{}", logs(&lab))),
    }
}

fn logs(lab: &Lab) -> String {
    (1..=lab.len())
        .map(|i| format!("--- n{i} ---\n{}", lab.log_tail(i, 15)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ipv6_of(lab: &Lab, i: usize) -> BenchResult<IpAddr> {
    query_as::<StatusReport>(&lab.control_socket(i), &Request::Status)
        .map(|s| s.ipv6)
        .map_err(|e| format!("status of n{i}: {e}"))
}

/// The pids of the daemons themselves (`ip netns exec` execs into veil; checked).
fn daemon_pids(lab: &mut Lab) -> BenchResult<Vec<u32>> {
    (1..=lab.len())
        .map(|i| {
            let pid = lab
                .daemon_pid(i)
                .ok_or_else(|| format!("n{i}: daemon not running"))?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() != "ip" {
                return Ok(pid);
            }
            // Not exec'd (yet): take its veil child.
            let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            kids.split_whitespace()
                .filter_map(|k| k.parse::<u32>().ok())
                .find(|k| {
                    std::fs::read_to_string(format!("/proc/{k}/comm"))
                        .is_ok_and(|c| c.trim() != "ip")
                })
                .ok_or_else(|| format!("n{i}: pid {pid} is `ip`, with no daemon child"))
        })
        .collect()
}

/// (utime, stime) of `pid` in seconds.
fn cpu_split(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |k: usize| {
        fields
            .get(k)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (tick(11) as f64 / hz, tick(12) as f64 / hz)
}

/// Jiffies of the whole machine from /proc/stat: (user+nice, system, irq+softirq, steal, total).
fn machine_cpu() -> [u64; 5] {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let g = |k: usize| v.get(k).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest is inside user already).
    [g(0) + g(1), g(2), g(5) + g(6), g(7), (0..8).map(g).sum()]
}

/// (utime + stime) of this process, all threads (the TCP and UDP endpoints run here).
fn self_cpu_secs() -> f64 {
    let (u, s) = cpu_split(std::process::id());
    u + s
}

/// Waits (up to `LAB_BENCH_QUIET_WAIT` s, default 30) until the machine is at least 90 %
/// idle over a 2 s sample, so other work on a shared VM does not eat the transfer's CPU.
/// Returns the busy share of the last sample.
fn wait_quiet() -> f64 {
    let limit = Duration::from_secs(env_secs("LAB_BENCH_QUIET_WAIT", 30));
    let start = Instant::now();
    loop {
        let a = machine_cpu();
        std::thread::sleep(Duration::from_secs(2));
        let b = machine_cpu();
        let busy = machine_busy(a, b)["busy"].as_f64().unwrap_or(1.0);
        if busy <= 0.10 || start.elapsed() >= limit {
            if busy > 0.10 {
                eprintln!("machine still {:.0} % busy, measuring anyway", busy * 100.0);
            }
            return busy;
        }
    }
}

/// Share of the machine's CPU time spent on each part of [`machine_cpu`] between two samples.
fn machine_busy(before: [u64; 5], after: [u64; 5]) -> Value {
    let d: Vec<f64> = (0..5)
        .map(|k| after[k].saturating_sub(before[k]) as f64)
        .collect();
    let total = d[4].max(1.0);
    json!({
        "user": d[0] / total,
        "system": d[1] / total,
        "irq_softirq": d[2] / total,
        "steal": d[3] / total,
        "busy": (d[0] + d[1] + d[2] + d[3]) / total,
    })
}

/// CPU seconds (user + system + steal) of the machine not spent by `ours`: other load.
/// irq and softirq time are left out (the kernel does not charge them to a process).
fn others_cpu(before: [u64; 5], after: [u64; 5], ours: f64) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let d = |k: usize| after[k].saturating_sub(before[k]);
    (d(0) + d(1) + d(3)) as f64 / hz - ours
}

/// CPU seconds of every process on the machine, by pid, with its name.
fn all_processes_cpu() -> std::collections::HashMap<u32, (String, f64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Default::default();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let (u, s) = cpu_split(pid);
            (pid, (comm.trim().to_string(), u + s))
        })
        .collect()
}

/// The processes that used the most CPU between two snapshots, except `ours`.
fn top_others(
    before: &std::collections::HashMap<u32, (String, f64)>,
    after: &std::collections::HashMap<u32, (String, f64)>,
    ours: &[u32],
) -> Value {
    let mut used: Vec<(String, f64)> = after
        .iter()
        .filter(|(pid, _)| !ours.contains(pid))
        .map(|(pid, (comm, cpu))| {
            let was = before.get(pid).map_or(0.0, |b| b.1);
            (format!("{comm}[{pid}]"), cpu - was)
        })
        .filter(|(_, d)| *d >= 0.05)
        .collect();
    used.sort_by(|a, b| b.1.total_cmp(&a.1));
    used.truncate(5);
    Value::Array(used.into_iter().map(|(p, d)| json!([p, d])).collect())
}

/// Absolute values of kernel SNMP counters in node `i`'s namespace (`nstat -asz`).
fn nstat(lab: &Lab, i: usize, names: &[&str]) -> Vec<u64> {
    let mut args = vec!["nstat", "-asz"];
    args.extend_from_slice(names);
    let text = lab
        .exec(i, &args)
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    names
        .iter()
        .map(|n| {
            text.lines()
                .filter_map(|l| l.split_once(char::is_whitespace))
                .find(|(k, _)| k == n)
                .and_then(|(_, v)| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        })
        .collect()
}

/// Frames the kernel dropped at node `i`'s packet socket (receive queue full): the `d`
/// field of `ss -0 -a -m`.
fn packet_socket_drops(lab: &Lab, i: usize) -> u64 {
    let text = lab
        .exec(i, &["ss", "-0", "-a", "-m"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.split([',', '(', ')'])
        .filter_map(|f| f.strip_prefix('d')?.parse::<u64>().ok())
        .sum()
}

/// Peak resident set (VmHWM) of `pid` in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `ping -6 -c 20 -i 0.05` from node `a` to `addr`: (min, avg, max) ms and packets received.
fn ping_rtt(lab: &Lab, a: usize, addr: IpAddr) -> BenchResult<Value> {
    let addr_s = addr.to_string();
    let out = lab
        .exec(
            a,
            &["ping", "-6", "-c", "20", "-i", "0.05", "-W", "2", &addr_s],
        )
        .map_err(|e| format!("ping: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rtt = text
        .lines()
        .find_map(|l| {
            l.split_once(" = ")
                .filter(|(k, _)| k.contains("min/avg/max"))
        })
        .map(|(_, v)| {
            v.split(['/', ' '])
                .filter_map(|x| x.parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|v| v.len() >= 3)
        .ok_or_else(|| format!("ping n{a} -> {addr}: no answer\n{text}"))?;
    let received = text
        .lines()
        .find_map(|l| l.split(", ").find_map(|p| p.strip_suffix(" received")))
        .and_then(|n| n.trim().parse::<u64>().ok());
    Ok(json!({ "min_ms": rtt[0], "avg_ms": rtt[1], "max_ms": rtt[2], "received_of_20": received }))
}

/// Ping RTT, then TCP throughput node 1 → `dst` (an address of the last node) with the CPU
/// of `pids` (the daemons carrying it) around it: CPU per GB, peak RSS, machine load. The
/// same measurement for veil and for Yggdrasil.
fn measure_tcp(
    lab: &Lab,
    pids: &[u32],
    dst: IpAddr,
    label: &str,
) -> BenchResult<serde_json::Map<String, Value>> {
    let last = lab.len();
    let ping = ping_rtt(lab, 1, dst)?;
    let busy_before = wait_quiet();
    let mut ours = pids.to_vec();
    ours.push(std::process::id());
    let before: Vec<(f64, f64)> = pids.iter().map(|&p| cpu_split(p)).collect();
    let machine_before = machine_cpu();
    let self_before = self_cpu_secs();
    let procs_before = all_processes_cpu();
    let tp = tcp_throughput(
        lab,
        1,
        last,
        SocketAddr::new(dst, TCP_PORT),
        Duration::from_secs(TCP_SECS),
    )
    .map_err(|e| format!("{label}: tcp: {e}"))?;
    let after: Vec<(f64, f64)> = pids.iter().map(|&p| cpu_split(p)).collect();
    let machine_after = machine_cpu();
    let procs_after = all_processes_cpu();
    let endpoints_cpu = self_cpu_secs() - self_before;
    let machine = machine_busy(machine_before, machine_after);
    if tp.bytes == 0 {
        return Err(format!("{label}: tcp carried nothing"));
    }
    let per_daemon: Vec<Value> = before
        .iter()
        .zip(&after)
        .enumerate()
        .map(|(k, (b, a))| json!({ "node": k + 1, "user_s": a.0 - b.0, "sys_s": a.1 - b.1 }))
        .collect();
    let cpu: f64 = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.0 + a.1) - (b.0 + b.1))
        .sum();
    let gb = tp.bytes as f64 / 1e9;
    let rss: Vec<u64> = pids.iter().map(|&p| peak_rss_kib(p)).collect();
    eprintln!("{label}: {:.0} Mbit/s, cpu {cpu:.2} s", tp.mbit_per_s());
    let v = json!({
        "tcp_mbit_per_s": tp.mbit_per_s(),
        "tcp_bytes": tp.bytes,
        "tcp_secs": tp.elapsed.as_secs_f64(),
        "ping": ping,
        "daemon_cpu_secs": cpu,
        "cpu_secs_per_gb": cpu / gb,
        "cpu_per_daemon": per_daemon,
        "machine_cpu_during_tcp": machine,
        "machine_busy_before": busy_before,
        "endpoints_cpu_secs": endpoints_cpu,
        "top_other_processes": top_others(&procs_before, &procs_after, &ours),
        "others_cpu_secs": others_cpu(machine_before, machine_after, cpu + endpoints_cpu),
        "peak_rss_kib": rss,
        "peak_rss_kib_max": rss.iter().copied().max().unwrap_or(0),
    });
    v.as_object()
        .cloned()
        .ok_or_else(|| format!("{label}: results are not an object"))
}

/// veil's TCP throughput, ping RTT, CPU per GB and peak RSS first→last on `topology`, with
/// the TUN in `tun` mode (and the sender's and receiver's super-packet counters), then
/// Yggdrasil's in the same lab (when it is given and there).
fn path_bench(
    bin: &std::path::Path,
    ygg: Option<&lab_ygg::Yggdrasil>,
    prefix: &str,
    topology: &str,
    tun: TunMode,
) -> BenchResult<Value> {
    let ygg = match ygg {
        Some(lab_ygg::Yggdrasil::Ready {
            bin: ygg_bin, ctl, ..
        }) => Some((ygg_bin, ctl)),
        _ => None,
    };
    let up = Up {
        carry_ipv6: ygg.is_some(),
        tun,
    };
    let (mut lab, converged) = lab_up(bin, prefix, topology, up)?;
    let last = lab.len();
    let dst = ipv6_of(&lab, last)?;
    let pids = daemon_pids(&mut lab)?;
    let tcp_before = nstat(&lab, 1, &["TcpOutSegs", "TcpRetransSegs"]);
    let drops_before: Vec<u64> = (1..=last).map(|i| packet_socket_drops(&lab, i)).collect();
    let label = match tun {
        TunMode::Gro => topology.to_string(),
        TunMode::NoGro => format!("{topology} (TUN writes not coalesced)"),
        TunMode::Plain => format!("{topology} (TUN offloads off)"),
    };
    let mut out =
        measure_tcp(&lab, &pids, dst, &label).map_err(|e| format!("{e}\n{}", logs(&lab)))?;
    let sender: StatsReport = query_as(&lab.control_socket(1), &Request::Stats)
        .map_err(|e| format!("stats of n1: {e}"))?;
    let counter = |k: &str| sender.counters.get(k).copied().unwrap_or(0);
    let receiver: StatsReport = query_as(&lab.control_socket(last), &Request::Stats)
        .map_err(|e| format!("stats of n{last}: {e}"))?;
    let received = |k: &str| receiver.counters.get(k).copied().unwrap_or(0);
    let tcp_after = nstat(&lab, 1, &["TcpOutSegs", "TcpRetransSegs"]);
    let drops: Vec<u64> = (1..=last)
        .zip(&drops_before)
        .map(|(i, b)| packet_socket_drops(&lab, i).saturating_sub(*b))
        .collect();
    let segs = tcp_after[0].saturating_sub(tcp_before[0]);
    let retrans = tcp_after[1].saturating_sub(tcp_before[1]);
    out.insert("topology".into(), json!(topology));
    out.insert("tun_offload".into(), json!(tun != TunMode::Plain));
    out.insert("tun_mode".into(), json!(tun.name()));
    out.insert(
        "receiver_tun_gro_packets".into(),
        json!(received("tun_gro_packets")),
    );
    out.insert(
        "receiver_tun_gro_segments".into(),
        json!(received("tun_gro_segments")),
    );
    out.insert(
        "receiver_tun_write_dropped".into(),
        json!(received("tun_write_dropped")),
    );
    out.insert(
        "sender_tun_gso_packets".into(),
        json!(counter("tun_gso_packets")),
    );
    out.insert(
        "sender_tun_gso_segments".into(),
        json!(counter("tun_gso_segments")),
    );
    out.insert("hops".into(), json!(last - 1));
    out.insert("converged_secs".into(), json!(converged.as_secs_f64()));
    out.insert("tcp_segments_out".into(), json!(segs));
    out.insert("tcp_retransmitted".into(), json!(retrans));
    out.insert("packet_socket_rx_drops".into(), json!(drops));
    if let Some((ygg_bin, ctl)) = ygg {
        let veil = Value::Object(out.clone());
        out.insert(
            "yggdrasil".into(),
            ygg_bench(&lab, ygg_bin, ctl.as_deref(), topology, &veil),
        );
    }
    Ok(Value::Object(out))
}

/// Yggdrasil in `lab` (veil's daemons stay up, idle) at its default TUN MTU and at 1280,
/// one after the other; a run that does not work is recorded as `error`.
fn ygg_bench(
    lab: &Lab,
    bin: &std::path::Path,
    ctl: Option<&std::path::Path>,
    topology: &str,
    veil: &Value,
) -> Value {
    let mut runs = serde_json::Map::new();
    for (key, mtu) in [
        ("default_mtu", None),
        ("mtu_1280", Some(lab_ygg::SMALL_MTU)),
    ] {
        let label = format!("{topology} yggdrasil {key}");
        let run = lab_ygg::start(bin, ctl, lab, mtu).and_then(|(mesh, peers)| {
            let pids = mesh.pids()?;
            let dst = lab_ygg::last_addr(&mesh)?;
            let mut m = measure_tcp(lab, &pids, dst, &label)?;
            m.insert("if_mtu".into(), json!(mesh.if_mtu));
            m.insert("peering".into(), peers);
            Ok(Value::Object(m))
            // `mesh` drops here: its processes are killed before the next run.
        });
        let v = run.unwrap_or_else(|e| {
            eprintln!("{label}: did not work: {e}");
            json!({ "error": e })
        });
        runs.insert(key.into(), v);
    }
    let mut v = Value::Object(runs);
    v["ratios"] = lab_ygg::ratios(veil, &v);
    v
}

/// (bytes_out, control_bytes_out) of every node.
fn out_counters(lab: &Lab) -> BenchResult<Vec<(u64, u64)>> {
    (1..=lab.len())
        .map(|i| {
            let s: StatsReport = query_as(&lab.control_socket(i), &Request::Stats)
                .map_err(|e| format!("stats of n{i}: {e}"))?;
            let c = |k: &str| s.counters.get(k).copied().unwrap_or(0);
            Ok((c("bytes_out"), c("control_bytes_out")))
        })
        .collect()
}

/// Idle bytes/s per node over `IDLE_SECS`, starting `IDLE_SETTLE_SECS` after convergence.
fn idle_bench(bin: &std::path::Path, prefix: &str, topology: &str) -> BenchResult<Value> {
    let (mut lab, converged) = lab_up(bin, prefix, topology, Up::VEIL)?;
    let settle = env_secs("LAB_BENCH_IDLE_SETTLE", IDLE_SETTLE_SECS);
    let window = env_secs("LAB_BENCH_IDLE_SECS", IDLE_SECS);
    eprintln!("{topology}: idle: settle {settle} s, measure {window} s");
    std::thread::sleep(Duration::from_secs(settle));
    let t0 = Instant::now();
    let c0 = out_counters(&lab)?;
    std::thread::sleep(Duration::from_secs(window));
    let c1 = out_counters(&lab)?;
    let secs = t0.elapsed().as_secs_f64();
    let rate = |f: fn(&(u64, u64)) -> u64| -> Vec<f64> {
        c0.iter()
            .zip(&c1)
            .map(|(a, b)| f(b).saturating_sub(f(a)) as f64 / secs)
            .collect()
    };
    let all = rate(|c| c.0);
    let control = rate(|c| c.1);
    let pids = daemon_pids(&mut lab)?;
    let rss: Vec<u64> = pids.iter().map(|&p| peak_rss_kib(p)).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    Ok(json!({
        "topology": topology,
        "converged_secs": converged.as_secs_f64(),
        "settle_secs": settle,
        "window_secs": secs,
        "bytes_out_per_s": all,
        "bytes_out_per_s_mean": mean(&all),
        "bytes_out_per_s_max": max(&all),
        "control_bytes_out_per_s": control,
        "control_bytes_out_per_s_mean": mean(&control),
        "peak_rss_kib": rss,
    }))
}

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Lab node number from a lab MAC (`02:76:6c:xx:xx:xx`, low 24 bits = node).
fn node_of_mac(mac: &str) -> Option<usize> {
    let parts: Vec<&str> = mac.split(':').collect();
    let low = parts.get(3..6)?;
    low.iter().try_fold(0usize, |acc, p| {
        u8::from_str_radix(p, 16)
            .ok()
            .map(|b| (acc << 8) | b as usize)
    })
}

/// Node `from`'s next hop toward the node with overlay address `dst`.
fn next_hop(lab: &Lab, from: usize, dst: IpAddr) -> BenchResult<usize> {
    let origs: Vec<OriginatorReport> = query_as(&lab.control_socket(from), &Request::Originators)
        .map_err(|e| format!("originators of n{from}: {e}"))?;
    origs
        .iter()
        .find(|o| o.ipv6 == dst)
        .and_then(|o| o.next_hop.as_ref())
        .and_then(|h| node_of_mac(&h.mac))
        .ok_or_else(|| format!("n{from} has no next hop toward {dst}"))
}

/// Diamond n1–{n2,n3}–n4: a datagram every 2 ms n1→n4; the link n1 uses is cut 2 s in.
fn reroute_bench(bin: &std::path::Path, prefix: &str) -> BenchResult<Value> {
    let (mut lab, converged) = lab_up(bin, prefix, "diamond", Up::VEIL)?;
    let dst = ipv6_of(&lab, 4)?;
    let via = next_hop(&lab, 1, dst)?;
    let addr = SocketAddr::new(dst, UDP_PORT);
    let (src_ns, dst_ns) = (lab.ns_name(1), lab.ns_name(4));
    let stop = AtomicBool::new(false);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let (arrivals, sent, cut_at) = std::thread::scope(|s| -> BenchResult<_> {
        let stop = &stop;
        let receiver = s.spawn(move || {
            in_netns(&dst_ns, || receive(addr, stop, &ready_tx))
                .map_err(|e| e.to_string())
                .and_then(|r| r)
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "udp receiver did not start".to_string())??;
        let sender = s.spawn(move || {
            in_netns(&src_ns, || send(addr, stop))
                .map_err(|e| e.to_string())
                .and_then(|r| r)
        });
        std::thread::sleep(Duration::from_secs(2));
        let cut_at = Instant::now();
        let cut = lab.cut(1, via).map_err(|e| format!("cut n1-n{via}: {e}"));
        std::thread::sleep(Duration::from_secs(4));
        stop.store(true, Ordering::Relaxed);
        let sent = sender.join().map_err(|_| "udp sender panicked")??;
        let arrivals = receiver.join().map_err(|_| "udp receiver panicked")??;
        cut?;
        Ok((arrivals, sent, cut_at))
    })?;
    if arrivals.is_empty() {
        return Err(format!("diamond: no datagram arrived\n{}", logs(&lab)));
    }
    let gap = arrivals
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default();
    let after_cut = arrivals.iter().filter(|t| **t > cut_at).count();
    let new_via = next_hop(&lab, 1, dst).ok();
    Ok(json!({
        "converged_secs": converged.as_secs_f64(),
        "cut_link": format!("n1-n{via}"),
        "new_next_hop": new_via.map(|v| format!("n{v}")),
        "sent": sent,
        "received": arrivals.len(),
        "received_after_cut": after_cut,
        "longest_gap_ms": gap.as_secs_f64() * 1e3,
    }))
}

/// Counts datagrams until `stop`; returns arrival times.
fn receive(
    addr: SocketAddr,
    stop: &AtomicBool,
    ready: &std::sync::mpsc::Sender<Result<(), String>>,
) -> BenchResult<Vec<Instant>> {
    let sock = match UdpSocket::bind(addr) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(format!("bind {addr}: {e}")));
            return Err(format!("bind {addr}: {e}"));
        }
    };
    let _ = ready.send(Ok(()));
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(8192);
    let mut buf = [0u8; 64];
    // Keep listening a little after the sender stops, for datagrams in flight.
    let mut stopped_at: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            let t = *stopped_at.get_or_insert_with(Instant::now);
            if t.elapsed() > Duration::from_millis(300) {
                break;
            }
        }
        match sock.recv(&mut buf) {
            Ok(_) => times.push(Instant::now()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
    Ok(times)
}

/// Sends one datagram every `FLOW_INTERVAL` until `stop`; returns how many.
fn send(addr: SocketAddr, stop: &AtomicBool) -> BenchResult<u64> {
    let sock = UdpSocket::bind("[::]:0").map_err(|e| format!("bind: {e}"))?;
    let mut next = Instant::now();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // A send error (no route for a moment) is a lost datagram, not a failure.
        let _ = sock.send_to(&seq.to_be_bytes(), addr);
        seq += 1;
        next += FLOW_INTERVAL;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    Ok(seq)
}
