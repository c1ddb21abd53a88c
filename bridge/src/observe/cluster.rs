//! The site's `EdgeCluster`: its profile from the legacy cluster state, and every node's health
//! rolled up into the site's conditions and counts (nodes counted, only the unhealthy ones named).

use std::collections::BTreeMap;

use nodewright_api::common::{ConditionStatus, condition_type as ct};
use nodewright_api::edgecluster::{
    EdgeClusterSpec, EdgeClusterStatus, LegacySource, NodeSummary, SiteProfile, StorageBackend, Topology,
    WorkflowModes,
};
use nodewright_kit::clock::time;
use nodewright_parsers as p;

use super::conditions::{Verdict, condition_is, conditions};
use super::{Observation, ObserveConfig, Observed, pascal};
use crate::index::{ClusterState, Diagnostic, Index, NodeEntry};

/// The site's EdgeCluster: its profile from the legacy cluster state, and the health of its nodes
/// rolled up (`out` holds the nodes as just observed).
pub(super) fn cluster(
    index: &Index,
    config: &ObserveConfig,
    out: &Observation,
    now: i64,
    previous: Option<&EdgeClusterStatus>,
) -> Observed<EdgeClusterSpec, EdgeClusterStatus> {
    let state = index.cluster.as_ref();
    let spec = cluster_spec(state, config, out);
    let total = out.nodes.len();
    // Counted rather than listed: a site has thousands of ready nodes and only the ones that are
    // not are named.
    let ready = out
        .nodes
        .values()
        .filter(|n| condition_is(&n.status.conditions, ct::READY, "True"))
        .count();
    let net = names_with(out, ct::NETWORK_DEGRADED);
    let storage = names_with(out, ct::STORAGE_DEGRADED);
    let stale = names_with(out, ct::LEGACY_STALE);
    let parse = names_with(out, ct::PARSE_ERRORS);
    let n = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);

    let ready_c = ready_condition(index, out, ready, total);
    let net_c = degraded(&net, "network", "NetworkDegraded");
    let sto_c = degraded(&storage, "storage", "StorageDegraded");
    let up_c = upgrade_condition(state);
    let stale_c = stale_condition(state, &stale);
    let pe_c = parse_errors_condition(state, &parse);
    let last_hb = index.nodes.values().filter_map(NodeEntry::heartbeat).max();
    let status = EdgeClusterStatus {
        observed_generation: None,
        conditions: conditions(
            previous.map(|p| p.conditions.as_slice()),
            vec![
                (ct::READY, ready_c.0, ready_c.1, ready_c.2),
                (ct::NETWORK_DEGRADED, net_c.0, net_c.1, net_c.2),
                (ct::STORAGE_DEGRADED, sto_c.0, sto_c.1, sto_c.2),
                (ct::UPGRADE_IN_PROGRESS, up_c.0, up_c.1, up_c.2),
                (ct::LEGACY_STALE, stale_c.0, stale_c.1, stale_c.2),
                (ct::PARSE_ERRORS, pe_c.0, pe_c.1, pe_c.2),
            ],
            now,
        ),
        nodes: Some(NodeSummary {
            total: n(total),
            ready: n(ready),
            network_degraded: n(net.len()),
            storage_degraded: n(storage.len()),
        }),
        legacy_version: legacy_versions(out),
        last_legacy_heartbeat: last_hb.map(time),
        // The takeover and divergences are the operator's to write; the bridge's apply leaves
        // them out (empty fields are not serialized), so it never takes them over.
        takeover: None,
        divergences: Vec::new(),
    };
    Observed {
        name: config.cluster_name.clone(),
        spec,
        status,
    }
}

/// The site's profile: its topology from the `cluster` blob (or, without one, from how many nodes
/// there are) and where the legacy objects live.
fn cluster_spec(state: Option<&ClusterState>, config: &ObserveConfig, out: &Observation) -> EdgeClusterSpec {
    let blob = state.and_then(|c| c.cluster.value.as_ref());
    let topology = match blob.map(|b| &b.topology) {
        Some(p::Topology::Multi) => Topology::MultiNode,
        Some(p::Topology::Single) => Topology::SingleNode,
        _ if out.nodes.len() > 1 => Topology::MultiNode,
        _ => Topology::SingleNode,
    };
    EdgeClusterSpec {
        profile: SiteProfile {
            topology,
            storage_backend: StorageBackend::LinstorDrbd,
            operating_system: None,
        },
        expected_nodes: None,
        primary_node: None,
        workflows: WorkflowModes::default(),
        legacy: LegacySource {
            namespace: config.legacy_namespace.clone(),
            daemon_set: config.legacy_daemon_set.clone(),
            stale_after_seconds: i32::try_from(config.stale_after_seconds).unwrap_or(i32::MAX),
        },
    }
}

/// `Ready`: every node ready, naming the ones that are not.
fn ready_condition(index: &Index, out: &Observation, ready: usize, total: usize) -> Verdict {
    let not_ready: Vec<String> = out
        .nodes
        .iter()
        .filter(|(_, n)| !condition_is(&n.status.conditions, ct::READY, "True"))
        .map(|(name, _)| name.clone())
        .collect();
    if index.cluster.is_none() {
        (
            ConditionStatus::False,
            "NoClusterState".to_owned(),
            format!(
                "no ConfigMap {}/{}",
                index.names().namespace,
                index.names().cluster_state
            ),
        )
    } else if total == 0 {
        (
            ConditionStatus::False,
            "NoNodes".to_owned(),
            "no node of the site has been observed".to_owned(),
        )
    } else if not_ready.is_empty() {
        (
            ConditionStatus::True,
            "AllNodesReady".to_owned(),
            format!("{ready} of {total} nodes ready"),
        )
    } else {
        (
            ConditionStatus::False,
            "NodesNotReady".to_owned(),
            format!("{ready} of {total} nodes ready; not ready: {}", list(&not_ready)),
        )
    }
}

/// `NetworkDegraded` or `StorageDegraded` (`reason`) of the site: the nodes `names` that report
/// their `what` degraded.
fn degraded(names: &[String], what: &str, reason: &str) -> Verdict {
    if names.is_empty() {
        (
            ConditionStatus::False,
            format!("No{reason}"),
            format!("no node reports its {what} degraded"),
        )
    } else {
        (
            ConditionStatus::True,
            reason.to_owned(),
            format!("{what} degraded on {}", list(names)),
        )
    }
}

/// `UpgradeInProgress`: the site's storage upgrade, while it has not ended.
fn upgrade_condition(state: Option<&ClusterState>) -> Verdict {
    let upgrade = state.and_then(|c| c.upgrade.value.as_ref());
    match upgrade.filter(|u| !u.state.is_terminal()) {
        Some(u) => (
            ConditionStatus::True,
            pascal(u.state.as_str()),
            format!(
                "storage upgrade {} → {}: {}{}",
                u.from.as_deref().unwrap_or("?"),
                u.to.as_deref().unwrap_or("?"),
                u.state,
                u.node.as_deref().map(|n| format!(" on {n}")).unwrap_or_default()
            ),
        ),
        None => (
            ConditionStatus::False,
            "NotUpgrading".to_owned(),
            "no storage upgrade running".to_owned(),
        ),
    }
}

/// `LegacyStale`: the cluster state is missing, or the nodes `stale` have no recent heartbeat.
fn stale_condition(state: Option<&ClusterState>, stale: &[String]) -> Verdict {
    if state.is_none() {
        (
            ConditionStatus::True,
            "NoClusterState".to_owned(),
            "the legacy cluster state is missing".to_owned(),
        )
    } else if stale.is_empty() {
        (
            ConditionStatus::False,
            "HeartbeatRecent".to_owned(),
            "every node reported recently".to_owned(),
        )
    } else {
        (
            ConditionStatus::True,
            "HeartbeatMissed".to_owned(),
            format!("no recent legacy heartbeat from {}", list(stale)),
        )
    }
}

/// `ParseErrors`: the first diagnostic of the site's own keys, else the nodes `parse` whose
/// legacy state does not parse.
fn parse_errors_condition(state: Option<&ClusterState>, parse: &[String]) -> Verdict {
    let cluster_diags: Vec<&Diagnostic> = state
        .map(|c| {
            let mut v: Vec<&Diagnostic> = [
                c.cluster.error.as_deref(),
                c.members.error.as_deref(),
                c.network_plan.error.as_deref(),
                c.linstor_nodes.error.as_deref(),
                c.migration.error.as_deref(),
                c.upgrade.error.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect();
            v.extend(c.bond_flips.values().filter_map(|f| f.error.as_deref()));
            v
        })
        .unwrap_or_default();
    match (cluster_diags.first(), parse.is_empty()) {
        (Some(d), _) => (
            ConditionStatus::True,
            "MalformedLegacyState".to_owned(),
            format!("{} at {}:{}: {}", d.source, d.line, d.column, d.message),
        ),
        (None, false) => (
            ConditionStatus::True,
            "MalformedLegacyState".to_owned(),
            format!("legacy state of {} does not parse", list(parse)),
        ),
        (None, true) => (
            ConditionStatus::False,
            "NoParseErrors".to_owned(),
            "all legacy state parses".to_owned(),
        ),
    }
}

/// The script versions the nodes last ran, comma-separated, or `None` when none is known.
fn legacy_versions(out: &Observation) -> Option<String> {
    let mut versions: BTreeMap<String, usize> = BTreeMap::new();
    for n in out.nodes.values() {
        if let Some(v) = n
            .status
            .last_legacy_run
            .as_ref()
            .and_then(|r| r.script_version.clone())
        {
            *versions.entry(v).or_default() += 1;
        }
    }
    (!versions.is_empty()).then(|| versions.keys().cloned().collect::<Vec<_>>().join(","))
}

fn names_with(out: &Observation, type_: &str) -> Vec<String> {
    out.nodes
        .iter()
        .filter(|(_, n)| condition_is(&n.status.conditions, type_, "True"))
        .map(|(name, _)| name.clone())
        .collect()
}

fn list(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}
