//! What every Nodewright command that runs against a cluster does before its loop: parse the
//! options all of them share ([`ProcessArgs`]), build a client, name this replica, and stop on
//! SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kube::Client;

use crate::lease::LeaseConfig;

/// The options of every long-running Nodewright process (`nodewright bridge`, `nodewright
/// operator`), declared once and flattened into each command.
#[derive(clap::Args, Clone, Debug)]
pub struct ProcessArgs {
    /// Kubeconfig of the cluster (default: in-cluster configuration, then $KUBECONFIG).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of Nodewright's objects (the EdgeCluster, status, Events, the leader Lease).
    #[arg(long, default_value = "nodewright-system")]
    pub namespace: String,
    /// Address of the admin server (/metrics, /healthz, /readyz) [default: 127.0.0.1:8080 for the
    /// bridge, 127.0.0.1:8081 for the operator, so that both can run on one machine].
    #[arg(long)]
    pub admin_addr: Option<SocketAddr>,
    /// Act without leader election (only safe with a single replica).
    #[arg(long)]
    pub no_leader_election: bool,
    /// Name of this replica (default: $POD_NAME, then the host name).
    #[arg(long)]
    pub identity: Option<String>,
}

impl ProcessArgs {
    /// The admin address given, or `default` (each component has its own port).
    pub fn admin_addr_or(&self, default: SocketAddr) -> SocketAddr {
        self.admin_addr.unwrap_or(default)
    }

    /// This replica's name: `--identity`, else `$POD_NAME`, else the host name, else
    /// `<component>-<pid>`.
    pub fn identity(&self, component: &str) -> String {
        identity(self.identity.as_deref(), component)
    }

    /// The Lease `component` competes for in `--namespace`, or `None` with `--no-leader-election`.
    pub fn lease(&self, component: &str) -> Option<LeaseConfig> {
        (!self.no_leader_election)
            .then(|| LeaseConfig::standard(self.namespace.clone(), component, self.identity(component)))
    }

    /// A client for `--kubeconfig`, or the in-cluster configuration, then `$KUBECONFIG`.
    pub async fn client(&self) -> anyhow::Result<Client> {
        client(self.kubeconfig.as_deref()).await
    }

    /// [`ProcessArgs::client`] that does not retry a request the API server answered with 429,
    /// 503 or 504: for a process that decides again every turn (the operator), where a 429 can be
    /// an answer rather than throttling (an eviction a PodDisruptionBudget does not allow), which
    /// kube's default retry would wait out for minutes before the caller sees it.
    pub async fn client_without_retry(&self) -> anyhow::Result<Client> {
        let mut config = config(self.kubeconfig.as_deref()).await?;
        config.default_retry = false;
        Ok(Client::try_from(config)?)
    }
}

/// A client from `kubeconfig`, or from the in-cluster configuration, then `$KUBECONFIG`.
pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<Client> {
    Ok(Client::try_from(config(kubeconfig).await?)?)
}

/// The client configuration from `kubeconfig`, or from the in-cluster configuration, then
/// `$KUBECONFIG`.
pub async fn config(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Config> {
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
    Ok(config)
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
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("{fallback}-{}", std::process::id()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        process: ProcessArgs,
    }

    fn parse(args: &[&str]) -> ProcessArgs {
        Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied()))
            .expect("the options parse")
            .process
    }

    #[test]
    fn a_component_competes_for_its_own_lease_in_the_namespace_with_the_standard_durations() {
        let args = parse(&["--namespace", "ops", "--identity", "pod-a"]);
        let lease = args.lease("nodewright-operator");
        assert_eq!(
            lease.map(|l| (l.namespace, l.name, l.identity, l.lease_duration.as_secs())),
            Some(("ops".into(), "nodewright-operator".into(), "pod-a".into(), 15))
        );
    }

    #[test]
    fn no_leader_election_means_no_lease() {
        assert!(
            parse(&["--no-leader-election"])
                .lease("nodewright-bridge")
                .is_none()
        );
    }

    #[test]
    fn each_component_keeps_its_own_admin_port_unless_told_otherwise() {
        let default: SocketAddr = ([127, 0, 0, 1], 8081).into();
        assert_eq!(parse(&[]).admin_addr_or(default), default);
        assert_eq!(
            parse(&["--admin-addr", "0.0.0.0:9000"]).admin_addr_or(default),
            ([0, 0, 0, 0], 9000).into()
        );
    }

    #[test]
    fn an_explicit_identity_wins_over_the_environment() {
        assert_eq!(identity(Some("me"), "bridge"), "me");
    }
}
