//! The bridge's process loop: sources feed changes into the index, a reconcile computes the
//! observation from it (pure) and hands the result to the one status writer, the metrics and the
//! Kubernetes Events for new parse errors. Leader election decides who may write; every replica
//! keeps its index warm so that a new leader writes at once.
//!
//! This module owns the wiring and the clock; the decisions are in [`crate::observe`].

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::ApiResource;
use kube::runtime::events::{Event, EventType};
use kube::{Client, Resource};
use nodewright_api::bondflip::BondFlip;
use nodewright_api::common::condition_type as ct;
use nodewright_api::edgecluster::EdgeCluster;
use nodewright_api::edgenode::EdgeNode;
use nodewright_api::migration::Migration;
use nodewright_api::storageupgrade::StorageUpgrade;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::index::{Diagnostic, Dirty, Index, LegacyNames};
use crate::metrics::{BondMetrics, Metrics, NodeMetrics, WorkflowMetrics};
use crate::observe::{Observation, ObserveConfig, Observed, observe};
use crate::source::{self, Change};
use crate::writer::{Desired, Fingerprints, StatusWriter, WriteReport, WriterConfig};
use nodewright_kit::admin::Health;
use nodewright_kit::clock::unix_now;
use nodewright_kit::lease::LeaseConfig;

/// How long the loop may go without a turn before `/healthz` fails.
const LIVENESS_LIMIT: Duration = Duration::from_secs(300);

/// The label every object the bridge creates carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "nodewright-bridge");

/// How the bridge runs.
#[derive(Clone, Debug)]
pub struct BridgeOptions {
    /// Namespace of Nodewright's own objects (status, Events, the Lease).
    pub namespace: String,
    /// Names of the legacy objects.
    pub legacy: LegacyNames,
    /// Status computation settings.
    pub observe: ObserveConfig,
    /// Where to serve `/metrics`, `/healthz` and `/readyz`, if anywhere.
    pub admin_addr: Option<SocketAddr>,
    /// Leader election; `None` writes without electing (a single replica).
    pub lease: Option<LeaseConfig>,
    /// Writer settings.
    pub writer: WriterConfig,
    /// How long to gather changes before a reconcile.
    pub debounce: Duration,
    /// How often to reconcile with no change (staleness is a matter of time passing).
    pub resync: Duration,
    /// This replica's name, for Events.
    pub identity: String,
}

impl BridgeOptions {
    /// Defaults for a bridge writing into `namespace`.
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        let namespace = namespace.into();
        let identity = identity.into();
        BridgeOptions {
            legacy: LegacyNames::default(),
            observe: ObserveConfig::default(),
            admin_addr: None,
            lease: Some(LeaseConfig::standard(
                namespace.clone(),
                "nodewright-bridge",
                identity.clone(),
            )),
            // A site's legacy loops change each node's status about every 30 s: 5,000 nodes
            // are about 170 changes a second. The limit sits above that and protects the API
            // server from a burst (a relist after an outage rewrites every object once).
            writer: WriterConfig {
                field_manager: "nodewright-bridge".to_owned(),
                max_writes_per_second: 300.0,
                burst: 600,
            },
            debounce: Duration::from_millis(200),
            resync: Duration::from_secs(10),
            namespace,
            identity,
        }
    }
}

/// Errors that stop the bridge (everything else is logged, counted and retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metrics registry could not be built.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The admin port could not be bound.
    #[error("binding the admin server to {addr}: {source}")]
    Admin {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    /// A low-cardinality label for failure metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Metrics(_) => "metrics",
            Error::Admin { .. } => "admin",
        }
    }
}

/// The index and the last observation: the state of one bridge, without any I/O.
#[derive(Debug)]
pub struct Bridge {
    /// The index of legacy state.
    pub index: Index,
    config: ObserveConfig,
    last: Option<Observation>,
    /// The EdgeNodes this bridge maintains: those of the last reconcile, and on a new term those
    /// that exist. A node that leaves the site (its Node and its node ConfigMap both gone) loses
    /// its EdgeNode.
    maintained: BTreeSet<String>,
    /// What the last reconcile could not represent, so that each is reported once when it appears.
    unrepresentable: BTreeSet<String>,
}

/// What one reconcile decided, for the loop to carry out; computing it did no I/O.
#[derive(Debug, Default)]
pub struct Reconcile {
    /// Parse errors that appeared since the last reconcile: logged, counted, and reported as
    /// Events.
    pub new_errors: Vec<Diagnostic>,
    /// What the observation changed: the objects to hand to the writer and the metrics to update.
    pub changed: Dirty,
    /// Legacy state that no Nodewright object can show, that appeared since the last reconcile.
    pub newly_unrepresentable: Vec<String>,
    /// Nodes that left the site since the last reconcile: their EdgeNodes are deleted.
    pub gone: Vec<String>,
}

impl Bridge {
    /// An empty bridge.
    pub fn new(legacy: LegacyNames, config: ObserveConfig) -> Self {
        Bridge {
            index: Index::new(legacy),
            config,
            last: None,
            maintained: BTreeSet::new(),
            unrepresentable: BTreeSet::new(),
        }
    }

    /// A new term begins: the EdgeNodes that exist are maintained too, so that those of nodes that
    /// left while no replica led are deleted by the next reconcile.
    pub fn adopt(&mut self, existing: impl IntoIterator<Item = String>) {
        self.maintained.extend(existing);
    }

    /// One reconcile at `now`: everything when `full`, else what the index says changed. Brings
    /// the observation up to date and says what follows from it.
    pub fn reconcile(&mut self, full: bool, now: i64) -> Reconcile {
        let new_errors = self.index.take_new_errors();
        let changed = if full {
            self.observe(now);
            Dirty::everything()
        } else {
            self.observe_changed(now)
        };
        let observation = self.last.as_ref().unwrap_or(&EMPTY);
        let newly_unrepresentable = observation
            .unrepresentable
            .iter()
            .filter(|s| !self.unrepresentable.contains(*s))
            .cloned()
            .collect();
        self.unrepresentable = observation.unrepresentable.iter().cloned().collect();
        // Updated in place, so that a reconcile does not copy every node's name.
        let gone: Vec<String> = self
            .maintained
            .iter()
            .filter(|n| !observation.nodes.contains_key(*n))
            .cloned()
            .collect();
        for name in &gone {
            self.maintained.remove(name);
        }
        for name in observation.nodes.keys() {
            if !self.maintained.contains(name) {
                self.maintained.insert(name.clone());
            }
        }
        Reconcile {
            new_errors,
            changed,
            newly_unrepresentable,
            gone,
        }
    }

    /// Takes in one change.
    pub fn apply(&mut self, change: Change, now: i64) {
        source::apply(&mut self.index, change, now);
    }

    /// Computes the whole observation at `now`, keeping condition times from the previous one.
    /// In place, node by node: a site of thousands of nodes never holds two observations.
    pub fn observe(&mut self, now: i64) -> &Observation {
        self.index.take_dirty();
        let last = self.last.get_or_insert_with(Observation::default);
        crate::observe::observe_changed(&self.index, &self.config, now, last, &Dirty::everything());
        last
    }

    /// Brings the observation up to date where the index changed since the last observation;
    /// returns what changed. The first call computes everything.
    pub fn observe_changed(&mut self, now: i64) -> Dirty {
        let mut dirty = self.index.take_dirty();
        match &mut self.last {
            Some(last) => crate::observe::observe_changed(&self.index, &self.config, now, last, &dirty),
            None => {
                dirty.all = true;
                self.last = Some(observe(&self.index, &self.config, now, None));
            }
        }
        dirty
    }

    /// The last observation computed.
    pub fn last(&self) -> Option<&Observation> {
        self.last.as_ref()
    }
}

/// Observes a fixed set of changes (an offline bundle, a golden end state) at `now`, or when not
/// given at the newest legacy timestamp they hold. Everything is taken in at that time, so that
/// first-seen times and time windows are those of the moment observed, not of the epoch.
pub fn observe_offline(
    changes: Vec<Change>,
    legacy: &LegacyNames,
    config: &ObserveConfig,
    now: Option<i64>,
) -> (Observation, i64) {
    let now = now.unwrap_or_else(|| {
        let mut scratch = Index::new(legacy.clone());
        for change in changes.iter().cloned() {
            source::apply(&mut scratch, change, 0);
        }
        source::newest_legacy_time(&scratch).unwrap_or(0)
    });
    let mut bridge = Bridge::new(legacy.clone(), config.clone());
    for change in changes {
        bridge.apply(change, now);
    }
    bridge.observe(now);
    (bridge.last.take().unwrap_or_default(), now)
}

static EMPTY: Observation = Observation {
    cluster: None,
    nodes: BTreeMap::new(),
    upgrades: Vec::new(),
    migrations: Vec::new(),
    bond_flips: Vec::new(),
    unrepresentable: Vec::new(),
};

fn labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        ("nodewright.io/cluster".to_owned(), cluster.to_owned()),
    ])
}

/// Asked before an object's JSON is built: whether the writer last wrote exactly this object
/// (kind, name, whether it has labels or a spec, fingerprints).
pub type Written<'a> = dyn FnMut(&ApiResource, &str, bool, Fingerprints) -> bool + 'a;

/// The objects to hand the writer, and how many were left out because the writer had already
/// written them as they are.
#[derive(Debug, Default)]
pub struct Planned {
    /// Objects to write (the writer still skips those it finds unchanged).
    pub objects: Vec<Desired>,
    /// Objects left out before their JSON was built.
    pub unchanged: usize,
}

/// Builds [`Desired`] objects, asking `written` first so that an unchanged object costs a hash
/// of its typed values and no JSON.
struct Planner<'a, 'w> {
    namespace: &'a str,
    cluster: &'a str,
    written: &'a mut Written<'w>,
    planned: Planned,
}

impl Planner<'_, '_> {
    fn add<K, S: Serialize, T: Serialize>(&mut self, name: &str, spec: &S, status: &T)
    where
        K: Resource<DynamicType = ()>,
    {
        let resource = ApiResource::erase::<K>(&());
        let labels = labels(self.cluster);
        let fingerprints = Fingerprints::of_typed(&labels, Some(spec), status);
        if (self.written)(&resource, name, true, fingerprints) {
            self.planned.unchanged += 1;
            return;
        }
        let (Ok(spec), Ok(status)) = (serde_json::to_value(spec), serde_json::to_value(status)) else {
            // The API types serialise to JSON by construction; an object that did not would be
            // left alone rather than written half.
            return;
        };
        self.planned.objects.push(Desired {
            resource,
            namespace: self.namespace.to_owned(),
            name: name.to_owned(),
            labels,
            spec: Some(spec),
            status,
            fingerprints: Some(fingerprints),
        });
    }

    fn add_all<K, S: Serialize, T: Serialize>(&mut self, objects: &[Observed<S, T>])
    where
        K: Resource<DynamicType = ()>,
    {
        for o in objects {
            self.add::<K, _, _>(&o.name, &o.spec, &o.status);
        }
    }
}

/// Which objects of an observation to plan.
#[derive(Clone, Copy, Debug)]
pub enum Part<'a> {
    /// The site (EdgeCluster) and the workflow objects.
    Site,
    /// The EdgeNodes of these nodes; a name the observation does not have is passed over.
    Nodes(&'a [&'a String]),
}

/// How many EdgeNodes are planned and written at a time: a full reconcile after a relist or a
/// new leadership term builds every object, and in batches the JSON of only this many is held
/// at once (about 12 KiB each as `serde_json::Value`).
pub const WRITE_BATCH: usize = 128;

/// The objects of `part` of an observation for the writer. `written` is asked before each
/// object's JSON is built; what it says was written already is only counted.
pub fn plan(
    observation: &Observation,
    part: Part<'_>,
    namespace: &str,
    cluster: &str,
    written: &mut Written<'_>,
) -> Planned {
    let mut planner = Planner {
        namespace,
        cluster,
        written,
        planned: Planned::default(),
    };
    match part {
        Part::Site => {
            if let Some(c) = &observation.cluster {
                // Of the EdgeCluster's spec the bridge applies only the profile it observes: the
                // workflow modes and the legacy source settings are a person's intent, and
                // server-side apply leaves fields out of the bridge's body to whoever set them.
                let mut spec = serde_json::to_value(&c.spec).unwrap_or_default();
                if let serde_json::Value::Object(fields) = &mut spec {
                    fields.retain(|k, _| k == "profile");
                }
                planner.add::<EdgeCluster, _, _>(&c.name, &spec, &c.status);
            }
            planner.add_all::<StorageUpgrade, _, _>(&observation.upgrades);
            planner.add_all::<Migration, _, _>(&observation.migrations);
            planner.add_all::<BondFlip, _, _>(&observation.bond_flips);
        }
        Part::Nodes(names) => {
            for n in names.iter().filter_map(|name| observation.nodes.get(*name)) {
                planner.add::<EdgeNode, _, _>(&n.name, &n.spec, &n.status);
            }
        }
    }
    planner.planned
}

/// Every object the writer should maintain for an observation, built in full: the site, every
/// EdgeNode, the workflow objects.
pub fn desired(observation: &Observation, namespace: &str, cluster: &str) -> Vec<Desired> {
    let names: Vec<&String> = observation.nodes.keys().collect();
    let mut objects = Vec::new();
    for part in [Part::Site, Part::Nodes(&names)] {
        objects.extend(plan(observation, part, namespace, cluster, &mut |_, _, _, _| false).objects);
    }
    objects
}

/// Counts a writer's report in the metrics and logs its failures.
fn record_report(metrics: &Metrics, result: Result<WriteReport, crate::writer::Error>) {
    match result {
        Ok(report) => {
            for (kind, d) in &report.durations {
                metrics.observe_write(kind, "applied", Some(*d));
            }
            metrics.unchanged(report.unchanged);
            for (key, error) in &report.failed {
                let kind = key.split('/').next().unwrap_or("unknown");
                metrics.observe_write(kind, "failed", None);
                tracing::warn!(object = %key, %error, "status write failed; retried on the next reconcile");
            }
        }
        Err(e) => tracing::warn!(error = %e, "status write failed; retried on the next reconcile"),
    }
}

/// The per-node metric values of an observation, node by node.
pub fn node_metrics<'a>(
    observation: &'a Observation,
    index: &'a Index,
) -> impl Iterator<Item = (&'a str, NodeMetrics)> + 'a {
    observation
        .nodes
        .keys()
        .filter_map(|name| Some((name.as_str(), one_node_metrics(observation, index, name)?)))
}

/// A phase in the API's spelling (`WaitResync`), as the CRD's status shows it.
fn phase_name(phase: &impl serde::Serialize) -> String {
    serde_json::to_value(phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "Unknown".to_owned())
}

/// The metric values of every workflow object the observation has.
pub fn workflow_metrics(observation: &Observation) -> Vec<WorkflowMetrics> {
    use nodewright_api::bondflip::BondFlipPhase as B;
    use nodewright_api::migration::MigrationPhase as M;
    let mut out = Vec::new();
    for u in &observation.upgrades {
        let Some(state) = u.status.state else { continue };
        out.push(WorkflowMetrics {
            kind: "StorageUpgrade".to_owned(),
            name: u.name.clone(),
            phase: phase_name(&state),
            terminal: state.is_terminal(),
            // The legacy upgrade's status has no `since` or `progress` of its own yet: the
            // newest per-node transition, else the start, says when the current state began, and
            // the nodes of its order say how far it is.
            phase_since_unix: u
                .status
                .since
                .as_ref()
                .or_else(|| {
                    u.status
                        .nodes
                        .iter()
                        .filter_map(|n| n.history.last().map(|h| &h.at))
                        .max_by_key(|t| t.0)
                })
                .or(u.status.started_at.as_ref())
                .map(|t| t.0.as_second()),
            progress: u
                .status
                .progress
                .as_ref()
                .map(|p| (i64::from(p.done), i64::from(p.total)))
                .or_else(|| {
                    let total = i64::try_from(u.status.nodes.len()).unwrap_or(i64::MAX);
                    let done = u
                        .status
                        .nodes
                        .iter()
                        .filter(|n| n.state == nodewright_api::storageupgrade::UpgradeState::Completed)
                        .count();
                    (total > 0).then(|| (i64::try_from(done).unwrap_or(i64::MAX), total))
                }),
        });
    }
    for m in &observation.migrations {
        let Some(phase) = m.status.phase else { continue };
        out.push(WorkflowMetrics {
            kind: "Migration".to_owned(),
            name: m.name.clone(),
            phase: phase_name(&phase),
            terminal: matches!(phase, M::Completed | M::RolledBack | M::Failed),
            phase_since_unix: m.status.history.last().map(|h| h.at.0.as_second()),
            progress: None,
        });
    }
    for b in &observation.bond_flips {
        let Some(phase) = b.status.phase else { continue };
        out.push(WorkflowMetrics {
            kind: "BondFlip".to_owned(),
            name: b.name.clone(),
            phase: phase_name(&phase),
            terminal: matches!(phase, B::Completed | B::RolledBack | B::Failed),
            phase_since_unix: b.status.history.last().map(|h| h.at.0.as_second()),
            progress: None,
        });
    }
    out
}

/// The metric values of one node, if the observation has it.
pub fn one_node_metrics(observation: &Observation, index: &Index, name: &str) -> Option<NodeMetrics> {
    observation.nodes.get(name).map(|n| {
        let s = &n.status;
        let legacy = index
            .nodes
            .get(name)
            .and_then(|e| e.config_map.as_ref())
            .and_then(|c| c.status.value.as_ref());
        let upgrade = index
            .nodes
            .get(name)
            .and_then(|e| e.object.as_ref())
            .and_then(|o| o.upgrade_state.value.as_ref())
            .map(|a| a.state.as_str().to_owned())
            .or_else(|| {
                legacy
                    .and_then(|l| l.upgrade.as_ref())
                    .map(|u| u.as_str().to_owned())
            });
        NodeMetrics {
            ready: s
                .conditions
                .iter()
                .any(|c| c.type_ == ct::READY && c.status == "True"),
            conditions: s
                .conditions
                .iter()
                .map(|c| (c.type_.clone(), c.status.clone()))
                .collect(),
            bonds: s
                .bonds
                .iter()
                .map(|b| BondMetrics {
                    name: b.name.clone(),
                    up: b.link_state == nodewright_api::edgenode::LinkState::Up,
                    slaves: b
                        .slaves
                        .iter()
                        .map(|sl| {
                            (
                                sl.name.clone(),
                                sl.link_state == nodewright_api::edgenode::LinkState::Up,
                                sl.link_failures,
                            )
                        })
                        .collect(),
                })
                .collect(),
            drbd_resources: legacy.map(|l| i64::try_from(l.resources).unwrap_or(i64::MAX)),
            drbd_uptodate: legacy.map(|l| i64::try_from(l.uptodate).unwrap_or(i64::MAX)),
            drbd_syncing: legacy.map(|l| l.syncing),
            upgrade_state: upgrade,
            heartbeat_unix: s.last_legacy_run.as_ref().map(|r| r.time.0.as_second()),
        }
    })
}

/// The Nodewright object a diagnostic is about: the node's `EdgeNode`, or the site's
/// `EdgeCluster` for site-wide state.
fn regarding(d: &Diagnostic, legacy: &LegacyNames, namespace: &str, cluster: &str) -> ObjectReference {
    let node = d
        .source
        .strip_prefix("node/")
        .or_else(|| d.source.strip_prefix("log/"))
        .map(|rest| rest.split(':').next().unwrap_or(rest))
        .or_else(|| {
            let prefix = format!("configmap/{}/{}", legacy.namespace, legacy.node_prefix);
            d.source
                .strip_prefix(prefix.as_str())
                .map(|rest| rest.split(':').next().unwrap_or(rest))
        });
    let (kind, name) = match node {
        Some(n) => (EdgeNode::kind(&()).into_owned(), n.to_owned()),
        None => (EdgeCluster::kind(&()).into_owned(), cluster.to_owned()),
    };
    ObjectReference {
        api_version: Some(EdgeNode::api_version(&()).into_owned()),
        kind: Some(kind),
        name: Some(name),
        namespace: Some(namespace.to_owned()),
        ..ObjectReference::default()
    }
}

/// Runs the bridge against the cluster `client` talks to until `shutdown` completes. `logs`, if
/// given, delivers the legacy pods' log bytes.
pub async fn run(
    client: Client,
    options: BridgeOptions,
    logs: Option<mpsc::Receiver<Change>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new()?);
    // Ready once both watches have listed: logs are not waited for, since a DaemonSet with no pods
    // (or silent ones) must not keep the bridge unready. Live while the loop turns; the limit is
    // generous because one turn may wait on a rate-limited rewrite of every object.
    let health = Health::new(["configmaps", "nodes"], LIVENESS_LIMIT.max(options.resync * 6));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = {
        let rx = stop_rx.clone();
        move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        }
    };

    if let Some(addr) = options.admin_addr {
        nodewright_kit::admin::start_admin(addr, metrics.clone(), health.clone(), stopped())
            .await
            .map_err(|source| Error::Admin { addr, source })?;
    }
    let (leader, elector) = nodewright_kit::lease::start_election(&client, options.lease.clone(), stopped());
    let watch_metrics = metrics.clone();
    let mut rx = source::start_sources(
        &client,
        &options.legacy.namespace,
        Some(&options.namespace),
        logs,
        move |_| {
            watch_metrics.watch_event("watch", "error", None);
        },
    );

    let edge_nodes: kube::Api<EdgeNode> = kube::Api::namespaced(client.clone(), &options.namespace);
    let edge_node_resource = ApiResource::erase::<EdgeNode>(&());
    let mut writer = StatusWriter::with_identity(
        client,
        options.writer.clone(),
        leader.clone(),
        Some(options.identity.clone()),
    );
    // Nothing is written before both watches have delivered a full list: a half-read site would
    // show nodes without their Node objects, or without their legacy state.
    let mut listed: std::collections::BTreeSet<&'static str> = std::collections::BTreeSet::new();
    let mut bridge = Bridge::new(options.legacy.clone(), options.observe.clone());
    let mut was_leader = false;
    let mut term_started = false;
    let mut dirty = false;
    let mut last_reconcile = Instant::now();
    let mut tick = tokio::time::interval(options.debounce);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = std::pin::pin!(shutdown);
    let cluster = options.observe.cluster_name.clone();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            change = rx.recv() => {
                let Some(change) = change else { break };
                let now = unix_now();
                let lag = change
                    .written_at()
                    .map(|t| Duration::from_secs(u64::try_from(now - t).unwrap_or(0)));
                metrics.watch_event(change.source(), change.event(), lag);
                if change.completes_list() {
                    health.synced(change.source());
                    listed.insert(change.source());
                }
                if let Change::Log { node, .. } = &change {
                    let node = node.clone();
                    let before = bridge.index.nodes.get(&node).and_then(|e| e.log.as_ref()).map(|l| (l.records, l.blocks, l.unknown_lines));
                    bridge.apply(change, now);
                    let after = bridge.index.nodes.get(&node).and_then(|e| e.log.as_ref()).map(|l| (l.records, l.blocks, l.unknown_lines));
                    if let (Some(a), b) = (after, before.unwrap_or_default()) {
                        metrics.log_lines(&node, "record", a.0 - b.0);
                        metrics.log_lines(&node, "block", a.1 - b.1);
                        metrics.log_lines(&node, "unknown", a.2 - b.2);
                    }
                } else {
                    bridge.apply(change, now);
                }
                dirty = true;
            }
            _ = tick.tick() => {
                health.beat();
                let is_leader = *leader.borrow();
                if is_leader != was_leader {
                    metrics.set_leader(is_leader);
                    if is_leader {
                        term_started = true;
                        // A new term: what an earlier leader wrote may differ from what this
                        // replica last wrote, so everything is applied again once; and the
                        // EdgeNodes that exist are what this term maintains.
                        writer.forget();
                        dirty = true;
                        let selector = format!("{}={},nodewright.io/cluster={cluster}", MANAGED_BY.0, MANAGED_BY.1);
                        match edge_nodes.list(&kube::api::ListParams::default().labels(&selector)).await {
                            Ok(list) => bridge.adopt(list.items.into_iter().filter_map(|n| n.metadata.name)),
                            Err(e) => tracing::warn!(error = %e, "could not list the EdgeNodes this site has"),
                        }
                    }
                    was_leader = is_leader;
                }
                if listed.len() < 2 {
                    continue;
                }
                // A full reconcile every resync period (and on a new term): conditions that depend on
                // time alone (LegacyStale) move, and every object and metric is compared. In between,
                // only what the index says changed is computed and handed to the writer.
                let full = last_reconcile.elapsed() >= options.resync || term_started;
                if !dirty && !full {
                    continue;
                }
                term_started = false;
                let started = Instant::now();
                let reconcile = bridge.reconcile(full, unix_now());
                carry_out(&reconcile, &bridge, &mut writer, &metrics, &options, &edge_node_resource, started).await;
                dirty = false;
                if full {
                    last_reconcile = Instant::now();
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    // Let the elector release the Lease, so that another replica takes over at once instead of
    // after the lease expires.
    if let Some(elector) = elector {
        let _ = tokio::time::timeout(Duration::from_secs(5), elector).await;
    }
    Ok(())
}

/// Carries out one reconcile: parse errors logged and counted, the metrics of what changed, the
/// changed objects through the writer in batches, the EdgeNodes of nodes that left deleted and
/// the parse errors reported as Events, both through the writer (which does nothing unless this
/// replica leads).
async fn carry_out(
    reconcile: &Reconcile,
    bridge: &Bridge,
    writer: &mut StatusWriter,
    metrics: &Metrics,
    options: &BridgeOptions,
    edge_node_resource: &ApiResource,
    started: Instant,
) {
    let cluster = &options.observe.cluster_name;
    for d in &reconcile.new_errors {
        metrics.parse_error(d.format);
        tracing::warn!(source = %d.source, line = d.line, column = d.column, message = %d.message, "legacy state does not parse");
    }
    for sentence in &reconcile.newly_unrepresentable {
        tracing::warn!(%sentence, "legacy state that no Nodewright object can show");
    }
    let observation = bridge.last().unwrap_or(&EMPTY);
    let changed = &reconcile.changed;
    if changed.all {
        metrics.set_nodes(node_metrics(observation, &bridge.index));
    } else {
        metrics.update_nodes(
            changed
                .nodes
                .iter()
                .map(|n| (n.clone(), one_node_metrics(observation, &bridge.index, n))),
        );
    }
    metrics.set_workflows(&workflow_metrics(observation));
    metrics.observe_reconcile(started.elapsed());
    // After a full reconcile every object is compared, and those the writer wrote as they are now
    // are left out before their JSON is built; otherwise only the site, the workflow objects and
    // the nodes that changed are handed over. Nodes go in batches, so that a rewrite of every
    // object holds the JSON of one batch at a time.
    let names: Vec<&String> = if changed.all {
        observation.nodes.keys().collect()
    } else {
        changed.nodes.iter().collect()
    };
    let parts = std::iter::once(Part::Site).chain(names.chunks(WRITE_BATCH).map(Part::Nodes));
    for part in parts {
        let planned = plan(
            observation,
            part,
            &options.namespace,
            cluster,
            &mut |resource, name, writes_main, fingerprints| {
                writer.unchanged(resource, &options.namespace, name, writes_main, fingerprints)
            },
        );
        metrics.unchanged(planned.unchanged);
        if !planned.objects.is_empty() {
            record_report(metrics, writer.write(&planned.objects).await);
        }
    }
    for gone in &reconcile.gone {
        match writer.delete(edge_node_resource, &options.namespace, gone).await {
            Ok(true) => tracing::info!(node = %gone, "node left the site; its EdgeNode is deleted"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(node = %gone, error = %e, "could not delete the EdgeNode of a node that left")
            }
        }
    }
    for d in &reconcile.new_errors {
        let reference = regarding(d, &options.legacy, &options.namespace, cluster);
        let note = format!("{} at {}:{}: {}", d.source, d.line, d.column, d.message);
        let event = Event {
            type_: EventType::Warning,
            reason: "MalformedLegacyState".to_owned(),
            note: Some(note.chars().take(1000).collect()),
            action: "Observe".to_owned(),
            secondary: None,
        };
        writer.event(&reference, &event).await;
    }
}

/// Turns the log source's events into changes for the index: a newly followed pod starts its
/// node's log over (a partial line from an earlier pod is dropped), chunks are log bytes.
pub fn log_changes(mut events: mpsc::Receiver<crate::logs::LogEvent>) -> mpsc::Receiver<Change> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let change = match event {
                crate::logs::LogEvent::Started { node, .. } => Change::LogRestarted { node },
                crate::logs::LogEvent::Chunk(chunk) => Change::Log {
                    node: chunk.node,
                    bytes: chunk.bytes,
                },
                crate::logs::LogEvent::Ended { .. } => continue,
            };
            if tx.send(change).await.is_err() {
                break;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::{STATUS, config_map, node};

    fn observed_site() -> (Index, Observation) {
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(
            &config_map(
                "vx-rail-cluster-state",
                &[(
                    "cluster",
                    "primary=edge-1;topology=single;replicas=1;storage_pool=pool0;created=1714557600;schema=4",
                )],
            ),
            0,
        );
        index.apply_config_map(
            &config_map(
                "vx-rail-node-edge-1",
                &[("status", STATUS), ("heartbeat", "2024-05-01T10:04:52Z")],
            ),
            0,
        );
        index.apply_node(&node("edge-1", &[("vx-rail.io/state", "ready")], &[]), 0);
        let observation = observe(&index, &ObserveConfig::default(), 1_714_557_900, None);
        (index, observation)
    }

    #[test]
    fn a_node_that_leaves_is_deleted_once_and_an_adopted_edge_node_without_a_node_too() {
        let mut bridge = Bridge::new(LegacyNames::default(), ObserveConfig::default());
        let status = config_map(
            "vx-rail-node-edge-1",
            &[("status", STATUS), ("heartbeat", "2024-05-01T10:04:52Z")],
        );
        bridge.apply(Change::ConfigMap(status.clone()), 0);
        bridge.apply(Change::Node(Box::new(node("edge-1", &[], &[]))), 0);
        // A new term finds an EdgeNode whose node left while no replica led.
        bridge.adopt(["edge-9".to_owned()]);
        let first = bridge.reconcile(true, 1_714_557_900);
        assert_eq!(first.gone, ["edge-9"]);
        assert!(first.changed.all);

        bridge.apply(Change::ConfigMapDeleted(status), 0);
        bridge.apply(Change::NodeDeleted(Box::new(node("edge-1", &[], &[]))), 0);
        assert_eq!(bridge.reconcile(false, 1_714_557_910).gone, ["edge-1"]);
        assert!(
            bridge.reconcile(true, 1_714_557_920).gone.is_empty(),
            "deleted once, not every reconcile"
        );
    }

    #[test]
    fn the_edge_cluster_spec_the_bridge_applies_holds_only_the_observed_profile() {
        let (_, observation) = observed_site();
        let want = desired(&observation, "nw", "site");
        let cluster = want.iter().find(|d| d.resource.kind == "EdgeCluster").unwrap();
        let spec = cluster.spec.as_ref().unwrap().as_object().unwrap();
        assert_eq!(spec.keys().collect::<Vec<_>>(), ["profile"]);
        assert_eq!(spec["profile"]["topology"], "SingleNode");
        let node = want.iter().find(|d| d.resource.kind == "EdgeNode").unwrap();
        assert_eq!(node.spec.as_ref().unwrap()["nodeName"], "edge-1");
        assert_eq!(node.labels[MANAGED_BY.0], MANAGED_BY.1);
    }

    #[test]
    fn an_object_the_writer_wrote_as_it_is_is_counted_and_not_built() {
        let (_, observation) = observed_site();
        let mut asked = Vec::new();
        let planned = plan_all(&observation, &mut |resource, name, writes_main, _| {
            asked.push((resource.kind.clone(), name.to_owned(), writes_main));
            resource.kind == "EdgeNode"
        });
        assert_eq!(planned.unchanged, 1);
        let kinds: Vec<&str> = planned.objects.iter().map(|d| d.resource.kind.as_str()).collect();
        assert_eq!(kinds, ["EdgeCluster"], "the unchanged EdgeNode is left out");
        assert!(asked.contains(&("EdgeNode".to_owned(), "edge-1".to_owned(), true)));
    }

    #[test]
    fn a_built_object_carries_the_fingerprints_it_was_asked_about() {
        let (_, observation) = observed_site();
        let mut asked = BTreeMap::new();
        let planned = plan_all(&observation, &mut |resource, name, _, fingerprints| {
            asked.insert((resource.kind.clone(), name.to_owned()), fingerprints);
            false
        });
        assert_eq!(planned.objects.len(), asked.len());
        for d in &planned.objects {
            assert_eq!(
                d.fingerprints,
                asked.get(&(d.resource.kind.clone(), d.name.clone())).copied()
            );
        }
        let again = plan_all(&observation, &mut |_, _, _, _| false);
        let fingerprints = |p: &Planned| p.objects.iter().map(|d| d.fingerprints).collect::<Vec<_>>();
        assert_eq!(
            fingerprints(&planned),
            fingerprints(&again),
            "the same observation, the same fingerprints"
        );
    }

    /// The site and every node, as one plan.
    fn plan_all(observation: &Observation, written: &mut Written<'_>) -> Planned {
        let names: Vec<&String> = observation.nodes.keys().collect();
        let mut all = Planned::default();
        for part in [Part::Site, Part::Nodes(&names)] {
            let planned = plan(observation, part, "nw", "site", written);
            all.objects.extend(planned.objects);
            all.unchanged += planned.unchanged;
        }
        all
    }

    #[test]
    fn the_site_part_holds_the_site_and_a_nodes_part_only_its_nodes() {
        let (_, observation) = observed_site();
        let kinds = |part| {
            plan(&observation, part, "nw", "site", &mut |_, _, _, _| false)
                .objects
                .into_iter()
                .map(|d| format!("{}/{}", d.resource.kind, d.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(Part::Site), ["EdgeCluster/site"]);
        assert!(kinds(Part::Nodes(&[])).is_empty());
        let (edge_1, gone) = ("edge-1".to_owned(), "gone".to_owned());
        assert_eq!(kinds(Part::Nodes(&[&edge_1, &gone])), ["EdgeNode/edge-1"]);
    }

    #[test]
    fn a_parse_error_is_reported_on_the_edge_node_of_its_node_or_else_on_the_site() {
        let legacy = LegacyNames::default();
        let d = |source: &str| Diagnostic {
            source: source.to_owned(),
            format: "x",
            line: 1,
            column: 1,
            offset: 0,
            message: String::new(),
            first_seen: 0,
        };
        let on = |source: &str| {
            let r = regarding(&d(source), &legacy, "nw", "site");
            (r.kind.unwrap(), r.name.unwrap())
        };
        assert_eq!(
            on("configmap/kube-system/vx-rail-node-edge-2:status"),
            ("EdgeNode".into(), "edge-2".into())
        );
        assert_eq!(
            on("node/edge-3:annotations/vx-rail.io/last-run"),
            ("EdgeNode".into(), "edge-3".into())
        );
        assert_eq!(on("log/edge-1"), ("EdgeNode".into(), "edge-1".into()));
        assert_eq!(
            on("configmap/kube-system/vx-rail-cluster-state:upgrade"),
            ("EdgeCluster".into(), "site".into())
        );
    }

    #[test]
    fn node_metrics_carry_readiness_bonds_and_drbd_counts() {
        let (index, observation) = observed_site();
        let metrics: BTreeMap<&str, NodeMetrics> = node_metrics(&observation, &index).collect();
        let m = &metrics["edge-1"];
        assert!(m.ready);
        assert_eq!(m.bonds[0].slaves.len(), 2);
        assert_eq!(
            (m.drbd_resources, m.drbd_uptodate, m.drbd_syncing),
            (Some(1), Some(1), Some(false))
        );
    }
}
