//! Pure status computation: from the [`Index`] and the time, the status of every Nodewright object
//! the bridge maintains — `EdgeCluster`, one `EdgeNode` per node, and the workflow objects the
//! legacy script is running (`StorageUpgrade`, `Migration`, `BondFlip`, with `owner: legacy`) —
//! and the health rollup, node up to cluster.
//!
//! No I/O and no clock: `now` is an argument, and the previous observation is passed in so that a
//! condition keeps its `lastTransitionTime` while its status does not change. Computing twice from
//! the same index and time gives the same result, so the writer can skip everything unchanged.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use nodewright_api::bondflip::{BondFlipPhase, BondFlipSpec, BondFlipStatus, BondState, BondTarget};
use nodewright_api::common::{
    ClusterRef, ConditionStatus, PhaseTransition, WorkflowOwner, condition_type as ct, set_condition,
};
use nodewright_api::edgecluster::{
    EdgeClusterSpec, EdgeClusterStatus, LegacySource, NodeSummary, SiteProfile, StorageBackend, Topology,
    WorkflowModes,
};
use nodewright_api::edgenode::{
    BondSlaveStatus, BondStatus, BootRecoveryStatus, DrbdPeerStatus, DrbdResourceStatus, EdgeNodeSpec,
    EdgeNodeStatus, LegacyRun, LinkState, ManagedTaint, ParseDiagnostic, SatelliteState, SatelliteStatus,
    VlanPurpose, VlanStatus,
};
use nodewright_api::migration::{MigrationSpec, MigrationStatus};
use nodewright_api::storageupgrade::{
    NodeUpgradeStatus, StorageUpgradeSpec, StorageUpgradeStatus, UpgradeState,
};
use nodewright_parsers as p;
use nodewright_parsers::contract;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::convert::{bond_mode_named, boot_recovery_phase, migration_phase, taint_effect, upgrade_state};
use crate::index::{Diagnostic, Dirty, Index, NodeEntry, Transition};

/// What the status computation needs to know besides the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObserveConfig {
    /// Name of the `EdgeCluster` for this site.
    pub cluster_name: String,
    /// Namespace of the legacy objects (recorded in the `EdgeCluster` spec).
    pub legacy_namespace: String,
    /// Name of the legacy DaemonSet (recorded in the `EdgeCluster` spec).
    pub legacy_daemon_set: String,
    /// A node whose last legacy heartbeat is older than this many seconds is `LegacyStale`.
    pub stale_after_seconds: i64,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        ObserveConfig {
            cluster_name: "site".to_owned(),
            legacy_namespace: contract::NAMESPACE.to_owned(),
            legacy_daemon_set: contract::DAEMON_SET.to_owned(),
            stale_after_seconds: 300,
        }
    }
}

/// One object the bridge maintains: its spec (intent, or for `owner: legacy` workflows what the
/// script is doing) and its observed status.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Observed<S, T> {
    /// The object's name (in the bridge's namespace).
    pub name: String,
    /// Its spec.
    pub spec: S,
    /// Its status.
    pub status: T,
}

/// Everything the bridge computed from one state of the index.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Observation {
    /// The site, when the legacy cluster state exists or any node was seen.
    pub cluster: Option<Observed<EdgeClusterSpec, EdgeClusterStatus>>,
    /// One per node, by node name.
    pub nodes: BTreeMap<String, Observed<EdgeNodeSpec, EdgeNodeStatus>>,
    /// Storage upgrades the legacy script runs or ran.
    pub upgrades: Vec<Observed<StorageUpgradeSpec, StorageUpgradeStatus>>,
    /// Migrations the legacy script runs or ran.
    pub migrations: Vec<Observed<MigrationSpec, MigrationStatus>>,
    /// Bond flips requested of the legacy script.
    pub bond_flips: Vec<Observed<BondFlipSpec, BondFlipStatus>>,
    /// Legacy state the bridge saw but cannot represent as a valid object, one sentence each.
    pub unrepresentable: Vec<String>,
}

use nodewright_kit::clock::time;

fn rfc3339(unix: i64) -> String {
    time(unix).0.to_string()
}

/// `WAIT_RESYNC` → `WaitResync`: the legacy spelling to the API's enum spelling.
fn pascal(screaming: &str) -> String {
    screaming
        .split(['_', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase())
                .unwrap_or_default()
        })
        .collect()
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Computes every status from the index at `now`. `previous` is the last observation, whose
/// condition transition times are kept where a condition's status did not change.
pub fn observe(
    index: &Index,
    config: &ObserveConfig,
    now: i64,
    previous: Option<&Observation>,
) -> Observation {
    let mut out = previous.cloned().unwrap_or_default();
    observe_changed(index, config, now, &mut out, &Dirty::everything());
    out
}

/// Brings `last` up to date at `now` where the index changed: the nodes `dirty` names (all of
/// them when `dirty.all`) are computed again, the others keep their status; the site and the
/// workflow objects are always computed again (they are few, and the site rolls up every node).
/// Equal to [`observe`] when every node that changed is named, which is what a large site needs:
/// one changed node costs one node's computation, not the whole site's.
pub fn observe_changed(
    index: &Index,
    config: &ObserveConfig,
    now: i64,
    last: &mut Observation,
    dirty: &Dirty,
) {
    if dirty.all {
        // Every node computed again, each from its previous status; a node the index no longer
        // shows goes with what is left of `before`.
        let mut before = std::mem::take(&mut last.nodes);
        for (name, entry) in index.nodes.iter().filter(|(_, e)| observable(e)) {
            let prev = before.remove(name);
            let status = node_status(index, name, entry, config, now, prev.as_ref().map(|o| &o.status));
            last.nodes
                .insert(name.clone(), observed_node(name, config, status));
        }
    } else {
        // Only the nodes named: the others stay where they are, untouched, so that a change to one
        // node of thousands costs that node (and the site's roll-up below). A node named that the
        // index no longer shows has left.
        for name in &dirty.nodes {
            match index.nodes.get(name).filter(|e| observable(e)) {
                Some(entry) => {
                    let prev = last.nodes.remove(name);
                    let status =
                        node_status(index, name, entry, config, now, prev.as_ref().map(|o| &o.status));
                    last.nodes
                        .insert(name.clone(), observed_node(name, config, status));
                }
                None => {
                    last.nodes.remove(name);
                }
            }
        }
    }
    let previous = Observation {
        cluster: last.cluster.take(),
        nodes: BTreeMap::new(),
        upgrades: std::mem::take(&mut last.upgrades),
        migrations: std::mem::take(&mut last.migrations),
        bond_flips: std::mem::take(&mut last.bond_flips),
        unrepresentable: Vec::new(),
    };
    let previous = Some(&previous);
    last.unrepresentable.clear();
    if let Some(u) = upgrade(index, config, now, previous, &mut last.unrepresentable) {
        last.upgrades.push(u);
    }
    if let Some(m) = migration(index, config, now, previous, &mut last.unrepresentable) {
        last.migrations.push(m);
    }
    last.bond_flips = bond_flips(index, now, previous, &mut last.unrepresentable);
    if index.cluster.is_some() || !last.nodes.is_empty() {
        let prev = previous.and_then(|p| p.cluster.as_ref()).map(|c| &c.status);
        last.cluster = Some(cluster(index, config, last, now, prev));
    }
}

/// Whether a node has anything to observe: a Node or a node ConfigMap. A node with only a log is a
/// pod whose node the watches have not delivered yet.
fn observable(entry: &NodeEntry) -> bool {
    entry.object.is_some() || entry.config_map.is_some()
}

/// A node's EdgeNode, as observed.
fn observed_node(
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
        },
        status,
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

/// Keeps transition times from the previous conditions, then sets each of `wanted`.
fn conditions(
    previous: Option<&[Condition]>,
    wanted: Vec<(&str, ConditionStatus, String, String)>,
    now: i64,
) -> Vec<Condition> {
    let mut list: Vec<Condition> = previous.map(<[Condition]>::to_vec).unwrap_or_default();
    let types: BTreeSet<&str> = wanted.iter().map(|w| w.0).collect();
    list.retain(|c| types.contains(c.type_.as_str()));
    let now = time(now);
    for (type_, status, reason, message) in &wanted {
        set_condition(&mut list, type_, *status, reason, message, None, &now);
    }
    list.sort_by_key(|c| wanted.iter().position(|w| w.0 == c.type_));
    list
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

fn drbd_resources(status: &p::DrbdStatus) -> Vec<DrbdResourceStatus> {
    status
        .resources
        .iter()
        .map(|r| {
            let device = r.devices.first();
            DrbdResourceStatus {
                name: r.name.clone(),
                role: r.role.clone(),
                disk_state: device
                    .map(|d| d.disk.clone())
                    .unwrap_or_else(|| "Unknown".to_owned()),
                quorum: device.and_then(|d| d.quorum),
                suspended: r.suspended.as_deref().is_some_and(|s| s != "no"),
                peers: r
                    .connections
                    .iter()
                    .map(|c| {
                        let pd = c.peer_devices.first();
                        DrbdPeerStatus {
                            node: c.name.clone(),
                            connection: c.connection.clone().unwrap_or_else(|| "Connected".to_owned()),
                            role: c.role.clone().unwrap_or_else(|| "Unknown".to_owned()),
                            peer_disk: pd
                                .and_then(|d| d.peer_disk.clone())
                                .unwrap_or_else(|| "Unknown".to_owned()),
                            replication: pd
                                .and_then(|d| d.replication.clone())
                                .unwrap_or_else(|| "Established".to_owned()),
                            sync_percent: pd
                                .and_then(|d| d.done_percent)
                                .map(|p| p.clamp(0.0, 100.0) as i32),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

fn boot_recovery(b: &p::BootRecovery) -> Option<BootRecoveryStatus> {
    Some(BootRecoveryStatus {
        phase: boot_recovery_phase(&b.phase)?,
        boot_time: b.boot_time.map(|t| time(i64_of(t))),
        phase_since: b.since.map(|t| time(i64_of(t))),
        message: b.msg.clone(),
    })
}

fn network_condition(status: Option<&p::NodeStatus>) -> (ConditionStatus, String, String) {
    let Some(s) = status else {
        return (
            ConditionStatus::Unknown,
            "NoLegacyStatus".into(),
            "the legacy script has not reported this node's network".into(),
        );
    };
    let down: Vec<&str> = s
        .slaves
        .iter()
        .filter(|sl| sl.mii != p::MiiState::Up)
        .map(|sl| sl.interface.as_str())
        .collect();
    if s.net == p::NetHealth::Ok {
        // The script calls a bond with one slave left healthy; the site has lost redundancy,
        // which is what a person wants to know before the second cable goes.
        if !down.is_empty() {
            return (
                ConditionStatus::True,
                "SlaveDown".into(),
                format!(
                    "{}: {} without carrier; traffic continues on the other slaves",
                    s.bond,
                    down.join(", ")
                ),
            );
        }
        return (
            ConditionStatus::False,
            "NetworkHealthy".into(),
            format!("{} and its VLANs are up", s.bond),
        );
    }
    let (reason, message) = if !s.slaves.is_empty() && down.len() == s.slaves.len() {
        ("NoSlaveCarrier", format!("no slave of {} has carrier", s.bond))
    } else if s.storage_vlan.as_ref().is_none_or(|v| v.operstate != "up") {
        let v = s.storage_vlan.as_ref().map_or("absent".to_owned(), |v| {
            format!("{} is {}", v.interface, v.operstate)
        });
        ("StorageVlanDown", format!("storage VLAN: {v}"))
    } else if !down.is_empty() {
        (
            "SlaveDown",
            format!("{}: {} without carrier", s.bond, down.join(", ")),
        )
    } else {
        (
            "NetworkDegraded",
            format!("the legacy script reports {} degraded", s.bond),
        )
    };
    (ConditionStatus::True, reason.into(), message)
}

fn storage_condition(
    status: Option<&p::NodeStatus>,
    taints: &[k8s_openapi::api::core::v1::Taint],
) -> (ConditionStatus, String, String) {
    let taint = taints
        .iter()
        .find(|t| t.key == contract::taint::STORAGE_NOT_READY)
        .map(|t| t.value.clone().unwrap_or_default());
    let reason_of = |r: &str| match r {
        "boot-recovery" => "BootRecovery",
        "satellite-down" => "SatelliteDown",
        "drbd-unknown" => "DrbdStatusUnknown",
        "resync" => "Resyncing",
        "not-uptodate" => "NotUpToDate",
        _ => "StorageNotReady",
    };
    if let Some(t) = &taint {
        return (
            ConditionStatus::True,
            reason_of(t).into(),
            format!("tainted vx-rail.io/storage-not-ready={t}"),
        );
    }
    let Some(s) = status else {
        return (
            ConditionStatus::Unknown,
            "NoLegacyStatus".into(),
            "the legacy script has not reported this node's storage".into(),
        );
    };
    if let Some(r) = &s.taint {
        return (
            ConditionStatus::True,
            reason_of(r.as_str()).into(),
            format!("the legacy script reports storage not ready: {r}"),
        );
    }
    if s.drbd != p::DrbdHealth::Ok {
        return (
            ConditionStatus::True,
            "DrbdStatusUnknown".into(),
            "drbdadm status failed".into(),
        );
    }
    if s.uptodate < s.resources {
        return (
            ConditionStatus::True,
            if s.syncing { "Resyncing" } else { "NotUpToDate" }.into(),
            format!("{} of {} DRBD resources UpToDate", s.uptodate, s.resources),
        );
    }
    let member = matches!(s.role, p::NodeRole::Primary | p::NodeRole::Member);
    if member && s.satellite != "active" {
        return (
            ConditionStatus::True,
            "SatelliteDown".into(),
            format!("linstor-satellite is {}", s.satellite),
        );
    }
    (
        ConditionStatus::False,
        "StorageHealthy".into(),
        format!("{} of {} DRBD resources UpToDate", s.uptodate, s.resources),
    )
}

fn node_status(
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
    let members = index.cluster.as_ref().and_then(|c| c.members.value.as_ref());
    let storage_ip = members
        .and_then(|m| m.iter().find(|m| m.node == name))
        .map(|m| m.storage_ip.as_str());

    let mut out = EdgeNodeStatus::default();
    if let Some(s) = status {
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
        if let Some(mode) = bond_mode_named(&s.bond_mode) {
            let link = if slaves.iter().any(|sl| sl.link_state == LinkState::Up) {
                LinkState::Up
            } else if slaves.is_empty() {
                LinkState::Unknown
            } else {
                LinkState::Down
            };
            out.bonds.push(BondStatus {
                name: s.bond.clone(),
                mode,
                active_slave: s.bond_active.clone(),
                link_state: link,
                slaves,
            });
        }
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
    let taints = object.map(|o| o.taints.as_slice()).unwrap_or_default();
    out.managed_taints = taints
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
        .collect();
    out.boot_recovery = cm
        .and_then(|c| c.boot_recovery.value.as_ref())
        .and_then(boot_recovery);
    let last_run = object.and_then(|o| o.last_run.value.as_ref());
    let hb = entry.heartbeat();
    out.last_legacy_run = match (last_run, hb) {
        (Some(r), _) => Some(LegacyRun {
            time: time(r.ts.unix_seconds().unwrap_or(0)),
            script_version: Some(r.version.clone()),
            outcome: Some(r.outcome.as_str().to_owned()),
        }),
        (None, Some(t)) => Some(LegacyRun {
            time: time(t),
            script_version: cm.and_then(|c| c.script_version.clone()),
            outcome: None,
        }),
        (None, None) => None,
    };
    let diags = diagnostics(entry, now, config.stale_after_seconds);
    out.parse_diagnostics = diags.iter().take(10).map(to_parse_diagnostic).collect();

    // Health.
    let (net_status, net_reason, net_msg) = network_condition(status);
    let (sto_status, sto_reason, sto_msg) = storage_condition(status, taints);
    let upgrade = object.and_then(|o| o.upgrade_state.value.as_ref());
    let upgrading_state = status
        .and_then(|s| s.upgrade.as_ref())
        .or(upgrade.map(|a| &a.state).filter(|s| !s.is_terminal()));
    let (up_status, up_reason, up_msg) = match upgrading_state {
        Some(state) => (
            ConditionStatus::True,
            pascal(state.as_str()),
            match upgrade {
                Some(a) => format!(
                    "storage upgrade to {}: {} since {}",
                    a.to,
                    state,
                    rfc3339(i64_of(a.since))
                ),
                None => format!("storage upgrade: {state}"),
            },
        ),
        None => (
            ConditionStatus::False,
            "NotUpgrading".into(),
            "no storage upgrade on this node".into(),
        ),
    };
    let window = config.stale_after_seconds;
    let (stale_status, stale_reason, stale_msg) = match hb {
        None => (
            ConditionStatus::True,
            "NeverReported".to_owned(),
            "no legacy heartbeat seen for this node".to_owned(),
        ),
        Some(t) if now - t > window => (
            ConditionStatus::True,
            "HeartbeatMissed".to_owned(),
            format!("last legacy heartbeat at {}, more than {window}s ago", rfc3339(t)),
        ),
        Some(_) => (
            ConditionStatus::False,
            "HeartbeatRecent".to_owned(),
            format!("legacy heartbeat within the last {window}s"),
        ),
    };
    let (pe_status, pe_reason, pe_msg) = match diags.first() {
        Some(d) => (
            ConditionStatus::True,
            "MalformedLegacyState".to_owned(),
            format!(
                "{} at {}:{}: {}{}",
                d.source,
                d.line,
                d.column,
                d.message,
                if diags.len() > 1 {
                    format!(" (and {} more)", diags.len() - 1)
                } else {
                    String::new()
                }
            ),
        ),
        None => (
            ConditionStatus::False,
            "NoParseErrors".to_owned(),
            "all legacy state parses".to_owned(),
        ),
    };
    let legacy_state = status.map(|s| s.state.as_str().to_owned()).or_else(|| {
        object
            .and_then(|o| o.state.as_ref())
            .map(|s| s.as_str().to_owned())
    });
    let annotated_error = object.and_then(|o| o.state.as_ref()) == Some(&p::AnnotatedState::Error);
    let kubelet_not_ready = object
        .and_then(|o| o.kubelet_ready.as_deref())
        .is_some_and(|s| s != "True");
    let (ready_status, ready_reason, ready_msg) = if stale_status == ConditionStatus::True {
        (
            ConditionStatus::False,
            "LegacyStale".to_owned(),
            stale_msg.clone(),
        )
    } else if annotated_error {
        (
            ConditionStatus::False,
            "LegacyError".to_owned(),
            "the legacy script's last iteration failed".to_owned(),
        )
    } else if status.is_some_and(|s| s.net != p::NetHealth::Ok) {
        // Only what stops traffic makes the node not Ready; a lost slave with traffic flowing on
        // the others shows in NetworkDegraded alone.
        (
            ConditionStatus::False,
            "NetworkDegraded".to_owned(),
            net_msg.clone(),
        )
    } else if sto_status == ConditionStatus::True {
        (
            ConditionStatus::False,
            "StorageDegraded".to_owned(),
            sto_msg.clone(),
        )
    } else if kubelet_not_ready {
        (
            ConditionStatus::False,
            "KubeletNotReady".to_owned(),
            "the Node is not Ready".to_owned(),
        )
    } else {
        match legacy_state.as_deref() {
            Some("ready") => (
                ConditionStatus::True,
                "Ready".to_owned(),
                "the legacy script reports ready".to_owned(),
            ),
            Some(other) => (
                ConditionStatus::False,
                pascal(other),
                format!("the legacy script reports {other}"),
            ),
            None => (
                ConditionStatus::Unknown,
                "NoLegacyStatus".to_owned(),
                "the legacy script has not reported this node".to_owned(),
            ),
        }
    };
    out.conditions = conditions(
        previous.map(|p| p.conditions.as_slice()),
        vec![
            (ct::READY, ready_status, ready_reason, ready_msg),
            (ct::NETWORK_DEGRADED, net_status, net_reason, net_msg),
            (ct::STORAGE_DEGRADED, sto_status, sto_reason, sto_msg),
            (ct::UPGRADE_IN_PROGRESS, up_status, up_reason, up_msg),
            (ct::LEGACY_STALE, stale_status, stale_reason, stale_msg),
            (ct::PARSE_ERRORS, pe_status, pe_reason, pe_msg),
        ],
        now,
    );
    out
}

fn condition_is(status: &[Condition], type_: &str, value: &str) -> bool {
    status.iter().any(|c| c.type_ == type_ && c.status == value)
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

fn cluster(
    index: &Index,
    config: &ObserveConfig,
    out: &Observation,
    now: i64,
    previous: Option<&EdgeClusterStatus>,
) -> Observed<EdgeClusterSpec, EdgeClusterStatus> {
    let state = index.cluster.as_ref();
    let blob = state.and_then(|c| c.cluster.value.as_ref());
    let topology = match blob.map(|b| &b.topology) {
        Some(p::Topology::Multi) => Topology::MultiNode,
        Some(p::Topology::Single) => Topology::SingleNode,
        _ if out.nodes.len() > 1 => Topology::MultiNode,
        _ => Topology::SingleNode,
    };
    let spec = EdgeClusterSpec {
        profile: SiteProfile {
            topology,
            storage_backend: StorageBackend::LinstorDrbd,
            operating_system: None,
        },
        expected_nodes: None,
        workflows: WorkflowModes::default(),
        legacy: LegacySource {
            namespace: config.legacy_namespace.clone(),
            daemon_set: config.legacy_daemon_set.clone(),
            stale_after_seconds: i32::try_from(config.stale_after_seconds).unwrap_or(i32::MAX),
        },
    };
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

    let not_ready: Vec<String> = out
        .nodes
        .iter()
        .filter(|(_, n)| !condition_is(&n.status.conditions, ct::READY, "True"))
        .map(|(name, _)| name.clone())
        .collect();
    let ready_c = if state.is_none() {
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
    };
    let degraded = |names: &[String], what: &str, reason: &str| {
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
    };
    let net_c = degraded(&net, "network", "NetworkDegraded");
    let sto_c = degraded(&storage, "storage", "StorageDegraded");
    let upgrade = state.and_then(|c| c.upgrade.value.as_ref());
    let up_c = match upgrade.filter(|u| !u.state.is_terminal()) {
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
    };
    let stale_c = if state.is_none() {
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
            format!("no recent legacy heartbeat from {}", list(&stale)),
        )
    };
    let pe_c = match (cluster_diags.first(), parse.is_empty()) {
        (Some(d), _) => (
            ConditionStatus::True,
            "MalformedLegacyState".to_owned(),
            format!("{} at {}:{}: {}", d.source, d.line, d.column, d.message),
        ),
        (None, false) => (
            ConditionStatus::True,
            "MalformedLegacyState".to_owned(),
            format!("legacy state of {} does not parse", list(&parse)),
        ),
        (None, true) => (
            ConditionStatus::False,
            "NoParseErrors".to_owned(),
            "all legacy state parses".to_owned(),
        ),
    };

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
        legacy_version: (!versions.is_empty())
            .then(|| versions.keys().cloned().collect::<Vec<_>>().join(",")),
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

/// Transitions in the order they happened: by time, and within one second (the legacy clock's
/// resolution; the script often passes several phases in one iteration) by their place in the
/// state machine, `known` listing the states in order.
fn history<P: DeserializeOwned>(
    transitions: impl Iterator<Item = Transition>,
    known: &[&str],
    convert: impl Fn(&str) -> Option<P>,
) -> Vec<PhaseTransition<P>> {
    let mut transitions: Vec<Transition> = transitions.collect();
    transitions.sort_by_key(|t| {
        (
            t.at,
            known.iter().position(|k| *k == t.state).unwrap_or(usize::MAX),
        )
    });
    transitions
        .into_iter()
        .filter_map(|t| {
            Some(PhaseTransition {
                phase: convert(&t.state)?,
                at: time(t.at),
                message: t.message,
            })
        })
        .collect()
}

/// The `Complete` and `Failed` conditions of a workflow (`terminal`: its final state as the
/// legacy script spells it, `None` while it runs). Shared by the bridge's observed workflows and
/// the operator's own, so that both mean the same.
pub fn workflow_conditions(
    previous: Option<&[Condition]>,
    terminal: Option<&str>,
    message: Option<&str>,
    now: i64,
) -> Vec<Condition> {
    let msg = message.unwrap_or_default().to_owned();
    let (complete, failed) = match terminal {
        Some("COMPLETED") => (
            (
                ConditionStatus::True,
                "Completed".to_owned(),
                "the workflow completed".to_owned(),
            ),
            (ConditionStatus::False, "Completed".to_owned(), String::new()),
        ),
        Some("ROLLED_BACK") => (
            (ConditionStatus::False, "RolledBack".to_owned(), msg.clone()),
            (ConditionStatus::True, "RolledBack".to_owned(), msg),
        ),
        // An upgrade or migration reaches FAILED only when its rollback failed.
        Some("FAILED") => (
            (ConditionStatus::False, "Failed".to_owned(), msg.clone()),
            (ConditionStatus::True, "RollbackFailed".to_owned(), msg),
        ),
        Some(_) => (
            (ConditionStatus::False, "Failed".to_owned(), msg.clone()),
            (ConditionStatus::True, "Failed".to_owned(), msg),
        ),
        None => (
            (ConditionStatus::False, "InProgress".to_owned(), String::new()),
            (ConditionStatus::False, "InProgress".to_owned(), String::new()),
        ),
    };
    conditions(
        previous,
        vec![
            (ct::COMPLETE, complete.0, complete.1, complete.2),
            (ct::FAILED, failed.0, failed.1, failed.2),
        ],
        now,
    )
}

fn dedupe(names: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    names
        .iter()
        .filter(|n| seen.insert(n.as_str()))
        .cloned()
        .collect()
}

fn upgrade(
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
    let transitions = index.upgrade_history.get(&started).cloned().unwrap_or_default();
    let mut nodes = Vec::new();
    for node in &order {
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
            history: node_history,
        });
    }
    // Nodes upgrading at once: the stale-state race. Every node whose annotation shows a
    // per-node state of this upgrade while the upgrade has not ended.
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
    let prev = previous
        .and_then(|p| p.upgrades.iter().find(|o| o.name == name))
        .map(|o| o.status.conditions.as_slice());
    let mut conds = workflow_conditions(
        prev,
        state.is_terminal().then(|| u.state.as_str()),
        u.msg.as_deref(),
        now,
    );
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
    conds.extend(with_concurrency);
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
            current_node: u
                .node
                .clone()
                .filter(|_| state.is_per_node() || state == UpgradeState::RollingBack),
            nodes,
            failed_state: u.failed_state.as_ref().and_then(upgrade_state),
            started_at: u.started.map(|t| time(i64_of(t))),
            finished_at: u.finished.map(|t| time(i64_of(t))),
            conditions: conds,
        },
    })
}

fn migration(
    index: &Index,
    config: &ObserveConfig,
    now: i64,
    previous: Option<&Observation>,
    unrepresentable: &mut Vec<String>,
) -> Option<Observed<MigrationSpec, MigrationStatus>> {
    let state = index.cluster.as_ref()?;
    let m = state.migration.value.as_ref()?;
    // The operator mirrors the migrations it owns into the legacy key (so that the scripts hold
    // their upgrades); those have their own Migration object already.
    if m.unknown.get("owner").map(String::as_str) == Some("operator") {
        return None;
    }
    let (key, source) = crate::index::migration_key(m, state.cluster.value.as_ref());
    // Named by what it migrates, so that it is one object from the request to the end.
    let Some(source) = source else {
        unrepresentable.push("the legacy migration names no source node and no primary is known".to_owned());
        return None;
    };
    let short: String = source.chars().take(40).collect();
    let name = format!(
        "legacy-migration-{}-{:08x}",
        short.trim_end_matches(['-', '.']),
        key >> 32
    );
    let joining: Vec<String> = dedupe(&m.joining).into_iter().filter(|n| *n != source).collect();
    if joining.is_empty() {
        unrepresentable.push(format!("{name}: no joining node"));
        return None;
    }
    let Some(phase) = migration_phase(&m.phase) else {
        unrepresentable.push(format!("{name}: unknown migration phase {}", m.phase));
        return None;
    };
    let replicas = m
        .replicas
        .and_then(|r| i32::try_from(r).ok())
        .filter(|r| (2..=3).contains(r) && usize::try_from(*r).unwrap_or(usize::MAX) <= 1 + joining.len());
    let transitions = index.migration_history.get(&key).cloned().unwrap_or_default();
    let prev = previous
        .and_then(|p| p.migrations.iter().find(|o| o.name == name))
        .map(|o| o.status.conditions.as_slice());
    Some(Observed {
        name,
        spec: MigrationSpec {
            owner: WorkflowOwner::Legacy,
            cluster_ref: ClusterRef {
                name: config.cluster_name.clone(),
            },
            source_node: source,
            joining_nodes: joining,
            replicas,
            rollback: m.rollback.as_deref() == Some("requested"),
        },
        status: MigrationStatus {
            observed_generation: None,
            phase: Some(phase),
            history: history(transitions.into_iter(), p::MigrationPhase::KNOWN, |s| {
                migration_phase(&p::MigrationPhase::from_text(s))
            }),
            started_at: m.started.map(|t| time(i64_of(t))),
            finished_at: m.finished.map(|t| time(i64_of(t))),
            conditions: workflow_conditions(
                prev,
                m.phase.is_terminal().then(|| m.phase.as_str()),
                m.msg.as_deref(),
                now,
            ),
        },
    })
}

fn bond_flips(
    index: &Index,
    now: i64,
    previous: Option<&Observation>,
    unrepresentable: &mut Vec<String>,
) -> Vec<Observed<BondFlipSpec, BondFlipStatus>> {
    let Some(state) = &index.cluster else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (node, field) in &state.bond_flips {
        let Some(flip) = &field.value else { continue };
        let id = flip
            .id
            .clone()
            .or_else(|| flip.requested.map(|r| r.to_string()))
            .unwrap_or_else(|| "0".to_owned());
        let id: String = id
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let name = format!("legacy-bondflip-{node}-{id}");
        let status = index
            .nodes
            .get(node)
            .and_then(|e| e.config_map.as_ref())
            .and_then(|c| c.status.value.as_ref());
        let Some(status) = status else { continue };
        let current = BondState {
            mode: match bond_mode_named(&status.bond_mode) {
                Some(m) => m,
                None => continue,
            },
            active_slave: status.bond_active.clone(),
        };
        // The state the flip started from: kept from the first observation of the request (the
        // spec is immutable); a flip first seen already handled has no known starting point.
        let prev = previous.and_then(|p| p.bond_flips.iter().find(|o| o.name == name));
        // For a mode flip handled before the bridge saw the request, the script's log names the
        // mode it changed from.
        let logged = index
            .nodes
            .get(node)
            .and_then(|e| e.log.as_ref())
            .and_then(|l| l.last_mode_change.as_ref())
            .filter(|(bond, _, to)| {
                *bond == status.bond && flip.action == p::BondFlipAction::Mode && *to == flip.value
            })
            .and_then(|(_, from, _)| bond_mode_named(from))
            .map(|mode| BondState {
                mode,
                active_slave: None,
            });
        let from = match (prev, &flip.state, logged) {
            (Some(prev), _, _) => prev.spec.from.clone(),
            (None, p::BondFlipState::Requested, _) => current.clone(),
            (None, _, Some(logged)) => logged,
            (None, _, None) => {
                unrepresentable.push(format!(
                    "{name}: first seen {}, the bond's state before the flip is unknown",
                    flip.state
                ));
                continue;
            }
        };
        let to = match flip.action {
            p::BondFlipAction::Mode => match bond_mode_named(&flip.value) {
                Some(m) => BondTarget {
                    mode: Some(m),
                    active_slave: None,
                },
                None => {
                    unrepresentable.push(format!("{name}: unknown bond mode {}", flip.value));
                    continue;
                }
            },
            p::BondFlipAction::Active => BondTarget {
                mode: None,
                active_slave: Some(flip.value.clone()),
            },
            p::BondFlipAction::Unknown(ref a) => {
                unrepresentable.push(format!("{name}: unknown bond flip action {a}"));
                continue;
            }
        };
        let differs = to.mode.is_some_and(|m| m != from.mode)
            || to
                .active_slave
                .as_ref()
                .is_some_and(|s| from.active_slave.as_ref() != Some(s));
        if !differs {
            unrepresentable.push(format!("{name}: the bond is already in the requested state"));
            continue;
        }
        let phase = match flip.state {
            p::BondFlipState::Requested => BondFlipPhase::Pending,
            p::BondFlipState::Applied => BondFlipPhase::Completed,
            p::BondFlipState::Failed | p::BondFlipState::Unknown(_) => BondFlipPhase::Failed,
        };
        let mut hist = prev.map(|p| p.status.history.clone()).unwrap_or_default();
        if hist.last().map(|h| h.phase) != Some(phase) {
            let at = match phase {
                BondFlipPhase::Pending => flip.requested.map(i64_of),
                _ => flip.done.map(i64_of),
            };
            hist.push(PhaseTransition {
                phase,
                at: time(at.unwrap_or(now)),
                message: flip.msg.clone(),
            });
        }
        let terminal = match phase {
            BondFlipPhase::Completed => Some("COMPLETED"),
            // A bond flip has no rollback: it failed, the script says why.
            BondFlipPhase::Failed => Some("FLIP_FAILED"),
            _ => None,
        };
        out.push(Observed {
            spec: BondFlipSpec {
                owner: WorkflowOwner::Legacy,
                node_name: node.clone(),
                bond: status.bond.clone(),
                from,
                to,
            },
            status: BondFlipStatus {
                observed_generation: None,
                phase: Some(phase),
                history: hist,
                observed: Some(current),
                finished_at: flip.done.filter(|_| terminal.is_some()).map(|t| time(i64_of(t))),
                conditions: workflow_conditions(
                    prev.map(|p| p.status.conditions.as_slice()),
                    terminal,
                    flip.msg.as_deref(),
                    now,
                ),
            },
            name,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::LegacyNames;
    use crate::index::tests::{STATUS, config_map, node};
    use nodewright_api::common::find_condition;
    use nodewright_api::edgenode::{BondMode, TaintEffect};
    use nodewright_api::migration::MigrationPhase;

    const NOW: i64 = 1_714_557_900;

    fn site() -> Index {
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(
            &config_map(
                "vx-rail-cluster-state",
                &[
                    ("cluster", "primary=edge-1;topology=single;replicas=1;storage_pool=pool0;created=1714557600;schema=4"),
                    ("members", "node,storage_ip,role,joined\nedge-1,10.10.100.11/24,primary,1714557600"),
                ],
            ),
            NOW,
        );
        index.apply_config_map(
            &config_map(
                "vx-rail-node-edge-1",
                &[
                    ("status", STATUS),
                    ("heartbeat", "2024-05-01T10:04:52Z"),
                    ("script-version", "4.12.3"),
                ],
            ),
            NOW,
        );
        index.apply_node(
            &node(
                "edge-1",
                &[
                    ("vx-rail.io/state", "ready"),
                    (
                        "vx-rail.io/last-run",
                        "ts=2024-05-01T10:04:52Z;version=4.12.3;outcome=ok;step=finished;rc=0;duration=5",
                    ),
                ],
                &[("vx-rail.io/role", "primary")],
            ),
            NOW,
        );
        index
    }

    fn cond<'a>(conditions: &'a [Condition], t: &str) -> (&'a str, &'a str) {
        let c = find_condition(conditions, t).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn a_healthy_single_node_site_is_ready_at_node_and_cluster_level() {
        let obs = observe(&site(), &ObserveConfig::default(), NOW, None);
        let n = &obs.nodes["edge-1"].status;
        assert_eq!(cond(&n.conditions, ct::READY), ("True", "Ready"));
        assert_eq!(
            cond(&n.conditions, ct::NETWORK_DEGRADED),
            ("False", "NetworkHealthy")
        );
        assert_eq!(
            cond(&n.conditions, ct::LEGACY_STALE),
            ("False", "HeartbeatRecent")
        );
        assert_eq!(n.bonds[0].mode, BondMode::ActiveBackup);
        assert_eq!(n.vlans[0].addresses, ["10.10.100.11/24"]);
        let c = obs.cluster.unwrap();
        assert_eq!(c.spec.profile.topology, Topology::SingleNode);
        assert_eq!(cond(&c.status.conditions, ct::READY), ("True", "AllNodesReady"));
        assert_eq!(c.status.legacy_version.as_deref(), Some("4.12.3"));
        assert_eq!(c.status.nodes.unwrap().ready, 1);
    }

    #[test]
    fn updating_only_what_changed_gives_the_full_observation() {
        let mut index = site();
        let mut n2 = node("edge-2", &[("vx-rail.io/state", "ready")], &[]);
        n2.metadata.labels = None;
        index.apply_node(&n2, NOW);
        index.apply_config_map(&config_map("vx-rail-node-edge-2", &[("status", STATUS)]), NOW);
        let mut last = observe(&index, &ObserveConfig::default(), NOW, None);
        index.take_dirty();
        let degraded = STATUS.replace("net=ok", "net=degraded");
        index.apply_config_map(&config_map("vx-rail-node-edge-2", &[("status", &degraded)]), NOW);
        let full = observe(&index, &ObserveConfig::default(), NOW + 5, Some(&last));
        let dirty = index.take_dirty();
        assert_eq!(dirty.nodes.iter().collect::<Vec<_>>(), ["edge-2"]);
        observe_changed(&index, &ObserveConfig::default(), NOW + 5, &mut last, &dirty);
        assert_eq!(last, full);
        let c = last.cluster.unwrap();
        assert_eq!(
            cond(&c.status.conditions, ct::NETWORK_DEGRADED),
            ("True", "NetworkDegraded")
        );
    }

    #[test]
    fn a_node_that_leaves_is_dropped_by_an_update_of_only_what_changed() {
        let mut index = site();
        index.apply_node(&node("edge-2", &[("vx-rail.io/state", "ready")], &[]), NOW);
        index.apply_config_map(&config_map("vx-rail-node-edge-2", &[("status", STATUS)]), NOW);
        let mut last = observe(&index, &ObserveConfig::default(), NOW, None);
        index.take_dirty();
        index.delete_node("edge-2");
        index.delete_config_map("kube-system", "vx-rail-node-edge-2");
        let full = observe(&index, &ObserveConfig::default(), NOW + 5, Some(&last));
        let dirty = index.take_dirty();
        assert!(!dirty.all);
        observe_changed(&index, &ObserveConfig::default(), NOW + 5, &mut last, &dirty);
        assert_eq!(last.nodes.keys().collect::<Vec<_>>(), ["edge-1"]);
        assert_eq!(last, full);
    }

    #[test]
    fn the_same_index_and_time_give_the_same_observation() {
        let index = site();
        let a = observe(&index, &ObserveConfig::default(), NOW, None);
        let b = observe(&index, &ObserveConfig::default(), NOW + 10, Some(&a));
        assert_eq!(
            a, b,
            "nothing changed, so nothing may differ, not even transition times"
        );
    }

    #[test]
    fn a_node_without_a_heartbeat_inside_the_window_is_legacy_stale_and_not_ready() {
        let index = site();
        let first = observe(&index, &ObserveConfig::default(), NOW, None);
        let later = observe(&index, &ObserveConfig::default(), NOW + 301, Some(&first));
        let n = &later.nodes["edge-1"].status;
        assert_eq!(cond(&n.conditions, ct::LEGACY_STALE), ("True", "HeartbeatMissed"));
        assert_eq!(cond(&n.conditions, ct::READY), ("False", "LegacyStale"));
        let ready = find_condition(&n.conditions, ct::READY).unwrap();
        assert_eq!(ready.last_transition_time, time(NOW + 301));
        let c = later.cluster.unwrap();
        assert_eq!(
            cond(&c.status.conditions, ct::LEGACY_STALE),
            ("True", "HeartbeatMissed")
        );
    }

    #[test]
    fn a_degraded_network_names_the_cause() {
        let mut index = site();
        let degraded = STATUS
            .replace("net=ok", "net=degraded")
            .replace("eno2:up:0", "eno2:down:3");
        index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", &degraded)]), NOW);
        let obs = observe(&index, &ObserveConfig::default(), NOW, None);
        let n = &obs.nodes["edge-1"].status;
        assert_eq!(cond(&n.conditions, ct::NETWORK_DEGRADED), ("True", "SlaveDown"));
        assert_eq!(cond(&n.conditions, ct::READY), ("False", "NetworkDegraded"));
        assert_eq!(n.bonds[0].slaves[1].link_failures, 3);
    }

    #[test]
    fn a_storage_taint_makes_storage_degraded_with_its_reason() {
        let mut index = site();
        let mut n = node("edge-1", &[("vx-rail.io/state", "degraded")], &[]);
        n.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
            taints: Some(vec![k8s_openapi::api::core::v1::Taint {
                key: "vx-rail.io/storage-not-ready".into(),
                value: Some("resync".into()),
                effect: "NoSchedule".into(),
                time_added: None,
            }]),
            ..Default::default()
        });
        index.apply_node(&n, NOW);
        let obs = observe(&index, &ObserveConfig::default(), NOW, None);
        let s = &obs.nodes["edge-1"].status;
        assert_eq!(cond(&s.conditions, ct::STORAGE_DEGRADED), ("True", "Resyncing"));
        assert_eq!(s.managed_taints[0].effect, TaintEffect::NoSchedule);
    }

    #[test]
    fn a_malformed_blob_sets_parse_errors_and_keeps_the_last_good_observation() {
        let mut index = site();
        let bad = STATUS.replace("uptodate=1", "uptodate=x");
        index.apply_config_map(
            &config_map(
                "vx-rail-node-edge-1",
                &[("status", &bad), ("heartbeat", "2024-05-01T10:04:52Z")],
            ),
            NOW,
        );
        let obs = observe(&index, &ObserveConfig::default(), NOW, None);
        let s = &obs.nodes["edge-1"].status;
        let pe = find_condition(&s.conditions, ct::PARSE_ERRORS).unwrap();
        assert_eq!(
            (pe.status.as_str(), pe.reason.as_str()),
            ("True", "MalformedLegacyState")
        );
        let column = bad.find("uptodate=x").unwrap() + "uptodate=".len() + 1;
        assert!(
            pe.message.contains(&format!(
                "configmap/kube-system/vx-rail-node-edge-1:status at 1:{column}"
            )),
            "{}",
            pe.message
        );
        assert_eq!(s.parse_diagnostics[0].column, column as i64);
        assert_eq!(s.bonds.len(), 1, "the last good status is still shown");
    }

    #[test]
    fn a_running_upgrade_becomes_a_legacy_owned_storage_upgrade_with_per_node_history() {
        let mut index = site();
        index.apply_config_map(
            &config_map(
                "vx-rail-cluster-state",
                &[("upgrade", "state=WAIT_RESYNC;from=9.2.5;to=9.2.8;order=edge-1,edge-2;node=edge-2;done=edge-1;rolled=;by=edge-1;started=1714560000;since=1714560420")],
            ),
            NOW,
        );
        index.apply_node(
            &node(
                "edge-2",
                &[(
                    "vx-rail.io/upgrade-state",
                    "state=UP_RESOURCES;to=9.2.8;since=1714560400",
                )],
                &[],
            ),
            NOW,
        );
        index.apply_node(
            &node(
                "edge-2",
                &[(
                    "vx-rail.io/upgrade-state",
                    "state=WAIT_RESYNC;to=9.2.8;since=1714560420",
                )],
                &[],
            ),
            NOW,
        );
        let obs = observe(&index, &ObserveConfig::default(), NOW, None);
        let u = &obs.upgrades[0];
        assert_eq!(u.name, "legacy-upgrade-1714560000");
        assert_eq!(u.spec.owner, WorkflowOwner::Legacy);
        assert_eq!(u.status.state, Some(UpgradeState::WaitResync));
        assert_eq!(u.status.current_node.as_deref(), Some("edge-2"));
        assert_eq!(u.status.nodes[0].state, UpgradeState::Completed);
        let states: Vec<_> = u.status.nodes[1].history.iter().map(|h| h.phase).collect();
        assert_eq!(states, [UpgradeState::UpResources, UpgradeState::WaitResync]);
        let c = obs.cluster.unwrap();
        assert_eq!(
            cond(&c.status.conditions, ct::UPGRADE_IN_PROGRESS),
            ("True", "WaitResync")
        );
    }

    #[test]
    fn two_nodes_upgrading_at_once_are_reported_as_concurrent() {
        let mut index = site();
        index.apply_config_map(
            &config_map(
                "vx-rail-cluster-state",
                &[("upgrade", "state=PREFLIGHT;from=9.2.5;to=9.2.8;order=edge-2,edge-1;node=edge-2;done=;rolled=;by=edge-2;started=1714560000;since=1714560000")],
            ),
            NOW,
        );
        for n in ["edge-1", "edge-2"] {
            index.apply_node(
                &node(
                    n,
                    &[(
                        "vx-rail.io/upgrade-state",
                        "state=QUORUM_CHECK;to=9.2.8;since=1714560001",
                    )],
                    &[],
                ),
                NOW,
            );
        }
        let obs = observe(&index, &ObserveConfig::default(), NOW, None);
        let c = &obs.upgrades[0].status.conditions;
        assert_eq!(cond(c, "ConcurrentNodes"), ("True", "MoreThanOneNodeUpgrading"));
    }

    #[test]
    fn a_finished_migration_is_a_completed_legacy_migration() {
        let mut index = site();
        index.apply_config_map(
            &config_map(
                "vx-rail-cluster-state",
                &[("migration", "phase=COMPLETED;source=edge-1;joining=edge-2;replicas=2;since=1714558100;started=1714557990;finished=1714558100")],
            ),
            NOW,
        );
        let obs = observe(&index, &ObserveConfig::default(), NOW, None);
        let m = &obs.migrations[0];
        assert!(m.name.starts_with("legacy-migration-edge-1-"), "{}", m.name);
        assert_eq!(m.spec.joining_nodes, ["edge-2"]);
        assert_eq!(m.spec.replicas, Some(2));
        assert_eq!(m.status.phase, Some(MigrationPhase::Completed));
        assert_eq!(cond(&m.status.conditions, ct::COMPLETE), ("True", "Completed"));
    }

    #[test]
    fn a_migration_the_operator_mirrors_into_the_legacy_key_is_not_observed_as_a_legacy_one() {
        let mut index = site();
        index.apply_config_map(
            &config_map(
                "vx-rail-cluster-state",
                &[(
                    "migration",
                    "phase=PREFLIGHT;source=edge-1;joining=edge-2;replicas=2;since=1714558100;owner=operator",
                )],
            ),
            NOW,
        );
        let obs = observe(&index, &ObserveConfig::default(), NOW, None);
        assert!(obs.migrations.is_empty(), "{:?}", obs.migrations);
    }

    #[test]
    fn a_requested_bond_flip_keeps_its_starting_state_once_applied() {
        let mut index = site();
        let cluster = |flip: &str| config_map("vx-rail-cluster-state", &[("bond-flip.edge-1", flip)]);
        index.apply_config_map(
            &cluster("action=mode;value=802.3ad;state=requested;id=7;requested=1714557000"),
            NOW,
        );
        let first = observe(&index, &ObserveConfig::default(), NOW, None);
        assert_eq!(first.bond_flips[0].spec.from.mode, BondMode::ActiveBackup);
        index.apply_config_map(
            &cluster("action=mode;value=802.3ad;state=applied;id=7;requested=1714557000;done=1714557518"),
            NOW,
        );
        let applied = STATUS.replace("bond_mode=active-backup", "bond_mode=802.3ad");
        index.apply_config_map(&config_map("vx-rail-node-edge-1", &[("status", &applied)]), NOW);
        let second = observe(&index, &ObserveConfig::default(), NOW, Some(&first));
        let f = &second.bond_flips[0];
        assert_eq!(f.name, "legacy-bondflip-edge-1-7");
        assert_eq!(f.spec.from.mode, BondMode::ActiveBackup);
        assert_eq!(f.status.phase, Some(BondFlipPhase::Completed));
        assert_eq!(f.status.history.len(), 2);
    }

    #[test]
    fn a_migration_is_one_object_from_its_request_to_its_end() {
        let mut index = site();
        let cluster =
            "primary=edge-1;topology=single;replicas=1;storage_pool=pool0;created=1714557600;schema=4";
        let migration = |blob: &str| {
            config_map(
                "vx-rail-cluster-state",
                &[("cluster", cluster), ("migration", blob)],
            )
        };
        index.apply_config_map(
            &migration("phase=PENDING;joining=edge-2;replicas=2;since=1714557900"),
            NOW,
        );
        let pending = observe(&index, &ObserveConfig::default(), NOW, None);
        index.apply_config_map(
            &migration(
                "phase=PREFLIGHT;source=edge-1;joining=edge-2;replicas=2;since=1714557990;started=1714557990",
            ),
            NOW,
        );
        let started = observe(&index, &ObserveConfig::default(), NOW, Some(&pending));
        assert_eq!(pending.migrations[0].name, started.migrations[0].name);
        let phases: Vec<_> = started.migrations[0]
            .status
            .history
            .iter()
            .map(|h| h.phase)
            .collect();
        assert_eq!(phases, [MigrationPhase::Pending, MigrationPhase::Preflight]);
    }

    #[test]
    fn a_lost_bond_slave_is_network_degraded_while_the_node_stays_ready() {
        let mut index = site();
        let one_down = STATUS.replace("eno2:up:0", "eno2:down:1");
        index.apply_config_map(
            &config_map(
                "vx-rail-node-edge-1",
                &[("status", &one_down), ("heartbeat", "2024-05-01T10:04:52Z")],
            ),
            NOW,
        );
        let obs = observe(&index, &ObserveConfig::default(), NOW, None);
        let n = &obs.nodes["edge-1"].status;
        assert_eq!(cond(&n.conditions, ct::NETWORK_DEGRADED), ("True", "SlaveDown"));
        assert_eq!(cond(&n.conditions, ct::READY), ("True", "Ready"));
    }

    #[test]
    fn a_site_without_nodes_is_not_ready() {
        let mut index = Index::new(LegacyNames::default());
        index.apply_config_map(&config_map("vx-rail-cluster-state", &[]), NOW);
        let obs = observe(&index, &ObserveConfig::default(), NOW, None);
        let c = obs.cluster.unwrap();
        assert_eq!(cond(&c.status.conditions, ct::READY), ("False", "NoNodes"));
    }

    #[test]
    fn a_failed_bond_flip_failed_and_did_not_fail_a_rollback() {
        let mut index = site();
        let flip = |f: &str| config_map("vx-rail-cluster-state", &[("bond-flip.edge-1", f)]);
        index.apply_config_map(&flip("action=active;value=eno2;state=requested;id=3"), NOW);
        let first = observe(&index, &ObserveConfig::default(), NOW, None);
        index.apply_config_map(
            &flip("action=active;value=eno2;state=failed;id=3;done=1714557901;msg=eno2 has no carrier"),
            NOW,
        );
        let second = observe(&index, &ObserveConfig::default(), NOW, Some(&first));
        let f = &second.bond_flips[0].status;
        assert_eq!(f.phase, Some(BondFlipPhase::Failed));
        assert_eq!(cond(&f.conditions, ct::FAILED), ("True", "Failed"));
    }

    #[test]
    fn legacy_spellings_map_onto_api_enums() {
        assert_eq!(pascal("WAIT_RESYNC"), "WaitResync");
        assert_eq!(
            upgrade_state(&p::UpgradeState::InstallPackages),
            Some(UpgradeState::InstallPackages)
        );
        assert_eq!(
            migration_phase(&p::MigrationPhase::RegisteringSatellites),
            Some(MigrationPhase::RegisteringSatellites)
        );
        for s in p::UpgradeState::KNOWN {
            assert!(upgrade_state(&p::UpgradeState::from_text(s)).is_some(), "{s}");
        }
        for s in p::MigrationPhase::KNOWN {
            assert!(migration_phase(&p::MigrationPhase::from_text(s)).is_some(), "{s}");
        }
    }
}
