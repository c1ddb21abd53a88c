//! `nodewright bridge`: the read-only observation bridge, against a cluster (`--kubeconfig`, or
//! in-cluster configuration) until interrupted, or once over an offline bundle (`--bundle DIR`),
//! printing the typed observation.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use nodewright_bridge::index::LegacyNames;
use nodewright_bridge::observe::ObserveConfig;
use nodewright_bridge::run::BridgeOptions;
use nodewright_bridge::source;

/// Arguments of `nodewright bridge`.
#[derive(clap::Args)]
pub struct Args {
    /// Kubeconfig of the cluster to observe (default: in-cluster configuration, then $KUBECONFIG).
    #[arg(long, conflicts_with = "bundle")]
    kubeconfig: Option<PathBuf>,
    /// Read an offline bundle (a directory of `kubectl get … -o yaml` files and `<node>.log` files)
    /// instead of a cluster, print the observation and exit.
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// With --bundle: the time to observe at (RFC 3339). Default: the newest legacy timestamp in the bundle.
    #[arg(long, requires = "bundle")]
    now: Option<String>,
    /// With --bundle: print JSON instead of YAML.
    #[arg(long, requires = "bundle")]
    json: bool,
    /// Namespace of Nodewright's objects (status, Events, the leader Lease).
    #[arg(long, default_value = "nodewright-system")]
    namespace: String,
    /// Namespace of the legacy ConfigMaps and DaemonSet.
    #[arg(long, default_value = "kube-system")]
    legacy_namespace: String,
    /// Name of the legacy DaemonSet.
    #[arg(long, default_value = "vx-rail-node-init")]
    legacy_daemonset: String,
    /// Name of the EdgeCluster for this site.
    #[arg(long, default_value = "site")]
    cluster_name: String,
    /// A node without a legacy heartbeat for this many seconds is LegacyStale.
    #[arg(long, default_value_t = 300)]
    stale_after: i64,
    /// Address of the admin server (/metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:8080")]
    admin_addr: SocketAddr,
    /// Write without leader election (only safe with a single replica).
    #[arg(long)]
    no_leader_election: bool,
    /// Do not follow the legacy pods' logs.
    #[arg(long)]
    no_logs: bool,
    /// Most status writes per second (a token bucket; bursts up to twice this).
    #[arg(long, default_value_t = 300.0)]
    max_writes_per_second: f64,
    /// Name of this replica (default: $POD_NAME, then the host name).
    #[arg(long)]
    identity: Option<String>,
}

impl Args {
    fn observe_config(&self) -> ObserveConfig {
        ObserveConfig {
            cluster_name: self.cluster_name.clone(),
            legacy_namespace: self.legacy_namespace.clone(),
            legacy_daemon_set: self.legacy_daemonset.clone(),
            stale_after_seconds: self.stale_after,
        }
    }

    fn legacy(&self) -> LegacyNames {
        LegacyNames {
            namespace: self.legacy_namespace.clone(),
            ..LegacyNames::default()
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(dir) = &args.bundle {
        return bundle(&args, dir);
    }
    crate::cluster::init_tracing();
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
        nodewright_bridge::run::observe_offline(changes, &args.legacy(), &args.observe_config(), now);
    eprintln!(
        "bundle {}: {} ConfigMaps, {} Nodes, {} logs, {} other objects skipped; observing at {}",
        dir.display(),
        summary.config_maps,
        summary.nodes,
        summary.logs.len(),
        summary.skipped,
        nodewright_bridge::observe::time(now).0
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
    let client = crate::cluster::client(args.kubeconfig.as_deref()).await?;
    let identity = crate::cluster::identity(args.identity.as_deref(), "nodewright-bridge");
    let mut options = BridgeOptions::new(args.namespace.clone(), identity);
    options.legacy = args.legacy();
    options.observe = args.observe_config();
    options.admin_addr = Some(args.admin_addr);
    options.writer.max_writes_per_second = args.max_writes_per_second;
    options.writer.burst = (args.max_writes_per_second * 2.0).clamp(1.0, 100_000.0) as u32;
    if args.no_leader_election {
        options.lease = None;
    }
    // The log source must outlive the loop: dropping it stops following.
    let (_log_source, logs) = if args.no_logs {
        (None, None)
    } else {
        crate::cluster::legacy_logs("bridge", &client, &args.legacy_namespace, &args.legacy_daemonset).await
    };
    eprintln!(
        "nodewright bridge: observing {}/{} (ConfigMaps, Nodes{}), writing status into namespace {}; admin on http://{}",
        args.legacy_namespace,
        args.legacy_daemonset,
        if args.no_logs { "" } else { ", pod logs" },
        args.namespace,
        args.admin_addr
    );
    nodewright_bridge::run::run(client, options, logs, crate::cluster::stop_signal()?).await?;
    Ok(())
}
