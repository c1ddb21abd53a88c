//! `nodewright-verify`: the model checks, run deeper than the tests run them.
//!
//! ```text
//! nodewright-verify fence --nodes 3 --depth 14
//! nodewright-verify fence --nodes 2 --depth 12 --bug skip-ack
//! nodewright-verify fence --model agent --depth 16
//! ```
//!
//! Prints the state counts, the time, every counterexample as numbered actor steps, and the
//! `sometimes` properties the bounds did not reach. Exits 1 when an `always` property failed.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use nodewright_verify::check::{self, Bounds, Outcome};
use nodewright_verify::fence::Bug;
use nodewright_verify::fence::agent::AgentModel;
use nodewright_verify::fence::takeover::TakeoverModel;

#[derive(Parser)]
#[command(name = "nodewright-verify", about = "Model checks of Nodewright's decisions")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The takeover, leadership and node-agent models.
    Fence(FenceArgs),
}

#[derive(clap::Args)]
struct FenceArgs {
    /// Which model: the scripts and operator replicas (takeover), or a node's agents (agent).
    #[arg(long, value_enum, default_value_t = FenceModel::Takeover)]
    model: FenceModel,
    /// Nodes, each with a legacy script (takeover model).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=4))]
    nodes: u8,
    /// The longest sequence of steps explored.
    #[arg(long, default_value_t = 12)]
    depth: usize,
    /// Cluster time stops after this many ticks of 5 s (takeover model).
    #[arg(long, default_value_t = 3)]
    ticks: u8,
    /// Checker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seed a bug into the fence, to see the check find it.
    #[arg(long, value_enum)]
    bug: Option<BugArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum FenceModel {
    Takeover,
    Agent,
}

#[derive(Clone, Copy, ValueEnum)]
enum BugArg {
    /// A script silent for longer than a threshold by the operator's clock counts as gone.
    ClockLiveness,
    /// The operator acts as soon as the mode is operator, without the acknowledgement.
    SkipAck,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Fence(args) = cli.command;
    let bounds = Bounds {
        depth: args.depth,
        threads: args.threads,
    };
    let outcome = match args.model {
        FenceModel::Takeover => {
            let bug = args.bug.map(|b| match b {
                BugArg::ClockLiveness => Bug::ClockLiveness,
                BugArg::SkipAck => Bug::SkipAck,
            });
            println!(
                "takeover model: {} nodes, 2 operator replicas, depth {}, {} ticks, fence: {}",
                args.nodes,
                args.depth,
                args.ticks,
                bug.map_or("the product's".to_owned(), |b| format!("SEEDED BUG {b:?}"))
            );
            check::run(
                TakeoverModel::new(usize::from(args.nodes), args.ticks, bug),
                bounds,
            )
        }
        FenceModel::Agent => {
            if args.bug.is_some() {
                eprintln!("--bug applies to the takeover model only");
                return ExitCode::from(2);
            }
            println!("agent model: one node, two agent pods, depth {}", args.depth);
            check::run(AgentModel::new(), bounds)
        }
    };
    report(&outcome)
}

fn report(o: &Outcome) -> ExitCode {
    println!(
        "{} unique states ({} generated), depth reached {}, {:.1} s",
        o.unique_states,
        o.states,
        o.max_depth,
        o.elapsed.as_secs_f64()
    );
    for t in &o.reached {
        println!("reached: {}", t.property);
    }
    for p in &o.unreached {
        println!("NOT reached within the bounds: {p}");
    }
    for t in &o.counterexamples {
        println!();
        print!("{t}");
    }
    if o.counterexamples.is_empty() {
        println!("no property fails within the bounds");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
