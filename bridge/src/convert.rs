//! The legacy contract's enums (`nodewright_parsers`) as the API's enums (`nodewright_api`), and
//! back where both sides name the same set.
//!
//! Every conversion is a `match` without a wildcard arm, in both directions: a state added on
//! either side fails to compile here until it is mapped, instead of silently becoming `None`.
//! A value the contract does not list (the parsers' `Unknown`) has no API value and maps to `None`,
//! so the bridge reports it instead of guessing. The two crates do not know each other, so these
//! are functions, not `From` impls. Pure; no I/O.

use nodewright_api::edgenode::{BondMode, BootRecoveryPhase, TaintEffect};
use nodewright_api::migration::MigrationPhase;
use nodewright_api::storageupgrade::UpgradeState;
use nodewright_parsers as p;

/// The storage-upgrade state a legacy `UpgradeState` names.
pub fn upgrade_state(s: &p::UpgradeState) -> Option<UpgradeState> {
    Some(match s {
        p::UpgradeState::Pending => UpgradeState::Pending,
        p::UpgradeState::Preflight => UpgradeState::Preflight,
        p::UpgradeState::QuorumCheck => UpgradeState::QuorumCheck,
        p::UpgradeState::BackupConfig => UpgradeState::BackupConfig,
        p::UpgradeState::CordonAndTaint => UpgradeState::CordonAndTaint,
        p::UpgradeState::DemotePrimaries => UpgradeState::DemotePrimaries,
        p::UpgradeState::StopSatellite => UpgradeState::StopSatellite,
        p::UpgradeState::DownResources => UpgradeState::DownResources,
        p::UpgradeState::UnloadModules => UpgradeState::UnloadModules,
        p::UpgradeState::InstallPackages => UpgradeState::InstallPackages,
        p::UpgradeState::LoadModules => UpgradeState::LoadModules,
        p::UpgradeState::StartSatellite => UpgradeState::StartSatellite,
        p::UpgradeState::UpResources => UpgradeState::UpResources,
        p::UpgradeState::WaitResync => UpgradeState::WaitResync,
        p::UpgradeState::VerifyVersion => UpgradeState::VerifyVersion,
        p::UpgradeState::RemoveTaint => UpgradeState::RemoveTaint,
        p::UpgradeState::Uncordon => UpgradeState::Uncordon,
        p::UpgradeState::Completed => UpgradeState::Completed,
        p::UpgradeState::RollingBack => UpgradeState::RollingBack,
        p::UpgradeState::RolledBack => UpgradeState::RolledBack,
        p::UpgradeState::Failed => UpgradeState::Failed,
        p::UpgradeState::Unknown(_) => return None,
    })
}

/// The legacy spelling of a storage-upgrade state.
pub fn legacy_upgrade_state(s: UpgradeState) -> p::UpgradeState {
    match s {
        UpgradeState::Pending => p::UpgradeState::Pending,
        UpgradeState::Preflight => p::UpgradeState::Preflight,
        UpgradeState::QuorumCheck => p::UpgradeState::QuorumCheck,
        UpgradeState::BackupConfig => p::UpgradeState::BackupConfig,
        UpgradeState::CordonAndTaint => p::UpgradeState::CordonAndTaint,
        UpgradeState::DemotePrimaries => p::UpgradeState::DemotePrimaries,
        UpgradeState::StopSatellite => p::UpgradeState::StopSatellite,
        UpgradeState::DownResources => p::UpgradeState::DownResources,
        UpgradeState::UnloadModules => p::UpgradeState::UnloadModules,
        UpgradeState::InstallPackages => p::UpgradeState::InstallPackages,
        UpgradeState::LoadModules => p::UpgradeState::LoadModules,
        UpgradeState::StartSatellite => p::UpgradeState::StartSatellite,
        UpgradeState::UpResources => p::UpgradeState::UpResources,
        UpgradeState::WaitResync => p::UpgradeState::WaitResync,
        UpgradeState::VerifyVersion => p::UpgradeState::VerifyVersion,
        UpgradeState::RemoveTaint => p::UpgradeState::RemoveTaint,
        UpgradeState::Uncordon => p::UpgradeState::Uncordon,
        UpgradeState::Completed => p::UpgradeState::Completed,
        UpgradeState::RollingBack => p::UpgradeState::RollingBack,
        UpgradeState::RolledBack => p::UpgradeState::RolledBack,
        UpgradeState::Failed => p::UpgradeState::Failed,
    }
}

/// The migration phase a legacy `MigrationPhase` names.
pub fn migration_phase(s: &p::MigrationPhase) -> Option<MigrationPhase> {
    Some(match s {
        p::MigrationPhase::Pending => MigrationPhase::Pending,
        p::MigrationPhase::Preflight => MigrationPhase::Preflight,
        p::MigrationPhase::PreparingNetwork => MigrationPhase::PreparingNetwork,
        p::MigrationPhase::JoiningNodes => MigrationPhase::JoiningNodes,
        p::MigrationPhase::RegisteringSatellites => MigrationPhase::RegisteringSatellites,
        p::MigrationPhase::CreatingStoragePools => MigrationPhase::CreatingStoragePools,
        p::MigrationPhase::PlacingReplicas => MigrationPhase::PlacingReplicas,
        p::MigrationPhase::WaitingForResync => MigrationPhase::WaitingForResync,
        p::MigrationPhase::Finalizing => MigrationPhase::Finalizing,
        p::MigrationPhase::Completed => MigrationPhase::Completed,
        p::MigrationPhase::RollingBack => MigrationPhase::RollingBack,
        p::MigrationPhase::RolledBack => MigrationPhase::RolledBack,
        p::MigrationPhase::Failed => MigrationPhase::Failed,
        p::MigrationPhase::Unknown(_) => return None,
    })
}

/// The legacy spelling of a migration phase.
pub fn legacy_migration_phase(s: MigrationPhase) -> p::MigrationPhase {
    match s {
        MigrationPhase::Pending => p::MigrationPhase::Pending,
        MigrationPhase::Preflight => p::MigrationPhase::Preflight,
        MigrationPhase::PreparingNetwork => p::MigrationPhase::PreparingNetwork,
        MigrationPhase::JoiningNodes => p::MigrationPhase::JoiningNodes,
        MigrationPhase::RegisteringSatellites => p::MigrationPhase::RegisteringSatellites,
        MigrationPhase::CreatingStoragePools => p::MigrationPhase::CreatingStoragePools,
        MigrationPhase::PlacingReplicas => p::MigrationPhase::PlacingReplicas,
        MigrationPhase::WaitingForResync => p::MigrationPhase::WaitingForResync,
        MigrationPhase::Finalizing => p::MigrationPhase::Finalizing,
        MigrationPhase::Completed => p::MigrationPhase::Completed,
        MigrationPhase::RollingBack => p::MigrationPhase::RollingBack,
        MigrationPhase::RolledBack => p::MigrationPhase::RolledBack,
        MigrationPhase::Failed => p::MigrationPhase::Failed,
    }
}

/// The boot-recovery phase a legacy `BootRecoveryPhase` names.
pub fn boot_recovery_phase(s: &p::BootRecoveryPhase) -> Option<BootRecoveryPhase> {
    Some(match s {
        p::BootRecoveryPhase::AssemblingNetwork => BootRecoveryPhase::AssemblingNetwork,
        p::BootRecoveryPhase::LoadingModules => BootRecoveryPhase::LoadingModules,
        p::BootRecoveryPhase::StartingResources => BootRecoveryPhase::StartingResources,
        p::BootRecoveryPhase::WaitingForResync => BootRecoveryPhase::WaitingForResync,
        p::BootRecoveryPhase::RemovingTaints => BootRecoveryPhase::RemovingTaints,
        p::BootRecoveryPhase::Completed => BootRecoveryPhase::Completed,
        p::BootRecoveryPhase::Failed => BootRecoveryPhase::Failed,
        p::BootRecoveryPhase::Unknown(_) => return None,
    })
}

/// The legacy spelling of a boot-recovery phase. `Idle` has none: the script writes no
/// `boot-recovery` key until a reboot starts a recovery.
pub fn legacy_boot_recovery_phase(s: BootRecoveryPhase) -> Option<p::BootRecoveryPhase> {
    Some(match s {
        BootRecoveryPhase::Idle => return None,
        BootRecoveryPhase::AssemblingNetwork => p::BootRecoveryPhase::AssemblingNetwork,
        BootRecoveryPhase::LoadingModules => p::BootRecoveryPhase::LoadingModules,
        BootRecoveryPhase::StartingResources => p::BootRecoveryPhase::StartingResources,
        BootRecoveryPhase::WaitingForResync => p::BootRecoveryPhase::WaitingForResync,
        BootRecoveryPhase::RemovingTaints => p::BootRecoveryPhase::RemovingTaints,
        BootRecoveryPhase::Completed => p::BootRecoveryPhase::Completed,
        BootRecoveryPhase::Failed => p::BootRecoveryPhase::Failed,
    })
}

/// The taint effect a Node's taint names.
pub fn taint_effect(s: &p::TaintEffect) -> Option<TaintEffect> {
    Some(match s {
        p::TaintEffect::NoSchedule => TaintEffect::NoSchedule,
        p::TaintEffect::PreferNoSchedule => TaintEffect::PreferNoSchedule,
        p::TaintEffect::NoExecute => TaintEffect::NoExecute,
        p::TaintEffect::Unknown(_) => return None,
    })
}

/// The spelling of a taint effect on a Node.
pub fn legacy_taint_effect(s: TaintEffect) -> p::TaintEffect {
    match s {
        TaintEffect::NoSchedule => p::TaintEffect::NoSchedule,
        TaintEffect::PreferNoSchedule => p::TaintEffect::PreferNoSchedule,
        TaintEffect::NoExecute => p::TaintEffect::NoExecute,
    }
}

/// The API's bonding mode for the bonding driver's (shared with the agent's host facts).
pub use nodewright_api::from_host::bond_mode;

/// The API's bonding mode named exactly `text` (`active-backup`, `802.3ad`, …), as the legacy
/// status, bond-flip request and log spell it.
pub fn bond_mode_named(text: &str) -> Option<BondMode> {
    p::BondMode::from_name(text).map(bond_mode)
}

/// The bonding driver's mode for the API's.
pub fn driver_bond_mode(m: BondMode) -> p::BondMode {
    match m {
        BondMode::BalanceRr => p::BondMode::BalanceRr,
        BondMode::ActiveBackup => p::BondMode::ActiveBackup,
        BondMode::BalanceXor => p::BondMode::BalanceXor,
        BondMode::Broadcast => p::BondMode::Broadcast,
        BondMode::Lacp => p::BondMode::Lacp,
        BondMode::BalanceTlb => p::BondMode::BalanceTlb,
        BondMode::BalanceAlb => p::BondMode::BalanceAlb,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API's serde name of a value, the spelling status objects carry.
    fn api_name<T: serde::Serialize>(v: T) -> String {
        serde_json::to_value(v)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    #[test]
    fn every_legacy_upgrade_state_has_an_api_state_and_back() {
        for text in p::UpgradeState::KNOWN {
            let legacy = p::UpgradeState::from_text(text);
            let api = upgrade_state(&legacy).unwrap();
            assert_eq!(legacy_upgrade_state(api), legacy, "{text}");
        }
        for api in UpgradeState::ALL {
            assert_eq!(upgrade_state(&legacy_upgrade_state(api)), Some(api));
        }
        assert_eq!(p::UpgradeState::KNOWN.len(), UpgradeState::ALL.len());
        assert_eq!(upgrade_state(&p::UpgradeState::from_text("DEFRAGMENT")), None);
    }

    #[test]
    fn every_legacy_migration_phase_has_an_api_phase_and_back() {
        for text in p::MigrationPhase::KNOWN {
            let legacy = p::MigrationPhase::from_text(text);
            let api = migration_phase(&legacy).unwrap();
            assert_eq!(legacy_migration_phase(api), legacy, "{text}");
            // The API's name is the legacy name in Pascal case.
            assert_eq!(
                api_name(api).to_ascii_uppercase(),
                text.replace('_', ""),
                "{text}"
            );
        }
        assert_eq!(migration_phase(&p::MigrationPhase::from_text("PAUSED")), None);
    }

    #[test]
    fn every_legacy_boot_recovery_phase_has_an_api_phase_and_only_idle_has_no_legacy_spelling() {
        for text in p::BootRecoveryPhase::KNOWN {
            let legacy = p::BootRecoveryPhase::from_text(text);
            let api = boot_recovery_phase(&legacy).unwrap();
            assert_eq!(legacy_boot_recovery_phase(api), Some(legacy), "{text}");
            assert_eq!(
                api_name(api).to_ascii_uppercase(),
                text.replace('_', ""),
                "{text}"
            );
        }
        assert_eq!(legacy_boot_recovery_phase(BootRecoveryPhase::Idle), None);
        assert_eq!(
            boot_recovery_phase(&p::BootRecoveryPhase::from_text("IDLE")),
            None
        );
    }

    #[test]
    fn every_taint_effect_and_bond_mode_converts_both_ways_under_the_same_name() {
        for text in p::TaintEffect::KNOWN {
            let legacy = p::TaintEffect::from_text(text);
            let api = taint_effect(&legacy).unwrap();
            assert_eq!(legacy_taint_effect(api), legacy);
            assert_eq!(api_name(api), *text);
        }
        assert_eq!(taint_effect(&p::TaintEffect::from_text("noschedule")), None);
        for mode in p::BondMode::ALL {
            assert_eq!(driver_bond_mode(bond_mode(mode)), mode);
            assert_eq!(api_name(bond_mode(mode)), mode.name());
        }
    }
}
