//! The daemon-facing subcommands of `veil`: their options and what they print. Exit codes:
//! 0 success, 1 no answer (ping/traceroute), 2 the daemon could not be reached or refused,
//! and `veil run`'s codes from `daemon::run::DaemonError::exit_code`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

pub use super::query::Query;
use super::{probe, query as q};
use crate::daemon::{logging, run};

/// Options of `veil run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// TOML config file (see docs/operator-guide.md); without it every option has its default.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Mesh interface (repeat for several); replaces the config's `interfaces`.
    #[arg(long = "interface", short = 'i', value_name = "IF")]
    pub interfaces: Vec<String>,
    /// State directory (identity, restart epoch); overrides the config's `state_dir`.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Control socket path; overrides the config's `control_socket`.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// More log output: -v neighbours/routes/addresses, -vv sessions, -vvv everything.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Options of `veil check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The TOML config file to check.
    pub config: PathBuf,
    /// Mesh interface `veil run -i` would be given (repeat); replaces the config's list.
    #[arg(long = "interface", short = 'i', value_name = "IF")]
    pub interfaces: Vec<String>,
}

/// Where to find the daemon, and the output format.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Control socket of the daemon (default: the config's, else /var/run/veilmesh/control.sock).
    #[arg(long, short = 's')]
    pub socket: Option<PathBuf>,
    /// Read the control socket path from this config file.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Print the daemon's JSON (one line) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Options of `veil ping`.
#[derive(Debug, Args)]
pub struct PingArgs {
    /// Overlay IPv6/IPv4 address, or a node id (32 hex digits).
    pub target: String,
    /// Requests to send.
    #[arg(long, short = 'n', default_value_t = 4)]
    pub count: u32,
    /// Seconds between requests.
    #[arg(long, short = 'i', default_value_t = 1.0)]
    pub interval: f64,
    /// Echo payload bytes.
    #[arg(long, short = 'S', default_value_t = 56)]
    pub size: u16,
    /// Seconds to wait for each answer.
    #[arg(long, short = 'W', default_value_t = 1.0)]
    pub timeout: f64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub daemon: QueryArgs,
}

/// Options of `veil traceroute`.
#[derive(Debug, Args)]
pub struct TracerouteArgs {
    /// Overlay IPv6/IPv4 address, or a node id (32 hex digits).
    pub target: String,
    /// Largest hop count tried.
    #[arg(long, short = 'm', default_value_t = 16)]
    pub max_hops: u8,
    /// Probes per hop.
    #[arg(long, short = 'q', default_value_t = 3)]
    pub queries: u8,
    /// Seconds to wait for each answer.
    #[arg(long, short = 'W', default_value_t = 1.0)]
    pub timeout: f64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub daemon: QueryArgs,
}

/// `veil run`.
pub fn run_daemon(args: &RunArgs) -> ExitCode {
    logging::init(args.verbose);
    let opts = run::RunOptions {
        config: args.config.clone(),
        interfaces: args.interfaces.clone(),
        state_dir: args.state_dir.clone(),
        control_socket: args.socket.clone(),
    };
    match run::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("veil run: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `veil check-config`: the checks `veil run` makes of its configuration before it touches
/// anything, with the same messages and exit codes, and nothing created or opened.
pub fn check_config(args: &CheckConfigArgs) -> ExitCode {
    let opts = run::RunOptions {
        config: Some(args.config.clone()),
        interfaces: args.interfaces.clone(),
        ..run::RunOptions::default()
    };
    match run::effective_config(&opts) {
        Ok(cfg) => {
            println!("{}: ok ({})", args.config.display(), cfg.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("veil check-config: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn socket(args: &QueryArgs) -> Result<PathBuf, ExitCode> {
    q::socket_path(args.socket.as_deref(), args.config.as_deref()).map_err(|e| {
        eprintln!("veil: error: {e}");
        ExitCode::from(2)
    })
}

/// `veil status | neighbors | originators | routes | stats`.
pub fn query(which: Query, args: &QueryArgs) -> ExitCode {
    let path = match socket(args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match q::run(which, &path, args.json) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("veil: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() {
        s.clamp(0.0, 3600.0)
    } else {
        1.0
    })
}

fn target(args: &QueryArgs, target: &str) -> Result<(PathBuf, std::net::IpAddr), ExitCode> {
    let path = socket(args)?;
    let addr = probe::resolve(target, &path).map_err(|e| {
        eprintln!("veil: error: {e}");
        ExitCode::from(2)
    })?;
    Ok((path, addr))
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string(value) {
        Ok(j) => println!("{j}"),
        Err(e) => eprintln!("veil: error: {e}"),
    }
}

/// `veil ping`.
pub fn ping(args: &PingArgs) -> ExitCode {
    let (path, addr) = match target(&args.daemon, &args.target) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let opts = probe::PingOptions {
        addr,
        count: args.count.max(1),
        interval: seconds(args.interval),
        size: args.size,
        timeout: seconds(args.timeout),
    };
    let json = args.daemon.json;
    match probe::ping(&path, &opts, |line| {
        if !json {
            println!("{line}")
        }
    }) {
        Ok(summary) => {
            if json {
                print_json(&summary);
            }
            if summary.received > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("veil ping: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `veil traceroute`.
pub fn traceroute(args: &TracerouteArgs) -> ExitCode {
    let (path, addr) = match target(&args.daemon, &args.target) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let json = args.daemon.json;
    let result = probe::traceroute(
        &path,
        addr,
        args.max_hops.max(1),
        args.queries,
        seconds(args.timeout),
        |line| {
            if !json {
                println!("{line}")
            }
        },
    );
    match result {
        Ok(summary) => {
            if json {
                print_json(&summary);
            }
            if summary.reached {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("veil traceroute: error: {e}");
            ExitCode::from(2)
        }
    }
}
