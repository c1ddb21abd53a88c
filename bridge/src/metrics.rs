//! The bridge's Prometheus metrics; the kit's admin server serves them (`/metrics`).
//!
//! Boundaries: this module owns its own [`Registry`] (never the process-global one) and takes plain
//! data ([`NodeMetrics`], strings, durations), so it depends on no other bridge module and the
//! callers decide what the values mean. It does no I/O.
//!
//! Naming follows the Prometheus conventions (prefix `nodewright_bridge_`, base units, `_total`
//! counters, `_seconds` histograms) and, for enum-like values, kube-state-metrics: each Node
//! condition has one series per status (like `kube_node_status_condition{condition, status}`), and
//! the upgrade state one series for the current state only (zeros for the 20 other states would add
//! nothing); either way an alert is a plain `== 1`.

use std::collections::BTreeMap;

use futures::StreamExt as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nodewright_kit::admin::Chunks;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The prefix of every metric name (without its trailing `_`, which the registry adds).
pub const METRIC_PREFIX: &str = "nodewright_bridge";

/// The content type of `/metrics` (the kit's admin server sends it).
pub use nodewright_kit::admin::CONTENT_TYPE;

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

/// One workflow object (StorageUpgrade, Migration, BondFlip) the bridge observed, as plain data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkflowMetrics {
    /// The kind (`StorageUpgrade`, `Migration`, `BondFlip`).
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The current phase in the API's spelling (`WaitResync`, `Completed`, …).
    pub phase: String,
    /// Whether the phase is one the workflow stays in (completed, rolled back, failed).
    pub terminal: bool,
    /// When the current phase was entered, in Unix seconds, when known.
    pub phase_since_unix: Option<i64>,
    /// Nodes done and nodes to do, for a workflow that goes node by node (a storage upgrade).
    pub progress: Option<(i64, i64)>,
}

/// A per-node family: rendered by hand from [`NodeMetrics`] at scrape time rather than kept as
/// series in the registry. A site of thousands of nodes has about 30 series a node; as
/// `IntGaugeVec` children they took about 15 KiB a node, and encoding them through the registry
/// another 12 KiB a node during each scrape.
struct NodeFamily {
    /// The name without the prefix.
    name: &'static str,
    help: &'static str,
    /// Appends the node's samples of this family.
    samples: fn(&mut Samples<'_>, &str, &NodeMetrics),
}

/// The per-node families, in the order of their names (as the registry orders its own).
const NODE_FAMILIES: [NodeFamily; 10] = [
    NodeFamily {
        name: "node_bond_slave_link_failures",
        help: "The bonding driver's link failure count of the slave (resets when the bond is recreated).",
        samples: |s, n, m| s.slaves(n, m, |_, failures| failures),
    },
    NodeFamily {
        name: "node_bond_slave_up",
        help: "Whether the bond's slave link is up (1) or down (0).",
        samples: |s, n, m| s.slaves(n, m, |up, _| i64::from(up)),
    },
    NodeFamily {
        name: "node_bond_up",
        help: "Whether the bond is up (1) or down (0), as the legacy script last reported.",
        samples: |s, n, m| {
            for bond in &m.bonds {
                s.sample(&[("bond", &bond.name), ("node", n)], i64::from(bond.up));
            }
        },
    },
    NodeFamily {
        name: "node_drbd_resources",
        help: "DRBD resources on the node.",
        samples: |s, n, m| s.optional(n, m.drbd_resources),
    },
    NodeFamily {
        name: "node_drbd_resources_uptodate",
        help: "DRBD resources whose local disk is UpToDate on the node.",
        samples: |s, n, m| s.optional(n, m.drbd_uptodate),
    },
    NodeFamily {
        name: "node_drbd_syncing",
        help: "Whether a DRBD resource of the node is resyncing (1) or not (0).",
        samples: |s, n, m| s.optional(n, m.drbd_syncing.map(i64::from)),
    },
    NodeFamily {
        name: "node_legacy_heartbeat_timestamp_seconds",
        help: "When the legacy script last wrote its heartbeat on the node, in Unix seconds.",
        samples: |s, n, m| s.optional(n, m.heartbeat_unix),
    },
    NodeFamily {
        name: "node_ready",
        help: "Whether the node's EdgeNode Ready condition (the health rollup) is True (1) or not (0).",
        samples: |s, n, m| s.sample(&[("node", n)], i64::from(m.ready)),
    },
    NodeFamily {
        name: "node_status_condition",
        help: "The node's EdgeNode conditions: 1 on the series whose status (true, false, unknown) is the current one.",
        samples: |s, n, m| {
            for (condition, status) in &m.conditions {
                let current = condition_status(status);
                for status in ["false", "true", "unknown"] {
                    s.sample(
                        &[("condition", condition), ("node", n), ("status", status)],
                        i64::from(status == current),
                    );
                }
            }
        },
    },
    NodeFamily {
        name: "node_upgrade_state",
        help: "The node's storage upgrade state as the legacy script writes it: 1 on the current state.",
        samples: |s, n, m| {
            if let Some(state) = &m.upgrade_state {
                s.sample(&[("node", n), ("state", state)], 1);
            }
        },
    },
];

/// Appends samples of one family to a chunk of the text format, writing the family's `# HELP`
/// and `# TYPE` lines before its first sample (a family with no sample is left out, as the
/// registry leaves out an empty vector).
struct Samples<'a> {
    out: &'a mut String,
    family: &'static NodeFamily,
    header: &'a mut bool,
}

impl Samples<'_> {
    fn sample(&mut self, labels: &[(&str, &str)], value: i64) {
        use std::fmt::Write as _;
        let out = &mut *self.out;
        if !*self.header {
            *self.header = true;
            let _ = write!(out, "# HELP {METRIC_PREFIX}_{} ", self.family.name);
            escape_into(out, self.family.help, false);
            let _ = writeln!(out, "\n# TYPE {METRIC_PREFIX}_{} gauge", self.family.name);
        }
        let _ = write!(out, "{METRIC_PREFIX}_{}", self.family.name);
        for (i, (name, value)) in labels.iter().enumerate() {
            out.push(if i == 0 { '{' } else { ',' });
            out.push_str(name);
            out.push_str("=\"");
            escape_into(out, value, true);
            out.push('"');
        }
        if !labels.is_empty() {
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
    }

    /// One `{bond, node, slave}` sample for each slave of each bond, of the value `value` gives
    /// for the slave's `(up, link failures)`.
    fn slaves(&mut self, node: &str, m: &NodeMetrics, value: fn(bool, i64) -> i64) {
        for bond in &m.bonds {
            for (slave, up, failures) in &bond.slaves {
                self.sample(
                    &[("bond", &bond.name), ("node", node), ("slave", slave)],
                    value(*up, *failures),
                );
            }
        }
    }

    /// One `{node}` sample when the value is known.
    fn optional(&mut self, node: &str, value: Option<i64>) {
        if let Some(value) = value {
            self.sample(&[("node", node)], value);
        }
    }
}

/// Escapes text for the text format: a backslash and a line feed everywhere, a double quote in
/// label values.
fn escape_into(out: &mut String, text: &str, label_value: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if label_value => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// The per-node values as last set, and the generation of the last [`Metrics::set_nodes`] (to drop
/// the nodes it did not name).
#[derive(Default)]
struct NodeValues {
    nodes: BTreeMap<String, (NodeMetrics, u64)>,
    generation: u64,
}

/// Where a streamed scrape of the per-node families has got to.
#[derive(Default)]
struct Cursor {
    /// Index into [`NODE_FAMILIES`].
    family: usize,
    /// The last node rendered of that family.
    after: Option<String>,
    /// Whether the family's header is out.
    header: bool,
}

/// About how large a chunk of a streamed scrape grows before it is sent.
const CHUNK: usize = 32 * 1024;

/// The bridge's metrics, in a registry of their own.
pub struct Metrics {
    registry: Registry,
    /// The per-node values, rendered at scrape time (see [`NodeFamily`]).
    nodes: Mutex<NodeValues>,
    parse_errors: IntCounterVec,
    log_lines: IntCounterVec,
    reconcile_duration: Histogram,
    write_duration: HistogramVec,
    writes: IntCounterVec,
    watch_events: IntCounterVec,
    watch_lag: HistogramVec,
    leader: IntGauge,
    workflow_phase: IntGaugeVec,
    workflow_since: IntGaugeVec,
    workflow_nodes_done: IntGaugeVec,
    workflow_nodes_total: IntGaugeVec,
    /// The label sets of the workflow series last set, to remove those of workflows that left.
    workflow_series: Mutex<Vec<(String, String, String)>>,
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
            workflow_phase: gauge_vec(
                r,
                "workflow_phase",
                "Workflow objects (StorageUpgrade, Migration, BondFlip) by current phase: 1 on the current phase; terminal is true for Completed, RolledBack and Failed.",
                &["kind", "name", "phase", "terminal"],
            )?,
            workflow_since: gauge_vec(
                r,
                "workflow_phase_since_timestamp_seconds",
                "When the workflow entered its current phase, in Unix seconds.",
                &["kind", "name", "phase"],
            )?,
            workflow_nodes_done: gauge_vec(
                r,
                "workflow_nodes_done",
                "Nodes a node-by-node workflow (a storage upgrade) has finished.",
                &["kind", "name"],
            )?,
            workflow_nodes_total: gauge_vec(
                r,
                "workflow_nodes",
                "Nodes a node-by-node workflow (a storage upgrade) has to do.",
                &["kind", "name"],
            )?,
            workflow_series: Mutex::new(Vec::new()),
            nodes: Mutex::new(NodeValues::default()),
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

    /// The registry, for callers that want to add collectors of their own. It does not hold the
    /// per-node families, which [`Metrics::encode`] and [`Encode::chunks`] render from the values.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Replaces every node's values with those given: a node not given leaves no series behind,
    /// and neither does a bond, slave, condition or upgrade state that is no longer there.
    pub fn set_nodes<K: AsRef<str>>(&self, nodes: impl IntoIterator<Item = (K, NodeMetrics)>) {
        let mut values = lock(&self.nodes);
        values.generation += 1;
        let generation = values.generation;
        for (node, m) in nodes {
            // Updated in place: a full reconcile of a large site should not build a second map.
            match values.nodes.get_mut(node.as_ref()) {
                Some(slot) => *slot = (m, generation),
                None => {
                    values.nodes.insert(node.as_ref().to_owned(), (m, generation));
                }
            }
        }
        values.nodes.retain(|_, (_, g)| *g == generation);
    }

    /// Replaces the values of the nodes given (`None`: the node is gone) and leaves the others:
    /// what a reconcile that computed only some nodes has to say.
    pub fn update_nodes(&self, changed: impl IntoIterator<Item = (String, Option<NodeMetrics>)>) {
        let mut values = lock(&self.nodes);
        let generation = values.generation;
        for (node, metrics) in changed {
            match metrics {
                Some(m) => {
                    values.nodes.insert(node, (m, generation));
                }
                None => {
                    values.nodes.remove(&node);
                }
            }
        }
    }

    /// Replaces every workflow's series with those of `workflows`: a workflow that is gone, or
    /// that left a phase, leaves no series behind. Series that stay are set in place, so a
    /// scrape never sees a workflow missing while it is being updated.
    pub fn set_workflows(&self, workflows: &[WorkflowMetrics]) {
        let mut last = lock(&self.workflow_series);
        let now: Vec<(String, String, String)> = workflows
            .iter()
            .map(|w| (w.kind.clone(), w.name.clone(), w.phase.clone()))
            .collect();
        for w in workflows {
            let terminal = if w.terminal { "true" } else { "false" };
            let _ = self.workflow_phase.remove_label_values(&[
                w.kind.as_str(),
                &w.name,
                &w.phase,
                if w.terminal { "false" } else { "true" },
            ]);
            self.workflow_phase
                .with_label_values(&[w.kind.as_str(), &w.name, &w.phase, terminal])
                .set(1);
            match w.phase_since_unix {
                Some(at) => self
                    .workflow_since
                    .with_label_values(&[&w.kind, &w.name, &w.phase])
                    .set(at),
                None => {
                    let _ = self
                        .workflow_since
                        .remove_label_values(&[&w.kind, &w.name, &w.phase]);
                }
            }
            match w.progress {
                Some((done, total)) => {
                    self.workflow_nodes_done
                        .with_label_values(&[&w.kind, &w.name])
                        .set(done);
                    self.workflow_nodes_total
                        .with_label_values(&[&w.kind, &w.name])
                        .set(total);
                }
                None => {
                    let _ = self.workflow_nodes_done.remove_label_values(&[&w.kind, &w.name]);
                    let _ = self.workflow_nodes_total.remove_label_values(&[&w.kind, &w.name]);
                }
            }
        }
        for (kind, name, phase) in last.iter().filter(|s| !now.contains(s)) {
            for terminal in ["true", "false"] {
                let _ = self
                    .workflow_phase
                    .remove_label_values(&[kind.as_str(), name, phase, terminal]);
            }
            let _ = self.workflow_since.remove_label_values(&[kind, name, phase]);
            if !now.iter().any(|(k, n, _)| k == kind && n == name) {
                let _ = self.workflow_nodes_done.remove_label_values(&[kind, name]);
                let _ = self.workflow_nodes_total.remove_label_values(&[kind, name]);
            }
        }
        *last = now;
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

    /// Counts `n` objects that needed no write (`result="unchanged"`, `kind="any"`).
    pub fn unchanged(&self, n: usize) {
        self.writes
            .with_label_values(&["any", "unchanged"])
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
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

    /// Every family in the text exposition format 0.0.4 (see [`CONTENT_TYPE`]), at once: the
    /// concatenation of what [`Encode::chunks`] streams.
    pub fn encode(&self) -> Result<String, prometheus::Error> {
        let mut text = self.encode_registry()?;
        let mut cursor = Cursor::default();
        while let Some(chunk) = self.node_chunk(&mut cursor) {
            text.push_str(&chunk);
        }
        Ok(text)
    }

    /// The families of the registry (everything but the per-node ones).
    fn encode_registry(&self) -> Result<String, prometheus::Error> {
        TextEncoder::new().encode_to_string(&self.registry.gather())
    }

    /// The next chunk of the per-node families from `cursor` on, about [`CHUNK`] bytes, or `None`
    /// when every family is out. The values are read under the lock for one chunk at a time, so
    /// a scrape holds neither the lock nor the whole text for long: each sample is as it was
    /// when its chunk was rendered, as if the scrape had read the nodes one after another.
    fn node_chunk(&self, cursor: &mut Cursor) -> Option<String> {
        use std::ops::Bound;
        if cursor.family >= NODE_FAMILIES.len() {
            return None;
        }
        let mut out = String::with_capacity(CHUNK + 1024);
        let values = lock(&self.nodes);
        while cursor.family < NODE_FAMILIES.len() && out.len() < CHUNK {
            let family = &NODE_FAMILIES[cursor.family];
            let from = match &cursor.after {
                Some(after) => Bound::Excluded(after.as_str()),
                None => Bound::Unbounded,
            };
            let mut last = None;
            let mut full = false;
            for (node, (m, _)) in values.nodes.range::<str, _>((from, Bound::Unbounded)) {
                if out.len() >= CHUNK {
                    full = true;
                    break;
                }
                let mut samples = Samples {
                    out: &mut out,
                    family,
                    header: &mut cursor.header,
                };
                (family.samples)(&mut samples, node, m);
                last = Some(node);
            }
            if full {
                if let Some(node) = last {
                    cursor.after = Some(node.clone());
                }
            } else {
                cursor.family += 1;
                cursor.after = None;
                cursor.header = false;
            }
        }
        Some(out)
    }
}

impl nodewright_kit::admin::Encode for Metrics {
    fn encode(&self) -> Result<String, prometheus::Error> {
        Metrics::encode(self)
    }

    /// The registry's families first, then the per-node families about [`CHUNK`] bytes at a time.
    fn chunks(self: Arc<Self>) -> Result<Chunks, prometheus::Error> {
        let first = self.encode_registry()?;
        let rest = futures::stream::unfold((self, Cursor::default()), |(metrics, mut cursor)| async move {
            let chunk = metrics.node_chunk(&mut cursor)?;
            Some((Ok(chunk), (metrics, cursor)))
        });
        Ok(Box::pin(
            futures::stream::once(async move { Ok(first) }).chain(rest),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodewright_kit::admin::Encode as _;
    use std::collections::BTreeSet;

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
        m.set_nodes(BTreeMap::from([
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
        m.set_nodes(nodes(&[("edge-1", full_node()), ("edge-2", full_node())]));
        assert!(m.encode().unwrap().contains("node=\"edge-2\""));

        m.set_nodes(nodes(&[("edge-1", full_node())]));

        let text = m.encode().unwrap();
        assert!(text.contains("node=\"edge-1\""));
        assert!(!text.contains("node=\"edge-2\""), "{text}");
    }

    #[test]
    fn the_upgrade_state_series_moves_with_the_state() {
        let m = metrics();
        let mut node = full_node();
        m.set_nodes(nodes(&[("edge-1", node.clone())]));
        node.upgrade_state = Some("VERIFY_VERSION".into());
        m.set_nodes(nodes(&[("edge-1", node.clone())]));

        assert_eq!(
            samples(&m, "nodewright_bridge_node_upgrade_state"),
            ["nodewright_bridge_node_upgrade_state{node=\"edge-1\",state=\"VERIFY_VERSION\"} 1"]
        );

        node.upgrade_state = None;
        m.set_nodes(nodes(&[("edge-1", node)]));
        assert!(samples(&m, "nodewright_bridge_node_upgrade_state").is_empty());
    }

    #[test]
    fn a_bond_slave_that_goes_away_leaves_no_series_behind() {
        let m = metrics();
        let mut node = full_node();
        m.set_nodes(nodes(&[("edge-1", node.clone())]));
        node.bonds[0].slaves.pop();
        m.set_nodes(nodes(&[("edge-1", node)]));

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
        m.set_nodes(nodes(&[("edge-1", node.clone())]));
        node.bonds.clear();
        m.set_nodes(nodes(&[("edge-1", node)]));

        assert!(samples(&m, "nodewright_bridge_node_bond_up").is_empty());
        assert!(samples(&m, "nodewright_bridge_node_bond_slave_up").is_empty());
        assert!(samples(&m, "nodewright_bridge_node_bond_slave_link_failures").is_empty());
    }

    #[test]
    fn each_condition_has_one_series_per_status_like_kube_state_metrics() {
        let m = metrics();
        let mut node = full_node();
        node.conditions = vec![("Ready".into(), "False".into())];
        m.set_nodes(nodes(&[("edge-1", node)]));

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
        m.set_nodes(nodes(&[("edge-1", node)]));

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
        m.set_nodes(nodes(&[("edge-1", full_node())]));
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

    fn workflow(name: &str, phase: &str, terminal: bool, progress: Option<(i64, i64)>) -> WorkflowMetrics {
        WorkflowMetrics {
            kind: "StorageUpgrade".into(),
            name: name.into(),
            phase: phase.into(),
            terminal,
            phase_since_unix: Some(1_790_000_000),
            progress,
        }
    }

    #[test]
    fn a_workflow_that_moves_on_or_leaves_takes_its_old_series_with_it() {
        let m = metrics();
        m.set_workflows(&[
            workflow("up-1", "WaitResync", false, Some((1, 3))),
            workflow("up-2", "Pending", false, None),
        ]);
        assert_eq!(
            samples(&m, "nodewright_bridge_workflow_nodes_done"),
            ["nodewright_bridge_workflow_nodes_done{kind=\"StorageUpgrade\",name=\"up-1\"} 1"]
        );
        m.set_workflows(&[workflow("up-1", "Completed", true, Some((3, 3)))]);

        assert_eq!(
            samples(&m, "nodewright_bridge_workflow_phase"),
            [
                "nodewright_bridge_workflow_phase{kind=\"StorageUpgrade\",name=\"up-1\",phase=\"Completed\",terminal=\"true\"} 1"
            ]
        );
        assert_eq!(
            samples(&m, "nodewright_bridge_workflow_phase_since_timestamp_seconds"),
            [
                "nodewright_bridge_workflow_phase_since_timestamp_seconds{kind=\"StorageUpgrade\",name=\"up-1\",phase=\"Completed\"} 1790000000"
            ]
        );
        assert_eq!(
            samples(&m, "nodewright_bridge_workflow_nodes"),
            ["nodewright_bridge_workflow_nodes{kind=\"StorageUpgrade\",name=\"up-1\"} 3"]
        );
        m.set_workflows(&[]);
        assert!(!m.encode().unwrap().contains("up-1"));
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
        m.set_nodes(nodes(&[("edge-1", full_node())]));
        m.parse_error("bonding");
        m.log_lines("edge-1", "block", 1);
        m.observe_reconcile(Duration::from_millis(1));
        m.observe_write("Node", "applied", Some(Duration::from_millis(1)));
        m.watch_event("configmaps", "apply", Some(Duration::from_secs(1)));

        let text = m.encode().unwrap();
        let help: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# HELP ")).collect();
        let types: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).collect();
        assert_eq!(help.len(), 19, "{text}");
        assert_eq!(types.len(), 19, "{text}");
        for (help, ty) in help.iter().zip(&types) {
            let (name, help) = help.split_once(' ').unwrap();
            assert!(name.starts_with("nodewright_bridge_"), "{name}");
            assert!(!help.is_empty(), "{name} has no help");
            assert_eq!(ty.split_once(' ').unwrap().0, name, "TYPE follows HELP");
        }
    }

    #[test]
    fn a_scrape_of_many_nodes_streams_in_chunks_with_each_family_in_one_piece() {
        let m = Arc::new(metrics());
        let many: BTreeMap<String, NodeMetrics> =
            (0..600).map(|i| (format!("edge-{i:04}"), full_node())).collect();
        m.set_nodes(many);

        let chunks: Vec<String> = futures::executor::block_on(
            m.clone()
                .chunks()
                .expect("the registry encodes")
                .collect::<Vec<_>>(),
        )
        .into_iter()
        .map(|c| c.unwrap_or_else(|never| match never {}))
        .collect();
        assert!(
            chunks.len() > 10,
            "600 nodes take more than ten chunks: {}",
            chunks.len()
        );
        assert!(
            chunks.iter().all(|c| c.len() < CHUNK + 4096),
            "no chunk grows far past the size"
        );
        let text = chunks.concat();
        assert_eq!(text, m.encode().unwrap(), "the stream and the whole text agree");

        // Each family's samples follow its one HELP/TYPE pair, never split by another family.
        let mut seen = BTreeSet::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().unwrap().to_owned();
                assert!(seen.insert(current.clone()), "{current} appears twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| *f == current))
                    .unwrap_or(name);
                assert_eq!(family, current, "{line}");
            }
        }
        assert_eq!(samples(&m, "nodewright_bridge_node_ready").len(), 600);
        assert_eq!(
            samples(&m, "nodewright_bridge_node_status_condition").len(),
            600 * 2 * 3
        );
    }

    #[test]
    fn label_values_and_help_are_escaped_for_the_text_format() {
        let mut out = String::new();
        escape_into(&mut out, "a\\b\"c\nd", true);
        assert_eq!(out, r#"a\\b\"c\nd"#);
        out.clear();
        escape_into(&mut out, "a\\b\"c\nd", false);
        assert_eq!(out, r#"a\\b"c\nd"#);

        let m = metrics();
        let node = NodeMetrics {
            upgrade_state: Some("odd \"state\"\n".into()),
            ..NodeMetrics::default()
        };
        m.set_nodes([("edge-1", node)]);
        assert_eq!(
            samples(&m, "nodewright_bridge_node_upgrade_state"),
            [r#"nodewright_bridge_node_upgrade_state{node="edge-1",state="odd \"state\"\n"} 1"#]
        );
    }
}
