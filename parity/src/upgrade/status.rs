//! A StorageUpgrade's status as the decision reads and writes it: each node's state, since when
//! and on which boot, the order, progress, the step the current state runs, the backup record,
//! and the conditions a person follows (`Progressing`, `Complete`, `RolledBack`, `Failed`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use nodewright_api::common::{ConditionStatus, PhaseTransition, set_condition};
use nodewright_api::storageupgrade::{
    NodeUpgradeStatus, StorageUpgradeStatus, UpgradeProgress, UpgradeState as State, UpgradeStep,
};

use super::legacy::state_text;
use super::{Decision, Facts, Outcome, TaskResult};

/// How much of a step's output the status keeps.
pub const OUTPUT_LIMIT: usize = 2048;

/// Unix seconds of a time.
pub fn seconds(t: &Time) -> i64 {
    t.0.as_second()
}

/// A node's entry.
pub fn node<'a>(status: &'a StorageUpgradeStatus, node: &str) -> Option<&'a NodeUpgradeStatus> {
    status.nodes.iter().find(|n| n.node == node)
}

/// When the node entered its current state.
pub fn node_since(n: &NodeUpgradeStatus) -> Option<i64> {
    n.since.as_ref().map(seconds)
}

/// How many times the node entered `state`.
pub fn entries(n: &NodeUpgradeStatus, state: State) -> usize {
    n.history.iter().filter(|t| t.phase == state).count().max(1)
}

fn node_mut<'a>(status: &'a mut StorageUpgradeStatus, node: &str) -> &'a mut NodeUpgradeStatus {
    if let Some(i) = status.nodes.iter().position(|n| n.node == node) {
        &mut status.nodes[i]
    } else {
        status.nodes.push(NodeUpgradeStatus {
            node: node.to_owned(),
            state: State::Pending,
            since: None,
            boot_id: None,
            step: None,
            backup: None,
            history: Vec::new(),
        });
        let last = status.nodes.len() - 1;
        &mut status.nodes[last]
    }
}

/// The status after the decision `d`, made at `facts.now` for `generation`: the states entered,
/// the backup recorded, the current step, the progress and the conditions. `order` is the
/// upgrade's order (fixed when it leaves `Pending`).
pub fn after(
    before: &StorageUpgradeStatus,
    d: &Decision,
    order: &[String],
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
    generation: Option<i64>,
) -> StorageUpgradeStatus {
    let now = facts.now;
    let at = nodewright_kit::clock::time(now);
    let mut status = before.clone();
    status.observed_generation = generation;
    if status.order.is_empty() && !order.is_empty() {
        status.order = order.to_vec();
    }
    for n in order {
        node_mut(&mut status, n);
    }
    if let Some((n, backup)) = &d.backup {
        node_mut(&mut status, n).backup = Some(backup.clone());
    }
    match &d.outcome {
        // An upgrade that ended keeps the message it ended with.
        Outcome::Wait(reason) if !status.state.is_some_and(State::is_terminal) => {
            status.message = Some(reason.clone());
        }
        Outcome::Wait(_) => {}
        Outcome::Move(changes) => {
            for c in changes {
                if let Some(n) = &c.node {
                    let entry = node_mut(&mut status, n);
                    entry.state = c.state;
                    entry.since = Some(at.clone());
                    entry.boot_id = facts.nodes.get(n).and_then(|f| f.boot_id.clone());
                    entry.step = None;
                    entry.history.push(PhaseTransition {
                        phase: c.state,
                        at: at.clone(),
                        message: c.message.clone(),
                    });
                }
                if c.state == State::RollingBack && status.state != Some(State::RollingBack) {
                    status.failed_state = status.state.filter(|s| s.is_per_node());
                    status.failed_node = c.node.clone().or(status.current_node.clone());
                }
                status.state = Some(c.state);
                status.current_node = c.node.clone();
                status.since = Some(at.clone());
                status.message = c.message.clone();
            }
            if status.started_at.is_none() {
                status.started_at = Some(at.clone());
            }
            if status.state.is_some_and(State::is_terminal) {
                status.finished_at = Some(at.clone());
                status.current_node = None;
            }
        }
    }
    if let (Some(key), Some(n)) = (&d.watching, status.current_node.clone())
        && let Some(t) = tasks.get(key)
    {
        node_mut(&mut status, &n).step = Some(step_of(t));
    }
    let total = u32::try_from(status.order.len()).unwrap_or(u32::MAX);
    let done = status
        .nodes
        .iter()
        .filter(|n| status.order.contains(&n.node) && n.state == State::Completed)
        .count();
    status.progress = (total > 0).then(|| UpgradeProgress {
        done: u32::try_from(done).unwrap_or(u32::MAX),
        total,
    });
    conditions(&mut status, now, generation);
    status
}

/// The status's view of a task.
fn step_of(t: &TaskResult) -> UpgradeStep {
    let r = &t.request;
    UpgradeStep {
        task: r.key.clone(),
        step: std::iter::once(r.step.as_str())
            .chain(r.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        result: t.phase.map(|p| format!("{p:?}")),
        output: t.output.as_ref().map(|o| truncate(o, OUTPUT_LIMIT)),
        message: t.message.clone(),
    }
}

fn truncate(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_owned();
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes more)", &s[..end], s.len() - end)
}

fn conditions(status: &mut StorageUpgradeStatus, now: i64, generation: Option<i64>) {
    let at = nodewright_kit::clock::time(now);
    let state = status.state.unwrap_or(State::Pending);
    let message = status.message.clone().unwrap_or_default();
    let here = match &status.current_node {
        Some(n) => format!("{} on {n}", state_text(state)),
        None => state_text(state).to_owned(),
    };
    let (progressing, reason, text) = match state {
        State::Pending => (ConditionStatus::True, "Pending", format!("PENDING: {message}")),
        State::RollingBack => (ConditionStatus::True, "RollingBack", format!("{here}: {message}")),
        s if s.is_terminal() => (ConditionStatus::False, "Finished", format!("{here}: {message}")),
        _ => (
            ConditionStatus::True,
            "StateEntered",
            format!("{here}: {message}"),
        ),
    };
    set_condition(
        &mut status.conditions,
        "Progressing",
        progressing,
        reason,
        &text,
        generation,
        &at,
    );
    let yes_no = |b: bool| {
        if b {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    };
    for (type_, when, reason) in [
        ("Complete", State::Completed, "Completed"),
        ("RolledBack", State::RolledBack, "RolledBack"),
        ("Failed", State::Failed, "RollbackFailed"),
    ] {
        let is = state == when;
        set_condition(
            &mut status.conditions,
            type_,
            yes_no(is),
            if is { reason } else { "NotYet" },
            if is { &message } else { "" },
            generation,
            &at,
        );
    }
}
