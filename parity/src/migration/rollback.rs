//! The `ROLLING_BACK` phase: undoing what the migration did, newest first. Decided from the same
//! facts and tasks as the forward phases in [`super::phases`].

use std::collections::BTreeMap;

use nodewright_api::migration::{MigrationPhase as Phase, MigrationSpec, MigrationStatus};
use nodewright_api::nodetask::StepName;

use super::legacy::{cluster_blob, members_csv};
use super::status::reached;
use super::tasks::{group_all, pending, placed_replicas, succeeded, task_key};
use super::{Action, Decision, Facts, Outcome, TaskRequest, TaskResult};

/// Undoes what the migration did, newest first, as the script's rollback undoes its journal: the
/// site's topology and roles (if it got to `FINALIZING`), then the replicas it placed, then the
/// satellites it registered. Storage pools go with their satellite. Every undo is a node task or
/// an idempotent write, so a rollback interrupted anywhere is decided again from the same facts.
pub(super) fn rollback(
    spec: &MigrationSpec,
    uid: &str,
    status: &MigrationStatus,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
) -> Decision {
    let source = spec.source_node.as_str();
    let mut actions = Vec::new();
    let mut failed = Vec::new();
    if reached(status, Phase::Finalizing) {
        let Some(c) = &facts.cluster else {
            return Decision::wait("no cluster blob in the cluster state to roll back");
        };
        let written = cluster_blob(c, "single", 1).and_then(|cluster| {
            Ok((
                cluster,
                members_csv(&facts.members, &spec.joining_nodes, "joining")?,
            ))
        });
        match written {
            Ok((cluster, members)) => actions.push(Action::ClusterState { cluster, members }),
            // Not written back: the site's keys stay as they are, the replicas and satellites are
            // still undone, and the rollback ends Failed saying why.
            Err(e) => failed.push(e.to_string()),
        }
        actions.extend(spec.joining_nodes.iter().map(|n| Action::RoleLabel {
            node: n.clone(),
            role: "joining".into(),
        }));
    }
    let deletes: Vec<TaskRequest> = placed_replicas(uid, tasks)
        .into_iter()
        .rev()
        .map(|(node, res)| TaskRequest {
            key: task_key(uid, Phase::RollingBack, &format!("delete-{node}-{res}")),
            node: source.to_owned(),
            step: StepName::ResourceDelete,
            args: vec![node, res],
        })
        .collect();
    match group_all(tasks, deletes) {
        (Some((create, running)), _) => {
            actions.extend(create);
            return pending(actions, &running, "rolling back replicas");
        }
        (None, Some(why)) => failed.push(why),
        (None, None) => {}
    }
    let node_deletes: Vec<TaskRequest> = succeeded(uid, tasks, StepName::LinstorNodeCreate)
        .into_iter()
        .rev()
        .filter_map(|r| r.args.first().cloned())
        .map(|node| TaskRequest {
            key: task_key(uid, Phase::RollingBack, &format!("node-delete-{node}")),
            node: source.to_owned(),
            step: StepName::LinstorNodeDelete,
            args: vec![node],
        })
        .collect();
    match group_all(tasks, node_deletes) {
        (Some((create, running)), _) => {
            actions.extend(create);
            return pending(actions, &running, "rolling back satellites");
        }
        (None, Some(why)) => failed.push(why),
        (None, None) => {}
    }
    let reason = status
        .history
        .iter()
        .rev()
        .find(|t| t.phase == Phase::RollingBack)
        .and_then(|t| t.message.clone());
    Decision {
        actions,
        outcome: if failed.is_empty() {
            Outcome::Enter(Phase::RolledBack, reason)
        } else {
            Outcome::Enter(
                Phase::Failed,
                Some(format!("rollback failed: {}", failed.join("; "))),
            )
        },
    }
}
