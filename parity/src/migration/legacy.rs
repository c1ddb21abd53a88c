//! What the operator writes in the legacy script's terms: the phase names of the legacy
//! `migration` key, that key itself, and the `cluster` and `members` keys a migration changes.
//! Strings only; the caller writes them.

use std::fmt::Write as _;

use nodewright_api::migration::{MigrationPhase as Phase, MigrationSpec, MigrationStatus};
use nodewright_parsers::{ClusterBlob, Member};

use super::replicas;
use super::status::current;

/// The phase name as the legacy `migration` key spells it.
pub fn legacy_phase(p: Phase) -> &'static str {
    match p {
        Phase::Pending => "PENDING",
        Phase::Preflight => "PREFLIGHT",
        Phase::PreparingNetwork => "PREPARING_NETWORK",
        Phase::JoiningNodes => "JOINING_NODES",
        Phase::RegisteringSatellites => "REGISTERING_SATELLITES",
        Phase::CreatingStoragePools => "CREATING_STORAGE_POOLS",
        Phase::PlacingReplicas => "PLACING_REPLICAS",
        Phase::WaitingForResync => "WAITING_FOR_RESYNC",
        Phase::Finalizing => "FINALIZING",
        Phase::Completed => "COMPLETED",
        Phase::RollingBack => "ROLLING_BACK",
        Phase::RolledBack => "ROLLED_BACK",
        Phase::Failed => "FAILED",
    }
}

/// The cluster blob with `topology` and `replicas` set, in the contract's key order.
pub fn cluster_blob(c: &ClusterBlob, topology: &str, replicas: u32) -> String {
    format!(
        "primary={};topology={topology};replicas={replicas};storage_pool={};created={};schema=4",
        c.primary, c.storage_pool, c.created
    )
}

/// The members CSV with the roles of `nodes` set to `role`.
pub fn members_csv(members: &[Member], nodes: &[String], role: &str) -> String {
    let mut out = String::from("node,storage_ip,role,joined");
    for m in members {
        let r = if nodes.contains(&m.node) {
            role
        } else {
            m.role.as_str()
        };
        let _ = write!(out, "\n{},{},{r},{}", m.node, m.storage_ip, m.joined);
    }
    out
}

/// The legacy `migration` key the operator keeps for the scripts (which hold storage upgrades
/// while a migration runs) and for every other reader of the contract; `owner=operator` marks
/// it as the operator's.
pub fn legacy_blob(spec: &MigrationSpec, status: &MigrationStatus) -> String {
    let (phase, since) = current(status);
    let mut blob = format!(
        "phase={};source={};joining={};replicas={}",
        legacy_phase(phase),
        spec.source_node,
        spec.joining_nodes.join(","),
        replicas(spec)
    );
    if let Some(s) = since {
        let _ = write!(blob, ";since={s}");
    }
    if let Some(started) = &status.started_at {
        let _ = write!(blob, ";started={}", started.0.as_second());
    }
    if let Some(finished) = &status.finished_at {
        let _ = write!(blob, ";finished={}", finished.0.as_second());
    }
    if let Some(msg) = status.history.last().and_then(|t| t.message.as_deref()) {
        let _ = write!(blob, ";msg={}", msg.replace([';', '\n'], ","));
    }
    blob.push_str(";owner=operator");
    blob
}
