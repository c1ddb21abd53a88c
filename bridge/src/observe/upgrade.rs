//! The `StorageUpgrade` the legacy script runs (`owner: legacy`), from the cluster state's
//! `upgrade` key, the nodes' annotations and the index's history: per-node states and the
//! `ConcurrentNodes` condition that catches two nodes upgrading at once.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use nodewright_api::common::{ClusterRef, ConditionStatus, WorkflowOwner, set_condition};
use nodewright_api::storageupgrade::{
    NodeUpgradeStatus, StorageUpgradeSpec, StorageUpgradeStatus, UpgradeState,
};
use nodewright_kit::clock::time;
use nodewright_parsers as p;

use super::workflow::{dedupe, history, workflow_conditions};
use super::{Observation, ObserveConfig, Observed, i64_of};
use crate::convert::upgrade_state;
use crate::index::Index;

/// The `StorageUpgrade` the legacy `upgrade` key describes, named by when it started; `None`, with
/// a sentence in `unrepresentable` where the key cannot be a valid object.
pub(super) fn upgrade(
    index: &Index,
    config: &ObserveConfig,
    now: i64,
    previous: Option<&Observation>,
    unrepresentable: &mut Vec<String>,
) -> Option<Observed<StorageUpgradeSpec, StorageUpgradeStatus>> {
    let u = index.cluster.as_ref()?.upgrade.value.as_ref()?;
    let started = u.started.or(u.since)?;
    let name = format!("legacy-upgrade-{started}");
    let (Some(from), Some(to)) = (u.from.clone(), u.to.clone()) else {
        unrepresentable.push(format!("{name}: the legacy upgrade has no from or to version"));
        return None;
    };
    if from == to {
        unrepresentable.push(format!("{name}: from and to are both {to}"));
        return None;
    }
    let Some(state) = upgrade_state(&u.state) else {
        unrepresentable.push(format!("{name}: unknown upgrade state {}", u.state));
        return None;
    };
    let order = dedupe(&u.order);
    let nodes = node_upgrades(index, u, started, &order, &to, state);
    let concurrent = concurrent_nodes(index, u, &to, state);
    let prev = previous
        .and_then(|p| p.upgrades.iter().find(|o| o.name == name))
        .map(|o| o.status.conditions.as_slice());
    let mut conds = workflow_conditions(
        prev,
        state.is_terminal().then(|| u.state.as_str()),
        u.msg.as_deref(),
        now,
    );
    conds.extend(concurrency_condition(prev, &concurrent, state, now));
    Some(Observed {
        name,
        spec: StorageUpgradeSpec {
            owner: WorkflowOwner::Legacy,
            cluster_ref: ClusterRef {
                name: config.cluster_name.clone(),
            },
            from_version: from,
            to_version: to,
            node_order: order,
            rollback: false,
        },
        status: StorageUpgradeStatus {
            observed_generation: None,
            state: Some(state),
            // The legacy blob's own fields (since, order, msg, failed node) are not shown yet, so
            // that the bridge's observation stays what it was.
            since: None,
            current_node: u
                .node
                .clone()
                .filter(|_| state.is_per_node() || state == UpgradeState::RollingBack),
            order: Vec::new(),
            progress: None,
            message: None,
            nodes,
            failed_state: u.failed_state.as_ref().and_then(upgrade_state),
            failed_node: None,
            started_at: u.started.map(|t| time(i64_of(t))),
            finished_at: u.finished.map(|t| time(i64_of(t))),
            conditions: conds,
        },
    })
}

/// Each node of the upgrade's `order`, with its state and its history (the upgrade to `to` that
/// started at `started` and is in `state`).
fn node_upgrades(
    index: &Index,
    u: &p::Upgrade,
    started: u64,
    order: &[String],
    to: &str,
    state: UpgradeState,
) -> Vec<NodeUpgradeStatus> {
    let transitions = index.upgrade_history.get(&started).cloned().unwrap_or_default();
    let mut nodes = Vec::new();
    for node in order {
        let annotation = index
            .nodes
            .get(node)
            .and_then(|e| e.object.as_ref())
            .and_then(|o| o.upgrade_state.value.as_ref())
            .filter(|a| a.to == to);
        let node_state = if u.rolled.contains(node) {
            Some(UpgradeState::RolledBack)
        } else if u.done.contains(node) {
            Some(UpgradeState::Completed)
        } else if u.node.as_deref() == Some(node.as_str()) && state.is_per_node() {
            Some(state)
        } else {
            annotation.and_then(|a| upgrade_state(&a.state))
        };
        let node_history = history(
            transitions
                .iter()
                .filter(|t| t.node.as_deref() == Some(node.as_str()))
                .cloned(),
            p::UpgradeState::KNOWN,
            |s| upgrade_state(&p::UpgradeState::from_text(s)),
        );
        nodes.push(NodeUpgradeStatus {
            node: node.clone(),
            state: node_state.unwrap_or(UpgradeState::Pending),
            since: None,
            boot_id: None,
            step: None,
            backup: None,
            history: node_history,
        });
    }
    nodes
}

/// Nodes upgrading at once: the stale-state race. Every node whose annotation shows a per-node
/// state of this upgrade (to `to`, in `state`) while the upgrade has not ended.
fn concurrent_nodes(index: &Index, u: &p::Upgrade, to: &str, state: UpgradeState) -> Vec<String> {
    let mut concurrent: Vec<String> = index
        .nodes
        .iter()
        .filter(|(_, e)| {
            e.object
                .as_ref()
                .and_then(|o| o.upgrade_state.value.as_ref())
                .filter(|a| a.to == to)
                .and_then(|a| upgrade_state(&a.state))
                .is_some_and(UpgradeState::is_per_node)
        })
        .map(|(n, _)| n.clone())
        .collect();
    if let Some(n) = &u.node
        && state.is_per_node()
        && !concurrent.contains(n)
    {
        concurrent.push(n.clone());
    }
    concurrent
}

/// The `ConcurrentNodes` condition, keeping its transition time from `prev`.
fn concurrency_condition(
    prev: Option<&[Condition]>,
    concurrent: &[String],
    state: UpgradeState,
    now: i64,
) -> Vec<Condition> {
    let mut with_concurrency = prev.map(<[Condition]>::to_vec).unwrap_or_default();
    with_concurrency.retain(|c| c.type_ == "ConcurrentNodes");
    let concurrency = if concurrent.len() > 1 && !state.is_terminal() {
        (
            ConditionStatus::True,
            "MoreThanOneNodeUpgrading",
            format!("nodes upgrading at the same time: {}", concurrent.join(", ")),
        )
    } else {
        (
            ConditionStatus::False,
            "OneNodeAtATime",
            "at most one node upgrading".to_owned(),
        )
    };
    set_condition(
        &mut with_concurrency,
        "ConcurrentNodes",
        concurrency.0,
        concurrency.1,
        &concurrency.2,
        None,
        &time(now),
    );
    with_concurrency
}
