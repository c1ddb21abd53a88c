//! The node tasks of a migration: their idempotency keys (stable for the migration, the phase and
//! the step's target), and the state of a group of them (to create, running, done or failed),
//! which is what a phase waits on. Reads only the tasks passed in.

use std::collections::BTreeMap;

use nodewright_api::migration::MigrationPhase as Phase;
use nodewright_api::nodetask::{NodeTaskPhase, StepName};

use super::{Action, Decision, Outcome, TaskRequest, TaskResult};

fn short(p: Phase) -> &'static str {
    match p {
        Phase::RegisteringSatellites => "register",
        Phase::CreatingStoragePools => "pools",
        Phase::PlacingReplicas => "place",
        Phase::RollingBack => "rollback",
        _ => "step",
    }
}

/// The idempotency key (and NodeTask name) of one step of a migration: stable for the migration,
/// the phase and the step's target, so that deciding again finds the task already created.
pub fn task_key(uid: &str, phase: Phase, what: &str) -> String {
    crate::keys::idempotency_key(&format!("{}{}-", key_prefix(uid), short(phase)), what)
}

/// The start of every key of one migration's tasks.
pub fn key_prefix(uid: &str) -> String {
    let uid: String = uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("mig-{uid}-")
}

/// The state of a group of tasks: each either not created, running, succeeded or failed.
pub(super) enum Group {
    /// Every task succeeded.
    Done,
    /// Some task failed: its key and why.
    Failed(String),
    /// Some are missing (to create) or still running.
    Pending(Vec<Action>, Vec<String>),
}

pub(super) fn group(tasks: &BTreeMap<String, TaskResult>, wanted: Vec<TaskRequest>) -> Group {
    let mut create = Vec::new();
    let mut running = Vec::new();
    for want in wanted {
        match tasks.get(&want.key).and_then(|t| t.phase.map(|p| (p, t))) {
            Some((NodeTaskPhase::Succeeded, _)) => {}
            Some((NodeTaskPhase::Failed, t)) => {
                return Group::Failed(format!(
                    "{} {} on {} failed: {}",
                    want.step,
                    want.args.join(" "),
                    want.node,
                    t.message.as_deref().unwrap_or("no message")
                ));
            }
            Some(_) => running.push(want.key.clone()),
            None if tasks.contains_key(&want.key) => running.push(want.key.clone()),
            None => {
                running.push(want.key.clone());
                create.push(Action::Task(want));
            }
        }
    }
    if create.is_empty() && running.is_empty() {
        Group::Done
    } else {
        Group::Pending(create, running)
    }
}

/// The output of the read-only `step` on `node` for this phase: asked for once (a task whose key
/// says phase and node), then read from the task's result. `Err` is the decision meanwhile: the
/// task to create or to wait for, or the failure.
pub(super) fn read(
    uid: &str,
    phase: Phase,
    node: &str,
    step: StepName,
    tasks: &BTreeMap<String, TaskResult>,
) -> Result<String, Decision> {
    let list = TaskRequest {
        key: task_key(uid, phase, &format!("list-{node}")),
        node: node.to_owned(),
        step,
        args: Vec::new(),
    };
    match group(tasks, vec![list.clone()]) {
        Group::Failed(why) => Err(Decision::fail(why)),
        Group::Pending(actions, running) => {
            Err(pending(actions, &running, &format!("reading `{step}` on {node}")))
        }
        Group::Done => Ok(tasks
            .get(&list.key)
            .and_then(|t| t.output.clone())
            .unwrap_or_default()),
    }
}

pub(super) fn pending(actions: Vec<Action>, running: &[String], what: &str) -> Decision {
    Decision {
        actions,
        outcome: Outcome::Wait(format!("{what}: waiting for node tasks {}", running.join(", "))),
    }
}

/// Succeeded tasks of this migration with `step`, oldest key first.
pub(super) fn succeeded<'a>(
    uid: &str,
    tasks: &'a BTreeMap<String, TaskResult>,
    step: StepName,
) -> Vec<&'a TaskRequest> {
    let prefix = key_prefix(uid);
    tasks
        .iter()
        .filter(|(k, t)| {
            k.starts_with(&prefix) && t.request.step == step && t.phase == Some(NodeTaskPhase::Succeeded)
        })
        .map(|(_, t)| &t.request)
        .collect()
}

/// The replicas this migration placed: (node, resource) of every resource-create that succeeded.
pub(super) fn placed_replicas(uid: &str, tasks: &BTreeMap<String, TaskResult>) -> Vec<(String, String)> {
    succeeded(uid, tasks, StepName::ResourceCreate)
        .into_iter()
        .filter_map(|r| Some((r.args.first()?.clone(), r.args.get(1)?.clone())))
        .collect()
}

/// Tasks of this migration with `step` in any phase — succeeded, failed, unknown, running or
/// not started: each may have changed the host, so a rollback undoes them all. Oldest key first.
pub(super) fn attempted<'a>(
    uid: &str,
    tasks: &'a BTreeMap<String, TaskResult>,
    step: StepName,
) -> Vec<&'a TaskRequest> {
    let prefix = key_prefix(uid);
    tasks
        .iter()
        .filter(|(k, t)| k.starts_with(&prefix) && t.request.step == step)
        .map(|(_, t)| &t.request)
        .collect()
}

/// The replicas this migration tried to place: (node, resource) of every resource-create it
/// asked for, whatever became of it.
pub(super) fn attempted_replicas(uid: &str, tasks: &BTreeMap<String, TaskResult>) -> Vec<(String, String)> {
    attempted(uid, tasks, StepName::ResourceCreate)
        .into_iter()
        .filter_map(|r| Some((r.args.first()?.clone(), r.args.get(1)?.clone())))
        .collect()
}

/// Like [`group`], but a failed task does not stop the others: a rollback undoes what it can.
/// Returns what is still to create or running, and the failures.
#[allow(clippy::type_complexity)]
pub(super) fn group_all(
    tasks: &BTreeMap<String, TaskResult>,
    wanted: Vec<TaskRequest>,
) -> (Option<(Vec<Action>, Vec<String>)>, Option<String>) {
    let mut create = Vec::new();
    let mut running = Vec::new();
    let mut failed = Vec::new();
    for want in wanted {
        match tasks.get(&want.key).map(|t| (t.phase, t)) {
            Some((Some(NodeTaskPhase::Succeeded), _)) => {}
            Some((Some(NodeTaskPhase::Failed), t)) => failed.push(format!(
                "{} {}: {}",
                want.step,
                want.args.join(" "),
                t.message.as_deref().unwrap_or("no message")
            )),
            Some(_) => running.push(want.key.clone()),
            None => {
                running.push(want.key.clone());
                create.push(Action::Task(want));
            }
        }
    }
    let pending = (!running.is_empty()).then_some((create, running));
    let failed = (!failed.is_empty()).then(|| failed.join("; "));
    (pending, failed)
}
