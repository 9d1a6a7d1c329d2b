//! The `veil` command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
    Sim(SimArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Sim(args) => run_sim(&args),
    }
}

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
fn run_with_node(args: &SimArgs) -> Result<sim::SimReport, sim::CliError> {
    let factory = sim::node_factory(args.seed, veilmesh::node::NodeConfig::default());
    sim::run_cli(args, factory)
}
