//! Which [`Message`] a log record is, from its component and its text: the messages each component
//! logs under its own name, then the ones any component logs (the shared helpers). The inverse of
//! the table in `messages`, spelled as matches on the text (no allocation, no lookup table).

use super::Message;
use crate::legacy::Component;

impl Message {
    /// The message a record of `component` with text `text` is, if the contract lists it.
    pub fn of(component: &Component, text: &str) -> Option<Message> {
        let own = match component {
            Component::Main => match text {
                "vx-rail-node-init starting" => Some(Message::Starting),
                "iteration finished" => Some(Message::IterationFinished),
                _ => None,
            },
            Component::Config => match text {
                "node.conf not readable" => Some(Message::NodeConfNotReadable),
                "unknown node.conf key ignored" => Some(Message::UnknownNodeConfKeyIgnored),
                "node.conf needs BOND_SLAVES, STORAGE_VLAN_ID and STORAGE_IP" => {
                    Some(Message::NodeConfIncomplete)
                }
                "node.conf has a malformed IP, VLAN id or miimon" => Some(Message::NodeConfMalformed),
                _ => None,
            },
            Component::Snapshot => match text {
                "cluster state read" => Some(Message::ClusterStateRead),
                "boot id found on the Node only, recording it on the host" => {
                    Some(Message::BootIdFoundOnNodeOnly)
                }
                "first start on this node, recording the boot id without recovery" => {
                    Some(Message::FirstStart)
                }
                "takeover modes read" => Some(Message::TakeoverModesRead),
                "unknown takeover mode, treating the workflow as legacy" => {
                    Some(Message::UnknownTakeoverMode)
                }
                "takeover generation is not a positive integer, acknowledging 0" => {
                    Some(Message::TakeoverGenerationInvalid)
                }
                "takeover ConfigMap could not be read, not acting this iteration" => {
                    Some(Message::TakeoverUnreadable)
                }
                "boot recovered by nodewright, recording the boot id on the host" => {
                    Some(Message::BootRecoveredByNodewright)
                }
                _ => None,
            },
            Component::Bootstrap => match text {
                "no cluster state found, initialising the site with this node as primary" => {
                    Some(Message::InitialisingSite)
                }
                "cluster state was created by another node meanwhile, will join next iteration" => {
                    Some(Message::ClusterStateCreatedMeanwhile)
                }
                "site initialised" => Some(Message::SiteInitialised),
                "joining site" => Some(Message::JoiningSite),
                "storage VLAN differs from the site network plan" => {
                    Some(Message::StorageVlanDiffersFromPlan)
                }
                "storage IP changed, updating member list" => Some(Message::StorageIpChanged),
                "network plan updated" => Some(Message::NetworkPlanUpdated),
                "node ConfigMap created" => Some(Message::NodeConfigMapCreated),
                "node ConfigMap could not be created (exists?)" => Some(Message::NodeConfigMapNotCreated),
                _ => None,
            },
            Component::Network => match text {
                "bond flip in progress by the node agent, leaving the bond alone" => {
                    Some(Message::BondHeldByAgentFlip)
                }
                "bond flip marker is past its deadline, not holding the bond" => {
                    Some(Message::BondFlipMarkerStale)
                }
                "bond is down, bringing it up" => Some(Message::BondDownBringingUp),
                "bond missing, creating it" => Some(Message::BondMissingCreating),
                "bond created" => Some(Message::BondCreated),
                "bond status file missing" => Some(Message::BondStatusFileMissing),
                "slave missing from bond, re-enslaving" => Some(Message::SlaveReenslaved),
                "slave interface does not exist" => Some(Message::SlaveInterfaceDoesNotExist),
                "no bond slave has carrier" => Some(Message::NoBondSlaveHasCarrier),
                "active slave has no carrier, switching" => Some(Message::ActiveSlaveWithoutCarrier),
                "bond failover detected" => Some(Message::BondFailoverDetected),
                "bond flip requested" => Some(Message::BondFlipRequested),
                "changing bond mode, traffic on the bond stops briefly" => Some(Message::ChangingBondMode),
                "bond flip applied" => Some(Message::BondFlipApplied),
                "bond flip failed" => Some(Message::BondFlipFailed),
                "VLAN missing, creating it" => Some(Message::VlanMissingCreating),
                "VLAN address missing, adding it" => Some(Message::VlanAddressMissingAdding),
                "network degraded" => Some(Message::NetworkDegraded),
                _ => None,
            },
            Component::Storage => match text {
                "node is in the storage upgrade, leaving services and modules alone" => {
                    Some(Message::NodeInStorageUpgrade)
                }
                "reboot detected, boot recovery brings storage up" => Some(Message::RebootLeftToBootRecovery),
                "DRBD module not loaded, loading it" => Some(Message::LoadingDrbdModule),
                "linstor-satellite not running, starting it" => Some(Message::StartingLinstorSatellite),
                "linstor-controller not running, starting it" => Some(Message::StartingLinstorController),
                "linstor controller not answering" => Some(Message::LinstorControllerNotAnswering),
                "linstor node list changed" => Some(Message::LinstorNodeListChanged),
                "member has no storage IP, not registering" => Some(Message::MemberWithoutStorageIp),
                "registering LINSTOR satellite" => Some(Message::RegisteringLinstorSatellite),
                "LINSTOR satellite not online" => Some(Message::LinstorSatelliteNotOnline),
                "creating storage pool" => Some(Message::CreatingStoragePool),
                "placing replica" => Some(Message::PlacingReplica),
                "resource has fewer replicas than the site wants" => Some(Message::ResourceUnderReplicated),
                "replicas placed" => Some(Message::ReplicasPlaced),
                "drbdadm status failed" => Some(Message::DrbdadmStatusFailed),
                "local DRBD replicas not UpToDate" => Some(Message::LocalDrbdReplicasNotUpToDate),
                _ => None,
            },
            Component::Migration => match text {
                "nodes waiting to join a single-node site, migration requested" => {
                    Some(Message::MigrationRequested)
                }
                "unknown migration phase, not touching it" => Some(Message::UnknownMigrationPhase),
                "migration owned by nodewright, not touching it" => Some(Message::MigrationOwnedByNodewright),
                "migration phase changed" => Some(Message::MigrationPhaseChanged),
                "preflight waiting" => Some(Message::PreflightWaiting),
                "preflight passed" => Some(Message::MigrationPreflightPassed),
                "waiting for joining nodes' bond and storage VLAN" => Some(Message::WaitingForJoiningNetwork),
                "waiting for Node objects" => Some(Message::WaitingForNodeObjects),
                "waiting for satellites to come online" => Some(Message::WaitingForSatellitesToComeOnline),
                "new replicas are UpToDate" => Some(Message::NewReplicasAreUpToDate),
                "migration completed" => Some(Message::MigrationCompleted),
                "migration failed, rolling back" => Some(Message::MigrationFailed),
                "rolling back migration" => Some(Message::RollingBackMigration),
                "storage pool left for node delete" => Some(Message::StoragePoolLeftForNodeDelete),
                "migration rollback failed, site needs attention" => Some(Message::MigrationRollbackFailed),
                "migration rolled back, site is single-node" => Some(Message::MigrationRolledBack),
                _ => None,
            },
            Component::Taints => match text {
                "storage not ready, tainting node" => Some(Message::StorageNotReadyTainting),
                "storage ready, removing taint" => Some(Message::StorageReadyRemovingTaint),
                "upgrade finished but its taint is still on the node, removing it" => {
                    Some(Message::LeftoverUpgradeTaintRemoved)
                }
                _ => None,
            },
            Component::Boot => match text {
                "reboot detected during storage upgrade, upgrade machine resumes instead" => {
                    Some(Message::RebootDuringStorageUpgrade)
                }
                "reboot detected, starting boot recovery" => Some(Message::StartingBootRecovery),
                "resuming boot recovery" => Some(Message::ResumingBootRecovery),
                "boot recovery phase" => Some(Message::BootRecoveryPhase),
                "storage taint was not there to remove" => Some(Message::StorageTaintAlreadyGone),
                "no DRBD resources configured on this node, none to start" => {
                    Some(Message::NoDrbdResourcesToStart)
                }
                "boot recovery completed" => Some(Message::BootRecoveryCompleted),
                "boot recovery failed" => Some(Message::BootRecoveryFailed),
                _ => None,
            },
            Component::Upgrade => match text {
                "unknown upgrade state, not touching it" => Some(Message::UnknownUpgradeState),
                "newer storage version wanted, but this node is not a site member yet" => {
                    Some(Message::UpgradeWantedNotMemberYet)
                }
                "newer storage version wanted, waiting for the migration to end" => {
                    Some(Message::UpgradeWantedWaitingForMigration)
                }
                "primary not reporting, starting the storage upgrade from this node" => {
                    Some(Message::PrimaryNotReportingStartingUpgrade)
                }
                "storage upgrade started" => Some(Message::StorageUpgradeStarted),
                "resuming storage upgrade" => Some(Message::ResumingStorageUpgrade),
                "upgrade state changed" => Some(Message::UpgradeStateChanged),
                "preflight passed" => Some(Message::UpgradePreflightPassed),
                "quorum holds without this node" => Some(Message::QuorumHoldsWithoutThisNode),
                "configuration backed up" => Some(Message::ConfigurationBackedUp),
                "version verified" => Some(Message::VersionVerified),
                "upgrade taint already gone" => Some(Message::UpgradeTaintAlreadyGone),
                "node already runs the target version, skipping it" => {
                    Some(Message::NodeAlreadyAtTargetVersion)
                }
                "node upgraded, handing over" => Some(Message::NodeUpgradedHandingOver),
                "storage upgrade completed on every node" => Some(Message::StorageUpgradeCompleted),
                "upgrade state failed, rolling back" => Some(Message::UpgradeStateFailed),
                "rolling this node back" => Some(Message::RollingThisNodeBack),
                "rollback failed, node needs hands-on repair" => Some(Message::NodeRollbackFailed),
                "node rolled back, waiting for the other touched nodes" => Some(Message::NodeRolledBack),
                "storage upgrade rolled back" => Some(Message::StorageUpgradeRolledBack),
                _ => None,
            },
            Component::Report => match text {
                "node state changed" => Some(Message::NodeStateChanged),
                _ => None,
            },
            Component::Init | Component::Finished | Component::Unknown(_) => None,
        };
        if own.is_some() {
            return own;
        }
        // Messages logged with the calling step's component.
        match text {
            "command failed" => Some(Message::CommandFailed),
            "workflow owned by nodewright, skipping" => Some(Message::WorkflowOwnedByNodewright),
            "run" => Some(Message::Run),
            "host command failed" => Some(Message::HostCommandFailed),
            "resync in progress" => Some(Message::ResyncInProgress),
            "all resources UpToDate" => Some(Message::AllResourcesUpToDate),
            "resync not finished, will look again next iteration" => Some(Message::ResyncNotFinished),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_its_message_under_its_own_component_and_a_shared_message_under_any() {
        for m in Message::ALL {
            match m.component() {
                Some(c) => {
                    assert_eq!(Message::of(&Component::from_text(c), m.text()), Some(m));
                    let other = if c == "report" { "main" } else { "report" };
                    assert_ne!(Message::of(&Component::from_text(other), m.text()), Some(m));
                }
                None => {
                    for c in Component::KNOWN.iter().chain(&["step"]) {
                        assert_eq!(Message::of(&Component::from_text(c), m.text()), Some(m), "{c}");
                    }
                }
            }
        }
        assert_eq!(Message::of(&Component::Main, "iteration started"), None);
        assert_eq!(
            Message::of(&Component::Migration, "preflight passed"),
            Some(Message::MigrationPreflightPassed)
        );
        assert_eq!(
            Message::of(&Component::Upgrade, "preflight passed"),
            Some(Message::UpgradePreflightPassed)
        );
    }
}
