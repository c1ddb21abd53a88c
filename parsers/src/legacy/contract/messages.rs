//! Every message the legacy script logs, as the contract document's "Messages" tables list them:
//! the [`Message`] enum in the contract's order, and per message its text, component and level.
//! One data table, checked against `docs/legacy-contract.md` and the script's source by the tests
//! below; reading a log record back to its message is in `recognise`.

use crate::legacy::Level;

/// Every message the script logs (the contract's "Messages" tables), by component; `msg=` in 4.x
/// lines, the text in 3.x lines. The documentation of each gives its component (*any* for the
/// shared helpers and the lines logged with the current step's component), level and fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// `main`, info: `vx-rail-node-init starting`; fields `version mode root namespace interval` (`mode`: `run`, `once`, or `step` in step mode).
    Starting,
    /// `main`, info: `iteration finished`; fields `outcome step rc duration`.
    IterationFinished,
    /// *any*, error: `command failed`; fields `file func line rc cmd`.
    CommandFailed,
    /// `config`, error: `node.conf not readable`; fields `path`.
    NodeConfNotReadable,
    /// `config`, warn: `unknown node.conf key ignored`; fields `key`.
    UnknownNodeConfKeyIgnored,
    /// `config`, error: `node.conf needs BOND_SLAVES, STORAGE_VLAN_ID and STORAGE_IP`; fields `path`.
    NodeConfIncomplete,
    /// `config`, error: `node.conf has a malformed IP, VLAN id or miimon`; fields `path storage_ip storage_vlan miimon`.
    NodeConfMalformed,
    /// `snapshot`, info: `cluster state read`; fields `cluster_cm primary topology role upgrade migration boot_pending cordoned`.
    ClusterStateRead,
    /// `snapshot`, info: `boot id found on the Node only, recording it on the host`; fields `boot_id`.
    BootIdFoundOnNodeOnly,
    /// `snapshot`, info: `first start on this node, recording the boot id without recovery`; fields `boot_id`.
    FirstStart,
    /// `snapshot`, info: `takeover modes read`; fields `generation bootstrap migration storage_upgrade bond_flip taints boot_recovery network storage` (only while `nodewright-takeover` exists).
    TakeoverModesRead,
    /// `snapshot`, warn: `unknown takeover mode, treating the workflow as legacy`; fields `configmap key value`.
    UnknownTakeoverMode,
    /// `snapshot`, warn: `takeover generation is not a positive integer, acknowledging 0`; fields `configmap key value`.
    TakeoverGenerationInvalid,
    /// `snapshot`, error: `takeover ConfigMap could not be read, not acting this iteration`; fields `configmap rc error`.
    TakeoverUnreadable,
    /// `snapshot`, info: `boot recovered by nodewright, recording the boot id on the host`; fields `boot_id` (only with `boot-recovery=operator`).
    BootRecoveredByNodewright,
    /// *any*, info: `workflow owned by nodewright, skipping`; fields `workflow mode generation` (component `bootstrap`, `network` for `bond-flip` and `network`, `storage`, `migration`, `taints`, `boot`, `upgrade` for `storage-upgrade`).
    WorkflowOwnedByNodewright,
    /// `bootstrap`, info: `no cluster state found, initialising the site with this node as primary`; fields `configmap`.
    InitialisingSite,
    /// `bootstrap`, warn: `cluster state was created by another node meanwhile, will join next iteration`; no fields.
    ClusterStateCreatedMeanwhile,
    /// `bootstrap`, info: `site initialised`; fields `primary topology replicas`.
    SiteInitialised,
    /// `bootstrap`, info: `joining site`; fields `primary role storage_ip`.
    JoiningSite,
    /// `bootstrap`, error: `storage VLAN differs from the site network plan`; fields `plan node_conf`.
    StorageVlanDiffersFromPlan,
    /// `bootstrap`, warn: `storage IP changed, updating member list`; fields `old new`.
    StorageIpChanged,
    /// `bootstrap`, info: `network plan updated`; fields `members`.
    NetworkPlanUpdated,
    /// `bootstrap`, info: `node ConfigMap created`; fields `configmap`.
    NodeConfigMapCreated,
    /// `bootstrap`, warn: `node ConfigMap could not be created (exists?)`; fields `configmap`.
    NodeConfigMapNotCreated,
    /// `network`, info: `bond flip in progress by the node agent, leaving the bond alone`; fields `bond marker deadline`.
    BondHeldByAgentFlip,
    /// `network`, warn: `bond flip marker is past its deadline, not holding the bond`; fields `bond marker deadline`.
    BondFlipMarkerStale,
    /// `network`, warn: `bond is down, bringing it up`; fields `bond`.
    BondDownBringingUp,
    /// `network`, warn: `bond missing, creating it`; fields `bond mode miimon slaves`.
    BondMissingCreating,
    /// `network`, info: `bond created`; fields `bond mode`.
    BondCreated,
    /// `network`, error: `bond status file missing`; fields `path`.
    BondStatusFileMissing,
    /// `network`, warn: `slave missing from bond, re-enslaving`; fields `bond slave`.
    SlaveReenslaved,
    /// `network`, error: `slave interface does not exist`; fields `slave`.
    SlaveInterfaceDoesNotExist,
    /// `network`, error: `no bond slave has carrier`; fields `bond slaves`.
    NoBondSlaveHasCarrier,
    /// `network`, warn: `active slave has no carrier, switching`; fields `bond from to`.
    ActiveSlaveWithoutCarrier,
    /// `network`, warn: `bond failover detected`; fields `bond from to`.
    BondFailoverDetected,
    /// `network`, info: `bond flip requested`; fields `bond action value id`.
    BondFlipRequested,
    /// `network`, warn: `changing bond mode, traffic on the bond stops briefly`; fields `bond from to`.
    ChangingBondMode,
    /// `network`, info: `bond flip applied`; fields `bond action value`.
    BondFlipApplied,
    /// `network`, error: `bond flip failed`; fields `bond action value reason`.
    BondFlipFailed,
    /// `network`, warn: `VLAN missing, creating it`; fields `vlan id purpose` (`purpose` is `storage` or `management`).
    VlanMissingCreating,
    /// `network`, warn: `VLAN address missing, adding it`; fields `vlan address purpose`.
    VlanAddressMissingAdding,
    /// `network`, warn: `network degraded`; fields `bond mii storage_vlan slaves`.
    NetworkDegraded,
    /// `storage`, info: `node is in the storage upgrade, leaving services and modules alone`; fields `upgrade_state`.
    NodeInStorageUpgrade,
    /// `storage`, info: `reboot detected, boot recovery brings storage up`; no fields.
    RebootLeftToBootRecovery,
    /// `storage`, warn: `DRBD module not loaded, loading it`; no fields.
    LoadingDrbdModule,
    /// `storage`, warn: `linstor-satellite not running, starting it`; fields `state`.
    StartingLinstorSatellite,
    /// `storage`, warn: `linstor-controller not running, starting it`; fields `state`.
    StartingLinstorController,
    /// `storage`, error: `linstor controller not answering`; fields `cmd`.
    LinstorControllerNotAnswering,
    /// `storage`, info: `linstor node list changed`; fields — (a raw block follows).
    LinstorNodeListChanged,
    /// `storage`, warn: `member has no storage IP, not registering`; fields `node`.
    MemberWithoutStorageIp,
    /// `storage`, info: `registering LINSTOR satellite`; fields `node ip`.
    RegisteringLinstorSatellite,
    /// `storage`, warn: `LINSTOR satellite not online`; fields `node state`.
    LinstorSatelliteNotOnline,
    /// `storage`, info: `creating storage pool`; fields `node pool vg`.
    CreatingStoragePool,
    /// `storage`, info: `placing replica`; fields `resource node replicas want`.
    PlacingReplica,
    /// `storage`, warn: `resource has fewer replicas than the site wants`; fields `resource replicas want`.
    ResourceUnderReplicated,
    /// `storage`, info: `replicas placed`; fields `count`.
    ReplicasPlaced,
    /// `storage`, warn: `drbdadm status failed`; fields `modules` (`loaded` or `missing`).
    DrbdadmStatusFailed,
    /// `storage`, warn: `local DRBD replicas not UpToDate`; fields `resources uptodate`.
    LocalDrbdReplicasNotUpToDate,
    /// `migration`, info: `nodes waiting to join a single-node site, migration requested`; fields `joining`.
    MigrationRequested,
    /// `migration`, error: `unknown migration phase, not touching it`; fields `phase`.
    UnknownMigrationPhase,
    /// `migration`, info: `migration owned by nodewright, not touching it`; fields `phase`.
    MigrationOwnedByNodewright,
    /// `migration`, info: `migration phase changed`; fields `from to [msg]`.
    MigrationPhaseChanged,
    /// `migration`, info: `preflight waiting`; fields `waiting` (space-separated `<node>(<reason>)`).
    PreflightWaiting,
    /// `migration`, info: `preflight passed`; fields `joining`.
    MigrationPreflightPassed,
    /// `migration`, info: `waiting for joining nodes' bond and storage VLAN`; fields `waiting want`.
    WaitingForJoiningNetwork,
    /// `migration`, info: `waiting for Node objects`; fields `waiting`.
    WaitingForNodeObjects,
    /// `migration`, info: `waiting for satellites to come online`; fields `waiting` (a raw block follows).
    WaitingForSatellitesToComeOnline,
    /// `migration`, info: `new replicas are UpToDate`; fields `resources`.
    NewReplicasAreUpToDate,
    /// `migration`, info: `migration completed`; fields `joining`.
    MigrationCompleted,
    /// `migration`, error: `migration failed, rolling back`; fields `phase reason`.
    MigrationFailed,
    /// `migration`, warn: `rolling back migration`; fields `failed_phase`.
    RollingBackMigration,
    /// `migration`, info: `storage pool left for node delete`; fields `node pool`.
    StoragePoolLeftForNodeDelete,
    /// `migration`, error: `migration rollback failed, site needs attention`; fields `failed`.
    MigrationRollbackFailed,
    /// `migration`, info: `migration rolled back, site is single-node`; no fields.
    MigrationRolledBack,
    /// `taints`, warn: `storage not ready, tainting node`; fields `taint reason`.
    StorageNotReadyTainting,
    /// `taints`, info: `storage ready, removing taint`; fields `taint was`.
    StorageReadyRemovingTaint,
    /// `taints`, warn: `upgrade finished but its taint is still on the node, removing it`; fields `taint upgrade_state`.
    LeftoverUpgradeTaintRemoved,
    /// `boot`, warn: `reboot detected during storage upgrade, upgrade machine resumes instead`; fields `upgrade_state boot_id`.
    RebootDuringStorageUpgrade,
    /// `boot`, warn: `reboot detected, starting boot recovery`; fields `boot_id last_boot_id uptime`.
    StartingBootRecovery,
    /// `boot`, info: `resuming boot recovery`; fields `phase boot_id`.
    ResumingBootRecovery,
    /// `boot`, info: `boot recovery phase`; fields `from to` (`from` is `none` at the start).
    BootRecoveryPhase,
    /// `boot`, warn: `storage taint was not there to remove`; fields `taint`.
    StorageTaintAlreadyGone,
    /// `boot`, info: `no DRBD resources configured on this node, none to start`; no fields.
    NoDrbdResourcesToStart,
    /// `boot`, info: `boot recovery completed`; fields `boot_id took`.
    BootRecoveryCompleted,
    /// `boot`, error: `boot recovery failed`; fields `phase reason`.
    BootRecoveryFailed,
    /// `upgrade`, error: `unknown upgrade state, not touching it`; fields `state`.
    UnknownUpgradeState,
    /// `upgrade`, info: `newer storage version wanted, but this node is not a site member yet`; fields `desired role`.
    UpgradeWantedNotMemberYet,
    /// `upgrade`, info: `newer storage version wanted, waiting for the migration to end`; fields `desired`.
    UpgradeWantedWaitingForMigration,
    /// `upgrade`, warn: `primary not reporting, starting the storage upgrade from this node`; fields `primary stale_after`.
    PrimaryNotReportingStartingUpgrade,
    /// `upgrade`, warn: `storage upgrade started`; fields `from to order`.
    StorageUpgradeStarted,
    /// `upgrade`, info: `resuming storage upgrade`; fields `state to`.
    ResumingStorageUpgrade,
    /// `upgrade`, info: `upgrade state changed`; fields `from to node version [msg]`.
    UpgradeStateChanged,
    /// `upgrade`, info: `preflight passed`; fields `installed to`.
    UpgradePreflightPassed,
    /// `upgrade`, info: `quorum holds without this node`; fields `resources`.
    QuorumHoldsWithoutThisNode,
    /// `upgrade`, info: `configuration backed up`; fields `dir`.
    ConfigurationBackedUp,
    /// `upgrade`, info: `version verified`; fields `kernel package`.
    VersionVerified,
    /// `upgrade`, info: `upgrade taint already gone`; fields `taint`.
    UpgradeTaintAlreadyGone,
    /// `upgrade`, info: `node already runs the target version, skipping it`; fields `version`.
    NodeAlreadyAtTargetVersion,
    /// `upgrade`, info: `node upgraded, handing over`; fields `next`.
    NodeUpgradedHandingOver,
    /// `upgrade`, info: `storage upgrade completed on every node`; fields `version order`.
    StorageUpgradeCompleted,
    /// `upgrade`, error: `upgrade state failed, rolling back`; fields `state reason`.
    UpgradeStateFailed,
    /// `upgrade`, warn: `rolling this node back`; fields `from to failed_state` (`from` is the version being left).
    RollingThisNodeBack,
    /// `upgrade`, error: `rollback failed, node needs hands-on repair`; fields `node step`.
    NodeRollbackFailed,
    /// `upgrade`, info: `node rolled back, waiting for the other touched nodes`; fields `rolled touched`.
    NodeRolledBack,
    /// `upgrade`, info: `storage upgrade rolled back`; fields `version`.
    StorageUpgradeRolledBack,
    /// `report`, info: `node state changed`; fields `from to`.
    NodeStateChanged,
    /// *any*, info: `run`; fields `cmd` (every mutating host command, before it runs).
    Run,
    /// *any*, error: `host command failed`; fields `cmd rc` (a raw block with its output follows).
    HostCommandFailed,
    /// *any*, info: `resync in progress`; fields `resource peer replication peer_disk done` (one line per syncing peer).
    ResyncInProgress,
    /// *any*, info: `all resources UpToDate`; fields `resources waited`.
    AllResourcesUpToDate,
    /// *any*, warn: `resync not finished, will look again next iteration`; fields `resources uptodate waited`.
    ResyncNotFinished,
}

impl Message {
    /// Every message, in the contract's order.
    pub const ALL: [Message; 112] = [
        Message::Starting,
        Message::IterationFinished,
        Message::CommandFailed,
        Message::NodeConfNotReadable,
        Message::UnknownNodeConfKeyIgnored,
        Message::NodeConfIncomplete,
        Message::NodeConfMalformed,
        Message::ClusterStateRead,
        Message::BootIdFoundOnNodeOnly,
        Message::FirstStart,
        Message::TakeoverModesRead,
        Message::UnknownTakeoverMode,
        Message::TakeoverGenerationInvalid,
        Message::TakeoverUnreadable,
        Message::BootRecoveredByNodewright,
        Message::WorkflowOwnedByNodewright,
        Message::InitialisingSite,
        Message::ClusterStateCreatedMeanwhile,
        Message::SiteInitialised,
        Message::JoiningSite,
        Message::StorageVlanDiffersFromPlan,
        Message::StorageIpChanged,
        Message::NetworkPlanUpdated,
        Message::NodeConfigMapCreated,
        Message::NodeConfigMapNotCreated,
        Message::BondHeldByAgentFlip,
        Message::BondFlipMarkerStale,
        Message::BondDownBringingUp,
        Message::BondMissingCreating,
        Message::BondCreated,
        Message::BondStatusFileMissing,
        Message::SlaveReenslaved,
        Message::SlaveInterfaceDoesNotExist,
        Message::NoBondSlaveHasCarrier,
        Message::ActiveSlaveWithoutCarrier,
        Message::BondFailoverDetected,
        Message::BondFlipRequested,
        Message::ChangingBondMode,
        Message::BondFlipApplied,
        Message::BondFlipFailed,
        Message::VlanMissingCreating,
        Message::VlanAddressMissingAdding,
        Message::NetworkDegraded,
        Message::NodeInStorageUpgrade,
        Message::RebootLeftToBootRecovery,
        Message::LoadingDrbdModule,
        Message::StartingLinstorSatellite,
        Message::StartingLinstorController,
        Message::LinstorControllerNotAnswering,
        Message::LinstorNodeListChanged,
        Message::MemberWithoutStorageIp,
        Message::RegisteringLinstorSatellite,
        Message::LinstorSatelliteNotOnline,
        Message::CreatingStoragePool,
        Message::PlacingReplica,
        Message::ResourceUnderReplicated,
        Message::ReplicasPlaced,
        Message::DrbdadmStatusFailed,
        Message::LocalDrbdReplicasNotUpToDate,
        Message::MigrationRequested,
        Message::UnknownMigrationPhase,
        Message::MigrationOwnedByNodewright,
        Message::MigrationPhaseChanged,
        Message::PreflightWaiting,
        Message::MigrationPreflightPassed,
        Message::WaitingForJoiningNetwork,
        Message::WaitingForNodeObjects,
        Message::WaitingForSatellitesToComeOnline,
        Message::NewReplicasAreUpToDate,
        Message::MigrationCompleted,
        Message::MigrationFailed,
        Message::RollingBackMigration,
        Message::StoragePoolLeftForNodeDelete,
        Message::MigrationRollbackFailed,
        Message::MigrationRolledBack,
        Message::StorageNotReadyTainting,
        Message::StorageReadyRemovingTaint,
        Message::LeftoverUpgradeTaintRemoved,
        Message::RebootDuringStorageUpgrade,
        Message::StartingBootRecovery,
        Message::ResumingBootRecovery,
        Message::BootRecoveryPhase,
        Message::StorageTaintAlreadyGone,
        Message::NoDrbdResourcesToStart,
        Message::BootRecoveryCompleted,
        Message::BootRecoveryFailed,
        Message::UnknownUpgradeState,
        Message::UpgradeWantedNotMemberYet,
        Message::UpgradeWantedWaitingForMigration,
        Message::PrimaryNotReportingStartingUpgrade,
        Message::StorageUpgradeStarted,
        Message::ResumingStorageUpgrade,
        Message::UpgradeStateChanged,
        Message::UpgradePreflightPassed,
        Message::QuorumHoldsWithoutThisNode,
        Message::ConfigurationBackedUp,
        Message::VersionVerified,
        Message::UpgradeTaintAlreadyGone,
        Message::NodeAlreadyAtTargetVersion,
        Message::NodeUpgradedHandingOver,
        Message::StorageUpgradeCompleted,
        Message::UpgradeStateFailed,
        Message::RollingThisNodeBack,
        Message::NodeRollbackFailed,
        Message::NodeRolledBack,
        Message::StorageUpgradeRolledBack,
        Message::NodeStateChanged,
        Message::Run,
        Message::HostCommandFailed,
        Message::ResyncInProgress,
        Message::AllResourcesUpToDate,
        Message::ResyncNotFinished,
    ];

    /// The message text, as `msg=` holds it.
    pub const fn text(self) -> &'static str {
        match self {
            Message::Starting => "vx-rail-node-init starting",
            Message::IterationFinished => "iteration finished",
            Message::CommandFailed => "command failed",
            Message::NodeConfNotReadable => "node.conf not readable",
            Message::UnknownNodeConfKeyIgnored => "unknown node.conf key ignored",
            Message::NodeConfIncomplete => "node.conf needs BOND_SLAVES, STORAGE_VLAN_ID and STORAGE_IP",
            Message::NodeConfMalformed => "node.conf has a malformed IP, VLAN id or miimon",
            Message::ClusterStateRead => "cluster state read",
            Message::BootIdFoundOnNodeOnly => "boot id found on the Node only, recording it on the host",
            Message::FirstStart => "first start on this node, recording the boot id without recovery",
            Message::TakeoverModesRead => "takeover modes read",
            Message::UnknownTakeoverMode => "unknown takeover mode, treating the workflow as legacy",
            Message::TakeoverGenerationInvalid => {
                "takeover generation is not a positive integer, acknowledging 0"
            }
            Message::TakeoverUnreadable => "takeover ConfigMap could not be read, not acting this iteration",
            Message::BootRecoveredByNodewright => {
                "boot recovered by nodewright, recording the boot id on the host"
            }
            Message::WorkflowOwnedByNodewright => "workflow owned by nodewright, skipping",
            Message::InitialisingSite => {
                "no cluster state found, initialising the site with this node as primary"
            }
            Message::ClusterStateCreatedMeanwhile => {
                "cluster state was created by another node meanwhile, will join next iteration"
            }
            Message::SiteInitialised => "site initialised",
            Message::JoiningSite => "joining site",
            Message::StorageVlanDiffersFromPlan => "storage VLAN differs from the site network plan",
            Message::StorageIpChanged => "storage IP changed, updating member list",
            Message::NetworkPlanUpdated => "network plan updated",
            Message::NodeConfigMapCreated => "node ConfigMap created",
            Message::NodeConfigMapNotCreated => "node ConfigMap could not be created (exists?)",
            Message::BondHeldByAgentFlip => "bond flip in progress by the node agent, leaving the bond alone",
            Message::BondFlipMarkerStale => "bond flip marker is past its deadline, not holding the bond",
            Message::BondDownBringingUp => "bond is down, bringing it up",
            Message::BondMissingCreating => "bond missing, creating it",
            Message::BondCreated => "bond created",
            Message::BondStatusFileMissing => "bond status file missing",
            Message::SlaveReenslaved => "slave missing from bond, re-enslaving",
            Message::SlaveInterfaceDoesNotExist => "slave interface does not exist",
            Message::NoBondSlaveHasCarrier => "no bond slave has carrier",
            Message::ActiveSlaveWithoutCarrier => "active slave has no carrier, switching",
            Message::BondFailoverDetected => "bond failover detected",
            Message::BondFlipRequested => "bond flip requested",
            Message::ChangingBondMode => "changing bond mode, traffic on the bond stops briefly",
            Message::BondFlipApplied => "bond flip applied",
            Message::BondFlipFailed => "bond flip failed",
            Message::VlanMissingCreating => "VLAN missing, creating it",
            Message::VlanAddressMissingAdding => "VLAN address missing, adding it",
            Message::NetworkDegraded => "network degraded",
            Message::NodeInStorageUpgrade => {
                "node is in the storage upgrade, leaving services and modules alone"
            }
            Message::RebootLeftToBootRecovery => "reboot detected, boot recovery brings storage up",
            Message::LoadingDrbdModule => "DRBD module not loaded, loading it",
            Message::StartingLinstorSatellite => "linstor-satellite not running, starting it",
            Message::StartingLinstorController => "linstor-controller not running, starting it",
            Message::LinstorControllerNotAnswering => "linstor controller not answering",
            Message::LinstorNodeListChanged => "linstor node list changed",
            Message::MemberWithoutStorageIp => "member has no storage IP, not registering",
            Message::RegisteringLinstorSatellite => "registering LINSTOR satellite",
            Message::LinstorSatelliteNotOnline => "LINSTOR satellite not online",
            Message::CreatingStoragePool => "creating storage pool",
            Message::PlacingReplica => "placing replica",
            Message::ResourceUnderReplicated => "resource has fewer replicas than the site wants",
            Message::ReplicasPlaced => "replicas placed",
            Message::DrbdadmStatusFailed => "drbdadm status failed",
            Message::LocalDrbdReplicasNotUpToDate => "local DRBD replicas not UpToDate",
            Message::MigrationRequested => "nodes waiting to join a single-node site, migration requested",
            Message::UnknownMigrationPhase => "unknown migration phase, not touching it",
            Message::MigrationOwnedByNodewright => "migration owned by nodewright, not touching it",
            Message::MigrationPhaseChanged => "migration phase changed",
            Message::PreflightWaiting => "preflight waiting",
            Message::MigrationPreflightPassed => "preflight passed",
            Message::WaitingForJoiningNetwork => "waiting for joining nodes' bond and storage VLAN",
            Message::WaitingForNodeObjects => "waiting for Node objects",
            Message::WaitingForSatellitesToComeOnline => "waiting for satellites to come online",
            Message::NewReplicasAreUpToDate => "new replicas are UpToDate",
            Message::MigrationCompleted => "migration completed",
            Message::MigrationFailed => "migration failed, rolling back",
            Message::RollingBackMigration => "rolling back migration",
            Message::StoragePoolLeftForNodeDelete => "storage pool left for node delete",
            Message::MigrationRollbackFailed => "migration rollback failed, site needs attention",
            Message::MigrationRolledBack => "migration rolled back, site is single-node",
            Message::StorageNotReadyTainting => "storage not ready, tainting node",
            Message::StorageReadyRemovingTaint => "storage ready, removing taint",
            Message::LeftoverUpgradeTaintRemoved => {
                "upgrade finished but its taint is still on the node, removing it"
            }
            Message::RebootDuringStorageUpgrade => {
                "reboot detected during storage upgrade, upgrade machine resumes instead"
            }
            Message::StartingBootRecovery => "reboot detected, starting boot recovery",
            Message::ResumingBootRecovery => "resuming boot recovery",
            Message::BootRecoveryPhase => "boot recovery phase",
            Message::StorageTaintAlreadyGone => "storage taint was not there to remove",
            Message::NoDrbdResourcesToStart => "no DRBD resources configured on this node, none to start",
            Message::BootRecoveryCompleted => "boot recovery completed",
            Message::BootRecoveryFailed => "boot recovery failed",
            Message::UnknownUpgradeState => "unknown upgrade state, not touching it",
            Message::UpgradeWantedNotMemberYet => {
                "newer storage version wanted, but this node is not a site member yet"
            }
            Message::UpgradeWantedWaitingForMigration => {
                "newer storage version wanted, waiting for the migration to end"
            }
            Message::PrimaryNotReportingStartingUpgrade => {
                "primary not reporting, starting the storage upgrade from this node"
            }
            Message::StorageUpgradeStarted => "storage upgrade started",
            Message::ResumingStorageUpgrade => "resuming storage upgrade",
            Message::UpgradeStateChanged => "upgrade state changed",
            Message::UpgradePreflightPassed => "preflight passed",
            Message::QuorumHoldsWithoutThisNode => "quorum holds without this node",
            Message::ConfigurationBackedUp => "configuration backed up",
            Message::VersionVerified => "version verified",
            Message::UpgradeTaintAlreadyGone => "upgrade taint already gone",
            Message::NodeAlreadyAtTargetVersion => "node already runs the target version, skipping it",
            Message::NodeUpgradedHandingOver => "node upgraded, handing over",
            Message::StorageUpgradeCompleted => "storage upgrade completed on every node",
            Message::UpgradeStateFailed => "upgrade state failed, rolling back",
            Message::RollingThisNodeBack => "rolling this node back",
            Message::NodeRollbackFailed => "rollback failed, node needs hands-on repair",
            Message::NodeRolledBack => "node rolled back, waiting for the other touched nodes",
            Message::StorageUpgradeRolledBack => "storage upgrade rolled back",
            Message::NodeStateChanged => "node state changed",
            Message::Run => "run",
            Message::HostCommandFailed => "host command failed",
            Message::ResyncInProgress => "resync in progress",
            Message::AllResourcesUpToDate => "all resources UpToDate",
            Message::ResyncNotFinished => "resync not finished, will look again next iteration",
        }
    }

    /// The component that logs it; `None` for a message logged with the calling step's component.
    pub const fn component(self) -> Option<&'static str> {
        match self {
            Message::Starting | Message::IterationFinished => Some("main"),
            Message::CommandFailed
            | Message::WorkflowOwnedByNodewright
            | Message::Run
            | Message::HostCommandFailed
            | Message::ResyncInProgress
            | Message::AllResourcesUpToDate
            | Message::ResyncNotFinished => None,
            Message::NodeConfNotReadable
            | Message::UnknownNodeConfKeyIgnored
            | Message::NodeConfIncomplete
            | Message::NodeConfMalformed => Some("config"),
            Message::ClusterStateRead
            | Message::BootIdFoundOnNodeOnly
            | Message::FirstStart
            | Message::TakeoverModesRead
            | Message::UnknownTakeoverMode
            | Message::TakeoverGenerationInvalid
            | Message::TakeoverUnreadable
            | Message::BootRecoveredByNodewright => Some("snapshot"),
            Message::InitialisingSite
            | Message::ClusterStateCreatedMeanwhile
            | Message::SiteInitialised
            | Message::JoiningSite
            | Message::StorageVlanDiffersFromPlan
            | Message::StorageIpChanged
            | Message::NetworkPlanUpdated
            | Message::NodeConfigMapCreated
            | Message::NodeConfigMapNotCreated => Some("bootstrap"),
            Message::BondHeldByAgentFlip
            | Message::BondFlipMarkerStale
            | Message::BondDownBringingUp
            | Message::BondMissingCreating
            | Message::BondCreated
            | Message::BondStatusFileMissing
            | Message::SlaveReenslaved
            | Message::SlaveInterfaceDoesNotExist
            | Message::NoBondSlaveHasCarrier
            | Message::ActiveSlaveWithoutCarrier
            | Message::BondFailoverDetected
            | Message::BondFlipRequested
            | Message::ChangingBondMode
            | Message::BondFlipApplied
            | Message::BondFlipFailed
            | Message::VlanMissingCreating
            | Message::VlanAddressMissingAdding
            | Message::NetworkDegraded => Some("network"),
            Message::NodeInStorageUpgrade
            | Message::RebootLeftToBootRecovery
            | Message::LoadingDrbdModule
            | Message::StartingLinstorSatellite
            | Message::StartingLinstorController
            | Message::LinstorControllerNotAnswering
            | Message::LinstorNodeListChanged
            | Message::MemberWithoutStorageIp
            | Message::RegisteringLinstorSatellite
            | Message::LinstorSatelliteNotOnline
            | Message::CreatingStoragePool
            | Message::PlacingReplica
            | Message::ResourceUnderReplicated
            | Message::ReplicasPlaced
            | Message::DrbdadmStatusFailed
            | Message::LocalDrbdReplicasNotUpToDate => Some("storage"),
            Message::MigrationRequested
            | Message::UnknownMigrationPhase
            | Message::MigrationOwnedByNodewright
            | Message::MigrationPhaseChanged
            | Message::PreflightWaiting
            | Message::MigrationPreflightPassed
            | Message::WaitingForJoiningNetwork
            | Message::WaitingForNodeObjects
            | Message::WaitingForSatellitesToComeOnline
            | Message::NewReplicasAreUpToDate
            | Message::MigrationCompleted
            | Message::MigrationFailed
            | Message::RollingBackMigration
            | Message::StoragePoolLeftForNodeDelete
            | Message::MigrationRollbackFailed
            | Message::MigrationRolledBack => Some("migration"),
            Message::StorageNotReadyTainting
            | Message::StorageReadyRemovingTaint
            | Message::LeftoverUpgradeTaintRemoved => Some("taints"),
            Message::RebootDuringStorageUpgrade
            | Message::StartingBootRecovery
            | Message::ResumingBootRecovery
            | Message::BootRecoveryPhase
            | Message::StorageTaintAlreadyGone
            | Message::NoDrbdResourcesToStart
            | Message::BootRecoveryCompleted
            | Message::BootRecoveryFailed => Some("boot"),
            Message::UnknownUpgradeState
            | Message::UpgradeWantedNotMemberYet
            | Message::UpgradeWantedWaitingForMigration
            | Message::PrimaryNotReportingStartingUpgrade
            | Message::StorageUpgradeStarted
            | Message::ResumingStorageUpgrade
            | Message::UpgradeStateChanged
            | Message::UpgradePreflightPassed
            | Message::QuorumHoldsWithoutThisNode
            | Message::ConfigurationBackedUp
            | Message::VersionVerified
            | Message::UpgradeTaintAlreadyGone
            | Message::NodeAlreadyAtTargetVersion
            | Message::NodeUpgradedHandingOver
            | Message::StorageUpgradeCompleted
            | Message::UpgradeStateFailed
            | Message::RollingThisNodeBack
            | Message::NodeRollbackFailed
            | Message::NodeRolledBack
            | Message::StorageUpgradeRolledBack => Some("upgrade"),
            Message::NodeStateChanged => Some("report"),
        }
    }

    /// The level it is logged at.
    pub fn level(self) -> Level {
        match self {
            Message::Starting
            | Message::IterationFinished
            | Message::ClusterStateRead
            | Message::BootIdFoundOnNodeOnly
            | Message::FirstStart
            | Message::TakeoverModesRead
            | Message::BootRecoveredByNodewright
            | Message::WorkflowOwnedByNodewright
            | Message::InitialisingSite
            | Message::SiteInitialised
            | Message::JoiningSite
            | Message::BondHeldByAgentFlip
            | Message::NetworkPlanUpdated
            | Message::NodeConfigMapCreated
            | Message::BondCreated
            | Message::BondFlipRequested
            | Message::BondFlipApplied
            | Message::NodeInStorageUpgrade
            | Message::RebootLeftToBootRecovery
            | Message::LinstorNodeListChanged
            | Message::RegisteringLinstorSatellite
            | Message::CreatingStoragePool
            | Message::PlacingReplica
            | Message::ReplicasPlaced
            | Message::MigrationRequested
            | Message::MigrationOwnedByNodewright
            | Message::MigrationPhaseChanged
            | Message::PreflightWaiting
            | Message::MigrationPreflightPassed
            | Message::WaitingForJoiningNetwork
            | Message::WaitingForNodeObjects
            | Message::WaitingForSatellitesToComeOnline
            | Message::NewReplicasAreUpToDate
            | Message::MigrationCompleted
            | Message::StoragePoolLeftForNodeDelete
            | Message::MigrationRolledBack
            | Message::StorageReadyRemovingTaint
            | Message::ResumingBootRecovery
            | Message::BootRecoveryPhase
            | Message::NoDrbdResourcesToStart
            | Message::BootRecoveryCompleted
            | Message::UpgradeWantedNotMemberYet
            | Message::UpgradeWantedWaitingForMigration
            | Message::ResumingStorageUpgrade
            | Message::UpgradeStateChanged
            | Message::UpgradePreflightPassed
            | Message::QuorumHoldsWithoutThisNode
            | Message::ConfigurationBackedUp
            | Message::VersionVerified
            | Message::UpgradeTaintAlreadyGone
            | Message::NodeAlreadyAtTargetVersion
            | Message::NodeUpgradedHandingOver
            | Message::StorageUpgradeCompleted
            | Message::NodeRolledBack
            | Message::StorageUpgradeRolledBack
            | Message::NodeStateChanged
            | Message::Run
            | Message::ResyncInProgress
            | Message::AllResourcesUpToDate => Level::Info,
            Message::CommandFailed
            | Message::NodeConfNotReadable
            | Message::NodeConfIncomplete
            | Message::NodeConfMalformed
            | Message::TakeoverUnreadable
            | Message::StorageVlanDiffersFromPlan
            | Message::BondStatusFileMissing
            | Message::SlaveInterfaceDoesNotExist
            | Message::NoBondSlaveHasCarrier
            | Message::BondFlipFailed
            | Message::LinstorControllerNotAnswering
            | Message::UnknownMigrationPhase
            | Message::MigrationFailed
            | Message::MigrationRollbackFailed
            | Message::BootRecoveryFailed
            | Message::UnknownUpgradeState
            | Message::UpgradeStateFailed
            | Message::NodeRollbackFailed
            | Message::HostCommandFailed => Level::Error,
            Message::UnknownNodeConfKeyIgnored
            | Message::UnknownTakeoverMode
            | Message::TakeoverGenerationInvalid
            | Message::ClusterStateCreatedMeanwhile
            | Message::StorageIpChanged
            | Message::NodeConfigMapNotCreated
            | Message::BondFlipMarkerStale
            | Message::BondDownBringingUp
            | Message::BondMissingCreating
            | Message::SlaveReenslaved
            | Message::ActiveSlaveWithoutCarrier
            | Message::BondFailoverDetected
            | Message::ChangingBondMode
            | Message::VlanMissingCreating
            | Message::VlanAddressMissingAdding
            | Message::NetworkDegraded
            | Message::LoadingDrbdModule
            | Message::StartingLinstorSatellite
            | Message::StartingLinstorController
            | Message::MemberWithoutStorageIp
            | Message::LinstorSatelliteNotOnline
            | Message::ResourceUnderReplicated
            | Message::DrbdadmStatusFailed
            | Message::LocalDrbdReplicasNotUpToDate
            | Message::RollingBackMigration
            | Message::StorageNotReadyTainting
            | Message::LeftoverUpgradeTaintRemoved
            | Message::RebootDuringStorageUpgrade
            | Message::StartingBootRecovery
            | Message::StorageTaintAlreadyGone
            | Message::PrimaryNotReportingStartingUpgrade
            | Message::StorageUpgradeStarted
            | Message::RollingThisNodeBack
            | Message::ResyncNotFinished => Level::Warn,
        }
    }
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::legacy::contract::tests::repo_file;

    /// `(component, level, msg)` of every row of the contract document's message tables; `*` for
    /// a message logged with the calling step's component.
    fn documented_messages() -> Vec<(String, String, String)> {
        let doc = repo_file("docs/legacy-contract.md");
        let section = &doc[doc.find("### Messages").unwrap()..];
        let section = &section[..section.find("\n## ").unwrap_or(section.len())];
        let unquote = |c: &str| c.trim().trim_matches('`').to_owned();
        let mut out = Vec::new();
        for line in section
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("|---"))
        {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
            match cells.as_slice() {
                [component, level, msg, _] if *component != " component" => {
                    let component = if component.contains("*step*") {
                        "*".to_owned()
                    } else {
                        unquote(component)
                    };
                    out.push((component, unquote(level), unquote(msg)));
                }
                [level, msg, _] if *level != " level" => {
                    out.push(("*".to_owned(), unquote(level), unquote(msg)))
                }
                _ => {}
            }
        }
        out
    }

    #[test]
    fn every_message_the_contract_document_lists_is_a_message_in_the_same_order_and_no_other() {
        let documented = documented_messages();
        let ours: Vec<(String, String, String)> = Message::ALL
            .iter()
            .map(|m| {
                (
                    m.component().unwrap_or("*").to_owned(),
                    m.level().as_str().to_owned(),
                    m.text().to_owned(),
                )
            })
            .collect();
        assert_eq!(ours, documented);
    }

    #[test]
    fn the_script_logs_every_message() {
        let mut script = repo_file("legacy/vx-rail-node-init.sh");
        for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../legacy/lib")).unwrap() {
            script.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
        for m in Message::ALL {
            assert!(
                script.contains(m.text()),
                "the script does not log {m:?}: {}",
                m.text()
            );
        }
    }

    #[test]
    fn messages_are_unique_by_component_and_text() {
        let keys: BTreeSet<(Option<&str>, &str)> =
            Message::ALL.iter().map(|m| (m.component(), m.text())).collect();
        assert_eq!(keys.len(), Message::ALL.len());
    }
}
