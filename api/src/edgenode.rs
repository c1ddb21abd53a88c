//! `EdgeNode`: what Nodewright observes of one Kubernetes Node of an edge site — bonds, VLANs,
//! LINSTOR and DRBD, the taints the legacy script manages, boot recovery, and what could not be read.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::ClusterRef;

/// The Node this object describes. Everything else is in the status, written by Nodewright.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "nodewright.io",
    version = "v1alpha1",
    kind = "EdgeNode",
    namespaced,
    status = "EdgeNodeStatus",
    shortname = "en",
    category = "nodewright",
    selectable = ".spec.nodeName",
    doc = "One node of an edge site as Nodewright observes it: bonds, VLANs, LINSTOR and DRBD, managed taints and boot recovery.",
    printcolumn(
        name = "Node",
        type_ = "string",
        json_path = ".spec.nodeName",
        description = "The Kubernetes Node"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the node is healthy"
    ),
    printcolumn(
        name = "Network",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"NetworkDegraded\")].reason",
        description = "Network health reason"
    ),
    printcolumn(
        name = "Storage",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"StorageDegraded\")].reason",
        description = "Storage health reason"
    ),
    printcolumn(
        name = "Boot",
        type_ = "string",
        json_path = ".status.bootRecovery.phase",
        description = "Boot-recovery phase"
    ),
    printcolumn(
        name = "Legacy-Run",
        type_ = "date",
        json_path = ".status.lastLegacyRun.time",
        description = "When the legacy script last ran on this node"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct EdgeNodeSpec {
    /// Name of the Kubernetes Node (a DNS-1123 subdomain). Cannot be changed.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::common::NODE_NAME_PATTERN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("nodeName is immutable"))]
    pub node_name: String,
    /// The site this node belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_ref: Option<ClusterRef>,
    /// What the node's host is meant to look like (its `node.conf`, in the API): the bond, the
    /// VLANs and addresses, the storage pool. Set by a person, or adopted once by the bootstrap
    /// workflow from the `node.conf` the node's agent reports; the workflows Nodewright owns
    /// decide from it. Absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<crate::hostconfig::HostConfig>,
}

/// What Nodewright observes on the node.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EdgeNodeStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `NetworkDegraded`, `StorageDegraded`, `UpgradeInProgress`, `LegacyStale`, `ParseErrors`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Bonded interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub bonds: Vec<BondStatus>,
    /// VLAN sub-interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub vlans: Vec<VlanStatus>,
    /// The LINSTOR satellite on this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linstor_satellite: Option<SatelliteStatus>,
    /// DRBD resources with a replica on this node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub drbd_resources: Vec<DrbdResourceStatus>,
    /// Taints the legacy script (or Nodewright) manages on the Node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_taints: Vec<ManagedTaint>,
    /// Recovery after the last reboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_recovery: Option<BootRecoveryStatus>,
    /// The last loop of the legacy script on this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_legacy_run: Option<LegacyRun>,
    /// Legacy state that could not be parsed, newest first. The last good observation is kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parse_diagnostics: Vec<ParseDiagnostic>,
    /// Where each group of host facts above came from, once the node's agent has published
    /// facts (a `NodeFacts`): the agent's when they are fresh and readable, the script's reports
    /// otherwise. Absent while no agent reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["group".into()]))]
    pub fact_sources: Vec<FactSource>,
}

/// A group of host facts in `EdgeNode` status.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FactGroup {
    /// `bonds`.
    Bonds,
    /// `vlans`.
    Vlans,
    /// `linstorSatellite`.
    LinstorSatellite,
    /// `drbdResources`.
    DrbdResources,
}

/// Who reported a group of host facts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FactOrigin {
    /// The node agent, read from the host (`NodeFacts`).
    Agent,
    /// The legacy script's reports (its node ConfigMap, the site ConfigMap).
    Legacy,
}

/// Where one group of host facts came from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FactSource {
    /// The group.
    pub group: FactGroup,
    /// Who reported what the status shows.
    pub source: FactOrigin,
    /// When the agent last read the host (its `NodeFacts.spec.observedAt`), whichever source is
    /// used: an old time next to `legacy` says why the agent's facts were passed over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_observed_at: Option<Time>,
    /// Why the agent's facts were not used, when they were not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Linux bonding modes, as the bonding driver names them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum BondMode {
    /// Round-robin (mode 0).
    #[serde(rename = "balance-rr")]
    BalanceRr,
    /// One active slave, the others on standby (mode 1).
    #[serde(rename = "active-backup")]
    ActiveBackup,
    /// Transmit hash (mode 2).
    #[serde(rename = "balance-xor")]
    BalanceXor,
    /// Every frame on every slave (mode 3).
    #[serde(rename = "broadcast")]
    Broadcast,
    /// IEEE 802.3ad link aggregation, LACP (mode 4).
    #[serde(rename = "802.3ad")]
    Lacp,
    /// Adaptive transmit load balancing (mode 5).
    #[serde(rename = "balance-tlb")]
    BalanceTlb,
    /// Adaptive load balancing (mode 6).
    #[serde(rename = "balance-alb")]
    BalanceAlb,
}

/// Link state of an interface as the bonding driver reports it (`MII Status`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Carrier present.
    Up,
    /// No carrier.
    Down,
    /// Not reported.
    Unknown,
}

/// One bonded interface.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BondStatus {
    /// Interface name, for example `bond0`.
    #[schemars(length(min = 1, max = 15))]
    pub name: String,
    /// Bonding mode.
    pub mode: BondMode,
    /// The slave carrying traffic, in `active-backup`, `balance-tlb` and `balance-alb` modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_slave: Option<String>,
    /// Link state of the bond itself.
    pub link_state: LinkState,
    /// The member interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub slaves: Vec<BondSlaveStatus>,
}

/// One member of a bond.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BondSlaveStatus {
    /// Interface name, for example `eno1`.
    #[schemars(length(min = 1, max = 15))]
    pub name: String,
    /// Link state.
    pub link_state: LinkState,
    /// Link failures counted by the bonding driver since the bond came up.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub link_failures: i64,
    /// Negotiated speed in Mb/s, when the driver reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_mbps: Option<i64>,
}

/// What a VLAN carries.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum VlanPurpose {
    /// DRBD replication traffic.
    StorageReplication,
    /// Node management traffic.
    Management,
    /// Anything else the script created.
    Other,
}

/// One VLAN sub-interface.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VlanStatus {
    /// Interface name, for example `bond0.100`.
    #[schemars(length(min = 1, max = 15))]
    pub name: String,
    /// 802.1Q VLAN ID.
    #[schemars(range(min = 1, max = 4094))]
    pub id: i32,
    /// The interface the VLAN sits on.
    pub parent: String,
    /// What the VLAN carries.
    pub purpose: VlanPurpose,
    /// Link state.
    pub link_state: LinkState,
    /// Addresses in CIDR notation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

/// LINSTOR satellite connection state, as `linstor node list` shows it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum SatelliteState {
    /// Connected to the controller.
    Online,
    /// Not connected.
    Offline,
    /// Connecting.
    Connected,
    /// Version or authentication mismatch with the controller.
    VersionMismatch,
    /// Not registered with the controller.
    Unregistered,
    /// Reported in a way Nodewright does not know.
    Unknown,
}

/// The LINSTOR satellite on the node.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SatelliteStatus {
    /// Connection state.
    pub state: SatelliteState,
    /// Satellite version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Storage pools on the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub storage_pools: Vec<StoragePoolStatus>,
}

/// One LINSTOR storage pool.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoragePoolStatus {
    /// Pool name.
    pub name: String,
    /// Driver, for example `LVM_THIN` or `ZFS`.
    pub driver: String,
    /// Free capacity in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<i64>,
    /// Total capacity in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<i64>,
}

/// One DRBD resource as seen from this node.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DrbdResourceStatus {
    /// Resource name.
    pub name: String,
    /// This node's role: `Primary`, `Secondary` or `Unknown`.
    pub role: String,
    /// This node's disk state, for example `UpToDate`, `Inconsistent`, `Diskless`.
    pub disk_state: String,
    /// Whether this node has quorum for the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<bool>,
    /// Whether I/O is suspended.
    #[serde(default)]
    pub suspended: bool,
    /// Peers of this node for the resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["node".into()]))]
    pub peers: Vec<DrbdPeerStatus>,
}

/// One DRBD peer connection.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DrbdPeerStatus {
    /// Peer node name.
    pub node: String,
    /// Connection state, for example `Connected`, `Connecting`, `StandAlone`.
    pub connection: String,
    /// The peer's role.
    pub role: String,
    /// The peer's disk state.
    pub peer_disk: String,
    /// Replication state, for example `Established`, `SyncSource`, `SyncTarget`.
    pub replication: String,
    /// Resync progress in whole percent, while a resync runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub sync_percent: Option<i32>,
}

/// Taint effect.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum TaintEffect {
    /// New pods are not scheduled.
    NoSchedule,
    /// The scheduler avoids the node.
    PreferNoSchedule,
    /// Running pods without a toleration are evicted.
    NoExecute,
}

/// A taint that the legacy script or Nodewright puts on and takes off the Node.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedTaint {
    /// Taint key.
    pub key: String,
    /// Taint value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Taint effect.
    pub effect: TaintEffect,
    /// When the taint was added, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

/// Boot-recovery phases, in order.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum BootRecoveryPhase {
    /// No reboot since the node joined, or recovery is not needed.
    Idle,
    /// Re-assembling bonds and VLANs.
    AssemblingNetwork,
    /// Loading the DRBD kernel modules.
    LoadingModules,
    /// Bringing DRBD resources up.
    StartingResources,
    /// Waiting for resync to finish.
    WaitingForResync,
    /// Removing the storage-not-ready taint.
    RemovingTaints,
    /// Recovery finished.
    Completed,
    /// Recovery stopped; the message says where.
    Failed,
}

/// Recovery after the last reboot.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BootRecoveryStatus {
    /// Current phase.
    pub phase: BootRecoveryPhase,
    /// When the node last booted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_time: Option<Time>,
    /// When the current phase started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_since: Option<Time>,
    /// Detail, for example why recovery failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The last loop of the legacy script on this node.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LegacyRun {
    /// When the loop ran.
    pub time: Time,
    /// The script version that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_version: Option<String>,
    /// How the loop ended, as the script reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// Something in the legacy state that could not be parsed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParseDiagnostic {
    /// The object and field it came from, for example `configmap/kube-system/vx-rail-state:bonds`.
    pub source: String,
    /// Line, counted from 1.
    #[schemars(range(min = 1))]
    pub line: i64,
    /// Column, counted from 1.
    #[schemars(range(min = 1))]
    pub column: i64,
    /// What was expected and what was found.
    pub message: String,
    /// When this was first seen.
    pub first_seen: Time,
}

impl SatelliteState {
    /// The state of a row of `linstor node list`, as printed (`Online`, `OFFLINE`,
    /// `OFFLINE (VERSION MISMATCH)`, `Connected`, …).
    pub fn from_linstor(state: &str) -> SatelliteState {
        let upper = state.trim().to_ascii_uppercase();
        if upper == "ONLINE" {
            SatelliteState::Online
        } else if upper.contains("VERSION MISMATCH") {
            SatelliteState::VersionMismatch
        } else if upper.starts_with("OFFLINE") {
            SatelliteState::Offline
        } else if upper == "CONNECTED" {
            SatelliteState::Connected
        } else {
            SatelliteState::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linstor_node_states_map_to_satellite_states_whatever_their_case() {
        assert_eq!(SatelliteState::from_linstor("Online"), SatelliteState::Online);
        assert_eq!(SatelliteState::from_linstor("OFFLINE"), SatelliteState::Offline);
        assert_eq!(
            SatelliteState::from_linstor("OFFLINE (VERSION MISMATCH)"),
            SatelliteState::VersionMismatch
        );
        assert_eq!(
            SatelliteState::from_linstor("Connected"),
            SatelliteState::Connected
        );
        assert_eq!(SatelliteState::from_linstor("EVICTED"), SatelliteState::Unknown);
    }
}
