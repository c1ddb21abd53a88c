//! The migration controller: each operator-owned `Migration` of the site, one decision of
//! [`crate::migration::decide`] per turn — its node tasks, role labels and cluster-state keys,
//! then its status. The status is written last, so that a turn whose actions did not all land
//! decides again from the same phase; the tasks are named by their idempotency keys, so deciding
//! again never creates one twice.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Resource, ResourceExt};
use nodewright_api::WorkflowOwner;
use nodewright_api::migration::{Migration, MigrationStatus};
use nodewright_api::nodetask::{NodeTask, NodeTaskSpec, WorkflowKind, WorkflowRef};
use nodewright_parsers::contract::cluster_key;

use super::{Sequence, Snapshot, WorkflowController, Write};
use crate::migration::{self as mig, Action, Outcome, TaskRequest, TaskResult};
use crate::observed;
use crate::takeover::Workflow;

/// The label that ties a NodeTask to the Migration that created it.
pub const MIGRATION_LABEL: &str = "nodewright.io/migration";
/// The legacy role label the migration sets on joining nodes.
pub const ROLE_LABEL: &str = nodewright_parsers::contract::label::ROLE;

/// The migration controller.
#[derive(Clone, Copy, Debug, Default)]
pub struct Migrations;

impl WorkflowController for Migrations {
    fn workflow(&self) -> Workflow {
        Workflow::Migration
    }

    fn plan(&self, snapshot: &Snapshot<'_>) -> Vec<Sequence> {
        let owned: Vec<&Migration> = snapshot
            .migrations
            .iter()
            .filter(|m| {
                m.spec.owner == WorkflowOwner::Operator
                    && m.spec.cluster_ref.name == snapshot.cluster.name_any()
                    && !m.status.as_ref().is_some_and(mig::is_over)
            })
            .collect();
        if owned.is_empty() {
            return Vec::new();
        }
        let facts = observed::migration_facts(
            snapshot.index,
            snapshot.now,
            snapshot.settings.stale_after,
            snapshot.settings.migration_timeout,
        );
        owned
            .into_iter()
            .map(|m| Sequence {
                regarding: m.object_ref(&()),
                writes: plan_one(snapshot, &facts, m),
            })
            .filter(|sequence| !sequence.writes.is_empty())
            .collect()
    }
}

/// One decision for one Migration, as writes.
fn plan_one(snapshot: &Snapshot<'_>, facts: &mig::Facts, m: &Migration) -> Vec<Write> {
    let name = m.name_any();
    let uid = m.metadata.uid.clone().unwrap_or_default();
    let mine: Vec<NodeTask> = snapshot
        .tasks
        .iter()
        .filter(|t| t.labels().get(MIGRATION_LABEL) == Some(&name))
        .cloned()
        .collect();
    let before = m.status.clone().unwrap_or_default();
    let topology = crate::topology::for_profile(snapshot.cluster.spec.profile.topology);
    let d = mig::decide_in(topology, &m.spec, &uid, &before, facts, &task_results(&mine));

    let mut writes = Vec::new();
    // Every cluster-state key of the decision goes into one patch, so that one decision never
    // conflicts with its own earlier write; it stands where the decision's first cluster-state
    // action stands, else after the other actions.
    let mut site: Option<(usize, BTreeMap<String, String>)> = None;
    for action in &d.actions {
        match action {
            Action::Task(t) => writes.push(Write::CreateTask(Box::new(node_task_for(t, m)))),
            Action::RoleLabel { node, role } => writes.push(Write::PatchNode {
                name: node.clone(),
                resource_version: snapshot
                    .nodes
                    .get(node)
                    .map(|n| n.resource_version.clone())
                    .unwrap_or_default(),
                labels: [(ROLE_LABEL.to_owned(), role.clone())].into(),
                annotations: BTreeMap::new(),
                taints: None,
                unschedulable: None,
                what: vec![format!("label {ROLE_LABEL}={role}")],
            }),
            Action::ClusterState { cluster, members } => {
                let (_, data) = site.get_or_insert_with(|| (writes.len(), BTreeMap::new()));
                data.insert(cluster_key::CLUSTER.to_owned(), cluster.clone());
                data.insert(cluster_key::MEMBERS.to_owned(), members.clone());
            }
        }
    }
    let generation = m.metadata.generation;
    let mut status = before.clone();
    match d.outcome {
        Outcome::Wait(reason) => set_waiting(&mut status, &reason, snapshot.now, generation),
        Outcome::Enter(phase, message) => {
            mig::enter(&mut status, phase, message, snapshot.now, generation);
            set_waiting(&mut status, "", snapshot.now, generation);
            // The scripts read the legacy key: they hold storage upgrades while it runs. A value
            // that does not validate is never mirrored into it; the Migration says why instead.
            match mig::legacy_blob(&m.spec, &status) {
                Ok(blob) => {
                    let (_, data) = site.get_or_insert_with(|| (writes.len(), BTreeMap::new()));
                    data.insert(cluster_key::MIGRATION.to_owned(), blob);
                }
                Err(e) => set_invalid_spec(&mut status, &e, snapshot.now, generation),
            }
        }
    }
    if let Some((at, data)) = site {
        writes.insert(
            at,
            Write::PatchClusterState {
                resource_version: snapshot.cluster_state_version.map(str::to_owned),
                data,
            },
        );
    }
    // A migration waiting for the same thing is not written again every turn.
    if m.status.as_ref() != Some(&status) {
        writes.push(Write::MigrationStatus {
            name,
            resource_version: m.resource_version().unwrap_or_default(),
            status: Box::new(status),
        });
    }
    writes
}

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
    task.metadata.namespace = m.namespace();
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

/// The `Failed` condition of a Migration whose spec cannot be mirrored into the legacy state:
/// reason `InvalidSpec`, the field and why. The writer reports the failure in a Warning Event.
fn set_invalid_spec(
    status: &mut MigrationStatus,
    e: &mig::UnsafeLegacyValue,
    now: i64,
    generation: Option<i64>,
) {
    use nodewright_api::common::{ConditionStatus, set_condition};
    let at: Time = nodewright_kit::clock::time(now);
    set_condition(
        &mut status.conditions,
        "Failed",
        ConditionStatus::True,
        INVALID_SPEC,
        &e.to_string(),
        generation,
        &at,
    );
}

/// The reason of the `Failed` condition, and of the Warning Event, of a Migration whose spec
/// holds a value that may not be written into the legacy state.
pub const INVALID_SPEC: &str = "InvalidSpec";

/// The `Progressing` condition: what the migration waits for (`reason` empty when it moved on).
fn set_waiting(status: &mut MigrationStatus, reason: &str, now: i64, generation: Option<i64>) {
    use nodewright_api::common::{ConditionStatus, set_condition};
    let at: Time = nodewright_kit::clock::time(now);
    let (s, r, msg) = if mig::is_over(status) {
        (ConditionStatus::False, "Finished", "the migration is over")
    } else if reason.is_empty() {
        (ConditionStatus::True, "PhaseEntered", "entered its current phase")
    } else {
        (ConditionStatus::True, "Waiting", reason)
    };
    set_condition(&mut status.conditions, "Progressing", s, r, msg, generation, &at);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::{NodeMeta, Settings};
    use nodewright_api::edgecluster::{EdgeCluster, EdgeClusterSpec};
    use nodewright_api::migration::MigrationSpec;
    use nodewright_bridge::index::{Index, LegacyNames};

    fn cluster() -> EdgeCluster {
        let spec: EdgeClusterSpec =
            serde_json::from_value(serde_json::json!({"profile": {"topology": "SingleNode"}})).unwrap();
        let mut c = EdgeCluster::new("site", spec);
        c.metadata.namespace = Some("nodewright-system".into());
        c
    }

    fn migration(owner: &str) -> Migration {
        let spec: MigrationSpec = serde_json::from_value(serde_json::json!({
            "clusterRef": {"name": "site"},
            "owner": owner,
            "sourceNode": "edge-1",
            "joiningNodes": ["edge-2"],
        }))
        .unwrap();
        let mut m = Migration::new("grow", spec);
        m.metadata.namespace = Some("nodewright-system".into());
        m.metadata.uid = Some("0f3c".into());
        m.metadata.resource_version = Some("11".into());
        m.metadata.generation = Some(1);
        m
    }

    fn plan(migrations: &[Migration]) -> Vec<Sequence> {
        let index = Index::new(LegacyNames::default());
        let nodes = BTreeMap::<String, NodeMeta>::new();
        let settings = Settings {
            stale_after: 300,
            migration_timeout: 1800,
            upgrade_state_timeout: 1800,
            upgrade_rollback_timeout: 1800,
        };
        let cluster = cluster();
        let snapshot = Snapshot {
            now: 1_790_000_000,
            cluster: &cluster,
            index: &index,
            nodes: &nodes,
            cluster_state_version: Some("5"),
            migrations,
            tasks: &[],
            upgrades: &[],
            pods: &[],
            gate: None,
            settings: &settings,
        };
        Migrations.plan(&snapshot)
    }

    #[test]
    fn a_migration_the_script_owns_is_not_planned() {
        assert!(plan(&[migration("legacy")]).is_empty());
    }

    #[test]
    fn an_owned_migration_gets_one_decision_whose_status_is_written_last_and_guarded() {
        let planned = plan(&[migration("operator")]);
        assert_eq!(planned.len(), 1, "{planned:#?}");
        let writes = &planned[0].writes;
        let Some(Write::MigrationStatus {
            name,
            resource_version,
            status,
        }) = writes.last()
        else {
            panic!("the status is the last write: {writes:#?}")
        };
        assert_eq!((name.as_str(), resource_version.as_str()), ("grow", "11"));
        assert!(
            status.conditions.iter().any(|c| c.type_ == "Progressing"),
            "{status:?}"
        );
        for w in writes {
            if let Write::PatchClusterState { resource_version, .. } = w {
                assert_eq!(
                    resource_version.as_deref(),
                    Some("5"),
                    "guarded by the version read"
                );
            }
        }
    }

    #[test]
    fn a_migration_whose_node_names_do_not_validate_writes_no_legacy_key_and_says_why() {
        let mut m = migration("operator");
        m.spec.joining_nodes = vec!["edge-2;phase=COMPLETED".into()];
        let planned = plan(&[m]);
        let writes = &planned[0].writes;
        assert!(
            writes.iter().all(|w| matches!(w, Write::MigrationStatus { .. })),
            "only the status is written: {writes:#?}"
        );
        let Some(Write::MigrationStatus { status, .. }) = writes.last() else {
            panic!("{writes:#?}")
        };
        assert_eq!(
            status.phase,
            Some(nodewright_api::migration::MigrationPhase::Failed)
        );
        let failed = status.conditions.iter().find(|c| c.type_ == "Failed").unwrap();
        assert_eq!(
            (failed.status.as_str(), failed.reason.as_str()),
            ("True", INVALID_SPEC)
        );
        assert!(
            failed.message.contains("spec.joiningNodes[0]"),
            "{}",
            failed.message
        );
        let (reason, note) = crate::writer::failure(writes.last().unwrap()).unwrap();
        assert_eq!(reason, INVALID_SPEC);
        assert!(
            note.contains("Migration grow") && note.contains("not a node name"),
            "{note}"
        );
    }

    #[test]
    fn a_task_is_named_by_its_idempotency_key_and_owned_by_its_migration() {
        let m = migration("operator");
        let task = node_task_for(
            &TaskRequest {
                key: "mig-0f3c-preflight-x".into(),
                node: "edge-2".into(),
                step: nodewright_api::nodetask::StepName::LinstorNodeList,
                args: vec![],
            },
            &m,
        );
        assert_eq!(task.name_any(), "mig-0f3c-preflight-x");
        assert_eq!(
            task.labels().get(MIGRATION_LABEL).map(String::as_str),
            Some("grow")
        );
        assert_eq!(task.owner_references().len(), 1);
    }
}
