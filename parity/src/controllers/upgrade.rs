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
        let facts = observed::upgrade_facts(
            snapshot.index,
            snapshot.facts,
            snapshot.now,
            snapshot.settings,
            snapshot.gate,
        );
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
            data: BTreeMap::from([(
                cluster_key::UPGRADE.to_owned(),
                up::legacy::blob(&u.spec, &status),
            )]),
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
        what.push(if c {
            "cordon".to_owned()
        } else {
            "uncordon".to_owned()
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::{Gate, NodeMeta, Settings};
    use k8s_openapi::api::core::v1::{ConfigMap, Node};
    use nodewright_api::edgecluster::{EdgeCluster, EdgeClusterSpec};
    use nodewright_api::storageupgrade::StorageUpgradeStatus;
    use nodewright_bridge::index::{Index, LegacyNames};

    const NOW: i64 = 1_790_000_000;

    fn cluster() -> EdgeCluster {
        let spec: EdgeClusterSpec =
            serde_json::from_value(serde_json::json!({"profile": {"topology": "MultiNode"}})).unwrap();
        let mut c = EdgeCluster::new("site", spec);
        c.metadata.namespace = Some("nodewright-system".into());
        c
    }

    fn upgrade(owner: &str) -> StorageUpgrade {
        let spec: StorageUpgradeSpec = serde_json::from_value(serde_json::json!({
            "owner": owner,
            "clusterRef": {"name": "site"},
            "fromVersion": "9.2.12",
            "toVersion": "9.2.14",
        }))
        .unwrap();
        let mut u = StorageUpgrade::new("up", spec);
        u.metadata.namespace = Some("nodewright-system".into());
        u.metadata.uid = Some("5a7e0000".into());
        u.metadata.resource_version = Some("11".into());
        u.metadata.generation = Some(2);
        u
    }

    fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.namespace = Some("kube-system".into());
        cm.data = Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        cm
    }

    fn index(desired: Option<&str>) -> Index {
        let mut index = Index::new(LegacyNames::default());
        let mut data = vec![
            (
                "cluster",
                "primary=edge-1;topology=multi;replicas=2;storage_pool=pool0;created=100;schema=4",
            ),
            (
                "members",
                "node,storage_ip,role,joined\nedge-1,10.100.0.11/24,primary,100\nedge-2,10.100.0.12/24,member,200",
            ),
        ];
        if let Some(d) = desired {
            data.push(("desired-storage-version", d));
        }
        index.apply_config_map(&cm("vx-rail-cluster-state", &data), NOW);
        for n in ["edge-1", "edge-2"] {
            let mut node = Node::default();
            node.metadata.name = Some(n.into());
            index.apply_node(&node, NOW);
            let status = format!(
                "at={NOW};state=ready;role=member;net=ok;bond=bond0;bond_mode=active-backup;bond_active=eno1;\
                 slaves=eno1:up:0,eno2:up:0;storage_vlan=bond0.100:up;mgmt_vlan=;satellite=active;drbd=ok;\
                 resources=1;uptodate=1;syncing=0;taint=none;boot=;upgrade=;drbd_version=9.2.12"
            );
            index.apply_config_map(&cm(&format!("vx-rail-node-{n}"), &[("status", &status)]), NOW);
        }
        index
    }

    fn plan(index: &Index, upgrades: &[StorageUpgrade], gate: Option<&Gate>) -> Vec<Sequence> {
        let nodes: BTreeMap<String, NodeMeta> = ["edge-1", "edge-2"]
            .into_iter()
            .map(|n| {
                (
                    n.to_owned(),
                    NodeMeta {
                        resource_version: "7".into(),
                        ..NodeMeta::default()
                    },
                )
            })
            .collect();
        let settings = Settings {
            stale_after: 300,
            migration_timeout: 1800,
            upgrade_state_timeout: 1800,
            upgrade_rollback_timeout: 1800,
        };
        let cluster = cluster();
        let snapshot = Snapshot {
            now: NOW,
            cluster: &cluster,
            index,
            nodes: &nodes,
            cluster_state_version: Some("5"),
            migrations: &[],
            tasks: &[],
            upgrades,
            pods: &[],
            gate,
            facts: &[],
            edge_nodes: &[],
            bond_flips: &[],
            settings: &settings,
        };
        StorageUpgrades.plan(&snapshot)
    }

    #[test]
    fn an_upgrade_the_script_owns_is_not_planned() {
        assert!(plan(&index(None), &[upgrade("legacy")], None).is_empty());
    }

    #[test]
    fn leaving_pending_takes_the_gate_first_mirrors_the_legacy_state_and_writes_the_status_last() {
        let planned = plan(&index(None), &[upgrade("operator")], None);
        assert_eq!(planned.len(), 1, "{planned:#?}");
        let writes = &planned[0].writes;
        assert!(
            matches!(&writes[0], Write::AcquireGate { holder } if holder == "StorageUpgrade/up"),
            "{writes:#?}"
        );
        let Write::PatchClusterState {
            resource_version,
            data,
        } = &writes[1]
        else {
            panic!("the legacy key second: {writes:#?}")
        };
        assert_eq!(resource_version.as_deref(), Some("5"));
        let blob = &data[cluster_key::UPGRADE];
        assert!(
            blob.starts_with("state=PREFLIGHT;from=9.2.12;to=9.2.14;order=edge-1,edge-2;node=edge-1;"),
            "{blob}"
        );
        assert!(blob.ends_with(";owner=operator"), "{blob}");
        let Write::PatchNode {
            name,
            annotations,
            resource_version,
            ..
        } = &writes[2]
        else {
            panic!("the node's annotation third: {writes:#?}")
        };
        assert_eq!((name.as_str(), resource_version.as_str()), ("edge-1", "7"));
        assert_eq!(
            annotations[annotation::UPGRADE_STATE],
            format!("state=PREFLIGHT;to=9.2.14;since={NOW}")
        );
        let Some(Write::StorageUpgradeStatus {
            name,
            resource_version,
            status,
        }) = writes.last()
        else {
            panic!("the status last: {writes:#?}")
        };
        assert_eq!((name.as_str(), resource_version.as_str()), ("up", "11"));
        assert_eq!(status.state, Some(UpgradeState::Preflight));
        assert_eq!(status.observed_generation, Some(2));
        assert!(status.conditions.iter().all(|c| c.observed_generation == Some(2)));
    }

    #[test]
    fn a_finished_upgrade_gives_the_gate_back_guarded_by_its_version() {
        let mut u = upgrade("operator");
        u.status = Some(StorageUpgradeStatus {
            state: Some(UpgradeState::Completed),
            ..StorageUpgradeStatus::default()
        });
        let gate = Gate {
            holder: "StorageUpgrade/up".into(),
            resource_version: "42".into(),
        };
        let planned = plan(&index(None), &[u], Some(&gate));
        let writes = &planned[0].writes;
        assert!(
            matches!(&writes[0], Write::ReleaseGate { holder, resource_version }
                if holder == "StorageUpgrade/up" && resource_version == "42"),
            "{writes:#?}"
        );
    }

    #[test]
    fn cordon_and_taint_is_one_guarded_node_patch_with_the_upgrade_taint() {
        let mut u = upgrade("operator");
        let at = nodewright_kit::clock::time(NOW);
        u.status = Some(StorageUpgradeStatus {
            state: Some(UpgradeState::CordonAndTaint),
            current_node: Some("edge-1".into()),
            since: Some(at.clone()),
            order: vec!["edge-1".into(), "edge-2".into()],
            ..StorageUpgradeStatus::default()
        });
        let gate = Gate {
            holder: "StorageUpgrade/up".into(),
            resource_version: "42".into(),
        };
        let planned = plan(&index(None), &[u], Some(&gate));
        let writes = &planned[0].writes;
        let Write::PatchNode {
            name,
            taints,
            unschedulable,
            ..
        } = &writes[0]
        else {
            panic!("{writes:#?}")
        };
        assert_eq!(name, "edge-1");
        assert_eq!(*unschedulable, Some(true));
        assert!(
            taints
                .as_ref()
                .unwrap()
                .iter()
                .any(|t| t.key == taint::UPGRADE_IN_PROGRESS && t.effect == "NoSchedule")
        );
    }

    #[test]
    fn the_legacy_request_key_becomes_a_storage_upgrade_named_for_its_version() {
        let planned = plan(&index(Some("9.2.14")), &[], None);
        assert_eq!(planned.len(), 1);
        let Write::CreateStorageUpgrade(u) = &planned[0].writes[0] else {
            panic!("{planned:#?}")
        };
        assert_eq!(u.metadata.name.as_deref(), Some("storage-9-2-14"));
        assert_eq!(u.spec.owner, WorkflowOwner::Operator);
        assert_eq!(
            (u.spec.from_version.as_str(), u.spec.to_version.as_str()),
            ("9.2.12", "9.2.14")
        );
        // Once it exists, nothing more is created.
        let mut existing = upgrade("operator");
        existing.spec.to_version = "9.2.14".into();
        let planned = plan(&index(Some("9.2.14")), &[existing], None);
        assert!(
            planned
                .iter()
                .flat_map(|s| &s.writes)
                .all(|w| !matches!(w, Write::CreateStorageUpgrade(_)))
        );
    }
}
