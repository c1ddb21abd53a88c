//! `nodewright-verify`: the model checks, run deeper than the tests run them.
//!
//! ```text
//! nodewright-verify fence --nodes 3 --depth 14
//! nodewright-verify fence --nodes 2 --depth 12 --bug skip-ack
//! nodewright-verify fence --model agent --depth 16
//! nodewright-verify flow --nodes 3 --resources 1 --depth 400
//! nodewright-verify flow --failures 1 --depth 120
//! nodewright-verify flow --legacy --depth 12 --threads 1
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
use nodewright_verify::flow::legacy::LegacyFlow;
use nodewright_verify::flow::operator::OperatorFlow;

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
    /// The storage-upgrade and migration workflow model (docs/verification.md, "The workflow
    /// model"): the operator's decisions, or with --legacy the legacy script's rules.
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
    #[arg(long, default_value_t = 400)]
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
    /// Operator crashes allowed (between two writes of a turn).
    #[arg(long, default_value_t = 0)]
    crashes: u8,
    /// Node-task failures allowed.
    #[arg(long, default_value_t = 0)]
    failures: u8,
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
    let args = match cli.command {
        Command::Fence(args) => args,
        Command::Flow(args) => return flow(&args),
    };
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

fn flow(a: &FlowArgs) -> ExitCode {
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
