//! The `veil` command.

use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(feature = "completions")]
use clap::CommandFactory;
use clap::{Args, Parser, Subcommand};
use veilmesh::cli::commands::{
    self, CheckConfigArgs, PingArgs, QueryArgs, RunArgs, TracerouteArgs,
};
use veilmesh::cli::identity;
use veilmesh::daemon::identity_file;
#[cfg(feature = "sim")]
use veilmesh::sim::{self, mock, SimArgs};

/// veilmesh: anonymous layer-2 mesh routing.
#[derive(Debug, Parser)]
#[command(name = "veil", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate a mesh of nodes over a modelled radio medium and report how it routes.
    #[cfg(feature = "sim")]
    Sim(SimArgs),
    /// Create a node identity (ed25519 + x25519 keys) in a file only its owner can read.
    Keygen(IdArgs),
    /// Show a node identity: public keys, node id and overlay address on a mesh.
    Id(IdArgs),
    /// Run the daemon on mesh interfaces (needs CAP_NET_RAW and CAP_NET_ADMIN).
    Run(RunArgs),
    /// Check a config file as `veil run` would, with no side effects (exit 0 when it is good).
    CheckConfig(CheckConfigArgs),
    /// The local node: id, overlay addresses, interfaces, counts.
    Status(QueryArgs),
    /// Neighbours: interface, MAC, node, link quality both ways, cost, last seen.
    Neighbors(QueryArgs),
    /// Originators: every node known, its addresses, metric, next hop and backup.
    Originators(QueryArgs),
    /// Routes: overlay destinations and the neighbour they are sent to.
    Routes(QueryArgs),
    /// Counters: traffic, and drops by reason.
    Stats(QueryArgs),
    /// Onion circuits: ours (relays, ephemeral address, build time, RTT, cells) and relayed.
    Circuits(QueryArgs),
    /// Ping an overlay address (or node id) over the mesh.
    Ping(PingArgs),
    /// Show the relays on the path to an overlay address (or node id).
    Traceroute(TracerouteArgs),
    /// Run a real mesh of daemons in network namespaces on this machine (needs root).
    #[cfg(feature = "lab")]
    Lab(veilmesh::lab::cli::LabArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[cfg(feature = "completions")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Options of `veil keygen` and `veil id`.
#[derive(Debug, Args)]
struct IdArgs {
    /// Identity file.
    #[arg(long, short = 'i', default_value = "identity")]
    identity: PathBuf,
    /// Mesh name (fixes the overlay /48 prefix).
    #[arg(long, default_value = "veilmesh")]
    mesh: String,
    /// keygen: replace an existing identity (the node's addresses change).
    #[arg(long)]
    force: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    veilmesh::cli::panic::abort_on_panic();
    match Cli::parse().command {
        #[cfg(feature = "sim")]
        Command::Sim(args) => run_sim(&args),
        Command::Keygen(args) => run_identity(&args, true),
        Command::Id(args) => run_identity(&args, false),
        Command::Run(args) => commands::run_daemon(&args),
        Command::CheckConfig(args) => commands::check_config(&args),
        Command::Status(args) => commands::query(commands::Query::Status, &args),
        Command::Neighbors(args) => commands::query(commands::Query::Neighbors, &args),
        Command::Originators(args) => commands::query(commands::Query::Originators, &args),
        Command::Routes(args) => commands::query(commands::Query::Routes, &args),
        Command::Stats(args) => commands::query(commands::Query::Stats, &args),
        Command::Circuits(args) => commands::query(commands::Query::Circuits, &args),
        Command::Ping(args) => commands::ping(&args),
        Command::Traceroute(args) => commands::traceroute(&args),
        #[cfg(feature = "lab")]
        Command::Lab(args) => {
            let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("veil"));
            veilmesh::lab::cli::run(&args, &me)
        }
        #[cfg(feature = "completions")]
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "veil", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

fn run_identity(args: &IdArgs, create: bool) -> ExitCode {
    let loaded = if create {
        identity_file::keygen(&args.identity, args.force)
    } else {
        identity_file::load(&args.identity)
    };
    match loaded {
        Ok(id) => {
            let info = identity::info(&id, &args.mesh);
            if args.json {
                match serde_json::to_string(&info) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("veil: error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", info.render_text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("veil: error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(feature = "sim")]
fn run_sim(args: &SimArgs) -> ExitCode {
    // The wall clock is read here, in the shell, never inside the simulator.
    let started = std::time::Instant::now();
    let result = if args.mock_host {
        sim::run_cli(
            args,
            mock::flood_factory(args.seed, mock::FloodConfig::default()),
        )
    } else {
        run_with_node(args)
    };
    match result {
        Ok(mut report) => {
            report.wall_time_s = Some(started.elapsed().as_secs_f64());
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.render_text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("veil sim: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `veil sim` with the protocol node as the host.
#[cfg(feature = "sim")]
fn run_with_node(args: &SimArgs) -> Result<sim::SimReport, sim::CliError> {
    let cfg = veilmesh::node::NodeConfig {
        circuits: args.circuits,
        ..veilmesh::node::NodeConfig::default()
    };
    let factory = sim::node_factory(args.seed, cfg);
    sim::run_cli(args, factory)
}
