//! The operator's process loop: gather → plan → write, one turn at a time.
//!
//! *Gather*: the same watches as the bridge's (legacy ConfigMaps, Nodes, the legacy pods' logs)
//! feed the bridge's index and [`Gathered`]; reflectors keep the site's `EdgeCluster`, its
//! `Migration`s, `StorageUpgrade`s and `NodeTask`s, the storage gate's Lease, and the legacy
//! DaemonSet's pods (the takeover's fence reads where a script could still run). While an
//! operator-owned upgrade is under way, each turn lists the pods bound to the node it upgrades
//! ([`gather::draining_nodes`]; no watch of every pod). Any change schedules a turn after a
//! short debounce; a turn also runs every `interval` without one, since time passing is a fact
//! too.
//!
//! *Plan* ([`plan_turn`], pure): the takeover ([`crate::takeover::plan`]) and its projection, the
//! plans of the [`crate::controllers`] whose workflow is in `operator` mode once no node's script
//! holds the takeover back ([`crate::takeover::holding`]), the shadow divergences, and the
//! operator's part of the EdgeCluster status.
//!
//! *Write*: everything through the one [`Writer`], which checks leadership before each write and
//! guards each one. A write refused as a conflict (the object changed since the decision read
//! it) calls for another turn at once, decided from what the watches deliver.
//!
//! What it may touch: the takeover ConfigMap; in `operator` mode the Nodes' taints and labels the
//! owned workflows manage, their cordon and upgrade-state annotation, the legacy cluster-state
//! keys the owned workflows write, NodeTasks, Migration and StorageUpgrade statuses,
//! StorageUpgrades it translates from the legacy request, evictions of the pods of the node an
//! upgrade drains, and the storage gate's Lease; the EdgeCluster's `status.takeover` and
//! `status.divergences`; Events; and its leader Lease.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ListParams;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use nodewright_api::WorkflowMode;
use nodewright_api::bondflip::BondFlip;
use nodewright_api::edgecluster::{
    Divergence as ApiDivergence, EdgeCluster, TakeoverStatus, WorkflowTakeover,
};
use nodewright_api::edgenode::EdgeNode;
use nodewright_api::migration::Migration;
use nodewright_api::nodefacts::NodeFacts;
use nodewright_api::nodetask::NodeTask;
use nodewright_api::storageupgrade::StorageUpgrade;
use nodewright_bridge::index::{Index, LegacyNames};
use nodewright_bridge::source::{self, Change};
use nodewright_kit::admin::{self, Health};
use nodewright_kit::clock::unix_now;
use nodewright_kit::lease::{self, LeaseConfig};
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use serde_json::json;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use crate::controllers::{self, GATE_LEASE, PodMeta, Sequence, Settings, Snapshot, WorkflowController};
use crate::gather::{self, Gathered};
use crate::migration as mig;
use crate::observed;
use crate::shadow::{self, Divergence};
use crate::takeover::{self, Plan, ScriptFacts, Takeover, Workflow};
use crate::writer::{WriteError, Writer};

pub use crate::writer::FIELD_MANAGER;

/// Divergences kept in status.
pub const KEEP_DIVERGENCES: usize = 20;

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct OperatorOptions {
    /// Namespace of the EdgeCluster (and of the Lease and Events).
    pub namespace: String,
    /// Name of the site's EdgeCluster.
    pub cluster: String,
    /// Names of the legacy objects.
    pub legacy: LegacyNames,
    /// The legacy DaemonSet, in `legacy.namespace`: its pods are where a script could still act.
    pub legacy_daemon_set: String,
    /// A script that has not reported for this long is not alive for the migration's preflight
    /// (seconds). It no longer releases a takeover: silence is not proof.
    pub stale_after: i64,
    /// A Node NotReady for this long (by its Ready condition's `lastTransitionTime`), with no
    /// legacy pod running on it, does not hold a takeover back (seconds).
    pub not_ready_grace: i64,
    /// A turn runs at least this often without any change (time passing is a fact too: a script
    /// goes stale, a migration phase times out).
    pub interval: Duration,
    /// How long a turn waits after the first change that calls for it, so that a burst of
    /// changes (a relist, the script's writes of one loop) is decided once.
    pub debounce: Duration,
    /// A migration phase that waits longer than this fails and rolls back (seconds).
    pub migration_timeout: i64,
    /// A per-node storage-upgrade state that waits longer than this fails and the upgrade rolls
    /// back (seconds).
    pub upgrade_state_timeout: i64,
    /// The rollback of one node of a storage upgrade that takes longer than this fails the
    /// upgrade (seconds).
    pub upgrade_rollback_timeout: i64,
    /// Leader election; `None` acts without electing (a single replica).
    pub lease: Option<LeaseConfig>,
    /// Where to serve `/metrics`, `/healthz` and `/readyz`, if anywhere.
    pub admin_addr: Option<SocketAddr>,
    /// This replica's name, for Events.
    pub identity: String,
}

impl OperatorOptions {
    /// Options for the site `cluster` in `namespace`, with defaults for the rest.
    pub fn new(
        namespace: impl Into<String>,
        cluster: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        OperatorOptions {
            namespace: namespace.into(),
            cluster: cluster.into(),
            legacy: LegacyNames::default(),
            legacy_daemon_set: nodewright_parsers::contract::DAEMON_SET.to_owned(),
            stale_after: 300,
            not_ready_grace: takeover::DEFAULT_NOT_READY_GRACE,
            interval: Duration::from_secs(5),
            debounce: Duration::from_millis(100),
            migration_timeout: mig::DEFAULT_TIMEOUT,
            upgrade_state_timeout: Settings::DEFAULT_UPGRADE_STATE_TIMEOUT,
            upgrade_rollback_timeout: Settings::DEFAULT_UPGRADE_ROLLBACK_TIMEOUT,
            lease: None,
            admin_addr: None,
            identity: identity.into(),
        }
    }
}

/// Errors that stop the operator (one turn's errors are logged and retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metrics could not be registered.
    #[error("registering metrics: {0}")]
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

/// The operator's metrics.
#[derive(Clone)]
pub struct OperatorMetrics {
    registry: Registry,
    divergences: IntCounterVec,
    actions: IntCounterVec,
    mode: IntGaugeVec,
    generation: IntGauge,
    leader: IntGauge,
    turn_errors: IntCounterVec,
}

/// Where a turn failed, for `nodewright_operator_turn_errors_total{stage}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnStage {
    /// Listing the pods of the nodes an upgrade drains (the turn is not planned).
    ListPods,
    /// Projecting the takeover ConfigMap (a conflict, decided again at once, is not one).
    Takeover,
    /// A write of an owned workflow's sequence (a conflict, or a refusal by a budget or the
    /// gate, is not one).
    Sequence,
    /// Writing the EdgeCluster status.
    Status,
}

impl TurnStage {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            TurnStage::ListPods => "list-pods",
            TurnStage::Takeover => "takeover",
            TurnStage::Sequence => "sequence",
            TurnStage::Status => "status",
        }
    }
}

impl OperatorMetrics {
    /// Registers the families.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let divergences = IntCounterVec::new(
            Opts::new(
                "nodewright_shadow_divergences_total",
                "Divergences between what the legacy script did and what the operator would have done, by workflow",
            ),
            &["workflow"],
        )?;
        let actions = IntCounterVec::new(
            Opts::new(
                "nodewright_operator_actions_total",
                "Writes the operator's controllers asked for, by workflow, kind of write (task, node, cluster-state, status, eviction, create, gate, configmap, host-config) and result (ok, conflict, refused, not-leader, unguarded, error)",
            ),
            &["workflow", "kind", "result"],
        )?;
        let mode = IntGaugeVec::new(
            Opts::new(
                "nodewright_workflow_mode",
                "1 for the mode each workflow is in, as projected to the legacy script",
            ),
            &["workflow", "mode"],
        )?;
        let generation = IntGauge::new(
            "nodewright_takeover_generation",
            "Generation of the takeover ConfigMap the operator projected",
        )?;
        let leader = IntGauge::new("nodewright_operator_leader", "1 while this replica leads")?;
        let turn_errors = IntCounterVec::new(
            Opts::new(
                "nodewright_operator_turn_errors_total",
                "Turns that failed part way, by stage (list-pods, takeover, sequence, status); the next turn decides again",
            ),
            &["stage"],
        )?;
        registry.register(Box::new(turn_errors.clone()))?;
        for w in Workflow::ALL {
            // Zero from the start, so that increase() sees the first divergence.
            divergences.with_label_values(&[w.key()]);
        }
        for stage in [
            TurnStage::ListPods,
            TurnStage::Takeover,
            TurnStage::Sequence,
            TurnStage::Status,
        ] {
            // Zero from the start, so that rate() and alerts see the series before the first error.
            turn_errors.with_label_values(&[stage.label()]);
        }
        registry.register(Box::new(divergences.clone()))?;
        registry.register(Box::new(actions.clone()))?;
        registry.register(Box::new(mode.clone()))?;
        registry.register(Box::new(generation.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        Ok(OperatorMetrics {
            registry,
            divergences,
            actions,
            mode,
            generation,
            leader,
            turn_errors,
        })
    }

    /// Counts one turn that failed at `stage`.
    pub fn turn_error(&self, stage: TurnStage) {
        self.turn_errors.with_label_values(&[stage.label()]).inc();
    }

    /// The registry, to serve or to read in tests.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn set_takeover(&self, t: &Takeover) {
        self.generation
            .set(i64::try_from(t.generation).unwrap_or(i64::MAX));
        for w in Workflow::ALL {
            for m in [WorkflowMode::Legacy, WorkflowMode::Shadow, WorkflowMode::Operator] {
                self.mode
                    .with_label_values(&[w.key(), m.as_str()])
                    .set(i64::from(t.mode(w) == m));
            }
        }
    }
}

/// What the takeover's fence decides from in one turn: every node's script facts, the operator's
/// clock and the NotReady grace period.
#[derive(Clone, Debug, Default)]
pub struct Fence {
    /// One entry per node that could run a script ([`observed::script_facts`]).
    pub scripts: Vec<ScriptFacts>,
    /// Now, in Unix seconds (the operator's clock, compared with the cluster's times).
    pub now: i64,
    /// The NotReady grace period (seconds).
    pub grace: i64,
}

impl Fence {
    /// Whether the operator may act on `workflow` under `takeover`; see [`takeover::may_act`].
    pub fn may_act(&self, takeover: &Takeover, workflow: Workflow) -> Result<(), Vec<takeover::Holding>> {
        takeover::may_act(takeover, workflow, &self.scripts, self.now, self.grace)
    }
}

/// The takeover part of the EdgeCluster status, from a plan and the fence.
pub fn takeover_status(
    plan: &Plan,
    fence: &Fence,
    divergence_counts: &BTreeMap<Workflow, i64>,
) -> TakeoverStatus {
    let holding = takeover::holding(plan.takeover.generation, &fence.scripts, fence.now, fence.grace);
    let workflows = plan
        .workflows
        .iter()
        .map(|w| {
            let acknowledged = holding.is_empty() || plan.takeover.generation == 0;
            let message = w.message.clone().or_else(|| {
                (w.effective == WorkflowMode::Operator && !holding.is_empty()).then(|| {
                    let each: Vec<String> = holding.iter().map(ToString::to_string).collect();
                    format!("{}: waiting for {}", w.workflow, each.join("; and for "))
                })
            });
            WorkflowTakeover {
                workflow: w.workflow.key().to_owned(),
                requested: w.requested,
                effective: w.effective,
                acknowledged,
                message,
                divergences: divergence_counts.get(&w.workflow).copied().unwrap_or_default(),
            }
        })
        .collect();
    TakeoverStatus {
        generation: i64::try_from(plan.takeover.generation).unwrap_or(i64::MAX),
        workflows,
    }
}

fn api_divergence(d: &Divergence, at: &Time) -> ApiDivergence {
    let cut = |s: &str, n: usize| -> String { s.chars().take(n).collect() };
    ApiDivergence {
        at: at.clone(),
        workflow: d.workflow.key().to_owned(),
        node: d.node.clone(),
        script: cut(&d.script, 1024),
        operator: cut(&d.operator, 1024),
        observed: cut(&d.observed, 2048),
    }
}

/// What the operator carries from turn to turn that the API server does not hold for it: the
/// divergences it has recorded and the status it last wrote.
#[derive(Debug, Default)]
pub struct Memory {
    /// Divergences seen at the last turn (by key): one is recorded when it appears, not while it
    /// lasts.
    open: BTreeSet<String>,
    recent: VecDeque<ApiDivergence>,
    counts: BTreeMap<Workflow, i64>,
    last_status: Option<serde_json::Value>,
    /// When the last turn looked for divergences (workflow transitions before it were compared).
    last_look: i64,
    restored: bool,
}

impl Memory {
    /// A memory whose first look for divergences covers what happened since `now`.
    pub fn new(now: i64) -> Self {
        Memory {
            last_look: now,
            ..Memory::default()
        }
    }

    /// A new leader (or a restarted operator) carries on from the status the last one wrote: the
    /// recent divergences, their counts, and which of them are still open, so that a divergence
    /// that lasts is not recorded again.
    fn restore(&mut self, cluster: &EdgeCluster) {
        self.restored = true;
        let Some(status) = &cluster.status else { return };
        self.recent = status.divergences.iter().cloned().collect();
        for w in status.takeover.iter().flat_map(|t| &t.workflows) {
            if let Some(workflow) = Workflow::from_key(&w.workflow) {
                self.counts.insert(workflow, w.divergences);
            }
        }
        self.open = status
            .divergences
            .iter()
            .filter_map(|d| {
                Some(
                    Divergence {
                        workflow: Workflow::from_key(&d.workflow)?,
                        node: d.node.clone(),
                        script: d.script.clone(),
                        operator: d.operator.clone(),
                        observed: d.observed.clone(),
                    }
                    .key(),
                )
            })
            .collect();
    }
}

/// Whether an owned workflow acts this turn: only once the fence lets it, and never in a turn that
/// writes the takeover (`projecting`). The fence's facts — which script pods exist, what they
/// acknowledged — were read before any script could see the generation this turn projects: a pod
/// created meanwhile (gone when read, so "proven unable to act") can start and read the old
/// generation before the new one lands, then act on it. The next turn reads the facts again with the
/// new generation in place. Found by the model check `nodewright-verify fence --nodes 1 --depth 12`
/// (docs/verification.md).
pub fn may_act_this_turn(fence: &Fence, takeover: &Takeover, workflow: Workflow, projecting: bool) -> bool {
    !projecting && fence.may_act(takeover, workflow).is_ok()
}

/// What one turn writes, decided.
#[derive(Debug, Default)]
pub struct TurnPlan {
    /// The takeover as projected this turn.
    pub takeover: Takeover,
    /// The takeover ConfigMap's data, when it must be (re)written.
    pub write_takeover: Option<BTreeMap<String, String>>,
    /// The owned workflows' writes.
    pub owned: Vec<(Workflow, Vec<Sequence>)>,
    /// Divergences that appeared this turn.
    pub new_divergences: Vec<Divergence>,
    /// The operator's part of the EdgeCluster status, when it changed.
    pub status: Option<serde_json::Value>,
}

/// Plans one turn from the snapshot and the fence: pure. Updates `memory`'s divergence
/// bookkeeping; the status it returns becomes `memory`'s last status only once written.
pub fn plan_turn(
    memory: &mut Memory,
    snapshot: &Snapshot<'_>,
    fence: &Fence,
    controllers: &[Box<dyn WorkflowController>],
) -> TurnPlan {
    let (index, cluster, now) = (snapshot.index, snapshot.cluster, snapshot.now);
    if !memory.restored {
        memory.restore(cluster);
    }
    // A takeover ConfigMap that is gone after the operator wrote it, or after a script
    // acknowledged one, was lost (deleted by hand, a restore from an old backup): the scripts
    // that acknowledged it stop acting until it is back, and the operator writes it again, with
    // the modes it last projected, at a generation no script has acknowledged.
    let last_projected = cluster.status.as_ref().and_then(|s| s.takeover.as_ref());
    let lost = index.takeover.is_none() && {
        let acknowledged = observed::takeover(index).is_ok_and(|t| t.generation > 0);
        let handed_out =
            last_projected.is_some_and(|t| t.workflows.iter().any(|w| w.effective != WorkflowMode::Legacy));
        acknowledged || handed_out
    };
    let current = match observed::takeover(index) {
        Ok(t) if lost => observed::lost_takeover(t.generation, last_projected),
        Ok(t) => t,
        Err(e) => {
            // Someone edited the ConfigMap by hand: the plan rewrites it from the spec.
            tracing::warn!(error = %e, "the takeover ConfigMap cannot be read; rewriting it");
            Takeover {
                generation: index
                    .takeover
                    .as_ref()
                    .and_then(|d| d.get(takeover::GENERATION_KEY))
                    .and_then(|g| g.parse().ok())
                    .unwrap_or_default(),
                ..Takeover::default()
            }
        }
    };
    let annotation = cluster
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(takeover::FORCE_ANNOTATION))
        .map(String::as_str);
    let (forced, unknown) = takeover::forced(annotation);
    if !unknown.is_empty() {
        tracing::warn!(names = ?unknown, "the force annotation names workflows that do not exist");
    }
    let mut plan = takeover::plan(
        &cluster.spec.workflows,
        &current,
        &observed::in_flight(index),
        &forced,
    );
    if lost {
        plan.takeover.generation = current.generation + 1;
    }
    let needs_write = plan.changed
        || lost
        || (index.takeover.is_none()
            && Workflow::ALL
                .iter()
                .any(|w| plan.takeover.mode(*w) != WorkflowMode::Legacy));

    let mut owned: Vec<(Workflow, Vec<Sequence>)> = controllers
        .iter()
        .filter(|c| may_act_this_turn(fence, &plan.takeover, c.workflow(), needs_write))
        .map(|c| (c.workflow(), c.plan(snapshot)))
        .filter(|(_, sequences)| !sequences.is_empty())
        .collect();
    // Bootstrap in operator mode creates the nodes' ConfigMaps ahead of the fence: a script
    // acknowledges the takeover in its node ConfigMap, which it no longer creates itself
    // (controllers::bootstrap::admit says why that create is safe).
    if plan.takeover.mode(Workflow::Bootstrap) == WorkflowMode::Operator && !needs_write {
        let scripts: Vec<String> = fence
            .scripts
            .iter()
            .filter(|s| {
                matches!(
                    s.pod,
                    takeover::ScriptPod::Running { .. } | takeover::ScriptPod::NotRunning { .. }
                )
            })
            .map(|s| s.node.clone())
            .collect();
        let admitted = controllers::bootstrap::admit(snapshot, &scripts);
        if !admitted.is_empty() {
            owned.insert(0, (Workflow::Bootstrap, admitted));
        }
    }

    let shadowed: Vec<Workflow> = Workflow::ALL
        .into_iter()
        .filter(|w| plan.takeover.mode(*w) == WorkflowMode::Shadow)
        .collect();
    // Only the migration's shadow reads these; a turn without it does not build them.
    let facts = if shadowed.contains(&Workflow::Migration) {
        observed::migration_facts(
            index,
            snapshot.facts,
            now,
            snapshot.settings.stale_after,
            snapshot.settings.migration_timeout,
        )
    } else {
        mig::Facts::default()
    };
    let mut found = shadow::divergences(index, &shadowed, now, memory.last_look, &facts);
    if shadowed.contains(&Workflow::Bootstrap) {
        found.extend(shadow::bootstrap(snapshot));
    }
    memory.last_look = now;
    let at = nodewright_kit::clock::time(now);
    let mut new_divergences = Vec::new();
    for d in found.iter().filter(|d| !memory.open.contains(&d.key())) {
        *memory.counts.entry(d.workflow).or_default() += 1;
        memory.recent.push_back(api_divergence(d, &at));
        while memory.recent.len() > KEEP_DIVERGENCES {
            memory.recent.pop_front();
        }
        new_divergences.push(d.clone());
    }
    memory.open = found.iter().map(Divergence::key).collect();

    let mut status = json!({
        "takeover": takeover_status(&plan, fence, &memory.counts),
        "divergences": memory.recent,
    });
    // Bootstrap's progress, while the operator owns it: the `Bootstrapped` condition (the
    // operator's one entry of the conditions the bridge writes the others of).
    if plan.takeover.mode(Workflow::Bootstrap) == WorkflowMode::Operator {
        status["conditions"] = json!([controllers::bootstrap::condition(snapshot)]);
    }
    TurnPlan {
        write_takeover: needs_write.then(|| plan.takeover.to_data()),
        takeover: plan.takeover,
        owned,
        new_divergences,
        status: (memory.last_status.as_ref() != Some(&status)).then_some(status),
    }
}

/// Keeps a store of `K` from a watch, and wakes `changed` on every change it delivers.
fn reflect<K>(api: Api<K>, config: watcher::Config, changed: Arc<Notify>) -> Store<K>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::warn!(error = %e, "watch failed; retrying with backoff"),
            }
        }
    });
    reader
}

/// A flag set once `store` has its first list, which wakes `changed` then.
fn ready_flag<K>(store: &Store<K>, changed: &Arc<Notify>) -> Arc<AtomicBool>
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let flag = Arc::new(AtomicBool::new(false));
    let (store, set, changed) = (store.clone(), flag.clone(), changed.clone());
    tokio::spawn(async move {
        if store.wait_until_ready().await.is_ok() {
            set.store(true, Ordering::SeqCst);
            changed.notify_one();
        }
    });
    flag
}

/// The pods bound to each of `nodes`, in every namespace (a list with the field selector
/// `spec.nodeName`, as `kubectl drain` makes): only the nodes an upgrade drains, only while it
/// does, so no watch of every pod of the cluster is kept.
async fn list_pods_on(client: &Client, nodes: &BTreeSet<String>) -> Result<Vec<PodMeta>, kube::Error> {
    let api: Api<Pod> = Api::all(client.clone());
    let mut out = Vec::new();
    for node in nodes {
        let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
        let pods = api.list(&params).await?;
        out.extend(pods.items.iter().filter_map(gather::pod_meta));
    }
    Ok(out)
}

/// Runs the operator until `shutdown` completes. `logs`, when given, carries the legacy pods'
/// log lines (the bridge's log follower): the storage-upgrade shadow reads upgrade starts from
/// them.
pub async fn run(
    client: Client,
    options: OperatorOptions,
    logs: Option<mpsc::Receiver<Change>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let metrics = OperatorMetrics::new()?;
    let health = Health::new(["configmaps", "nodes"], options.interval * 60);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    if let Some(addr) = options.admin_addr {
        let registry = Arc::new(metrics.registry().clone());
        admin::start_admin(addr, registry, health.clone(), stopped())
            .await
            .map_err(|source| Error::Admin { addr, source })?;
    }
    let (mut leader, elector) = lease::start_election(&client, options.lease.clone(), stopped());
    let mut rx = source::start_sources(&client, &options.legacy.namespace, None, logs, |_| {});

    // Nodewright's own objects: a change to any of them (a person's, or this operator's own
    // write coming back) calls for a turn.
    let own_changed = Arc::new(Notify::new());
    let clusters = reflect(
        Api::<EdgeCluster>::namespaced(client.clone(), &options.namespace),
        watcher::Config::default().fields(&format!("metadata.name={}", options.cluster)),
        own_changed.clone(),
    );
    let migrations = reflect(
        Api::<Migration>::namespaced(client.clone(), &options.namespace),
        watcher::Config::default(),
        own_changed.clone(),
    );
    let tasks = reflect(
        Api::<NodeTask>::namespaced(client.clone(), &options.namespace),
        watcher::Config::default(),
        own_changed.clone(),
    );
    let upgrades = reflect(
        Api::<StorageUpgrade>::namespaced(client.clone(), &options.namespace),
        watcher::Config::default(),
        own_changed.clone(),
    );
    // The storage gate: one Lease, by name (the chart grants its list and watch by name only).
    let gate_lease = reflect(
        Api::<Lease>::namespaced(client.clone(), &options.namespace),
        watcher::Config::default().fields(&format!("metadata.name={GATE_LEASE}")),
        own_changed.clone(),
    );
    // Until both are listed, a missing upgrade or gate proves nothing: no turn plans.
    let gate_listed = ready_flag(&gate_lease, &own_changed);
    let upgrades_listed = ready_flag(&upgrades, &own_changed);
    // The legacy namespace's pods: the fence reads which of them belong to the legacy DaemonSet
    // and where they run. Until the first list is in, no pod proves anything.
    let pods = reflect(
        Api::<Pod>::namespaced(client.clone(), &options.legacy.namespace),
        watcher::Config::default(),
        own_changed.clone(),
    );
    let pods_listed = ready_flag(&pods, &own_changed);
    // The agents' host facts: a decision reads them where they are fresh
    // ([`Snapshot::fresh_facts`]) and falls back to the scripts' reports where they are not, so
    // a turn does not wait for them to be listed.
    let edge_nodes = reflect(
        Api::<EdgeNode>::namespaced(client.clone(), &options.namespace),
        watcher::Config::default(),
        own_changed.clone(),
    );
    let node_facts = reflect(
        Api::<NodeFacts>::namespaced(client.clone(), &options.namespace),
        watcher::Config::default(),
        own_changed.clone(),
    );
    // The BondFlips (the operator's and the bridge's `owner: legacy` ones): until they are
    // listed, a missing flip proves nothing (one flip per node at a time), so no turn plans.
    let bond_flips = reflect(
        Api::<BondFlip>::namespaced(client.clone(), &options.namespace),
        watcher::Config::default(),
        own_changed.clone(),
    );
    let bond_flips_listed = ready_flag(&bond_flips, &own_changed);

    let writer = Writer::new(
        client.clone(),
        options.namespace.clone(),
        options.legacy.clone(),
        leader.clone(),
        metrics.actions.clone(),
        options.identity.clone(),
    );
    let controllers = controllers::all();
    let settings = Settings {
        stale_after: options.stale_after,
        migration_timeout: options.migration_timeout,
        upgrade_state_timeout: options.upgrade_state_timeout,
        upgrade_rollback_timeout: options.upgrade_rollback_timeout,
    };
    let mut memory = Memory::new(unix_now());
    let mut index = Index::new(options.legacy.clone());
    let mut gathered = Gathered::default();
    let mut listed: BTreeSet<&'static str> = BTreeSet::new();
    let mut tick = tokio::time::interval(options.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When the next turn is due: set by the first change after a turn, so that a steady stream
    // of changes delays a turn by at most one debounce.
    let mut due: Option<Instant> = None;
    let mut elector_gone = false;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let schedule = |due: &mut Option<Instant>| {
            due.get_or_insert_with(|| Instant::now() + options.debounce);
        };
        tokio::select! {
            () = &mut shutdown => break,
            change = rx.recv() => {
                let Some(change) = change else { break };
                if change.completes_list() {
                    listed.insert(change.source());
                    health.synced(change.source());
                }
                gathered.observe(&change, &options.legacy);
                source::apply(&mut index, change, unix_now());
                // The bridge reports parse errors and follows what changed; the operator plans
                // from the whole index every turn, so it drops both as they come, or they would
                // grow for as long as it runs.
                index.take_new_errors();
                index.take_dirty();
                schedule(&mut due);
            }
            () = own_changed.notified() => schedule(&mut due),
            changed = leader.changed(), if elector.is_some() && !elector_gone => {
                // Without a Lease the channel's sender is gone from the start: this replica
                // simply leads.
                elector_gone = changed.is_err();
                metrics.leader.set(i64::from(*leader.borrow()));
                schedule(&mut due);
            }
            _ = tick.tick() => {
                health.beat();
                metrics.leader.set(i64::from(*leader.borrow()));
                schedule(&mut due);
            }
            () = sleep_until(due) => {
                due = None;
                if !*leader.borrow() || listed.len() < 2 {
                    continue;
                }
                let Some(cluster) = clusters.get(&reflector::ObjectRef::new(&options.cluster).within(&options.namespace)) else {
                    tracing::debug!(cluster = %options.cluster, "no EdgeCluster yet; nothing to project");
                    continue;
                };
                if !gate_listed.load(Ordering::SeqCst)
                    || !upgrades_listed.load(Ordering::SeqCst)
                    || !bond_flips_listed.load(Ordering::SeqCst)
                {
                    tracing::debug!("the StorageUpgrades, the BondFlips or the storage gate are not listed yet; no turn");
                    continue;
                }
                let migrations: Vec<Migration> = migrations.state().iter().map(|m| (**m).clone()).collect();
                let tasks: Vec<NodeTask> = tasks.state().iter().map(|t| (**t).clone()).collect();
                let upgrades: Vec<StorageUpgrade> = upgrades.state().iter().map(|u| (**u).clone()).collect();
                let facts: Vec<NodeFacts> = node_facts.state().iter().map(|f| (**f).clone()).collect();
                let edge_nodes: Vec<EdgeNode> = edge_nodes.state().iter().map(|n| (**n).clone()).collect();
                let flips: Vec<BondFlip> = bond_flips.state().iter().map(|f| (**f).clone()).collect();
                let gate = gather::gate(gate_lease.state().first().map(|l| &**l));
                let draining = gather::draining_nodes(&upgrades, &options.cluster);
                let drained_pods = match list_pods_on(&client, &draining).await {
                    Ok(pods) => pods,
                    Err(e) => {
                        metrics.turn_error(TurnStage::ListPods);
                        // A node whose pods could not be listed would look empty, as if drained:
                        // no turn is planned without them.
                        tracing::warn!(error = %e, nodes = ?draining, "listing the pods of the nodes an upgrade drains failed; no turn until they are listed");
                        continue;
                    }
                };
                let snapshot = Snapshot {
                    now: unix_now(),
                    cluster: &cluster,
                    index: &index,
                    nodes: &gathered.nodes,
                    cluster_state_version: gathered.cluster_state_version.as_deref(),
                    migrations: &migrations,
                    tasks: &tasks,
                    upgrades: &upgrades,
                    pods: &drained_pods,
                    gate: gate.as_ref(),
                    facts: &facts,
                    edge_nodes: &edge_nodes,
                    bond_flips: &flips,
                    settings: &settings,
                };
                let now = snapshot.now;
                let listed_pods = pods_listed.load(Ordering::SeqCst).then(|| {
                    gather::script_pods(pods.state().iter().map(|p| &**p), &options.legacy_daemon_set)
                });
                let fence = Fence {
                    scripts: observed::script_facts(&index, &gathered.ready, listed_pods.as_ref()),
                    now,
                    grace: options.not_ready_grace,
                };
                let plan = plan_turn(&mut memory, &snapshot, &fence, &controllers);
                let takeover_version = gathered.takeover_version.clone();
                let outcome = write_turn(&writer, &metrics, &cluster, &mut memory, plan, takeover_version).await;
                if outcome == TurnOutcome::Conflict {
                    // Decide again from fresh state as soon as the watches have it, not at the
                    // next interval.
                    schedule(&mut due);
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    if let Some(elector) = elector {
        let _ = elector.await;
    }
    Ok(())
}

/// Sleeps until `due`, or for ever when no turn is due.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How a turn's writes went, as far as the loop cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnOutcome {
    /// Every write was made, or failed for a reason another turn right away would not change.
    Done,
    /// A write was refused because its object changed since the decision read it: decide again
    /// as soon as the watches deliver the change.
    Conflict,
}

/// Makes one turn's writes through the writer, in order: the takeover (guarded by
/// `takeover_version`, the takeover ConfigMap's `resourceVersion` the plan read, when it
/// existed), the owned workflows' sequences, the divergences' Events, the status. A failed write
/// is logged and counted; the next turn decides again.
async fn write_turn(
    writer: &Writer,
    metrics: &OperatorMetrics,
    cluster: &EdgeCluster,
    memory: &mut Memory,
    plan: TurnPlan,
    takeover_version: Option<String>,
) -> TurnOutcome {
    let mut outcome = TurnOutcome::Done;
    if let Some(data) = &plan.write_takeover {
        match writer
            .apply_takeover(takeover::CONFIGMAP, takeover_version.as_deref(), data)
            .await
        {
            Ok(()) => tracing::info!(generation = plan.takeover.generation, "projected the takeover"),
            Err(e) => {
                if !matches!(e, WriteError::Conflict(_)) {
                    metrics.turn_error(TurnStage::Takeover);
                }
                tracing::warn!(error = %e, "projecting the takeover failed; deciding again");
                return if matches!(e, WriteError::Conflict(_)) {
                    TurnOutcome::Conflict
                } else {
                    TurnOutcome::Done
                };
            }
        }
    }
    metrics.set_takeover(&plan.takeover);
    for (workflow, sequences) in &plan.owned {
        for sequence in sequences {
            let (done, error) = writer.sequence(workflow.key(), sequence).await;
            if let Some(e) = error {
                if matches!(e, WriteError::Conflict(_)) {
                    outcome = TurnOutcome::Conflict;
                }
                if matches!(e, WriteError::Refused { .. }) {
                    // Not an error: a budget or the gate says "not now"; the Event says which.
                    tracing::info!(workflow = %workflow, written = done, of = sequence.writes.len(), refused = %e, "the API server declined a write for now; deciding again next turn");
                    continue;
                }
                if !matches!(e, WriteError::Conflict(_)) {
                    metrics.turn_error(TurnStage::Sequence);
                }
                tracing::warn!(workflow = %workflow, written = done, of = sequence.writes.len(), error = %e, "not every write of the plan was made; deciding again");
            } else {
                tracing::info!(workflow = %workflow, writes = done, "applied");
            }
        }
    }
    let reference = cluster.object_ref(&());
    for d in &plan.new_divergences {
        tracing::warn!(workflow = %d.workflow, node = ?d.node, script = %d.script, operator = %d.operator, "shadow divergence");
        metrics.divergences.with_label_values(&[d.workflow.key()]).inc();
        writer
            .warning(
                &reference,
                "ShadowDivergence",
                &format!("Shadow{}", d.workflow.key().replace('-', "")),
                format!("script: {}; operator: {}", d.script, d.operator),
            )
            .await;
    }
    if let Some(status) = plan.status {
        match writer
            .apply_cluster_status(&cluster.metadata.name.clone().unwrap_or_default(), &status)
            .await
        {
            Ok(()) => memory.last_status = Some(status),
            Err(e) => {
                metrics.turn_error(TurnStage::Status);
                tracing::warn!(error = %e, "writing the EdgeCluster status failed; trying again next turn")
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use takeover::{NodeReady, ScriptPod};

    #[test]
    fn turn_errors_and_divergences_start_at_zero_and_count_by_label() {
        use nodewright_kit::admin::Encode as _;
        let m = OperatorMetrics::new().unwrap();
        let text = m.registry().encode().unwrap();
        for stage in ["list-pods", "takeover", "sequence", "status"] {
            let line = format!("nodewright_operator_turn_errors_total{{stage=\"{stage}\"}} 0");
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        for w in Workflow::ALL {
            let line = format!(
                "nodewright_shadow_divergences_total{{workflow=\"{}\"}} 0",
                w.key()
            );
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        m.turn_error(TurnStage::Status);
        m.turn_error(TurnStage::Status);
        let text = m.registry().encode().unwrap();
        assert!(
            text.lines()
                .any(|l| l == "nodewright_operator_turn_errors_total{stage=\"status\"} 2"),
            "{text}"
        );
    }

    fn fence(scripts: Vec<ScriptFacts>) -> Fence {
        Fence {
            scripts,
            now: 2_000,
            grace: 300,
        }
    }

    fn script(node: &str, acknowledged: Option<u64>) -> ScriptFacts {
        ScriptFacts {
            node: node.into(),
            acknowledged,
            last_report: Some(1_388),
            pod: ScriptPod::Running {
                pod: format!("vx-rail-node-init-{node}"),
            },
            ready: NodeReady::Ready,
        }
    }

    #[test]
    fn the_status_says_what_a_takeover_waits_for() {
        let mut requested = nodewright_api::edgecluster::WorkflowModes {
            taints: WorkflowMode::Shadow,
            ..Default::default()
        };
        let plan = takeover::plan(&requested, &Takeover::default(), &[], &BTreeSet::new());
        let fence = fence(vec![script("edge-1", None)]);
        let status = takeover_status(&plan, &fence, &BTreeMap::from([(Workflow::Taints, 2)]));
        assert_eq!(status.generation, 1);
        let taints = status.workflows.iter().find(|w| w.workflow == "taints").unwrap();
        assert_eq!(taints.effective, WorkflowMode::Shadow);
        assert!(!taints.acknowledged);
        assert_eq!(taints.divergences, 2);

        let mut current = Takeover {
            generation: 1,
            ..Takeover::default()
        };
        current.modes.insert(Workflow::Taints, WorkflowMode::Shadow);
        requested.taints = WorkflowMode::Operator;
        let plan = takeover::plan(&requested, &current, &[], &BTreeSet::new());
        let status = takeover_status(&plan, &fence, &BTreeMap::new());
        let taints = status.workflows.iter().find(|w| w.workflow == "taints").unwrap();
        assert_eq!(taints.effective, WorkflowMode::Operator);
        let m = taints.message.as_deref().unwrap();
        assert_eq!(
            m,
            "taints: waiting for the legacy script on edge-1 to read takeover generation 2 (its pod \
             vx-rail-node-init-edge-1 is running; last report 612 s ago)"
        );
    }

    fn site(taints: WorkflowMode, projected: Option<(i64, WorkflowMode)>) -> EdgeCluster {
        let spec: nodewright_api::edgecluster::EdgeClusterSpec =
            serde_json::from_value(json!({"profile": {"topology": "MultiNode"}})).unwrap();
        let mut cluster = EdgeCluster::new("site", spec);
        cluster.metadata.namespace = Some("nodewright-system".into());
        cluster.spec.workflows.taints = taints;
        if let Some((generation, mode)) = projected {
            cluster.status = Some(serde_json::from_value(json!({
                "takeover": {"generation": generation, "workflows": [
                    {"workflow": "taints", "requested": mode.as_str(), "effective": mode.as_str(), "acknowledged": true}
                ]}
            })).unwrap());
        }
        cluster
    }

    fn node_cm(node: &str, ack: u64) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(format!("vx-rail-node-{node}"));
        cm.metadata.namespace = Some("kube-system".into());
        cm.data = Some([("takeover-generation".to_owned(), ack.to_string())].into());
        cm
    }

    fn turn(index: &Index, cluster: &EdgeCluster, fence: &Fence) -> TurnPlan {
        let settings = Settings {
            stale_after: 300,
            migration_timeout: 1800,
            upgrade_state_timeout: 1800,
            upgrade_rollback_timeout: 1800,
        };
        let nodes = BTreeMap::new();
        let snapshot = Snapshot {
            now: fence.now,
            cluster,
            index,
            nodes: &nodes,
            cluster_state_version: None,
            migrations: &[],
            tasks: &[],
            upgrades: &[],
            pods: &[],
            gate: None,
            facts: &[],
            edge_nodes: &[],
            bond_flips: &[],
            settings: &settings,
        };
        plan_turn(&mut Memory::new(0), &snapshot, fence, &controllers::all())
    }

    #[test]
    fn a_lost_takeover_configmap_is_written_again_with_the_modes_last_projected_at_a_new_generation() {
        // The operator projected taints=operator at generation 4 and both scripts acknowledged
        // it; then the ConfigMap was deleted.
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(&node_cm("edge-1", 4), 100);
        index.apply_config_map(&node_cm("edge-2", 4), 100);
        let cluster = site(WorkflowMode::Operator, Some((4, WorkflowMode::Operator)));
        let fence = fence(vec![script("edge-1", Some(4)), script("edge-2", Some(4))]);
        let plan = turn(&index, &cluster, &fence);
        let data = plan.write_takeover.expect("the lost ConfigMap is written again");
        assert_eq!(data["generation"], "5");
        assert_eq!(data["taints"], "operator");
        // Nobody has acknowledged 5: the operator does not act meanwhile.
        assert!(plan.owned.is_empty());
        let status = plan.status.unwrap();
        let m = status["takeover"]["workflows"][4]["message"].as_str().unwrap();
        assert!(m.contains("to read takeover generation 5"), "{m}");
    }

    #[test]
    fn an_owned_workflow_does_not_act_in_the_turn_that_projects_its_takeover_even_with_every_script_pod_gone()
    {
        let mut projected = Takeover {
            generation: 2,
            ..Takeover::default()
        };
        projected.modes.insert(Workflow::Taints, WorkflowMode::Operator);
        let mut gone = script("edge-1", Some(1));
        gone.pod = ScriptPod::Gone;
        let fence = fence(vec![gone]);
        // The fence alone would let it act: the only script's pod was gone when read.
        assert!(fence.may_act(&projected, Workflow::Taints).is_ok());
        // But a pod created since may hold generation 1 until generation 2 lands.
        assert!(!may_act_this_turn(&fence, &projected, Workflow::Taints, true));
        assert!(may_act_this_turn(&fence, &projected, Workflow::Taints, false));
    }

    #[test]
    fn a_lost_configmap_the_status_does_not_remember_is_written_again_all_legacy_above_the_acks() {
        // Without the status (a restored EdgeCluster) the operator hands everything back rather
        // than leave the scripts that acknowledged 7 failing.
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(&node_cm("edge-1", 7), 100);
        let cluster = site(WorkflowMode::Operator, None);
        let plan = turn(&index, &cluster, &fence(vec![script("edge-1", Some(7))]));
        let data = plan.write_takeover.expect("written again");
        assert_eq!(data["generation"], "8");
        assert_eq!(data["taints"], "legacy");
    }

    #[test]
    fn a_site_that_never_left_legacy_gets_no_takeover_configmap() {
        let index = Index::new(LegacyNames::default());
        let cluster = site(WorkflowMode::Legacy, None);
        let plan = turn(&index, &cluster, &fence(vec![script("edge-1", None)]));
        assert!(plan.write_takeover.is_none());
    }

    #[test]
    fn a_node_without_a_node_configmap_whose_pod_runs_holds_the_owned_workflow_back() {
        let mut index = Index::new(LegacyNames::default());
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(takeover::CONFIGMAP.into());
        cm.metadata.namespace = Some("kube-system".into());
        cm.data = Some(
            [("generation", "2"), ("taints", "operator")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
        );
        index.apply_config_map(&cm, 100);
        index.apply_config_map(&node_cm("edge-1", 2), 100);
        let cluster = site(WorkflowMode::Operator, Some((2, WorkflowMode::Operator)));
        let mut newcomer = script("edge-9", None);
        newcomer.last_report = None;
        let plan = turn(
            &index,
            &cluster,
            &fence(vec![script("edge-1", Some(2)), newcomer]),
        );
        let status = plan.status.unwrap();
        let taints = &status["takeover"]["workflows"][4];
        assert_eq!(taints["acknowledged"], false);
        assert!(
            taints["message"]
                .as_str()
                .unwrap()
                .contains("the legacy script on edge-9 to read takeover generation 2 (its pod vx-rail-node-init-edge-9 is running; no report yet)"),
            "{taints}"
        );
    }
}
