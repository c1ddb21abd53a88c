//! The migration controller: each operator-owned `Migration` of the site, one decision of
//! [`crate::migration::decide`] per turn — its node tasks, role labels and cluster-state keys,
//! then its status. The status is written last, so that a turn whose actions did not all land
//! decides again from the same phase; the tasks are named by their idempotency keys, so deciding
//! again never creates one twice.
//!
//! The storage gate: a migration changes the site's storage, so it acts only while it holds the
//! site-wide gate (the Lease [`super::GATE_LEASE`], holder `Migration/<name>`). A decision that
//! acts or enters a phase takes the gate first (the create of the Lease: the sequence stops if
//! another took it meanwhile); while a StorageUpgrade (or anyone else) holds it, or while a
//! storage upgrade the scripts run is under way (the legacy `upgrade` key in a state that has not
//! ended), the migration waits and its `Progressing` condition says for whom. It gives the gate
//! back when it ends, and a gate still held for a Migration that is over or gone is given back
//! too (an operator killed between the last status write and the release).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Resource, ResourceExt};
use nodewright_api::WorkflowOwner;
use nodewright_api::migration::{Migration, MigrationPhase as Phase, MigrationStatus};
use nodewright_api::nodetask::{NodeTask, NodeTaskSpec, WorkflowKind, WorkflowRef};
use nodewright_parsers::contract::cluster_key;

use super::{Gate, Sequence, Snapshot, WorkflowController, Write};
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
        let mut sequences: Vec<Sequence> = release_left_behind(snapshot, &owned).into_iter().collect();
        if owned.is_empty() {
            return sequences;
        }
        let facts = observed::migration_facts(
            snapshot.index,
            snapshot.facts,
            snapshot.now,
            snapshot.settings.stale_after,
            snapshot.settings.migration_timeout,
        );
        sequences.extend(
            owned
                .into_iter()
                .map(|m| Sequence {
                    regarding: m.object_ref(&()),
                    writes: plan_one(snapshot, &facts, m),
                })
                .filter(|sequence| !sequence.writes.is_empty()),
        );
        sequences
    }
}

/// The holder name a Migration takes the storage gate under.
pub fn gate_holder(migration: &str) -> String {
    format!("{GATE_HOLDER_PREFIX}{migration}")
}

/// The prefix of the storage gate's holder when a Migration holds it.
pub const GATE_HOLDER_PREFIX: &str = "Migration/";

/// What a migration that does not hold the storage gate does before it acts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateStep {
    /// Take it (the gate is free and no legacy storage upgrade runs).
    Acquire,
    /// Wait, for the reason given (who holds the gate, or the legacy upgrade under way).
    Wait(String),
}

/// Whether a migration that wants to act and does not hold the gate may take it: not while
/// anyone holds it (`gate`), and not while the storage upgrade the scripts run
/// (`legacy_upgrade`, the state of the legacy `upgrade` key, when it has not ended) is under
/// way, which takes no gate.
pub fn gate_step(gate: Option<&Gate>, legacy_upgrade: Option<&str>) -> GateStep {
    if let Some(g) = gate {
        let by = if g.holder.is_empty() {
            "a Lease with no holder (delete it if nothing holds it)".to_owned()
        } else {
            g.holder.clone()
        };
        return GateStep::Wait(format!("waiting for the storage gate, held by {by}"));
    }
    if let Some(state) = legacy_upgrade {
        return GateStep::Wait(format!(
            "waiting for the storage upgrade the legacy scripts run (state {state}) to end before taking the storage gate"
        ));
    }
    GateStep::Acquire
}

/// The state of the storage upgrade the legacy `upgrade` key records, while it has not ended and
/// the scripts run it: a key the operator mirrors for its own StorageUpgrade (`owner=operator`)
/// is not one (that upgrade holds the gate while it runs).
fn legacy_upgrade_under_way(snapshot: &Snapshot<'_>) -> Option<String> {
    snapshot
        .index
        .cluster
        .as_ref()
        .and_then(|c| c.upgrade.value.as_ref())
        .filter(|u| {
            !u.state.is_terminal()
                && u.unknown.get("owner").map(String::as_str) != Some(crate::upgrade::legacy::OWNER)
        })
        .map(|u| u.state.as_str().to_owned())
}

/// The release of a gate held for a Migration that is no longer under way here (over, or
/// deleted): its last turn wrote its end but not the release. About the Migration when it still
/// exists, else about the site.
fn release_left_behind(snapshot: &Snapshot<'_>, under_way: &[&Migration]) -> Option<Sequence> {
    let gate = snapshot.gate?;
    let name = gate.holder.strip_prefix(GATE_HOLDER_PREFIX)?;
    if under_way.iter().any(|m| m.name_any() == name) {
        return None;
    }
    let regarding = snapshot
        .migrations
        .iter()
        .find(|m| m.name_any() == name)
        .map_or_else(|| snapshot.cluster.object_ref(&()), |m| m.object_ref(&()));
    Some(Sequence {
        regarding,
        writes: vec![Write::ReleaseGate {
            holder: gate.holder.clone(),
            resource_version: gate.resource_version.clone(),
        }],
    })
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
    let generation = m.metadata.generation;

    // The storage gate: held to act, or to enter a phase other than the end.
    let holder = gate_holder(&name);
    let held = snapshot.gate.filter(|g| g.holder == holder);
    let ends = matches!(
        d.outcome,
        Outcome::Enter(Phase::Completed | Phase::RolledBack | Phase::Failed, _)
    );
    let acts = !d.actions.is_empty() || (matches!(d.outcome, Outcome::Enter(..)) && !ends);
    let mut writes = Vec::new();
    if acts && held.is_none() {
        match gate_step(snapshot.gate, legacy_upgrade_under_way(snapshot).as_deref()) {
            GateStep::Acquire => writes.push(Write::AcquireGate {
                holder: holder.clone(),
            }),
            GateStep::Wait(reason) => {
                let mut status = before.clone();
                set_waiting(&mut status, &reason, snapshot.now, generation);
                if m.status.as_ref() == Some(&status) {
                    return Vec::new();
                }
                return vec![Write::MigrationStatus {
                    name,
                    resource_version: m.resource_version().unwrap_or_default(),
                    status: Box::new(status),
                }];
            }
        }
    }

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
    // Once its end is written, the gate goes back (should this not land, the next turn finds a
    // gate held for a Migration that is over, and releases it).
    if ends && let Some(gate) = held {
        writes.push(Write::ReleaseGate {
            holder,
            resource_version: gate.resource_version.clone(),
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
        plan_with(migrations, None, &Index::new(LegacyNames::default()))
    }

    fn plan_with(migrations: &[Migration], gate: Option<&Gate>, index: &Index) -> Vec<Sequence> {
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
            index,
            nodes: &nodes,
            cluster_state_version: Some("5"),
            migrations,
            tasks: &[],
            upgrades: &[],
            pods: &[],
            gate,
            facts: &[],
            edge_nodes: &[],
            bond_flips: &[],
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
        let (reason, _, note) = crate::writer::failure(writes.last().unwrap()).unwrap();
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

    fn gate(holder: &str) -> Gate {
        Gate {
            holder: holder.into(),
            resource_version: "77".into(),
        }
    }

    fn waiting_message(writes: &[Write]) -> String {
        let [Write::MigrationStatus { status, .. }] = writes else {
            panic!("only the status is written: {writes:#?}")
        };
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Progressing")
            .unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Waiting"));
        c.message.clone()
    }

    /// A migration that is rolling back and has nothing to undo: its next decision ends it.
    fn rolling_back_with_nothing_to_undo() -> Migration {
        let mut m = migration("operator");
        let mut status = MigrationStatus::default();
        mig::enter(
            &mut status,
            Phase::RollingBack,
            Some("rollback requested".into()),
            1_789_999_990,
            Some(1),
        );
        m.status = Some(status);
        m
    }

    #[test]
    fn a_migration_takes_the_storage_gate_before_it_leaves_pending() {
        let planned = plan(&[migration("operator")]);
        let writes = &planned[0].writes;
        let Some(Write::AcquireGate { holder }) = writes.first() else {
            panic!("the gate is taken first: {writes:#?}")
        };
        assert_eq!(holder, "Migration/grow");
        let Some(Write::MigrationStatus { status, .. }) = writes.last() else {
            panic!("{writes:#?}")
        };
        assert_eq!(status.phase, Some(Phase::Preflight));
    }

    #[test]
    fn a_migration_that_holds_the_gate_acts_without_taking_it_again() {
        let planned = plan_with(
            &[migration("operator")],
            Some(&gate("Migration/grow")),
            &Index::new(LegacyNames::default()),
        );
        let writes = &planned[0].writes;
        assert!(
            !writes
                .iter()
                .any(|w| matches!(w, Write::AcquireGate { .. } | Write::ReleaseGate { .. })),
            "{writes:#?}"
        );
        assert!(matches!(writes.last(), Some(Write::MigrationStatus { .. })));
    }

    #[test]
    fn a_migration_waits_while_a_storage_upgrade_holds_the_gate_and_says_who() {
        let planned = plan_with(
            &[migration("operator")],
            Some(&gate("StorageUpgrade/to-9.2.14")),
            &Index::new(LegacyNames::default()),
        );
        assert_eq!(planned.len(), 1, "{planned:#?}");
        let message = waiting_message(&planned[0].writes);
        assert_eq!(
            message,
            "waiting for the storage gate, held by StorageUpgrade/to-9.2.14"
        );
        // Still in Pending: nothing was done.
        let Write::MigrationStatus { status, .. } = &planned[0].writes[0] else {
            unreachable!()
        };
        assert_eq!(status.phase, None);
        // Waiting for the same thing is not written again.
        let mut waiting = migration("operator");
        waiting.status = Some((**status).clone());
        let again = plan_with(
            &[waiting],
            Some(&gate("StorageUpgrade/to-9.2.14")),
            &Index::new(LegacyNames::default()),
        );
        assert!(again.is_empty(), "{again:#?}");
    }

    fn index_with_legacy_upgrade(state: &str) -> Index {
        let mut index = Index::new(LegacyNames::default());
        let mut cm = k8s_openapi::api::core::v1::ConfigMap::default();
        cm.metadata.name = Some(nodewright_parsers::contract::CLUSTER_STATE.into());
        cm.metadata.namespace = Some("kube-system".into());
        cm.data = Some(BTreeMap::from([(
            cluster_key::UPGRADE.to_owned(),
            format!("state={state};from=9.2.12;to=9.2.14;node=edge-1"),
        )]));
        index.apply_config_map(&cm, 100);
        index
    }

    #[test]
    fn a_migration_waits_while_the_scripts_run_a_storage_upgrade_not_for_the_operators_own_mirror() {
        let planned = plan_with(
            &[migration("operator")],
            None,
            &index_with_legacy_upgrade("INSTALL_PACKAGES"),
        );
        let message = waiting_message(&planned[0].writes);
        assert!(
            message.contains("the storage upgrade the legacy scripts run (state INSTALL_PACKAGES)"),
            "{message}"
        );
        for ended_or_mirrored in ["COMPLETED", "INSTALL_PACKAGES;owner=operator"] {
            let planned = plan_with(
                &[migration("operator")],
                None,
                &index_with_legacy_upgrade(ended_or_mirrored),
            );
            assert!(
                matches!(planned[0].writes.first(), Some(Write::AcquireGate { .. })),
                "{ended_or_mirrored}: {planned:#?}"
            );
        }
    }

    #[test]
    fn a_migration_gives_the_gate_back_after_writing_its_end() {
        let planned = plan_with(
            &[rolling_back_with_nothing_to_undo()],
            Some(&gate("Migration/grow")),
            &Index::new(LegacyNames::default()),
        );
        let writes = &planned[0].writes;
        let n = writes.len();
        assert!(n >= 2, "{writes:#?}");
        let Write::MigrationStatus { status, .. } = &writes[n - 2] else {
            panic!("the end is written before the release: {writes:#?}")
        };
        assert!(mig::is_over(status), "{status:?}");
        let Write::ReleaseGate {
            holder,
            resource_version,
        } = &writes[n - 1]
        else {
            panic!("{writes:#?}")
        };
        assert_eq!(
            (holder.as_str(), resource_version.as_str()),
            ("Migration/grow", "77")
        );
    }

    #[test]
    fn a_migration_that_ends_without_ever_holding_the_gate_neither_takes_nor_releases_it() {
        let planned = plan(&[rolling_back_with_nothing_to_undo()]);
        let writes = &planned[0].writes;
        assert!(
            matches!(writes.last(), Some(Write::MigrationStatus { status, .. }) if mig::is_over(status)),
            "{writes:#?}"
        );
        assert!(
            !writes
                .iter()
                .any(|w| matches!(w, Write::AcquireGate { .. } | Write::ReleaseGate { .. })),
            "{writes:#?}"
        );
    }

    #[test]
    fn a_gate_left_held_for_a_migration_that_is_over_or_gone_is_released_and_no_other_holders() {
        let mut over = migration("operator");
        let mut status = MigrationStatus::default();
        mig::enter(&mut status, Phase::Completed, None, 1_789_999_000, Some(1));
        over.status = Some(status);
        let index = Index::new(LegacyNames::default());
        for migrations in [vec![over.clone()], vec![]] {
            let planned = plan_with(&migrations, Some(&gate("Migration/grow")), &index);
            assert_eq!(planned.len(), 1, "{planned:#?}");
            assert!(
                matches!(
                    &planned[0].writes[..],
                    [Write::ReleaseGate { holder, resource_version }]
                        if holder == "Migration/grow" && resource_version == "77"
                ),
                "{planned:#?}"
            );
            let kind = planned[0].regarding.kind.as_deref();
            assert_eq!(
                kind,
                Some(if migrations.is_empty() {
                    "EdgeCluster"
                } else {
                    "Migration"
                })
            );
        }
        // A StorageUpgrade's gate is not the migration controller's to give back.
        assert!(plan_with(&[over], Some(&gate("StorageUpgrade/to-9.2.14")), &index).is_empty());
    }
}
