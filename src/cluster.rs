//! What the commands that observe a legacy site share: the options naming the legacy objects
//! ([`LegacyArgs`], flattened into `nodewright bridge` and `nodewright operator`) and the legacy
//! pods' log source. The process options, the client, the identity and the stop signal are the
//! kit's (`nodewright_kit::process`).

use kube::Client;
use nodewright_bridge::index::LegacyNames;
use nodewright_bridge::logs::LogSource;
use nodewright_bridge::source::Change;
use nodewright_parsers::contract;
use tokio::sync::mpsc;

/// Where the legacy script keeps its state, and how the site is named: the options of every
/// command that reads it, declared once.
#[derive(clap::Args, Clone, Debug)]
pub struct LegacyArgs {
    /// Namespace of the legacy ConfigMaps and DaemonSet (the takeover ConfigMap goes there).
    #[arg(long, default_value = contract::NAMESPACE)]
    pub legacy_namespace: String,
    /// Name of the legacy DaemonSet.
    #[arg(long, default_value = contract::DAEMON_SET)]
    pub legacy_daemonset: String,
    /// Name of the EdgeCluster for this site.
    #[arg(long, default_value = "site")]
    pub cluster_name: String,
    /// A node whose script has not reported for this many seconds is LegacyStale (and not alive
    /// for the migration's preflight). Silence never releases a takeover: see
    /// `--not-ready-grace` of `nodewright operator`.
    #[arg(long, default_value_t = 300)]
    pub stale_after: i64,
    /// Do not follow the legacy pods' logs (the storage-upgrade shadow reads them).
    #[arg(long)]
    pub no_logs: bool,
}

impl LegacyArgs {
    /// The names of the legacy objects.
    pub fn names(&self) -> LegacyNames {
        LegacyNames {
            namespace: self.legacy_namespace.clone(),
            ..LegacyNames::default()
        }
    }

    /// Follows the legacy DaemonSet's pods' logs, unless `--no-logs`. The returned source must
    /// outlive the loop: dropping it stops following. A failure to start is reported and yields no
    /// logs: ConfigMaps and Nodes carry most of the legacy state, so the command carries on
    /// without them.
    pub async fn logs(
        &self,
        command: &str,
        client: &Client,
    ) -> (Option<LogSource>, Option<mpsc::Receiver<Change>>) {
        if self.no_logs {
            return (None, None);
        }
        let config = nodewright_bridge::logs::LogSourceConfig::daemon_set(
            &self.legacy_namespace,
            &self.legacy_daemonset,
        );
        match LogSource::start(client.clone(), config).await {
            Ok((source, events)) => (Some(source), Some(nodewright_bridge::run::log_changes(events))),
            Err(e) => {
                tracing::warn!("nodewright {command}: not following the legacy pods' logs: {e}");
                (None, None)
            }
        }
    }
}
