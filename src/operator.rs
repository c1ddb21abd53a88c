//! `nodewright operator`: the parity controllers against a cluster (`--kubeconfig`, or in-cluster
//! configuration) until interrupted — the takeover projection, the workflows in `operator` mode
//! and the shadow divergences.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use nodewright_bridge::index::LegacyNames;
use nodewright_bridge::lease::LeaseConfig;
use nodewright_parity::run::OperatorOptions;

/// Arguments of `nodewright operator`.
#[derive(clap::Args)]
pub struct Args {
    /// Kubeconfig of the cluster (default: in-cluster configuration, then $KUBECONFIG).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Namespace of the EdgeCluster, the leader Lease and Events.
    #[arg(long, default_value = "nodewright-system")]
    namespace: String,
    /// Namespace of the legacy ConfigMaps and DaemonSet (the takeover ConfigMap goes there).
    #[arg(long, default_value = "kube-system")]
    legacy_namespace: String,
    /// Name of the legacy DaemonSet.
    #[arg(long, default_value = "vx-rail-node-init")]
    legacy_daemonset: String,
    /// Name of the EdgeCluster for this site.
    #[arg(long, default_value = "site")]
    cluster_name: String,
    /// A node whose script has not reported for this many seconds does not hold a takeover back.
    #[arg(long, default_value_t = 300)]
    stale_after: i64,
    /// Seconds between turns.
    #[arg(long, default_value_t = 5)]
    interval: u64,
    /// A migration phase that waits longer than this many seconds fails and rolls back (the
    /// script's VXR_MIGRATION_TIMEOUT; keep the two equal so that shadow compares like with like).
    #[arg(long, default_value_t = 1800)]
    migration_timeout: i64,
    /// Address of the admin server (/metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:8081")]
    admin_addr: SocketAddr,
    /// Act without leader election (only safe with a single replica).
    #[arg(long)]
    no_leader_election: bool,
    /// Do not follow the legacy pods' logs (the storage-upgrade shadow reads them).
    #[arg(long)]
    no_logs: bool,
    /// Name of this replica (default: $POD_NAME, then the host name).
    #[arg(long)]
    identity: Option<String>,
}

/// Runs `nodewright operator`.
pub fn run(args: Args) -> anyhow::Result<()> {
    crate::cluster::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_cluster(args))
}

async fn run_cluster(args: Args) -> anyhow::Result<()> {
    let client = crate::cluster::client(args.kubeconfig.as_deref()).await?;
    let identity = crate::cluster::identity(args.identity.as_deref(), "nodewright-operator");
    let mut options = OperatorOptions::new(
        args.namespace.clone(),
        args.cluster_name.clone(),
        identity.clone(),
    );
    options.legacy = LegacyNames {
        namespace: args.legacy_namespace.clone(),
        ..LegacyNames::default()
    };
    options.stale_after = args.stale_after;
    options.interval = Duration::from_secs(args.interval.max(1));
    options.migration_timeout = args.migration_timeout.max(1);
    options.admin_addr = Some(args.admin_addr);
    if !args.no_leader_election {
        options.lease = Some(LeaseConfig {
            namespace: args.namespace.clone(),
            name: "nodewright-operator".into(),
            identity,
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
            retry_interval: Duration::from_secs(2),
        });
    }
    let (_log_source, logs) = if args.no_logs {
        (None, None)
    } else {
        crate::cluster::legacy_logs(
            "operator",
            &client,
            &args.legacy_namespace,
            &args.legacy_daemonset,
        )
        .await
    };
    eprintln!(
        "nodewright operator: site {}/{}, legacy {}/{}; admin on http://{}",
        args.namespace, args.cluster_name, args.legacy_namespace, args.legacy_daemonset, args.admin_addr
    );
    nodewright_parity::run::run(client, options, logs, crate::cluster::stop_signal()?).await?;
    Ok(())
}
