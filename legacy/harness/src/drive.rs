//! Nodewright's operator in the loop of a parity run: a workflow controller's plan written against
//! the in-memory cluster, and its NodeTasks carried out at once by the node agents on the
//! simulated hosts.
//!
//! The harness stands in for the API server for Nodewright's own objects ([`Objects`]: the
//! workflow objects, the NodeTasks and their results) and carries every [`Write`] a plan makes to
//! where the real writer would send it: a Node or ConfigMap patch as the `kubectl` commands that
//! make the same change in the in-memory cluster, a NodeTask to its node's agent, a status to the
//! harness's object, each under the guard the real writer sends it with. Every `kubectl` command
//! and every host command an agent runs is recorded as an invariants [`Step`] with the world after
//! it, so that the invariants see what Nodewright did beside what the scripts did.
//!
//! One operator turn ([`turn`]) is what the operator's loop does over the time between two of the
//! scripts' loops: plan, write, and plan again from what the writes changed, until the workflow
//! waits (the agent's own timing, claims and journal are covered by its integration tests).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use nodewright_agent_shim::{HostOps, HostOutput, StepOutcome};
use nodewright_api::bondflip::BondFlip;
use nodewright_api::edgecluster::{EdgeCluster, EdgeClusterSpec};
use nodewright_api::edgenode::{EdgeNode, EdgeNodeSpec};
use nodewright_api::hostconfig::HostConfig;
use nodewright_api::migration::Migration;
use nodewright_api::nodefacts::NodeFacts;
use nodewright_api::nodetask::{NodeTask, NodeTaskPhase, NodeTaskStatus, WorkflowKind};
use nodewright_api::storageupgrade::{StorageUpgrade, UpgradeState};
use nodewright_bridge::index::Index;
use nodewright_legacy_sim::cluster::Cluster as MemCluster;
use nodewright_legacy_sim::run::{Cluster, Facts, Host};
use nodewright_parity::Workflow;
use nodewright_parity::controllers::{
    Gate, LegacyConfigMap, NodeMeta, PodMeta, Settings, Snapshot, WorkflowController, Write,
};
use nodewright_parity::migration;
use nodewright_parsers::contract::cluster_key;

use crate::invariants::{self, Actor, Step};
use crate::parity::{Error, harness, refresh};
use crate::world::{SharedCluster, SharedWorld};

/// The namespace of the operator's objects in these runs.
pub const NAMESPACE: &str = "nodewright-system";

/// The world now, as the invariants read it.
pub fn observe(world: &SharedWorld, cluster: &SharedCluster) -> Arc<Facts> {
    let mut facts = Facts::default();
    Host::observe(world, &mut facts);
    Cluster::observe(cluster, &mut facts);
    Arc::new(facts)
}

/// Nodewright's own objects, as the harness keeps them in place of the API server: what the
/// controllers read through the snapshot, and what their writes change.
#[derive(Clone, Default)]
pub struct Objects {
    /// The site's Migrations.
    pub migrations: Vec<Migration>,
    /// The site's StorageUpgrades.
    pub upgrades: Vec<StorageUpgrade>,
    /// Every NodeTask created, by name, with the result its agent reported.
    pub tasks: BTreeMap<String, NodeTask>,
    /// The site's BondFlips (the operator's; the bridge's `owner: legacy` ones are not kept
    /// here).
    pub bond_flips: Vec<BondFlip>,
    /// The site-wide storage gate (the Lease `nodewright-storage-gate`), while it is held.
    pub gate: Option<Gate>,
    /// How many times the gate was taken: each new Lease has a new `resourceVersion`.
    gate_leases: u64,
    /// Per workflow, the last reason it waited for (reported once, not every turn).
    last_wait: BTreeMap<Workflow, String>,
    /// The site's EdgeNodes (their `spec.host`), for the workflows that read them.
    pub edge_nodes: Vec<EdgeNode>,
}

/// The next `resourceVersion` of an object the harness keeps.
fn bump(rv: &mut Option<String>) {
    let next = rv.as_deref().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + 1;
    *rv = Some(next.to_string());
}

impl Objects {
    /// Adds a Migration a person created.
    pub fn create_migration(&mut self, mut m: Migration) {
        m.metadata.namespace = Some(NAMESPACE.into());
        m.metadata.resource_version = Some("1".into());
        self.migrations.push(m);
    }

    /// Adds a StorageUpgrade a person created, or that the operator created from the legacy
    /// request. Its uid is derived from its name, so that task keys are stable in the snapshots.
    pub fn create_upgrade(&mut self, mut u: StorageUpgrade) {
        let name = u.metadata.name.clone().unwrap_or_default();
        u.metadata.namespace = Some(NAMESPACE.into());
        u.metadata.uid = Some(format!("{name}-golden"));
        u.metadata.resource_version = Some("1".into());
        u.metadata.generation = Some(1);
        self.upgrades.push(u);
    }

    /// Adds a BondFlip a person created, or that the operator created from the legacy request.
    /// Its uid is derived from its name, so that task keys are stable in the snapshots.
    pub fn create_bond_flip(&mut self, mut f: BondFlip) {
        let name = f.metadata.name.clone().unwrap_or_default();
        f.metadata.namespace = Some(NAMESPACE.into());
        f.metadata.uid = Some(format!("{name}-golden"));
        f.metadata.resource_version = Some("1".into());
        f.metadata.generation = Some(1);
        self.bond_flips.push(f);
    }

    /// The NodeTasks with their results, as the controllers read them.
    fn task_list(&self) -> Vec<NodeTask> {
        self.tasks.values().cloned().collect()
    }
}

/// Nodewright between two ticks: the cluster and the hosts it acts on, and every step it takes.
pub struct Nodewright<'a> {
    /// The in-memory cluster.
    pub cluster: &'a SharedCluster,
    /// The simulated hosts.
    pub world: &'a SharedWorld,
    /// Every step Nodewright took so far.
    pub steps: &'a mut Vec<Step>,
    /// The tick whose end this turn follows.
    pub tick: u32,
    /// Now, by the simulated clock.
    pub now: i64,
    /// The scratch directory under which each node's agent keeps its state directory (its
    /// backups), `<agents>/<node>`.
    pub agents: &'a std::path::Path,
    /// What the node agents last published of their hosts.
    pub hosts: &'a mut AgentFacts,
}

/// The node agents' `NodeFacts`, as they would stand in the API server: each agent whose node
/// runs (its DaemonSet pod exists, as the legacy script's does) reads its simulated host through
/// the agent's own facts code ([`nodewright_agent_shim::facts::read_host`], the same commands,
/// parsers and `node.conf` reading as on a real host) whenever the operator gathers a snapshot;
/// a node that is off keeps the facts it last published, which age until they are no longer
/// fresh. Reads change nothing on the host and are not steps.
#[derive(Clone, Debug, Default)]
pub struct AgentFacts {
    published: BTreeMap<String, NodeFacts>,
    /// Set when the scenario runs without agents publishing facts (the operator then has only
    /// the scripts' reports, as before the agents reported their hosts).
    pub silent: bool,
    /// Set when the operator's decisions get none of the scripts' reports of the hosts: no
    /// node's `status` or `drbd-status` blob, no `linstor-nodes` key (a site whose scripts no
    /// longer act as sensors). The site's own state (members, plan, workflow keys) and the
    /// takeover acknowledgements stay.
    pub scripts_silent: bool,
}

impl AgentFacts {
    /// No agent has published yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every running node's agent reads its host at `now`.
    pub fn read(&mut self, world: &SharedWorld, cluster: &MemCluster, now: i64) -> Result<(), Error> {
        if self.silent {
            return Ok(());
        }
        let running: Vec<String> = cluster
            .script_pods()
            .iter()
            .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_owned))
            .collect();
        let at = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(now).map_err(harness)?,
        );
        for node in running {
            if !world.lock().nodes.contains_key(&node) {
                continue;
            }
            let family = agent_os(world, &node)?;
            let mut host = ReadingHost {
                world: world.clone(),
                node: node.clone(),
            };
            let spec = nodewright_agent_shim::facts::read_host(
                &mut host,
                &node,
                at.clone(),
                nodewright_agent_shim::os::for_family(family),
                nodewright_agent_shim::storage::for_backend(
                    nodewright_agent_shim::storage::BackendKind::default(),
                ),
            );
            let mut facts = NodeFacts::new(&node, spec);
            facts.metadata.namespace = Some(NAMESPACE.into());
            self.published.insert(node, facts);
        }
        Ok(())
    }

    /// Takes the scripts' reports of the hosts out of `index` when they are silenced.
    pub fn silence_scripts(&self, index: &mut Index) {
        if !self.scripts_silent {
            return;
        }
        for entry in index.nodes.values_mut() {
            if let Some(cm) = entry.config_map.as_mut() {
                cm.status.value = None;
                cm.drbd_status.value = None;
            }
        }
        if let Some(cluster) = index.cluster.as_mut() {
            cluster.linstor_nodes.value = None;
        }
    }

    /// What the agents published, in node order.
    pub fn all(&self) -> Vec<NodeFacts> {
        self.published.values().cloned().collect()
    }
}

/// One node's host as its agent's facts read sees it: the simulated host's commands and files,
/// nothing recorded (a read changes nothing).
struct ReadingHost {
    world: SharedWorld,
    node: String,
}

impl HostOps for ReadingHost {
    fn run(&mut self, argv: &[String]) -> HostOutput {
        let reply = Host::exec(&mut self.world, &self.node, argv);
        HostOutput {
            code: reply.code,
            stdout: reply.stdout,
            stderr: reply.stderr,
        }
    }
}

/// One `EdgeNode` per Node of the cluster, as the bridge creates them: the site's, with no
/// `spec.host` (a person's or the bootstrap workflow's to set).
pub fn edge_nodes(cluster: &MemCluster) -> Vec<EdgeNode> {
    cluster
        .nodes()
        .map(|n| {
            let mut e = EdgeNode::new(
                &n.name,
                EdgeNodeSpec {
                    node_name: n.name.clone(),
                    cluster_ref: Some(nodewright_api::common::ClusterRef { name: "site".into() }),
                    host: None,
                },
            );
            e.metadata.namespace = Some(NAMESPACE.into());
            e
        })
        .collect()
}

/// What one write did.
#[derive(Default)]
struct Applied {
    /// The worst exit code of the commands it took (0: it landed).
    code: i32,
    /// What the report says of it.
    lines: Vec<String>,
    /// Whether an agent ran a task for it.
    ran_task: bool,
    /// Whether it changed one of Nodewright's objects other than a status (the gate, a
    /// StorageUpgrade created).
    changed: bool,
}

/// A status write of one of the operator's objects, as the API server takes it: refused (exit 1,
/// a report line) unless the object is still at `resource_version`, else the status replaced and
/// the version bumped. An object that does not exist is a harness error.
fn replace_status<K, S: Clone>(
    objects: &mut [K],
    parts: impl Fn(&mut K) -> (&mut ObjectMeta, &mut Option<S>),
    kind: &str,
    (name, resource_version, status): (&str, &str, &S),
    applied: &mut Applied,
) -> Result<(), Error> {
    let Some((meta, slot)) = objects
        .iter_mut()
        .map(parts)
        .find(|(meta, _)| meta.name.as_deref() == Some(name))
    else {
        return Err(harness(format!(
            "a status for {kind} {name}, which does not exist"
        )));
    };
    // Guard: resourceVersion (a status decided from an older object is refused).
    if meta.resource_version.as_deref() != Some(resource_version) {
        applied.code = 1;
        applied.lines.push(format!(
            "operator: {kind} {name} status refused: resourceVersion {resource_version} is not {}",
            meta.resource_version.as_deref().unwrap_or("none")
        ));
    } else {
        *slot = Some(status.clone());
        bump(&mut meta.resource_version);
    }
    Ok(())
}

impl Nodewright<'_> {
    /// A `kubectl` command of the operator's, made for `workflow` and recorded.
    fn kubectl(&mut self, workflow: Workflow, args: &[String]) -> i32 {
        let argv: Vec<String> = std::iter::once("kubectl".to_owned())
            .chain(args.iter().cloned())
            .collect();
        let code = Cluster::kubectl(&mut *self.cluster.0.borrow_mut(), &argv, "/", self.now).code;
        self.steps.push(Step {
            tick: self.tick,
            actor: Actor::Nodewright,
            action: invariants::Action::Command { argv, code },
            workflow: Some(workflow),
            facts: observe(self.world, self.cluster),
        });
        code
    }

    /// A Node patch carried to the in-memory cluster as the `kubectl label` and `kubectl taint`
    /// commands that make the same change (the in-memory cluster patches ConfigMaps only).
    /// Returns the worst exit code.
    fn patch_node(&mut self, workflow: Workflow, node_before: Option<&NodeMeta>, write: &Write) -> i32 {
        let Write::PatchNode {
            name,
            labels,
            annotations,
            taints,
            unschedulable,
            ..
        } = write
        else {
            return 1;
        };
        let mut code = 0;
        for (k, v) in labels {
            code = code.max(self.kubectl(
                workflow,
                &["label", "node", name, "--overwrite", &format!("{k}={v}")].map(String::from),
            ));
        }
        for (k, v) in annotations {
            code = code.max(self.kubectl(
                workflow,
                &["annotate", "node", name, "--overwrite", &format!("{k}={v}")].map(String::from),
            ));
        }
        match unschedulable {
            Some(true) => code = code.max(self.kubectl(workflow, &["cordon".to_owned(), name.clone()])),
            Some(false) => code = code.max(self.kubectl(workflow, &["uncordon".to_owned(), name.clone()])),
            None => {}
        }
        if let Some(want) = taints {
            let had = node_before.map(|n| n.taints.clone()).unwrap_or_default();
            for t in had
                .iter()
                .filter(|t| !want.iter().any(|w| w.key == t.key && w.effect == t.effect))
            {
                code = code.max(self.kubectl(
                    workflow,
                    &["taint", "node", name, &format!("{}:{}-", t.key, t.effect)].map(String::from),
                ));
            }
            for t in want.iter().filter(|w| !had.contains(w)) {
                let value = t.value.as_deref().unwrap_or_default();
                code = code.max(
                    self.kubectl(
                        workflow,
                        &[
                            "taint",
                            "node",
                            name,
                            "--overwrite",
                            &format!("{}={value}:{}", t.key, t.effect),
                        ]
                        .map(String::from),
                    ),
                );
            }
        }
        code
    }

    /// The operator's merge patch of the cluster-state ConfigMap's `data`, with its
    /// `resourceVersion` precondition when the decision read one (the in-memory cluster refuses a
    /// patch from another version as the API server does, 409).
    fn patch_cluster_state(
        &mut self,
        workflow: Workflow,
        resource_version: Option<&str>,
        data: &BTreeMap<String, String>,
    ) -> i32 {
        let mut patch = serde_json::json!({ "data": data });
        if let Some(rv) = resource_version {
            patch["metadata"] = serde_json::json!({ "resourceVersion": rv });
        }
        let patch = patch.to_string();
        self.kubectl(
            workflow,
            &[
                "-n",
                "kube-system",
                "patch",
                "configmap",
                "vx-rail-cluster-state",
                "--type",
                "merge",
                "-p",
                &patch,
            ]
            .map(String::from),
        )
    }

    /// One write of `workflow`'s plan, carried out where the real writer would send it, under
    /// its guard. A refused write has a non-zero code: the rest of its sequence is not sent.
    fn apply(
        &mut self,
        workflow: Workflow,
        nodes: &BTreeMap<String, NodeMeta>,
        objects: &mut Objects,
        write: &Write,
    ) -> Result<Applied, Error> {
        let mut applied = Applied::default();
        match write {
            Write::CreateTask(task) => {
                let key = task.metadata.name.clone().unwrap_or_default();
                // Guard: the name. A repeat is refused as already existing, and counts as done.
                if objects.tasks.contains_key(&key) {
                    return Ok(applied);
                }
                let spec = &task.spec;
                let outcome = self.run_task(task)?;
                applied.lines.push(format!(
                    "agent {}: task {} `{} {}` -> {} ({})",
                    spec.node_name,
                    spec.idempotency_key,
                    spec.step,
                    spec.args.join(" "),
                    outcome.code,
                    outcome.message
                ));
                let mut done = (**task).clone();
                done.status = Some(NodeTaskStatus {
                    phase: Some(if outcome.succeeded() {
                        NodeTaskPhase::Succeeded
                    } else {
                        NodeTaskPhase::Failed
                    }),
                    output: Some(outcome.output),
                    message: Some(outcome.message),
                    ..NodeTaskStatus::default()
                });
                objects.tasks.insert(key, done);
                applied.ran_task = true;
            }
            Write::PatchNode {
                name, labels, what, ..
            } => {
                applied.code = self.patch_node(workflow, nodes.get(name), write);
                let code = applied.code;
                if workflow == Workflow::Migration {
                    for (k, v) in labels {
                        applied
                            .lines
                            .push(format!("operator: label {name} {k}={v} -> {code}"));
                    }
                } else {
                    for action in what {
                        applied.lines.push(format!("operator {name}: {action} -> {code}"));
                    }
                }
            }
            Write::PatchClusterState {
                data,
                resource_version,
            } => {
                applied.code = self.patch_cluster_state(workflow, resource_version.as_deref(), data);
                if let Some(cluster) = data.get(cluster_key::CLUSTER) {
                    applied.lines.push(format!(
                        "operator: cluster-state cluster={cluster} -> {}",
                        applied.code
                    ));
                }
                if workflow == Workflow::Bootstrap {
                    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
                    applied.lines.push(format!(
                        "operator: cluster-state {} at resourceVersion {} -> {}",
                        keys.join(", "),
                        resource_version.as_deref().unwrap_or("none"),
                        applied.code
                    ));
                }
            }
            Write::CreateLegacyConfigMap { name, data, what } => {
                let name = match name {
                    LegacyConfigMap::ClusterState => "vx-rail-cluster-state".to_owned(),
                    LegacyConfigMap::Node(n) => format!("vx-rail-node-{n}"),
                };
                let mut args: Vec<String> = ["-n", "kube-system", "create", "configmap", &name]
                    .map(String::from)
                    .into();
                args.extend(data.iter().map(|(k, v)| format!("--from-literal={k}={v}")));
                let exists = nw_config_map_exists(self.cluster, &name);
                applied.code = self.kubectl(workflow, &args);
                // A node's ConfigMap that exists is done; the cluster state that exists was made
                // by someone else since the decision read it absent: decide again.
                if applied.code != 0 && exists && name.starts_with("vx-rail-node-") {
                    applied.code = 0;
                }
                applied
                    .lines
                    .push(format!("operator: {what} -> {}", applied.code));
            }
            Write::ApplyHostConfig { edge_node, .. } => {
                // Never forced: a spec.host already set is someone else's and stays.
                match objects
                    .edge_nodes
                    .iter_mut()
                    .find(|n| n.metadata.name.as_deref() == Some(edge_node.as_str()))
                {
                    Some(n) if n.spec.host.is_none() => {
                        if let Write::ApplyHostConfig { host, .. } = write {
                            n.spec.host = Some((**host).clone());
                        }
                        applied.lines.push(format!(
                            "operator: EdgeNode {edge_node} spec.host adopted from its node.conf"
                        ));
                        applied.changed = true;
                    }
                    Some(_) => {
                        applied.code = 1;
                        applied.lines.push(format!(
                            "operator: EdgeNode {edge_node} spec.host is owned by another field manager; not adopted"
                        ));
                    }
                    None => {
                        applied.code = 1;
                        applied.lines.push(format!(
                            "operator: EdgeNode {edge_node} does not exist; not adopted"
                        ));
                    }
                }
            }
            Write::MigrationStatus {
                name,
                resource_version,
                status,
            } => replace_status(
                &mut objects.migrations,
                |o| (&mut o.metadata, &mut o.status),
                "Migration",
                (name, resource_version, &**status),
                &mut applied,
            )?,
            Write::StorageUpgradeStatus {
                name,
                resource_version,
                status,
            } => replace_status(
                &mut objects.upgrades,
                |o| (&mut o.metadata, &mut o.status),
                "StorageUpgrade",
                (name, resource_version, &**status),
                &mut applied,
            )?,
            Write::BondFlipStatus {
                name,
                resource_version,
                status,
            } => replace_status(
                &mut objects.bond_flips,
                |o| (&mut o.metadata, &mut o.status),
                "BondFlip",
                (name, resource_version, &**status),
                &mut applied,
            )?,
            Write::CreateBondFlip(flip) => {
                let name = flip.metadata.name.clone().unwrap_or_default();
                // Guard: the name; AlreadyExists counts as done.
                if objects
                    .bond_flips
                    .iter()
                    .any(|f| f.metadata.name.as_deref() == Some(name.as_str()))
                {
                    return Ok(applied);
                }
                applied.lines.push(format!(
                    "operator: creates BondFlip {name}: {} {} -> {}",
                    flip.spec.bond,
                    flip.spec.from.to_arg(),
                    flip.spec.target_state().to_arg()
                ));
                objects.create_bond_flip((**flip).clone());
                applied.changed = true;
            }
            Write::CreateStorageUpgrade(upgrade) => {
                let name = upgrade.metadata.name.clone().unwrap_or_default();
                // Guard: the name; AlreadyExists counts as done.
                if objects
                    .upgrades
                    .iter()
                    .any(|u| u.metadata.name.as_deref() == Some(name.as_str()))
                {
                    return Ok(applied);
                }
                let order = if upgrade.spec.node_order.is_empty() {
                    String::new()
                } else {
                    format!(" (order {})", upgrade.spec.node_order.join(","))
                };
                applied.lines.push(format!(
                    "operator: creates StorageUpgrade {name}: {} -> {}{order}",
                    upgrade.spec.from_version, upgrade.spec.to_version,
                ));
                objects.create_upgrade((**upgrade).clone());
                applied.changed = true;
            }
            Write::AcquireGate { holder } => match &objects.gate {
                // Guard: the create of the Lease; AlreadyExists means not acquired.
                Some(held) if held.holder != *holder => {
                    applied.code = 1;
                    applied.lines.push(format!(
                        "operator: storage gate held by {}, not acquired for {holder}",
                        held.holder
                    ));
                }
                Some(_) => {
                    applied.code = 1;
                    applied.lines.push(format!(
                        "operator: storage gate already exists (held by {holder}); not acquired again"
                    ));
                }
                None => {
                    objects.gate_leases += 1;
                    objects.gate = Some(Gate {
                        holder: holder.clone(),
                        resource_version: format!("lease-{}", objects.gate_leases),
                    });
                    applied
                        .lines
                        .push(format!("operator: storage gate acquired by {holder}"));
                    applied.changed = true;
                }
            },
            Write::ReleaseGate {
                holder,
                resource_version,
            } => match &objects.gate {
                // Guard: a delete with a resourceVersion precondition; NotFound counts as released.
                None => {}
                Some(held) if held.resource_version != *resource_version => {
                    applied.code = 1;
                    applied.lines.push(format!(
                        "operator: storage gate release by {holder} refused: held by {} at {}, not {resource_version}",
                        held.holder, held.resource_version
                    ));
                }
                Some(_) => {
                    objects.gate = None;
                    applied
                        .lines
                        .push(format!("operator: storage gate released by {holder}"));
                    applied.changed = true;
                }
            },
            Write::Evict {
                namespace,
                name,
                node,
            } => {
                // The Eviction API deletes the pod unless a disruption budget forbids it; the
                // in-memory cluster has no budgets, and the pod's devices close once it is gone,
                // as the kubelet's stopping its containers closes them.
                applied.code = self.kubectl(
                    workflow,
                    &["delete", "pod", "-n", namespace, name].map(String::from),
                );
                nodewright_legacy_sim::run::release_closed_devices(
                    &mut self.world.clone(),
                    &mut self.cluster.clone(),
                );
                applied.lines.push(format!(
                    "operator: evict {namespace}/{name} from {node} -> {}",
                    applied.code
                ));
            }
        }
        Ok(applied)
    }

    /// A node agent runs one task at once on the simulated host; each host command it runs is a
    /// step of the agent's, for the workflow the task belongs to.
    fn run_task(&mut self, task: &NodeTask) -> Result<StepOutcome, Error> {
        let spec = &task.spec;
        let workflow = match spec.workflow_ref.as_ref().map(|w| w.kind) {
            Some(WorkflowKind::StorageUpgrade) => Workflow::StorageUpgrade,
            Some(WorkflowKind::Migration) => Workflow::Migration,
            other => {
                return Err(harness(format!(
                    "task {}: a task of {other:?}, which no controller of this harness makes",
                    spec.idempotency_key
                )));
            }
        };
        let os = agent_os(self.world, &spec.node_name)?;
        let mut host = RecordingHost {
            world: self.world.clone(),
            node: spec.node_name.clone(),
            ran: Vec::new(),
        };
        let state_dir = self.agents.join(&spec.node_name);
        std::fs::create_dir_all(&state_dir).map_err(|e| harness(format!("{}: {e}", state_dir.display())))?;
        let outcome = match nodewright_agent_shim::plan_on(os, &spec.step, &spec.args) {
            Ok(plan) => plan.execute_in(&mut host, None, Some(&state_dir)),
            Err(e) => StepOutcome {
                code: 2,
                output: String::new(),
                message: e.to_string(),
                unknown: false,
            },
        };
        // The agent changes only the hosts: the cluster is as it was before the task.
        let mut cluster_facts = Facts::default();
        Cluster::observe(self.cluster, &mut cluster_facts);
        for (argv, code, host_facts) in host.ran {
            let facts = Facts {
                disks: host_facts.disks,
                ..cluster_facts.clone()
            };
            self.steps.push(Step {
                tick: self.tick,
                actor: Actor::Agent(spec.node_name.clone()),
                action: invariants::Action::Command { argv, code },
                workflow: Some(workflow),
                facts: Arc::new(facts),
            });
        }
        Ok(outcome)
    }
}

/// One node's host as its agent's `HostOps` sees it, recording every command with the hosts'
/// storage after it.
struct RecordingHost {
    world: SharedWorld,
    node: String,
    ran: Vec<(Vec<String>, i32, Facts)>,
}

impl HostOps for RecordingHost {
    fn run(&mut self, argv: &[String]) -> HostOutput {
        let reply = Host::exec(&mut self.world, &self.node, argv);
        let mut facts = Facts::default();
        Host::observe(&self.world, &mut facts);
        self.ran.push((argv.to_vec(), reply.code, facts));
        HostOutput {
            code: reply.code,
            stdout: reply.stdout,
            stderr: reply.stderr,
        }
    }
}

fn nw_config_map_exists(cluster: &SharedCluster, name: &str) -> bool {
    cluster.0.borrow().config_map("kube-system", name).is_some()
}

/// The site's EdgeCluster for a run whose bootstrap Nodewright shadows or owns: the topology the
/// scenario's node.conf files give (`SITE_TOPOLOGY` of the node that runs the LINSTOR controller)
/// and that node as `spec.primaryNode` (the node the scenario builds to run the controller).
pub fn bootstrap_cluster(scenario: &nodewright_legacy_sim::run::Scenario) -> Result<EdgeCluster, Error> {
    let primary = scenario
        .nodes
        .iter()
        .find(|n| n.host.controller)
        .ok_or_else(|| harness("bootstrap: the scenario has no node that runs the LINSTOR controller"))?;
    let topology = match primary.config.get("SITE_TOPOLOGY").map(String::as_str) {
        Some("multi") => "MultiNode",
        _ => "SingleNode",
    };
    let spec: EdgeClusterSpec = serde_json::from_value(serde_json::json!({
        "profile": {"topology": topology},
        "primaryNode": primary.name,
    }))
    .map_err(harness)?;
    let mut cluster = EdgeCluster::new("site", spec);
    cluster.metadata.namespace = Some(NAMESPACE.into());
    cluster.metadata.generation = Some(1);
    Ok(cluster)
}

/// A node's `node.conf` (the scenario's `config`) as the `HostConfig` a person would set as its
/// EdgeNode's `spec.host`.
pub fn host_config_of(node: &str, conf: &BTreeMap<String, String>) -> Result<HostConfig, Error> {
    let get = |k: &str| {
        conf.get(k)
            .map(String::as_str)
            .ok_or_else(|| harness(format!("{node}: node.conf has no {k}")))
    };
    let number = |k: &str| -> Result<i64, Error> {
        get(k)?
            .parse()
            .map_err(|_| harness(format!("{node}: node.conf {k} is not a number")))
    };
    let mgmt = match conf.get("MGMT_VLAN_ID").filter(|v| !v.is_empty()) {
        Some(id) => serde_json::json!({
            "id": id.parse::<i64>().map_err(|_| harness(format!("{node}: node.conf MGMT_VLAN_ID is not a number")))?,
            "address": conf.get("MGMT_IP"),
        }),
        None => serde_json::Value::Null,
    };
    let mut value = serde_json::json!({
        "bond": {
            "name": get("BOND_NAME")?,
            "mode": get("BOND_MODE")?,
            "miimon": number("BOND_MIIMON")?,
            "slaves": get("BOND_SLAVES")?.split_whitespace().collect::<Vec<_>>(),
        },
        "storageVlan": {"id": number("STORAGE_VLAN_ID")?, "address": get("STORAGE_IP")?},
        "storage": {"pool": get("STORAGE_POOL")?, "volumeGroup": get("STORAGE_VG")?},
    });
    if !mgmt.is_null() {
        value["mgmtVlan"] = mgmt;
    }
    serde_json::from_value(value).map_err(|e| harness(format!("{node}: node.conf: {e}")))
}

/// The site's EdgeNodes, each with its node.conf as `spec.host` (set by a person, in these runs).
pub fn edge_nodes_of(scenario: &nodewright_legacy_sim::run::Scenario) -> Result<Vec<EdgeNode>, Error> {
    scenario
        .nodes
        .iter()
        .map(|n| {
            let mut e = EdgeNode::new(
                &n.name,
                nodewright_api::EdgeNodeSpec {
                    node_name: n.name.clone(),
                    cluster_ref: None,
                    host: Some(host_config_of(&n.name, &n.config)?),
                },
            );
            e.metadata.namespace = Some(NAMESPACE.into());
            Ok(e)
        })
        .collect()
}

/// The snapshot parts a bootstrap decision reads from the in-memory cluster: the Nodes and the
/// cluster-state ConfigMap's `resourceVersion`.
fn bootstrap_view(cluster: &MemCluster) -> Result<(BTreeMap<String, NodeMeta>, Option<String>), Error> {
    Ok((
        node_metas(cluster)?,
        cluster
            .config_map("kube-system", "vx-rail-cluster-state")
            .map(|c| c.resource_version.to_string()),
    ))
}

/// What the operator would do about bootstrap, compared with what the scripts did
/// (`shadow::bootstrap`), from the index and the in-memory cluster.
pub fn bootstrap_divergences(
    index: &Index,
    mem: &MemCluster,
    objects: &Objects,
    cluster: &EdgeCluster,
    settings: &Settings,
    now: i64,
) -> Result<Vec<nodewright_parity::Divergence>, Error> {
    let (nodes, version) = bootstrap_view(mem)?;
    let snapshot = Snapshot {
        now,
        cluster,
        index,
        nodes: &nodes,
        cluster_state_version: version.as_deref(),
        migrations: &[],
        tasks: &[],
        upgrades: &[],
        pods: &[],
        gate: None,
        facts: &[],
        edge_nodes: &objects.edge_nodes,
        bond_flips: &objects.bond_flips,
        settings,
    };
    Ok(nodewright_parity::shadow::bootstrap(&snapshot))
}

/// One operator turn of bootstrap: the nodes' ConfigMaps (ahead of the fence, as the operator's
/// turn makes them), and, when the fence lets it act (`acts`), the controller's plan, written and
/// planned again from what it wrote until it asks for nothing. One line per action, and one when
/// the `Bootstrapped` condition changes.
#[allow(clippy::too_many_arguments)]
pub fn bootstrap_turn(
    objects: &mut Objects,
    index: &mut Index,
    nw: &mut Nodewright<'_>,
    settings: &Settings,
    cluster: &EdgeCluster,
    acts: bool,
    lines: &mut Vec<String>,
) -> Result<(), Error> {
    use nodewright_parity::controllers::bootstrap::{self as boot, Bootstrap};
    for _ in 0..8 {
        refresh(index, &nw.cluster.0.borrow(), nw.now)?;
        let (nodes, version) = bootstrap_view(&nw.cluster.0.borrow())?;
        let edge_nodes = objects.edge_nodes.clone();
        let fence = crate::world::fence(&nw.cluster.0.borrow(), index, nw.now).map_err(harness)?;
        let scripts: Vec<String> = fence
            .scripts
            .iter()
            .filter(|s| {
                matches!(
                    s.pod,
                    nodewright_parity::takeover::ScriptPod::Running { .. }
                        | nodewright_parity::takeover::ScriptPod::NotRunning { .. }
                )
            })
            .map(|s| s.node.clone())
            .collect();
        let snapshot = Snapshot {
            now: nw.now,
            cluster,
            index,
            nodes: &nodes,
            cluster_state_version: version.as_deref(),
            migrations: &[],
            tasks: &[],
            upgrades: &[],
            pods: &[],
            gate: None,
            facts: &[],
            edge_nodes: &edge_nodes,
            bond_flips: &[],
            settings,
        };
        let mut sequences = boot::admit(&snapshot, &scripts);
        if acts {
            sequences.extend(Bootstrap.plan(&snapshot));
        }
        let condition = acts.then(|| boot::condition(&snapshot));
        if sequences.is_empty() {
            if let Some(c) = condition {
                let said = format!("Bootstrapped={} ({}): {}", c.status, c.reason, c.message);
                if objects.last_wait.get(&Workflow::Bootstrap) != Some(&said) {
                    lines.push(format!("bootstrap: {said}"));
                    objects.last_wait.insert(Workflow::Bootstrap, said);
                }
            }
            return Ok(());
        }
        for sequence in &sequences {
            for write in &sequence.writes {
                let applied = nw.apply(Workflow::Bootstrap, &nodes, objects, write)?;
                lines.extend(applied.lines);
                if applied.code != 0 {
                    lines.push("bootstrap: an action failed; deciding again next turn".to_owned());
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// The OS family a node's agent runs with: `--host-os auto`, read from the simulated host's
/// os-release.
pub fn agent_os(w: &SharedWorld, node: &str) -> Result<nodewright_api::OsFamily, Error> {
    let world = w.lock();
    let host = world
        .nodes
        .get(node)
        .ok_or_else(|| harness(format!("a task for {node}, which has no simulated host")))?;
    let (id, like) = nodewright_api::hostos::os_release_ids(host.os.os_release());
    nodewright_api::OsFamily::from_os_release(&id.unwrap_or_default(), &like.unwrap_or_default())
        .map_err(|e| harness(format!("{node}: {e}")))
}

/// The site's `EdgeCluster`, as the operator reads it in these runs.
pub fn edge_cluster() -> Result<EdgeCluster, Error> {
    let spec: EdgeClusterSpec =
        serde_json::from_value(serde_json::json!({"profile": {"topology": "MultiNode"}})).map_err(harness)?;
    let mut cluster = EdgeCluster::new("site", spec);
    cluster.metadata.namespace = Some(NAMESPACE.into());
    Ok(cluster)
}

/// Every Node of the in-memory cluster as the operator's watch delivers it.
pub fn node_metas(cluster: &MemCluster) -> Result<BTreeMap<String, NodeMeta>, Error> {
    cluster
        .nodes()
        .map(|n| {
            let node: Node = serde_json::from_value(n.to_json()).map_err(harness)?;
            Ok((
                n.name.clone(),
                NodeMeta {
                    resource_version: node.metadata.resource_version.unwrap_or_default(),
                    taints: node.spec.and_then(|s| s.taints).unwrap_or_default(),
                    labels: node.metadata.labels.unwrap_or_default(),
                },
            ))
        })
        .collect()
}

/// How a workflow's progress reads in the report: what its object entered, whether it is over,
/// and what it waits for.
trait Progress {
    /// The report's lines for what the object entered between `before` and `after` (none: it
    /// entered nothing). `legacy_key` is the exit code of the turn's write of the legacy key.
    fn entered(&self, before: &Objects, after: &Objects, legacy_key: i32) -> Vec<String>;
    /// Whether every object of the workflow is over.
    fn over(&self, objects: &Objects) -> bool;
    /// What the workflow waits for, as its status says it.
    fn waiting(&self, objects: &Objects) -> Option<String>;
}

/// The migration's progress: its phases, as the legacy key names them.
struct MigrationProgress;

impl Progress for MigrationProgress {
    fn entered(&self, before: &Objects, after: &Objects, legacy_key: i32) -> Vec<String> {
        let history = |o: &Objects| {
            o.migrations
                .first()
                .and_then(|m| m.status.as_ref())
                .map(|s| s.history.clone())
                .unwrap_or_default()
        };
        let (was, now) = (history(before), history(after));
        if now.len() <= was.len() {
            return Vec::new();
        }
        now.last()
            .map(|entered| {
                format!(
                    "migration enters {}{} (legacy key -> {legacy_key})",
                    migration::legacy_phase(entered.phase),
                    entered
                        .message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )
            })
            .into_iter()
            .collect()
    }

    fn over(&self, objects: &Objects) -> bool {
        objects
            .migrations
            .iter()
            .all(|m| m.status.as_ref().is_some_and(migration::is_over))
    }

    fn waiting(&self, objects: &Objects) -> Option<String> {
        objects
            .migrations
            .first()
            .and_then(|m| m.status.as_ref())
            .and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == "Progressing" && c.reason == "Waiting")
            })
            .map(|c| c.message.clone())
    }
}

/// The storage upgrade's progress: its site-level state and the node it is at.
struct UpgradeProgress;

/// Where an upgrade is: its state, the node, and why it is there.
fn upgrade_at(u: &StorageUpgrade) -> Option<(UpgradeState, Option<String>, Option<String>)> {
    let s = u.status.as_ref()?;
    Some((s.state?, s.current_node.clone(), s.message.clone()))
}

impl Progress for UpgradeProgress {
    fn entered(&self, before: &Objects, after: &Objects, legacy_key: i32) -> Vec<String> {
        let mut out = Vec::new();
        for u in &after.upgrades {
            let name = u.metadata.name.as_deref().unwrap_or_default();
            let was = before
                .upgrades
                .iter()
                .find(|b| b.metadata.name == u.metadata.name)
                .and_then(upgrade_at);
            let now = upgrade_at(u);
            let moved = |a: &Option<(UpgradeState, Option<String>, Option<String>)>| {
                a.as_ref().map(|(s, n, _)| (*s, n.clone()))
            };
            if moved(&was) == moved(&now) {
                continue;
            }
            let Some((state, node, message)) = now else {
                continue;
            };
            out.push(format!(
                "storage-upgrade {name} enters {}{}{} (legacy key -> {legacy_key})",
                nodewright_parity::upgrade::legacy::state_text(state),
                node.map(|n| format!(" on {n}")).unwrap_or_default(),
                message.map(|m| format!(": {m}")).unwrap_or_default()
            ));
        }
        out
    }

    /// Never: the controller also translates a new request of the legacy key into a
    /// StorageUpgrade, and releases the gate and mirrors the end after the last state; a turn
    /// ends when its plan changes nothing.
    fn over(&self, _: &Objects) -> bool {
        false
    }

    fn waiting(&self, objects: &Objects) -> Option<String> {
        objects
            .upgrades
            .iter()
            .filter_map(|u| u.status.as_ref())
            .flat_map(|s| s.conditions.iter())
            .find(|c| c.type_ == "Progressing" && c.reason == "Waiting")
            .map(|c| c.message.clone())
    }
}

/// The snapshot of one turn, built from what the harness holds.
struct Held {
    cluster: EdgeCluster,
    nodes: BTreeMap<String, NodeMeta>,
    tasks: Vec<NodeTask>,
    pods: Vec<PodMeta>,
    facts: Vec<NodeFacts>,
    edge_nodes: Vec<EdgeNode>,
}

/// Every pod bound to a node, as the operator's gather lists them for a drain: the scenario's
/// workload pods, and the legacy DaemonSet's pods (which a drain leaves alone).
fn pod_metas(cluster: &MemCluster) -> Vec<PodMeta> {
    let mut pods: Vec<PodMeta> = cluster
        .pods()
        .map(|(namespace, name, node)| PodMeta {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            node: node.to_owned(),
            daemon_set: false,
            mirror: false,
            finished: false,
        })
        .collect();
    for p in cluster.script_pods() {
        pods.push(PodMeta {
            namespace: p["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(),
            name: p["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
            node: p["spec"]["nodeName"].as_str().unwrap_or_default().to_owned(),
            daemon_set: true,
            mirror: false,
            finished: false,
        });
    }
    pods
}

impl Held {
    /// What the operator's reflectors hold now; the agents read their hosts first.
    fn gather(nw: &mut Nodewright<'_>, objects: &Objects) -> Result<Held, Error> {
        let cluster = nw.cluster.0.borrow();
        nw.hosts.read(nw.world, &cluster, nw.now)?;
        Ok(Held {
            cluster: edge_cluster()?,
            nodes: node_metas(&cluster)?,
            tasks: objects.task_list(),
            pods: pod_metas(&cluster),
            facts: nw.hosts.all(),
            edge_nodes: edge_nodes(&cluster),
        })
    }
}

/// Everything the in-memory cluster holds that a decision may read (every Node whole, with its
/// cordon and annotations, and every workload pod), to tell whether a write changed it.
fn fingerprint(cluster: &MemCluster) -> String {
    let nodes: Vec<serde_json::Value> = cluster.nodes().map(|n| n.to_json()).collect();
    let pods: Vec<(&str, &str, &str)> = cluster.pods().collect();
    format!("{}{pods:?}", serde_json::Value::Array(nodes))
}

/// The most decisions one operator turn makes before it leaves the rest to the next turn.
const MAX_DECISIONS_PER_TURN: usize = 256;

/// One operator turn for `workflow` through `controller`'s plan: plan, write, and plan again from
/// what the writes changed, until the workflow waits or is over. Every write is carried out as
/// [`Nodewright::apply`] says; the report gets one line per action, one per state entered, and
/// the reason it waits when that changed.
pub fn turn(
    workflow: Workflow,
    controller: &dyn WorkflowController,
    objects: &mut Objects,
    index: &mut Index,
    nw: &mut Nodewright<'_>,
    settings: &Settings,
    lines: &mut Vec<String>,
) -> Result<(), Error> {
    let progress: &dyn Progress = match workflow {
        Workflow::Migration => &MigrationProgress,
        Workflow::StorageUpgrade => &UpgradeProgress,
        _ => {
            return Err(harness(format!(
                "{workflow}: the harness does not drive it through turns"
            )));
        }
    };
    let now = nw.now;
    // A bound against a controller that never settles: an upgrade of three nodes takes about a
    // hundred decisions when every step succeeds at once.
    for _ in 0..MAX_DECISIONS_PER_TURN {
        if progress.over(objects) {
            return Ok(());
        }
        refresh(index, &nw.cluster.0.borrow(), now)?;
        nw.hosts.silence_scripts(index);
        let held = Held::gather(nw, objects)?;
        let snapshot = Snapshot {
            now,
            cluster: &held.cluster,
            index,
            nodes: &held.nodes,
            cluster_state_version: None,
            migrations: &objects.migrations,
            tasks: &held.tasks,
            upgrades: &objects.upgrades,
            pods: &held.pods,
            gate: objects.gate.as_ref(),
            facts: &held.facts,
            edge_nodes: &held.edge_nodes,
            bond_flips: &objects.bond_flips,
            settings,
        };
        let sequences = controller.plan(&snapshot);
        let before = objects.clone();
        let cluster_before = fingerprint(&nw.cluster.0.borrow());
        let facts_before = observe(nw.world, nw.cluster);
        let mut failed = false;
        let mut changed = false;
        let mut ran_tasks = false;
        let mut legacy_key = 0;
        for sequence in &sequences {
            for write in &sequence.writes {
                let applied = nw.apply(workflow, &held.nodes, objects, write)?;
                lines.extend(applied.lines);
                ran_tasks |= applied.ran_task;
                changed |= applied.changed;
                if matches!(write, Write::PatchClusterState { .. }) {
                    legacy_key = applied.code;
                }
                if applied.code != 0 {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            lines.push(format!("{workflow}: an action failed; deciding again next turn"));
            return Ok(());
        }
        let entered = progress.entered(&before, objects, legacy_key);
        if !entered.is_empty() {
            lines.extend(entered);
            objects.last_wait.remove(&workflow);
            continue;
        }
        // The agents have just run the tasks the decision waited for, or the writes changed what
        // the next decision reads (the gate, a new object, a cordon or an eviction): decide again
        // at once. A status rewritten with nothing else changed is a decision that waits.
        if ran_tasks
            || changed
            || *observe(nw.world, nw.cluster) != *facts_before
            || fingerprint(&nw.cluster.0.borrow()) != cluster_before
        {
            continue;
        }
        if let Some(reason) = progress.waiting(objects)
            && objects.last_wait.get(&workflow) != Some(&reason)
        {
            lines.push(format!("{workflow} waits: {reason}"));
            objects.last_wait.insert(workflow, reason);
        }
        return Ok(());
    }
    Ok(())
}

/// One turn of the taints controller: its plan once, each Node patch carried to the in-memory
/// cluster; one line per action it makes.
pub fn taints_turn(
    index: &Index,
    nw: &mut Nodewright<'_>,
    settings: &Settings,
    lines: &mut Vec<String>,
) -> Result<(), Error> {
    let mut objects = Objects::default();
    let held = Held::gather(nw, &objects)?;
    let snapshot = Snapshot {
        now: nw.now,
        cluster: &held.cluster,
        index,
        nodes: &held.nodes,
        cluster_state_version: None,
        migrations: &[],
        tasks: &[],
        upgrades: &[],
        pods: &[],
        gate: None,
        facts: &held.facts,
        edge_nodes: &held.edge_nodes,
        bond_flips: &[],
        settings,
    };
    for sequence in nodewright_parity::controllers::taints::Taints.plan(&snapshot) {
        for write in &sequence.writes {
            if !matches!(write, Write::PatchNode { .. }) {
                return Err(harness(
                    "the taints controller planned a write other than a Node patch",
                ));
            }
            let applied = nw.apply(Workflow::Taints, &held.nodes, &mut objects, write)?;
            lines.extend(applied.lines);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The harness's stand-ins for the API server's guards: what a write does, and what refuses it.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use nodewright_api::common::ClusterRef;
    use nodewright_api::storageupgrade::{StorageUpgradeSpec, StorageUpgradeStatus};
    use nodewright_legacy_sim::host::{DEFAULT_EPOCH, NodeSpec, World};

    struct Fixture {
        world: SharedWorld,
        cluster: SharedCluster,
        steps: Vec<Step>,
        agents: tempfile::TempDir,
        hosts: AgentFacts,
    }

    impl Fixture {
        fn new() -> Fixture {
            let specs = [NodeSpec::edge("edge-1", "10.0.0.1")];
            Fixture {
                world: SharedWorld::new(World::from_specs(1, DEFAULT_EPOCH, &specs).unwrap()),
                cluster: SharedCluster::new(),
                steps: Vec::new(),
                agents: tempfile::tempdir().unwrap(),
                hosts: AgentFacts::new(),
            }
        }

        fn nodewright(&mut self) -> Nodewright<'_> {
            Nodewright {
                cluster: &self.cluster,
                world: &self.world,
                steps: &mut self.steps,
                tick: 1,
                now: 1_767_225_600,
                agents: self.agents.path(),
                hosts: &mut self.hosts,
            }
        }
    }

    #[test]
    fn a_running_nodes_agent_publishes_its_host_and_node_conf_and_a_node_that_is_off_keeps_its_last_facts() {
        let mut f = Fixture::new();
        let specs = [NodeSpec::edge("edge-1", "10.0.0.1").with_controller()];
        f.world = SharedWorld::new(World::from_specs(1, DEFAULT_EPOCH, &specs).unwrap());
        f.world.lock().write_file(
            "edge-1",
            "/etc/vx-rail/node.conf",
            "BOND_SLAVES=eno1 eno2\nSTORAGE_VLAN_ID=100\nSTORAGE_IP=10.100.0.11/24\n",
        );
        let now = 1_767_225_600;
        let mut hosts = AgentFacts::new();
        hosts.read(&f.world, &f.cluster.0.borrow(), now).unwrap();
        assert!(hosts.all().is_empty(), "no pod on edge-1 yet: no agent runs");
        f.cluster.0.borrow_mut().set_script_pod("edge-1", true);
        hosts.read(&f.world, &f.cluster.0.borrow(), now).unwrap();
        let [facts] = hosts.all().try_into().unwrap();
        assert_eq!(facts.metadata.name.as_deref(), Some("edge-1"));
        assert_eq!(facts.spec.observed_at.0.as_second(), now);
        assert!(facts.spec.unreadable.is_empty(), "{:?}", facts.spec.unreadable);
        let boot_id = f.world.lock().nodes["edge-1"].boot_id.clone();
        assert_eq!(facts.spec.boot_id, Some(boot_id));
        assert_eq!(
            facts.spec.node_config.as_ref().map(|c| c.storage_vlan.id),
            Some(100)
        );
        // The node goes off: its agent publishes no more, and what it published ages.
        f.cluster.0.borrow_mut().set_script_pod("edge-1", false);
        hosts.read(&f.world, &f.cluster.0.borrow(), now + 600).unwrap();
        let [kept] = hosts.all().try_into().unwrap();
        assert_eq!(kept.spec.observed_at.0.as_second(), now);
        // Silent agents publish nothing at all.
        let mut silent = AgentFacts {
            silent: true,
            ..AgentFacts::new()
        };
        f.cluster.0.borrow_mut().set_script_pod("edge-1", true);
        silent.read(&f.world, &f.cluster.0.borrow(), now).unwrap();
        assert!(silent.all().is_empty());
    }

    #[test]
    fn there_is_one_edge_node_per_node_without_host_configuration_as_the_bridge_creates_them() {
        let f = Fixture::new();
        Cluster::add_node(&mut *f.cluster.0.borrow_mut(), "edge-1").unwrap();
        let nodes = edge_nodes(&f.cluster.0.borrow());
        let [n] = nodes.as_slice() else {
            panic!("{nodes:?}")
        };
        assert_eq!(n.spec.node_name, "edge-1");
        assert_eq!(n.spec.host, None);
    }

    fn apply(nw: &mut Nodewright<'_>, objects: &mut Objects, write: &Write) -> (i32, Vec<String>) {
        let applied = nw
            .apply(Workflow::StorageUpgrade, &BTreeMap::new(), objects, write)
            .unwrap();
        (applied.code, applied.lines)
    }

    fn upgrade(name: &str) -> StorageUpgrade {
        StorageUpgrade::new(
            name,
            StorageUpgradeSpec {
                owner: nodewright_api::WorkflowOwner::Operator,
                cluster_ref: ClusterRef { name: "site".into() },
                from_version: "9.2.12".into(),
                to_version: "9.2.14".into(),
                node_order: Vec::new(),
                rollback: false,
            },
        )
    }

    #[test]
    fn the_storage_gate_has_one_holder_and_is_released_only_under_its_resource_version() {
        let mut f = Fixture::new();
        let mut nw = f.nodewright();
        let mut objects = Objects::default();
        let take = |holder: &str| Write::AcquireGate {
            holder: holder.into(),
        };
        assert_eq!(apply(&mut nw, &mut objects, &take("StorageUpgrade/a")).0, 0);
        let held = objects.gate.clone().unwrap();
        assert_eq!(held.holder, "StorageUpgrade/a");
        let (code, lines) = apply(&mut nw, &mut objects, &take("Migration/m"));
        assert_eq!(code, 1, "a second holder is refused");
        assert_eq!(
            lines,
            ["operator: storage gate held by StorageUpgrade/a, not acquired for Migration/m"]
        );
        let release = |rv: &str| Write::ReleaseGate {
            holder: "StorageUpgrade/a".into(),
            resource_version: rv.into(),
        };
        assert_eq!(apply(&mut nw, &mut objects, &release("lease-0")).0, 1);
        assert_eq!(
            objects.gate.as_ref(),
            Some(&held),
            "a stale release changes nothing"
        );
        assert_eq!(
            apply(&mut nw, &mut objects, &release(&held.resource_version)).0,
            0
        );
        assert_eq!(objects.gate, None);
        assert_eq!(
            apply(&mut nw, &mut objects, &release(&held.resource_version)).0,
            0,
            "an absent gate counts as released"
        );
        assert_eq!(apply(&mut nw, &mut objects, &take("Migration/m")).0, 0);
        assert_ne!(
            objects.gate.as_ref().unwrap().resource_version,
            held.resource_version,
            "a new Lease has a new resourceVersion"
        );
    }

    #[test]
    fn a_storage_upgrade_is_created_once_and_its_status_written_only_from_its_current_version() {
        let mut f = Fixture::new();
        let mut nw = f.nodewright();
        let mut objects = Objects::default();
        let create = Write::CreateStorageUpgrade(Box::new(upgrade("storage-9-2-14")));
        let (code, lines) = apply(&mut nw, &mut objects, &create);
        assert_eq!(code, 0);
        assert_eq!(
            lines,
            ["operator: creates StorageUpgrade storage-9-2-14: 9.2.12 -> 9.2.14"]
        );
        assert_eq!(
            apply(&mut nw, &mut objects, &create),
            (0, Vec::new()),
            "AlreadyExists is done"
        );
        assert_eq!(objects.upgrades.len(), 1);
        let status = |rv: &str, message: &str| Write::StorageUpgradeStatus {
            name: "storage-9-2-14".into(),
            resource_version: rv.into(),
            status: Box::new(StorageUpgradeStatus {
                message: Some(message.into()),
                ..StorageUpgradeStatus::default()
            }),
        };
        assert_eq!(apply(&mut nw, &mut objects, &status("1", "first")).0, 0);
        let (code, lines) = apply(&mut nw, &mut objects, &status("1", "from an old copy"));
        assert_eq!(code, 1);
        assert!(lines[0].contains("resourceVersion 1 is not 2"), "{lines:?}");
        let u = &objects.upgrades[0];
        assert_eq!(u.status.as_ref().unwrap().message.as_deref(), Some("first"));
        assert_eq!(u.metadata.uid.as_deref(), Some("storage-9-2-14-golden"));
    }

    #[test]
    fn an_eviction_deletes_the_pod_and_a_cordon_is_a_recorded_kubectl_step() {
        let mut f = Fixture::new();
        Cluster::add_node(&mut f.cluster, "edge-1").unwrap();
        Cluster::add_pod(&mut f.cluster, "default", "app-0", "edge-1").unwrap();
        let mut nw = f.nodewright();
        let mut objects = Objects::default();
        let evict = Write::Evict {
            namespace: "default".into(),
            name: "app-0".into(),
            node: "edge-1".into(),
        };
        let (code, lines) = apply(&mut nw, &mut objects, &evict);
        assert_eq!(code, 0, "{lines:?}");
        assert_eq!(lines, ["operator: evict default/app-0 from edge-1 -> 0"]);
        assert_eq!(f.cluster.0.borrow().pods().count(), 0);
        let mut nw = f.nodewright();
        let cordon = Write::PatchNode {
            name: "edge-1".into(),
            resource_version: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::from([("vx-rail.io/upgrade-state".into(), "state=PREFLIGHT".into())]),
            taints: None,
            unschedulable: Some(true),
            what: vec!["cordon".into()],
        };
        assert_eq!(apply(&mut nw, &mut objects, &cordon).0, 0);
        let node = f.cluster.0.borrow().nodes().next().unwrap().to_json();
        assert_eq!(node["spec"]["unschedulable"], serde_json::json!(true));
        assert_eq!(
            node["metadata"]["annotations"]["vx-rail.io/upgrade-state"],
            serde_json::json!("state=PREFLIGHT")
        );
        let argvs: Vec<String> = f
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                invariants::Action::Command { argv, .. } => Some(argv.join(" ")),
                _ => None,
            })
            .collect();
        assert_eq!(
            argvs,
            [
                "kubectl delete pod -n default app-0",
                "kubectl annotate node edge-1 --overwrite vx-rail.io/upgrade-state=state=PREFLIGHT",
                "kubectl cordon edge-1",
            ]
        );
        assert!(
            f.steps
                .iter()
                .all(|s| s.workflow == Some(Workflow::StorageUpgrade))
        );
    }
}
