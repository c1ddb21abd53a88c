//! `EdgeCluster`: one edge site — its profile, which workflows Nodewright decides, and the health
//! rolled up from its nodes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::WorkflowMode;

/// The desired shape of one edge site and which workflows Nodewright decides for it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "nodewright.io",
    version = "v1alpha1",
    kind = "EdgeCluster",
    namespaced,
    status = "EdgeClusterStatus",
    shortname = "ec",
    category = "nodewright",
    doc = "An edge site: its profile, which workflows Nodewright decides, and the health rolled up from its nodes.",
    printcolumn(
        name = "Topology",
        type_ = "string",
        json_path = ".spec.profile.topology",
        description = "Site topology"
    ),
    printcolumn(
        name = "Nodes",
        type_ = "integer",
        json_path = ".status.nodes.total",
        description = "Nodes observed"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the site is healthy"
    ),
    printcolumn(
        name = "Legacy",
        type_ = "string",
        json_path = ".status.legacyVersion",
        description = "Version of the legacy script seen on the nodes"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.profile.topology != 'SingleNode' || !has(self.expectedNodes) || self.expectedNodes == 1").message("a SingleNode site has exactly one node: expectedNodes must be 1"))]
#[x_kube(validation = Rule::new("self.profile.topology != 'MultiNode' || !has(self.expectedNodes) || self.expectedNodes >= 2").message("a MultiNode site has at least two nodes: expectedNodes must be 2 or more"))]
pub struct EdgeClusterSpec {
    /// The kind of site this is.
    pub profile: SiteProfile,

    /// How many nodes the site should have. Health reports the site degraded while fewer are seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub expected_nodes: Option<i32>,

    /// The node that is the site's primary (it runs the LINSTOR controller) when the operator
    /// bootstraps the site. Absent: the first by name of the nodes present when the site state is
    /// created. Read once, when the operator creates the site state; the site state names the
    /// primary from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub primary_node: Option<String>,

    /// Who decides each workflow. Every workflow starts in `legacy`; move it to `shadow` to compare
    /// the operator's decisions with the script's, then to `operator` to hand it over.
    #[serde(default)]
    pub workflows: WorkflowModes,

    /// Where the legacy script keeps its state, and how quickly it must report.
    #[serde(default)]
    pub legacy: LegacySource,
}

/// The kind of site: topology, storage backend and operating system.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SiteProfile {
    /// `SingleNode` or `MultiNode`.
    pub topology: Topology,
    /// The replicated storage stack the site runs.
    #[serde(default)]
    pub storage_backend: StorageBackend,
    /// The nodes' operating system (`/etc/os-release` `ID`, for example `debian` or `rocky`, or a
    /// family, `rpm`); it selects how the node agent installs packages. Absent: Debian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub operating_system: Option<String>,
}

impl SiteProfile {
    /// The host OS family the profile names; a profile that names none is today's shape, Debian.
    pub fn os_family(&self) -> Result<crate::OsFamily, crate::UnknownOs> {
        self.operating_system
            .as_deref()
            .map_or(Ok(crate::OsFamily::Debian), crate::OsFamily::from_id)
    }
}

/// Site topology.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Topology {
    /// One node, storage not replicated.
    SingleNode,
    /// Two or more nodes with replicated storage.
    MultiNode,
}

/// Storage backend.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum StorageBackend {
    /// LINSTOR managing DRBD 9 replicated volumes.
    #[default]
    LinstorDrbd,
}

/// The mode of every workflow Nodewright can take over. A workflow may go from `legacy` to `shadow`
/// to `operator`, and back at any step; it cannot skip `shadow` on the way up.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowModes {
    /// First-node initialisation and joins of later nodes.
    #[serde(default)]
    #[x_kube(validation = Rule::new("!(oldSelf == 'legacy' && self == 'operator')").message("bootstrap cannot move from legacy to operator directly: run it in shadow first"))]
    pub bootstrap: WorkflowMode,
    /// Single-to-multi-node migration.
    #[serde(default)]
    #[x_kube(validation = Rule::new("!(oldSelf == 'legacy' && self == 'operator')").message("migration cannot move from legacy to operator directly: run it in shadow first"))]
    pub migration: WorkflowMode,
    /// The 21-state storage upgrade.
    #[serde(default)]
    #[x_kube(validation = Rule::new("!(oldSelf == 'legacy' && self == 'operator')").message("storageUpgrade cannot move from legacy to operator directly: run it in shadow first"))]
    pub storage_upgrade: WorkflowMode,
    /// Bond active-slave and mode changes.
    #[serde(default)]
    #[x_kube(validation = Rule::new("!(oldSelf == 'legacy' && self == 'operator')").message("bondFlip cannot move from legacy to operator directly: run it in shadow first"))]
    pub bond_flip: WorkflowMode,
    /// Storage-not-ready and upgrade taints.
    #[serde(default)]
    #[x_kube(validation = Rule::new("!(oldSelf == 'legacy' && self == 'operator')").message("taints cannot move from legacy to operator directly: run it in shadow first"))]
    pub taints: WorkflowMode,
    /// Recovery after a node reboots.
    #[serde(default)]
    #[x_kube(validation = Rule::new("!(oldSelf == 'legacy' && self == 'operator')").message("bootRecovery cannot move from legacy to operator directly: run it in shadow first"))]
    pub boot_recovery: WorkflowMode,
    /// The steady-state network: bond and VLAN assembly, re-enslaving slaves, carrier failover.
    #[serde(default)]
    #[x_kube(validation = Rule::new("!(oldSelf == 'legacy' && self == 'operator')").message("network cannot move from legacy to operator directly: run it in shadow first"))]
    pub network: WorkflowMode,
    /// The steady-state storage: DRBD modules and LINSTOR services, satellite and storage-pool
    /// registration, replica placement.
    #[serde(default)]
    #[x_kube(validation = Rule::new("!(oldSelf == 'legacy' && self == 'operator')").message("storage cannot move from legacy to operator directly: run it in shadow first"))]
    pub storage: WorkflowMode,
}

/// Where the legacy script keeps its state.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LegacySource {
    /// Namespace of the legacy DaemonSet and its ConfigMaps.
    #[serde(default = "default_legacy_namespace")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Name of the legacy DaemonSet.
    #[serde(default = "default_daemonset")]
    #[schemars(length(min = 1, max = 253))]
    pub daemon_set: String,
    /// A node whose legacy script has not reported for this many seconds is reported `LegacyStale`.
    #[serde(default = "default_stale_after")]
    #[schemars(range(min = 10, max = 86400))]
    pub stale_after_seconds: i32,
}

impl Default for LegacySource {
    fn default() -> Self {
        LegacySource {
            namespace: default_legacy_namespace(),
            daemon_set: default_daemonset(),
            stale_after_seconds: default_stale_after(),
        }
    }
}

fn default_legacy_namespace() -> String {
    "kube-system".to_owned()
}
fn default_daemonset() -> String {
    "vx-rail-node-init".to_owned()
}
fn default_stale_after() -> i32 {
    300
}

/// What Nodewright observes of the site.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EdgeClusterStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Health rolled up from the nodes: `Ready`, `NetworkDegraded`, `StorageDegraded`,
    /// `UpgradeInProgress`, `LegacyStale`, `ParseErrors`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Node counts by health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodeSummary>,
    /// The legacy script version seen on the nodes; several versions are joined with commas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_version: Option<String>,
    /// When the legacy script last reported from any node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_legacy_heartbeat: Option<Time>,
    /// Who decides each workflow now, as projected to the legacy script, and why a requested mode
    /// is not in effect yet. Written by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takeover: Option<TakeoverStatus>,
    /// The most recent divergences between what the legacy script did and what the operator would
    /// have done, for workflows in `shadow`, newest last (at most 20). Written by the operator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub divergences: Vec<Divergence>,
}

/// The takeover as the operator projects it to the legacy script.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TakeoverStatus {
    /// The `generation` of the takeover ConfigMap the script reads; it grows with every change.
    #[schemars(range(min = 0))]
    pub generation: i64,
    /// One entry per workflow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["workflow".into()]))]
    pub workflows: Vec<WorkflowTakeover>,
}

/// One workflow's takeover.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowTakeover {
    /// The workflow, as the takeover ConfigMap names it (`migration`, `storage-upgrade`, ...).
    #[schemars(length(min = 1, max = 63))]
    pub workflow: String,
    /// The mode the spec asks for.
    pub requested: WorkflowMode,
    /// The mode projected to the script and acted on by the operator.
    pub effective: WorkflowMode,
    /// Whether every node's script that could still act has read the effective mode (a node
    /// whose legacy pod is gone, or NotReady past the grace period with no pod running, cannot);
    /// the operator acts on a workflow in `operator` mode only once it has.
    pub acknowledged: bool,
    /// Why the requested mode is not in effect, or what the takeover waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Divergences recorded for the workflow since the operator started.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub divergences: i64,
}

/// What the legacy script did against what the operator would have done, from the same observed
/// state.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Divergence {
    /// When it was recorded.
    pub at: Time,
    /// The workflow.
    #[schemars(length(min = 1, max = 63))]
    pub workflow: String,
    /// The node it concerns, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// What the script did.
    #[schemars(length(max = 1024))]
    pub script: String,
    /// What the operator would have done.
    #[schemars(length(max = 1024))]
    pub operator: String,
    /// The observed state both decided from.
    #[schemars(length(max = 2048))]
    pub observed: String,
}

/// Node counts by health.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NodeSummary {
    /// Nodes observed.
    pub total: i32,
    /// Nodes whose `Ready` condition is true.
    pub ready: i32,
    /// Nodes with a degraded bond or VLAN.
    pub network_degraded: i32,
    /// Nodes with degraded DRBD resources or an offline LINSTOR satellite.
    pub storage_degraded: i32,
}
