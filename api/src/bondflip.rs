//! `BondFlip`: changing a bond's active slave or mode on one node, guarded by the state the flip
//! expects to start from, so that a decision made on stale state is refused instead of applied.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{PhaseTransition, WorkflowOwner};
use crate::edgenode::BondMode;

/// Which bond to change, from which state to which.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "nodewright.io",
    version = "v1alpha1",
    kind = "BondFlip",
    namespaced,
    status = "BondFlipStatus",
    shortname = "bf",
    category = "nodewright",
    selectable = ".spec.nodeName",
    doc = "A change of one bond's active slave or mode on one node, with its phase, history and rollback.",
    printcolumn(
        name = "Owner",
        type_ = "string",
        json_path = ".spec.owner",
        description = "legacy (observed) or operator"
    ),
    printcolumn(
        name = "Node",
        type_ = "string",
        json_path = ".spec.nodeName",
        description = "Node"
    ),
    printcolumn(
        name = "Bond",
        type_ = "string",
        json_path = ".spec.bond",
        description = "Bond interface"
    ),
    printcolumn(
        name = "To-Mode",
        type_ = "string",
        json_path = ".spec.to.mode",
        description = "Target mode"
    ),
    printcolumn(
        name = "To-Slave",
        type_ = "string",
        json_path = ".spec.to.activeSlave",
        description = "Target active slave"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Current phase"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.to.mode) || has(self.to.activeSlave)").message("to must set mode, activeSlave or both"))]
#[x_kube(validation = Rule::new("(has(self.to.mode) && self.to.mode != self.from.mode) || (has(self.to.activeSlave) && (!has(self.from.activeSlave) || self.to.activeSlave != self.from.activeSlave))").message("the target must differ from the current state: to must change the mode or the active slave"))]
#[x_kube(validation = Rule::new("!has(self.to.activeSlave) || (has(self.to.mode) ? self.to.mode : self.from.mode) in ['active-backup', 'balance-tlb', 'balance-alb']").message("an active slave exists only in active-backup, balance-tlb and balance-alb modes"))]
#[x_kube(validation = Rule::new("self == oldSelf").message("BondFlip spec is immutable; create a new BondFlip"))]
pub struct BondFlipSpec {
    /// `legacy`: observed from the legacy script; `operator`: carried out by Nodewright.
    pub owner: WorkflowOwner,
    /// The node the bond is on: a Node name (DNS-1123 subdomain).
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::common::NODE_NAME_PATTERN))]
    pub node_name: String,
    /// The bond interface, for example `bond0`.
    #[schemars(length(min = 1, max = 15))]
    pub bond: String,
    /// The state the bond is in when the flip is decided. The flip is refused if the bond is no
    /// longer in this state when it runs.
    pub from: BondState,
    /// The state to move to.
    pub to: BondTarget,
}

/// A bond's mode and active slave.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BondState {
    /// Bonding mode.
    pub mode: BondMode,
    /// Active slave, in modes that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    pub active_slave: Option<String>,
}

/// What to change: the mode, the active slave, or both.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BondTarget {
    /// New bonding mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<BondMode>,
    /// New active slave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    pub active_slave: Option<String>,
}

/// Bond flip phases.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum BondFlipPhase {
    /// Accepted, not started.
    Pending,
    /// Checking that the bond is still in the `from` state and the target slave has link.
    Preflight,
    /// Changing the bond.
    Flipping,
    /// Checking that traffic flows on the new configuration.
    Verifying,
    /// Finished.
    Completed,
    /// Returning the bond to its `from` state.
    RollingBack,
    /// Rollback finished.
    RolledBack,
    /// Stopped and could not roll back; the message says where.
    Failed,
}

/// Progress of the flip.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BondFlipStatus {
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BondFlipPhase>,
    /// Every phase entered, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<PhaseTransition<BondFlipPhase>>,
    /// The bond as observed when the flip finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<BondState>,
    /// When the flip finished, rolled back or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// `Complete` and `Failed`, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
