//! The node tasks of a storage upgrade: their idempotency keys (stable for the upgrade, the node,
//! the time its state was entered and the step), and the progress of an ordered list of them,
//! which is what a state waits on. Reads only the tasks passed in.

use std::collections::BTreeMap;

use nodewright_api::nodetask::NodeTaskPhase;

use super::{Action, TaskRequest, TaskResult};

/// The start of every key of one upgrade's tasks.
pub fn key_prefix(uid: &str) -> String {
    let uid: String = uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("su-{uid}-")
}

/// The idempotency key (and NodeTask name) of one step: the upgrade, the node and what (which
/// names the state and how many times the node entered it, so a state entered again after a
/// reboot runs its step again, and the step).
pub fn task_key(uid: &str, node: &str, what: &str) -> String {
    crate::keys::idempotency_key(&key_prefix(uid), &format!("{node}-{what}"))
}

/// A task request of one state: `tag` names the state and the attempt (`quorum-check1`,
/// `undo2`).
pub(super) fn request(uid: &str, tag: &str, node: &str, step: &str, args: &[&str]) -> TaskRequest {
    let what = [tag, step]
        .into_iter()
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join("-");
    TaskRequest {
        key: task_key(uid, node, &what),
        node: node.to_owned(),
        step: step.to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
    }
}

/// How far an ordered list of tasks got.
#[derive(Debug)]
pub(super) enum Progress {
    /// Every task finished (those whose failure is tolerated may have failed).
    Done,
    /// A task failed: its key, and what failed and why.
    Failed(String, String),
    /// The next task to create (if not created yet), and the key waited for.
    Pending(Option<Action>, String),
}

/// The progress of `wanted`, run one after the other: each is created only once the one before
/// it finished. A failure stops the list, unless `tolerate` says the step's failure is fine (the
/// rollback's best-effort steps, as the script's `|| true`).
pub(super) fn ordered(
    tasks: &BTreeMap<String, TaskResult>,
    wanted: &[TaskRequest],
    tolerate: impl Fn(&TaskRequest) -> bool,
) -> Progress {
    for want in wanted {
        match tasks.get(&want.key) {
            None => return Progress::Pending(Some(Action::Task(want.clone())), want.key.clone()),
            Some(t) => match t.phase {
                Some(NodeTaskPhase::Succeeded) => {}
                Some(NodeTaskPhase::Failed) => {
                    if !tolerate(want) {
                        return Progress::Failed(want.key.clone(), describe_failure(want, t));
                    }
                }
                _ => return Progress::Pending(None, want.key.clone()),
            },
        }
    }
    Progress::Done
}

/// `<step> <args> on <node> failed: <message>`.
pub(super) fn describe_failure(want: &TaskRequest, t: &TaskResult) -> String {
    let what = std::iter::once(want.step.as_str())
        .chain(want.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{what} on {} failed: {}",
        want.node,
        t.message.as_deref().unwrap_or("no message")
    )
}

/// The output of a task that succeeded.
pub(super) fn output<'a>(tasks: &'a BTreeMap<String, TaskResult>, want: &TaskRequest) -> &'a str {
    tasks
        .get(&want.key)
        .and_then(|t| t.output.as_deref())
        .unwrap_or_default()
}
