//! What the operator writes in the legacy script's terms: the phase names of the legacy
//! `migration` key, that key itself, and the `cluster` and `members` keys a migration changes.
//! Strings only; the caller writes them.

use std::fmt::Write as _;

use nodewright_api::common::{InvalidNodeName, validate_node_name};
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

/// A value that is not written into the legacy `migration` key: the privileged script reads that
/// key's fields back (`source`, `joining`) and does arithmetic on others (`since`), so a value that
/// does not validate never reaches it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the legacy `migration` key is not written: spec.{field}: {source}")]
pub struct UnsafeLegacyValue {
    /// The spec field, as the CRD spells it (`sourceNode`, `joiningNodes[1]`).
    pub field: String,
    /// Why its value is refused.
    #[source]
    pub source: InvalidNodeName,
}

/// Checks every spec value the legacy `migration` key carries: the source and joining nodes must
/// be Node names. The CRD states the same pattern, but a Migration stored before it did, or a CRD
/// not upgraded, gets here unchecked.
pub fn validate_spec(spec: &MigrationSpec) -> Result<(), UnsafeLegacyValue> {
    validate_node_name(&spec.source_node).map_err(|source| UnsafeLegacyValue {
        field: "sourceNode".to_owned(),
        source,
    })?;
    for (i, node) in spec.joining_nodes.iter().enumerate() {
        validate_node_name(node).map_err(|source| UnsafeLegacyValue {
            field: format!("joiningNodes[{i}]"),
            source,
        })?;
    }
    Ok(())
}

/// The legacy `migration` key the operator keeps for the scripts (which hold storage upgrades
/// while a migration runs) and for every other reader of the contract; `owner=operator` marks
/// it as the operator's. Refused, and so never written, when a spec value does not validate
/// ([`validate_spec`]); the message is reduced to characters that cannot end a field or a line.
pub fn legacy_blob(spec: &MigrationSpec, status: &MigrationStatus) -> Result<String, UnsafeLegacyValue> {
    validate_spec(spec)?;
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
        let msg: String = msg
            .chars()
            .map(|c| if c == ';' || c.is_control() { ',' } else { c })
            .collect();
        let _ = write!(blob, ";msg={msg}");
    }
    blob.push_str(";owner=operator");
    Ok(blob)
}
