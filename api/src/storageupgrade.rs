//! `StorageUpgrade`: an upgrade of the DRBD/LINSTOR stack across a site, node by node, through the
//! legacy script's 21 states, with per-node history, failure and rollback.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{ClusterRef, PhaseTransition, WorkflowOwner};

/// Which storage stack version to move the site to, and in which node order.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "nodewright.io",
    version = "v1alpha1",
    kind = "StorageUpgrade",
    namespaced,
    status = "StorageUpgradeStatus",
    shortname = "su",
    category = "nodewright",
    doc = "An upgrade of the DRBD/LINSTOR storage stack across an edge site, node by node through 21 states.",
    printcolumn(
        name = "Owner",
        type_ = "string",
        json_path = ".spec.owner",
        description = "legacy (observed) or operator"
    ),
    printcolumn(
        name = "From",
        type_ = "string",
        json_path = ".spec.fromVersion",
        description = "Version before"
    ),
    printcolumn(
        name = "To",
        type_ = "string",
        json_path = ".spec.toVersion",
        description = "Version after"
    ),
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.state",
        description = "Current state"
    ),
    printcolumn(
        name = "Node",
        type_ = "string",
        json_path = ".status.currentNode",
        description = "Node being upgraded"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.toVersion != self.fromVersion").message("toVersion must differ from fromVersion"))]
#[x_kube(validation = Rule::new("self.owner == oldSelf.owner && self.clusterRef == oldSelf.clusterRef && self.fromVersion == oldSelf.fromVersion && self.toVersion == oldSelf.toVersion && (has(self.nodeOrder) ? self.nodeOrder : []) == (has(oldSelf.nodeOrder) ? oldSelf.nodeOrder : [])").message("a StorageUpgrade's owner, cluster, versions and node order are immutable; only rollback may be set"))]
pub struct StorageUpgradeSpec {
    /// `legacy`: observed from the legacy script; `operator`: carried out by Nodewright.
    pub owner: WorkflowOwner,
    /// The site being upgraded.
    pub cluster_ref: ClusterRef,
    /// Storage stack version before the upgrade.
    #[schemars(
        regex(pattern = r"^[0-9]+(\.[0-9]+){1,3}([-+~][0-9A-Za-z.~+-]+)?$"),
        length(max = 64)
    )]
    pub from_version: String,
    /// Storage stack version after the upgrade.
    #[schemars(
        regex(pattern = r"^[0-9]+(\.[0-9]+){1,3}([-+~][0-9A-Za-z.~+-]+)?$"),
        length(max = 64)
    )]
    pub to_version: String,
    /// Nodes in the order they are upgraded; empty means every node of the site in name order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253), regex(pattern = crate::common::NODE_NAME_PATTERN)))]
    // A set: the server refuses a node named twice, and keeps the order given.
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub node_order: Vec<String>,
    /// Set to true to stop the upgrade and roll every touched node back to `fromVersion`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
}

/// The 21 states of the storage upgrade. States 2–17 run once per node, in order; the first
/// node's `Preflight` starts only after `Pending`, and the last node's `Uncordon` leads to
/// `Completed`. From any per-node state a failure leads to `RollingBack`, then `RolledBack` or,
/// when rollback itself fails, `Failed`.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, schemars::JsonSchema,
)]
pub enum UpgradeState {
    /// 1. Accepted, not started.
    Pending,
    /// 2. Packages available, disk space, no other upgrade running.
    Preflight,
    /// 3. Every DRBD resource has quorum without this node.
    QuorumCheck,
    /// 4. The LINSTOR controller database and DRBD configuration are backed up.
    BackupConfig,
    /// 5. The node is cordoned and given the upgrade taint.
    CordonAndTaint,
    /// 6. Resources that are Primary here are moved to a peer.
    DemotePrimaries,
    /// 7. The LINSTOR satellite is stopped.
    StopSatellite,
    /// 8. DRBD resources are taken down on this node.
    DownResources,
    /// 9. The DRBD kernel modules are unloaded.
    UnloadModules,
    /// 10. The new packages are installed.
    InstallPackages,
    /// 11. The new kernel modules are loaded.
    LoadModules,
    /// 12. The LINSTOR satellite is started.
    StartSatellite,
    /// 13. DRBD resources are brought up.
    UpResources,
    /// 14. Waiting until every resource is UpToDate with every peer.
    WaitResync,
    /// 15. The running versions match `toVersion`.
    VerifyVersion,
    /// 16. The upgrade taint is removed.
    RemoveTaint,
    /// 17. The node is uncordoned.
    Uncordon,
    /// 18. Every node is upgraded.
    Completed,
    /// 19. Touched nodes are being returned to `fromVersion`.
    RollingBack,
    /// 20. Rollback finished.
    RolledBack,
    /// 21. Stopped; rollback was not possible. The message says where.
    Failed,
}

impl UpgradeState {
    /// Every state, in the order of the table above.
    pub const ALL: [UpgradeState; 21] = [
        UpgradeState::Pending,
        UpgradeState::Preflight,
        UpgradeState::QuorumCheck,
        UpgradeState::BackupConfig,
        UpgradeState::CordonAndTaint,
        UpgradeState::DemotePrimaries,
        UpgradeState::StopSatellite,
        UpgradeState::DownResources,
        UpgradeState::UnloadModules,
        UpgradeState::InstallPackages,
        UpgradeState::LoadModules,
        UpgradeState::StartSatellite,
        UpgradeState::UpResources,
        UpgradeState::WaitResync,
        UpgradeState::VerifyVersion,
        UpgradeState::RemoveTaint,
        UpgradeState::Uncordon,
        UpgradeState::Completed,
        UpgradeState::RollingBack,
        UpgradeState::RolledBack,
        UpgradeState::Failed,
    ];

    /// Whether the upgrade has ended in this state.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            UpgradeState::Completed | UpgradeState::RolledBack | UpgradeState::Failed
        )
    }

    /// Whether this state runs once per node.
    pub fn is_per_node(self) -> bool {
        self >= UpgradeState::Preflight && self <= UpgradeState::Uncordon
    }
}

/// Progress of the upgrade.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageUpgradeStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<UpgradeState>,
    /// When the current state was entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// The node the per-node states currently apply to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_node: Option<String>,
    /// The nodes in the order they are upgraded, fixed when the upgrade leaves `Pending`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub order: Vec<String>,
    /// How far the upgrade is: nodes done out of the nodes to upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<UpgradeProgress>,
    /// What the upgrade waits for now, or why it moved on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Per-node progress and history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["node".into()]))]
    pub nodes: Vec<NodeUpgradeStatus>,
    /// The state in which the upgrade failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_state: Option<UpgradeState>,
    /// The node on which it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_node: Option<String>,
    /// When the upgrade started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When it completed, rolled back or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// `Progressing`, `Complete`, `RolledBack` and `Failed`, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// One node's progress through the per-node states.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeUpgradeStatus {
    /// Node name.
    pub node: String,
    /// The node's current state: `Pending` before its turn, a per-node state during it,
    /// `Completed` after it (also for a node already on the target version), `RollingBack`,
    /// `RolledBack` or `Failed` in a rollback.
    pub state: UpgradeState,
    /// When the node entered its current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// The node's boot id when it entered its current state: a different one later means it
    /// rebooted in the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The host step of the current state, as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<UpgradeStep>,
    /// What `BackupConfig` recorded for the rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<UpgradeBackup>,
    /// Every state this node entered, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<PhaseTransition<UpgradeState>>,
}

/// Nodes done out of the nodes to upgrade.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeProgress {
    /// Nodes that finished their per-node states (or were already on the target version).
    pub done: u32,
    /// Nodes to upgrade.
    pub total: u32,
}

/// One host step of a node's state: the NodeTask that carries it out and what became of it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStep {
    /// The NodeTask's name (its idempotency key).
    pub task: String,
    /// The step and its arguments, as the task asks for them.
    pub step: String,
    /// The task's phase, once an agent took it (`Pending`, `Running`, `Succeeded`, `Failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The step's output, truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub output: Option<String>,
    /// Why the task is in its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What `BackupConfig` saved and read on a node, which is what its rollback restores.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeBackup {
    /// The agent's backup directory (DRBD status and configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// The installed storage package version (upstream, without the package revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_version: Option<String>,
    /// The DRBD kernel module version that was loaded; none when no module was loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,
    /// Whether the LINSTOR satellite was active.
    pub satellite_active: bool,
    /// The DRBD resources that were Primary on the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primaries: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_twenty_one_distinct_states() {
        let set: std::collections::BTreeSet<_> = UpgradeState::ALL.iter().collect();
        assert_eq!(set.len(), 21);
    }

    #[test]
    fn only_completed_rolled_back_and_failed_are_terminal() {
        let terminal: Vec<_> = UpgradeState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                UpgradeState::Completed,
                UpgradeState::RolledBack,
                UpgradeState::Failed
            ]
        );
    }

    #[test]
    fn sixteen_states_run_once_per_node() {
        assert_eq!(
            UpgradeState::ALL.into_iter().filter(|s| s.is_per_node()).count(),
            16
        );
        assert!(!UpgradeState::Pending.is_per_node());
        assert!(!UpgradeState::RollingBack.is_per_node());
    }
}
