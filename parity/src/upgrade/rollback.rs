//! The rollback: every node the upgrade touched, newest first (the node it failed on, then the
//! nodes it finished, last finished first), one at a time, undoing only what the node entered,
//! in the script's order and with what `BackupConfig` recorded: the old package reinstalled
//! (the satellite, resources and modules taken down first, as best effort), the modules loaded,
//! the satellite started (when it ran before), the resources adjusted, the taint removed and the
//! node uncordoned; a node whose resources were down is rolled back once DRBD reads healthy on
//! it again, so that the next node's undo never takes the last UpToDate replica down. A step
//! that fails, or a node whose rollback outlasts its deadline, fails the upgrade, saying on which
//! node and at which step.

use std::collections::BTreeMap;

use nodewright_api::storageupgrade::{StorageUpgradeSpec, StorageUpgradeStatus, UpgradeState as State};

use super::legacy::state_text;
use super::status;
use super::tasks::{Progress, ordered, output, request};
use super::{
    Action, Change, Decision, Facts, MODULES, PACKAGE, PACKAGE_REVISION, RESYNC_POLL, SATELLITE, TaskRequest,
    TaskResult, quorum,
};

/// The nodes to roll back, newest first: the nodes that entered a per-node state, the one the
/// upgrade is on (or failed on) first, then the others, last touched first.
pub(super) fn touched(status: &StorageUpgradeStatus) -> Vec<String> {
    let mut nodes: Vec<(i64, String)> = status
        .nodes
        .iter()
        .filter(|n| n.history.iter().any(|t| t.phase.is_per_node()))
        .map(|n| {
            let first = n
                .history
                .iter()
                .filter(|t| t.phase.is_per_node())
                .map(|t| status::seconds(&t.at))
                .min()
                .unwrap_or_default();
            (first, n.node.clone())
        })
        .collect();
    let position = |n: &str| status.order.iter().position(|o| o == n).unwrap_or(usize::MAX);
    nodes.sort_by(|a, b| b.0.cmp(&a.0).then(position(&b.1).cmp(&position(&a.1))));
    nodes.into_iter().map(|(_, n)| n).collect()
}

/// One undo step: a task (with the step it undoes, for the failure message, and whether its
/// failure is tolerated), or the Node's taint and cordon.
enum Undo {
    Task(TaskRequest, State, bool),
    Node,
}

pub(super) fn rollback(
    spec: &StorageUpgradeSpec,
    uid: &str,
    status: &StorageUpgradeStatus,
    facts: &Facts,
    tasks: &BTreeMap<String, TaskResult>,
) -> Decision {
    let touched = touched(status);
    let rolling = status.current_node.clone().or_else(|| {
        touched
            .iter()
            .find(|n| status::node(status, n).is_none_or(|s| s.state != State::RolledBack))
            .cloned()
    });
    let Some(node) = rolling else {
        return Decision::enter(None, State::RolledBack, Some("nothing to roll back".into()));
    };
    let ns = status::node(status, &node);
    // A node whose rollback was not started yet (the status was written by an older decision)
    // starts it now.
    if ns.is_none_or(|s| s.state != State::RollingBack) {
        return Decision::enter(Some(&node), State::RollingBack, None);
    }
    let since = ns.and_then(status::node_since).unwrap_or(facts.now);
    let attempt = ns.map_or(1, |s| status::entries(s, State::RollingBack));
    let entered = |s: State| ns.is_some_and(|n| n.history.iter().any(|t| t.phase == s));
    let backup = ns.and_then(|n| n.backup.as_ref());
    let from = backup
        .and_then(|b| b.installed_version.clone())
        .unwrap_or_else(|| spec.from_version.clone());
    let tag = format!("undo{attempt}");
    let req = |step: &str, args: &[&str]| request(uid, &tag, &node, step, args);

    let mut undo = Vec::new();
    if entered(State::InstallPackages) {
        undo.push(Undo::Task(
            req("service-stop", &[SATELLITE]),
            State::InstallPackages,
            true,
        ));
        undo.push(Undo::Task(req("drbd-down", &[]), State::InstallPackages, true));
        for m in MODULES.iter().rev() {
            undo.push(Undo::Task(
                req("module-unload", &[m]),
                State::InstallPackages,
                true,
            ));
        }
        let version = format!("{from}-{PACKAGE_REVISION}");
        undo.push(Undo::Task(
            req("package-install", &[PACKAGE, &version]),
            State::InstallPackages,
            false,
        ));
    }
    if entered(State::UnloadModules) && backup.is_none_or(|b| b.kernel_version.is_some()) {
        for m in MODULES {
            undo.push(Undo::Task(req("module-load", &[m]), State::LoadModules, false));
        }
    }
    if entered(State::StopSatellite) && backup.is_none_or(|b| b.satellite_active) {
        undo.push(Undo::Task(
            req("service-start", &[SATELLITE]),
            State::StartSatellite,
            false,
        ));
    }
    if entered(State::DownResources) {
        undo.push(Undo::Task(req("drbd-adjust", &[]), State::UpResources, false));
    }
    if entered(State::CordonAndTaint) {
        undo.push(Undo::Node);
    }

    let nf = facts.nodes.get(&node).cloned().unwrap_or_default();
    let elapsed = facts.now - since;
    let give_up = |at: State, why: String| {
        let message = format!("rollback failed on {node} at {}: {why}", state_text(at));
        Decision::moving(vec![
            Change {
                node: Some(node.clone()),
                state: State::Failed,
                message: Some(message.clone()),
            },
            Change {
                node: None,
                state: State::Failed,
                message: Some(message),
            },
        ])
    };

    // Walk the undo list: tasks one after the other, then the Node.
    let mut wanted = Vec::new();
    for u in &undo {
        let Undo::Task(t, _, _) = u else { continue };
        wanted.push(t.clone());
    }
    let label_of = |key: &str| {
        undo.iter()
            .find_map(|u| match u {
                Undo::Task(t, s, _) if t.key == key => Some(*s),
                _ => None,
            })
            .unwrap_or(State::RollingBack)
    };
    let tolerated = |t: &TaskRequest| {
        undo.iter()
            .any(|u| matches!(u, Undo::Task(w, _, true) if w.key == t.key))
    };
    let pending = match ordered(tasks, &wanted, tolerated) {
        Progress::Failed(key, why) => return give_up(label_of(&key), why),
        Progress::Pending(create, key) => Some((create, key)),
        Progress::Done => None,
    };
    if let Some((create, key)) = pending {
        if elapsed > facts.rollback_timeout {
            return give_up(
                label_of(&key),
                format!(
                    "timed out after {}s waiting for node task {key}",
                    facts.rollback_timeout
                ),
            );
        }
        let mut d = Decision::wait(format!("rolling {node} back: waiting for node task {key}"));
        d.actions.extend(create);
        d.watching = Some(key);
        return d;
    }
    if undo.iter().any(|u| matches!(u, Undo::Node)) && (nf.upgrade_taint || nf.cordoned) {
        if elapsed > facts.rollback_timeout {
            let at = if nf.upgrade_taint {
                State::RemoveTaint
            } else {
                State::Uncordon
            };
            return give_up(
                at,
                format!(
                    "timed out after {}s waiting for Node {node}",
                    facts.rollback_timeout
                ),
            );
        }
        return Decision::wait(format!("rolling {node} back: taint and cordon off")).with(Action::Node {
            node: node.clone(),
            cordon: nf.cordoned.then_some(false),
            taint: nf.upgrade_taint.then_some(false),
        });
    }

    // A node whose resources were taken down comes back with replicas that resync from their
    // peers: the next node's undo may take its own resources down, so, when another node is
    // still to be undone, this node is rolled back only once DRBD reads healthy here (every
    // resource UpToDate with every peer), read every RESYNC_POLL seconds as WAIT_RESYNC reads it. Without this wait, a two-node site whose
    // second node failed lost its last UpToDate replica when the first node's undo took its
    // resources down during the second's resync (found by the workflow model, verify/).
    let next = touched.iter().find(|n| {
        n.as_str() != node.as_str() && status::node(status, n).is_none_or(|s| s.state != State::RolledBack)
    });
    if entered(State::DownResources) && next.is_some() {
        let poll = elapsed.max(0) / RESYNC_POLL;
        let read = |k: i64| request(uid, &format!("{tag}-resync{k}"), &node, "drbd-status", &[]);
        let newest = (0..=poll).rev().find(|k| tasks.contains_key(&read(*k).key));
        let waiting = match newest {
            None => Some((Some(read(poll)), "waiting for a DRBD read".to_owned())),
            Some(k) => {
                let want = read(k);
                match ordered(tasks, std::slice::from_ref(&want), |_| false) {
                    Progress::Failed(_, why) => return give_up(State::WaitResync, why),
                    Progress::Pending(_, key) => Some((None, format!("waiting for node task {key}"))),
                    Progress::Done => match quorum::drbd(output(tasks, &want)) {
                        Err(e) => return give_up(State::WaitResync, e),
                        Ok(st) if st.unhealthy().is_empty() => None,
                        Ok(st) => Some((
                            (k < poll).then(|| read(poll)),
                            format!("resync not finished: {}", st.unhealthy().join(", ")),
                        )),
                    },
                }
            }
        };
        if let Some((create, why)) = waiting {
            if elapsed > facts.rollback_timeout {
                return give_up(
                    State::WaitResync,
                    format!("timed out after {}s: {why}", facts.rollback_timeout),
                );
            }
            let mut d = Decision::wait(format!("rolling {node} back: {why}"));
            if let Some(t) = create {
                d.watching = Some(t.key.clone());
                d.actions.push(Action::Task(t));
            }
            return d;
        }
    }

    // This node is back on the old version: the next touched node, or the end.
    let mut changes = vec![Change {
        node: Some(node.clone()),
        state: State::RolledBack,
        message: Some(format!("back on {from}")),
    }];
    match next {
        Some(next) => changes.push(Change {
            node: Some(next.clone()),
            state: State::RollingBack,
            message: Some(format!("{node} rolled back")),
        }),
        None => changes.push(Change {
            node: None,
            state: State::RolledBack,
            message: Some(format!("every touched node is back on {}", spec.from_version)),
        }),
    }
    Decision::moving(changes)
}
