//! `nodewright agent`: the node agent on one node (`--kubeconfig`, or in-cluster configuration)
//! until interrupted. It claims the `NodeTask`s of its own node in `--namespace`, runs their host
//! steps with real commands, journals them under `--state-dir` and reports each result in the
//! task's status, and publishes the host's facts as the node's `NodeFacts`. Everything it does
//! lives in `nodewright-agent-shim`; this module only wires the
//! arguments to it.

use nodewright_kit::logging::LogArgs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use nodewright_agent_shim::facts::PublishPolicy;
use nodewright_agent_shim::{AgentOptions, FactsOptions, ProcessHost};

/// Arguments of `nodewright agent`.
#[derive(clap::Args)]
pub struct Args {
    /// The node this agent runs on; it acts on this node's NodeTasks only (default: $NODE_NAME,
    /// which the chart sets from the pod's spec.nodeName).
    #[arg(long)]
    node: Option<String>,
    /// Namespace of the NodeTasks.
    #[arg(long, default_value = "nodewright-system")]
    namespace: String,
    /// Name of this agent's pod, recorded as the claimer of a task (default: $POD_NAME, then the
    /// host name).
    #[arg(long)]
    pod_name: Option<String>,
    /// Directory of the agent's journal; a host directory, so that it survives the pod and a reboot.
    #[arg(long, default_value = "/var/lib/nodewright-agent")]
    state_dir: PathBuf,
    /// Kubeconfig of the cluster (default: in-cluster configuration, then $KUBECONFIG).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Seconds one host command may run before it is killed.
    #[arg(long, default_value_t = 300)]
    command_timeout_seconds: u64,
    /// The host's OS family, which decides how packages are queried and installed: `debian`
    /// (dpkg/apt), `rpm` (rpm/dnf), or `auto` to read ID and ID_LIKE from os-release under
    /// --host-root.
    #[arg(long, default_value = "auto")]
    host_os: String,
    /// Where the host's root file system is seen from the agent: for --host-os auto, and, with
    /// --host-commands host-root, where host commands run.
    #[arg(long, default_value = "/")]
    host_root: PathBuf,
    /// Where host commands find their tools: `own` runs them from the agent's PATH (an agent on
    /// the host itself, or an image with the tools); `host-root` runs each one with the host's
    /// own tools, changing its root to --host-root first (needs CAP_SYS_CHROOT; the chart's
    /// DaemonSet mounts the host's / there).
    #[arg(long, default_value = "own", value_parser = ["own", "host-root"])]
    host_commands: String,
    /// The user name the API server knows the operator by
    /// (`system:serviceaccount:<namespace>:<operator>`, which the chart sets): a NodeTask whose
    /// `nodewright.io/created-by` annotation names anyone else is failed without running. Unset,
    /// no attribution is checked.
    #[arg(long)]
    operator_identity: Option<String>,
    /// Address of the agent's admin server (/metrics with steps by result, step durations and
    /// the journal's size; /healthz; /readyz). Unset, none is served.
    #[arg(long)]
    admin_addr: Option<std::net::SocketAddr>,
    /// Seconds between two reads of the host's facts (bonds, VLANs, DRBD, the LINSTOR satellite,
    /// packages, modules, boot id), published as this node's NodeFacts; 0 publishes none.
    #[arg(long, default_value_t = 10)]
    facts_interval_seconds: u64,
    /// The least number of seconds between two publications of changed facts.
    #[arg(long, default_value_t = 5)]
    facts_min_interval_seconds: u64,
    /// Seconds after which unchanged facts are published again, so that their observedAt shows
    /// the agent alive.
    #[arg(long, default_value_t = 60)]
    facts_refresh_seconds: u64,
}

/// The host's OS family from `--host-os` (and, for `auto`, the host's os-release).
fn host_os(args: &Args) -> anyhow::Result<nodewright_api::OsFamily> {
    match args.host_os.as_str() {
        "auto" => nodewright_agent_shim::os::detect(&args.host_root)
            .context("--host-os auto: cannot tell the host's OS family; pass --host-os debian or rpm"),
        "debian" => Ok(nodewright_api::OsFamily::Debian),
        "rpm" => Ok(nodewright_api::OsFamily::Rpm),
        other => anyhow::bail!("--host-os {other:?}: expected auto, debian or rpm"),
    }
}

/// Runs `nodewright agent`.
pub fn run(args: Args, log: &LogArgs) -> anyhow::Result<()> {
    // Checked before anything starts: without its node the agent would not know which tasks are
    // its own.
    let node = args
        .node
        .clone()
        .or_else(|| std::env::var("NODE_NAME").ok())
        .filter(|n| !n.trim().is_empty())
        .context("no node name: pass --node or set NODE_NAME (the chart sets it from spec.nodeName)")?;
    let host_os = host_os(&args)?;
    nodewright_kit::logging::init(log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_cluster(args, node, host_os))
}

async fn run_cluster(args: Args, node: String, host_os: nodewright_api::OsFamily) -> anyhow::Result<()> {
    let client = nodewright_kit::process::client(args.kubeconfig.as_deref()).await?;
    let pod_name = nodewright_kit::process::identity(args.pod_name.as_deref(), "nodewright-agent");
    let mut options = AgentOptions::new(node, args.namespace, pod_name, args.state_dir);
    options.host_os = host_os;
    options.operator = args.operator_identity.filter(|o| !o.trim().is_empty());
    options.admin_addr = args.admin_addr;
    options.facts = (args.facts_interval_seconds > 0).then(|| FactsOptions {
        poll: Duration::from_secs(args.facts_interval_seconds),
        policy: PublishPolicy {
            min_interval: Duration::from_secs(args.facts_min_interval_seconds),
            refresh: Duration::from_secs(args.facts_refresh_seconds.max(args.facts_interval_seconds)),
        },
    });
    let mut host = ProcessHost::new(Duration::from_secs(args.command_timeout_seconds.max(1)));
    if args.host_commands == "host-root" {
        // The launcher is this very binary, by the kernel's name for it: the image may be
        // replaced on disk while the pod runs, and the path that started it may be relative.
        let launcher =
            std::env::current_exe().context("--host-commands host-root: cannot tell where this binary is")?;
        host = host.in_host_root(launcher, &args.host_root);
    }
    tracing::info!(
        "nodewright agent: node {}, {} host (commands in {}), pod {}, NodeTasks in namespace {}, journal in {}",
        options.node,
        options.host_os,
        match &host.root {
            nodewright_agent_shim::CommandRoot::Own => "the agent's own root".to_owned(),
            nodewright_agent_shim::CommandRoot::HostRoot { root, .. } =>
                format!("the host root {}", root.display()),
        },
        options.pod_name,
        options.namespace,
        options.state_dir.display()
    );
    nodewright_agent_shim::run(client, options, host, nodewright_kit::process::stop_signal()?).await?;
    Ok(())
}
