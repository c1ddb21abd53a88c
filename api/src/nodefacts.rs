//! `NodeFacts`: what a node's agent reads of its own host — bonds and their slaves, VLANs and
//! addresses, DRBD resources and peers, the LINSTOR satellite, package versions, loaded modules
//! and the boot id — and when it read them.
//!
//! One object per node, named after the node, written only by that node's agent (a server-side
//! apply under its own field manager; the chart's admission policy refuses any other node's).
//! It is a report, like a `Lease` or a `CSINode`: no controller reconciles it towards anything,
//! so the facts are its `spec` and one apply publishes them. The bridge merges them into the
//! node's `EdgeNode` status and the operator decides from them where they are fresh.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::edgenode::{BondStatus, DrbdResourceStatus, LinkState, SatelliteState};

/// The field manager the agent applies its `NodeFacts` with.
pub const FACTS_FIELD_MANAGER: &str = "nodewright-agent";

/// The facts one node's agent read of its host.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "nodewright.io",
    version = "v1alpha1",
    kind = "NodeFacts",
    plural = "nodefacts",
    namespaced,
    shortname = "nf",
    category = "nodewright",
    selectable = ".spec.nodeName",
    doc = "What a node's agent read of its own host, and when: bonds, VLANs, DRBD, the LINSTOR satellite, packages, modules, boot id. Written only by that node's agent.",
    printcolumn(
        name = "Node",
        type_ = "string",
        json_path = ".spec.nodeName",
        description = "The Kubernetes Node"
    ),
    printcolumn(
        name = "Observed",
        type_ = "date",
        json_path = ".spec.observedAt",
        description = "When the agent last read the host"
    ),
    printcolumn(
        name = "Boot",
        type_ = "string",
        json_path = ".spec.bootId",
        description = "The host's boot id"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct NodeFactsSpec {
    /// The node these facts are of (a DNS-1123 subdomain); the object's name is the same.
    /// Cannot be changed.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::common::NODE_NAME_PATTERN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("nodeName is immutable"))]
    pub node_name: String,
    /// When the agent read these facts. The agent reads the host periodically and re-publishes
    /// at least every refresh interval even when nothing changed, so an old `observedAt` means a
    /// silent agent, not a quiet host.
    pub observed_at: Time,
    /// `/proc/sys/kernel/random/boot_id`: changes on every boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub boot_id: Option<String>,
    /// Bonded interfaces, their mode, active slave and each slave's carrier.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[schemars(length(max = 64))]
    pub bonds: Vec<BondStatus>,
    /// VLAN sub-interfaces and their addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[schemars(length(max = 256))]
    pub vlans: Vec<VlanFacts>,
    /// DRBD resources with a replica on this node, their role, disk state and peers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[schemars(length(max = 1024))]
    pub drbd_resources: Vec<DrbdResourceStatus>,
    /// The LINSTOR satellite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satellite: Option<SatelliteFacts>,
    /// Versions of the storage packages (installed or not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[schemars(length(max = 32))]
    pub packages: Vec<PackageFacts>,
    /// The storage and network kernel modules that are loaded, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub modules: Vec<String>,
    /// Reads that failed, so the fact they would have given is missing rather than empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["source".into()]))]
    #[schemars(length(max = 32))]
    pub unreadable: Vec<UnreadableFact>,
    /// The node's `/etc/vx-rail/node.conf` as the agent read and parsed it (what the legacy
    /// script configures the host from); absent when the file does not exist. A file that does
    /// not parse is listed in `unreadable` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_config: Option<crate::hostconfig::HostConfig>,
}

/// One VLAN sub-interface as the host shows it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VlanFacts {
    /// Interface name, for example `bond0.100`.
    #[schemars(length(min = 1, max = 15))]
    pub name: String,
    /// 802.1Q VLAN ID.
    #[schemars(range(min = 1, max = 4094))]
    pub id: i32,
    /// The interface the VLAN sits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Link state (`up` when the interface is up with carrier).
    pub link_state: LinkState,
    /// Addresses in CIDR notation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

/// The LINSTOR satellite on the node.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SatelliteFacts {
    /// The service's state as the service manager prints it (`active`, `inactive`, `failed`, …).
    pub service: String,
    /// Whether the LINSTOR controller lists this node, and in which state; absent when the
    /// controller could not be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<SatelliteState>,
}

/// One package's version on the host.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PackageFacts {
    /// Package name, for example `drbd-dkms`.
    pub name: String,
    /// The installed version; absent when the package is not installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `installed`, `absent`, or the package manager's word for a broken install.
    pub state: String,
}

/// A read that failed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UnreadableFact {
    /// What was read, for example `ip -j -d link show` or `drbdadm status all`.
    pub source: String,
    /// Why it could not be read: the exit code and error, or where the parser stopped.
    pub message: String,
}

impl NodeFactsSpec {
    /// The facts with their time left out: two reads of an unchanged host compare equal.
    pub fn same_facts(&self, other: &NodeFactsSpec) -> bool {
        let strip = |s: &NodeFactsSpec| NodeFactsSpec {
            observed_at: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            ..s.clone()
        };
        strip(self) == strip(other)
    }
}
