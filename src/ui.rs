//! `nodewright ui`: the read-only web UI, against a cluster (`--kubeconfig`, or in-cluster
//! configuration), on 127.0.0.1:8090 unless `--listen` says otherwise, until interrupted.

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
}

pub fn run(args: Args) -> anyhow::Result<()> {
    nodewright_kit::process::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let client = nodewright_kit::process::client(args.kubeconfig.as_deref()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let shared = nodewright_ui::Shared::new(KINDS);
    let namespaces = Namespaces {
        nodewright: args.namespace.clone(),
        legacy: args.legacy_namespace.clone(),
    };
    let _watches = nodewright_ui::watch::spawn(&client, &namespaces, &shared);
    eprintln!(
        "nodewright ui: reading namespaces {} and {}; open http://{addr}/",
        args.namespace, args.legacy_namespace
    );
    nodewright_ui::serve(listener, shared, stop_signal()?).await?;
    Ok(())
}
