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

use nodewright_api::migration::{MigrationPhase as Phase, MigrationSpec, MigrationStatus};

use crate::migration::{self, Outcome};
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
                "{}={}",
                nodewright_parsers::contract::cluster_key::DESIRED_STORAGE_VERSION,
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

/// The migration phases the script passes only when its checks hold, in the order it runs them.
const MIGRATION_ORDER: [Phase; 13] = [
    Phase::Pending,
    Phase::Preflight,
    Phase::PreparingNetwork,
    Phase::JoiningNodes,
    Phase::RegisteringSatellites,
    Phase::CreatingStoragePools,
    Phase::PlacingReplicas,
    Phase::WaitingForResync,
    Phase::Finalizing,
    Phase::Completed,
    Phase::RollingBack,
    Phase::RolledBack,
    Phase::Failed,
];

fn phase_of(state: &str) -> Option<Phase> {
    MIGRATION_ORDER
        .into_iter()
        .find(|p| migration::legacy_phase(*p) == state)
}

/// The migration: every gate the script passed since `last_look` (a phase whose checks read only
/// what the operator observes too: `PREFLIGHT`, `PREPARING_NETWORK`, `WAITING_FOR_RESYNC`),
/// checked against the operator's decision for that phase from the same facts. The script moving
/// on (or rolling back) where the operator would still wait, or the reverse, is a divergence. Phases that read
/// LINSTOR directly on the primary are not compared: the operator learns those facts only through
/// node tasks, which it does not run in shadow.
pub fn migration(index: &Index, facts: &migration::Facts, last_look: i64) -> Vec<Divergence> {
    let Some(cluster) = &index.cluster else {
        return Vec::new();
    };
    let Some(m) = &cluster.migration.value else {
        return Vec::new();
    };
    if m.unknown.get("owner").map(String::as_str) == Some("operator") {
        return Vec::new();
    }
    let (key, source) = nodewright_bridge::index::migration_key(m, cluster.cluster.value.as_ref());
    let Some(source) = source else {
        return Vec::new();
    };
    let Some(history) = index.migration_history.get(&key) else {
        return Vec::new();
    };
    // Transitions of one loop share a second: order them as the script runs its phases.
    let mut seen: Vec<(i64, usize, Phase, Option<String>)> = history
        .iter()
        .filter_map(|t| {
            let p = phase_of(&t.state)?;
            let pos = MIGRATION_ORDER.iter().position(|x| *x == p)?;
            Some((t.at, pos, p, t.message.clone()))
        })
        .collect();
    seen.sort_by_key(|(at, pos, _, _)| (*at, *pos));
    seen.dedup_by_key(|(at, pos, _, _)| (*at, *pos));
    let spec = MigrationSpec {
        owner: nodewright_api::WorkflowOwner::Legacy,
        cluster_ref: nodewright_api::common::ClusterRef { name: String::new() },
        source_node: source.clone(),
        joining_nodes: m.joining.clone(),
        replicas: m.replicas.and_then(|r| i32::try_from(r).ok()),
        rollback: false,
    };
    let mut out = Vec::new();
    for pair in seen.windows(2) {
        let (entered_a, _, a, _) = &pair[0];
        let (at_b, _, b, _) = &pair[1];
        if *at_b < last_look
            || !matches!(
                a,
                Phase::Preflight | Phase::PreparingNetwork | Phase::WaitingForResync
            )
        {
            continue;
        }
        let status = MigrationStatus {
            phase: Some(*a),
            history: vec![nodewright_api::common::PhaseTransition {
                phase: *a,
                at: nodewright_kit::clock::time(*entered_a),
                message: None,
            }],
            ..MigrationStatus::default()
        };
        // Decided as at the moment the script moved on: a timeout counts up to then, not to now.
        let at_decision = migration::Facts {
            now: *at_b,
            ..facts.clone()
        };
        let decision = migration::decide(&spec, "shadow", &status, &at_decision, &BTreeMap::new());
        let operator = match decision.outcome {
            Outcome::Enter(next, _) if next == *b => continue,
            Outcome::Enter(next, Some(why)) => {
                format!("would enter {} instead: {why}", migration::legacy_phase(next))
            }
            Outcome::Enter(next, None) => format!("would enter {} instead", migration::legacy_phase(next)),
            Outcome::Wait(reason) => format!("would stay in {}: {reason}", migration::legacy_phase(*a)),
        };
        out.push(Divergence {
            workflow: Workflow::Migration,
            node: None,
            script: format!(
                "moved the migration from {} to {}",
                migration::legacy_phase(*a),
                migration::legacy_phase(*b)
            ),
            operator,
            observed: describe_migration_facts(facts, &spec),
        });
    }
    out
}

fn describe_migration_facts(facts: &migration::Facts, spec: &MigrationSpec) -> String {
    let mut out = String::new();
    for n in std::iter::once(&spec.source_node).chain(&spec.joining_nodes) {
        let Some(f) = facts.nodes.get(n) else {
            let _ = write!(out, "{n}: no report; ");
            continue;
        };
        let age = f
            .reported_at
            .map_or("never".to_owned(), |at| format!("{}s ago", facts.now - at));
        let member = facts
            .members
            .iter()
            .find(|m| &m.node == n)
            .map_or("not a member", |m| m.role.as_str());
        let _ = write!(
            out,
            "{n}: {member}, reported {age}, net={} vlan={} uptodate={} syncing={}; ",
            if f.net_ok { "ok" } else { "not-ok" },
            f.storage_vlan.as_deref().unwrap_or("-"),
            f.local_uptodate,
            f.syncing
        );
    }
    out.trim_end_matches("; ").to_owned()
}

/// Every divergence of the workflows `shadowed` names. `last_look` is when the caller last
/// looked: transitions before it were compared then.
pub fn divergences(
    index: &Index,
    shadowed: &[Workflow],
    now: i64,
    last_look: i64,
    migration_facts: &migration::Facts,
) -> Vec<Divergence> {
    let mut out = Vec::new();
    for w in shadowed {
        match w {
            Workflow::Taints => out.extend(taints(index)),
            Workflow::StorageUpgrade => out.extend(storage_upgrade(index, now)),
            Workflow::Migration => out.extend(migration(index, migration_facts, last_look)),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use nodewright_bridge::index::LegacyNames;

    const T0: i64 = 1_767_225_690; // 2026-01-01T00:01:30Z

    fn cm(name: &str, data: &[(&str, String)]) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.namespace = Some("kube-system".into());
        cm.data = Some(data.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect());
        cm
    }

    fn status(at: i64) -> String {
        format!(
            "at={at};state=joining;role=joining;net=ok;bond=bond0;bond_mode=active-backup;bond_active=eno1;\
             slaves=eno1:up:0,eno2:up:0;storage_vlan=bond0.100:up;mgmt_vlan=;satellite=active;drbd=ok;\
             resources=0;uptodate=0;syncing=0;taint=none;boot=;upgrade=;drbd_version=9.2.5"
        )
    }

    /// A site where edge-1 runs a migration of edge-2 in, and logged that it left PREFLIGHT at
    /// `T0 + 60`; edge-2 last reported at `edge2_at`.
    fn site(edge2_at: i64) -> Index {
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(
            &cm(
                "vx-rail-cluster-state",
                &[
                    (
                        "cluster",
                        "primary=edge-1;topology=single;replicas=1;storage_pool=pool0;created=100;schema=4".into(),
                    ),
                    (
                        "members",
                        "node,storage_ip,role,joined\nedge-1,10.100.0.11/24,primary,100\nedge-2,10.100.0.12/24,joining,200"
                            .into(),
                    ),
                    (
                        "migration",
                        format!("phase=PREPARING_NETWORK;source=edge-1;joining=edge-2;replicas=2;since={}", T0 + 60),
                    ),
                ],
            ),
            T0 + 90,
        );
        index.apply_config_map(
            &cm(
                "vx-rail-node-edge-1",
                &[(
                    "status",
                    status(T0 + 60)
                        .replace("state=joining;role=joining", "state=ready;role=primary")
                        .replace("resources=0;uptodate=0", "resources=1;uptodate=1"),
                )],
            ),
            T0 + 90,
        );
        index.apply_config_map(
            &cm("vx-rail-node-edge-2", &[("status", status(edge2_at))]),
            T0 + 90,
        );
        let log = "ts=2026-01-01T00:01:30Z level=info node=edge-1 component=migration msg=\"migration phase changed\" from=PENDING to=PREFLIGHT\n\
                   ts=2026-01-01T00:02:30Z level=info node=edge-1 component=migration msg=\"migration phase changed\" from=PREFLIGHT to=PREPARING_NETWORK\n";
        index.feed_log("edge-1", log.as_bytes(), T0 + 90);
        index
    }

    #[test]
    fn a_script_passing_preflight_with_a_joining_node_the_operator_thinks_dead_is_a_divergence() {
        let index = site(T0 - 1000);
        let facts = crate::observed::migration_facts(&index, T0 + 90, 300, 1800);
        let found = migration(&index, &facts, T0 + 30);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].script,
            "moved the migration from PREFLIGHT to PREPARING_NETWORK"
        );
        assert_eq!(
            found[0].operator,
            "would stay in PREFLIGHT: preflight waiting: edge-2(no-heartbeat)"
        );
        assert!(
            found[0].observed.contains("edge-2: joining, reported 1090s ago"),
            "{}",
            found[0].observed
        );
        // Compared once: a later look does not report it again.
        assert!(migration(&index, &facts, T0 + 90).is_empty());
    }

    #[test]
    fn a_script_passing_preflight_with_every_node_alive_agrees_with_the_operator() {
        let index = site(T0 + 50);
        let facts = crate::observed::migration_facts(&index, T0 + 90, 300, 1800);
        assert_eq!(migration(&index, &facts, T0 + 30), vec![]);
    }
}
