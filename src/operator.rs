//! `nodewright operator`: the parity controllers against a cluster (`--kubeconfig`, or in-cluster
//! configuration) until interrupted — the takeover projection, the workflows in `operator` mode
//! and the shadow divergences.

use nodewright_kit::logging::LogArgs;
use std::net::SocketAddr;
use std::time::Duration;

use nodewright_kit::process::{ProcessArgs, stop_signal};
use nodewright_parity::run::OperatorOptions;

use crate::cluster::LegacyArgs;

/// Arguments of `nodewright operator`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    process: ProcessArgs,
    #[command(flatten)]
    legacy: LegacyArgs,
    /// Seconds between turns.
    #[arg(long, default_value_t = 5)]
    interval: u64,
    /// A migration phase that waits longer than this many seconds fails and rolls back (the
    /// script's VXR_MIGRATION_TIMEOUT; keep the two equal so that shadow compares like with like).
    #[arg(long, default_value_t = 1800)]
    migration_timeout: i64,
    /// A per-node storage-upgrade state (PREFLIGHT … UNCORDON) that waits longer than this many
    /// seconds fails, and the upgrade rolls back.
    #[arg(long, default_value_t = nodewright_parity::controllers::Settings::DEFAULT_UPGRADE_STATE_TIMEOUT)]
    upgrade_state_timeout: i64,
    /// The rollback of one node of a storage upgrade that takes longer than this many seconds
    /// fails the upgrade (FAILED, with what could not be undone).
    #[arg(long, default_value_t = nodewright_parity::controllers::Settings::DEFAULT_UPGRADE_ROLLBACK_TIMEOUT)]
    upgrade_rollback_timeout: i64,
    /// A Node whose Ready condition has been False or Unknown for this many seconds (by its
    /// lastTransitionTime, the cluster's clock) and on which no legacy pod is running does not hold
    /// a takeover back. A node whose legacy pod is gone never does; any other node holds it back
    /// until its script acknowledges the takeover generation, however long it is silent.
    #[arg(long, default_value_t = nodewright_parity::takeover::DEFAULT_NOT_READY_GRACE)]
    not_ready_grace: i64,
}

/// Where the operator's admin server listens unless `--admin-addr` says otherwise: next to the
/// bridge's 8080, so that both can run on one machine.
const ADMIN_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8081);

/// Runs `nodewright operator`.
pub fn run(args: Args, log: &LogArgs) -> anyhow::Result<()> {
    nodewright_kit::logging::init(log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_cluster(args))
}

async fn run_cluster(args: Args) -> anyhow::Result<()> {
    // Every turn decides again: a write the API server answers with 429 (an eviction a
    // PodDisruptionBudget does not allow now) is reported at once and tried again next turn,
    // never retried inside the turn.
    let client = args.process.client_without_retry().await?;
    let admin_addr = args.process.admin_addr_or(ADMIN_ADDR);
    let mut options = OperatorOptions::new(
        args.process.namespace.clone(),
        args.legacy.cluster_name.clone(),
        args.process.identity("nodewright-operator"),
    );
    options.legacy = args.legacy.names();
    options.stale_after = args.legacy.stale_after;
    options.legacy_daemon_set = args.legacy.legacy_daemonset.clone();
    options.not_ready_grace = args.not_ready_grace.max(0);
    options.interval = Duration::from_secs(args.interval.max(1));
    options.migration_timeout = args.migration_timeout.max(1);
    options.upgrade_state_timeout = args.upgrade_state_timeout.max(1);
    options.upgrade_rollback_timeout = args.upgrade_rollback_timeout.max(1);
    options.admin_addr = Some(admin_addr);
    options.lease = args.process.lease("nodewright-operator");
    let (_log_source, logs) = args.legacy.logs("operator", &client).await;
    tracing::info!(
        "nodewright operator: site {}/{}, legacy {}/{}; admin on http://{}",
        args.process.namespace,
        args.legacy.cluster_name,
        args.legacy.legacy_namespace,
        args.legacy.legacy_daemonset,
        admin_addr
    );
    nodewright_parity::run::run(client, options, logs, stop_signal()?).await?;
    Ok(())
}
