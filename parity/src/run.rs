//! The operator's process loop: the only module of this crate that talks to the API server.
//!
//! Each turn it reads the site's `EdgeCluster`, plans the takeover ([`crate::takeover::plan`]),
//! projects it into the takeover ConfigMap, acts on the workflows it owns once every live script
//! has acknowledged them (taints, through Node patches guarded by the Node's resourceVersion),
//! records shadow divergences (status, a counter, an Event each) and writes its part of the
//! EdgeCluster status. Its index is fed by the same watches as the bridge's.
//!
//! What it may touch: the takeover ConfigMap, Nodes' `vx-rail.io/storage-not-ready` and
//! `vx-rail.io/upgrade-in-progress` taints and `vx-rail.io/storage-ready` label (taints in
//! `operator` mode only), the EdgeCluster's `status.takeover` and `status.divergences`, Events,
//! and its Lease.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node, ObjectReference, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use nodewright_api::edgecluster::{
    Divergence as ApiDivergence, EdgeCluster, TakeoverStatus, WorkflowTakeover,
};
use nodewright_api::migration::{Migration, MigrationStatus};
use nodewright_api::nodetask::{NodeTask, NodeTaskSpec, WorkflowKind, WorkflowRef};
use nodewright_api::{WorkflowMode, WorkflowOwner};
use nodewright_bridge::index::{Index, LegacyNames};
use nodewright_bridge::lease::LeaseConfig;
use nodewright_bridge::metrics::Health;
use nodewright_bridge::process;
use nodewright_bridge::source::{self, Change};
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::migration::{self as mig, Action as MigAction, Outcome, TaskRequest, TaskResult};
use crate::observed;
use crate::shadow::{self, Divergence};
use crate::taints::{self, TaintAction};
use crate::takeover::{self, Plan, Takeover, Workflow};

/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "nodewright-operator";
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
    /// A script that has not reported for this long does not hold a takeover back (seconds).
    pub stale_after: i64,
    /// Time between turns.
    pub interval: Duration,
    /// A migration phase that waits longer than this fails and rolls back (seconds).
    pub migration_timeout: i64,
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
            stale_after: 300,
            interval: Duration::from_secs(5),
            migration_timeout: mig::DEFAULT_TIMEOUT,
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

/// Errors of one turn; the next turn tries again.
#[derive(Debug, thiserror::Error)]
enum TurnError {
    #[error("reading EdgeCluster {0}: {1}")]
    ReadCluster(String, kube::Error),
    #[error("writing the takeover ConfigMap: {0}")]
    WriteTakeover(kube::Error),
    #[error("writing EdgeCluster status: {0}")]
    WriteStatus(kube::Error),
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
                "Changes the operator made for the workflows it owns, by workflow, action and result",
            ),
            &["workflow", "action", "result"],
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
        })
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

/// The taints a Node should carry after `action`, from the taints it carries now; `None` when the
/// action does not touch taints or changes nothing.
pub fn taints_after(current: &[Taint], action: &TaintAction) -> Option<Vec<Taint>> {
    let without = |key: &str| -> Vec<Taint> {
        current
            .iter()
            .filter(|t| !(t.key == key && t.effect == nodewright_parsers::contract::taint::EFFECT))
            .cloned()
            .collect()
    };
    let next = match action {
        TaintAction::Taint { reason } => {
            let mut next = without(taints::STORAGE_TAINT);
            next.push(Taint {
                key: taints::STORAGE_TAINT.to_owned(),
                value: Some(reason.clone()),
                effect: nodewright_parsers::contract::taint::EFFECT.to_owned(),
                time_added: None,
            });
            next
        }
        TaintAction::Untaint => without(taints::STORAGE_TAINT),
        TaintAction::RemoveUpgradeTaint => without(taints::UPGRADE_TAINT),
        TaintAction::Label { .. } => return None,
    };
    (next != current).then_some(next)
}

/// The merge patch for one action on a Node as it is now. It carries the Node's resourceVersion,
/// which makes it conditional: a Node changed since it was read is not overwritten (the API server
/// answers 409 Conflict and the next turn decides again). `None` when nothing would change.
pub fn node_patch(node: &Node, action: &TaintAction) -> Option<serde_json::Value> {
    let rv = node.metadata.resource_version.clone().unwrap_or_default();
    match action {
        TaintAction::Label { ready } => Some(json!({
            "metadata": {
                "resourceVersion": rv,
                "labels": {taints::READY_LABEL: ready.to_string()},
            }
        })),
        _ => {
            let current = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            let next = taints_after(&current, action)?;
            // A merge patch replaces a list whole: every other taint is written back as it was.
            Some(json!({
                "metadata": {"resourceVersion": rv},
                "spec": {"taints": next},
            }))
        }
    }
}

/// The label that ties a NodeTask to the Migration that created it.
pub const MIGRATION_LABEL: &str = "nodewright.io/migration";
/// The legacy role label the migration sets on joining nodes.
pub const ROLE_LABEL: &str = nodewright_parsers::contract::label::ROLE;

/// The NodeTask that carries out one task request of a migration: named by its idempotency key,
/// labelled with the migration, and owned by it (deleting the Migration deletes its tasks).
pub fn node_task_for(t: &TaskRequest, m: &Migration) -> NodeTask {
    let mut task = NodeTask::new(
        &t.key,
        NodeTaskSpec {
            node_name: t.node.clone(),
            step: t.step.as_str().to_owned(),
            args: t.args.clone(),
            idempotency_key: t.key.clone(),
            workflow_ref: Some(WorkflowRef {
                kind: WorkflowKind::Migration,
                name: m.name_any(),
            }),
            timeout_seconds: 600,
        },
    );
    task.metadata.labels = Some(BTreeMap::from([(MIGRATION_LABEL.to_owned(), m.name_any())]));
    task.metadata.owner_references = m.controller_owner_ref(&()).map(|o| vec![o]);
    task
}

/// The tasks a migration created, by idempotency key, as the decision reads them. A task whose
/// step this version's catalogue does not have (created by an older operator before a step was
/// dropped or renamed) is left out: no decision of this version can ask for it or undo it. Should
/// a decision want its key for another step, the create answers 409 Conflict, the phase waits and
/// times out, and the migration rolls back.
pub fn task_results(tasks: &[NodeTask]) -> BTreeMap<String, TaskResult> {
    tasks
        .iter()
        .filter_map(|t| {
            let status = t.status.clone().unwrap_or_default();
            Some((
                t.spec.idempotency_key.clone(),
                TaskResult {
                    request: TaskRequest {
                        key: t.spec.idempotency_key.clone(),
                        node: t.spec.node_name.clone(),
                        step: t.spec.step_name().ok()?,
                        args: t.spec.args.clone(),
                    },
                    phase: status.phase,
                    output: status.output,
                    message: status.message,
                },
            ))
        })
        .collect()
}

/// The `Progressing` condition: what the migration waits for (`reason` empty when it moved on).
fn set_waiting(status: &mut MigrationStatus, reason: &str, now: i64, generation: Option<i64>) {
    use nodewright_api::common::{ConditionStatus, set_condition};
    let at = nodewright_bridge::observe::time(now);
    let (s, r, msg) = if mig::is_over(status) {
        (ConditionStatus::False, "Finished", "the migration is over")
    } else if reason.is_empty() {
        (ConditionStatus::True, "PhaseEntered", "entered its current phase")
    } else {
        (ConditionStatus::True, "Waiting", reason)
    };
    set_condition(&mut status.conditions, "Progressing", s, r, msg, generation, &at);
}

/// The takeover part of the EdgeCluster status, from a plan and who acknowledged it.
pub fn takeover_status(
    plan: &Plan,
    acks: &[takeover::Ack],
    divergence_counts: &BTreeMap<Workflow, i64>,
) -> TakeoverStatus {
    let workflows = plan
        .workflows
        .iter()
        .map(|w| {
            let waiting = match takeover::may_act(&plan.takeover, w.workflow, acks) {
                Ok(()) => Vec::new(),
                Err(waiting) => waiting,
            };
            let acknowledged = acks
                .iter()
                .filter(|a| a.live)
                .all(|a| a.generation.is_some_and(|g| g >= plan.takeover.generation))
                || plan.takeover.generation == 0;
            let message = w.message.clone().or_else(|| {
                (w.effective == WorkflowMode::Operator && !waiting.is_empty()).then(|| {
                    format!(
                        "{}: waiting for the legacy script on {} to read takeover generation {}",
                        w.workflow,
                        waiting.join(", "),
                        plan.takeover.generation
                    )
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

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn time_at(unix: i64) -> Time {
    nodewright_bridge::observe::time(unix)
}

/// State the loop carries from turn to turn.
struct Operator {
    client: Client,
    options: OperatorOptions,
    metrics: OperatorMetrics,
    recorder: Recorder,
    /// Divergences seen at the last turn (by key): one is recorded when it appears, not while it
    /// lasts.
    open: BTreeSet<String>,
    recent: VecDeque<ApiDivergence>,
    counts: BTreeMap<Workflow, i64>,
    last_status: Option<serde_json::Value>,
    /// When the last turn looked for divergences (workflow transitions before it were compared).
    last_look: i64,
}

impl Operator {
    async fn turn(&mut self, index: &Index) -> Result<(), TurnError> {
        let now = unix_now();
        let clusters: Api<EdgeCluster> = Api::namespaced(self.client.clone(), &self.options.namespace);
        let Some(cluster) = clusters
            .get_opt(&self.options.cluster)
            .await
            .map_err(|e| TurnError::ReadCluster(self.options.cluster.clone(), e))?
        else {
            tracing::debug!(cluster = %self.options.cluster, "no EdgeCluster yet; nothing to project");
            return Ok(());
        };
        if self.last_status.is_none() {
            self.restore(&cluster);
        }
        let current = match observed::takeover(index) {
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
        let plan = takeover::plan(
            &cluster.spec.workflows,
            &current,
            &observed::in_flight(index),
            &forced,
        );
        let needs_write = plan.changed
            || (index.takeover.is_none()
                && Workflow::ALL
                    .iter()
                    .any(|w| plan.takeover.mode(*w) != WorkflowMode::Legacy));
        if needs_write {
            self.write_takeover(&plan.takeover).await?;
            tracing::info!(generation = plan.takeover.generation, "projected the takeover");
        }
        self.metrics.set_takeover(&plan.takeover);

        let acks = observed::acks(index, now, self.options.stale_after);
        if takeover::may_act(&plan.takeover, Workflow::Taints, &acks).is_ok() {
            self.act_on_taints(index).await;
        }
        if takeover::may_act(&plan.takeover, Workflow::Migration, &acks).is_ok() {
            self.act_on_migrations(index, now).await;
        }

        let shadowed: Vec<Workflow> = Workflow::ALL
            .into_iter()
            .filter(|w| plan.takeover.mode(*w) == WorkflowMode::Shadow)
            .collect();
        // Only the migration's shadow reads these; a turn without it does not build them.
        let facts = if shadowed.contains(&Workflow::Migration) {
            observed::migration_facts(
                index,
                now,
                self.options.stale_after,
                self.options.migration_timeout,
            )
        } else {
            crate::migration::Facts::default()
        };
        let found = shadow::divergences(index, &shadowed, now, self.last_look, &facts);
        self.last_look = now;
        let keys: BTreeSet<String> = found.iter().map(Divergence::key).collect();
        let at = time_at(now);
        for d in found.iter().filter(|d| !self.open.contains(&d.key())) {
            tracing::warn!(workflow = %d.workflow, node = ?d.node, script = %d.script, operator = %d.operator, "shadow divergence");
            self.metrics
                .divergences
                .with_label_values(&[d.workflow.key()])
                .inc();
            *self.counts.entry(d.workflow).or_default() += 1;
            self.recent.push_back(api_divergence(d, &at));
            while self.recent.len() > KEEP_DIVERGENCES {
                self.recent.pop_front();
            }
            self.publish(&cluster, d).await;
        }
        self.open = keys;

        let status = json!({
            "apiVersion": "nodewright.io/v1alpha1",
            "kind": "EdgeCluster",
            "metadata": {"name": self.options.cluster},
            "status": {
                "takeover": takeover_status(&plan, &acks, &self.counts),
                "divergences": self.recent,
            }
        });
        if self.last_status.as_ref() != Some(&status) {
            clusters
                .patch_status(
                    &self.options.cluster,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&status),
                )
                .await
                .map_err(TurnError::WriteStatus)?;
            self.last_status = Some(status);
        }
        Ok(())
    }

    /// A new leader (or a restarted operator) carries on from the status the last one wrote: the
    /// recent divergences, their counts, and which of them are still open, so that a divergence
    /// that lasts is not recorded again.
    fn restore(&mut self, cluster: &EdgeCluster) {
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

    async fn write_takeover(&self, t: &Takeover) -> Result<(), TurnError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.options.legacy.namespace);
        let cm = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": takeover::CONFIGMAP,
                "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER},
            },
            "data": t.to_data(),
        });
        api.patch(
            takeover::CONFIGMAP,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&cm),
        )
        .await
        .map_err(TurnError::WriteTakeover)?;
        Ok(())
    }

    /// Taints in `operator` mode: every node's decision, each action a guarded Node patch. A Node
    /// that changed since it was read fails its patch and is decided again next turn.
    async fn act_on_taints(&self, index: &Index) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let upgrade = observed::upgrade_state(index);
        for (name, entry) in &index.nodes {
            let (Some(facts), Some(have)) = (observed::storage_facts(entry), observed::node_taints(entry))
            else {
                continue;
            };
            for action in taints::decide(&facts, &have, upgrade.clone()) {
                let label = match action {
                    TaintAction::Taint { .. } => "taint",
                    TaintAction::Untaint => "untaint",
                    TaintAction::Label { .. } => "label",
                    TaintAction::RemoveUpgradeTaint => "remove-upgrade-taint",
                };
                let result = async {
                    let node = nodes.get(name).await?;
                    match node_patch(&node, &action) {
                        Some(patch) => nodes
                            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                            .map(|_| ()),
                        None => Ok(()),
                    }
                }
                .await;
                match result {
                    Ok(()) => {
                        tracing::info!(node = %name, %action, "taints: applied");
                        self.metrics
                            .actions
                            .with_label_values(&["taints", label, "ok"])
                            .inc();
                    }
                    Err(e) => {
                        tracing::warn!(node = %name, %action, error = %e, "taints: not applied; deciding again next turn");
                        self.metrics
                            .actions
                            .with_label_values(&["taints", label, "error"])
                            .inc();
                    }
                }
            }
        }
    }

    /// Migrations in `operator` mode: each operator-owned Migration of the site's namespace, one
    /// decision after the other until it waits. Every decision's actions are applied before its
    /// outcome is written to the Migration's status; a failed action leaves the status as it was
    /// and the next turn decides again (node tasks exist already and are not created twice).
    async fn act_on_migrations(&self, index: &Index, now: i64) {
        let migrations: Api<Migration> = Api::namespaced(self.client.clone(), &self.options.namespace);
        let list = match migrations.list(&ListParams::default()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listing Migrations failed; trying again next turn");
                return;
            }
        };
        for m in list.items {
            if m.spec.owner != WorkflowOwner::Operator
                || m.spec.cluster_ref.name != self.options.cluster
                || m.status.as_ref().is_some_and(mig::is_over)
            {
                continue;
            }
            if let Err(e) = self.drive_migration(index, now, &m).await {
                tracing::warn!(migration = %m.name_any(), error = %e, "migration turn failed; trying again next turn");
            }
        }
    }

    async fn drive_migration(&self, index: &Index, now: i64, m: &Migration) -> Result<(), kube::Error> {
        let name = m.name_any();
        let uid = m.metadata.uid.clone().unwrap_or_default();
        let tasks_api: Api<NodeTask> = Api::namespaced(self.client.clone(), &self.options.namespace);
        let migrations: Api<Migration> = Api::namespaced(self.client.clone(), &self.options.namespace);
        let mut status = m.status.clone().unwrap_or_default();
        let facts = observed::migration_facts(
            index,
            now,
            self.options.stale_after,
            self.options.migration_timeout,
        );
        for _ in 0..16 {
            let listed = tasks_api
                .list(&ListParams::default().labels(&format!("{MIGRATION_LABEL}={name}")))
                .await?;
            let tasks = task_results(&listed.items);
            let d = mig::decide(&m.spec, &uid, &status, &facts, &tasks);
            let mut wrote_site = false;
            let mut created = false;
            for action in &d.actions {
                match action {
                    MigAction::Task(t) => {
                        match tasks_api
                            .create(&PostParams::default(), &node_task_for(t, m))
                            .await
                        {
                            Ok(_) => {}
                            // Created by an earlier turn that did not get to write its status.
                            Err(kube::Error::Api(e)) if e.code == 409 => {}
                            Err(e) => return Err(e),
                        }
                        self.metrics
                            .actions
                            .with_label_values(&["migration", "task", "ok"])
                            .inc();
                        created = true;
                    }
                    MigAction::RoleLabel { node, role } => {
                        let patch = json!({"metadata": {"labels": {ROLE_LABEL: role}}});
                        Api::<Node>::all(self.client.clone())
                            .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
                            .await?;
                        self.metrics
                            .actions
                            .with_label_values(&["migration", "label", "ok"])
                            .inc();
                    }
                    MigAction::ClusterState { cluster, members } => {
                        self.patch_cluster_state(json!({"cluster": cluster, "members": members}))
                            .await?;
                        self.metrics
                            .actions
                            .with_label_values(&["migration", "cluster-state", "ok"])
                            .inc();
                        wrote_site = true;
                    }
                }
            }
            match d.outcome {
                Outcome::Wait(reason) => {
                    set_waiting(&mut status, &reason, now, m.metadata.generation);
                    // A migration waiting for the same thing is not written again every turn.
                    if m.status.as_ref() != Some(&status) {
                        self.write_migration_status(&migrations, &name, &status).await?;
                    }
                    return Ok(());
                }
                Outcome::Enter(phase, message) => {
                    tracing::info!(migration = %name, phase = mig::legacy_phase(phase), message = ?message, "migration phase");
                    mig::enter(&mut status, phase, message, now, m.metadata.generation);
                    set_waiting(&mut status, "", now, m.metadata.generation);
                    self.write_migration_status(&migrations, &name, &status).await?;
                    // The scripts read the legacy key: they hold storage upgrades while it runs.
                    self.patch_cluster_state(json!({"migration": mig::legacy_blob(&m.spec, &status)}))
                        .await?;
                    // What this turn wrote is not in the index yet: the next decision waits for it.
                    if wrote_site || created || mig::is_over(&status) {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    async fn write_migration_status(
        &self,
        api: &Api<Migration>,
        name: &str,
        status: &MigrationStatus,
    ) -> Result<(), kube::Error> {
        let body = json!({"status": status});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
            .await?;
        Ok(())
    }

    async fn patch_cluster_state(&self, data: serde_json::Value) -> Result<(), kube::Error> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.options.legacy.namespace);
        api.patch(
            &self.options.legacy.cluster_state,
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": data})),
        )
        .await?;
        Ok(())
    }

    async fn publish(&self, cluster: &EdgeCluster, d: &Divergence) {
        let reference: ObjectReference = cluster.object_ref(&());
        let note = format!("script: {}; operator: {}", d.script, d.operator);
        let event = Event {
            type_: EventType::Warning,
            reason: "ShadowDivergence".into(),
            note: Some(note.chars().take(1024).collect()),
            action: format!("Shadow{}", d.workflow.key().replace('-', "")),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, "publishing a divergence Event failed");
        }
    }
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
        process::start_admin(addr, registry, health.clone(), stopped())
            .await
            .map_err(|source| Error::Admin { addr, source })?;
    }
    let (leader, elector) = process::start_election(&client, options.lease.clone(), stopped());
    let mut rx = process::start_sources(&client, &options.legacy.namespace, logs, |_| {});

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: Some(options.identity.clone()),
        },
    );
    let mut operator = Operator {
        client,
        options: options.clone(),
        metrics,
        recorder,
        open: BTreeSet::new(),
        recent: VecDeque::new(),
        counts: BTreeMap::new(),
        last_status: None,
        last_look: unix_now(),
    };
    let mut index = Index::new(options.legacy.clone());
    let mut listed: BTreeSet<&'static str> = BTreeSet::new();
    let mut tick = tokio::time::interval(options.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            change = rx.recv() => {
                let Some(change) = change else { break };
                if change.completes_list() {
                    listed.insert(change.source());
                    health.synced(change.source());
                }
                source::apply(&mut index, change, unix_now());
            }
            _ = tick.tick() => {
                health.beat();
                let leading = *leader.borrow();
                operator.metrics.leader.set(i64::from(leading));
                if !leading || listed.len() < 2 {
                    continue;
                }
                if let Err(e) = operator.turn(&index).await {
                    tracing::warn!(error = %e, "operator turn failed; trying again next turn");
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;

    fn taint(key: &str, value: &str) -> Taint {
        Taint {
            key: key.into(),
            value: Some(value.into()),
            effect: "NoSchedule".into(),
            time_added: None,
        }
    }

    #[test]
    fn tainting_replaces_the_storage_taint_and_keeps_every_other_taint() {
        let other = taint("node.kubernetes.io/not-ready", "");
        let current = vec![other.clone(), taint(taints::STORAGE_TAINT, "resync")];
        let next = taints_after(
            &current,
            &TaintAction::Taint {
                reason: "not-uptodate".into(),
            },
        )
        .unwrap();
        assert_eq!(
            next,
            vec![other.clone(), taint(taints::STORAGE_TAINT, "not-uptodate")]
        );
        assert_eq!(
            taints_after(&current, &TaintAction::Untaint).unwrap(),
            vec![other]
        );
        assert_eq!(
            taints_after(&[], &TaintAction::Untaint),
            None,
            "nothing to remove"
        );
    }

    #[test]
    fn a_node_patch_is_guarded_by_the_resource_version_it_was_decided_on() {
        let mut node = Node::default();
        node.metadata.resource_version = Some("42".into());
        node.spec = Some(NodeSpec {
            taints: Some(vec![taint("node.kubernetes.io/not-ready", "")]),
            ..NodeSpec::default()
        });
        let patch = node_patch(
            &node,
            &TaintAction::Taint {
                reason: "resync".into(),
            },
        )
        .unwrap();
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        let written = patch["spec"]["taints"].as_array().unwrap();
        assert_eq!(written.len(), 2, "the other taint is written back: {patch}");
        assert_eq!(written[1]["key"], taints::STORAGE_TAINT);
        let label = node_patch(&node, &TaintAction::Label { ready: true }).unwrap();
        assert_eq!(
            label,
            json!({"metadata": {"resourceVersion": "42", "labels": {"vx-rail.io/storage-ready": "true"}}})
        );
        assert_eq!(
            node_patch(&node, &TaintAction::Untaint),
            None,
            "no storage taint to remove"
        );
    }

    #[test]
    fn the_status_says_what_a_takeover_waits_for() {
        let mut requested = nodewright_api::edgecluster::WorkflowModes {
            taints: WorkflowMode::Shadow,
            ..Default::default()
        };
        let plan = takeover::plan(&requested, &Takeover::default(), &[], &BTreeSet::new());
        let acks = [takeover::Ack {
            node: "edge-1".into(),
            generation: None,
            live: true,
        }];
        let status = takeover_status(&plan, &acks, &BTreeMap::from([(Workflow::Taints, 2)]));
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
        let status = takeover_status(&plan, &acks, &BTreeMap::new());
        let taints = status.workflows.iter().find(|w| w.workflow == "taints").unwrap();
        assert_eq!(taints.effective, WorkflowMode::Operator);
        let m = taints.message.as_deref().unwrap();
        assert!(
            m.contains("waiting for the legacy script on edge-1 to read takeover generation 2"),
            "{m}"
        );
    }
}
