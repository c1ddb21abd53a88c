//! What the commands that run against a cluster share: the client, the replica's identity, the
//! legacy pods' log source and the stop signals.

use std::path::Path;

use anyhow::Context;
use kube::Client;
use nodewright_bridge::logs::LogSource;
use nodewright_bridge::source::Change;
use tokio::sync::mpsc;

/// A client from `kubeconfig`, or from the in-cluster configuration, then `$KUBECONFIG`.
pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("using {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no cluster configuration found")?,
    };
    Ok(Client::try_from(config)?)
}

/// This replica's name: the argument, else `$POD_NAME`, else the host name, else `<fallback>-<pid>`.
pub fn identity(arg: Option<&str>, fallback: &str) -> String {
    arg.map(str::to_owned)
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| format!("{fallback}-{}", std::process::id()))
}

/// Follows the legacy DaemonSet's pods' logs. The returned source must outlive the loop: dropping
/// it stops following. A failure to start is reported and yields no logs: ConfigMaps and Nodes
/// carry most of the legacy state, so the command carries on without them.
pub async fn legacy_logs(
    command: &str,
    client: &Client,
    namespace: &str,
    daemon_set: &str,
) -> (Option<LogSource>, Option<mpsc::Receiver<Change>>) {
    let config = nodewright_bridge::logs::LogSourceConfig::daemon_set(namespace, daemon_set);
    match LogSource::start(client.clone(), config).await {
        Ok((source, events)) => (Some(source), Some(nodewright_bridge::run::log_changes(events))),
        Err(e) => {
            eprintln!("nodewright {command}: not following the legacy pods' logs: {e}");
            (None, None)
        }
    }
}

/// Completes on SIGTERM (how Kubernetes stops a pod) or Ctrl-C (how a person stops a terminal run).
pub fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    })
}

/// Logs to standard error, filtered by `$RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
