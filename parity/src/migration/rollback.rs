//! The `ROLLING_BACK` phase: undoing what the migration did, newest first. Decided from the same
//! facts and tasks as the forward phases in [`super::phases`].

use std::collections::BTreeMap;

use nodewright_api::migration::{MigrationPhase as Phase, MigrationSpec, MigrationStatus};
use nodewright_api::nodetask::{NodeTaskPhase, StepName};

use super::legacy::{cluster_blob, members_csv};
use super::status::reached;
use super::tasks::{attempted, attempted_replicas, group_all, pending, task_key};
use super::{Action, Decision, Facts, Outcome, TaskRequest, TaskResult};

/// The start of the message of a rollback that gave up at its deadline; the Event that reports it
/// is raised on it.
pub const ROLLBACK_INCOMPLETE: &str = "rollback incomplete";

/// Undoes what the migration did, newest first, as the script's rollback undoes its journal: the
/// site's topology and roles (if it got to `FINALIZING`), then the replicas it tried to place,
/// then the satellites it tried to register. Storage pools go with their satellite. Every undo is
/// a node task or an idempotent write, so a rollback interrupted anywhere is decided again from
/// the same facts.
///
/// Everything the migration *attempted* is undone, not only what it saw succeed: a create that
/// failed or timed out with its outcome unknown may have taken effect, and every undo checks the
/// host first, so undoing what is not there changes nothing.
///
/// The rollback has a deadline: `facts.timeout` from when it began (`since`). Past it, the
/// migration fails with a message that names every undo that did not succeed — still waiting,
/// unknown, failed — instead of waiting for ever; the controller reports it in an Event.
pub(super) fn rollback(
    spec: &MigrationSpec,
    uid: &str,
    status: &MigrationStatus,
    since: Option<i64>,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
) -> Decision {
    let mut decision = undo(spec, uid, status, facts, tasks);
    let overdue = since.is_some_and(|since| facts.now - since > facts.timeout);
    if let Outcome::Wait(waiting) = &decision.outcome
        && overdue
    {
        let left = not_undone(spec, uid, status, tasks);
        let left = if left.is_empty() {
            waiting.clone()
        } else {
            left.join("; ")
        };
        decision = Decision {
            actions: Vec::new(),
            outcome: Outcome::Enter(
                Phase::Failed,
                Some(format!(
                    "{ROLLBACK_INCOMPLETE} after {}s; could not undo: {left}",
                    facts.timeout
                )),
            ),
        };
    }
    decision
}

/// What a rollback past its deadline leaves undone: every undo task that did not succeed (with
/// its phase and message), and the site topology when it was to be restored.
fn not_undone(
    spec: &MigrationSpec,
    uid: &str,
    status: &MigrationStatus,
    tasks: &BTreeMap<String, TaskResult>,
) -> Vec<String> {
    let mut left = Vec::new();
    let undos = replica_deletes(spec, uid, tasks)
        .into_iter()
        .chain(node_deletes(spec, uid, tasks));
    for want in undos {
        let what = format!("{} {}", want.step, want.args.join(" "));
        match tasks.get(&want.key) {
            Some(t) if t.phase == Some(NodeTaskPhase::Succeeded) => {}
            Some(t) => left.push(format!(
                "{what} ({}: {})",
                t.phase
                    .map_or_else(|| "not started".to_owned(), |p| format!("{p:?}")),
                t.message.as_deref().unwrap_or("no message")
            )),
            None => left.push(format!("{what} (never asked for)")),
        }
    }
    if left.is_empty() && reached(status, Phase::Finalizing) {
        left.push("the site's topology and roles".to_owned());
    }
    left
}

fn replica_deletes(
    spec: &MigrationSpec,
    uid: &str,
    tasks: &BTreeMap<String, TaskResult>,
) -> Vec<TaskRequest> {
    attempted_replicas(uid, tasks)
        .into_iter()
        .rev()
        .map(|(node, res)| TaskRequest {
            key: task_key(uid, Phase::RollingBack, &format!("delete-{node}-{res}")),
            node: spec.source_node.clone(),
            step: StepName::ResourceDelete,
            args: vec![node, res],
        })
        .collect()
}

fn node_deletes(spec: &MigrationSpec, uid: &str, tasks: &BTreeMap<String, TaskResult>) -> Vec<TaskRequest> {
    attempted(uid, tasks, StepName::LinstorNodeCreate)
        .into_iter()
        .rev()
        .filter_map(|r| r.args.first().cloned())
        .map(|node| TaskRequest {
            key: task_key(uid, Phase::RollingBack, &format!("node-delete-{node}")),
            node: spec.source_node.clone(),
            step: StepName::LinstorNodeDelete,
            args: vec![node],
        })
        .collect()
}

fn undo(
    spec: &MigrationSpec,
    uid: &str,
    status: &MigrationStatus,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
) -> Decision {
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
    match group_all(tasks, replica_deletes(spec, uid, tasks)) {
        (Some((create, running)), _) => {
            actions.extend(create);
            return pending(actions, &running, "rolling back replicas");
        }
        (None, Some(why)) => failed.push(why),
        (None, None) => {}
    }
    match group_all(tasks, node_deletes(spec, uid, tasks)) {
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
