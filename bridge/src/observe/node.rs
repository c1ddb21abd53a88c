//! One node's `EdgeNode`: what the legacy script reports of the host (bond, VLANs, LINSTOR
//! satellite, DRBD resources, managed taints, boot recovery), its last run and its parse
//! diagnostics. Its conditions are computed in `node_health`.

use k8s_openapi::api::core::v1::Taint;
use nodewright_api::common::ClusterRef;
use nodewright_api::edgenode::{
    BondSlaveStatus, BondStatus, BootRecoveryStatus, DrbdResourceStatus, EdgeNodeSpec, EdgeNodeStatus,
    LegacyRun, LinkState, ManagedTaint, ParseDiagnostic, SatelliteState, SatelliteStatus, VlanPurpose,
    VlanStatus,
};
use nodewright_api::from_host::drbd_resource;
use nodewright_kit::clock::time;
use nodewright_parsers as p;
use nodewright_parsers::contract;

use super::node_health::node_conditions;
use super::{ObserveConfig, Observed, i64_of};
use crate::convert::{bond_mode_named, boot_recovery_phase, taint_effect};
use crate::index::{Diagnostic, Index, NodeEntry};

/// Whether a node has anything to observe: a Node or a node ConfigMap. A node with only a log is a
/// pod whose node the watches have not delivered yet.
pub(super) fn observable(entry: &NodeEntry) -> bool {
    entry.object.is_some() || entry.config_map.is_some()
}

/// A node's EdgeNode, as observed.
pub(super) fn observed_node(
    name: &str,
    config: &ObserveConfig,
    status: EdgeNodeStatus,
) -> Observed<EdgeNodeSpec, EdgeNodeStatus> {
    Observed {
        name: name.to_owned(),
        spec: EdgeNodeSpec {
            node_name: name.to_owned(),
            cluster_ref: Some(ClusterRef {
                name: config.cluster_name.clone(),
            }),
            // A person's or the bootstrap workflow's: the bridge's apply never names it.
            host: None,
        },
        status,
    }
}

/// A node's EdgeNode status: what the legacy script reports of its host (bond, VLANs, satellite,
/// DRBD, taints, boot recovery), its last run, its parse diagnostics, and its health conditions.
pub(super) fn node_status(
    index: &Index,
    name: &str,
    entry: &NodeEntry,
    config: &ObserveConfig,
    now: i64,
    previous: Option<&EdgeNodeStatus>,
) -> EdgeNodeStatus {
    let cm = entry.config_map.as_ref();
    let status = cm.and_then(|c| c.status.value.as_ref());
    let object = entry.object.as_ref();

    let mut out = EdgeNodeStatus::default();
    if let Some(s) = status {
        let members = index.cluster.as_ref().and_then(|c| c.members.value.as_ref());
        let storage_ip = members
            .and_then(|m| m.iter().find(|m| m.node == name))
            .map(|m| m.storage_ip.as_str());
        out.bonds.extend(bond(s));
        out.vlans.extend(
            s.storage_vlan
                .as_ref()
                .and_then(|v| vlan(v, VlanPurpose::StorageReplication, storage_ip)),
        );
        out.vlans.extend(
            s.mgmt_vlan
                .as_ref()
                .and_then(|v| vlan(v, VlanPurpose::Management, None)),
        );
    }
    out.linstor_satellite = satellite(index, name, status);
    if let Some(d) = cm.and_then(|c| c.drbd_status.value.as_ref()) {
        out.drbd_resources = drbd_resources(d);
    }
    super::facts::merge(&mut out, index.node_facts(name), now);
    let taints = object.map(|o| o.taints.as_slice()).unwrap_or_default();
    out.managed_taints = managed_taints(taints);
    out.boot_recovery = cm
        .and_then(|c| c.boot_recovery.value.as_ref())
        .and_then(boot_recovery);
    let hb = entry.heartbeat();
    out.last_legacy_run = last_legacy_run(entry, hb);
    let diags = diagnostics(entry, now, config.stale_after_seconds);
    out.parse_diagnostics = diags.iter().take(10).map(to_parse_diagnostic).collect();
    out.conditions = node_conditions(
        entry,
        hb,
        &diags,
        config,
        now,
        previous.map(|p| p.conditions.as_slice()),
    );
    out
}

/// The node's bond as the script reports it, unless its mode is one the API does not know.
fn bond(s: &p::NodeStatus) -> Option<BondStatus> {
    let slaves: Vec<BondSlaveStatus> = s
        .slaves
        .iter()
        .map(|sl| BondSlaveStatus {
            name: sl.interface.clone(),
            link_state: link_state(sl.mii.as_str()),
            link_failures: i64_of(sl.link_failures),
            speed_mbps: None,
        })
        .collect();
    let mode = bond_mode_named(&s.bond_mode)?;
    let link = if slaves.iter().any(|sl| sl.link_state == LinkState::Up) {
        LinkState::Up
    } else if slaves.is_empty() {
        LinkState::Unknown
    } else {
        LinkState::Down
    };
    Some(BondStatus {
        name: s.bond.clone(),
        mode,
        active_slave: s.bond_active.clone(),
        link_state: link,
        slaves,
    })
}

/// The Node's taints under the legacy prefix, the ones the script manages.
fn managed_taints(taints: &[Taint]) -> Vec<ManagedTaint> {
    taints
        .iter()
        .filter(|t| t.key.starts_with(contract::PREFIX))
        .filter_map(|t| {
            Some(ManagedTaint {
                key: t.key.clone(),
                value: t.value.clone(),
                effect: taint_effect(&p::TaintEffect::from_text(&t.effect))?,
                since: t.time_added.clone(),
            })
        })
        .collect()
}

/// The script's last run on the node: from the `last-run` annotation, else from the heartbeat
/// `hb`.
fn last_legacy_run(entry: &NodeEntry, hb: Option<i64>) -> Option<LegacyRun> {
    let last_run = entry.object.as_ref().and_then(|o| o.last_run.value.as_ref());
    match (last_run, hb) {
        (Some(r), _) => Some(LegacyRun {
            time: time(r.ts.unix_seconds().unwrap_or(0)),
            script_version: Some(r.version.clone()),
            outcome: Some(r.outcome.as_str().to_owned()),
        }),
        (None, Some(t)) => Some(LegacyRun {
            time: time(t),
            script_version: entry.config_map.as_ref().and_then(|c| c.script_version.clone()),
            outcome: None,
        }),
        (None, None) => None,
    }
}

fn diagnostics(entry: &NodeEntry, now: i64, stale_after: i64) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some(cm) = &entry.config_map {
        out.extend(cm.heartbeat.error.as_deref().cloned());
        out.extend(cm.status.error.as_deref().cloned());
        out.extend(cm.drbd_status.error.as_deref().cloned());
        out.extend(cm.boot_recovery.error.as_deref().cloned());
    }
    if let Some(o) = &entry.object {
        out.extend(o.last_run.error.as_deref().cloned());
        out.extend(o.upgrade_state.error.as_deref().cloned());
        out.extend(o.storage_ready.error.as_deref().cloned());
    }
    if let Some(d) = entry.log.as_ref().and_then(|l| l.last_unknown.as_ref())
        && now - d.first_seen < stale_after
    {
        out.push(d.clone());
    }
    out.sort_by(|a, b| b.first_seen.cmp(&a.first_seen).then(a.source.cmp(&b.source)));
    out
}

fn to_parse_diagnostic(d: &Diagnostic) -> ParseDiagnostic {
    ParseDiagnostic {
        source: d.source.clone(),
        line: i64::try_from(d.line).unwrap_or(i64::MAX).max(1),
        column: i64::try_from(d.column).unwrap_or(i64::MAX).max(1),
        message: d.message.clone(),
        first_seen: time(d.first_seen),
    }
}

fn link_state(text: &str) -> LinkState {
    match text {
        "up" => LinkState::Up,
        "down" | "lowerlayerdown" | "absent" => LinkState::Down,
        _ => LinkState::Unknown,
    }
}

fn vlan(v: &p::VlanStatus, purpose: VlanPurpose, address: Option<&str>) -> Option<VlanStatus> {
    let (parent, id) = v.interface.rsplit_once('.')?;
    let id: i32 = id.parse().ok().filter(|id| (1..=4094).contains(id))?;
    Some(VlanStatus {
        name: v.interface.clone(),
        id,
        parent: parent.to_owned(),
        purpose,
        link_state: link_state(&v.operstate),
        addresses: address.map(str::to_owned).into_iter().collect(),
    })
}

fn satellite(index: &Index, node: &str, status: Option<&p::NodeStatus>) -> Option<SatelliteStatus> {
    let table = index
        .cluster
        .as_ref()
        .and_then(|c| c.linstor_nodes.value.as_ref());
    let state = match table {
        Some(rows) => match rows.iter().find(|r| r.name == node) {
            Some(row) => {
                let s = row.state.as_deref().unwrap_or("");
                if s.eq_ignore_ascii_case("online") {
                    SatelliteState::Online
                } else if s.to_ascii_uppercase().contains("VERSION MISMATCH") {
                    SatelliteState::VersionMismatch
                } else if s.eq_ignore_ascii_case("offline") || s.to_ascii_uppercase().starts_with("OFFLINE") {
                    SatelliteState::Offline
                } else if s.eq_ignore_ascii_case("connected") {
                    SatelliteState::Connected
                } else {
                    SatelliteState::Unknown
                }
            }
            None => SatelliteState::Unregistered,
        },
        None => match status.map(|s| s.satellite.as_str()) {
            Some("active") => SatelliteState::Unknown,
            Some(_) => SatelliteState::Offline,
            None => return None,
        },
    };
    Some(SatelliteStatus {
        state,
        version: None,
        storage_pools: Vec::new(),
    })
}

/// The script's report of `drbdadm status`, read as the agent reads its own (one conversion).
fn drbd_resources(status: &p::DrbdStatus) -> Vec<DrbdResourceStatus> {
    status.resources.iter().map(drbd_resource).collect()
}

fn boot_recovery(b: &p::BootRecovery) -> Option<BootRecoveryStatus> {
    Some(BootRecoveryStatus {
        phase: boot_recovery_phase(&b.phase)?,
        boot_time: b.boot_time.map(|t| time(i64_of(t))),
        phase_since: b.since.map(|t| time(i64_of(t))),
        message: b.msg.clone(),
    })
}
