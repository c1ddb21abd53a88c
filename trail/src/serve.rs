//! The writer: an HTTPS endpoint for the API server's audit webhook backend.
//!
//! Each `POST` carries one `audit.k8s.io/v1` `EventList`. The events the trail keeps become
//! entries ([`Trail::ingest`]), which are appended to the log; the answer is `200` only once the
//! append returned, that is once the entries are durable. Any failure answers `500`, so that the
//! API server sends the batch again; the entries of a batch sent again carry the same ids (the
//! audit ID; a decision's workflow uid and resourceVersion; a step's key and attempt), which the
//! log does not append twice. After each append the new checkpoint is handed to the publisher
//! ([`Published`]) and to the metrics.

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use nodewright_audit::{Entry, Log};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::events::EventList;
use crate::trail::Trail;

/// The largest request body accepted (the API server's batches are at most 400 events by
/// default; an event at `RequestResponse` carries two objects).
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// The newest checkpoint, as the writer hands it to the publisher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The tree size.
    pub size: u64,
    /// The signed checkpoint note, as text.
    pub checkpoint: String,
    /// When it was signed, Unix seconds.
    pub at: i64,
}

/// The writer's metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// `nodewright_audit_tree_size`.
    pub tree_size: IntGauge,
    /// `nodewright_audit_checkpoint_timestamp_seconds`.
    pub checkpoint_timestamp: IntGauge,
    /// `nodewright_audit_entries_total{kind}`: entries appended.
    pub entries: IntCounterVec,
    /// `nodewright_audit_batches_total{result}`: webhook batches by answer.
    pub batches: IntCounterVec,
}

impl Metrics {
    /// The writer's metrics, registered in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        let tree_size = IntGauge::new(
            "nodewright_audit_tree_size",
            "Entries in the audit log (its latest checkpoint's tree size)",
        )?;
        let checkpoint_timestamp = IntGauge::new(
            "nodewright_audit_checkpoint_timestamp_seconds",
            "When the audit log's latest checkpoint was signed, Unix seconds",
        )?;
        let entries = IntCounterVec::new(
            Opts::new(
                "nodewright_audit_entries_total",
                "Entries appended to the audit log, by kind",
            ),
            &["kind"],
        )?;
        let batches = IntCounterVec::new(
            Opts::new(
                "nodewright_audit_batches_total",
                "Audit webhook batches received, by answer (ok, invalid, failed)",
            ),
            &["result"],
        )?;
        registry.register(Box::new(tree_size.clone()))?;
        registry.register(Box::new(checkpoint_timestamp.clone()))?;
        registry.register(Box::new(entries.clone()))?;
        registry.register(Box::new(batches.clone()))?;
        Ok(Metrics {
            tree_size,
            checkpoint_timestamp,
            entries,
            batches,
        })
    }
}

/// The log and the trail's state, appended to one batch at a time.
pub struct Writer {
    log: Log,
    trail: Trail,
    dir: std::path::PathBuf,
}

/// A trail that has observed every entry of the log in `dir`.
fn rebuilt(scope: crate::events::Scope, dir: &Path) -> anyhow::Result<Trail> {
    let mut trail = Trail::new(scope);
    for item in nodewright_audit::read(dir)? {
        let (_, entry) = item?;
        trail.observe(&entry);
    }
    Ok(trail)
}

impl Writer {
    /// A writer over the log opened in `dir`, with the trail's links rebuilt from the entries
    /// already in it.
    pub fn new(log: Log, trail: Trail, dir: &Path) -> anyhow::Result<Writer> {
        let trail = rebuilt(trail.scope().clone(), dir)?;
        Ok(Writer {
            log,
            trail,
            dir: dir.to_path_buf(),
        })
    }

    /// Appends the entries `events` yield; returns them once durable, with the new checkpoint.
    /// On failure the trail is rebuilt from what the log holds, so that the batch the API server
    /// sends again yields what was not appended (at the cost of each object's last content:
    /// the next change of each lists its fields with old values unknown).
    pub fn ingest(
        &mut self,
        events: &[crate::events::Event],
    ) -> anyhow::Result<(Vec<Entry>, Option<Published>)> {
        let entries = self.trail.ingest(events);
        if entries.is_empty() {
            return Ok((entries, None));
        }
        let result = self.log.append(&entries).and_then(|_| self.log.checkpoint());
        match result {
            Ok(checkpoint) => {
                let published = Published {
                    size: checkpoint.size,
                    checkpoint: checkpoint.note.clone(),
                    at: nodewright_kit::clock::unix_now(),
                };
                Ok((entries, Some(published)))
            }
            Err(e) => {
                match rebuilt(self.trail.scope().clone(), &self.dir) {
                    Ok(trail) => self.trail = trail,
                    Err(again) => {
                        tracing::error!(error = %format!("{again:#}"), "cannot read the log back after a failed append");
                    }
                }
                Err(e.into())
            }
        }
    }

    /// The newest checkpoint.
    pub fn checkpoint(&mut self) -> anyhow::Result<Published> {
        let checkpoint = self.log.checkpoint()?;
        Ok(Published {
            size: checkpoint.size,
            checkpoint: checkpoint.note,
            at: nodewright_kit::clock::unix_now(),
        })
    }
}

/// What the connections share.
pub struct Shared {
    writer: Mutex<Writer>,
    metrics: Metrics,
    published: watch::Sender<Option<Published>>,
}

impl Shared {
    /// The shared state of a server; `published` receives every new checkpoint.
    pub fn new(writer: Writer, metrics: Metrics, published: watch::Sender<Option<Published>>) -> Shared {
        Shared {
            writer: Mutex::new(writer),
            metrics,
            published,
        }
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes the log's current checkpoint (at start, before any batch).
    pub fn publish_current(&self) -> anyhow::Result<()> {
        let published = self.writer().checkpoint()?;
        self.announce(published);
        Ok(())
    }

    fn announce(&self, published: Published) {
        self.metrics
            .tree_size
            .set(i64::try_from(published.size).unwrap_or(i64::MAX));
        self.metrics.checkpoint_timestamp.set(published.at);
        self.published.send_replace(Some(published));
    }

    /// Handles one webhook body: the answer's status and text.
    pub fn handle(&self, body: &[u8]) -> (StatusCode, String) {
        let list = match EventList::decode(body) {
            Ok(list) => list,
            Err(e) => {
                self.metrics.batches.with_label_values(&["invalid"]).inc();
                return (StatusCode::BAD_REQUEST, e.to_string());
            }
        };
        let result = self.writer().ingest(&list.items);
        match result {
            Ok((entries, published)) => {
                for e in &entries {
                    let kind = serde_json::to_value(e.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    self.metrics.entries.with_label_values(&[kind.as_str()]).inc();
                }
                if let Some(p) = published {
                    self.announce(p);
                }
                self.metrics.batches.with_label_values(&["ok"]).inc();
                (
                    StatusCode::OK,
                    format!("{} events, {} entries\n", list.items.len(), entries.len()),
                )
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "audit batch not appended; the API server will send it again");
                self.metrics.batches.with_label_values(&["failed"]).inc();
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("not appended: {e:#}\n"),
                )
            }
        }
    }
}

/// A TLS acceptor for the certificate chain and key in the PEM files.
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    use anyhow::Context;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: not a PEM certificate chain", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{}: not a PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not make a TLS server configuration")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves the webhook on `listener` (HTTPS with `tls`, or plain HTTP without) until `shutdown`.
/// Connections in flight are aborted at shutdown: a batch whose answer was not sent is sent
/// again by the API server, and appending it again adds nothing.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                connections.spawn(connection(tls.clone(), tcp, shared.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn connection(tls: Option<TlsAcceptor>, tcp: tokio::net::TcpStream, shared: Arc<Shared>) {
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(answer(shared, req).await) }
    });
    let builder = hyper::server::conn::http1::Builder::new();
    match tls {
        Some(tls) => {
            let Ok(stream) = tls.accept(tcp).await else { return };
            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
        }
        None => {
            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
        }
    }
}

async fn answer(shared: Arc<Shared>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let respond = |status: StatusCode, text: String| {
        let mut response = Response::new(Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        response
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => return respond(StatusCode::OK, "ok\n".into()),
        (&Method::POST, _) => {}
        _ => {
            return respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST an audit.k8s.io/v1 EventList\n".into(),
            );
        }
    }
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return respond(StatusCode::PAYLOAD_TOO_LARGE, format!("reading the body: {e}\n")),
    };
    // The append waits for fsync: off the async threads.
    let result = tokio::task::spawn_blocking(move || shared.handle(&body)).await;
    match result {
        Ok((status, text)) => respond(status, text),
        Err(e) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writer task failed: {e}\n"),
        ),
    }
}
