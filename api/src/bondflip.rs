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

/// The first word of a `bond-flip` step's output when the agent undid the flip on the node
/// (its probe failed, or the flip was not confirmed in time): the operator reads it as a
/// rollback, not as a failure that left the bond changed.
pub const REVERTED: &str = "reverted";

/// Every bonding mode with the name the kernel, `node.conf` and `ip` give it.
pub const MODE_NAMES: [(BondMode, &str); 7] = [
    (BondMode::BalanceRr, "balance-rr"),
    (BondMode::ActiveBackup, "active-backup"),
    (BondMode::BalanceXor, "balance-xor"),
    (BondMode::Broadcast, "broadcast"),
    (BondMode::Lacp, "802.3ad"),
    (BondMode::BalanceTlb, "balance-tlb"),
    (BondMode::BalanceAlb, "balance-alb"),
];

/// The name of a bonding mode (`802.3ad`, `active-backup`, …).
pub fn mode_name(mode: BondMode) -> &'static str {
    MODE_NAMES
        .iter()
        .find(|(m, _)| *m == mode)
        .map_or("balance-rr", |(_, n)| n)
}

/// The bonding mode a name spells, if it is one.
pub fn mode_named(name: &str) -> Option<BondMode> {
    MODE_NAMES.iter().find(|(_, n)| *n == name).map(|(m, _)| *m)
}

/// Whether a mode has an active slave.
pub fn has_active_slave(mode: BondMode) -> bool {
    matches!(
        mode,
        BondMode::ActiveBackup | BondMode::BalanceTlb | BondMode::BalanceAlb
    )
}

impl BondState {
    /// How a `bond-flip` step's argument spells the state: `mode`, or `mode:active-slave`.
    pub fn to_arg(&self) -> String {
        match &self.active_slave {
            Some(s) => format!("{}:{s}", mode_name(self.mode)),
            None => mode_name(self.mode).to_owned(),
        }
    }

    /// Reads [`BondState::to_arg`]'s spelling back; `Err` says what is wrong.
    pub fn from_arg(arg: &str) -> Result<BondState, String> {
        let (mode, slave) = match arg.split_once(':') {
            Some((m, s)) => (m, Some(s)),
            None => (arg, None),
        };
        let mode = mode_named(mode).ok_or_else(|| format!("{mode:?} is not a bonding mode"))?;
        let active_slave = match slave {
            Some("") => return Err("the active slave after `:` is empty".to_owned()),
            Some(s) if !has_active_slave(mode) => {
                return Err(format!(
                    "mode {} has no active slave ({s} given)",
                    mode_name(mode)
                ));
            }
            Some(s) => Some(s.to_owned()),
            None => None,
        };
        Ok(BondState { mode, active_slave })
    }

    /// Whether a bond in mode `mode` with active slave `active` is in this state (a state
    /// without an active slave accepts whichever the driver chose).
    pub fn matches(&self, mode: BondMode, active: Option<&str>) -> bool {
        self.mode == mode && self.active_slave.as_deref().is_none_or(|s| active == Some(s))
    }
}

impl BondFlipSpec {
    /// The state the flip moves the bond to: the target's mode (else the current one) and the
    /// target's active slave; a mode change without one leaves the choice to the driver, an
    /// active-slave change keeps the mode.
    pub fn target_state(&self) -> BondState {
        let mode = self.to.mode.unwrap_or(self.from.mode);
        BondState {
            mode,
            active_slave: self.to.active_slave.clone().or_else(|| {
                (self.to.mode.is_none_or(|m| m == self.from.mode))
                    .then(|| self.from.active_slave.clone())
                    .flatten()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_state_is_spelled_mode_and_active_slave_and_read_back() {
        let s = BondState {
            mode: BondMode::ActiveBackup,
            active_slave: Some("eno2".into()),
        };
        assert_eq!(s.to_arg(), "active-backup:eno2");
        assert_eq!(BondState::from_arg("active-backup:eno2").unwrap(), s);
        assert_eq!(
            BondState::from_arg("802.3ad").unwrap(),
            BondState {
                mode: BondMode::Lacp,
                active_slave: None
            }
        );
        assert!(
            BondState::from_arg("802.3ad:eno1")
                .unwrap_err()
                .contains("no active slave")
        );
        assert!(
            BondState::from_arg("fast")
                .unwrap_err()
                .contains("not a bonding mode")
        );
        assert!(BondState::from_arg("active-backup:").is_err());
    }

    #[test]
    fn a_flips_target_keeps_what_it_does_not_change() {
        let spec = |to_mode: Option<BondMode>, to_slave: Option<&str>| BondFlipSpec {
            owner: crate::WorkflowOwner::Operator,
            node_name: "edge-1".into(),
            bond: "bond0".into(),
            from: BondState {
                mode: BondMode::ActiveBackup,
                active_slave: Some("eno1".into()),
            },
            to: BondTarget {
                mode: to_mode,
                active_slave: to_slave.map(str::to_owned),
            },
        };
        assert_eq!(
            spec(Some(BondMode::Lacp), None).target_state().to_arg(),
            "802.3ad"
        );
        assert_eq!(
            spec(None, Some("eno2")).target_state().to_arg(),
            "active-backup:eno2"
        );
        assert!(
            spec(None, None)
                .target_state()
                .matches(BondMode::ActiveBackup, Some("eno1"))
        );
        assert!(
            !spec(Some(BondMode::Lacp), None)
                .target_state()
                .matches(BondMode::ActiveBackup, None)
        );
    }
}
