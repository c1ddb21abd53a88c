//! What every long-running Nodewright process that reads legacy state starts before its loop:
//! the admin server, leader election, and the sources (watches of the legacy ConfigMaps and of
//! Nodes, and the legacy pods' log lines) merged into one stream of changes. The bridge and the
//! operator share these; each keeps its own loop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use kube::Client;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::lease::{LeaderElector, LeaseConfig};
use crate::metrics::{Encode, Health, serve_admin};
use crate::source::{self, Change};

/// Binds the admin server (`/metrics`, `/healthz`, `/readyz`) on `addr` and serves it until
/// `stop` completes.
pub async fn start_admin(
    addr: SocketAddr,
    metrics: Arc<dyn Encode>,
    health: Health,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr().map_or(addr, |a| a), "admin server listening");
    tokio::spawn(async move {
        if let Err(e) = serve_admin(listener, metrics, health, stop).await {
            tracing::error!(error = %e, "admin server stopped");
        }
    });
    Ok(())
}

/// Competes for the Lease until `stop` completes; without a Lease this replica always leads.
/// Returns who leads now, and the elector's task (which releases the Lease when it stops).
pub fn start_election(
    client: &Client,
    lease: Option<LeaseConfig>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> (watch::Receiver<bool>, Option<JoinHandle<()>>) {
    match lease {
        Some(config) => {
            let elector = LeaderElector::new(client.clone(), config);
            let rx = elector.subscribe();
            (rx, Some(tokio::spawn(elector.run(stop))))
        }
        None => (watch::channel(true).1, None),
    }
}

/// Watches the legacy ConfigMaps of `legacy_namespace` and every Node, and forwards `logs`, into
/// one channel. A watch error is passed to `on_error` (for logs and metrics); the watch carries
/// on with backoff.
pub fn start_sources(
    client: &Client,
    legacy_namespace: &str,
    logs: Option<mpsc::Receiver<Change>>,
    on_error: impl Fn(&kube::runtime::watcher::Error) + Clone + Send + Sync + 'static,
) -> mpsc::Receiver<Change> {
    let (tx, rx) = mpsc::channel::<Change>(1024);
    forward(
        source::watch_config_maps(client.clone(), legacy_namespace),
        tx.clone(),
        on_error.clone(),
    );
    forward(source::watch_nodes(client.clone()), tx.clone(), on_error);
    if let Some(mut logs) = logs {
        tokio::spawn(async move {
            while let Some(c) = logs.recv().await {
                if tx.send(c).await.is_err() {
                    break;
                }
            }
        });
    }
    rx
}

fn forward(
    stream: impl futures::Stream<Item = Result<Change, kube::runtime::watcher::Error>> + Send + 'static,
    tx: mpsc::Sender<Change>,
    on_error: impl Fn(&kube::runtime::watcher::Error) + Send + Sync + 'static,
) {
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(change) => {
                    if tx.send(change).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    on_error(&e);
                    tracing::warn!(error = %e, "watch failed; retrying with backoff");
                }
            }
        }
    });
}
