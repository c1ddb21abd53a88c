//! The admin server every long-running Nodewright process serves: `/metrics` in the Prometheus
//! text format, `/healthz` (the process loop is turning) and `/readyz` (its sources have listed).
//!
//! Boundaries: this module answers HTTP on the listener it is given and reads the [`Health`] its
//! process loop reports; it never talks to the Kubernetes API, and it knows no metric by name.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Registry, TextEncoder};

/// The content type of `/metrics`: the text exposition format 0.0.4, with the charset that
/// client_golang sends (`prometheus::TEXT_FORMAT` leaves it out).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Liveness and readiness of a process (the bridge, the operator), shared by the process loop (which reports) and the admin
/// server (which answers the probes). Clones share the same state.
///
/// - Live (`/healthz`): the process loop called [`Health::beat`] within the last `stall_after`.
///   The loop must therefore beat on a timer shorter than that, not only on events, so that a
///   quiet cluster is not mistaken for a stuck loop; a loop that is stuck (deadlock, blocked
///   call) stops beating and the kubelet restarts the pod.
/// - Ready (`/readyz`): every source named at creation has reported its first full list through
///   [`Health::synced`]. Readiness never goes back: after a relist the index is still usable.
#[derive(Clone, Debug)]
pub struct Health {
    inner: Arc<Mutex<HealthState>>,
    stall_after: Duration,
}

#[derive(Debug)]
struct HealthState {
    last_beat: Instant,
    pending: BTreeSet<String>,
}

impl Health {
    /// A process that is live (as if it had just beaten) and waits for the first full list of each
    /// of `sources`. With no sources it is ready at once.
    pub fn new<I, S>(sources: I, stall_after: Duration) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let state = HealthState {
            last_beat: Instant::now(),
            pending: sources.into_iter().map(Into::into).collect(),
        };
        Health {
            inner: Arc::new(Mutex::new(state)),
            stall_after,
        }
    }

    /// The process loop is alive: call it on every turn of the loop, including timer ticks.
    pub fn beat(&self) {
        lock(&self.inner).last_beat = Instant::now();
    }

    /// `source` has delivered its first full list. A source that was not named at creation, or
    /// that already synced, changes nothing.
    pub fn synced(&self, source: &str) {
        lock(&self.inner).pending.remove(source);
    }

    /// `Ok` while live, or a one-line reason.
    pub fn liveness(&self) -> Result<(), String> {
        self.liveness_at(Instant::now())
    }

    fn liveness_at(&self, now: Instant) -> Result<(), String> {
        let since = now.saturating_duration_since(lock(&self.inner).last_beat);
        if since <= self.stall_after {
            Ok(())
        } else {
            Err(format!(
                "process loop stalled: last beat {:.1}s ago (limit {:.1}s)",
                since.as_secs_f64(),
                self.stall_after.as_secs_f64()
            ))
        }
    }

    /// `Ok` once every source has synced, or a one-line reason naming those that have not.
    pub fn readiness(&self) -> Result<(), String> {
        let state = lock(&self.inner);
        if state.pending.is_empty() {
            Ok(())
        } else {
            let pending: Vec<&str> = state.pending.iter().map(String::as_str).collect();
            Err(format!(
                "waiting for the first full list of: {}",
                pending.join(", ")
            ))
        }
    }
}

/// The body of `/metrics`, chunk by chunk.
pub type Chunks = futures::stream::BoxStream<'static, Result<String, std::convert::Infallible>>;

/// Something whose metrics the admin server serves in the text format.
pub trait Encode: Send + Sync + 'static {
    /// The metrics, in the Prometheus text format.
    fn encode(&self) -> Result<String, prometheus::Error>;

    /// The same text as a stream of chunks, so that a large scrape need not be held whole. An
    /// error is returned before the first chunk, so that the response can still say so. By
    /// default, the whole of [`Encode::encode`] in one chunk.
    fn chunks(self: Arc<Self>) -> Result<Chunks, prometheus::Error> {
        let text = self.encode()?;
        Ok(Box::pin(futures::stream::once(async move { Ok(text) })))
    }
}

impl Encode for Registry {
    fn encode(&self) -> Result<String, prometheus::Error> {
        TextEncoder::new().encode_to_string(&self.gather())
    }
}

#[derive(Clone)]
struct AdminState {
    metrics: Arc<dyn Encode>,
    process: Arc<Registry>,
    health: Health,
}

/// A registry holding the process collector (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_open_fds`, `process_start_time_seconds`, …), with the
/// names every Prometheus client library gives them (no component prefix), so that one
/// dashboard query covers every Nodewright process. The collector reads `/proc/self`; off Linux
/// the registry is empty.
pub fn process_registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    if let Err(e) = registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    )) {
        tracing::warn!(error = %e, "the process collector could not be registered; no process_* metrics");
    }
    registry
}

fn probe(result: Result<(), String>) -> Response {
    match result {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn get_metrics(State(state): State<AdminState>) -> Response {
    // The process families come last: gathered when the component's own text is out.
    let process = state.process.clone();
    match state.metrics.chunks() {
        Ok(chunks) => (
            [(header::CONTENT_TYPE, CONTENT_TYPE)],
            axum::body::Body::from_stream(futures::StreamExt::chain(
                chunks,
                futures::stream::once(async move {
                    Ok::<_, std::convert::Infallible>(process.encode().unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "encoding the process metrics failed");
                        String::new()
                    }))
                }),
            )),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "encoding metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("encoding metrics failed: {e}\n"),
            )
                .into_response()
        }
    }
}

async fn get_healthz(State(state): State<AdminState>) -> Response {
    probe(state.health.liveness())
}

async fn get_readyz(State(state): State<AdminState>) -> Response {
    probe(state.health.readiness())
}

/// Serves `GET /metrics`, `GET /healthz` and `GET /readyz` on `listener` until `shutdown`
/// completes, then lets requests in flight finish and returns.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    metrics: Arc<dyn Encode>,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(get_metrics))
        .route("/healthz", get(get_healthz))
        .route("/readyz", get(get_readyz))
        .with_state(AdminState {
            metrics,
            process: Arc::new(process_registry()),
            health,
        });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_waits_for_every_source_and_names_those_missing() {
        let health = Health::new(["nodes", "configmaps", "pods"], Duration::from_secs(30));
        assert_eq!(
            health.readiness(),
            Err("waiting for the first full list of: configmaps, nodes, pods".to_owned())
        );
        health.synced("nodes");
        health.synced("pods");
        health.synced("not-a-source");
        assert_eq!(
            health.readiness(),
            Err("waiting for the first full list of: configmaps".to_owned())
        );
        health.synced("configmaps");
        assert_eq!(health.readiness(), Ok(()));
    }

    #[test]
    fn a_process_without_sources_is_ready_at_once() {
        assert_eq!(
            Health::new(Vec::<String>::new(), Duration::from_secs(1)).readiness(),
            Ok(())
        );
    }

    #[test]
    fn liveness_fails_once_the_loop_stops_beating() {
        let health = Health::new(["nodes"], Duration::from_secs(10));
        health.beat();
        let now = Instant::now();
        assert_eq!(health.liveness_at(now), Ok(()));
        assert_eq!(health.liveness_at(now + Duration::from_secs(5)), Ok(()));
        let err = health.liveness_at(now + Duration::from_secs(11)).unwrap_err();
        assert!(err.starts_with("process loop stalled: last beat 1"), "{err}");
        assert!(err.ends_with("(limit 10.0s)"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_registry_has_the_standard_process_families() {
        let text = process_registry().encode().unwrap();
        for family in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} missing in\n{text}"
            );
        }
    }

    #[test]
    fn clones_of_health_share_their_state() {
        let health = Health::new(["nodes"], Duration::from_secs(10));
        let probe_side = health.clone();
        health.synced("nodes");
        assert_eq!(probe_side.readiness(), Ok(()));
    }
}
