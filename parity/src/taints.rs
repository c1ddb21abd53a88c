//! Taint management, decided: the `vx-rail.io/storage-not-ready` taint and the
//! `vx-rail.io/storage-ready` label of one node from its observed storage facts, and the clean-up of
//! a leftover upgrade taint. The same rules as the script's `taints_run` (`legacy/lib/taints.sh`),
//! written as a pure function of typed facts instead of shell variables.

use std::fmt;

use nodewright_parsers::contract::{label, taint};
use nodewright_parsers::{StorageTaintReason, UpgradeState};

/// The storage-not-ready taint.
pub const STORAGE_TAINT: &str = taint::STORAGE_NOT_READY;
/// The storage upgrade's taint.
pub const UPGRADE_TAINT: &str = taint::UPGRADE_IN_PROGRESS;
/// The storage-ready label.
pub const READY_LABEL: &str = label::STORAGE_READY;

/// What the node's last report says about its storage (the script's `status` blob).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageFacts {
    /// The node is recovering from a reboot.
    pub recovering: bool,
    /// `systemctl is-active linstor-satellite`.
    pub satellite: String,
    /// Whether `drbdadm status` could be read.
    pub drbd_readable: bool,
    /// DRBD resources on the node.
    pub resources: u64,
    /// Of them, those whose local disk is UpToDate or Diskless.
    pub uptodate: u64,
    /// Whether a resync is running.
    pub syncing: bool,
}

/// The taint and label state of a Node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeTaints {
    /// The storage-not-ready taint's value (its reason), if the taint is there.
    pub storage: Option<String>,
    /// Whether the upgrade taint is there.
    pub upgrade: bool,
    /// The storage-ready label's value, if set.
    pub ready_label: Option<String>,
}

/// One change to a Node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaintAction {
    /// Put on (or change the reason of) the storage-not-ready taint.
    Taint {
        /// The reason, the taint's value.
        reason: String,
    },
    /// Take the storage-not-ready taint off.
    Untaint,
    /// Set the storage-ready label.
    Label {
        /// `true` or `false`.
        ready: bool,
    },
    /// Take off an upgrade taint the upgrade left behind when it ended.
    RemoveUpgradeTaint,
}

impl fmt::Display for TaintAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaintAction::Taint { reason } => write!(f, "taint {STORAGE_TAINT}={reason}:{}", taint::EFFECT),
            TaintAction::Untaint => write!(f, "untaint {STORAGE_TAINT}"),
            TaintAction::Label { ready } => write!(f, "label {READY_LABEL}={ready}"),
            TaintAction::RemoveUpgradeTaint => write!(f, "untaint {UPGRADE_TAINT}"),
        }
    }
}

/// Why the node's storage is not ready, or `None` when it is; first match wins, as in the script.
pub fn not_ready_reason(facts: &StorageFacts) -> Option<StorageTaintReason> {
    if facts.recovering {
        Some(StorageTaintReason::BootRecovery)
    } else if facts.satellite != "active" {
        Some(StorageTaintReason::SatelliteDown)
    } else if !facts.drbd_readable {
        Some(StorageTaintReason::DrbdUnknown)
    } else if facts.uptodate != facts.resources {
        Some(if facts.syncing {
            StorageTaintReason::Resync
        } else {
            StorageTaintReason::NotUptodate
        })
    } else {
        None
    }
}

/// The Node state the rules want: the storage taint's reason, the label, and whether the upgrade
/// taint may stay.
pub fn desired(facts: &StorageFacts, current: &NodeTaints, upgrade: Option<UpgradeState>) -> NodeTaints {
    let reason = not_ready_reason(facts);
    let upgrade_over = matches!(upgrade, Some(UpgradeState::Completed | UpgradeState::RolledBack));
    NodeTaints {
        ready_label: Some((reason.is_none()).to_string()),
        storage: reason.map(|r| r.as_str().to_owned()),
        upgrade: current.upgrade && !upgrade_over,
    }
}

/// The changes that take a Node from `current` to `want`, in the order the script makes them.
pub fn actions(current: &NodeTaints, want: &NodeTaints) -> Vec<TaintAction> {
    let mut out = Vec::new();
    match (&current.storage, &want.storage) {
        (Some(_), None) => out.push(TaintAction::Untaint),
        (have, Some(reason)) if have.as_ref() != Some(reason) => out.push(TaintAction::Taint {
            reason: reason.clone(),
        }),
        _ => {}
    }
    if let Some(label) = &want.ready_label
        && current.ready_label.as_ref() != Some(label)
    {
        out.push(TaintAction::Label {
            ready: label == "true",
        });
    }
    if current.upgrade && !want.upgrade {
        out.push(TaintAction::RemoveUpgradeTaint);
    }
    out
}

/// The decision for one node: what it should look like and how to get there.
pub fn decide(facts: &StorageFacts, current: &NodeTaints, upgrade: Option<UpgradeState>) -> Vec<TaintAction> {
    actions(current, &desired(facts, current, upgrade))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> StorageFacts {
        StorageFacts {
            recovering: false,
            satellite: "active".into(),
            drbd_readable: true,
            resources: 2,
            uptodate: 2,
            syncing: false,
        }
    }

    fn tainted(reason: &str) -> NodeTaints {
        NodeTaints {
            storage: Some(reason.into()),
            upgrade: false,
            ready_label: Some("false".into()),
        }
    }

    #[test]
    fn a_healthy_node_with_the_ready_label_needs_nothing() {
        let current = NodeTaints {
            ready_label: Some("true".into()),
            ..NodeTaints::default()
        };
        assert_eq!(decide(&healthy(), &current, None), vec![]);
    }

    #[test]
    fn a_resyncing_node_is_tainted_resync_and_labelled_not_ready() {
        let facts = StorageFacts {
            uptodate: 1,
            syncing: true,
            ..healthy()
        };
        let current = NodeTaints {
            ready_label: Some("true".into()),
            ..NodeTaints::default()
        };
        assert_eq!(
            decide(&facts, &current, None),
            vec![
                TaintAction::Taint {
                    reason: "resync".into()
                },
                TaintAction::Label { ready: false }
            ]
        );
    }

    #[test]
    fn the_first_reason_in_the_scripts_order_wins() {
        let all_bad = StorageFacts {
            recovering: true,
            satellite: "inactive".into(),
            drbd_readable: false,
            resources: 1,
            uptodate: 0,
            syncing: false,
        };
        assert_eq!(not_ready_reason(&all_bad), Some(StorageTaintReason::BootRecovery));
        let f = StorageFacts {
            recovering: false,
            ..all_bad.clone()
        };
        assert_eq!(not_ready_reason(&f), Some(StorageTaintReason::SatelliteDown));
        let f = StorageFacts {
            satellite: "active".into(),
            ..f
        };
        assert_eq!(not_ready_reason(&f), Some(StorageTaintReason::DrbdUnknown));
        let f = StorageFacts {
            drbd_readable: true,
            ..f
        };
        assert_eq!(not_ready_reason(&f), Some(StorageTaintReason::NotUptodate));
    }

    #[test]
    fn a_changed_reason_retaints_and_a_recovered_node_is_untainted_and_labelled_ready() {
        let facts = StorageFacts {
            uptodate: 1,
            ..healthy()
        };
        assert_eq!(
            decide(&facts, &tainted("resync"), None),
            vec![TaintAction::Taint {
                reason: "not-uptodate".into()
            }]
        );
        assert_eq!(
            decide(&healthy(), &tainted("resync"), None),
            vec![TaintAction::Untaint, TaintAction::Label { ready: true }]
        );
    }

    #[test]
    fn an_upgrade_taint_is_removed_only_after_the_upgrade_completed_or_rolled_back() {
        let current = NodeTaints {
            upgrade: true,
            ready_label: Some("true".into()),
            ..NodeTaints::default()
        };
        assert_eq!(
            decide(&healthy(), &current, Some(UpgradeState::WaitResync)),
            vec![]
        );
        assert_eq!(decide(&healthy(), &current, Some(UpgradeState::Failed)), vec![]);
        assert_eq!(
            decide(&healthy(), &current, Some(UpgradeState::Completed)),
            vec![TaintAction::RemoveUpgradeTaint]
        );
        assert_eq!(
            decide(&healthy(), &current, Some(UpgradeState::RolledBack)),
            vec![TaintAction::RemoveUpgradeTaint]
        );
    }

    #[test]
    fn actions_read_as_kubectl_would_say_them() {
        assert_eq!(
            TaintAction::Taint {
                reason: "resync".into()
            }
            .to_string(),
            "taint vx-rail.io/storage-not-ready=resync:NoSchedule"
        );
        assert_eq!(
            TaintAction::Label { ready: true }.to_string(),
            "label vx-rail.io/storage-ready=true"
        );
    }
}
