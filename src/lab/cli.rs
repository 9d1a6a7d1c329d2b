//! `veil lab`: arguments and the commands. The lead wires `Command::Lab(LabArgs)` into
//! main.rs and calls [`run`] with the path of the running `veil` binary.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::show::{farthest_pair, node_status, render_table, wait_converged};
use super::{tcp_throughput, Lab, LabError, LabOptions, DEFAULT_PREFIX};

/// Port of the built-in TCP transfer.
const TCP_PORT: u16 = 5201;
/// How long the built-in TCP transfer sends.
const TCP_SECS: u64 = 5;
/// Shown after the options of `veil lab --help`.
const AFTER_HELP: &str = "\
Each node is a network namespace with one interface, wlan0, on a shared medium (a bridge \
with an nftables filter) that carries a veilmesh frame only between nodes in radio range \
of the topology, with per-link loss.

Without a subcommand: bring the lab up, wait until every node knows every other, print \
the nodes, ping and measure TCP across the longest path, then wait for Ctrl-C (or \
--duration) and remove everything. See docs/lab.md.";
/// Log lines shown per node when something fails.
const LOG_TAIL: usize = 15;

/// Build an emulated airspace (needs root): one network namespace per node, a real
/// `veil run` daemon in each.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = AFTER_HELP)]
pub struct LabArgs {
    /// What to do (default: a complete demonstration run, see above).
    #[command(subcommand)]
    pub command: Option<LabCommand>,
    /// The lab to build.
    #[command(flatten)]
    pub up: UpArgs,
    /// Tear down after this long instead of waiting for Ctrl-C, e.g. 30s, 2m (CI runs).
    #[arg(long, value_parser = parse_duration, value_name = "TIME")]
    pub duration: Option<Duration>,
}

/// What lab to build.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Number of nodes in a line (same as --topology line:N). Default topology: line:5.
    #[arg(long, short = 'n', value_name = "N", conflicts_with = "topology")]
    pub nodes: Option<usize>,
    /// Who hears whom: line:N, ring:N, grid:WxH, diamond, random:N or random:N:SEED.
    #[arg(long, short = 't', value_name = "SPEC")]
    pub topology: Option<String>,
    /// Frame loss of every link in percent (0-100), each direction independently.
    #[arg(long, value_name = "PCT", default_value_t = 0.0)]
    pub loss: f64,
    /// Seed for random:N topologies (recorded in lab.json).
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Run the daemons with this command instead of this `veil` (split at spaces), e.g.
    /// 'qemu-mipsel-static target/mipsel-unknown-linux-musl/release/veil'.
    #[arg(long, value_name = "CMD")]
    pub daemon_cmd: Option<String>,
    /// How long to wait for every node to know every other before giving up.
    #[arg(long, value_name = "TIME", default_value = "30s", value_parser = parse_duration)]
    pub converge_timeout: Duration,
    /// Which lab.
    #[command(flatten)]
    pub prefix: PrefixArg,
}

/// Which lab a command means.
#[derive(Debug, Clone, Args)]
pub struct PrefixArg {
    /// Name prefix of the lab's namespaces (≤ 10 of a-z 0-9 - _); labs with different
    /// prefixes can run side by side.
    #[arg(long, value_name = "P", default_value = DEFAULT_PREFIX)]
    pub prefix: String,
}

/// Two nodes of a link.
#[derive(Debug, Clone, Args)]
pub struct LinkArgs {
    /// One end (node number, 1-based).
    pub a: usize,
    /// The other end.
    pub b: usize,
    /// Which lab.
    #[command(flatten)]
    pub prefix: PrefixArg,
}

/// `veil lab` subcommands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Bring a lab up and leave it running in the background (`veil lab down` removes it).
    Up(UpArgs),
    /// Run a command inside node N's namespace, e.g. `veil lab exec 1 -- ping -6 fd…`.
    Exec {
        /// Node number (1-based).
        node: usize,
        /// The command and its arguments (after `--`).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
        /// Which lab.
        #[command(flatten)]
        prefix: PrefixArg,
    },
    /// Cut the link between nodes A and B: nothing crosses it until `heal`.
    Cut(LinkArgs),
    /// Restore a cut link (with the loss it had).
    Heal(LinkArgs),
    /// Set the frame loss of the link between nodes A and B, in percent.
    Loss {
        /// One end.
        a: usize,
        /// The other end.
        b: usize,
        /// Loss in percent (0-100), each direction.
        pct: f64,
        /// Which lab.
        #[command(flatten)]
        prefix: PrefixArg,
    },
    /// Show every node (namespace, addresses, neighbours) and every link.
    Status(PrefixArg),
    /// Stop the daemons and remove the lab's namespaces and files (also leftovers).
    Down(PrefixArg),
}

/// Runs `veil lab`; `veil_bin` is the binary the daemons and status queries run.
pub fn run(args: &LabArgs, veil_bin: &Path) -> ExitCode {
    let result = match &args.command {
        None => demo(&args.up, args.duration, veil_bin),
        Some(LabCommand::Up(up)) => up_and_leave(up, veil_bin),
        Some(LabCommand::Exec { node, cmd, prefix }) => return exec(&prefix.prefix, *node, cmd),
        Some(LabCommand::Cut(l)) => change(&l.prefix.prefix, |lab| lab.cut(l.a, l.b))
            .map(|()| println!("link {}-{} cut", l.a, l.b)),
        Some(LabCommand::Heal(l)) => change(&l.prefix.prefix, |lab| lab.heal(l.a, l.b))
            .map(|()| println!("link {}-{} healed", l.a, l.b)),
        Some(LabCommand::Loss { a, b, pct, prefix }) => {
            change(&prefix.prefix, |lab| lab.set_loss(*a, *b, *pct))
                .map(|()| println!("link {a}-{b}: {pct}% loss"))
        }
        Some(LabCommand::Status(p)) => status(&p.prefix),
        Some(LabCommand::Down(p)) => Lab::down_prefix(&p.prefix).map(|n| {
            println!("lab {:?} down: {n} namespaces removed", p.prefix);
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("veil lab: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn options(up: &UpArgs, veil_bin: &Path) -> LabOptions {
    let topology = match (&up.topology, up.nodes) {
        (Some(t), _) => t.clone(),
        (None, Some(n)) => format!("line:{n}"),
        (None, None) => "line:5".to_string(),
    };
    LabOptions {
        prefix: up.prefix.prefix.clone(),
        topology,
        loss_pct: up.loss,
        seed: up.seed,
        veil_bin: veil_bin.to_path_buf(),
        daemon_cmd: up
            .daemon_cmd
            .as_deref()
            .map(|c| c.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        start_daemons: true,
        ..LabOptions::default()
    }
}

/// Brings the lab up and waits for convergence; on failure prints the daemon logs.
fn up_converged(up: &UpArgs, veil_bin: &Path, stop: &dyn Fn() -> bool) -> Result<Lab, LabError> {
    let lab = Lab::up(&options(up, veil_bin))?;
    println!(
        "lab {:?}: {} ({} nodes), loss {}%, daemons started; waiting for convergence…",
        lab.prefix(),
        lab.state().topology,
        lab.len(),
        up.loss
    );
    match wait_converged(&lab, up.converge_timeout, stop) {
        Ok(t) => println!("converged after {:.1} s", t.as_secs_f64()),
        Err(e) => {
            eprintln!("veil lab: {e}");
            if !stop() {
                print_logs(&lab);
            }
            return Err(LabError::State {
                path: lab.state().run_dir.clone(),
                problem: format!("the mesh did not converge ({e})"),
            });
        }
    }
    Ok(lab)
}

fn print_logs(lab: &Lab) {
    for i in 1..=lab.len() {
        eprintln!(
            "--- n{i}: {} (last {LOG_TAIL} lines)",
            lab.log_path(i).display()
        );
        eprintln!("{}", lab.log_tail(i, LOG_TAIL));
    }
}

fn demo(up: &UpArgs, duration: Option<Duration>, veil_bin: &Path) -> Result<(), LabError> {
    let stop = watch_signals();
    let is_stopped = || stop.load(Ordering::Relaxed);
    let lab = up_converged(up, veil_bin, &is_stopped)?;
    let rows: Vec<_> = (1..=lab.len()).map(|i| node_status(&lab, i)).collect();
    print!("{}", render_table(&rows));
    let (a, b) = farthest_pair(lab.state());
    let target = rows
        .get(b - 1)
        .and_then(|r| r.ipv6.as_deref())
        .and_then(|s| s.parse::<IpAddr>().ok());
    let pinged = match target {
        Some(addr) => demo_traffic(&lab, a, b, addr),
        None => {
            eprintln!("n{b} reported no overlay IPv6 address: no ping, no TCP");
            false
        }
    };
    if !pinged {
        print_logs(&lab);
        lab.down();
        return Err(LabError::PingFailed { from: a, to: b });
    }
    match duration {
        Some(d) => println!(
            "tearing down after {} s (Ctrl-C to stop sooner)",
            d.as_secs_f64()
        ),
        None => println!("lab running; Ctrl-C to tear it down"),
    }
    let deadline = duration.map(|d| std::time::Instant::now() + d);
    let mut live = LiveTable::new(&lab);
    while !is_stopped() && deadline.is_none_or(|d| std::time::Instant::now() < d) {
        live.refresh(&lab);
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("tearing down lab {:?}", lab.prefix());
    lab.down();
    Ok(())
}

/// The node table redrawn in place every 2 s while the lab runs (only on a terminal: a log
/// or a pipe gets the table once, above).
struct LiveTable {
    on: bool,
    drawn_lines: usize,
    next: std::time::Instant,
}

impl LiveTable {
    fn new(lab: &Lab) -> LiveTable {
        use std::io::IsTerminal;
        let on = std::io::stdout().is_terminal();
        if on {
            println!("\nlive view of the {} daemons (every 2 s):", lab.len());
        }
        LiveTable {
            on,
            drawn_lines: 0,
            next: std::time::Instant::now(),
        }
    }

    fn refresh(&mut self, lab: &Lab) {
        if !self.on || std::time::Instant::now() < self.next {
            return;
        }
        self.next = std::time::Instant::now() + Duration::from_secs(2);
        let rows: Vec<_> = (1..=lab.len()).map(|i| node_status(lab, i)).collect();
        let table = render_table(&rows);
        // Move up over the previous drawing and overwrite it line by line.
        let mut out = String::new();
        if self.drawn_lines > 0 {
            out += &format!("\x1b[{}A", self.drawn_lines);
        }
        for line in table.lines() {
            out += &format!("\x1b[2K{line}\n");
        }
        self.drawn_lines = table.lines().count();
        print!("{out}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
}

/// Ping then TCP from node `a` to `b`; whether the ping got an answer (TCP may fail on
/// lossy links, which the demo explains rather than fails on).
fn demo_traffic(lab: &Lab, a: usize, b: usize, addr: IpAddr) -> bool {
    println!("\nping -6 -c 3 n{a} -> n{b} ({addr}):");
    let addr_s = addr.to_string();
    let pinged = match lab.exec(a, &["ping", "-6", "-c", "3", "-W", "2", &addr_s]) {
        Ok(out) => {
            print!("{}", String::from_utf8_lossy(&out.stdout));
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            out.status.success()
        }
        Err(e) => {
            eprintln!("ping: {e}");
            false
        }
    };
    println!("\nTCP n{a} -> n{b} [{addr}]:{TCP_PORT} for {TCP_SECS} s:");
    let to = SocketAddr::new(addr, TCP_PORT);
    match tcp_throughput(lab, a, b, to, Duration::from_secs(TCP_SECS)) {
        Ok(t) => println!(
            "  {:.1} Mbit/s ({} bytes in {:.2} s)",
            t.mbit_per_s(),
            t.bytes,
            t.elapsed.as_secs_f64()
        ),
        Err(e) => {
            eprintln!("  TCP transfer failed: {e}");
            if lab.state().links.iter().any(|l| l.loss_permille > 0) {
                eprintln!(
                    "  (the lab drops frames on lossy links without link-layer retries, which \
                     real wifi does for unicast: TCP stalls and backs off at high loss)"
                );
            }
        }
    }
    pinged
}

/// Sets the returned flag on SIGINT or SIGTERM (the handlers are in place on return).
fn watch_signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let set = flag.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            let _ = ready_tx.send(());
            return;
        };
        rt.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let int = signal(SignalKind::interrupt());
            let term = signal(SignalKind::terminate());
            let _ = ready_tx.send(());
            let (Ok(mut int), Ok(mut term)) = (int, term) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            set.store(true, Ordering::Relaxed);
        });
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(5));
    flag
}

fn up_and_leave(up: &UpArgs, veil_bin: &Path) -> Result<(), LabError> {
    let lab = up_converged(up, veil_bin, &|| false)?;
    let rows: Vec<_> = (1..=lab.len()).map(|i| node_status(&lab, i)).collect();
    print!("{}", render_table(&rows));
    let p = &up.prefix.prefix;
    let flag = if p == DEFAULT_PREFIX {
        String::new()
    } else {
        format!(" --prefix {p}")
    };
    let state = lab.into_persistent();
    println!("\nlab {p:?} is up; files in {}/", state.run_dir.display());
    let hints = [
        (format!("veil lab status{flag}"), "nodes, addresses, links"),
        (
            format!("veil lab exec{flag} 1 -- ping -6 ADDR"),
            "run a command in node 1",
        ),
        (
            format!("veil lab cut{flag} 1 2"),
            "cut a link (heal / loss A B PCT)",
        ),
        (
            format!("veil lab down{flag}"),
            "stop the daemons, remove everything",
        ),
    ];
    for (cmd, what) in hints {
        println!("  {cmd:<48} {what}");
    }
    Ok(())
}

fn exec(prefix: &str, node: usize, cmd: &[String]) -> ExitCode {
    let run = || -> Result<ExitCode, LabError> {
        let lab = Lab::attach(prefix)?;
        let (program, rest) = cmd.split_first().ok_or_else(|| LabError::Spawn {
            cmd: "(empty command)".to_string(),
            source: std::io::ErrorKind::InvalidInput.into(),
        })?;
        let mut c = lab.command_in(node, program)?;
        let shown = format!("{c:?}");
        let status = c
            .args(rest)
            .status()
            .map_err(|source| LabError::Spawn { cmd: shown, source })?;
        let code = status.code().unwrap_or(1).clamp(0, 255) as u8;
        Ok(ExitCode::from(code))
    };
    run().unwrap_or_else(|e| {
        eprintln!("veil lab: error: {e}");
        ExitCode::FAILURE
    })
}

fn change(prefix: &str, f: impl FnOnce(&mut Lab) -> Result<(), LabError>) -> Result<(), LabError> {
    let mut lab = Lab::attach(prefix)?;
    f(&mut lab)
}

fn status(prefix: &str) -> Result<(), LabError> {
    let lab = Lab::attach(prefix)?;
    let s = lab.state();
    println!(
        "lab {prefix:?}: {} ({} nodes), run dir {}",
        s.topology,
        s.nodes,
        s.run_dir.display()
    );
    let rows: Vec<_> = (1..=lab.len()).map(|i| node_status(&lab, i)).collect();
    print!("{}", render_table(&rows));
    let links: Vec<String> = s
        .links
        .iter()
        .map(|l| match (l.cut, l.loss_permille) {
            (true, _) => format!("{}-{} CUT", l.a, l.b),
            (false, 0) => format!("{}-{}", l.a, l.b),
            (false, p) => format!("{}-{} {}%", l.a, l.b, f64::from(p) / 10.0),
        })
        .collect();
    println!("links: {}", links.join(", "));
    Ok(())
}

/// Parses `90`, `90s`, `500ms`, `2m` or `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a time such as 30s, 500ms, 2m"))?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1000.0,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Top {
        #[command(flatten)]
        lab: LabArgs,
    }

    fn parse(args: &[&str]) -> Result<LabArgs, clap::Error> {
        Top::try_parse_from(std::iter::once("veil-lab").chain(args.iter().copied())).map(|t| t.lab)
    }

    #[test]
    fn a_daemon_command_is_split_at_spaces() {
        let a = parse(&["--daemon-cmd", "qemu-mipsel-static  /t/veil"]).unwrap();
        let o = options(&a.up, Path::new("/bin/veil"));
        assert_eq!(o.daemon_cmd, ["qemu-mipsel-static", "/t/veil"]);
        assert_eq!(o.veil_bin, Path::new("/bin/veil"));
        let plain = options(&parse(&[]).unwrap().up, Path::new("/bin/veil"));
        assert!(plain.daemon_cmd.is_empty());
    }

    #[test]
    fn plain_run_options_and_conflicts() {
        let a = parse(&[]).unwrap();
        assert!(a.command.is_none());
        let o = options(&a.up, Path::new("/bin/veil"));
        assert_eq!((o.topology.as_str(), o.prefix.as_str()), ("line:5", "vl-"));
        let a = parse(&["--nodes", "3", "--loss", "10", "--duration", "20s"]).unwrap();
        assert_eq!(options(&a.up, Path::new("v")).topology, "line:3");
        assert_eq!(a.duration, Some(Duration::from_secs(20)));
        assert_eq!(options(&a.up, Path::new("v")).loss_pct, 10.0);
        assert!(parse(&["--nodes", "3", "--topology", "ring:4"]).is_err());
        let a = parse(&["--topology", "grid:2x2", "--prefix", "x-"]).unwrap();
        assert_eq!(options(&a.up, Path::new("v")).topology, "grid:2x2");
        assert_eq!(options(&a.up, Path::new("v")).prefix, "x-");
    }

    #[test]
    fn subcommands_parse() {
        let a = parse(&["exec", "2", "--", "ping", "-6", "-c", "1", "fd00::1"]).unwrap();
        match a.command {
            Some(LabCommand::Exec { node, cmd, prefix }) => {
                assert_eq!(node, 2);
                assert_eq!(cmd, ["ping", "-6", "-c", "1", "fd00::1"]);
                assert_eq!(prefix.prefix, "vl-");
            }
            other => panic!("{other:?}"),
        }
        let a = parse(&["loss", "1", "2", "12.5", "--prefix", "t1-"]).unwrap();
        assert!(matches!(a.command, Some(LabCommand::Loss { a: 1, b: 2, pct, .. }) if pct == 12.5));
        assert!(matches!(
            parse(&["cut", "1", "2"]).unwrap().command,
            Some(LabCommand::Cut(_))
        ));
        assert!(
            matches!(parse(&["down", "--prefix", "q-"]).unwrap().command, Some(LabCommand::Down(p)) if p.prefix == "q-")
        );
        assert!(
            matches!(parse(&["up", "-n", "4"]).unwrap().command, Some(LabCommand::Up(u)) if u.nodes == Some(4))
        );
        assert!(parse(&["exec", "2"]).is_err());
        assert!(parse(&["cut", "1"]).is_err());
    }

    #[test]
    fn help_describes_the_plain_run_even_under_a_variant_doc_comment() {
        use clap::CommandFactory;
        #[derive(Debug, Parser)]
        struct Veil {
            #[command(subcommand)]
            cmd: Sub,
        }
        #[derive(Debug, clap::Subcommand)]
        enum Sub {
            /// Lab.
            Lab(LabArgs),
        }
        let mut c = Veil::command();
        let help = c.find_subcommand_mut("lab").unwrap().render_long_help();
        let help = help.to_string();
        assert!(help.contains("wait for Ctrl-C"), "{help}");
        assert!(
            help.contains("--duration <TIME>") && help.contains("exec"),
            "{help}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5d").unwrap_err().contains("unit"));
        assert!(parse_duration("-1").is_err());
    }
}
