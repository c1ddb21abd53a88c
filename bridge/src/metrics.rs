//! Prometheus metrics and the admin HTTP server (`/metrics`, `/healthz`, `/readyz`).
//!
//! Boundaries: this module owns its own [`Registry`] (never the process-global one) and takes plain
//! data ([`NodeMetrics`], strings, durations), so it depends on no other bridge module and the
//! callers decide what the values mean. The only I/O it does is answering HTTP on the listener it is
//! given; it never talks to the Kubernetes API.
//!
//! Naming follows the Prometheus conventions (prefix `nodewright_bridge_`, base units, `_total`
//! counters, `_seconds` histograms) and, for enum-like values, kube-state-metrics: each Node
//! condition has one series per status (like `kube_node_status_condition{condition, status}`), and
//! the upgrade state one series for the current state only (zeros for the 20 other states would add
//! nothing); either way an alert is a plain `== 1`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The prefix of every metric name (without its trailing `_`, which the registry adds).
pub const METRIC_PREFIX: &str = "nodewright_bridge";

/// The content type of `/metrics`: the text exposition format 0.0.4, with the charset that
/// client_golang sends (`prometheus::TEXT_FORMAT` leaves it out).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of `reconcile_duration_seconds`: computing status is pure and usually sub-millisecond,
/// so the buckets start lower than the client's defaults.
const RECONCILE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Buckets of `status_write_duration_seconds`: one API round-trip, milliseconds to seconds.
const WRITE_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Buckets of `watch_event_lag_seconds`: the change times the bridge can see (Kubernetes
/// timestamps, the legacy script's epoch seconds) have a one-second resolution, so finer buckets
/// would only measure rounding.
const LAG_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// What the bridge knows about one Node, as plain data. `None` means "not known" and emits no
/// series, which is different from a known zero.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeMetrics {
    /// Whether the node's EdgeNode `Ready` condition (the bridge's health rollup) is `True`.
    pub ready: bool,
    /// Node conditions as `(type, status)`, status being `True`, `False` or `Unknown` (anything else
    /// counts as `Unknown`).
    pub conditions: Vec<(String, String)>,
    /// The node's bonds, as the legacy script last reported them.
    pub bonds: Vec<BondMetrics>,
    /// How many DRBD resources the node has.
    pub drbd_resources: Option<i64>,
    /// How many of them are UpToDate.
    pub drbd_uptodate: Option<i64>,
    /// Whether any resource is resyncing.
    pub drbd_syncing: Option<bool>,
    /// The node's upgrade state as the legacy script writes it (`WAIT_RESYNC`, …).
    pub upgrade_state: Option<String>,
    /// When the legacy script last wrote its heartbeat, in Unix seconds.
    pub heartbeat_unix: Option<i64>,
}

/// One bond of a node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BondMetrics {
    /// The bond's interface name (`bond0`).
    pub name: String,
    /// Whether the bond is up.
    pub up: bool,
    /// Its slaves as `(interface, up, link failure count)`; the count is the driver's, which
    /// resets when the bond is recreated, so it is exported as a gauge.
    pub slaves: Vec<(String, bool, i64)>,
}

/// The per-node families, replaced as a whole by [`Metrics::set_nodes`].
struct NodeFamilies {
    ready: IntGaugeVec,
    condition: IntGaugeVec,
    bond_up: IntGaugeVec,
    bond_slave_up: IntGaugeVec,
    bond_slave_link_failures: IntGaugeVec,
    drbd_resources: IntGaugeVec,
    drbd_uptodate: IntGaugeVec,
    drbd_syncing: IntGaugeVec,
    upgrade_state: IntGaugeVec,
    heartbeat: IntGaugeVec,
    /// What each node's series show now, to remove exactly those when the node changes.
    shown: BTreeMap<String, NodeMetrics>,
}

impl NodeFamilies {
    /// Sets the series of one node.
    fn add(&self, node: &str, m: &NodeMetrics) {
        let n = node;
        self.ready.with_label_values(&[n]).set(i64::from(m.ready));
        for (condition, status) in &m.conditions {
            let current = condition_status(status);
            for status in ["true", "false", "unknown"] {
                self.condition
                    .with_label_values(&[n, condition.as_str(), status])
                    .set(i64::from(status == current));
            }
        }
        for bond in &m.bonds {
            let b = bond.name.as_str();
            self.bond_up.with_label_values(&[n, b]).set(i64::from(bond.up));
            for (slave, up, failures) in &bond.slaves {
                self.bond_slave_up
                    .with_label_values(&[n, b, slave.as_str()])
                    .set(i64::from(*up));
                self.bond_slave_link_failures
                    .with_label_values(&[n, b, slave.as_str()])
                    .set(*failures);
            }
        }
        if let Some(count) = m.drbd_resources {
            self.drbd_resources.with_label_values(&[n]).set(count);
        }
        if let Some(count) = m.drbd_uptodate {
            self.drbd_uptodate.with_label_values(&[n]).set(count);
        }
        if let Some(syncing) = m.drbd_syncing {
            self.drbd_syncing.with_label_values(&[n]).set(i64::from(syncing));
        }
        if let Some(state) = &m.upgrade_state {
            self.upgrade_state.with_label_values(&[n, state.as_str()]).set(1);
        }
        if let Some(at) = m.heartbeat_unix {
            self.heartbeat.with_label_values(&[n]).set(at);
        }
    }

    /// Removes exactly the series [`NodeFamilies::add`] set for `m`. A series already gone is
    /// not an error.
    fn remove(&self, node: &str, m: &NodeMetrics) {
        let n = node;
        let _ = self.ready.remove_label_values(&[n]);
        for (condition, _) in &m.conditions {
            for status in ["true", "false", "unknown"] {
                let _ = self
                    .condition
                    .remove_label_values(&[n, condition.as_str(), status]);
            }
        }
        for bond in &m.bonds {
            let b = bond.name.as_str();
            let _ = self.bond_up.remove_label_values(&[n, b]);
            for (slave, _, _) in &bond.slaves {
                let _ = self.bond_slave_up.remove_label_values(&[n, b, slave.as_str()]);
                let _ = self
                    .bond_slave_link_failures
                    .remove_label_values(&[n, b, slave.as_str()]);
            }
        }
        let _ = self.drbd_resources.remove_label_values(&[n]);
        let _ = self.drbd_uptodate.remove_label_values(&[n]);
        let _ = self.drbd_syncing.remove_label_values(&[n]);
        if let Some(state) = &m.upgrade_state {
            let _ = self.upgrade_state.remove_label_values(&[n, state.as_str()]);
        }
        let _ = self.heartbeat.remove_label_values(&[n]);
    }

    fn all(&self) -> [&IntGaugeVec; 10] {
        [
            &self.ready,
            &self.condition,
            &self.bond_up,
            &self.bond_slave_up,
            &self.bond_slave_link_failures,
            &self.drbd_resources,
            &self.drbd_uptodate,
            &self.drbd_syncing,
            &self.upgrade_state,
            &self.heartbeat,
        ]
    }
}

/// The bridge's metrics, in a registry of their own.
pub struct Metrics {
    registry: Registry,
    /// Held while the per-node families are replaced and while they are gathered, so a scrape
    /// never sees a half-replaced set of nodes.
    nodes: Mutex<NodeFamilies>,
    parse_errors: IntCounterVec,
    log_lines: IntCounterVec,
    reconcile_duration: Histogram,
    write_duration: HistogramVec,
    writes: IntCounterVec,
    watch_events: IntCounterVec,
    watch_lag: HistogramVec,
    leader: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let vec = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(vec.clone()))?;
    Ok(vec)
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let vec = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(vec.clone()))?;
    Ok(vec)
}

fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> prometheus::Result<HistogramVec> {
    let vec = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)?;
    registry.register(Box::new(vec.clone()))?;
    Ok(vec)
}

/// Recovers the guard of a poisoned lock: the guarded values are metric handles, which a panic
/// elsewhere cannot leave inconsistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// kube-state-metrics' spelling of a condition status: one of `true`, `false`, `unknown`.
fn condition_status(status: &str) -> &'static str {
    match status {
        "True" => "true",
        "False" => "false",
        _ => "unknown",
    }
}

impl Metrics {
    /// Creates every family in a new registry and sets `build_info` and `leader` (to 0).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some(METRIC_PREFIX.to_owned()), None)?;
        let r = &registry;
        let node = &["node"];
        let nodes = NodeFamilies {
            ready: gauge_vec(
                r,
                "node_ready",
                "Whether the node's EdgeNode Ready condition (the health rollup) is True (1) or not (0).",
                node,
            )?,
            condition: gauge_vec(
                r,
                "node_status_condition",
                "The node's EdgeNode conditions: 1 on the series whose status (true, false, unknown) is the current one.",
                &["node", "condition", "status"],
            )?,
            bond_up: gauge_vec(
                r,
                "node_bond_up",
                "Whether the bond is up (1) or down (0), as the legacy script last reported.",
                &["node", "bond"],
            )?,
            bond_slave_up: gauge_vec(
                r,
                "node_bond_slave_up",
                "Whether the bond's slave link is up (1) or down (0).",
                &["node", "bond", "slave"],
            )?,
            bond_slave_link_failures: gauge_vec(
                r,
                "node_bond_slave_link_failures",
                "The bonding driver's link failure count of the slave (resets when the bond is recreated).",
                &["node", "bond", "slave"],
            )?,
            drbd_resources: gauge_vec(r, "node_drbd_resources", "DRBD resources on the node.", node)?,
            drbd_uptodate: gauge_vec(
                r,
                "node_drbd_resources_uptodate",
                "DRBD resources whose local disk is UpToDate on the node.",
                node,
            )?,
            drbd_syncing: gauge_vec(
                r,
                "node_drbd_syncing",
                "Whether a DRBD resource of the node is resyncing (1) or not (0).",
                node,
            )?,
            upgrade_state: gauge_vec(
                r,
                "node_upgrade_state",
                "The node's storage upgrade state as the legacy script writes it: 1 on the current state.",
                &["node", "state"],
            )?,
            heartbeat: gauge_vec(
                r,
                "node_legacy_heartbeat_timestamp_seconds",
                "When the legacy script last wrote its heartbeat on the node, in Unix seconds.",
                node,
            )?,
            shown: BTreeMap::new(),
        };
        let metrics = Metrics {
            parse_errors: counter_vec(
                r,
                "parse_errors_total",
                "Legacy outputs that did not parse, by format.",
                &["format"],
            )?,
            log_lines: counter_vec(
                r,
                "log_lines_total",
                "Lines read from the legacy pods' logs, by node and kind (record, block, unknown).",
                &["node", "kind"],
            )?,
            reconcile_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "reconcile_duration_seconds",
                    "Time to compute the status of every resource from the index.",
                )
                .buckets(RECONCILE_BUCKETS.to_vec()),
            )?,
            write_duration: histogram_vec(
                r,
                "status_write_duration_seconds",
                "Time of one status write to the API server, by kind.",
                &["kind"],
                WRITE_BUCKETS,
            )?,
            writes: counter_vec(
                r,
                "status_writes_total",
                "Status writes by kind and result (applied, unchanged, failed).",
                &["kind", "result"],
            )?,
            watch_events: counter_vec(
                r,
                "watch_events_total",
                "Watch events received, by source and event.",
                &["source", "event"],
            )?,
            watch_lag: histogram_vec(
                r,
                "watch_event_lag_seconds",
                "Time from an object's change to the bridge seeing it, by source.",
                &["source"],
                LAG_BUCKETS,
            )?,
            leader: IntGauge::new(
                "leader",
                "Whether this replica holds the writer lease (1) or not (0).",
            )?,
            nodes: Mutex::new(nodes),
            registry,
        };
        metrics.registry.register(Box::new(metrics.leader.clone()))?;
        metrics
            .registry
            .register(Box::new(metrics.reconcile_duration.clone()))?;
        let build_info = gauge_vec(
            &metrics.registry,
            "build_info",
            "Always 1; the labels say which build of the bridge is running.",
            &["version"],
        )?;
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Ok(metrics)
    }

    /// The registry, for callers that want to add collectors of their own. Scrapes should go
    /// through [`Metrics::encode`], which never sees a half-replaced set of nodes.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Replaces every per-node series with what `nodes` says: a node, bond, slave, condition or
    /// upgrade state that is no longer there leaves no series behind.
    pub fn set_nodes(&self, nodes: &BTreeMap<String, NodeMetrics>) {
        let mut f = lock(&self.nodes);
        // Resetting and refilling under the lock that `encode` also takes is simpler than diffing
        // label sets, and a scrape still sees either the old set or the new one, never a mix.
        for family in f.all() {
            family.reset();
        }
        for (node, m) in nodes {
            f.add(node, m);
        }
        f.shown = nodes.clone();
    }

    /// Replaces the series of the nodes given (`None`: the node is gone) and leaves the others:
    /// what a reconcile that computed only some nodes has to say.
    pub fn update_nodes(&self, changed: impl IntoIterator<Item = (String, Option<NodeMetrics>)>) {
        let mut f = lock(&self.nodes);
        for (node, metrics) in changed {
            if let Some(before) = f.shown.remove(&node) {
                f.remove(&node, &before);
            }
            if let Some(m) = metrics {
                f.add(&node, &m);
                f.shown.insert(node, m);
            }
        }
    }

    /// Counts one legacy output of `format` that did not parse.
    pub fn parse_error(&self, format: &str) {
        self.parse_errors.with_label_values(&[format]).inc();
    }

    /// Counts `n` log lines of `kind` (`record`, `block`, `unknown`) read from `node`'s legacy pod.
    /// These counters are not pruned when a node goes away: an edge cluster has a handful of
    /// nodes, and a counter that vanished and came back would read as a reset.
    pub fn log_lines(&self, node: &str, kind: &str, n: u64) {
        self.log_lines.with_label_values(&[node, kind]).inc_by(n);
    }

    /// Records how long one reconcile (status computation) took.
    pub fn observe_reconcile(&self, d: Duration) {
        self.reconcile_duration.observe(d.as_secs_f64());
    }

    /// Counts one status write of `kind` with `result` (`applied`, `unchanged`, `failed`) and, when
    /// it reached the API server, records how long it took.
    pub fn observe_write(&self, kind: &str, result: &str, d: Option<Duration>) {
        self.writes.with_label_values(&[kind, result]).inc();
        if let Some(d) = d {
            self.write_duration
                .with_label_values(&[kind])
                .observe(d.as_secs_f64());
        }
    }

    /// Counts one watch `event` from `source` and, when the object says when it changed, records
    /// how long the change took to reach the bridge.
    pub fn watch_event(&self, source: &str, event: &str, lag: Option<Duration>) {
        self.watch_events.with_label_values(&[source, event]).inc();
        if let Some(lag) = lag {
            self.watch_lag
                .with_label_values(&[source])
                .observe(lag.as_secs_f64());
        }
    }

    /// Sets whether this replica holds the writer lease.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Every family in the text exposition format 0.0.4 (see [`CONTENT_TYPE`]).
    pub fn encode(&self) -> Result<String, prometheus::Error> {
        let families = {
            let _nodes = lock(&self.nodes);
            self.registry.gather()
        };
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(format!("metrics are not UTF-8: {e}")))
    }
}

/// Liveness and readiness of the bridge, shared by the process loop (which reports) and the admin
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
    /// A bridge that is live (as if it had just beaten) and waits for the first full list of each
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

/// Something whose metrics the admin server serves in the text format.
pub trait Encode: Send + Sync {
    /// The metrics, in the Prometheus text format.
    fn encode(&self) -> Result<String, prometheus::Error>;
}

impl Encode for Metrics {
    fn encode(&self) -> Result<String, prometheus::Error> {
        Metrics::encode(self)
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
    health: Health,
}

fn probe(result: Result<(), String>) -> Response {
    match result {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn get_metrics(State(state): State<AdminState>) -> Response {
    match state.metrics.encode() {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
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
        .with_state(AdminState { metrics, health });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics::new().expect("the families register")
    }

    /// The sample lines of `family` (exact name, any labels) in the encoded output.
    fn samples(m: &Metrics, family: &str) -> Vec<String> {
        let text = m.encode().expect("metrics encode");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.strip_prefix(family)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .map(str::to_owned)
            .collect()
    }

    fn full_node() -> NodeMetrics {
        NodeMetrics {
            ready: true,
            conditions: vec![
                ("Ready".into(), "True".into()),
                ("DiskPressure".into(), "False".into()),
            ],
            bonds: vec![BondMetrics {
                name: "bond0".into(),
                up: true,
                slaves: vec![("eno1".into(), true, 0), ("eno2".into(), false, 3)],
            }],
            drbd_resources: Some(4),
            drbd_uptodate: Some(3),
            drbd_syncing: Some(true),
            upgrade_state: Some("WAIT_RESYNC".into()),
            heartbeat_unix: Some(1_790_000_000),
        }
    }

    fn nodes(list: &[(&str, NodeMetrics)]) -> BTreeMap<String, NodeMetrics> {
        list.iter().map(|(n, m)| ((*n).to_owned(), m.clone())).collect()
    }

    #[test]
    fn updating_one_node_replaces_its_series_and_leaves_the_others() {
        let m = metrics();
        let node = |ready: bool, state: &str| NodeMetrics {
            ready,
            conditions: vec![("Ready".into(), if ready { "True" } else { "False" }.into())],
            bonds: vec![BondMetrics {
                name: "bond0".into(),
                up: true,
                slaves: vec![("eno1".into(), true, 0)],
            }],
            upgrade_state: Some(state.into()),
            ..NodeMetrics::default()
        };
        m.set_nodes(&BTreeMap::from([
            ("a".to_owned(), node(true, "PREFLIGHT")),
            ("b".to_owned(), node(true, "PREFLIGHT")),
        ]));
        m.update_nodes([
            ("a".to_owned(), Some(node(false, "WAIT_RESYNC"))),
            ("b".to_owned(), None),
        ]);
        let text = m.encode().unwrap();
        assert!(
            text.contains("nodewright_bridge_node_ready{node=\"a\"} 0"),
            "{text}"
        );
        assert!(text.contains("state=\"WAIT_RESYNC\""), "{text}");
        assert!(
            !text.contains("state=\"PREFLIGHT\""),
            "the old state's series is gone: {text}"
        );
        assert!(
            !text.contains("node=\"b\""),
            "a node that is gone has no series: {text}"
        );
    }

    #[test]
    fn a_node_that_disappears_leaves_no_series_behind() {
        let m = metrics();
        m.set_nodes(&nodes(&[("edge-1", full_node()), ("edge-2", full_node())]));
        assert!(m.encode().unwrap().contains("node=\"edge-2\""));

        m.set_nodes(&nodes(&[("edge-1", full_node())]));

        let text = m.encode().unwrap();
        assert!(text.contains("node=\"edge-1\""));
        assert!(!text.contains("node=\"edge-2\""), "{text}");
    }

    #[test]
    fn the_upgrade_state_series_moves_with_the_state() {
        let m = metrics();
        let mut node = full_node();
        m.set_nodes(&nodes(&[("edge-1", node.clone())]));
        node.upgrade_state = Some("VERIFY_VERSION".into());
        m.set_nodes(&nodes(&[("edge-1", node.clone())]));

        assert_eq!(
            samples(&m, "nodewright_bridge_node_upgrade_state"),
            ["nodewright_bridge_node_upgrade_state{node=\"edge-1\",state=\"VERIFY_VERSION\"} 1"]
        );

        node.upgrade_state = None;
        m.set_nodes(&nodes(&[("edge-1", node)]));
        assert!(samples(&m, "nodewright_bridge_node_upgrade_state").is_empty());
    }

    #[test]
    fn a_bond_slave_that_goes_away_leaves_no_series_behind() {
        let m = metrics();
        let mut node = full_node();
        m.set_nodes(&nodes(&[("edge-1", node.clone())]));
        node.bonds[0].slaves.pop();
        m.set_nodes(&nodes(&[("edge-1", node)]));

        assert_eq!(
            samples(&m, "nodewright_bridge_node_bond_slave_link_failures"),
            [
                "nodewright_bridge_node_bond_slave_link_failures{bond=\"bond0\",node=\"edge-1\",slave=\"eno1\"} 0"
            ]
        );
        assert_eq!(samples(&m, "nodewright_bridge_node_bond_slave_up").len(), 1);
    }

    #[test]
    fn a_bond_that_goes_away_takes_its_slaves_with_it() {
        let m = metrics();
        let mut node = full_node();
        m.set_nodes(&nodes(&[("edge-1", node.clone())]));
        node.bonds.clear();
        m.set_nodes(&nodes(&[("edge-1", node)]));

        assert!(samples(&m, "nodewright_bridge_node_bond_up").is_empty());
        assert!(samples(&m, "nodewright_bridge_node_bond_slave_up").is_empty());
        assert!(samples(&m, "nodewright_bridge_node_bond_slave_link_failures").is_empty());
    }

    #[test]
    fn each_condition_has_one_series_per_status_like_kube_state_metrics() {
        let m = metrics();
        let mut node = full_node();
        node.conditions = vec![("Ready".into(), "False".into())];
        m.set_nodes(&nodes(&[("edge-1", node)]));

        let mut lines = samples(&m, "nodewright_bridge_node_status_condition");
        lines.sort();
        assert_eq!(
            lines,
            [
                "nodewright_bridge_node_status_condition{condition=\"Ready\",node=\"edge-1\",status=\"false\"} 1",
                "nodewright_bridge_node_status_condition{condition=\"Ready\",node=\"edge-1\",status=\"true\"} 0",
                "nodewright_bridge_node_status_condition{condition=\"Ready\",node=\"edge-1\",status=\"unknown\"} 0",
            ]
        );
    }

    #[test]
    fn a_condition_status_that_is_not_true_or_false_counts_as_unknown() {
        assert_eq!(condition_status("Unknown"), "unknown");
        assert_eq!(condition_status("true"), "unknown");
        assert_eq!(condition_status(""), "unknown");
        assert_eq!(condition_status("True"), "true");
        assert_eq!(condition_status("False"), "false");
    }

    #[test]
    fn values_that_are_not_known_emit_no_series_while_known_zeros_do() {
        let m = metrics();
        let node = NodeMetrics {
            drbd_resources: Some(0),
            ..NodeMetrics::default()
        };
        m.set_nodes(&nodes(&[("edge-1", node)]));

        assert_eq!(
            samples(&m, "nodewright_bridge_node_drbd_resources"),
            ["nodewright_bridge_node_drbd_resources{node=\"edge-1\"} 0"]
        );
        assert!(samples(&m, "nodewright_bridge_node_drbd_resources_uptodate").is_empty());
        assert!(samples(&m, "nodewright_bridge_node_drbd_syncing").is_empty());
        assert!(samples(&m, "nodewright_bridge_node_legacy_heartbeat_timestamp_seconds").is_empty());
        assert_eq!(
            samples(&m, "nodewright_bridge_node_ready"),
            ["nodewright_bridge_node_ready{node=\"edge-1\"} 0"]
        );
    }

    #[test]
    fn every_node_family_is_filled_from_a_full_node() {
        let m = metrics();
        m.set_nodes(&nodes(&[("edge-1", full_node())]));
        let text = m.encode().unwrap();
        for line in [
            "nodewright_bridge_node_ready{node=\"edge-1\"} 1",
            "nodewright_bridge_node_bond_up{bond=\"bond0\",node=\"edge-1\"} 1",
            "nodewright_bridge_node_bond_slave_up{bond=\"bond0\",node=\"edge-1\",slave=\"eno2\"} 0",
            "nodewright_bridge_node_bond_slave_link_failures{bond=\"bond0\",node=\"edge-1\",slave=\"eno2\"} 3",
            "nodewright_bridge_node_drbd_resources{node=\"edge-1\"} 4",
            "nodewright_bridge_node_drbd_resources_uptodate{node=\"edge-1\"} 3",
            "nodewright_bridge_node_drbd_syncing{node=\"edge-1\"} 1",
            "nodewright_bridge_node_legacy_heartbeat_timestamp_seconds{node=\"edge-1\"} 1790000000",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn a_write_that_never_reached_the_api_is_counted_but_not_timed() {
        let m = metrics();
        m.observe_write("StorageUpgrade", "failed", None);
        m.observe_write("StorageUpgrade", "applied", Some(Duration::from_millis(30)));

        let text = m.encode().unwrap();
        assert!(
            text.contains(
                "nodewright_bridge_status_writes_total{kind=\"StorageUpgrade\",result=\"failed\"} 1"
            )
        );
        assert!(
            text.contains("nodewright_bridge_status_write_duration_seconds_count{kind=\"StorageUpgrade\"} 1")
        );
    }

    #[test]
    fn counters_and_histograms_accumulate() {
        let m = metrics();
        m.parse_error("drbd-status");
        m.parse_error("drbd-status");
        m.log_lines("edge-1", "record", 5);
        m.log_lines("edge-1", "record", 2);
        m.watch_event("nodes", "apply", Some(Duration::from_secs(3)));
        m.watch_event("nodes", "apply", None);
        m.observe_reconcile(Duration::from_micros(700));

        let text = m.encode().unwrap();
        for line in [
            "nodewright_bridge_parse_errors_total{format=\"drbd-status\"} 2",
            "nodewright_bridge_log_lines_total{kind=\"record\",node=\"edge-1\"} 7",
            "nodewright_bridge_watch_events_total{event=\"apply\",source=\"nodes\"} 2",
            "nodewright_bridge_watch_event_lag_seconds_count{source=\"nodes\"} 1",
            "nodewright_bridge_watch_event_lag_seconds_bucket{source=\"nodes\",le=\"2\"} 0",
            "nodewright_bridge_watch_event_lag_seconds_bucket{source=\"nodes\",le=\"5\"} 1",
            "nodewright_bridge_reconcile_duration_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn leader_and_build_info_are_there_from_the_start() {
        let m = metrics();
        assert_eq!(
            samples(&m, "nodewright_bridge_leader"),
            ["nodewright_bridge_leader 0"]
        );
        m.set_leader(true);
        assert_eq!(
            samples(&m, "nodewright_bridge_leader"),
            ["nodewright_bridge_leader 1"]
        );
        assert_eq!(
            samples(&m, "nodewright_bridge_build_info"),
            [format!(
                "nodewright_bridge_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )]
        );
    }

    #[test]
    fn every_family_has_the_prefix_and_help_text() {
        let m = metrics();
        m.set_nodes(&nodes(&[("edge-1", full_node())]));
        m.parse_error("bonding");
        m.log_lines("edge-1", "block", 1);
        m.observe_reconcile(Duration::from_millis(1));
        m.observe_write("Node", "applied", Some(Duration::from_millis(1)));
        m.watch_event("configmaps", "apply", Some(Duration::from_secs(1)));

        let families = m.registry().gather();
        assert_eq!(families.len(), 19);
        for family in families {
            assert!(
                family.name().starts_with("nodewright_bridge_"),
                "{}",
                family.name()
            );
            assert!(!family.help().is_empty(), "{} has no help", family.name());
        }
    }

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
    fn a_bridge_without_sources_is_ready_at_once() {
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

    #[test]
    fn clones_of_health_share_their_state() {
        let health = Health::new(["nodes"], Duration::from_secs(10));
        let probe_side = health.clone();
        health.synced("nodes");
        assert_eq!(probe_side.readiness(), Ok(()));
    }
}
