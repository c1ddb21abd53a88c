//! `nodewright-verify`: the model checks, run deeper than the tests run them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nodewright_verify::check::{self, Bounds, Outcome};
use nodewright_verify::flow::legacy::LegacyFlow;
use nodewright_verify::flow::operator::OperatorFlow;

/// Model checks of Nodewright's decisions.
#[derive(Parser)]
#[command(name = "nodewright-verify", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The storage-upgrade and migration workflow model (docs/verification.md, "The workflow model").
    Flow(FlowArgs),
}

#[derive(clap::Args)]
struct FlowArgs {
    /// Nodes (2 or 3).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    nodes: u8,
    /// DRBD resources, each replicated on every node (1 or 2).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    resources: u8,
    /// The longest sequence of steps explored.
    #[arg(long, default_value_t = 60)]
    depth: usize,
    /// Checker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Check the legacy script's rules instead of the operator.
    #[arg(long)]
    legacy: bool,
    /// A Migration requested alongside the StorageUpgrade (checks the storage gate).
    #[arg(long)]
    migration: bool,
    /// The operator's informers lag, each kind on its own.
    #[arg(long)]
    stale: bool,
    /// Operator crashes allowed.
    #[arg(long, default_value_t = 0)]
    crashes: u8,
    /// Node-task failures allowed.
    #[arg(long, default_value_t = 0)]
    failures: u8,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Flow(a) => {
            let bounds = Bounds {
                depth: a.depth,
                threads: a.threads,
            };
            let (nodes, resources) = (usize::from(a.nodes), usize::from(a.resources));
            let outcome = if a.legacy {
                println!(
                    "legacy script rules: {nodes} nodes, {resources} resources, depth {}",
                    a.depth
                );
                check::run(LegacyFlow { nodes, resources }, bounds)
            } else {
                let mut m = OperatorFlow::new(nodes, resources);
                m.migration = a.migration;
                m.stale_reads = a.stale;
                m.crashes = a.crashes;
                m.failures = a.failures;
                println!(
                    "operator: {nodes} nodes, {resources} resources, migration {}, stale reads {}, \
                     crashes {}, failures {}, depth {}",
                    a.migration, a.stale, a.crashes, a.failures, a.depth
                );
                check::run(m, bounds)
            };
            report(&outcome)
        }
    }
}

fn report(o: &Outcome) -> ExitCode {
    println!(
        "{} unique states ({} generated), depth reached {}, {:.1}s",
        o.unique_states,
        o.states,
        o.max_depth,
        o.elapsed.as_secs_f64()
    );
    for t in &o.reached {
        println!("reached: {}", t.property);
    }
    for p in &o.unreached {
        println!("not reached within the bounds: {p}");
    }
    for t in &o.counterexamples {
        println!("\n{t}");
    }
    if o.counterexamples.is_empty() {
        println!("no counterexample");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
