//! Shadow mode: for a workflow in `shadow`, what the operator would have done from the observed
//! state, compared with what the script did. Every difference is a [`Divergence`], carrying both
//! sides and the facts behind them, for status, a metric and an Event.
//!
//! Pure functions of the bridge's index. They compare at one point in time: the state after the
//! scripts' loops have reported, which is what the operator would act on.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use nodewright_bridge::index::Index;
use nodewright_parsers::NodeRole;

use crate::observed::{node_taints, storage_facts, upgrade_state};
use crate::taints::{self, NodeTaints, StorageFacts};
use crate::takeover::Workflow;

/// What the script did against what the operator would have done.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Divergence {
    /// The workflow.
    pub workflow: Workflow,
    /// The node it concerns, if one.
    pub node: Option<String>,
    /// What the script did.
    pub script: String,
    /// What the operator would have done.
    pub operator: String,
    /// The observed state both decided from.
    pub observed: String,
}

impl Divergence {
    /// A key that identifies the same divergence seen again, so that it is recorded once while it
    /// lasts rather than at every look.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.workflow,
            self.node.as_deref().unwrap_or("-"),
            self.script,
            self.operator
        )
    }
}

fn describe_taints(t: &NodeTaints) -> String {
    let storage = match &t.storage {
        Some(reason) => format!("{}={reason}", taints::STORAGE_TAINT),
        None => format!("no {}", taints::STORAGE_TAINT),
    };
    let label = match &t.ready_label {
        Some(v) => format!("{}={v}", taints::READY_LABEL),
        None => format!("no {} label", taints::READY_LABEL),
    };
    let upgrade = if t.upgrade {
        format!(", {}", taints::UPGRADE_TAINT)
    } else {
        String::new()
    };
    format!("{storage}, {label}{upgrade}")
}

fn describe_facts(f: &StorageFacts) -> String {
    format!(
        "recovering={} satellite={} drbd={} resources={} uptodate={} syncing={}",
        f.recovering,
        f.satellite,
        if f.drbd_readable { "ok" } else { "unknown" },
        f.resources,
        f.uptodate,
        f.syncing
    )
}

/// Taint management: for every node with a report and a Node object, the Node as the script left
/// it against what the operator would make of it.
pub fn taints(index: &Index) -> Vec<Divergence> {
    let upgrade = upgrade_state(index);
    let mut out = Vec::new();
    for (name, entry) in &index.nodes {
        let (Some(facts), Some(current)) = (storage_facts(entry), node_taints(entry)) else {
            continue;
        };
        let actions = taints::decide(&facts, &current, upgrade.clone());
        if actions.is_empty() {
            continue;
        }
        let would: Vec<String> = actions.iter().map(ToString::to_string).collect();
        let mut observed = describe_facts(&facts);
        if let Some(u) = &upgrade {
            let _ = write!(observed, " upgrade={}", u.as_str());
        }
        out.push(Divergence {
            workflow: Workflow::Taints,
            node: Some(name.clone()),
            script: format!("left the node with {}", describe_taints(&current)),
            operator: format!("would {}", would.join("; ")),
            observed,
        });
    }
    out
}

/// How long after a script started a storage upgrade a second start of the same version counts as
/// the same upgrade started twice. The script never starts a version twice on purpose (it skips a
/// version the upgrade key already names), so the window only bounds how long one race is shown.
pub const DOUBLE_START_WINDOW: i64 = 3600;

/// The storage upgrade: the operator starts one upgrade per version and runs one node at a time.
/// Scripts that decided from the same stale snapshot each start their own (the stale-state race,
/// VXR-402); every node logs the start, so two nodes logging a start of the same version within
/// [`DOUBLE_START_WINDOW`] is the double action.
pub fn storage_upgrade(index: &Index, now: i64) -> Vec<Divergence> {
    let mut by_version: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    for (name, entry) in &index.nodes {
        let Some(log) = &entry.log else { continue };
        for (at, to) in &log.upgrade_starts {
            if now - at <= DOUBLE_START_WINDOW {
                by_version
                    .entry(to.as_str())
                    .or_default()
                    .insert(name.as_str(), *at);
            }
        }
    }
    let order = upgrade_order(index);
    let mut out = Vec::new();
    for (to, starters) in by_version {
        if starters.len() < 2 {
            continue;
        }
        let script = format!(
            "{} nodes started the upgrade to {to}, each with itself first: {}",
            starters.len(),
            starters
                .iter()
                .map(|(n, at)| format!("{n} at {at}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let operator = format!(
            "would start one upgrade to {to} and run one node at a time in the order {} (the primary \
             first); the others wait their turn",
            order.join(",")
        );
        let mut observed = String::new();
        if let Some(cluster) = &index.cluster {
            if let Some(u) = &cluster.upgrade.value {
                let _ = write!(
                    observed,
                    "upgrade key (the last writer's): state={} node={} by={} order={}; ",
                    u.state.as_str(),
                    u.node.as_deref().unwrap_or("-"),
                    u.by.as_deref().unwrap_or("-"),
                    u.order.join(",")
                );
            }
            let _ = write!(
                observed,
                "desired-storage-version={}",
                cluster.desired_storage_version.as_deref().unwrap_or("-")
            );
            if let Some(primary) = cluster.cluster.value.as_ref().map(|c| c.primary.as_str()) {
                match index.nodes.get(primary).and_then(|e| e.heartbeat()) {
                    Some(h) => {
                        let _ = write!(observed, "; primary {primary} last reported {}s ago", now - h);
                    }
                    None => {
                        let _ = write!(observed, "; primary {primary} never reported");
                    }
                }
            }
        }
        out.push(Divergence {
            workflow: Workflow::StorageUpgrade,
            node: None,
            script,
            operator,
            observed,
        });
    }
    out
}

/// The order the operator upgrades a site in: the primary first, then the other members by name
/// (nodes still joining are not upgraded).
pub fn upgrade_order(index: &Index) -> Vec<String> {
    let Some(cluster) = &index.cluster else {
        return Vec::new();
    };
    let members = cluster.members.value.as_deref().unwrap_or_default();
    let primary = cluster.cluster.value.as_ref().map(|c| c.primary.as_str());
    let mut order: Vec<String> = members
        .iter()
        .filter(|m| matches!(m.role, NodeRole::Primary | NodeRole::Member))
        .map(|m| m.node.clone())
        .collect();
    order.sort_by_key(|n| (Some(n.as_str()) != primary, n.clone()));
    order
}

/// Every divergence of the workflows `shadowed` names.
pub fn divergences(index: &Index, shadowed: &[Workflow], now: i64) -> Vec<Divergence> {
    let mut out = Vec::new();
    for w in shadowed {
        match w {
            Workflow::Taints => out.extend(taints(index)),
            Workflow::StorageUpgrade => out.extend(storage_upgrade(index, now)),
            _ => {}
        }
    }
    out
}
