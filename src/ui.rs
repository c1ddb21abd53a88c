//! `nodewright ui`: the web UI (read-only unless `--enable-actions`), against a cluster (`--kubeconfig`, or in-cluster
//! configuration), on 127.0.0.1:8090 unless `--listen` says otherwise, until interrupted.

use nodewright_kit::logging::LogArgs;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use nodewright_kit::process::stop_signal;
use nodewright_ui::watch::{KINDS, Namespaces};

/// Arguments of `nodewright ui`.
#[derive(clap::Args)]
pub struct Args {
    /// Kubeconfig of the cluster (default: in-cluster configuration, then $KUBECONFIG).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Namespace of Nodewright's objects (EdgeClusters, EdgeNodes, workflows).
    #[arg(long, default_value = "nodewright-system")]
    namespace: String,
    /// Namespace of the legacy script's ConfigMaps (takeover acknowledgements).
    #[arg(long, default_value = "kube-system")]
    legacy_namespace: String,
    /// Address to serve on. Only this machine can reach the default; a pod sets 0.0.0.0:8090.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Let people act from the page (request an upgrade, roll one back, change a workflow's mode):
    /// each action needs the person's bearer token, checked with a TokenReview, and is sent as that
    /// person by impersonation. Off by default: the page then only shows each action's command.
    #[arg(long)]
    enable_actions: bool,
    /// The audit trail's log directory (the writer's, read-only, or a copy): turns on the Audit
    /// view, which selects entries as `nodewright audit log` does and verifies the log against
    /// the checkpoint published to the cluster.
    #[arg(long)]
    audit_dir: Option<PathBuf>,
    /// Namespace of the published audit checkpoint (the ConfigMap nodewright-audit-checkpoint);
    /// default: --namespace.
    #[arg(long)]
    audit_namespace: Option<String>,
}

pub fn run(args: Args, log: &LogArgs) -> anyhow::Result<()> {
    nodewright_kit::logging::init(log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    if let Some(dir) = &args.audit_dir {
        anyhow::ensure!(
            dir.is_dir(),
            "--audit-dir {}: not a directory (the audit writer's log directory)",
            dir.display()
        );
    }
    let config = nodewright_kit::process::config(args.kubeconfig.as_deref()).await?;
    let client = kube::Client::try_from(config.clone())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let mut shared = nodewright_ui::Shared::new(KINDS);
    if args.enable_actions {
        shared = shared.with_actions(config);
    }
    if let Some(dir) = &args.audit_dir {
        shared = shared.with_audit(nodewright_ui::audit::Source {
            dir: dir.clone(),
            namespace: args
                .audit_namespace
                .clone()
                .unwrap_or_else(|| args.namespace.clone()),
            client: client.clone(),
        });
    }
    let namespaces = Namespaces {
        nodewright: args.namespace.clone(),
        legacy: args.legacy_namespace.clone(),
    };
    let _watches = nodewright_ui::watch::spawn(&client, &namespaces, &shared);
    tracing::info!(
        "nodewright ui: reading namespaces {} and {}; audit log {}; actions {}; open http://{addr}/",
        args.namespace,
        args.legacy_namespace,
        args.audit_dir
            .as_ref()
            .map_or_else(|| "none (--audit-dir)".to_owned(), |d| d.display().to_string()),
        if args.enable_actions {
            "on (as the person, by impersonation)"
        } else {
            "off"
        }
    );
    nodewright_ui::serve(listener, shared, stop_signal()?).await?;
    Ok(())
}
