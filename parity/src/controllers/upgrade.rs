//! The storage-upgrade controller: each operator-owned `StorageUpgrade` of the site, one decision
//! of [`crate::upgrade::decide`] per turn — the gate, node tasks, evictions, cordon and taint —
//! then the legacy mirror (the cluster-state `upgrade` key and the node's upgrade-state
//! annotation) and last its status, so that a turn whose actions did not all land decides again
//! from the same state. It also translates the legacy request key `desired-storage-version`
//! into a StorageUpgrade when none targets that version.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Taint;
use kube::{Resource, ResourceExt};
use nodewright_api::WorkflowOwner;
use nodewright_api::common::ClusterRef;
use nodewright_api::nodetask::{NodeTask, NodeTaskSpec, WorkflowKind, WorkflowRef};
use nodewright_api::storageupgrade::{StorageUpgrade, StorageUpgradeSpec, UpgradeState};
use nodewright_parsers::contract::{annotation, cluster_key, taint};

use super::{Sequence, Snapshot, WorkflowController, Write};
use crate::observed;
use crate::takeover::Workflow;
use crate::upgrade::{self as up, Action, Outcome, TaskRequest, TaskResult};

/// The label that ties a NodeTask to the StorageUpgrade that created it.
pub const UPGRADE_LABEL: &str = "nodewright.io/storage-upgrade";

/// The storage-upgrade controller.
#[derive(Clone, Copy, Debug, Default)]
pub struct StorageUpgrades;

impl WorkflowController for StorageUpgrades {
    fn workflow(&self) -> Workflow {
        Workflow::StorageUpgrade
    }

    fn plan(&self, snapshot: &Snapshot<'_>) -> Vec<Sequence> {
        let site = snapshot.cluster.name_any();
        let owned: Vec<&StorageUpgrade> = snapshot
            .upgrades
            .iter()
            .filter(|u| u.spec.owner == WorkflowOwner::Operator && u.spec.cluster_ref.name == site)
            .collect();
        let mut out = Vec::new();
        if let Some(create) = translate(snapshot) {
            out.push(Sequence {
                regarding: snapshot.cluster.object_ref(&()),
                writes: vec![Write::CreateStorageUpgrade(Box::new(create))],
            });
        }
        if owned.is_empty() {
            return out;
        }
        let facts = observed::upgrade_facts(snapshot.index, snapshot.now, snapshot.settings, snapshot.gate);
        // One upgrade at a time: the oldest unfinished one runs (or releases the gate once over);
        // the others wait in Pending for the gate.
        for u in owned {
            let writes = plan_one(snapshot, &facts, u);
            if !writes.is_empty() {
                out.push(Sequence {
                    regarding: u.object_ref(&()),
                    writes,
                });
            }
        }
        out
    }
}

/// The StorageUpgrade the legacy request key asks for, when none targets its version.
fn translate(snapshot: &Snapshot<'_>) -> Option<StorageUpgrade> {
    let (desired, installed) = observed::upgrade_request(snapshot.index)?;
    let existing: Vec<&str> = snapshot
        .upgrades
        .iter()
        .map(|u| u.spec.to_version.as_str())
        .collect();
    let from = up::translate(&desired, installed.as_deref(), &existing)?;
    let mut u = StorageUpgrade::new(
        &up::request_name(&desired),
        StorageUpgradeSpec {
            owner: WorkflowOwner::Operator,
            cluster_ref: ClusterRef {
                name: snapshot.cluster.name_any(),
            },
            from_version: from,
            to_version: desired,
            node_order: Vec::new(),
            rollback: false,
        },
    );
    u.metadata.namespace = snapshot.cluster.namespace();
    Some(u)
}

/// One decision for one StorageUpgrade, as writes.
fn plan_one(snapshot: &Snapshot<'_>, facts: &up::Facts, u: &StorageUpgrade) -> Vec<Write> {
    let name = u.name_any();
    let uid = u.metadata.uid.clone().unwrap_or_default();
    let mine: Vec<NodeTask> = snapshot
        .tasks
        .iter()
        .filter(|t| t.labels().get(UPGRADE_LABEL) == Some(&name))
        .cloned()
        .collect();
    let tasks = task_results(&mine);
    let before = u.status.clone().unwrap_or_default();
    let d = up::decide(&name, &u.spec, &uid, &before, facts, &tasks, snapshot.pods);
    let holder = up::gate_holder(&name);

    let mut writes = Vec::new();
    for action in &d.actions {
        match action {
            Action::Task(t) => writes.push(Write::CreateTask(Box::new(node_task_for(t, u)))),
            Action::Node { node, cordon, taint } => {
                if let Some(w) = node_patch(snapshot, node, *cordon, *taint, None) {
                    writes.push(w);
                }
            }
            Action::Evict {
                namespace,
                name,
                node,
            } => writes.push(Write::Evict {
                namespace: namespace.clone(),
                name: name.clone(),
                node: node.clone(),
            }),
            Action::AcquireGate => writes.push(Write::AcquireGate {
                holder: holder.clone(),
            }),
            Action::ReleaseGate => {
                if let Some(g) = snapshot.gate.filter(|g| g.holder == holder) {
                    writes.push(Write::ReleaseGate {
                        holder: holder.clone(),
                        resource_version: g.resource_version.clone(),
                    });
                }
            }
        }
    }
    let order = if before.order.is_empty() {
        up::order(&u.spec, facts)
    } else {
        before.order.clone()
    };
    let order = if matches!(d.outcome, Outcome::Move(_)) || !before.order.is_empty() {
        order
    } else {
        Vec::new()
    };
    let status = up::status::after(&before, &d, &order, facts, &tasks, u.metadata.generation);
    if let Outcome::Move(changes) = &d.outcome {
        // The legacy mirror: the site's key, and each node whose state changed.
        writes.push(Write::PatchClusterState {
            resource_version: snapshot.cluster_state_version.map(str::to_owned),
            data: BTreeMap::from([(cluster_key::UPGRADE.to_owned(), up::legacy::blob(&u.spec, &status))]),
        });
        let mut annotated: BTreeMap<String, UpgradeState> = BTreeMap::new();
        for c in changes {
            match &c.node {
                Some(n) => {
                    annotated.insert(n.clone(), c.state);
                }
                None if c.state.is_terminal() => {
                    for n in &status.nodes {
                        if n.state != UpgradeState::Pending {
                            annotated.entry(n.node.clone()).or_insert(c.state);
                        }
                    }
                }
                None => {}
            }
        }
        for (n, state) in annotated {
            let value = up::legacy::annotation(&u.spec, state, snapshot.now);
            // Merged into a Node patch of the same node planned above, else a patch of its own.
            let merged = writes.iter_mut().any(|w| match w {
                Write::PatchNode {
                    name,
                    annotations,
                    what,
                    ..
                } if *name == n => {
                    annotations.insert(annotation::UPGRADE_STATE.to_owned(), value.clone());
                    what.push(format!("annotate {}={value}", annotation::UPGRADE_STATE));
                    true
                }
                _ => false,
            });
            if !merged && let Some(w) = node_patch(snapshot, &n, None, None, Some(value)) {
                writes.push(w);
            }
        }
    }
    if u.status.as_ref() != Some(&status) {
        writes.push(Write::StorageUpgradeStatus {
            name,
            resource_version: u.resource_version().unwrap_or_default(),
            status: Box::new(status),
        });
    }
    writes
}

/// A guarded patch of a Node: cordon, the upgrade taint, the upgrade-state annotation. `None`
/// when it would change nothing.
fn node_patch(
    snapshot: &Snapshot<'_>,
    node: &str,
    cordon: Option<bool>,
    upgrade_taint: Option<bool>,
    state: Option<String>,
) -> Option<Write> {
    let meta = snapshot.nodes.get(node);
    let mut what = Vec::new();
    let taints = upgrade_taint.and_then(|on| {
        let mut taints: Vec<Taint> = meta.map(|m| m.taints.clone()).unwrap_or_default();
        let has = taints
            .iter()
            .any(|t| t.key == taint::UPGRADE_IN_PROGRESS && t.effect == taint::EFFECT);
        if on && !has {
            taints.push(Taint {
                key: taint::UPGRADE_IN_PROGRESS.to_owned(),
                value: Some("true".to_owned()),
                effect: taint::EFFECT.to_owned(),
                time_added: None,
            });
            what.push(format!("taint {}:{}", taint::UPGRADE_IN_PROGRESS, taint::EFFECT));
            Some(taints)
        } else if !on && has {
            taints.retain(|t| !(t.key == taint::UPGRADE_IN_PROGRESS && t.effect == taint::EFFECT));
            what.push(format!("taint {}:{}-", taint::UPGRADE_IN_PROGRESS, taint::EFFECT));
            Some(taints)
        } else {
            None
        }
    });
    if let Some(c) = cordon {
        what.push(if c { "cordon".to_owned() } else { "uncordon".to_owned() });
    }
    let mut annotations = BTreeMap::new();
    if let Some(v) = state {
        what.push(format!("annotate {}={v}", annotation::UPGRADE_STATE));
        annotations.insert(annotation::UPGRADE_STATE.to_owned(), v);
    }
    if what.is_empty() {
        return None;
    }
    Some(Write::PatchNode {
        name: node.to_owned(),
        resource_version: meta.map(|m| m.resource_version.clone()).unwrap_or_default(),
        labels: BTreeMap::new(),
        annotations,
        taints,
        unschedulable: cordon,
        what,
    })
}

/// The NodeTask that carries out one task request of an upgrade: named by its idempotency key,
/// labelled with the upgrade, and owned by it.
pub fn node_task_for(t: &TaskRequest, u: &StorageUpgrade) -> NodeTask {
    let mut task = NodeTask::new(
        &t.key,
        NodeTaskSpec {
            node_name: t.node.clone(),
            step: t.step.clone(),
            args: t.args.clone(),
            idempotency_key: t.key.clone(),
            workflow_ref: Some(WorkflowRef {
                kind: WorkflowKind::StorageUpgrade,
                name: u.name_any(),
            }),
            timeout_seconds: 600,
        },
    );
    task.metadata.namespace = u.namespace();
    task.metadata.labels = Some(BTreeMap::from([(UPGRADE_LABEL.to_owned(), u.name_any())]));
    task.metadata.owner_references = u.controller_owner_ref(&()).map(|o| vec![o]);
    task
}

/// The tasks an upgrade created, by idempotency key.
pub fn task_results(tasks: &[NodeTask]) -> BTreeMap<String, TaskResult> {
    tasks
        .iter()
        .map(|t| {
            let status = t.status.clone().unwrap_or_default();
            (
                t.spec.idempotency_key.clone(),
                TaskResult {
                    request: TaskRequest {
                        key: t.spec.idempotency_key.clone(),
                        node: t.spec.node_name.clone(),
                        step: t.spec.step.clone(),
                        args: t.spec.args.clone(),
                    },
                    phase: status.phase,
                    output: status.output,
                    message: status.message,
                },
            )
        })
        .collect()
}
