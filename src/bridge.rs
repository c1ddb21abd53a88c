//! `nodewright bridge`: the read-only observation bridge, against a cluster (`--kubeconfig`, or
//! in-cluster configuration) until interrupted, or once over an offline bundle (`--bundle DIR`),
//! printing the typed observation.

use nodewright_kit::logging::LogArgs;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use nodewright_bridge::observe::ObserveConfig;
use nodewright_bridge::run::BridgeOptions;
use nodewright_bridge::source;
use nodewright_kit::process::{ProcessArgs, stop_signal};

use crate::cluster::LegacyArgs;

/// Arguments of `nodewright bridge`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    process: ProcessArgs,
    #[command(flatten)]
    legacy: LegacyArgs,
    /// Read an offline bundle (a directory of `kubectl get … -o yaml` files and `<node>.log` files)
    /// instead of a cluster, print the observation and exit.
    #[arg(long, conflicts_with = "kubeconfig")]
    bundle: Option<PathBuf>,
    /// With --bundle: the time to observe at (RFC 3339). Default: the newest legacy timestamp in the bundle.
    #[arg(long, requires = "bundle")]
    now: Option<String>,
    /// With --bundle: print JSON instead of YAML.
    #[arg(long, requires = "bundle")]
    json: bool,
    /// Most status writes per second (a token bucket; bursts up to twice this).
    #[arg(long, default_value_t = 300.0)]
    max_writes_per_second: f64,
}

/// Where the bridge's admin server listens unless `--admin-addr` says otherwise.
const ADMIN_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

impl Args {
    fn observe_config(&self) -> ObserveConfig {
        ObserveConfig {
            cluster_name: self.legacy.cluster_name.clone(),
            legacy_namespace: self.legacy.legacy_namespace.clone(),
            legacy_daemon_set: self.legacy.legacy_daemonset.clone(),
            stale_after_seconds: self.legacy.stale_after,
        }
    }
}

pub fn run(args: Args, log: &LogArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.bundle {
        return bundle(&args, dir);
    }
    nodewright_kit::logging::init(log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_cluster(args))
}

fn bundle(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let (changes, summary) = source::read_bundle(dir)?;
    let now = match &args.now {
        Some(text) => Some(
            text.parse::<k8s_openapi::jiff::Timestamp>()
                .with_context(|| format!("--now {text:?}: expected an RFC 3339 time"))?
                .as_second(),
        ),
        None => None,
    };
    let (observation, now) =
        nodewright_bridge::run::observe_offline(changes, &args.legacy.names(), &args.observe_config(), now);
    eprintln!(
        "bundle {}: {} ConfigMaps, {} Nodes, {} logs, {} other objects skipped; observing at {}",
        dir.display(),
        summary.config_maps,
        summary.nodes,
        summary.logs.len(),
        summary.skipped,
        nodewright_kit::clock::time(now).0
    );
    for sentence in &observation.unrepresentable {
        eprintln!("not represented: {sentence}");
    }
    let observation = &observation;
    let text = if args.json {
        serde_json::to_string_pretty(observation)? + "\n"
    } else {
        serde_yaml_ng::to_string(observation)?
    };
    crate::out(&text);
    Ok(())
}

async fn run_cluster(args: Args) -> anyhow::Result<()> {
    let client = args.process.client().await?;
    let admin_addr = args.process.admin_addr_or(ADMIN_ADDR);
    let mut options = BridgeOptions::new(
        args.process.namespace.clone(),
        args.process.identity("nodewright-bridge"),
    );
    options.legacy = args.legacy.names();
    options.observe = args.observe_config();
    options.admin_addr = Some(admin_addr);
    options.writer.max_writes_per_second = args.max_writes_per_second;
    options.writer.burst = (args.max_writes_per_second * 2.0).clamp(1.0, 100_000.0) as u32;
    options.lease = args.process.lease("nodewright-bridge");
    // The log source must outlive the loop: dropping it stops following.
    let (_log_source, logs) = args.legacy.logs("bridge", &client).await;
    tracing::info!(
        "nodewright bridge: observing {}/{} (ConfigMaps, Nodes{}), writing status into namespace {}; admin on http://{}",
        args.legacy.legacy_namespace,
        args.legacy.legacy_daemonset,
        if args.legacy.no_logs { "" } else { ", pod logs" },
        args.process.namespace,
        admin_addr
    );
    nodewright_bridge::run::run(client, options, logs, stop_signal()?).await?;
    Ok(())
}
