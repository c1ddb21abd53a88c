//! `nodewright`: the command-line entry point. It parses arguments and hands each subcommand to
//! its module; nothing else lives here.

mod agent;
mod audit;
mod bridge;
mod check;
mod cluster;
mod operator;
mod parse;
mod ui;

use clap::{Parser, Subcommand};

/// jemalloc rather than the system allocator: the bridge and the operator are long-running and
/// hold many small allocations (one index entry and one observation per node) among short-lived
/// ones (watch events, writes). With glibc's malloc a site of 5,000 nodes kept about a third more
/// resident memory than the live heap; jemalloc returns freed pages and kept the bridge's resident
/// memory about 25 % lower, at less CPU (docs/performance.md, "Bridge at scale").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "nodewright",
    version,
    about = "Nodewright: lifecycle of edge storage clusters on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: nodewright_kit::logging::LogArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node agent on one node: claim its NodeTasks, run their host steps, report the results.
    Agent(Box<agent::Args>),
    /// The audit trail: receive the API server's audit webhook (serve), print (log) and verify the log.
    Audit(Box<audit::Args>),
    /// Run the read-only observation bridge against a cluster, or once over an offline bundle.
    Bridge(Box<bridge::Args>),
    /// GET each URL and exit non-zero, saying which and why, unless every one answers 2xx (the chart's `helm test`).
    Check(check::Args),
    /// Print every Nodewright CustomResourceDefinition as YAML.
    Crds,
    /// Run one command in the host's root file system (the agent's launcher for host tools).
    #[command(hide = true)]
    HostExec(HostExecArgs),
    /// Run the parity controllers: project the takeover, own the workflows in operator mode, record shadow divergences.
    Operator(Box<operator::Args>),
    /// Parse a host-tool output or legacy artefact and print it as typed JSON.
    Parse(parse::Args),
    /// Serve the read-only web UI: sites, nodes, workflows and the takeover, live.
    Ui(Box<ui::Args>),
}

/// Arguments of `nodewright host-exec`: what the agent starts, once per host command, when its
/// commands run in the host's root (`nodewright agent --host-commands host-root`).
#[derive(clap::Args)]
struct HostExecArgs {
    /// Where the host's root file system is mounted.
    #[arg(long)]
    root: std::path::PathBuf,
    /// The command and its arguments, as the host's tools take them.
    #[arg(last = true, required = true)]
    argv: Vec<std::ffi::OsString>,
}

/// Writes to standard output; a reader that stops early (`| head`) is not an error.
fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::HostExec(args) => {
            // Returns only when the command could not be executed; its status is chroot(1)'s.
            let (code, message) = nodewright_agent_shim::host::exec_in_root(&args.root, &args.argv);
            eprint!("nodewright {message}");
            return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
        Command::Crds => nodewright_api::crds_yaml()
            .map(|yaml| out(&yaml))
            .map_err(anyhow::Error::from),
        Command::Agent(args) => agent::run(*args, &cli.log),
        Command::Audit(args) => audit::run(*args, &cli.log),
        Command::Bridge(args) => bridge::run(*args, &cli.log),
        Command::Check(args) => check::run(args),
        Command::Operator(args) => operator::run(*args, &cli.log),
        Command::Parse(args) => parse::run(args),
        Command::Ui(args) => ui::run(*args, &cli.log),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A command that logs as JSON ends with a JSON line too, so that a pipeline reads
            // why it stopped; otherwise one plain line.
            match nodewright_kit::logging::installed_format() {
                Some(nodewright_kit::logging::LogFormat::Json) => {
                    tracing::error!(error = format!("{e:#}"), "nodewright stopped with an error");
                }
                _ => eprintln!("nodewright: {e:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}
